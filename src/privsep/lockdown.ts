/**
 * Lock-down of a VM process: the kernel's floor under Deno's per-worker flags. Called once the process has
 * created its VM, holds every descriptor it will ever use and has started all its workers; from then on it
 * can only use what it holds.
 *
 * The steps, in this order (after setting up Deno's signal handling, which Deno would otherwise do lazily,
 * with a socket pair the filter refuses, on the first signal listener, and forgetting the environment
 * variables of files Deno would open lazily):
 *
 * 1. **Identity** — leave root for the VM's own uid and gid (`setgroups(0)`, `setresgid`, `setresuid`, all
 *    through glibc, which applies them to every thread). First, because it needs CAP_SETUID/CAP_SETGID and
 *    the filter of step 4 refuses the setuid family. Moving all three uids off 0 clears the capability
 *    sets; the step checks the effective set is empty and that root cannot be taken back.
 * 2. **no_new_privs** on this thread: required of an unprivileged thread by both Landlock and seccomp.
 * 3. **Landlock** on this thread (and the threads it creates later): no filesystem access at all, no TCP
 *    bind/connect. Landlock is per thread; workers holding libc confine their own thread
 *    ({@link confineThisThread}: the vCPU worker at the end of its set-up, virtio-blk and virtio-net once their
 *    descriptors are set up). Threads that hold no libc (Deno's pool threads, the virtio-rng worker) are
 *    not Landlocked: for them the seccomp filter is the wall. A kernel without Landlock is reported, not fatal.
 * 4. **seccomp** on every thread (`SECCOMP_FILTER_FLAG_TSYNC`, which also sets no_new_privs on each): the
 *    allow-list of `vm_seccomp_profile.ts`; everything else fails with EPERM. Last, because after it
 *    none of the above could be done (or undone).
 *
 * Identity: a per-VM uid and gid, `0x7ff00000 + id` ({@link vmIdentity}), rather than one shared `_vmd`
 * user. Two VMs under one uid could signal each other, read each other's `/proc/<pid>` entries and share
 * per-user limits; with one uid each, the only thing a VM process can reach is itself, and nothing has to be
 * added to the host's passwd file (the range 0x7ff00001..0x7ff0ffff lies above systemd's container ranges
 * and below its foreign-uid range). The files a VM uses are opened by vmd before the drop, so no file needs
 * to belong to these uids.
 *
 * @module
 */
import { dropIdentity, effectiveCapabilities } from "../../ffi/identity.ts";
import { confineThisThread, type ThreadConfinement } from "../../ffi/landlock.ts";
import { type Libc, openLibc } from "../../ffi/libc.ts";
import { type BpfInstruction, installSeccompFilter, setNoNewPrivs } from "../../ffi/seccomp.ts";
import { assembleProfile } from "./seccomp_filter.ts";
import { vmSeccompProfile } from "./vm_seccomp_profile.ts";

/** The first uid (and gid) of the per-VM range; VM `id` runs as `VM_UID_BASE + id`. */
export const VM_UID_BASE = 0x7ff00000;
/** The highest VM id the range holds. */
export const MAX_VM_ID = 0xffff;

/** An identity to leave root for. */
export interface Identity {
  /** The uid (real, effective and saved). */
  readonly uid: number;
  /** The gid (real, effective and saved); no supplementary groups. */
  readonly gid: number;
}

/** Lock-down could not be completed; the process must not go on running the guest. */
export class LockdownError extends Error {
  /** Builds the error. */
  constructor(message: string) {
    super(message);
    this.name = "LockdownError";
  }
}

/** The identity of VM `id` (1..{@link MAX_VM_ID}): uid = gid = `VM_UID_BASE + id`. */
export function vmIdentity(id: number): Identity {
  if (!Number.isInteger(id) || id < 1 || id > MAX_VM_ID) {
    throw new LockdownError(`VM id ${id} is outside 1..${MAX_VM_ID}: it has no uid in the per-VM range`);
  }
  return { uid: VM_UID_BASE + id, gid: VM_UID_BASE + id };
}

/** What to lock down. */
export interface LockdownOptions {
  /** The identity to take (see {@link vmIdentity}). */
  readonly identity: Identity;
  /**
   * Which walls to raise; all by default. Turning one off is for tests that must show the other one
   * stops a probe on its own.
   */
  readonly layers?: { readonly seccomp?: boolean; readonly landlock?: boolean };
  /** Where a missing kernel feature is reported (one line); `console.error` by default. */
  readonly log?: (line: string) => void;
  /** libc (this thread's handle); needs unscoped ffi (the filter's address). */
  readonly libc?: Libc;
  /**
   * The seccomp program, compiled ahead by {@link compileVmFilter} in this same process (a VM process
   * waiting in the daemon's pool does it before it has a VM); compiled here when absent.
   */
  readonly program?: readonly BpfInstruction[];
}

