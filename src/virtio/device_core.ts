/**
 * The device side of a virtio function, run in its device worker: sleeps on the notify doorbell, rebuilds
 * its queues when the driver resets the device or sets DRIVER_OK, serves every pending chain through a
 * backend (virtio-blk, virtio-rng), publishes used entries and raises the interrupt doorbell once per batch.
 * A ring found corrupt sets NEEDS_RESET (with a config interrupt) and the device idles until the driver resets
 * it; nothing the guest writes makes this loop throw.
 *
 * @module
 */
import type { GuestMemory } from "../memory/guest_memory.ts";
import {
  DEVICE_CONFIG_OFFSET,
  DEVICE_CONFIG_SIZE,
  FEATURE,
  hasFeature,
  ISR_CONFIG,
  ISR_QUEUE,
  NOTIFY_STOP,
  Q,
  queueWord,
  raiseInterrupt,
  STATUS,
  W,
} from "./transport_state.ts";
import { Chain, SplitQueue } from "./virtqueue.ts";

/** How many times the loop looks at the doorbell before sleeping on it. */
const SPIN_CHECKS = 4000;
/**
 * Longest spin before sleeping, in milliseconds (checked every {@link SPIN_CHECKS} looks). Measured on a
 * 2-core host: 0.3 ms helped 4 KiB requests by ~20 % when the host was idle and halved throughput when other
 * work competed for the cores; 20 µs was the best under contention and close to the best when idle.
 */
const SPIN_MS = 0.02;

/** What a device type does with its queues. */
export interface VirtioBackend {
  /** Number of queues. */
  readonly numQueues: number;
  /** Largest size of each queue. */
  readonly maxQueueSize: number;
  /** Device-type feature bits (the transport adds VERSION_1, EVENT_IDX and INDIRECT_DESC). */
  readonly features: bigint;
  /** Bytes of device config. */
  readonly configLength: number;
  /** Fills the device config bytes. */
  writeConfig(config: Uint8Array): void;
  /**
   * Serves one good chain from queue `q`; returns how many bytes it wrote into the chain's writable buffers.
   * Must not throw for anything the guest controls.
   */
  handle(q: number, chain: Chain, mem: GuestMemory): number | Promise<number>;
  /**
   * Whether queue `q` should be served now; absent means always. virtio-net's receive queue holds its
   * buffers until a frame is waiting.
   */
  ready?(q: number): boolean;
  /** Device-type counters (virtio-net: frames, drops), reported with the loop's own. */
  stats?(): Record<string, number>;
}

/** Counters a test or `vmctl status` can read. */
export interface DeviceCounters {
  /** Chains served. */
  served: number;
  /** Chains refused as malformed (returned with length 0). */
  failed: number;
  /** Times the device asked for a reset. */
  needsReset: number;
  /** Wake-ups. */
  wakeups: number;
}

/** What the transport publishes of a device before its driver starts: a backend's shape, not its work. */
export type TransportShape = Pick<
  VirtioBackend,
  "numQueues" | "maxQueueSize" | "features" | "configLength" | "writeConfig"
>;

/**
 * Publishes `shape`'s features, queue sizes and config into the transport state `state`, which the driver
 * reads before DRIVER_OK. A device worker does it when it starts; for a worker started only at DRIVER_OK
 * (device_handle.ts), the main thread does it first.
 */
export function publishTransport(state: SharedArrayBuffer, shape: TransportShape): void {
  const w = new Int32Array(state, 0, DEVICE_CONFIG_OFFSET / 4);
  const f = shape.features | (1n << BigInt(FEATURE.VERSION_1)) | (1n << BigInt(FEATURE.EVENT_IDX)) |
    (1n << BigInt(FEATURE.INDIRECT_DESC));
  Atomics.store(w, W.DEVICE_FEATURES_LO, Number(f & 0xffffffffn) | 0);
  Atomics.store(w, W.DEVICE_FEATURES_HI, Number(f >> 32n) | 0);
  Atomics.store(w, W.NUM_QUEUES, shape.numQueues);
  for (let q = 0; q < shape.numQueues; q++) {
    Atomics.store(w, queueWord(q, Q.MAX_SIZE), shape.maxQueueSize);
    Atomics.store(w, queueWord(q, Q.SIZE), shape.maxQueueSize);
  }
  const config = new Uint8Array(state, DEVICE_CONFIG_OFFSET, DEVICE_CONFIG_SIZE);
  shape.writeConfig(config);
  Atomics.store(w, W.CONFIG_LENGTH, Math.min(shape.configLength, DEVICE_CONFIG_SIZE));
  Atomics.store(w, W.READY, 1);
}

