/**
 * The KVM API as three classes, one method per ioctl: {@link Kvm} (/dev/kvm), {@link VmFd} (a VM) and
 * {@link VcpuFd} (a vCPU), plus {@link KvmRun}, the vCPU's shared `struct kvm_run` page.
 *
 * @module
 */
import { lastError } from "./errno.ts";
import { type Libc, openLibc } from "./libc.ts";
import { EINTR, errno } from "./errno.ts";
import {
  ioctlName,
  KVM,
  KVM_API_VERSION,
  KVM_IOEVENTFD_FLAG,
  KVM_IRQFD_FLAG_DEASSIGN,
} from "./kvm_ioctls.ts";
import {
  KVM_APIC_REG_SIZE,
  kvm_cpuid2,
  kvm_cpuid_entry2,
  kvm_fpu,
  kvm_ioeventfd,
  kvm_irq_level,
  kvm_irqfd,
  kvm_msi,
  kvm_msr_entry,
  kvm_msrs,
  kvm_pit_config,
  kvm_regs,
  kvm_reinject_control,
  kvm_sregs,
  kvm_userspace_memory_region,
  kvm_vcpu_events,
  type KvmCpuidEntry2,
  type KvmFpu,
  type KvmMsrEntry,
  type KvmRegs,
  type KvmSregs,
  type KvmVcpuEvents,
} from "./kvm_structs.ts";
import { KvmRun } from "./kvm_run.ts";
import { cString, O_CLOEXEC, O_RDWR } from "./fd.ts";

export { KvmRun, type KvmRunShare } from "./kvm_run.ts";

/** The conventional path of the KVM device. */
export const KVM_DEVICE = "/dev/kvm";

/** Shared plumbing: an fd and ioctl wrappers that turn -1 into an {@link ErrnoError}. */
export abstract class IoctlFd {
  /** The file descriptor. */
  readonly fd: number;
  /** This thread's libc. */
  protected readonly libc: Libc;
  #closed = false;

  /** Wraps `fd`; subclasses add the ioctls. */
  protected constructor(fd: number, libc: Libc) {
    this.fd = fd;
    this.libc = libc;
  }

  /** ioctl with an integer argument; retries on EINTR; returns the non-negative result. */
  protected ioctlValue(request: bigint, arg: bigint = 0n): number {
    for (;;) {
      const r = this.libc.ioctl(this.fd, request, arg);
      if (r >= 0) return r;
      if (errno(this.libc) !== EINTR) throw lastError(`ioctl(${ioctlName(request)})`, this.libc);
    }
  }

  /** ioctl with a pointer to `buf`; retries on EINTR; returns the non-negative result. */
  protected ioctlBuffer(request: bigint, buf: Uint8Array<ArrayBuffer>): number {
    for (;;) {
      const r = this.libc.ioctl_ptr(this.fd, request, buf);
      if (r >= 0) return r;
      if (errno(this.libc) !== EINTR) throw lastError(`ioctl(${ioctlName(request)})`, this.libc);
    }
  }

  /**
   * ioctl with a pointer to `buf`, run on a thread of Deno's blocking pool while this thread goes on: for
   * ioctls that sleep in the kernel. errno belongs to that other thread, so a failure is retried here
   * synchronously, which reports the real error (or, if it now succeeds, returns that result).
   */
  protected async ioctlBufferInBackground(request: bigint, buf: Uint8Array<ArrayBuffer>): Promise<number> {
    const r = await this.libc.ioctl_ptr_blocking(this.fd, request, buf);
    return r >= 0 ? r : this.ioctlBuffer(request, buf);
  }

  /** Closes the fd (idempotent). */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.libc.close(this.fd);
  }
}

/** An open `/dev/kvm`: the system ioctls. */
export class Kvm extends IoctlFd {
  private constructor(fd: number, libc: Libc) {
    super(fd, libc);
  }

  /** Opens `/dev/kvm` (or `path`) and checks the API version is 12. */
  static open(path: string = KVM_DEVICE, libc: Libc = openLibc()): Kvm {
    const fd = libc.open(cString(path), O_RDWR | O_CLOEXEC, 0);
    if (fd < 0) throw lastError(`open(${path})`, libc);
    const kvm = new Kvm(fd, libc);
    const version = kvm.apiVersion();
    if (version !== KVM_API_VERSION) {
      kvm.close();
      throw new Error(`${path}: KVM API version ${version}, vmd needs ${KVM_API_VERSION}`);
    }
    return kvm;
  }

  /** KVM_GET_API_VERSION. */
  apiVersion(): number {
    return this.ioctlValue(KVM.KVM_GET_API_VERSION);
  }

