/**
 * The permission table's kernel columns — identity, seccomp profile, Landlock — printed by `vmd policy`
 * under the Deno columns, and `vmd policy --check`: every running VM process's threads read back from /proc
 * (Seccomp, NoNewPrivs, CapEff, uid).
 *
 * @module
 */
import { isVmProcessArgv } from "../vmd/vm_process_command.ts";
import { POLICY } from "./permission_table.ts";
import { MAX_VM_ID, VM_UID_BASE } from "./lockdown.ts";
import { vmSeccompProfile } from "./vm_seccomp_profile.ts";

/** What the kernel enforces for one row, once the VM process has locked down. */
export interface KernelColumns {
  /** The uid/gid it runs as. */
  readonly identity: string;
  /** The seccomp filter on its threads. */
  readonly seccomp: string;
  /** Landlock on its threads. */
  readonly landlock: string;
}

const VM_SECCOMP =
  `profile vm: allow-list of ${vmSeccompProfile(0).rules.length} calls, EPERM for the rest ` +
  "(TSYNC: every thread)";
const VM_IDENTITY = `its VM's uid/gid 0x${VM_UID_BASE.toString(16)}+id (id 1..${MAX_VM_ID}), no groups, ` +
  "no capabilities, no_new_privs";

/** Kernel columns by row name. */
export const KERNEL_COLUMNS: Readonly<Record<string, KernelColumns>> = {
  vmd: {
    identity: "root (opens every file and device for its VMs)",
    seccomp: "none",
    landlock: "none",
  },
  vm: {
    identity: VM_IDENTITY,
    seccomp: VM_SECCOMP,
    landlock: "main thread: no filesystem access, no TCP (set at lock-down)",
  },
  vcpu: {
    identity: "the VM process's",
    seccomp: "the VM process's",
    landlock: "its own thread: no filesystem access (it confines itself at the end of its set-up)",
  },
  "virtio-blk": {
    identity: "the VM process's",
    seccomp: "the VM process's",
    landlock: "its own thread: no filesystem access (it confines itself once its descriptors are set up)",
  },
  "virtio-scsi": {
    identity: "the VM process's",
    seccomp: "the VM process's",
    landlock:
      "its own thread: no filesystem access (it confines itself once it holds its image's descriptor)",
  },
  "virtio-rng": {
    identity: "the VM process's",
    seccomp: "the VM process's",
    landlock: "none: it holds no libc to call Landlock; seccomp refuses every open",
  },
  "virtio-net": {
    identity: "the VM process's",
    seccomp: "the VM process's",
    landlock: "its own thread: no filesystem access (it confines itself once its tap is adopted)",
  },
};

/** The kernel columns as text, one block per row; `landlockLine` says what this kernel offers. */
export function formatKernelPolicy(landlockLine: string): string {
  const lines = ["KERNEL (after a VM process locks down)", landlockLine];
  for (const row of POLICY) {
    const k = KERNEL_COLUMNS[row.name];
    lines.push(`${row.name.padEnd(11)} identity  ${k?.identity ?? "(not set)"}`);
    lines.push(`${"".padEnd(11)} seccomp   ${k?.seccomp ?? "(not set)"}`);
    lines.push(`${"".padEnd(11)} landlock  ${k?.landlock ?? "(not set)"}`);
  }
  lines.push(
    "Deno's own pool threads are covered by seccomp only (Landlock is per thread; those that exist at " +
      "lock-down were started unconfined).",
  );
  return lines.join("\n");
}

/** One thread of a live VM process, as /proc shows it. */
export interface LiveThread {
  /** Thread id. */
  readonly tid: number;
  /** Its name (comm). */
  readonly name: string;
  /** `Seccomp:` (2 = filter). */
  readonly seccomp: string;
  /** `NoNewPrivs:`. */
  readonly noNewPrivs: string;
  /** `CapEff:` (hex). */
  readonly capEff: string;
  /** `Uid:` (real, effective, saved, fs). */
  readonly uid: string;
  /**
   * A kernel worker the kernel attached to the process (`PF_USER_WORKER`, e.g. KVM's
   * `kvm-nx-lpage-recovery`): it runs only kernel code, keeps root's credentials, and needs no lock-down.
   */
  readonly kernelWorker: boolean;
  /** True when this thread shows the lock-down (filter, no_new_privs, no capabilities, no uid 0), or is a
   * kernel worker. */
  readonly locked: boolean;
}