/** The device loop over one function's transport state. */
export class VirtioDevice {
  readonly #w: Int32Array;
  readonly #mem: GuestMemory;
  readonly #backend: VirtioBackend;
  /** The loop's counters and the backend's, by name. */
  stats(): Record<string, number> {
    return { ...this.counters, ...this.#backend.stats?.() };
  }
  readonly #chains: Chain[];
  #queues: (SplitQueue | undefined)[] = [];
  #epoch = -1;
  /** What happened so far. */
  readonly counters: DeviceCounters = { served: 0, failed: 0, needsReset: 0, wakeups: 0 };

  /**
   * Publishes the backend's features, queue sizes and config into `state`, unless `published` (the main
   * thread did, and the driver may already have negotiated and set DRIVER_OK: the first pass then builds
   * the queues it set up).
   */
  constructor(mem: GuestMemory, state: SharedArrayBuffer, backend: VirtioBackend, published = false) {
    this.#w = new Int32Array(state, 0, DEVICE_CONFIG_OFFSET / 4);
    this.#mem = mem;
    this.#backend = backend;
    if (!published) publishTransport(state, backend);
    this.#chains = Array.from({ length: backend.numQueues }, () => new Chain(backend.maxQueueSize));
  }

  /** Serves the queues until the stop doorbell rings. */
  async run(): Promise<void> {
    const w = this.#w;
    for (;;) {
      if (Atomics.load(w, W.STOP) !== 0) return;
      let bits = Atomics.exchange(w, W.NOTIFY, 0);
      // A sleep and wake-up costs ~20-40 µs here; a driver that just got completions often notifies again
      // within that time, so look a little while before sleeping.
      if (bits === 0) {
        const until = performance.now() + SPIN_MS;
        do {
          for (let i = 0; bits === 0 && i < SPIN_CHECKS; i++) {
            if (Atomics.load(w, W.NOTIFY) !== 0) bits = Atomics.exchange(w, W.NOTIFY, 0);
          }
        } while (bits === 0 && performance.now() < until);
      }
      if (bits === 0) {
        const r = Atomics.waitAsync(w, W.NOTIFY, 0);
        if (r.async) await r.value;
        continue;
      }
      if ((bits & NOTIFY_STOP) !== 0) return;
      this.counters.wakeups++;
      await this.serve();
    }
  }

  /** One pass: rebuild the queues if the epoch moved, then serve everything pending. */
  async serve(): Promise<void> {
    const w = this.#w;
    const epoch = Atomics.load(w, W.EPOCH);
    if (epoch !== this.#epoch) {
      this.#epoch = epoch;
      this.#rebuild();
      // Nothing of the old queues is running any more: a reset is complete.
      Atomics.store(w, W.RESET_PENDING, 0);
      Atomics.notify(w, W.RESET_PENDING);
    }
    for (let q = 0; q < this.#queues.length; q++) {
      const queue = this.#queues[q];
      if (queue === undefined) continue;
      const chain = this.#chains[q];
      for (;;) {
        if (this.#backend.ready !== undefined && !this.#backend.ready(q)) break;
        const r = queue.pop(chain);
        if (r === "empty") break;
        if (r === "broken") {
          this.#needsReset();
          return;
        }
        let written = 0;
        if (r === "failed") this.counters.failed++;
        else {
          const h = this.#backend.handle(q, chain, this.#mem);
          written = typeof h === "number" ? h : await h;
          this.counters.served++;
        }
        // A reset while the request ran: its queue is gone; drop the completion.
        if (Atomics.load(w, W.EPOCH) !== this.#epoch) return;
        queue.push(chain.head, written);
      }
      if (queue.shouldNotify()) raiseInterrupt(w, ISR_QUEUE, q);
    }
  }

  #rebuild(): void {
    const w = this.#w;
    this.#queues = [];
    const status = Atomics.load(w, W.STATUS);
    if ((status & STATUS.DRIVER_OK) === 0 || (status & STATUS.NEEDS_RESET) !== 0) return;
    const lo = Atomics.load(w, W.DRIVER_FEATURES_LO);
    const hi = Atomics.load(w, W.DRIVER_FEATURES_HI);
    for (let q = 0; q < this.#backend.numQueues; q++) {
      if (Atomics.load(w, queueWord(q, Q.ENABLE)) === 0) {
        this.#queues.push(undefined);
        continue;
      }
      const addr = (f: number) =>
        (Atomics.load(w, queueWord(q, f + 1)) >>> 0) * 2 ** 32 + (Atomics.load(w, queueWord(q, f)) >>> 0);
      try {
        this.#queues.push(
          new SplitQueue(this.#mem, {
            size: Atomics.load(w, queueWord(q, Q.SIZE)),
            desc: addr(Q.DESC_LO),
            avail: addr(Q.DRIVER_LO),
            used: addr(Q.DEVICE_LO),
            eventIdx: hasFeature(lo, hi, FEATURE.EVENT_IDX),
            indirect: hasFeature(lo, hi, FEATURE.INDIRECT_DESC),
          }),
        );
      } catch {
        // rings outside RAM or misaligned: the driver set up something we cannot serve
        this.#needsReset();
        return;
      }
    }
  }

  #needsReset(): void {
    const w = this.#w;
    this.#queues = [];
    this.counters.needsReset++;
    Atomics.or(w, W.STATUS, STATUS.NEEDS_RESET);
    Atomics.add(w, W.CONFIG_GENERATION, 1);
    raiseInterrupt(w, ISR_CONFIG);
  }
}
