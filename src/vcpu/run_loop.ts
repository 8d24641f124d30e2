/**
 * The KVM_RUN exit loop of one vCPU. It runs inside the vCPU worker, dispatches port I/O and MMIO to the
 * buses, honours pause/stop requests from the control block, and returns a {@link VcpuExit} when the run
 * ends. The steady state (run, read the exit, dispatch) allocates nothing.
 *
 * @module
 */
import { EAGAIN, EINTR } from "../../ffi/errno.ts";
import type { KvmRun, VcpuFd } from "../../ffi/kvm.ts";
import {
  exitReasonName,
  KVM_EMULATION_FAILURE_MAX_INSN,
  KVM_EXIT,
  KVM_EXIT_IO_OUT,
  KVM_INTERNAL_ERROR,
} from "../../ffi/kvm_ioctls.ts";
import type { Buses } from "../devices/device_spec.ts";
import { type VcpuControl, VcpuRequest } from "./control_block.ts";
import { completeOnPvm } from "./pvm_assist.ts";
import { registerDump, type VcpuExit } from "./vcpu_exit.ts";
import { VcpuState } from "./vcpu_state.ts";

const EXIT_IO = KVM_EXIT.KVM_EXIT_IO;
const EXIT_MMIO = KVM_EXIT.KVM_EXIT_MMIO;
const EXIT_HLT = KVM_EXIT.KVM_EXIT_HLT;
const EXIT_SHUTDOWN = KVM_EXIT.KVM_EXIT_SHUTDOWN;
const EXIT_FAIL_ENTRY = KVM_EXIT.KVM_EXIT_FAIL_ENTRY;
const EXIT_INTERNAL_ERROR = KVM_EXIT.KVM_EXIT_INTERNAL_ERROR;
const EXIT_INTR = KVM_EXIT.KVM_EXIT_INTR;
const EXIT_SYSTEM_EVENT = KVM_EXIT.KVM_EXIT_SYSTEM_EVENT;
const EXIT_IRQ_WINDOW_OPEN = KVM_EXIT.KVM_EXIT_IRQ_WINDOW_OPEN;
const SYSTEM_EVENT_SHUTDOWN = 1;
const SYSTEM_EVENT_RESET = 2;
const EMULATION = KVM_INTERNAL_ERROR.KVM_INTERNAL_ERROR_EMULATION;

/** Set by a device (the exit port, the keyboard controller's reset) to end the run after the current exit. */
export class ExitLatch {
  /** True once a device asked to end the VM. */
  requested = false;
  /** True if it asked for a reboot rather than an exit status. */
  reboot = false;
  /** True if it asked to switch the VM off (ACPI S5). */
  powerOff = false;
  /** The status it asked for. */
  status = 0;

  /** Asks to end the run with `status`. */
  request(status: number): void {
    if (this.requested) return;
    this.requested = true;
    this.status = status;
  }

  /** Asks to end the run with reason `reboot`. */
  requestReboot(): void {
    if (this.requested) return;
    this.requested = true;
    this.reboot = true;
  }

  /** Asks to end the run as switched off: exit kind `shutdown`, as KVM's own shutdown system event. */
  requestPowerOff(): void {
    if (this.requested) return;
    this.requested = true;
    this.powerOff = true;
  }

  /** The exit the latch stands for. */
  exit(): VcpuExit {
    if (this.powerOff) return { kind: "shutdown" };
    return this.reboot ? { kind: "reboot" } : { kind: "exit-port", status: this.status };
  }
}

/** Everything the loop touches. */
export interface RunLoopContext {
  /** The vCPU. */
  readonly vcpu: VcpuFd;
  /** Its kvm_run page. */
  readonly run: KvmRun;
  /** Its buses. */
  readonly buses: Buses;
  /** The shared control block. */
  readonly control: VcpuControl;
  /** The exit port's latch. */
  readonly latch: ExitLatch;
  /** The host is PVM: complete the instructions its KVM cannot emulate (src/vcpu/pvm_assist.ts). */
  readonly pvm?: boolean;
}

function dump(vcpu: VcpuFd) {
  return registerDump(vcpu.getRegs(), vcpu.getSregs());
}

