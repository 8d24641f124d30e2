/**
 * `vmd run`: boots one VM in the foreground without the daemon (as `lkvm run` or Firecracker's `--no-api`
 * mode do). The guest's console is on stdin/stdout; on a terminal, `~.` at the start of a line stops the VM
 * (as in cu(1) and `vmctl console`). The exit status is the guest's exit-port value; 0 for a reboot or halt;
 * 1 with a one-line reason for a crash or an internal error. Each `-d disk` becomes a virtio-blk PCI function
 * served by its own worker, `-r iso` a read-only CD-ROM (virtio-scsi, as vmctl's `-r`); every VM also gets
 * virtio-rng.
 * NICs are virtio-net functions on taps named `vm<id>-if<n>` (`--id`, default 1): `-L` a local interface
 * (the host side gets its /31 from `--local-prefix`, and with `--local-inet6 [prefix]` its IPv6 /96 as
 * vm.conf's `local inet6` gives it; the device answers DHCP), each `-n switch` one on that
 * Linux bridge (created if missing, removed at the end if this run created it), `-i count` pads with plain
 * taps that are only brought up; `--locked-lladdr` drops guest frames with another source MAC.
 *
 * @module
 */
import { ArgError, getopt } from "./getopt.ts";
import { closeFd } from "../../ffi/fd.ts";
import { openFileOnce } from "../../ffi/open_file.ts";
import { validateInterfaceName } from "../../ffi/tap.ts";
import {
  addLocalInet6,
  attachToSwitch,
  bringUp,
  bringUpLocal,
  MAX_NICS,
  parseLladdr,
  randomLladdr,
  removeBridge,
} from "../net/host_link.ts";
import { type LocalAddresses, localAddresses } from "../net/local_prefix.ts";
import {
  DEFAULT_LOCAL_INET6_PREFIX,
  type LocalInet6Addresses,
  localInet6Addresses,
} from "../net/local_inet6.ts";
import { DEFAULT_MEMORY_BYTES, MAX_MEMORY_BYTES, MIN_MEMORY_BYTES } from "../config/limits.ts";
import { scanScaled } from "../config/size.ts";
import { describeVcpuExit, formatRegisterDump, type VcpuExit } from "../vcpu/vcpu_exit.ts";
import { parseDiskSpec } from "../disk/open.ts";
import { describeLockdown, lockDown, MAX_VM_ID, vmIdentity } from "../privsep/lockdown.ts";
import { readBootFile } from "../vm/boot_file.ts";
import { bootKernel } from "../vm/boot_kernel.ts";
import { Vm, type VmDisk } from "../vm/vm.ts";
import { DEFAULT_BIOS_PATH, isKernelImage } from "../firmware/bios_image.ts";
import type { BootDevice } from "../firmware/bios_config.ts";

const USAGE = "usage: vmd run [-m size] [-b kernel|bios] [--initrd file] [--cmdline text] [--cpus n] " +
  "[-B disk|cdrom|net] [--bios-log file] " +
  "[-d disk]... [-r iso] [-L] [-i count] [-n switch]... [--lladdr mac] [--locked-lladdr] [--id n] " +
  "[--local-prefix prefix] [--local-inet6 [prefix]]";

/** A command-line mistake in `vmd run`. */
export class RunUsageError extends Error {
  /** Builds the error. */
  constructor(message: string) {
    super(message);
    this.name = "RunUsageError";
  }
}

/** The parsed `vmd run` options. */
export interface RunOptions {
  /** Guest RAM in bytes (a multiple of 1 MiB). */
  readonly memory: number;
  /**
   * The kernel's or BIOS's path (`-b`): a PVH ELF or bzImage boots directly, anything else is a BIOS image.
   * Absent: the default BIOS ({@link DEFAULT_BIOS_PATH}).
   */
  readonly kernel?: string;
  /** What the BIOS boots (`-B`). */
  readonly bootDevice?: BootDevice;
  /** Where to write the BIOS's debug output (port 0x402). */
  readonly biosLog?: string;
  /** The initrd's path. */
  readonly initrd?: string;
  /** The kernel command line. */
  readonly cmdline?: string;
  /** vCPUs. */
  readonly cpus: number;
  /** Disk images, in the order the guest sees them (`-d`, read-write). */
  readonly disks: readonly VmDisk[];
  /** The CD-ROM's ISO image (`-r`). */
  readonly cdrom?: string;
  /** NICs, in the order the guest sees them: the local interface, then one per switch, then plain taps. */
  readonly nics: readonly RunNic[];
}

