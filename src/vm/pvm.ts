/**
 * PVM: KVM without hardware virtualisation (the `kvm_pvm` module). How vmd recognises it and what it changes
 * for a guest there (every change, why, and how it was found: docs/pvm.md). On hardware KVM none of this
 * applies and the VM is built exactly as before.
 *
 * @module
 */
import type { KvmCpuidEntry2 } from "../../ffi/kvm_structs.ts";

/** Where the host CPU's feature flags are read from. */
export const CPUINFO_PATH = "/proc/cpuinfo";

/** Whether the host's KVM is PVM, and the evidence. */
export interface PvmDetection {
  /** True when /dev/kvm can only be PVM. */
  readonly pvm: boolean;
  /** The evidence, for logs. */
  readonly why: string;
}

/**
 * Decides from `/proc/cpuinfo`'s text: hardware KVM (kvm_intel, kvm_amd) cannot load unless the CPU reports
 * VMX or SVM, so a working /dev/kvm on a CPU whose flags have neither is a KVM that virtualises without
 * them, which on x86 Linux is PVM. The flags are the kernel's view (firmware-disabled VMX is cleared there
 * too), so the rule holds on bare metal and inside another VM alike.
 */
export function pvmFromCpuinfo(cpuinfo: string): PvmDetection {
  const flags = /^flags\s*:(.*)$/m.exec(cpuinfo)?.[1].trim().split(/\s+/) ?? [];
  if (flags.length === 0) {
    return { pvm: false, why: `${CPUINFO_PATH} has no flags line: assuming hardware KVM` };
  }
  if (flags.includes("vmx")) return { pvm: false, why: "the CPU has VMX: hardware KVM" };
  if (flags.includes("svm")) return { pvm: false, why: "the CPU has SVM: hardware KVM" };
  return { pvm: true, why: "the CPU has neither VMX nor SVM, so /dev/kvm is PVM" };
}

/** Reads {@link CPUINFO_PATH} and decides with {@link pvmFromCpuinfo}. */
export function detectPvm(): PvmDetection {
  let text: string;
  try {
    text = Deno.readTextFileSync(CPUINFO_PATH);
  } catch (e) {
    throw new Error(
      `cannot read ${CPUINFO_PATH} to tell hardware KVM from PVM (${(e as Error).message}): ` +
        `grant read on ${CPUINFO_PATH} to this process`,
    );
  }
  return pvmFromCpuinfo(text);
}

/** One CPUID bit vmd clears on PVM. */
export interface PvmCpuidMask {
  /** The leaf (`function`). */
  readonly leaf: number;
  /** The sub-leaf (`index`). */
  readonly index: number;
  /** The register. */
  readonly register: "eax" | "ebx" | "ecx" | "edx";
  /** The bit. */
  readonly bit: number;
  /** The kernel's name for the feature. */
  readonly feature: string;
  /** Why. */
  readonly why: string;
}

/** The CPUID bits vmd clears on PVM. */
export const PVM_CPUID_MASKS: readonly PvmCpuidMask[] = [
  {
    leaf: 1,
    index: 0,
    register: "ecx",
    bit: 13,
    feature: "cx16",
    why: "KVM's emulator refuses `lock cmpxchg16b` (the slab allocator's lock-free fast path), which PVM " +
      "sends it; without cx16 the kernel takes its locked path",
  },
];

/** `entries` with {@link PVM_CPUID_MASKS} applied (a new array; the input is left alone). */
export function pvmCpuid(entries: readonly KvmCpuidEntry2[]): KvmCpuidEntry2[] {
  return entries.map((e) => {
    const out = { ...e };
    for (const m of PVM_CPUID_MASKS) {
      if (e.function === m.leaf && e.index === m.index) {
        out[m.register] = (out[m.register] & ~(1 << m.bit)) >>> 0;
      }
    }
    return out;
  });
}

/** One kernel command-line switch vmd appends on PVM. */
export interface PvmKernelSwitch {
  /** The switch as it is appended. */
  readonly text: string;
  /** Why. */
  readonly why: string;
}

/** The switches vmd appends to a Linux command line on PVM. */
export const PVM_KERNEL_SWITCHES: readonly PvmKernelSwitch[] = [
  {
    text: "noxsave",
    why: "XSAVE/XRSTOR are not in KVM's emulator (the kernel stopped at `xrstor` in its FPU set-up); " +
      "PVM shows the host's XSAVE bit whatever vmd's CPUID says, so only the kernel can be told",
  },
  {
    text: "nofsgsbase",
    why: "RDFSBASE/WRFSBASE and friends are not in KVM's emulator; without them the kernel uses the " +
      "FS/GS base MSRs, which it emulates",
  },
  {
    text: "clearcpuid=popcnt,smap,ssse3",
    why: "POPCNT (the kernel's hweight), CLAC/STAC (SMAP, around every user copy) and the SSSE3 " +
      "code paths behind kernel_fpu_begin (LDMXCSR, PSHUFB: blake2s for the entropy pool) are not in KVM's " +
      "emulator, and PVM shows the host's bits for them whatever vmd's CPUID says",
  },
  {
    text: "mitigations=off",
    why: "PVM runs the guest kernel through KVM's emulator, never speculatively on the CPU, so its " +
      "speculation mitigations protect nothing there and cost an emulated detour on every return and " +
      "indirect call",
  },
  {
    text: "nowatchdog",
    why: "at emulated speed the soft-lockup detector fires on long boot-time loops and prints stack " +
      "dumps through the (slow) serial port",
  },
];

/** `cmdline` with {@link PVM_KERNEL_SWITCHES} appended (the user's own words come first and stay intact). */
export function withPvmSwitches(cmdline: string): string {
  const extra = PVM_KERNEL_SWITCHES.map((s) => s.text).join(" ");
  if (extra === "") return cmdline;
  return cmdline.trim() === "" ? extra : `${cmdline} ${extra}`;
}
