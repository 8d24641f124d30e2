/**
 * The per-vCPU state a PC guest expects at reset beyond registers: CPUID (KVM's supported leaves with the
 * hypervisor bit and this vCPU's APIC id), the MSRs a 64-bit kernel assumes (Firecracker and QEMU set the
 * same), and the local APIC's LINT0/LINT1 wired as ExtINT and NMI, as a BIOS leaves them.
 *
 * @module
 */
import type { VcpuFd } from "../../ffi/kvm.ts";
import type { KvmMsrEntry } from "../../ffi/kvm_structs.ts";

/** MSR numbers. */
export const MSR = {
  IA32_TSC: 0x10,
  IA32_SYSENTER_CS: 0x174,
  IA32_SYSENTER_ESP: 0x175,
  IA32_SYSENTER_EIP: 0x176,
  IA32_MISC_ENABLE: 0x1a0,
  MTRR_DEF_TYPE: 0x2ff,
  STAR: 0xc000_0081,
  LSTAR: 0xc000_0082,
  CSTAR: 0xc000_0083,
  SYSCALL_MASK: 0xc000_0084,
  KERNEL_GS_BASE: 0xc000_0102,
} as const;

const MISC_ENABLE_FAST_STRING = 1n;
const MTRR_ENABLE = 1n << 11n;
const MTRR_TYPE_WRBACK = 6n;

/** The boot MSRs: syscall/sysenter state cleared, TSC at 0, fast strings on, MTRRs on with write-back default. */
export function bootMsrs(): KvmMsrEntry[] {
  return [
    { index: MSR.IA32_SYSENTER_CS, data: 0n },
    { index: MSR.IA32_SYSENTER_ESP, data: 0n },
    { index: MSR.IA32_SYSENTER_EIP, data: 0n },
    { index: MSR.STAR, data: 0n },
    { index: MSR.CSTAR, data: 0n },
    { index: MSR.KERNEL_GS_BASE, data: 0n },
    { index: MSR.SYSCALL_MASK, data: 0n },
    { index: MSR.LSTAR, data: 0n },
    { index: MSR.IA32_TSC, data: 0n },
    { index: MSR.IA32_MISC_ENABLE, data: MISC_ENABLE_FAST_STRING },
    { index: MSR.MTRR_DEF_TYPE, data: MTRR_ENABLE | MTRR_TYPE_WRBACK },
  ];
}

const APIC_LVT_LINT0 = 0x350;
const APIC_LVT_LINT1 = 0x360;
const APIC_MODE_NMI = 0x4;
const APIC_MODE_EXTINT = 0x7;

function setDeliveryMode(regs: Uint8Array, reg: number, mode: number): void {
  const v = new DataView(regs.buffer, regs.byteOffset, regs.byteLength);
  v.setUint32(reg, (v.getUint32(reg, true) & ~0x700) | (mode << 8), true);
}

/** Sets the boot MSRs and wires LINT0/LINT1 (needs the in-kernel irqchip for the LAPIC part). */
export function configurePcVcpu(vcpu: VcpuFd, irqchip: boolean): void {
  const msrs = bootMsrs();
  const set = vcpu.setMsrs(msrs);
  if (set !== msrs.length) throw new Error(`KVM refused MSR 0x${msrs[set].index.toString(16)} at boot`);
  if (irqchip) {
    const lapic = vcpu.getLapic();
    setDeliveryMode(lapic, APIC_LVT_LINT0, APIC_MODE_EXTINT);
    setDeliveryMode(lapic, APIC_LVT_LINT1, APIC_MODE_NMI);
    vcpu.setLapic(lapic);
  }
}