  /** KVM_CHECK_EXTENSION on the system fd: 0 when absent, else a capability-specific positive value. */
  checkExtension(cap: number): number {
    return this.ioctlValue(KVM.KVM_CHECK_EXTENSION, BigInt(cap));
  }

  /** KVM_GET_VCPU_MMAP_SIZE: the size of each vCPU's kvm_run mapping. */
  vcpuMmapSize(): number {
    return this.ioctlValue(KVM.KVM_GET_VCPU_MMAP_SIZE);
  }

  /** KVM_GET_SUPPORTED_CPUID: the CPUID leaves KVM can present to a guest. */
  supportedCpuid(): KvmCpuidEntry2[] {
    for (let max = 128;; max *= 2) {
      const buf = new Uint8Array(kvm_cpuid2.size + max * kvm_cpuid_entry2.size);
      const view = new DataView(buf.buffer);
      kvm_cpuid2.encode({ nent: max }, view);
      const r = this.libc.ioctl_ptr(this.fd, KVM.KVM_GET_SUPPORTED_CPUID, buf);
      if (r < 0) {
        if (errno(this.libc) === 7 /* E2BIG */ && max < 4096) continue;
        throw lastError("ioctl(KVM_GET_SUPPORTED_CPUID)", this.libc);
      }
      const nent = view.getUint32(0, true);
      return Array.from({ length: nent }, (_, i) => {
        const e = kvm_cpuid_entry2.decode<KvmCpuidEntry2 & { padding?: number[] }>(
          view,
          kvm_cpuid2.size + i * kvm_cpuid_entry2.size,
        );
        delete e.padding;
        return e;
      });
    }
  }

  /** KVM_CREATE_VM: a new VM of the default type. */
  createVm(): VmFd {
    return VmFd.adopt(this.ioctlValue(KVM.KVM_CREATE_VM, 0n), this.libc);
  }
}

/** A VM file descriptor: the VM-wide ioctls. */
export class VmFd extends IoctlFd {
  private constructor(fd: number, libc: Libc) {
    super(fd, libc);
  }

  /** Wraps an fd returned by KVM_CREATE_VM (or passed from another thread of this process). */
  static adopt(fd: number, libc: Libc = openLibc()): VmFd {
    return new VmFd(fd, libc);
  }

  /** KVM_CHECK_EXTENSION on the VM fd. */
  checkExtension(cap: number): number {
    return this.ioctlValue(KVM.KVM_CHECK_EXTENSION, BigInt(cap));
  }

  /** KVM_SET_USER_MEMORY_REGION: maps `size` bytes at host address `hostAddress` to guest address `gpa`. */
  setUserMemoryRegion(slot: number, gpa: bigint, size: bigint, hostAddress: bigint, flags = 0): void {
    this.ioctlBuffer(
      KVM.KVM_SET_USER_MEMORY_REGION,
      kvm_userspace_memory_region.toBytes({
        slot,
        flags,
        guest_phys_addr: gpa,
        memory_size: size,
        userspace_addr: hostAddress,
      }),
    );
  }

  /** KVM_GET_CLOCK: the guest's kvmclock in nanoseconds (struct kvm_clock_data's first field). */
  getClock(): bigint {
    // struct kvm_clock_data { __u64 clock; __u32 flags; __u32 pad0; __u64 realtime; __u64 host_tsc; __u32 pad[4]; }
    const buf = new Uint8Array(48);
    this.ioctlBuffer(KVM.KVM_GET_CLOCK, buf);
    return new DataView(buf.buffer).getBigUint64(0, true);
  }

  /** KVM_SET_CLOCK: sets the guest's kvmclock to `ns` nanoseconds (flags 0: no realtime adjustment). */
  setClock(ns: bigint): void {
    const buf = new Uint8Array(48);
    new DataView(buf.buffer).setBigUint64(0, ns, true);
    this.ioctlBuffer(KVM.KVM_SET_CLOCK, buf);
  }

  /** KVM_SET_TSS_ADDR: three pages of guest-physical space KVM needs on Intel. */
  setTssAddr(addr: number): void {
    this.ioctlValue(KVM.KVM_SET_TSS_ADDR, BigInt(addr));
  }

  /** KVM_SET_IDENTITY_MAP_ADDR: one page of guest-physical space for the real-mode identity map (Intel). */
  setIdentityMapAddr(addr: bigint): void {
    const buf = new Uint8Array(8);
    new DataView(buf.buffer).setBigUint64(0, addr, true);
    this.ioctlBuffer(KVM.KVM_SET_IDENTITY_MAP_ADDR, buf);
  }

  /** KVM_CREATE_IRQCHIP: in-kernel PIC, IOAPIC and local APICs. */
  createIrqchip(): void {
    this.ioctlValue(KVM.KVM_CREATE_IRQCHIP);
  }

