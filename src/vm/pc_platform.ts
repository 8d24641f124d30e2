/**
 * The pc platform's KVM side, which no VM's configuration changes: the KVM VM (with its TSS and identity-map
 * addresses), the in-kernel irqchip and PIT, and PVM's PIT set-up. `Vm.create` builds it, or takes one
 * built ahead by {@link prepareVmPlatform} (the daemon's warm pool: its kernel-side waits are then over
 * before a VM is asked for).
 *
 * @module
 */
import { Kvm, type VmFd } from "../../ffi/kvm.ts";
import type { KvmCpuidEntry2 } from "../../ffi/kvm_structs.ts";
import { KVM_CAP, KVM_PIT_SPEAKER_DUMMY } from "../../ffi/kvm_ioctls.ts";
import { openLibc } from "../../ffi/libc.ts";
import { detectPvm, type PvmDetection } from "./pvm.ts";

/** KVM's TSS pages (Intel), just below the BIOS area as QEMU and Firecracker place them. */
export const KVM_TSS_ADDR = 0xfffb_d000;
/** KVM's identity-map page (Intel). */
export const KVM_IDENTITY_MAP_ADDR = 0xfffb_c000n;

/** KVM_CREATE_VM with the TSS and identity-map addresses set (the same for every VM). */
export function createVmFd(kvm: Kvm): VmFd {
  for (const cap of ["KVM_CAP_USER_MEMORY", "KVM_CAP_SET_TSS_ADDR"] as const) {
    if (kvm.checkExtension(KVM_CAP[cap]) === 0) throw new Error(`KVM lacks ${cap}`);
  }
  const fd = kvm.createVm();
  try {
    fd.setTssAddr(KVM_TSS_ADDR);
    fd.setIdentityMapAddr(KVM_IDENTITY_MAP_ADDR);
    return fd;
  } catch (e) {
    fd.close();
    throw e;
  }
}

/**
 * The pc platform's in-kernel devices: the irqchip (PIC, IOAPIC, local APICs) and the PIT. Resolves (to its
 * error, if it failed) once the PIT's set-up that runs in the background is done; spawn() awaits it.
 */
export function createPcDevices(kvm: Kvm, fd: VmFd, pvm: PvmDetection): Promise<Error | undefined> {
  for (const cap of ["KVM_CAP_IRQCHIP", "KVM_CAP_PIT2"] as const) {
    if (kvm.checkExtension(KVM_CAP[cap]) === 0) throw new Error(`KVM lacks ${cap}`);
  }
  fd.createIrqchip();
  fd.createPit2(KVM_PIT_SPEAKER_DUMMY);
  // On PVM a tick can take the guest longer than the tick period: queued ticks would then be all it
  // runs (docs/pvm.md). Dropped ticks cost nothing: Linux keeps time with kvmclock, not by counting them.
  // The call sleeps in the kernel for ~15 ms (an SRCU grace period): it runs in the background.
  if (pvm.pvm && kvm.checkExtension(KVM_CAP.KVM_CAP_REINJECT_CONTROL) !== 0) {
    return fd.reinjectControl(false).then(() => undefined, (e: Error) => e);
  }
  return Promise.resolve(undefined);
}

/** A pc platform created ahead of its VM: what no VM's configuration changes. */
export interface PreparedPlatform {
  /** The KVM device path it was created through (undefined: the default). */
  readonly kvmPath: string | undefined;
  /** The KVM system fd. */
  readonly kvm: Kvm;
  /** The VM fd, with irqchip and PIT. */
  readonly fd: VmFd;
  /** Whether the host is PVM. */
  readonly pvm: PvmDetection;
  /** The PIT's set-up running in the background: resolves to its error, or undefined. */
  readonly pitSetUp: Promise<Error | undefined>;
  /** KVM's supported CPUID (host-wide; 2 ms to ask and decode in a fresh process, measured). */
  readonly supportedCpuid: KvmCpuidEntry2[];
}

let preparedPlatform: PreparedPlatform | undefined;

/**
 * Creates, ahead of a VM, what every pc VM of this host has: the KVM VM (TSS and identity map), its irqchip
 * and PIT, and PVM's PIT set-up, whose kernel-side waits are then over before a VM is asked for; and asks
 * KVM for its supported CPUID. The next
 * `Vm.create` of a pc VM (without a `pvm` override) takes it; a VM process of the daemon's warm pool
 * calls this while it waits. It holds no guest memory, vCPU or device of any VM. Returns the prepared VM
 * fd's number (the fd the next such VM gets as `Vm.fd`).
 */
export function prepareVmPlatform(kvmPath?: string): number {
  if (preparedPlatform !== undefined) return preparedPlatform.fd.fd;
  const libc = openLibc();
  const kvm = Kvm.open(kvmPath, libc);
  try {
    const pvm = detectPvm(kvm);
    const fd = createVmFd(kvm);
    try {
      const pitSetUp = createPcDevices(kvm, fd, pvm);
      preparedPlatform = { kvmPath, kvm, fd, pvm, pitSetUp, supportedCpuid: kvm.supportedCpuid() };
      return fd.fd;
    } catch (e) {
      fd.close();
      throw e;
    }
  } catch (e) {
    kvm.close();
    throw e;
  }
}

/** The prepared platform, if there is one for `kvmPath` (it is then no longer prepared). */
export function takePreparedPlatform(kvmPath: string | undefined): PreparedPlatform | undefined {
  const p = preparedPlatform;
  if (p === undefined || p.kvmPath !== kvmPath) return undefined;
  preparedPlatform = undefined;
  return p;
}
