/**
 * Messages between a VM's main thread and a vCPU worker, with one validator per message type: nothing is
 * used before it is checked.
 *
 * @module
 */
import { type PioDeviceSpec, validatePioDeviceSpec } from "../devices/device_spec.ts";
import type { ProbeResult } from "../privsep/confinement_probe.ts";
import { isProbeTargets, type ProbeOutcome, type ProbeTargets } from "../privsep/libc_probe.ts";
import type { VcpuExit } from "./vcpu_exit.ts";
import type { KvmRunShare } from "../../ffi/kvm_run.ts";

/** Main → worker: set up the vCPU and wait for the Run request. */
export interface VcpuInitMessage {
  readonly type: "init";
  /** libc's path (the worker's only ffi grant). */
  readonly libcPath: string;
  /** The vCPU's index. */
  readonly id: number;
  /** The vCPU fd (fds are process-wide). */
  readonly vcpuFd: number;
  /** The VM fd, for interrupt lines (KVM_IRQ_LINE), when the VM has an in-kernel irqchip. */
  readonly vmFd?: number;
  /** The vCPU's kvm_run, mapped by the main thread over a shared buffer. */
  readonly run: KvmRunShare;
  /** The control block. */
  readonly control: SharedArrayBuffer;
  /** Devices for the buses. */
  readonly devices: readonly PioDeviceSpec[];
  /** The host's KVM is PVM: complete the instructions it cannot emulate (src/vcpu/pvm_assist.ts). */
  readonly pvm?: boolean;
}

/** Main → worker: try each forbidden power and report (between init and run); with libc too given `targets`. */
export interface VcpuProbeMessage {
  readonly type: "probe";
  /** Aim the libc probes here (see `libc_probe.ts`); Deno's APIs only when absent. */
  readonly targets?: ProbeTargets;
}

/** What a vCPU worker's probe found: Deno's APIs, and libc's calls when targets were given. */
export type VcpuProbeResult = ProbeResult & { readonly libc?: Record<string, ProbeOutcome> };

/** Main → worker: enter the exit loop (after init; the loop then follows the control block). */
export interface VcpuRunMessage {
  readonly type: "run";
}

/**
 * Main → worker, to a pre-warmed worker that has no vCPU yet: open libc (its only ffi grant) and arm the
 * kick signal now, so that {@link VcpuInitMessage} finds them done.
 */
export interface VcpuWarmMessage {
  readonly type: "warm";
  /** libc's path (the same one init will name). */
  readonly libcPath: string;
}

/** Main → worker messages. */
export type ToVcpuMessage = VcpuWarmMessage | VcpuInitMessage | VcpuProbeMessage | VcpuRunMessage;

/** Worker → main messages. */
export type FromVcpuMessage =
  | { readonly type: "ready"; readonly tid: number }
  | { readonly type: "ended"; readonly exit: VcpuExit }
  | { readonly type: "probe-result"; readonly result: VcpuProbeResult }
  | { readonly type: "failed"; readonly message: string };

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null;
const isCount = (v: unknown): v is number => typeof v === "number" && Number.isSafeInteger(v) && v >= 0;

/** Validates a main → worker message; returns the reason it is malformed, or undefined. */
export function validateToVcpu(v: unknown): string | undefined {
  if (!isObject(v)) return "message is not an object";
  switch (v.type) {
    case "probe":
      return v.targets === undefined || isProbeTargets(v.targets)
        ? undefined
        : "probe: targets are malformed";
    case "run":
      return undefined;
    case "warm":
      return typeof v.libcPath === "string" && v.libcPath.startsWith("/")
        ? undefined
        : "warm: libcPath must be absolute";
    case "init": {
      if (typeof v.libcPath !== "string" || !v.libcPath.startsWith("/")) {
        return "init: libcPath must be absolute";
      }
      if (!isCount(v.id)) return "init: id must be a non-negative integer";
      if (!isCount(v.vcpuFd)) return "init: vcpuFd must be a file descriptor";
      if (v.vmFd !== undefined && !isCount(v.vmFd)) return "init: vmFd must be a file descriptor";
      const run = v.run;
      if (
        !isObject(run) || !(run.sab instanceof SharedArrayBuffer) || !isCount(run.offset) ||
        !isCount(run.size) ||
        run.offset + run.size > run.sab.byteLength
      ) return "init: run must describe a kvm_run mapping inside its buffer";
      if (!(v.control instanceof SharedArrayBuffer)) return "init: control must be a SharedArrayBuffer";
      if (v.pvm !== undefined && typeof v.pvm !== "boolean") return "init: pvm must be a boolean";
      if (!Array.isArray(v.devices)) return "init: devices must be an array";
      for (const [i, d] of v.devices.entries()) {
        const why = validatePioDeviceSpec(d);
        if (why !== undefined) return `init: devices[${i}]: ${why}`;
      }
      return undefined;
    }
    default:
      return `unknown message type ${String(v.type)}`;
  }
}

/** Validates a worker → main message; returns the reason it is malformed, or undefined. */
export function validateFromVcpu(v: unknown): string | undefined {
  if (!isObject(v)) return "message is not an object";
  switch (v.type) {
    case "ready":
      return isCount(v.tid) ? undefined : "ready: tid must be a thread id";
    case "ended":
      return isObject(v.exit) && typeof v.exit.kind === "string" ? undefined : "ended: exit is malformed";
    case "probe-result":
      return isObject(v.result) ? undefined : "probe-result: result is malformed";
    case "failed":
      return typeof v.message === "string" ? undefined : "failed: message must be a string";
    default:
      return `unknown message type ${String(v.type)}`;
  }
}
