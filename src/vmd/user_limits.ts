/**
 * What one user other than root may hold in the daemon: VMs she created (instances), and the memory and vCPUs
 * of those that run. Root is not limited, and neither are the VMs of vm.conf (root wrote them). The limits keep
 * one user of the socket from starving the others, or the host, through vmd.
 *
 * @module
 */
import type { VmDefinition } from "./vm_entry.ts";

/** The per-user limits. */
export interface UserLimits {
  /** VMs a user may have listed at once (running or stopped). */
  readonly vms: number;
  /** Memory of a user's VMs that are not stopped, in bytes. */
  readonly memory: number;
  /** vCPUs of a user's VMs that are not stopped. */
  readonly cpus: number;
}

/** The defaults: 8 VMs, 8 GiB of guest memory and 16 vCPUs per user. */
export const DEFAULT_USER_LIMITS: UserLimits = { vms: 8, memory: 8 * 2 ** 30, cpus: 16 };

/** A start a user's limits do not allow; the message says what to do. */
export class UserLimitError extends Error {
  /** Builds the error. */
  constructor(message: string) {
    super(message);
    this.name = "UserLimitError";
  }
}

/** The part of a VM the limits look at. */
export interface LimitedVm {
  /** The VM's id. */
  readonly id: number;
  /** Its definition. */
  readonly def: VmDefinition;
  /** Whether it is stopped. */
  readonly state: string;
}

/** The VMs that count against `uid`: the ones it created (not from vm.conf) and owns. */
export function userVms<T extends LimitedVm>(entries: readonly T[], uid: number): T[] {
  return entries.filter((e) => !e.def.fromConfig && e.def.owner.uid === uid);
}

const gib = (bytes: number) => `${Math.round(bytes / 2 ** 30 * 10) / 10} GiB`;

/**
 * Checks that `uid` may run `def` (a new VM, or one of its stopped ones: `self`) beside its other running
 * VMs; throws {@link UserLimitError}. Root is never limited.
 */
export function checkRunLimits(
  entries: readonly LimitedVm[],
  uid: number,
  def: VmDefinition,
  self: LimitedVm | null,
  limits: UserLimits = DEFAULT_USER_LIMITS,
): void {
  if (uid === 0) return;
  const running = userVms(entries, uid).filter((e) => e !== self && e.state !== "stopped");
  const memory = running.reduce((n, e) => n + e.def.memory, def.memory);
  if (memory > limits.memory) {
    throw new UserLimitError(
      `uid ${uid} may run vms of at most ${gib(limits.memory)} in all; this one would make ${gib(memory)}: ` +
        `stop one of yours or ask for less memory`,
    );
  }
  const cpus = running.reduce((n, e) => n + e.def.cpus, def.cpus);
  if (cpus > limits.cpus) {
    throw new UserLimitError(
      `uid ${uid} may run vms of at most ${limits.cpus} vCPUs in all; this one would make ${cpus}: ` +
        `stop one of yours first`,
    );
  }
}

/**
 * Makes room for one more VM of `uid`: when it has the most it may have, its oldest stopped VMs are
 * forgotten (returned, to be removed); when all of them run, throws {@link UserLimitError}.
 */
export function roomForOneMore<T extends LimitedVm>(
  entries: readonly T[],
  uid: number,
  limits: UserLimits = DEFAULT_USER_LIMITS,
): T[] {
  if (uid === 0) return [];
  const mine = userVms(entries, uid);
  const excess = mine.length + 1 - limits.vms;
  if (excess <= 0) return [];
  const stopped = mine.filter((e) => e.state === "stopped").sort((a, b) => a.id - b.id);
  if (stopped.length < excess) {
    throw new UserLimitError(
      `uid ${uid} has ${mine.length} vms, the most a user may have; stop one of yours with vmctl stop ` +
        `(stopped ones are forgotten to make room)`,
    );
  }
  return stopped.slice(0, excess);
}
