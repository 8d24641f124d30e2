/**
 * The CPUID a vCPU presents: KVM's supported leaves, with each vCPU's APIC id filled in.
 *
 * @module
 */
import type { KvmCpuidEntry2 } from "../../ffi/kvm_structs.ts";

/** CPUID.1:ECX bit 31: "running under a hypervisor". */
export const CPUID_HYPERVISOR_BIT = 1 << 31;

/**
 * The CPUID entries for vCPU `id`: leaf 1's initial APIC id set to `id` and its hypervisor bit set, leaf
 * 0xb's x2APIC id set to `id`. KVM's own leaves (0x40000000: "KVMKVMKVM") pass through.
 */
export function vcpuCpuid(supported: readonly KvmCpuidEntry2[], id: number): KvmCpuidEntry2[] {
  return supported.map((e) => {
    if (e.function === 1) {
      return {
        ...e,
        ebx: ((e.ebx & 0x00ffffff) | (id << 24)) >>> 0,
        ecx: (e.ecx | CPUID_HYPERVISOR_BIT) >>> 0,
      };
    }
    if (e.function === 0xb) return { ...e, edx: id };
    return { ...e };
  });
}
