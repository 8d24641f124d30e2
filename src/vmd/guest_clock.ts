/**
 * Pause without a jump in guest time: the guest's kvmclock (what a Linux guest on KVM keeps time with) is read
 * when the vCPUs have stopped and written back before they run again, so a paused guest resumes where it
 * left off instead of seeing the pause as lost time.
 *
 * @module
 */
import type { Vm } from "../vm/vm.ts";

/** Pauses every vCPU and returns the kvmclock value to resume with. */
export async function pauseKeepingClock(vm: Vm): Promise<bigint> {
  await vm.pause();
  return vm.fd.getClock();
}

/** Restores the kvmclock saved by {@link pauseKeepingClock} and resumes every vCPU. */
export async function resumeKeepingClock(vm: Vm, clock: bigint): Promise<void> {
  vm.fd.setClock(clock);
  await vm.resume();
}
