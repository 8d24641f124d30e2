/**
 * KVM's ioctl numbers, exit reasons and capabilities, as data with the kernel's names
 * (include/uapi/linux/kvm.h and arch/x86/include/uapi/asm/kvm.h).
 *
 * @module
 */

const IOC_NONE = 0n;
const IOC_WRITE = 1n;
const IOC_READ = 2n;
/** KVM's ioctl type byte. */
export const KVMIO = 0xaen;

/** `_IOC(dir, type, nr, size)` from asm-generic/ioctl.h. */
export function ioc(dir: bigint, type: bigint, nr: number, size: number): bigint {
  return (dir << 30n) | (BigInt(size) << 16n) | (type << 8n) | BigInt(nr);
}
/** `_IO(type, nr)`. */
export const io = (nr: number): bigint => ioc(IOC_NONE, KVMIO, nr, 0);
/** `_IOR(type, nr, size)`. */
export const ior = (nr: number, size: number): bigint => ioc(IOC_READ, KVMIO, nr, size);
/** `_IOW(type, nr, size)`. */
export const iow = (nr: number, size: number): bigint => ioc(IOC_WRITE, KVMIO, nr, size);
/** `_IOWR(type, nr, size)`. */
export const iowr = (nr: number, size: number): bigint => ioc(IOC_READ | IOC_WRITE, KVMIO, nr, size);

/** The names of the ioctls vmd uses. */
export type KvmIoctlName =
  | "KVM_GET_API_VERSION"
  | "KVM_CREATE_VM"
  | "KVM_GET_MSR_INDEX_LIST"
  | "KVM_CHECK_EXTENSION"
  | "KVM_GET_VCPU_MMAP_SIZE"
  | "KVM_GET_SUPPORTED_CPUID"
  | "KVM_CREATE_VCPU"
  | "KVM_SET_USER_MEMORY_REGION"
  | "KVM_SET_TSS_ADDR"
  | "KVM_SET_IDENTITY_MAP_ADDR"
  | "KVM_CREATE_IRQCHIP"
  | "KVM_IRQ_LINE"
  | "KVM_IRQFD"
  | "KVM_SIGNAL_MSI"
  | "KVM_CREATE_PIT2"
  | "KVM_REINJECT_CONTROL"
  | "KVM_IOEVENTFD"
  | "KVM_GET_CLOCK"
  | "KVM_SET_CLOCK"
  | "KVM_RUN"
  | "KVM_GET_REGS"
  | "KVM_SET_REGS"
  | "KVM_GET_SREGS"
  | "KVM_SET_SREGS"
  | "KVM_GET_MSRS"
  | "KVM_SET_MSRS"
  | "KVM_GET_FPU"
  | "KVM_SET_FPU"
  | "KVM_GET_LAPIC"
  | "KVM_SET_LAPIC"
  | "KVM_SET_CPUID2"
  | "KVM_GET_VCPU_EVENTS"
  | "KVM_SET_VCPU_EVENTS";

/** ioctl request numbers, named as in the kernel; sizes are those of the argument structs. */
export const KVM: Readonly<Record<KvmIoctlName, bigint>> = {
  // system ioctls (on /dev/kvm)
  KVM_GET_API_VERSION: io(0x00),
  KVM_CREATE_VM: io(0x01),
  KVM_GET_MSR_INDEX_LIST: iowr(0x02, 4),
  KVM_CHECK_EXTENSION: io(0x03),
  KVM_GET_VCPU_MMAP_SIZE: io(0x04),
  KVM_GET_SUPPORTED_CPUID: iowr(0x05, 8),
  // VM ioctls
  KVM_CREATE_VCPU: io(0x41),
  KVM_SET_USER_MEMORY_REGION: iow(0x46, 32),
  KVM_SET_TSS_ADDR: io(0x47),
  KVM_SET_IDENTITY_MAP_ADDR: iow(0x48, 8),
  KVM_CREATE_IRQCHIP: io(0x60),
  KVM_IRQ_LINE: iow(0x61, 8),
  KVM_IRQFD: iow(0x76, 32),
  KVM_CREATE_PIT2: iow(0x77, 64),
  // _IO although it takes a struct kvm_reinject_control pointer (as the kernel defines it)
  KVM_REINJECT_CONTROL: io(0x71),
  KVM_IOEVENTFD: iow(0x79, 64),
  KVM_SET_CLOCK: iow(0x7b, 48),
  KVM_GET_CLOCK: ior(0x7c, 48),
  KVM_SIGNAL_MSI: iow(0xa5, 32),
  // vCPU ioctls
  KVM_RUN: io(0x80),
  KVM_GET_REGS: ior(0x81, 144),
  KVM_SET_REGS: iow(0x82, 144),
  KVM_GET_SREGS: ior(0x83, 312),
  KVM_SET_SREGS: iow(0x84, 312),
  KVM_GET_MSRS: iowr(0x88, 8),
  KVM_SET_MSRS: iow(0x89, 8),
  KVM_GET_FPU: ior(0x8c, 416),
  KVM_SET_FPU: iow(0x8d, 416),
  KVM_GET_LAPIC: ior(0x8e, 1024),
  KVM_SET_LAPIC: iow(0x8f, 1024),
  KVM_SET_CPUID2: iow(0x90, 8),
  KVM_GET_VCPU_EVENTS: ior(0x9f, 64),
  KVM_SET_VCPU_EVENTS: iow(0xa0, 64),
} as const;

