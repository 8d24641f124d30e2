/**
 * PVM: KVM without hardware virtualisation (the `kvm_pvm` module). How vmd recognises it and what it changes
 * for a guest there (every change, why, and how it was found: docs/pvm.md). On hardware KVM none of this
 * applies and the VM is built exactly as before.
 *
 * @module
 */
import type { Kvm } from "../../ffi/kvm.ts";
import { KVM_CAP } from "../../ffi/kvm_ioctls.ts";
import type { KvmCpuidEntry2 } from "../../ffi/kvm_structs.ts";

/** Whether the host's KVM is PVM, and the evidence. */
export interface PvmDetection {
  /** True when /dev/kvm is PVM. */
  readonly pvm: boolean;
  /** The evidence, for logs. */
  readonly why: string;
}

/**
 * Decides from KVM's answer to KVM_CHECK_EXTENSION(KVM_CAP_NESTED_STATE): both hardware vendor modules
 * implement nested-state save and restore and report its size (kvm_intel since Linux 4.19, kvm_amd since
 * 5.8, whatever their `nested` parameter says); PVM has no nested virtualisation and reports 0. Asking KVM
 * needs no file (Deno grants /proc/cpuinfo only with --allow-all, which the VM process never has). A hardware
 * host older than those kernels would be taken for PVM: its guests would get the PVM kernel switches (slower,
 * still correct) and nothing else would change.
 */
export function pvmFromNestedState(nestedStateSize: number): PvmDetection {
  return nestedStateSize === 0
    ? { pvm: true, why: "KVM reports no nested-state support (KVM_CAP_NESTED_STATE is 0): PVM" }
    : { pvm: false, why: `KVM saves nested state (${nestedStateSize} bytes): hardware KVM` };
}

/** Asks `kvm` with {@link pvmFromNestedState}. */
export function detectPvm(kvm: Kvm): PvmDetection {
  return pvmFromNestedState(kvm.checkExtension(KVM_CAP.KVM_CAP_NESTED_STATE));
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
    text: "initcall_blacklist=trace_eval_init",
    why:
      "the tracing eval-map work rewrites every trace event's format with every enum name while it holds " +
      "event_mutex; at emulated speed init waited more than 121 s for that mutex (a hung-task report from " +
      "init_kprobe_trace). Without it, trace event formats keep enum names where their values would be",
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