/** A live VM process and its threads. */
export interface LiveVmProcess {
  /** Its pid. */
  readonly pid: number;
  /** Its threads. */
  readonly threads: readonly LiveThread[];
}

/** `PF_USER_WORKER` (include/linux/sched.h): a kernel worker thread of a user process. */
export const PF_USER_WORKER = 0x00004000;

/** The `flags` field (the 9th) of a /proc/<pid>/task/<tid>/stat line. */
function statFlags(stat: string): number {
  // the name (field 2) may hold spaces and parentheses: count fields after its last ')'
  return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[6]);
}

function statusFields(text: string): Map<string, string> {
  const m = new Map<string, string>();
  for (const line of text.split("\n")) {
    const i = line.indexOf(":");
    if (i > 0) m.set(line.slice(0, i), line.slice(i + 1).trim());
  }
  return m;
}

/**
 * Every running VM process (its command line is `cli.ts vm-process` or the VM process's bundle) with each thread's
 * confinement, read from `/proc`. Needs root (a locked VM process's /proc entries belong to root). Processes
 * and threads that end while being read are skipped.
 */
export function liveVmProcesses(proc = "/proc"): LiveVmProcess[] {
  const out: LiveVmProcess[] = [];
  for (const e of Deno.readDirSync(proc)) {
    if (!/^\d+$/.test(e.name)) continue;
    let argv: string[];
    try {
      argv = Deno.readTextFileSync(`${proc}/${e.name}/cmdline`).split("\0");
    } catch {
      continue; // gone
    }
    if (!isVmProcessArgv(argv)) continue;
    const threads: LiveThread[] = [];
    try {
      for (const t of Deno.readDirSync(`${proc}/${e.name}/task`)) {
        const s = statusFields(Deno.readTextFileSync(`${proc}/${e.name}/task/${t.name}/status`));
        const kernelWorker =
          (statFlags(Deno.readTextFileSync(`${proc}/${e.name}/task/${t.name}/stat`)) & PF_USER_WORKER) !== 0;
        const uid = s.get("Uid") ?? "";
        const seccomp = s.get("Seccomp") ?? "?";
        const noNewPrivs = s.get("NoNewPrivs") ?? "?";
        const capEff = s.get("CapEff") ?? "?";
        threads.push({
          tid: Number(t.name),
          name: s.get("Name") ?? "?",
          seccomp,
          noNewPrivs,
          capEff,
          uid,
          kernelWorker,
          locked: kernelWorker || seccomp === "2" && noNewPrivs === "1" && /^0+$/.test(capEff) &&
              uid.split(/\s+/).every((u) => u !== "" && u !== "0"),
        });
      }
    } catch {
      continue; // it ended while being read
    }
    out.push({ pid: Number(e.name), threads: threads.sort((a, b) => a.tid - b.tid) });
  }
  return out.sort((a, b) => a.pid - b.pid);
}

/** The live check as text: one line per thread. */
export function formatLiveCheck(vms: readonly LiveVmProcess[]): string {
  if (vms.length === 0) return "no VM processes are running";
  const lines = ["PID      TID      NAME             SECCOMP NNP CAPEFF           UID        LOCKED"];
  for (const vm of vms) {
    for (const t of vm.threads) {
      lines.push(
        `${String(vm.pid).padEnd(8)} ${String(t.tid).padEnd(8)} ${t.name.padEnd(16)} ${
          t.seccomp.padEnd(7)
        } ` +
          `${t.noNewPrivs.padEnd(3)} ${t.capEff.padEnd(16)} ${t.uid.split(/\s+/)[1]?.padEnd(10) ?? "?"} ` +
          `${t.kernelWorker ? "kernel worker (runs no user code)" : t.locked ? "yes" : "NO"}`,
      );
    }
  }
  return lines.join("\n");
}
