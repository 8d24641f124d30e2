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
  /** `rax` of the kernel struct. */
  rax: bigint;
  /** `rbx` of the kernel struct. */
  rbx: bigint;
  /** `rcx` of the kernel struct. */
  rcx: bigint;
  /** `rdx` of the kernel struct. */
  rdx: bigint;
  /** `rsi` of the kernel struct. */
  rsi: bigint;
  /** `rdi` of the kernel struct. */
  rdi: bigint;
  /** `rsp` of the kernel struct. */
  rsp: bigint;
  /** `rbp` of the kernel struct. */
  rbp: bigint;
  /** `r8` of the kernel struct. */
  r8: bigint;
  /** `r9` of the kernel struct. */
  r9: bigint;
  /** `r10` of the kernel struct. */
  r10: bigint;
  /** `r11` of the kernel struct. */
  r11: bigint;
  /** `r12` of the kernel struct. */
  r12: bigint;
  /** `r13` of the kernel struct. */
  r13: bigint;
  /** `r14` of the kernel struct. */
  r14: bigint;
  /** `r15` of the kernel struct. */
  r15: bigint;
  /** `rip` of the kernel struct. */
  rip: bigint;
  /** `rflags` of the kernel struct. */
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
  /** `base` of the kernel struct. */
  base: bigint;
  /** `limit` of the kernel struct. */
  limit: number;
  /** `selector` of the kernel struct. */
  selector: number;
  /** `type` of the kernel struct. */
  type: number;
  /** `present` of the kernel struct. */
  present: number;
  /** `dpl` of the kernel struct. */
  dpl: number;
  /** `db` of the kernel struct. */
  db: number;
  /** `s` of the kernel struct. */
  s: number;
  /** `l` of the kernel struct. */
  l: number;
  /** `g` of the kernel struct. */
  g: number;
  /** `avl` of the kernel struct. */
  avl: number;
  /** `unusable` of the kernel struct. */
  unusable: number;
  /** `padding` of the kernel struct. */
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
  /** `base` of the kernel struct. */
  base: bigint;
  /** `limit` of the kernel struct. */
  limit: number;
  /** `padding` of the kernel struct. */
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
  /** `cs` of the kernel struct. */
  cs: KvmSegment;
  /** `ds` of the kernel struct. */
  ds: KvmSegment;
  /** `es` of the kernel struct. */
  es: KvmSegment;
  /** `fs` of the kernel struct. */
  fs: KvmSegment;
  /** `gs` of the kernel struct. */
  gs: KvmSegment;
  /** `ss` of the kernel struct. */
  ss: KvmSegment;
  /** `tr` of the kernel struct. */
  tr: KvmSegment;
  /** `ldt` of the kernel struct. */
  ldt: KvmSegment;
  /** `gdt` of the kernel struct. */
  gdt: KvmDtable;
  /** `idt` of the kernel struct. */
  idt: KvmDtable;
  /** `cr0` of the kernel struct. */
  cr0: bigint;
  /** `cr2` of the kernel struct. */
  cr2: bigint;
  /** `cr3` of the kernel struct. */
  cr3: bigint;
  /** `cr4` of the kernel struct. */
  cr4: bigint;
  /** `cr8` of the kernel struct. */
  cr8: bigint;
  /** `efer` of the kernel struct. */
  efer: bigint;
  /** `apic_base` of the kernel struct. */
  apic_base: bigint;
  /** `interrupt_bitmap` of the kernel struct. */
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
  /** `fpr` of the kernel struct. */
  fpr: number[];
  /** `fcw` of the kernel struct. */
  fcw: number;
  /** `fsw` of the kernel struct. */
  fsw: number;
  /** `ftwx` of the kernel struct. */
  ftwx: number;
  /** `last_opcode` of the kernel struct. */
  last_opcode: number;
  /** `last_ip` of the kernel struct. */
  last_ip: bigint;
  /** `last_dp` of the kernel struct. */
  last_dp: bigint;
  /** `xmm` of the kernel struct. */
  xmm: number[];
  /** `mxcsr` of the kernel struct. */
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
  /** `index` of the kernel struct. */
  index: number;
  /** `data` of the kernel struct. */
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
  /** `function` of the kernel struct. */
  function: number;
  /** `index` of the kernel struct. */
  index: number;
  /** `flags` of the kernel struct. */
  flags: number;
  /** `eax` of the kernel struct. */
  eax: number;
  /** `ebx` of the kernel struct. */
  ebx: number;
  /** `ecx` of the kernel struct. */
  ecx: number;
  /** `edx` of the kernel struct. */
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

