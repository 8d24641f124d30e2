/**
 * Completing, in the VMM, the few instructions a PVM host's KVM cannot emulate (see docs/pvm.md).
 *
 * On PVM (KVM without hardware virtualisation) the guest kernel runs deprivileged, so instructions that trap
 * there go through KVM's instruction emulator; the ones it does not implement come back to user space as
 * KVM_EXIT_INTERNAL_ERROR (suberror KVM_INTERNAL_ERROR_EMULATION) with the instruction's bytes. vmd completes
 * a short, exact list of them and stops the VM on anything else. The bytes come only from KVM's exit (never
 * from guest memory), each handler matches whole instructions byte for byte, and the length it skips is the
 * length of the pattern it matched, never a length the guest supplied.
 *
 * @module
 */
import type { VcpuFd } from "../../ffi/kvm.ts";

/** x86 exception vector #BP (breakpoint), raised by INT3. */
export const BP_VECTOR = 3;
/** RFLAGS.AC (alignment check / SMAP override), bit 18. */
export const RFLAGS_AC = 1n << 18n;

/** An instruction vmd completes on PVM: its exact bytes, its name, and what completing it does. */
export interface CompletedInstruction {
  /** The instruction's bytes, matched exactly at the start of the failed instruction. */
  readonly bytes: readonly number[];
  /** Its mnemonic, for docs and messages. */
  readonly name: string;
  /** What vmd does instead of the CPU. */
  readonly effect: string;
  /** Completes it on `vcpu` (RIP still at the instruction); false when it does not apply (nothing changed). */
  readonly complete: (vcpu: VcpuFd) => boolean;
}

function skip(vcpu: VcpuFd, length: number): boolean {
  const regs = vcpu.getRegs();
  regs.rip += BigInt(length);
  vcpu.setRegs(regs);
  return true;
}

/** The current privilege level (CS.DPL; in long mode the same as CS.RPL). */
function cpl(vcpu: VcpuFd): number {
  return vcpu.getSregs().cs.dpl;
}

/** Sets or clears RFLAGS.AC and skips the 3-byte instruction, at CPL 0 only (elsewhere they raise #UD). */
function setAc(vcpu: VcpuFd, on: boolean): boolean {
  if (cpl(vcpu) !== 0) return false;
  const regs = vcpu.getRegs();
  regs.rflags = on ? regs.rflags | RFLAGS_AC : regs.rflags & ~RFLAGS_AC;
  regs.rip += 3n;
  vcpu.setRegs(regs);
  return true;
}

/** The instructions vmd completes on PVM, in match order. */
export const PVM_COMPLETED: readonly CompletedInstruction[] = [
  {
    bytes: [0xcc],
    name: "int3",
    effect: "RIP += 1, then #BP injected (a trap: the handler sees RIP after the 0xcc, as on hardware)",
    complete: (vcpu) => {
      skip(vcpu, 1);
      const events = vcpu.getVcpuEvents();
      vcpu.setVcpuEvents({
        ...events,
        exception_injected: 1,
        exception_pending: 0,
        exception_nr: BP_VECTOR,
        exception_has_error_code: 0,
        exception_error_code: 0,
      });
      return true;
    },
  },
  {
    bytes: [0x0f, 0x01, 0xca],
    name: "clac",
    effect: "RFLAGS.AC cleared, RIP += 3 (at CPL 0; elsewhere the VM stops)",
    complete: (vcpu) => setAc(vcpu, false),
  },
  {
    bytes: [0x0f, 0x01, 0xcb],
    name: "stac",
    effect: "RFLAGS.AC set, RIP += 3 (at CPL 0; elsewhere the VM stops)",
    complete: (vcpu) => setAc(vcpu, true),
  },
  {
    bytes: [0x9b],
    name: "fwait",
    effect: "RIP += 1 (no x87 exception is ever left pending for it to report)",
    complete: (vcpu) => skip(vcpu, 1),
  },
];

/** Counts of completed instructions, by name (for logs and tests). */
export type AssistCounts = Record<string, number>;

/**
 * Completes the instruction KVM could not emulate when it is one of {@link PVM_COMPLETED}: returns its
 * name, or undefined (the caller stops the VM). `insn[0..length)` are the bytes from the exit.
 */
export function completeOnPvm(vcpu: VcpuFd, insn: Uint8Array, length: number): string | undefined {
  for (const c of PVM_COMPLETED) {
    if (length < c.bytes.length) continue;
    let same = true;
    for (let i = 0; i < c.bytes.length && same; i++) same = insn[i] === c.bytes[i];
    if (!same) continue;
    return c.complete(vcpu) ? c.name : undefined;
  }
  return undefined;
}