/** One NIC of `vmd run`. */
export interface RunNic {
  /** Its tap, `vm<id>-if<n>`. */
  readonly tap: string;
  /** Its MAC. */
  readonly mac: Uint8Array;
  /** Drop frames with another source MAC. */
  readonly lockedLladdr: boolean;
  /** `-L`: its link addresses (the device answers DHCP). */
  readonly local?: LocalAddresses;
  /** `-L` with `--local-inet6`: the IPv6 addresses of its link (the host side gets its /96). */
  readonly inet6?: LocalInet6Addresses;
  /** `-n`: the bridge it joins. */
  readonly switch?: string;
}

/** Parses `vmd run` arguments (pure). Throws {@link RunUsageError}. */
export function parseRunArgs(args: string[]): RunOptions {
  let parsed;
  // `--local-inet6` takes an optional prefix; `vmd run` has no positional arguments, so a following word that
  // is not an option is the prefix.
  args = args.flatMap((a, i) =>
    a === "--local-inet6" && (i + 1 >= args.length || args[i + 1].startsWith("-"))
      ? [`--local-inet6=${DEFAULT_LOCAL_INET6_PREFIX}`]
      : [a]
  );
  try {
    parsed = getopt(args, {
      memory: { type: "string", short: "m" },
      boot: { type: "string", short: "b" },
      "boot-device": { type: "string", short: "B" },
      "bios-log": { type: "string" },
      initrd: { type: "string" },
      cmdline: { type: "string" },
      cpus: { type: "string" },
      disk: { type: "string", short: "d", multiple: true },
      cdrom: { type: "string", short: "r", multiple: true },
      local: { type: "boolean", short: "L" },
      interfaces: { type: "string", short: "i" },
      switch: { type: "string", short: "n", multiple: true },
      lladdr: { type: "string" },
      "locked-lladdr": { type: "boolean" },
      id: { type: "string" },
      "local-prefix": { type: "string" },
      "local-inet6": { type: "string" },
    });
  } catch (e) {
    throw e instanceof ArgError ? new RunUsageError(e.message) : e;
  }
  const v = parsed.values;
  const bootDevice = v["boot-device"];
  if (bootDevice !== undefined && bootDevice !== "disk" && bootDevice !== "cdrom" && bootDevice !== "net") {
    throw new RunUsageError(`-B ${bootDevice}: expected disk, cdrom or net`);
  }
  let memory = DEFAULT_MEMORY_BYTES;
  if (v.memory !== undefined) {
    const r = scanScaled(v.memory);
    if (!r.ok) throw new RunUsageError(`-m ${v.memory}: ${r.reason}`);
    const mib = Number(r.bytes / (1n << 20n));
    memory = mib * 2 ** 20;
    if (memory < MIN_MEMORY_BYTES || memory > MAX_MEMORY_BYTES) {
      throw new RunUsageError(`-m ${v.memory}: memory must be between 1M and 128G`);
    }
  }
  const cpus = v.cpus === undefined ? 1 : Number(v.cpus);
  if (!Number.isInteger(cpus) || cpus < 1 || cpus > 64) {
    throw new RunUsageError(`--cpus ${v.cpus}: expected 1..64`);
  }
  return {
    memory,
    nics: nicsOf(v),
    kernel: v.boot,
    bootDevice,
    biosLog: v["bios-log"],
    initrd: v.initrd,
    cmdline: v.cmdline,
    cpus,
    disks: (v.disk ?? []).map((name) => ({ ...parseDiskSpec(name), readOnly: false })),
    cdrom: oneCdrom(v.cdrom),
  };
}

/** The one `-r` (a VM has one CD-ROM, as in vmctl). */
function oneCdrom(paths: string[] | undefined): string | undefined {
  if (paths === undefined) return undefined;
  if (paths.length > 1) throw new RunUsageError(`-r given ${paths.length} times: a VM has one CD-ROM`);
  if (paths[0] === "") throw new RunUsageError("-r: name an ISO image");
  return paths[0];
}

