/**
 * KVM's argument structs as layouts with the kernel's field names and sizes, and TypeScript views of their
 * decoded values.
 *
 * @module
 */
import { StructLayout } from "./struct.ts";

/** struct kvm_userspace_memory_region. */
export const kvm_userspace_memory_region = new StructLayout("kvm_userspace_memory_region", 32, [
  ["slot", "u32"],
  ["flags", "u32"],
  ["guest_phys_addr", "u64"],
  ["memory_size", "u64"],
  ["userspace_addr", "u64"],
]);

/** struct kvm_regs (x86). */
export const kvm_regs = new StructLayout("kvm_regs", 144, [
  ["rax", "u64"],
  ["rbx", "u64"],
  ["rcx", "u64"],
  ["rdx", "u64"],
  ["rsi", "u64"],
  ["rdi", "u64"],
  ["rsp", "u64"],
  ["rbp", "u64"],
  ["r8", "u64"],
  ["r9", "u64"],
  ["r10", "u64"],
  ["r11", "u64"],
  ["r12", "u64"],
  ["r13", "u64"],
  ["r14", "u64"],
  ["r15", "u64"],
  ["rip", "u64"],
  ["rflags", "u64"],
]);

/** General-purpose registers (decoded struct kvm_regs). */
export interface KvmRegs {
  rax: bigint;
  rbx: bigint;
  rcx: bigint;
  rdx: bigint;
  rsi: bigint;
  rdi: bigint;
  rsp: bigint;
  rbp: bigint;
  r8: bigint;
  r9: bigint;
  r10: bigint;
  r11: bigint;
  r12: bigint;
  r13: bigint;
  r14: bigint;
  r15: bigint;
  rip: bigint;
  rflags: bigint;
}

/** struct kvm_segment. */
export const kvm_segment = new StructLayout("kvm_segment", 24, [
  ["base", "u64"],
  ["limit", "u32"],
  ["selector", "u16"],
  ["type", "u8"],
  ["present", "u8"],
  ["dpl", "u8"],
  ["db", "u8"],
  ["s", "u8"],
  ["l", "u8"],
  ["g", "u8"],
  ["avl", "u8"],
  ["unusable", "u8"],
  ["padding", "u8"],
]);

/** A segment register (decoded struct kvm_segment). */
export interface KvmSegment {
  base: bigint;
  limit: number;
  selector: number;
  type: number;
  present: number;
  dpl: number;
  db: number;
  s: number;
  l: number;
  g: number;
  avl: number;
  unusable: number;
  padding?: number;
}

/** struct kvm_dtable. */
export const kvm_dtable = new StructLayout("kvm_dtable", 16, [
  ["base", "u64"],
  ["limit", "u16"],
  ["padding", { of: "u16", length: 3 }],
]);

/** A descriptor-table register (decoded struct kvm_dtable). */
export interface KvmDtable {
  base: bigint;
  limit: number;
  padding?: number[];
}

/** struct kvm_sregs (x86). */
export const kvm_sregs = new StructLayout("kvm_sregs", 312, [
  ["cs", kvm_segment],
  ["ds", kvm_segment],
  ["es", kvm_segment],
  ["fs", kvm_segment],
  ["gs", kvm_segment],
  ["ss", kvm_segment],
  ["tr", kvm_segment],
  ["ldt", kvm_segment],
  ["gdt", kvm_dtable],
  ["idt", kvm_dtable],
  ["cr0", "u64"],
  ["cr2", "u64"],
  ["cr3", "u64"],
  ["cr4", "u64"],
  ["cr8", "u64"],
  ["efer", "u64"],
  ["apic_base", "u64"],
  ["interrupt_bitmap", { of: "u64", length: 4 }],
]);

/** Special registers (decoded struct kvm_sregs). */
export interface KvmSregs {
  cs: KvmSegment;
  ds: KvmSegment;
  es: KvmSegment;
  fs: KvmSegment;
  gs: KvmSegment;
  ss: KvmSegment;
  tr: KvmSegment;
  ldt: KvmSegment;
  gdt: KvmDtable;
  idt: KvmDtable;
  cr0: bigint;
  cr2: bigint;
  cr3: bigint;
  cr4: bigint;
  cr8: bigint;
  efer: bigint;
  apic_base: bigint;
  interrupt_bitmap: bigint[];
}

/** struct kvm_fpu (x86). */
export const kvm_fpu = new StructLayout("kvm_fpu", 416, [
  ["fpr", { of: "u8", length: 128 }],
  ["fcw", "u16"],
  ["fsw", "u16"],
  ["ftwx", "u8"],
  ["pad1", "u8"],
  ["last_opcode", "u16"],
  ["last_ip", "u64"],
  ["last_dp", "u64"],
  ["xmm", { of: "u8", length: 256 }],
  ["mxcsr", "u32"],
  ["pad2", "u32"],
]);

/** FPU state (decoded struct kvm_fpu). */
export interface KvmFpu {
  fpr: number[];
  fcw: number;
  fsw: number;
  ftwx: number;
  last_opcode: number;
  last_ip: bigint;
  last_dp: bigint;
  xmm: number[];
  mxcsr: number;
}

/** struct kvm_msr_entry. */
export const kvm_msr_entry = new StructLayout("kvm_msr_entry", 16, [
  ["index", "u32"],
  ["reserved", "u32"],
  ["data", "u64"],
]);

/** One MSR (decoded struct kvm_msr_entry). */
export interface KvmMsrEntry {
  index: number;
  data: bigint;
}

/** The fixed header of struct kvm_msrs; `entries[nmsrs]` follow it. */
export const kvm_msrs = new StructLayout("kvm_msrs", 8, [
  ["nmsrs", "u32"],
  ["pad", "u32"],
]);