/** Handles a KVM_EXIT_IO: every element of a (possibly string) port access, in order. */
function dispatchIo(ctx: RunLoopContext): void {
  const run = ctx.run;
  const pio = ctx.buses.pio;
  const port = run.ioPort();
  const size = run.ioSize();
  const len = size * run.ioCount();
  const offset = run.ioDataOffset();
  const bytes = run.ioBytes(offset);
  const view = run.ioView(offset);
  if (run.ioDirection() === KVM_EXIT_IO_OUT) {
    for (let at = 0; at < len; at += size) {
      const value = size === 1 ? bytes[at] : size === 2 ? view.getUint16(at, true) : view.getUint32(at, true);
      pio.write(port, size, value);
    }
  } else {
    for (let at = 0; at < len; at += size) {
      const value = pio.read(port, size);
      if (size === 1) bytes[at] = value;
      else if (size === 2) view.setUint16(at, value, true);
      else view.setUint32(at, value, true);
    }
  }
}

/** Handles a KVM_EXIT_MMIO. */
function dispatchMmio(ctx: RunLoopContext): void {
  const run = ctx.run;
  const addr = run.mmioPhysAddr();
  const len = run.mmioLen();
  if (run.mmioIsWrite()) ctx.buses.mmio.write(addr, run.mmioData, len);
  else ctx.buses.mmio.read(addr, run.mmioData, len);
}

/**
 * Waits for the first Run request, then runs the vCPU until the guest ends the run, a stop is requested, or
 * an error occurs. Publishes state transitions and the exit count in the control block.
 */
export function runLoop(ctx: RunLoopContext): VcpuExit {
  const { vcpu, run, control, latch } = ctx;
  const insn = new Uint8Array(KVM_EMULATION_FAILURE_MAX_INSN);
  let exits = 0;
  const finish = (e: VcpuExit): VcpuExit => {
    control.setExits(exits);
    return e;
  };
  while (control.request() === VcpuRequest.Hold) control.waitWhileRequest(VcpuRequest.Hold);
  control.setState(VcpuState.Running);
  for (;;) {
    const request = control.request();
    if (request !== VcpuRequest.Run) {
      if (request === VcpuRequest.Stop) return finish({ kind: "stopped" });
      if (request === VcpuRequest.Pause) {
        control.setExits(exits);
        control.setState(VcpuState.Paused);
        while (control.request() === VcpuRequest.Pause) control.waitWhileRequest(VcpuRequest.Pause);
        if (control.request() === VcpuRequest.Run) control.setState(VcpuState.Running);
        continue;
      }
    }
    const err = vcpu.run();
    if (err !== 0) {
      if (err === EINTR || err === EAGAIN) {
        run.setImmediateExit(false);
        continue;
      }
      return finish({ kind: "error", message: `ioctl(KVM_RUN) failed with errno ${err}` });
    }
    exits++;
    switch (run.exitReason()) {
      case EXIT_IO:
        dispatchIo(ctx);
        if (latch.requested) return finish(latch.exit());
        break;
      case EXIT_MMIO:
        dispatchMmio(ctx);
        if (latch.requested) return finish(latch.exit());
        break;
      case EXIT_INTR:
      case EXIT_IRQ_WINDOW_OPEN:
        break;
      case EXIT_HLT:
        return finish({ kind: "hlt" });
      case EXIT_SHUTDOWN:
        return finish({ kind: "shutdown", dump: dump(vcpu) });
      case EXIT_SYSTEM_EVENT: {
        const type = run.systemEventType();
        if (type === SYSTEM_EVENT_RESET) return finish({ kind: "reboot" });
        if (type === SYSTEM_EVENT_SHUTDOWN) return finish({ kind: "shutdown" });
        return finish({
          kind: "unhandled",
          exitReason: `KVM_EXIT_SYSTEM_EVENT type ${type}`,
          dump: dump(vcpu),
        });
      }
      case EXIT_FAIL_ENTRY:
        return finish({
          kind: "fail-entry",
          reason: `0x${run.failEntryReason().toString(16)}`,
          dump: dump(vcpu),
        });
      case EXIT_INTERNAL_ERROR: {
        const suberror = run.internalSuberror();
        const length = suberror === EMULATION ? run.emulationInsnBytes(insn) : 0;
        if (ctx.pvm && length > 0 && completeOnPvm(vcpu, insn, length) !== undefined) break;
        return finish({
          kind: "internal-error",
          suberror,
          data: run.internalData().map((d) => `0x${d.toString(16)}`),
          insn: Array.from(insn.subarray(0, length), (b) => b.toString(16).padStart(2, "0")).join(" "),
          dump: dump(vcpu),
        });
      }
      default:
        return finish({ kind: "unhandled", exitReason: exitReasonName(run.exitReason()), dump: dump(vcpu) });
    }
  }
}