function nicsOf(v: {
  local?: boolean;
  interfaces?: string;
  switch?: string[];
  lladdr?: string;
  "locked-lladdr"?: boolean;
  id?: string;
  "local-prefix"?: string;
  "local-inet6"?: string;
}): RunNic[] {
  const id = v.id === undefined ? 1 : Number(v.id);
  if (!Number.isInteger(id) || id < 1 || id > 9999) throw new RunUsageError(`--id ${v.id}: expected 1..9999`);
  const switches = v.switch ?? [];
  const planned: { local: boolean; switch?: string }[] = [];
  if (v.local) planned.push({ local: true });
  for (const sw of switches) {
    try {
      validateInterfaceName(sw);
    } catch (e) {
      throw new RunUsageError(`-n ${sw}: ${(e as Error).message}`);
    }
    planned.push({ local: false, switch: sw });
  }
  if (v.interfaces !== undefined) {
    const count = Number(v.interfaces);
    if (!Number.isInteger(count) || count < 0 || count > MAX_NICS) {
      throw new RunUsageError(`-i ${v.interfaces}: expected 0..${MAX_NICS}`);
    }
    if (count < planned.length) {
      throw new RunUsageError(`-i ${count}: -L and -n already ask for ${planned.length}`);
    }
    while (planned.length < count) planned.push({ local: false });
  }
  if (planned.length > MAX_NICS) throw new RunUsageError(`at most ${MAX_NICS} interfaces`);
  if (v.lladdr !== undefined && planned.length !== 1) {
    throw new RunUsageError("--lladdr needs exactly one interface");
  }
  if (v["local-inet6"] !== undefined && !v.local) throw new RunUsageError("--local-inet6 needs -L");
  if (v["locked-lladdr"] && planned.length === 0) {
    throw new RunUsageError("--locked-lladdr needs an interface");
  }
  let fixed: Uint8Array | undefined;
  try {
    fixed = v.lladdr === undefined ? undefined : parseLladdr(v.lladdr);
  } catch (e) {
    throw new RunUsageError((e as Error).message);
  }
  return planned.map((p, i) => {
    let local: LocalAddresses | undefined;
    let inet6: LocalInet6Addresses | undefined;
    if (p.local) {
      try {
        local = localAddresses(id, i, v["local-prefix"]);
        if (v["local-inet6"] !== undefined) {
          inet6 = localInet6Addresses(id, i, v["local-prefix"], v["local-inet6"]);
        }
      } catch (e) {
        throw new RunUsageError((e as Error).message);
      }
    }
    return {
      tap: `vm${id}-if${i}`,
      mac: fixed ?? randomLladdr(i),
      lockedLladdr: v["locked-lladdr"] === true,
      local,
      inet6,
      switch: p.switch,
    };
  });
}

/** Sets up the host side of each NIC; returns the bridges it created (to remove at the end). */
async function hostSide(nics: readonly RunNic[]): Promise<string[]> {
  const created: string[] = [];
  for (const n of nics) {
    if (n.local !== undefined) {
      if (n.inet6 !== undefined) await addLocalInet6(n.tap, n.inet6.host);
      await bringUpLocal(n.tap, n.local.host);
    } else if (n.switch !== undefined) {
      if (await attachToSwitch(n.tap, n.switch)) created.push(n.switch);
    } else await bringUp(n.tap);
  }
  return created;
}

/** The exit status and the one-line reason for how a VM ended. */
export function exitStatus(exit: VcpuExit): { status: number; reason: string } {
  switch (exit.kind) {
    case "exit-port":
      return { status: exit.status & 0xff, reason: describeVcpuExit(exit) };
    case "reboot":
    case "hlt":
    case "stopped":
      return { status: 0, reason: describeVcpuExit(exit) };
    default:
      return { status: 1, reason: describeVcpuExit(exit) };
  }
}

/** Reads a kernel or initrd the user named: opened once, no final symlink, no FIFO, size checked first. */
function readUserFile(path: string, what: string, limit: number): Uint8Array {
  const file = openFileOnce(path, { what }); // its error names the file and what to do
  try {
    return readBootFile(file.fd, path, what, limit);
  } finally {
    closeFd(file.fd);
  }
}

/** Copies stdin to the guest; on a terminal, `~.` after a newline stops the VM. */
async function pumpStdin(vm: Vm, stop: () => void): Promise<void> {
  const tty = Deno.stdin.isTerminal();
  if (tty) Deno.stdin.setRaw(true);
  const buf = new Uint8Array(1024);
  let lineStart = true;
  let tilde = false;
  try {
    for (;;) {
      const n = await Deno.stdin.read(buf);
      if (n === null) return;
      const out: number[] = [];
      for (const b of buf.subarray(0, n)) {
        if (tty && tilde) {
          tilde = false;
          if (b === 0x2e) return stop(); // "~."
          out.push(0x7e);
        }
        if (tty && lineStart && b === 0x7e) {
          tilde = true;
          continue;
        }
        lineStart = b === 0x0d || b === 0x0a;
        out.push(b);
      }
      let bytes = new Uint8Array(out);
      while (bytes.length > 0) {
        const taken = vm.consoleInput(bytes);
        bytes = bytes.subarray(taken);
        if (bytes.length > 0) await new Promise((r) => setTimeout(r, 5));
      }
    }
  } finally {
    if (tty) Deno.stdin.setRaw(false);
  }
}

/** The VM id whose uid `vmd run` takes when it locks down (the top of the per-VM range). */
export const RUN_VM_ID = MAX_VM_ID;

/**
 * Locks `vmd run` down as a VM process does (its own uid, no_new_privs, seccomp, Landlock), once the VM and
 * its workers hold everything they need — when it can: as root, and with no bridge of its own to remove at
 * the end (that runs `ip`, which the filter refuses). Says so when it cannot.
 */
