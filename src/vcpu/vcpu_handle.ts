/**
 * The main thread's handle on one vCPU worker: spawns it from the permission table, drives the state machine
 * (start, pause, resume, stop) through the control block, and kicks the thread out of KVM_RUN with
 * `tgkill(SIGUSR2)` plus `kvm_run.immediate_exit` — `Worker.terminate()` alone cannot stop a thread that is
 * inside KVM_RUN.
 *
 * @module
 */
import type { KvmRun, VcpuFd } from "../../ffi/kvm.ts";
import { getpid, KICK_SIGNAL, tgkill } from "../../ffi/thread.ts";
import type { PioDeviceSpec } from "../devices/device_spec.ts";
import type { ProbeTargets } from "../privsep/libc_probe.ts";
import { entryUrl, type PolicyContext, workerOptions } from "../privsep/permission_table.ts";
import { VcpuControl, VcpuRequest } from "./control_block.ts";
import type { VcpuExit } from "./vcpu_exit.ts";
import {
  type FromVcpuMessage,
  type ToVcpuMessage,
  validateFromVcpu,
  type VcpuProbeResult,
} from "./vcpu_messages.ts";
import { nextVcpuState, VcpuState, vcpuStateName } from "./vcpu_state.ts";

/** A vCPU that did not reach the requested state in time. */
export class VcpuTimeoutError extends Error {
  /** Builds the error. */
  constructor(id: number, what: string, ms: number) {
    super(`vCPU ${id} did not ${what} within ${ms} ms`);
    this.name = "VcpuTimeoutError";
  }
}

/** What spawning a vCPU worker needs. */
export interface VcpuSpawnOptions {
  /** vCPU index. */
  readonly id: number;
  /** The vCPU fd, already configured (registers, CPUID). */
  readonly vcpu: VcpuFd;
  /** Size of the kvm_run mapping. */
  readonly mmapSize: number;
  /** Devices on its buses. */
  readonly devices: readonly PioDeviceSpec[];
  /** The VM fd, when devices may raise interrupts (in-kernel irqchip). */
  readonly vmFd?: number;
  /** Policy facts (libc path). */
  readonly policy: PolicyContext;
  /** The host's KVM is PVM: the worker completes the instructions PVM cannot emulate (docs/pvm.md). */
  readonly pvm?: boolean;
}

const KICK_INTERVAL_MS = 10;
/** Workers started ahead of time (their isolates load while the VMM sets the VM up), by vCPU id. */
const prewarmed = new Map<number, Worker>();
let kickListenerInstalled = false;

/**
 * Installs a process-wide SIGUSR2 listener once and keeps it: a kick that races with a vCPU thread's exit (or
 * lands on a reused thread id) must never meet the signal's default action, which terminates the process.
 * Deno's signal listeners do not keep the event loop alive, so leaving it installed costs nothing.
 */
function ensureKickListener(): void {
  if (kickListenerInstalled) return;
  Deno.addSignalListener(KICK_SIGNAL, () => {});
  kickListenerInstalled = true;
}

function newVcpuWorker(id: number, policy: PolicyContext): Worker {
  return new Worker(entryUrl("vcpu"), workerOptions("vcpu", policy, `vcpu${id}`));
}

/**
 * Starts the workers for vCPUs `0..count-1` now, so that their isolates load their modules while the VM is
 * being created and the kernel loaded; {@link VcpuHandle.spawn} then takes them. Workers are generic until
 * their init message, so a pre-warmed worker carries no VM state.
 */
export function prewarmVcpuWorkers(count: number, policy: PolicyContext): void {
  for (let id = 0; id < count; id++) {
    if (prewarmed.has(id)) continue;
    const worker = newVcpuWorker(id, policy);
    worker.postMessage({ type: "warm", libcPath: policy.libcPath } satisfies ToVcpuMessage);
    prewarmed.set(id, worker);
  }
}

/** Terminates pre-warmed workers that were never used (e.g. VM creation failed). */
export function discardPrewarmedVcpuWorkers(): void {
  for (const w of prewarmed.values()) w.terminate();
  prewarmed.clear();
}

/** The main thread's side of one vCPU. */
export class VcpuHandle {
  /** vCPU index. */
  readonly id: number;
  /** Resolves with the vCPU's exit once its worker has ended. */
  readonly ended: Promise<VcpuExit>;
  readonly #worker: Worker;
  readonly #control: VcpuControl;
  readonly #run: KvmRun;
  readonly #pid = getpid();
  #state: VcpuState = VcpuState.Created;
  #exit: VcpuExit | undefined;
  #probeWaiters: ((r: VcpuProbeResult) => void)[] = [];

