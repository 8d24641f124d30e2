/**
 * Messages between the daemon and one VM process, over the child's stdin (daemon → VM) and stdout
 * (VM → daemon), framed as in `framing.ts`. Each type has its own validator; the daemon treats a VM process
 * as untrusted (it runs guest-facing code) and checks everything it says.
 *
 * @module
 */
import type { DiskFile } from "../disk/open.ts";
import { MAX_VM_ID } from "../privsep/lockdown.ts";
import { MAX_BACKING_DEPTH } from "../disk/open.ts";
import { bool, int, MessageError, oneOf, record, str, strOrNull } from "./validate_fields.ts";

/** A file vmd opened for the VM: the VM process is sent its descriptor and never opens the user's path. */
export interface SpecFile {
  /** The descriptor's number in vmd (the VM process renumbers it when it arrives: `spec_fds.ts`). */
  readonly fd: number;
  /** The path the user named, for messages. */
  readonly name: string;
}

/** What a VM process boots. */
export interface VmSpec {
  /** The VM's name (for logs). */
  readonly name: string;
  /** The kernel (PVH ELF or bzImage) or, if it is neither, the BIOS image. */
  readonly kernel: SpecFile;
  /** What the BIOS boots, or null (its own order). */
  readonly bootDevice: "disk" | "cdrom" | "net" | null;
  /** The initrd, or null. */
  readonly initrd: SpecFile | null;
  /** Kernel command line. */
  readonly cmdline: string;
  /** vCPUs. */
  readonly cpus: number;
  /** Guest memory in bytes. */
  readonly memory: number;
  /** The daemon's id for this VM (1..65535): the VM process locks down as uid/gid `0x7ff00000 + vmId`. */
  readonly vmId: number;
  /** The console pty's master, an fd the daemon opened and sent. */
  readonly consoleFd: number;
  /** Disk images, each a virtio-blk function, in the order the guest sees them. */
  readonly disks: readonly SpecDisk[];
  /** The CD-ROM's ISO image (opened read-only by vmd), a virtio-scsi function after the disks; or null. */
  readonly cdrom: SpecFile | null;
  /** NICs, each a virtio-net function on a tap vmd opened and configured, in the order the guest sees them. */
  readonly nics: readonly SpecNic[];
}

/** One NIC of a VM: its tap is open in vmd and sent to the VM process. */
export interface SpecNic {
  /** The tap's name (`vm<id>-if<n>`), for logs. */
  readonly tap: string;
  /** The tap fd (vmd's number until the VM process renumbers it). */
  readonly fd: number;
  /** The guest's MAC (6 bytes). */
  readonly mac: readonly number[];
  /** The host side's MAC (6 bytes), for DHCP replies. */
  readonly hostMac: readonly number[];
  /** `locked lladdr`: drop guest frames with another source MAC. */
  readonly lockedLladdr: boolean;
  /** A local interface's addresses (the device answers DHCP), or null. */
  readonly local: { readonly host: string; readonly guest: string } | null;
}

/** Most NICs a VM may have (vm.conf allows 4). */
export const MAX_SPEC_NICS = 4;

/** One disk of a VM: its image and backing chain, opened by vmd. */
export interface SpecDisk {
  /** The image, then each backing image, in the formats vmd decided when it opened them. */
  readonly files: readonly DiskFile[];
  /** Attached read-only. */
  readonly readOnly: boolean;
}

/** Most disks a VM may have (vm.conf allows 4). */
export const MAX_SPEC_DISKS = 4;

/** Daemon → VM process. */
export type ToVm =
  | { readonly type: "boot"; readonly spec: VmSpec }
  | { readonly type: "pause" }
  | { readonly type: "resume" }
  /**
   * A graceful stop: press the ACPI power button (a guest whose ACPI driver enabled it) or else type
   * Ctrl-Alt-Del on the guest's keyboard, and let the guest end the VM (power off or reboot); a guest with
   * neither driver cannot be asked, and its vCPUs are stopped at once.
   */
  | { readonly type: "shutdown" };

/** How a guest was asked to shut down: the ACPI power button, Ctrl-Alt-Del, or not at all. */
export type ShutdownRequest = "power-button" | "ctrl-alt-del" | "none";
const SHUTDOWN_REQUESTS: readonly ShutdownRequest[] = ["power-button", "ctrl-alt-del", "none"];

/** How a guest's run ended, as the VM process reports it. */
export type EndKind = "exit-port" | "hlt" | "shutdown" | "reboot" | "stopped" | "error";

/** VM process → daemon. */
export type FromVm =
  | { readonly type: "ready" }
  | { readonly type: "paused" }
  | { readonly type: "resumed" }
  /** The run ended; `dump` is the register dump (lines) of a triple fault or a KVM error, else null. */
  | { readonly type: "ended"; readonly kind: EndKind; readonly reason: string; readonly dump: string | null }
  /** The answer to `shutdown`: whether the guest was asked, and how, or stopped at once. */
  | { readonly type: "shutting-down"; readonly asked: boolean; readonly by: ShutdownRequest }
  | { readonly type: "failed"; readonly message: string };

const END_KINDS: readonly EndKind[] = ["exit-port", "hlt", "shutdown", "reboot", "stopped", "error"];

