/**
 * The vCPU control block: a few Int32 slots in a SharedArrayBuffer shared by the VM's main thread and one
 * vCPU worker. The main thread writes the request; the worker publishes its state. Both sides wait with
 * Atomics, so a paused vCPU sleeps instead of spinning.
 *
 * @module
 */
import type { VcpuState } from "./vcpu_state.ts";

/** What the main thread asks of the vCPU. */
export const VcpuRequest = {
  /** Not started yet. */
  Hold: 0,
  Run: 1,
  Pause: 2,
  Stop: 3,
} as const;

/** A request value. */
export type VcpuRequest = typeof VcpuRequest[keyof typeof VcpuRequest];

const STATE = 0;
const REQUEST = 1;
const TID = 2;
const EXITS_LO = 3;
const EXITS_HI = 4;
const SLOTS = 5;

/** Both sides' view of one vCPU's control block. */
export class VcpuControl {
  /** The shared buffer; post it to the worker. */
  readonly sab: SharedArrayBuffer;
  readonly #a: Int32Array;

  /** Wraps `sab`, or creates a new block. */
  constructor(sab: SharedArrayBuffer = new SharedArrayBuffer(SLOTS * 4)) {
    this.sab = sab;
    this.#a = new Int32Array(sab, 0, SLOTS);
  }

  /** The current request. */
  request(): VcpuRequest {
    return Atomics.load(this.#a, REQUEST) as VcpuRequest;
  }

  /** Main thread: sets the request and wakes a worker waiting on it. */
  setRequest(r: VcpuRequest): void {
    Atomics.store(this.#a, REQUEST, r);
    Atomics.notify(this.#a, REQUEST);
  }

  /** Worker: sleeps while the request is still `r` (at most `timeoutMs`). */
  waitWhileRequest(r: VcpuRequest, timeoutMs = Infinity): void {
    Atomics.wait(this.#a, REQUEST, r, timeoutMs);
  }

  /** The published state. */
  state(): VcpuState {
    return Atomics.load(this.#a, STATE) as VcpuState;
  }

  /** Worker: publishes its state and wakes anyone waiting on it. */
  setState(s: VcpuState): void {
    Atomics.store(this.#a, STATE, s);
    Atomics.notify(this.#a, STATE);
  }

  /** Main thread: resolves true once the state is `s`, false after `timeoutMs`. */
  async waitForState(s: VcpuState, timeoutMs: number): Promise<boolean> {
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      const now = Atomics.load(this.#a, STATE);
      if (now === s) return true;
      const left = deadline - performance.now();
      if (left <= 0) return false;
      const w = Atomics.waitAsync(this.#a, STATE, now, Math.min(left, 5));
      // A pending waitAsync does not keep Deno's event loop alive; a timer of the same length does.
      let timer: ReturnType<typeof setTimeout> | undefined;
      if (w.async) {
        await Promise.race([
          w.value,
          new Promise((wake) => timer = setTimeout(wake, Math.min(left, 5))),
        ]);
      }
      clearTimeout(timer);
    }
  }

  /** The worker's kernel thread id (0 until it has started). */
  tid(): number {
    return Atomics.load(this.#a, TID);
  }

  /** Worker: publishes its thread id. */
  setTid(tid: number): void {
    Atomics.store(this.#a, TID, tid);
  }

  /** Exits handled so far (published when the loop pauses or ends). */
  exits(): number {
    return (Atomics.load(this.#a, EXITS_HI) >>> 0) * 2 ** 32 + (Atomics.load(this.#a, EXITS_LO) >>> 0);
  }

  /** Worker: publishes the exit count. */
  setExits(n: number): void {
    Atomics.store(this.#a, EXITS_LO, n >>> 0);
    Atomics.store(this.#a, EXITS_HI, Math.floor(n / 2 ** 32));
  }
}