  /** KVM_CREATE_PIT2: the in-kernel i8254 timer. */
  createPit2(flags = 0): void {
    this.ioctlBuffer(KVM.KVM_CREATE_PIT2, kvm_pit_config.toBytes({ flags }));
  }

  /**
   * KVM_REINJECT_CONTROL: whether the in-kernel PIT (after {@link createPit2}) queues the ticks a guest has
   * not taken and delivers them later (`true`, KVM's default) or drops them (`false`). Turning it off waits
   * for an SRCU grace period in the kernel (~15 ms measured), so the call runs in the background: the caller
   * awaits it before the first KVM_RUN.
   */
  async reinjectControl(pitReinject: boolean): Promise<void> {
    await this.ioctlBufferInBackground(
      KVM.KVM_REINJECT_CONTROL,
      kvm_reinject_control.toBytes({ pit_reinject: pitReinject ? 1 : 0 }),
    );
  }

  /** KVM_IRQ_LINE: drives interrupt line `irq` (a GSI) to `level`. */
  irqLine(irq: number, level: 0 | 1): void {
    this.ioctlBuffer(KVM.KVM_IRQ_LINE, kvm_irq_level.toBytes({ irq, level }));
  }

  /** KVM_SIGNAL_MSI: delivers one message-signalled interrupt (address, data) through the in-kernel APIC. */
  signalMsi(addressLo: number, addressHi: number, data: number): void {
    this.ioctlBuffer(
      KVM.KVM_SIGNAL_MSI,
      kvm_msi.toBytes({ address_lo: addressLo >>> 0, address_hi: addressHi >>> 0, data: data >>> 0 }),
    );
  }

  /** KVM_IRQFD: a write to eventfd `fd` raises `gsi` (or detaches it with `deassign`). */
  irqfd(fd: number, gsi: number, deassign = false): void {
    this.ioctlBuffer(
      KVM.KVM_IRQFD,
      kvm_irqfd.toBytes({ fd, gsi, flags: deassign ? KVM_IRQFD_FLAG_DEASSIGN : 0 }),
    );
  }

  /**
   * KVM_IOEVENTFD: a guest write of `len` bytes to `addr` (port I/O when `pio`) signals eventfd `fd` without
   * an exit to user space; with `datamatch` only writes of that value do.
   */
  ioeventfd(
    addr: bigint,
    len: number,
    fd: number,
    options: { pio?: boolean; datamatch?: bigint; deassign?: boolean } = {},
  ): void {
    let flags = 0;
    if (options.pio) flags |= KVM_IOEVENTFD_FLAG.KVM_IOEVENTFD_FLAG_PIO;
    if (options.datamatch !== undefined) flags |= KVM_IOEVENTFD_FLAG.KVM_IOEVENTFD_FLAG_DATAMATCH;
    if (options.deassign) flags |= KVM_IOEVENTFD_FLAG.KVM_IOEVENTFD_FLAG_DEASSIGN;
    this.ioctlBuffer(
      KVM.KVM_IOEVENTFD,
      kvm_ioeventfd.toBytes({ datamatch: options.datamatch ?? 0n, addr, len, fd, flags }),
    );
  }

  /** KVM_CREATE_VCPU: vCPU number `id`. */
  createVcpu(id: number): VcpuFd {
    return VcpuFd.adopt(this.ioctlValue(KVM.KVM_CREATE_VCPU, BigInt(id)), this.libc);
  }
}

/** A vCPU file descriptor: the per-vCPU ioctls. */
export class VcpuFd extends IoctlFd {
  private constructor(fd: number, libc: Libc) {
    super(fd, libc);
  }

  /** Wraps an fd returned by KVM_CREATE_VCPU (or passed from another thread of this process). */
  static adopt(fd: number, libc: Libc = openLibc()): VcpuFd {
    return new VcpuFd(fd, libc);
  }

  /**
   * KVM_RUN, for the hot path: returns 0, or the errno (EINTR when kicked). Allocation-free; never throws.
   */
  run(): number {
    return this.libc.ioctl(this.fd, KVM.KVM_RUN, 0n) < 0 ? errno(this.libc) : 0;
  }

  /**
   * Maps this vCPU's `struct kvm_run` (`size` from {@link Kvm.vcpuMmapSize}) over a SharedArrayBuffer
   * (main thread only; workers view it with `new KvmRun(share)`).
   */
  mapRun(size: number): KvmRun {
    return KvmRun.map(this.fd, size, this.libc);
  }

  /** KVM_GET_REGS. */
  getRegs(): KvmRegs {
    const buf = kvm_regs.alloc();
    this.ioctlBuffer(KVM.KVM_GET_REGS, buf);
    return kvm_regs.fromBytes<KvmRegs>(buf);
  }