/** The VM seccomp profile compiled for this process (it names this process's pid). */
export function compileVmFilter(libc: Libc = openLibc()): readonly BpfInstruction[] {
  return assembleProfile(vmSeccompProfile(libc.getpid()));
}

/** What {@link lockDown} did, for the log and `vmd policy --check`. */
export interface LockdownReport {
  /** The identity now held by every thread. */
  readonly identity: Identity;
  /** The calling thread's effective capabilities after the drop (0n). */
  readonly capEff: bigint;
  /** Landlock on the calling thread: applied (with the ABI), or why not. */
  readonly landlock: ThreadConfinement | { readonly applied: false; readonly why: string };
  /** The seccomp profile installed on every thread, and its length in BPF instructions; null if off. */
  readonly seccomp: { readonly profile: string; readonly instructions: number } | null;
}

/**
 * Environment variables naming files Deno opens lazily (certificate bundles, loaded the first time something
 * asks for TLS roots): after the lock-down that open is refused and Deno prints a warning. Nothing under
 * lock-down makes a TLS connection.
 */
export const LAZILY_READ_ENV: readonly string[] = [
  "NODE_EXTRA_CA_CERTS",
  "SSL_CERT_FILE",
  "SSL_CERT_DIR",
  "DENO_CERT",
];

/**
 * Forgets {@link LAZILY_READ_ENV} in this process, when it may (a VM process has no env permission: vmd starts
 * it without them instead). Measured: `vmd run` of a Linux guest warned that the bundle could not be opened.
 */
function forgetLazilyReadEnv(): void {
  for (const name of LAZILY_READ_ENV) {
    try {
      Deno.env.delete(name);
    } catch { /* no env permission: the process was started without them */ }
  }
}

/**
 * Sets up Deno's signal handling now. Deno does it on the first signal listener of the process, with a socket
 * pair and a thread, and panics if that fails: after the filter (no `socketpair`) a first listener would
 * bring the process down (measured: `Deno.addSignalListener` after `lockDown` panicked in ext/signals).
 */
function primeSignalHandling(): void {
  const none = () => {};
  Deno.addSignalListener("SIGWINCH", none);
  Deno.removeSignalListener("SIGWINCH", none);
}

/** Runs the steps above in order; throws {@link LockdownError} naming the step that failed. */
export function lockDown(opts: LockdownOptions): LockdownReport {
  const libc = opts.libc ?? openLibc();
  const log = opts.log ?? ((line: string) => console.error(line));
  const step = <T>(name: string, f: () => T): T => {
    try {
      return f();
    } catch (e) {
      throw new LockdownError(`lock-down: ${name}: ${e instanceof Error ? e.message : String(e)}`);
    }
  };
  const { uid, gid } = opts.identity;
  // Compiled before the identity changes: assembling touches no file, but a failure here should leave root
  // untouched and report a programming error, not a half-locked process.
  const program = opts.program ?? step("seccomp profile", () => compileVmFilter(libc));
  step("signal handling", primeSignalHandling);
  step("environment", forgetLazilyReadEnv);
  step("identity", () => dropIdentity(uid, gid, libc));
  const caps = step("capabilities", () => effectiveCapabilities(libc));
  if (caps.effective !== 0n || caps.permitted !== 0n) {
    throw new LockdownError(
      `lock-down: capabilities: uid ${uid} still holds CapEff 0x${caps.effective.toString(16)}; ` +
        "check no SECBIT_KEEP_CAPS is set",
    );
  }
  step("no_new_privs", () => setNoNewPrivs(libc));
  let landlock: LockdownReport["landlock"] = { applied: false, why: "turned off" };
  if (opts.layers?.landlock !== false) {
    landlock = step("landlock", () => confineThisThread(libc));
    if (!landlock.applied) log(`vmd: Landlock unavailable (${landlock.why}); seccomp alone confines files`);
  }
  let seccomp: LockdownReport["seccomp"] = null;
  if (opts.layers?.seccomp !== false) {
    step("seccomp", () => installSeccompFilter(program, libc));
    seccomp = { profile: "vm", instructions: program.length };
  }
  return { identity: { uid, gid }, capEff: caps.effective, landlock, seccomp };
}

/** One log line for a lock-down report. */
export function describeLockdown(r: LockdownReport): string {
  const landlock = r.landlock.applied
    ? `Landlock ABI ${r.landlock.abi} on the main thread and the vCPU/virtio-blk/virtio-net/virtio-scsi threads`
    : `no Landlock (${r.landlock.why})`;
  const seccomp = r.seccomp === null
    ? "no seccomp"
    : `seccomp profile ${r.seccomp.profile} (${r.seccomp.instructions} BPF instructions) on every thread`;
  return `locked down: uid/gid ${r.identity.uid}/${r.identity.gid}, no capabilities, no_new_privs, ${landlock}, ${seccomp}`;
}