/** The name of an ioctl request number, for messages. */
export function ioctlName(request: bigint): string {
  for (const [name, value] of Object.entries(KVM)) if (value === request) return name;
  return `0x${request.toString(16)}`;
}

/** The API version every KVM since Linux 2.6.22 reports. */
export const KVM_API_VERSION = 12;

/** `kvm_run.exit_reason` values. */
export const KVM_EXIT = {
  KVM_EXIT_UNKNOWN: 0,
  KVM_EXIT_EXCEPTION: 1,
  KVM_EXIT_IO: 2,
  KVM_EXIT_HYPERCALL: 3,
  KVM_EXIT_DEBUG: 4,
  KVM_EXIT_HLT: 5,
  KVM_EXIT_MMIO: 6,
  KVM_EXIT_IRQ_WINDOW_OPEN: 7,
  KVM_EXIT_SHUTDOWN: 8,
  KVM_EXIT_FAIL_ENTRY: 9,
  KVM_EXIT_INTR: 10,
  KVM_EXIT_SET_TPR: 11,
  KVM_EXIT_TPR_ACCESS: 12,
  KVM_EXIT_NMI: 16,
  KVM_EXIT_INTERNAL_ERROR: 17,
  KVM_EXIT_OSI: 18,
  KVM_EXIT_WATCHDOG: 21,
  KVM_EXIT_EPR: 23,
  KVM_EXIT_SYSTEM_EVENT: 24,
  KVM_EXIT_IOAPIC_EOI: 26,
  KVM_EXIT_HYPERV: 27,
  KVM_EXIT_X86_RDMSR: 29,
  KVM_EXIT_X86_WRMSR: 30,
  KVM_EXIT_DIRTY_RING_FULL: 31,
  KVM_EXIT_AP_RESET_HOLD: 32,
  KVM_EXIT_X86_BUS_LOCK: 33,
  KVM_EXIT_NOTIFY: 37,
  KVM_EXIT_MEMORY_FAULT: 39,
} as const;

/** The name of an exit reason, for messages. */
export function exitReasonName(reason: number): string {
  for (const [name, value] of Object.entries(KVM_EXIT)) if (value === reason) return name;
  return `KVM_EXIT_${reason}`;
}

/** `kvm_run.io.direction`. */
export const KVM_EXIT_IO_IN = 0;
/** `kvm_run.io.direction`. */
export const KVM_EXIT_IO_OUT = 1;

/** `kvm_run.internal.suberror` values. */
export const KVM_INTERNAL_ERROR = {
  KVM_INTERNAL_ERROR_EMULATION: 1,
  KVM_INTERNAL_ERROR_SIMUL_EX: 2,
  KVM_INTERNAL_ERROR_DELIVERY_EV: 3,
  KVM_INTERNAL_ERROR_UNEXPECTED_EXIT_REASON: 4,
} as const;

/** `kvm_run.emulation_failure.flags`: bit 0 says `insn_size` and `insn_bytes` are valid. */
export const KVM_INTERNAL_ERROR_EMULATION_FLAG_INSTRUCTION_BYTES = 1n;
/** The most instruction bytes `kvm_run.emulation_failure` carries (an x86 instruction's maximum length). */
export const KVM_EMULATION_FAILURE_MAX_INSN = 15;

/** KVM_CHECK_EXTENSION capability numbers used by vmd. */
export const KVM_CAP = {
  KVM_CAP_IRQCHIP: 0,
  KVM_CAP_HLT: 1,
  KVM_CAP_USER_MEMORY: 3,
  KVM_CAP_SET_TSS_ADDR: 4,
  KVM_CAP_EXT_CPUID: 7,
  KVM_CAP_NR_VCPUS: 9,
  KVM_CAP_NR_MEMSLOTS: 10,
  KVM_CAP_PIT: 11,
  KVM_CAP_MP_STATE: 14,
  KVM_CAP_REINJECT_CONTROL: 24,
  KVM_CAP_IRQ_ROUTING: 25,
  KVM_CAP_IRQFD: 32,
  KVM_CAP_SIGNAL_MSI: 77,
  KVM_CAP_PIT2: 33,
  KVM_CAP_IOEVENTFD: 36,
  KVM_CAP_SET_IDENTITY_MAP_ADDR: 37,
  KVM_CAP_VCPU_EVENTS: 41,
  KVM_CAP_XSAVE: 55,
  KVM_CAP_MAX_VCPUS: 66,
  KVM_CAP_READONLY_MEM: 31,
  KVM_CAP_IMMEDIATE_EXIT: 136,
  KVM_CAP_NESTED_STATE: 157,
} as const;

/** `kvm_userspace_memory_region.flags` bits. */
export const KVM_MEM = {
  KVM_MEM_LOG_DIRTY_PAGES: 1 << 0,
  KVM_MEM_READONLY: 1 << 1,
} as const;

/** KVM_IRQFD flags. */
export const KVM_IRQFD_FLAG_DEASSIGN = 1 << 0;
/** KVM_IOEVENTFD flags. */
export const KVM_IOEVENTFD_FLAG = {
  KVM_IOEVENTFD_FLAG_DATAMATCH: 1 << 0,
  KVM_IOEVENTFD_FLAG_PIO: 1 << 1,
  KVM_IOEVENTFD_FLAG_DEASSIGN: 1 << 2,
} as const;
/** KVM_CREATE_PIT2 flag: the PIT speaker port is not emulated in the kernel. */
export const KVM_PIT_SPEAKER_DUMMY = 1;