function lockDownRun(bridges: readonly string[]): void {
  if (Deno.uid() !== 0) {
    console.error("vmd run: not root: runs with your own rights, without the VM lock-down");
    return;
  }
  if (bridges.length > 0) {
    console.error(`vmd run: not locked down: bridge ${bridges.join(", ")} must be removed at the end`);
    return;
  }
  console.error(`vmd run: ${describeLockdown(lockDown({ identity: vmIdentity(RUN_VM_ID) }))}`);
}

/** Runs `vmd run args...`; resolves to the exit status. */
export async function runMain(args: string[]): Promise<number> {
  let o: RunOptions;
  try {
    o = parseRunArgs(args);
  } catch (e) {
    console.error(`vmd run: ${(e as Error).message}\n${USAGE}`);
    return 1;
  }
  let vm: Vm | undefined;
  let bridges: string[] = [];
  try {
    const bootPath = o.kernel ?? DEFAULT_BIOS_PATH;
    const boot = readUserFile(bootPath, o.kernel === undefined ? "BIOS" : "kernel or BIOS", o.memory);
    const kernel = isKernelImage(boot) ? boot : undefined;
    if (kernel === undefined && (o.initrd !== undefined || o.cmdline !== undefined)) {
      throw new RunUsageError(
        `${bootPath} is a BIOS image, not a kernel: --initrd and --cmdline need a kernel`,
      );
    }
    if (kernel !== undefined && o.bootDevice !== undefined) {
      throw new RunUsageError(
        `-B ${o.bootDevice} chooses what the BIOS boots; ${bootPath} is a kernel, booted without a BIOS`,
      );
    }
    const initrd = o.initrd === undefined ? undefined : readUserFile(o.initrd, "initrd", o.memory);
    const biosLog = o.biosLog === undefined || kernel !== undefined
      ? undefined
      : Deno.openSync(o.biosLog, { write: true, create: true, truncate: true });
    // Like vmd(8), every VM gets an entropy device; each disk is a virtio-blk function, the CD-ROM virtio-scsi.
    vm = Vm.create({
      memory: o.memory,
      vcpus: o.cpus,
      platform: "pc",
      disks: o.disks,
      cdrom: o.cdrom === undefined ? undefined : { path: o.cdrom },
      rng: true,
      nics: o.nics,
      bios: kernel === undefined ? { image: boot, name: bootPath } : undefined,
      bootDevice: o.bootDevice,
    });
    if (kernel !== undefined) {
      await bootKernel(vm, kernel, {
        kernelName: bootPath,
        cmdline: o.cmdline ?? "console=ttyS0",
        initrd,
        initrdName: o.initrd ?? "initrd",
      });
    }
    await vm.spawn();
    bridges = await hostSide(o.nics);
    for (const n of o.nics) {
      const mac = [...n.mac].map((b) => b.toString(16).padStart(2, "0")).join(":");
      const what = n.local !== undefined
        ? `local ${n.local.host}/31, guest ${n.local.guest}`
        : n.switch !== undefined
        ? `switch ${n.switch}`
        : "no switch";
      console.error(`vmd run: ${n.tap}: lladdr ${mac}${n.lockedLladdr ? " (locked)" : ""}, ${what}`);
    }
    lockDownRun(bridges);
    vm.run();
    const running = vm;
    const stop = () => void running.stop();
    const signals: Deno.Signal[] = ["SIGINT", "SIGTERM"];
    for (const s of signals) Deno.addSignalListener(s, stop);
    void pumpStdin(vm, stop);
    const firmwareLog = vm.firmwareLog;
    const logPump = biosLog === undefined || firmwareLog === undefined
      ? undefined
      : setInterval(() => biosLog.writeSync(firmwareLog.drain()), 100);
    await vm.pumpConsole(async (bytes) => {
      await Deno.stdout.write(bytes);
    });
    if (logPump !== undefined) clearInterval(logPump);
    if (biosLog !== undefined && firmwareLog !== undefined) {
      biosLog.writeSync(firmwareLog.drain());
      biosLog.close();
    }
    const { exit } = await vm.wait();
    for (const s of signals) Deno.removeSignalListener(s, stop);
    const { status, reason } = exitStatus(exit);
    for (const d of vm.virtioDevices) {
      if (d.failure !== undefined) console.error(`vmd run: device ${d.label} failed: ${d.failure}`);
    }
    console.error(`vmd run: ${reason}`);
    if ("dump" in exit && exit.dump !== undefined) console.error(formatRegisterDump(exit.dump));
    return status;
  } catch (e) {
    console.error(`vmd run: ${e instanceof Error ? e.message : String(e)}`);
    return 1;
  } finally {
    vm?.close();
    for (const b of bridges) await removeBridge(b).catch(() => {});
  }
}