/** struct kvm_cpuid_entry2. */
export const kvm_cpuid_entry2 = new StructLayout("kvm_cpuid_entry2", 40, [
  ["function", "u32"],
  ["index", "u32"],
  ["flags", "u32"],
  ["eax", "u32"],
  ["ebx", "u32"],
  ["ecx", "u32"],
  ["edx", "u32"],
  ["padding", { of: "u32", length: 3 }],
]);

/** One CPUID leaf (decoded struct kvm_cpuid_entry2). */
export interface KvmCpuidEntry2 {
  function: number;
  index: number;
  flags: number;
  eax: number;
  ebx: number;
  ecx: number;
  edx: number;
}

/** The fixed header of struct kvm_cpuid2; `entries[nent]` follow it. */
export const kvm_cpuid2 = new StructLayout("kvm_cpuid2", 8, [
  ["nent", "u32"],
  ["padding", "u32"],
]);

/** struct kvm_pit_config. */
export const kvm_pit_config = new StructLayout("kvm_pit_config", 64, [
  ["flags", "u32"],
  ["pad", { of: "u32", length: 15 }],
]);

/** struct kvm_irq_level. */
export const kvm_irq_level = new StructLayout("kvm_irq_level", 8, [
  ["irq", "u32"],
  ["level", "u32"],
]);

/** struct kvm_irqfd. */
export const kvm_irqfd = new StructLayout("kvm_irqfd", 32, [
  ["fd", "u32"],
  ["gsi", "u32"],
  ["flags", "u32"],
  ["resamplefd", "u32"],
  ["pad", { of: "u8", length: 16 }],
]);

/** struct kvm_ioeventfd. */
export const kvm_ioeventfd = new StructLayout("kvm_ioeventfd", 64, [
  ["datamatch", "u64"],
  ["addr", "u64"],
  ["len", "u32"],
  ["fd", "i32"],
  ["flags", "u32"],
  ["pad", { of: "u8", length: 36 }],
]);

/** struct kvm_lapic_state: the local APIC's 1 KiB register page. */
export const KVM_APIC_REG_SIZE = 0x400;

/** struct kvm_vcpu_events (x86). */
export const kvm_vcpu_events = new StructLayout("kvm_vcpu_events", 64, [
  ["exception_injected", "u8"],
  ["exception_nr", "u8"],
  ["exception_has_error_code", "u8"],
  ["exception_pending", "u8"],
  ["exception_error_code", "u32"],
  ["interrupt_injected", "u8"],
  ["interrupt_nr", "u8"],
  ["interrupt_soft", "u8"],
  ["interrupt_shadow", "u8"],
  ["nmi_injected", "u8"],
  ["nmi_pending", "u8"],
  ["nmi_masked", "u8"],
  ["nmi_pad", "u8"],
  ["sipi_vector", "u32"],
  ["flags", "u32"],
  ["smi_smm", "u8"],
  ["smi_pending", "u8"],
  ["smi_smm_inside_nmi", "u8"],
  ["smi_latched_init", "u8"],
  ["triple_fault_pending", "u8"],
  ["reserved", { of: "u8", length: 26 }],
  ["exception_has_payload", "u8"],
  ["exception_payload", "u64"],
]);

/**
 * Pending exception/interrupt/NMI state (decoded struct kvm_vcpu_events; the kernel's nested
 * `exception.injected` is flattened to `exception_injected`, and so on).
 */
export interface KvmVcpuEvents {
  exception_injected: number;
  exception_nr: number;
  exception_has_error_code: number;
  exception_pending: number;
  exception_error_code: number;
  interrupt_injected: number;
  interrupt_nr: number;
  interrupt_soft: number;
  interrupt_shadow: number;
  nmi_injected: number;
  nmi_pending: number;
  nmi_masked: number;
  sipi_vector: number;
  flags: number;
  smi_smm: number;
  smi_pending: number;
  smi_smm_inside_nmi: number;
  smi_latched_init: number;
  triple_fault_pending: number;
  exception_has_payload: number;
  exception_payload: bigint;
}

/** Byte offsets of the struct kvm_run fields the exit loop reads (the union starts at 32). */
export const KVM_RUN_OFFSETS = {
  request_interrupt_window: 0,
  immediate_exit: 1,
  exit_reason: 8,
  ready_for_interrupt_injection: 12,
  if_flag: 13,
  flags: 14,
  cr8: 16,
  apic_base: 24,
  // union: struct { __u8 direction; __u8 size; __u16 port; __u32 count; __u64 data_offset; } io;
  io_direction: 32,
  io_size: 33,
  io_port: 34,
  io_count: 36,
  io_data_offset: 40,
  // union: struct { __u64 phys_addr; __u8 data[8]; __u32 len; __u8 is_write; } mmio;
  mmio_phys_addr: 32,
  mmio_data: 40,
  mmio_len: 48,
  mmio_is_write: 52,
  // union: struct { __u64 hardware_entry_failure_reason; __u32 cpu; } fail_entry;
  fail_entry_hardware_entry_failure_reason: 32,
  fail_entry_cpu: 40,
  // union: struct { __u32 suberror; __u32 ndata; __u64 data[16]; } internal;
  internal_suberror: 32,
  internal_ndata: 36,
  internal_data: 40,
  // union: struct { __u32 type; __u32 ndata; __u64 data[16]; } system_event;
  system_event_type: 32,
  // union: struct { __u32 exception; __u32 error_code; } ex;
  ex_exception: 32,
  ex_error_code: 36,
} as const;