function validateSpec(value: unknown): VmSpec {
  const o = record(
    value,
    [
      "name",
      "vmId",
      "kernel",
      "bootDevice",
      "initrd",
      "cmdline",
      "cpus",
      "memory",
      "consoleFd",
      "disks",
      "cdrom",
      "nics",
    ],
    "vm spec",
  );
  if (!Array.isArray(o.disks) || o.disks.length > MAX_SPEC_DISKS) {
    throw new MessageError(`field "disks" must be an array of at most ${MAX_SPEC_DISKS} disks`);
  }
  const disks = o.disks.map((d) => {
    const r = record(d, ["files", "readOnly"], "disk");
    if (!Array.isArray(r.files) || r.files.length < 1 || r.files.length > MAX_BACKING_DEPTH + 1) {
      throw new MessageError(`field "files" must list 1 to ${MAX_BACKING_DEPTH + 1} images`);
    }
    const files = r.files.map((f): DiskFile => {
      const x = record(f, ["fd", "name", "format", "probed"], "disk file");
      return {
        fd: int(x, "fd", 3, 2 ** 20),
        name: str(x, "name"),
        format: oneOf(x, "format", ["raw", "qcow2"] as const),
        probed: bool(x, "probed"),
      };
    });
    return { files, readOnly: bool(r, "readOnly") };
  });
  return {
    name: str(o, "name", 256),
    vmId: int(o, "vmId", 1, MAX_VM_ID),
    kernel: specFile(o.kernel, "kernel"),
    bootDevice: o.bootDevice === null ? null : oneOf(o, "bootDevice", ["disk", "cdrom", "net"] as const),
    initrd: o.initrd === null ? null : specFile(o.initrd, "initrd"),
    cmdline: str(o, "cmdline"),
    cpus: int(o, "cpus", 1, 64),
    memory: int(o, "memory", 2 ** 20, 128 * 2 ** 30),
    consoleFd: int(o, "consoleFd", 3, 2 ** 20),
    disks,
    cdrom: o.cdrom === null ? null : specFile(o.cdrom, "cdrom"),
    nics: validateNics(o.nics),
  };
}

function specFile(value: unknown, what: string): SpecFile {
  const r = record(value, ["fd", "name"], what);
  return { fd: int(r, "fd", 3, 2 ** 20), name: str(r, "name") };
}

function mac6(r: Record<string, unknown>, key: string): number[] {
  const v = r[key];
  if (!Array.isArray(v) || v.length !== 6 || !v.every((b) => Number.isInteger(b) && b >= 0 && b <= 255)) {
    throw new MessageError(`field "${key}" must be 6 bytes`);
  }
  return v as number[];
}

function validateNics(value: unknown): SpecNic[] {
  if (!Array.isArray(value) || value.length > MAX_SPEC_NICS) {
    throw new MessageError(`field "nics" must be an array of at most ${MAX_SPEC_NICS} NICs`);
  }
  return value.map((n) => {
    const r = record(n, ["tap", "fd", "mac", "hostMac", "lockedLladdr", "local"], "nic");
    let local: SpecNic["local"] = null;
    if (r.local !== null) {
      const l = record(r.local, ["host", "guest"], "local");
      local = { host: str(l, "host", 15), guest: str(l, "guest", 15) };
    }
    return {
      tap: str(r, "tap", 15),
      fd: int(r, "fd", 3, 2 ** 20),
      mac: mac6(r, "mac"),
      hostMac: mac6(r, "hostMac"),
      lockedLladdr: bool(r, "lockedLladdr"),
      local,
    };
  });
}

const TO_VM: { readonly [K in ToVm["type"]]: (o: unknown) => ToVm } = {
  boot: (x) => ({ type: "boot", spec: validateSpec(record(x, ["type", "spec"], "boot").spec) }),
  pause: (x) => (record(x, ["type"], "pause"), { type: "pause" }),
  resume: (x) => (record(x, ["type"], "resume"), { type: "resume" }),
  shutdown: (x) => (record(x, ["type"], "shutdown"), { type: "shutdown" }),
};

const FROM_VM: { readonly [K in FromVm["type"]]: (o: unknown) => FromVm } = {
  ready: (x) => (record(x, ["type"], "ready"), { type: "ready" }),
  paused: (x) => (record(x, ["type"], "paused"), { type: "paused" }),
  resumed: (x) => (record(x, ["type"], "resumed"), { type: "resumed" }),
  ended: (x) => {
    const o = record(x, ["type", "kind", "reason", "dump"], "ended");
    return {
      type: "ended",
      kind: oneOf(o, "kind", END_KINDS),
      reason: str(o, "reason", 1024),
      dump: strOrNull(o, "dump", 4096),
    };
  },
  "shutting-down": (x) => {
    const o = record(x, ["type", "asked", "by"], "shutting-down");
    return { type: "shutting-down", asked: bool(o, "asked"), by: oneOf(o, "by", SHUTDOWN_REQUESTS) };
  },
  failed: (x) => ({
    type: "failed",
    message: str(record(x, ["type", "message"], "failed"), "message", 4096),
  }),
};

function dispatch<T extends { type: string }>(
  table: { readonly [k: string]: (o: unknown) => T },
  value: unknown,
  what: string,
): T {
  if (typeof value !== "object" || value === null) throw new MessageError(`${what} must be a JSON object`);
  const type = (value as { type?: unknown }).type;
  if (typeof type !== "string" || !Object.hasOwn(table, type)) {
    throw new MessageError(`unknown ${what} type ${JSON.stringify(type)}`);
  }
  return table[type](value);
}

/** Validates a message to a VM process; throws MessageError. */
export function validateToVm(value: unknown): ToVm {
  return dispatch(TO_VM, value, "message to the VM process");
}

/** Validates a message from a VM process; throws MessageError. */
export function validateFromVm(value: unknown): FromVm {
  return dispatch(FROM_VM, value, "message from the VM process");
}