  /** KVM_SET_REGS. */
  setRegs(regs: Partial<KvmRegs>): void {
    this.ioctlBuffer(KVM.KVM_SET_REGS, kvm_regs.toBytes(regs));
  }

  /** KVM_GET_SREGS. */
  getSregs(): KvmSregs {
    const buf = kvm_sregs.alloc();
    this.ioctlBuffer(KVM.KVM_GET_SREGS, buf);
    return kvm_sregs.fromBytes<KvmSregs>(buf);
  }

  /** KVM_SET_SREGS. */
  setSregs(sregs: KvmSregs): void {
    this.ioctlBuffer(KVM.KVM_SET_SREGS, kvm_sregs.toBytes(sregs));
  }

  /** KVM_GET_FPU. */
  getFpu(): KvmFpu {
    const buf = kvm_fpu.alloc();
    this.ioctlBuffer(KVM.KVM_GET_FPU, buf);
    return kvm_fpu.fromBytes<KvmFpu>(buf);
  }

  /** KVM_SET_FPU. */
  setFpu(fpu: Partial<KvmFpu>): void {
    this.ioctlBuffer(KVM.KVM_SET_FPU, kvm_fpu.toBytes(fpu));
  }

  /** KVM_GET_MSRS: reads the MSRs `indices`; returns the ones KVM could read. */
  getMsrs(indices: readonly number[]): KvmMsrEntry[] {
    const buf = msrBuffer(indices.map((index) => ({ index, data: 0n })));
    const n = this.ioctlBuffer(KVM.KVM_GET_MSRS, buf);
    const view = new DataView(buf.buffer);
    return Array.from({ length: n }, (_, i) => {
      const e = kvm_msr_entry.decode<KvmMsrEntry & { reserved?: number }>(view, kvm_msrs.size + i * 16);
      delete e.reserved;
      return e;
    });
  }

  /** KVM_SET_MSRS: writes `entries`; returns how many KVM accepted (it stops at the first it refuses). */
  setMsrs(entries: readonly KvmMsrEntry[]): number {
    return this.ioctlBuffer(KVM.KVM_SET_MSRS, msrBuffer(entries));
  }

  /** KVM_SET_CPUID2: the CPUID leaves this vCPU reports. */
  setCpuid2(entries: readonly KvmCpuidEntry2[]): void {
    const buf = new Uint8Array(kvm_cpuid2.size + entries.length * kvm_cpuid_entry2.size);
    const view = new DataView(buf.buffer);
    kvm_cpuid2.encode({ nent: entries.length }, view);
    entries.forEach((e, i) => kvm_cpuid_entry2.encode(e, view, kvm_cpuid2.size + i * kvm_cpuid_entry2.size));
    this.ioctlBuffer(KVM.KVM_SET_CPUID2, buf);
  }

  /** KVM_GET_LAPIC: the local APIC's register page (struct kvm_lapic_state). */
  getLapic(): Uint8Array<ArrayBuffer> {
    const buf = new Uint8Array(KVM_APIC_REG_SIZE);
    this.ioctlBuffer(KVM.KVM_GET_LAPIC, buf);
    return buf;
  }

  /** KVM_SET_LAPIC. */
  setLapic(regs: Uint8Array): void {
    if (regs.length !== KVM_APIC_REG_SIZE) throw new RangeError(`lapic state is ${KVM_APIC_REG_SIZE} bytes`);
    this.ioctlBuffer(KVM.KVM_SET_LAPIC, new Uint8Array(regs));
  }

  /** KVM_GET_VCPU_EVENTS. */
  getVcpuEvents(): KvmVcpuEvents {
    const buf = kvm_vcpu_events.alloc();
    this.ioctlBuffer(KVM.KVM_GET_VCPU_EVENTS, buf);
    const e = kvm_vcpu_events.fromBytes<KvmVcpuEvents & { reserved?: number[]; nmi_pad?: number }>(buf);
    delete e.reserved;
    delete e.nmi_pad;
    return e;
  }

  /** KVM_SET_VCPU_EVENTS. */
  setVcpuEvents(events: Partial<KvmVcpuEvents>): void {
    this.ioctlBuffer(KVM.KVM_SET_VCPU_EVENTS, kvm_vcpu_events.toBytes(events));
  }
}

function msrBuffer(entries: readonly KvmMsrEntry[]): Uint8Array<ArrayBuffer> {
  const buf = new Uint8Array(kvm_msrs.size + entries.length * kvm_msr_entry.size);
  const view = new DataView(buf.buffer);
  kvm_msrs.encode({ nmsrs: entries.length }, view);
  entries.forEach((e, i) => kvm_msr_entry.encode(e, view, kvm_msrs.size + i * kvm_msr_entry.size));
  return buf;
}