/** struct kvm_reinject_control: whether the in-kernel PIT re-delivers ticks the guest has not taken yet. */
export const kvm_reinject_control = new StructLayout("kvm_reinject_control", 32, [
  ["pit_reinject", "u8"],
  ["reserved", { of: "u8", length: 31 }],
]);

/** struct kvm_irq_level. */
export const kvm_irq_level = new StructLayout("kvm_irq_level", 8, [
  ["irq", "u32"],
  ["level", "u32"],
]);

/** struct kvm_msi (KVM_SIGNAL_MSI). */
export const kvm_msi = new StructLayout("kvm_msi", 32, [
  ["address_lo", "u32"],
  ["address_hi", "u32"],
  ["data", "u32"],
  ["flags", "u32"],
  ["devid", "u32"],
  ["pad", { of: "u8", length: 12 }],
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
  /** `exception_injected` of the kernel struct. */
  exception_injected: number;
  /** `exception_nr` of the kernel struct. */
  exception_nr: number;
  /** `exception_has_error_code` of the kernel struct. */
  exception_has_error_code: number;
  /** `exception_pending` of the kernel struct. */
  exception_pending: number;
  /** `exception_error_code` of the kernel struct. */
  exception_error_code: number;
  /** `interrupt_injected` of the kernel struct. */
  interrupt_injected: number;
  /** `interrupt_nr` of the kernel struct. */
  interrupt_nr: number;
  /** `interrupt_soft` of the kernel struct. */
  interrupt_soft: number;
  /** `interrupt_shadow` of the kernel struct. */
  interrupt_shadow: number;
  /** `nmi_injected` of the kernel struct. */
  nmi_injected: number;
  /** `nmi_pending` of the kernel struct. */
  nmi_pending: number;
  /** `nmi_masked` of the kernel struct. */
  nmi_masked: number;
  /** `sipi_vector` of the kernel struct. */
  sipi_vector: number;
  /** `flags` of the kernel struct. */
  flags: number;
  /** `smi_smm` of the kernel struct. */
  smi_smm: number;
  /** `smi_pending` of the kernel struct. */
  smi_pending: number;
  /** `smi_smm_inside_nmi` of the kernel struct. */
  smi_smm_inside_nmi: number;
  /** `smi_latched_init` of the kernel struct. */
  smi_latched_init: number;
  /** `triple_fault_pending` of the kernel struct. */
  triple_fault_pending: number;
  /** `exception_has_payload` of the kernel struct. */
  exception_has_payload: number;
  /** `exception_payload` of the kernel struct. */
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
  // union: struct { __u32 suberror; __u32 ndata; __u64 flags; __u8 insn_size; __u8 insn_bytes[15]; }
  // emulation_failure (KVM_EXIT_INTERNAL_ERROR with suberror KVM_INTERNAL_ERROR_EMULATION)
  emulation_failure_flags: 40,
  emulation_failure_insn_size: 48,
  emulation_failure_insn_bytes: 49,
  // union: struct { __u32 type; __u32 ndata; __u64 data[16]; } system_event;
  system_event_type: 32,
  // union: struct { __u32 exception; __u32 error_code; } ex;
  ex_exception: 32,
  ex_error_code: 36,
} as const;
