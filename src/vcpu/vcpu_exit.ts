/**
 * Why a vCPU's run ended, as a typed value that crosses the worker boundary intact.
 *
 * @module
 */
import type { KvmRegs, KvmSregs } from "../../ffi/kvm_structs.ts";

/** A register dump for error reports (hex strings, so it survives structured clone and JSON). */
export interface RegisterDump {
  /** General-purpose registers, rip and rflags. */
  readonly regs: Readonly<Record<string, string>>;
  /** Control registers, EFER and the code segment. */
  readonly sregs: Readonly<Record<string, string>>;
}

/** The end of a vCPU's run. */
export type VcpuExit =
  /** The guest wrote `status` to the exit port. */
  | { readonly kind: "exit-port"; readonly status: number }
  /** The guest executed HLT with interrupts off or no in-kernel irqchip. */
  | { readonly kind: "hlt" }
  /** Triple fault (with the registers as KVM left them), or a power-off request: ACPI S5 or KVM's (without). */
  | { readonly kind: "shutdown"; readonly dump?: RegisterDump }
  /** The guest asked for a reset (keyboard controller or ACPI). */
  | { readonly kind: "reboot" }
  /** KVM could not handle something (emulation failure and the like). */
  | {
    readonly kind: "internal-error";
    readonly suberror: number;
    readonly data: readonly string[];
    /** For an emulation failure, the instruction's bytes as KVM gave them (hex, space-separated; may be empty). */
    readonly insn?: string;
    readonly dump: RegisterDump;
  }
  /** VM entry failed; `reason` is the hardware's entry-failure code. */
  | { readonly kind: "fail-entry"; readonly reason: string; readonly dump: RegisterDump }
  /** An exit reason vmd does not handle. */
  | { readonly kind: "unhandled"; readonly exitReason: string; readonly dump: RegisterDump }
  /** The VMM stopped the vCPU (stop request). */
  | { readonly kind: "stopped" }
  /** The vCPU thread failed (an ioctl error, a device threw). */
  | { readonly kind: "error"; readonly message: string };

const hex = (v: bigint) => `0x${v.toString(16).padStart(16, "0")}`;

/** Builds a {@link RegisterDump} from decoded registers. */
export function registerDump(regs: KvmRegs, sregs: KvmSregs): RegisterDump {
  const r: Record<string, string> = {};
  for (const [k, v] of Object.entries(regs)) r[k] = hex(v as bigint);
  return {
    regs: r,
    sregs: {
      cr0: hex(sregs.cr0),
      cr2: hex(sregs.cr2),
      cr3: hex(sregs.cr3),
      cr4: hex(sregs.cr4),
      efer: hex(sregs.efer),
      cs: `sel=0x${sregs.cs.selector.toString(16)} base=${
        hex(sregs.cs.base)
      } l=${sregs.cs.l} db=${sregs.cs.db}`,
    },
  };
}

/** A one-line description of an exit, for logs and `vmd run`'s status line. */
export function describeVcpuExit(e: VcpuExit): string {
  switch (e.kind) {
    case "exit-port":
      return `guest wrote ${e.status} to the exit port`;
    case "hlt":
      return "guest halted";
    case "shutdown":
      return e.dump === undefined ? "guest powered off" : "guest shut down (triple fault)";
    case "reboot":
      return "guest requested a reboot";
    case "internal-error":
      if (e.suberror === 1) {
        return `KVM could not emulate the instruction at rip=${e.dump.regs.rip} (bytes: ${
          e.insn ? e.insn : "none given"
        }); vmd does not complete it either, so the VM was stopped (see docs/pvm.md)`;
      }
      return `KVM internal error (suberror ${e.suberror}) at rip=${e.dump.regs.rip}`;
    case "fail-entry":
      return `VM entry failed (hardware reason ${e.reason}) at rip=${e.dump.regs.rip}`;
    case "unhandled":
      return `unhandled exit ${e.exitReason} at rip=${e.dump.regs.rip}`;
    case "stopped":
      return "stopped";
    case "error":
      return `vCPU error: ${e.message}`;
  }
}

/** A multi-line register dump for error reports. */
export function formatRegisterDump(d: RegisterDump): string {
  const lines: string[] = [];
  const regs = Object.entries(d.regs);
  for (let i = 0; i < regs.length; i += 4) {
    lines.push(regs.slice(i, i + 4).map(([k, v]) => `${k.padStart(6)}=${v}`).join(" "));
  }
  lines.push(Object.entries(d.sregs).map(([k, v]) => `${k}=${v}`).join(" "));
  return lines.join("\n");
}