  private constructor(id: number, worker: Worker, control: VcpuControl, run: KvmRun) {
    this.id = id;
    this.#worker = worker;
    this.#control = control;
    this.#run = run;
    this.ended = new Promise<VcpuExit>((resolve) => {
      const end = (exit: VcpuExit) => {
        if (this.#exit !== undefined) return;
        this.#exit = exit;
        this.#state = VcpuState.Stopped;
        this.#run.unmap();
        worker.terminate();
        resolve(exit);
      };
      worker.onmessage = (ev: MessageEvent<unknown>) => {
        const why = validateFromVcpu(ev.data);
        if (why !== undefined) {
          return end({ kind: "error", message: `vcpu ${id}: bad message from worker: ${why}` });
        }
        const m = ev.data as FromVcpuMessage;
        if (m.type === "ended") end(m.exit);
        else if (m.type === "failed") end({ kind: "error", message: `vcpu ${id}: ${m.message}` });
        else if (m.type === "probe-result") this.#probeWaiters.shift()?.(m.result);
      };
      worker.onerror = (ev: ErrorEvent) => {
        ev.preventDefault();
        end({ kind: "error", message: `vcpu ${id} worker crashed: ${ev.message}` });
      };
    });
  }

  /**
   * Spawns the worker (permissions from the `vcpu` row of the permission table), hands it the vCPU, and
   * resolves once its thread is ready and waiting for {@link start}.
   */
  static async spawn(o: VcpuSpawnOptions): Promise<VcpuHandle> {
    ensureKickListener();
    const control = new VcpuControl();
    const worker = prewarmed.get(o.id) ?? newVcpuWorker(o.id, o.policy);
    prewarmed.delete(o.id);
    const run = o.vcpu.mapRun(o.mmapSize);
    let readyResolve!: () => void;
    const ready = new Promise<void>((r) => readyResolve = r);
    const handle = new VcpuHandle(o.id, worker, control, run);
    const onReady = (ev: MessageEvent<FromVcpuMessage>) => {
      if (ev.data?.type === "ready") readyResolve();
    };
    worker.addEventListener("message", onReady);
    worker.postMessage({
      type: "init",
      libcPath: o.policy.libcPath,
      id: o.id,
      vcpuFd: o.vcpu.fd,
      vmFd: o.vmFd,
      run: run.share(),
      control: control.sab,
      devices: o.devices,
      pvm: o.pvm === true,
    });
    const failed = handle.ended.then((e) => {
      throw new Error(`vcpu ${o.id} ended before it was ready: ${JSON.stringify(e)}`);
    });
    await Promise.race([ready, failed]);
    worker.removeEventListener("message", onReady);
    return handle;
  }

  /** The state as the main thread last drove it (or stopped, once the worker ended). */
  get state(): VcpuState {
    return this.#state;
  }

  /** The worker's published state. */
  get workerState(): VcpuState {
    return this.#control.state();
  }

  /** The worker's kernel thread id (the target of kicks). */
  get tid(): number {
    return this.#control.tid();
  }

  /** Exits handled so far (updated when the loop pauses or ends). */
  get exits(): number {
    return this.#control.exits();
  }

  /** Lets the vCPU run. */
  start(): void {
    this.#state = nextVcpuState(this.#state, "start");
    this.#control.setRequest(VcpuRequest.Run);
    this.#worker.postMessage({ type: "run" });
  }

  /** Pauses the vCPU, even if the guest spins; resolves once the thread has left KVM_RUN and sleeps. */
  async pause(timeoutMs = 1000): Promise<void> {
    this.#state = nextVcpuState(this.#state, "pause");
    this.#control.setRequest(VcpuRequest.Pause);
    await this.#kickUntil(VcpuState.Paused, "pause", timeoutMs);
  }

  /** Resumes a paused vCPU. */
  async resume(timeoutMs = 1000): Promise<void> {
    this.#state = nextVcpuState(this.#state, "resume");
    this.#control.setRequest(VcpuRequest.Run);
    if (!await this.#control.waitForState(VcpuState.Running, timeoutMs) && this.#exit === undefined) {
      throw new VcpuTimeoutError(this.id, "resume", timeoutMs);
    }
  }

  /** Stops the vCPU (from any state; again while a stop is under way) and resolves with its exit. */
  async stop(timeoutMs = 2000): Promise<VcpuExit> {
    if (this.#exit !== undefined) return this.#exit;
    const wasCreated = this.#state === VcpuState.Created;
    if (this.#state !== VcpuState.Stopped) this.#state = nextVcpuState(this.#state, "stop");
    this.#control.setRequest(VcpuRequest.Stop);
    // A vCPU that never started is still waiting for its "run" message: let it enter the loop, which then
    // sees the stop request and ends at once.
    if (wasCreated) this.#worker.postMessage({ type: "run" });
    await this.#kickUntil(VcpuState.Stopped, "stop", timeoutMs);
    return await this.ended;
  }

  /**
   * Asks the worker to try each power it should not have and report (see the confinement probe); given
   * `targets`, through libc too (see `libc_probe.ts`).
   */
  probe(targets?: ProbeTargets): Promise<VcpuProbeResult> {
    return new Promise((resolve) => {
      this.#probeWaiters.push(resolve);
      this.#worker.postMessage({ type: "probe", targets });
    });
  }

  /** Sets immediate_exit and signals the thread, repeating until the worker reaches `target` or ends. */
  async #kickUntil(target: VcpuState, what: string, timeoutMs: number): Promise<void> {
    const deadline = performance.now() + timeoutMs;
    while (this.#exit === undefined) {
      const s = this.#control.state();
      if (s === target || (s === VcpuState.Stopped && target !== VcpuState.Stopped)) return;
      if (s === VcpuState.Stopped) {
        await Promise.race([this.ended, new Promise((r) => setTimeout(r, KICK_INTERVAL_MS))]);
        continue;
      }
      this.#run.setImmediateExit(true);
      const tid = this.#control.tid();
      if (tid !== 0) tgkill(this.#pid, tid);
      if (await this.#control.waitForState(target, KICK_INTERVAL_MS)) {
        if (target !== VcpuState.Stopped) return;
      }
      if (performance.now() > deadline) {
        throw new VcpuTimeoutError(this.id, `${what} (state ${vcpuStateName(s)})`, timeoutMs);
      }
    }
  }
}
