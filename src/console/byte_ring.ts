/**
 * A single-producer single-consumer byte ring in a SharedArrayBuffer, for console bytes between a thread that
 * runs a device (a vCPU worker, for the UART) and the thread that owns the terminal. The producer never
 * allocates; the consumer is woken only when it said it is waiting, so a busy producer pays no futex call per
 * byte.
 *
 * @module
 */

const HEAD = 0; // total bytes written (producer)
const TAIL = 1; // total bytes read (consumer)
const CONSUMER_WAITING = 2;
const PRODUCER_WAITING = 3;
const HEADER_BYTES = 16;

/** A ring's shareable description. */
export interface ByteRingShare {
  /** The buffer: a 16-byte header, then `capacity` data bytes. */
  readonly sab: SharedArrayBuffer;
}

/** One end (either) of a byte ring. */
export class ByteRing {
  readonly #ctl: Int32Array;
  readonly #data: Uint8Array;
  readonly #mask: number;
  /** The buffer behind the ring; post it to the other side. */
  readonly sab: SharedArrayBuffer;

  /** Wraps an existing ring buffer (from {@link ByteRing.create} on either side). */
  constructor(share: ByteRingShare) {
    this.sab = share.sab;
    this.#ctl = new Int32Array(share.sab, 0, 4);
    this.#data = new Uint8Array(share.sab, HEADER_BYTES);
    const capacity = this.#data.length;
    if (capacity === 0 || (capacity & (capacity - 1)) !== 0) {
      throw new RangeError(`byte ring capacity ${capacity} is not a power of two`);
    }
    this.#mask = capacity - 1;
  }

  /** A new ring of `capacity` bytes (a power of two). */
  static create(capacity = 1 << 16): ByteRing {
    return new ByteRing({ sab: new SharedArrayBuffer(HEADER_BYTES + capacity) });
  }

  /** Bytes waiting to be read. */
  available(): number {
    return (Atomics.load(this.#ctl, HEAD) - Atomics.load(this.#ctl, TAIL)) | 0;
  }

  /** Producer: appends one byte; false when the ring is full. */
  tryPush(byte: number): boolean {
    const head = Atomics.load(this.#ctl, HEAD);
    if (((head - Atomics.load(this.#ctl, TAIL)) | 0) > this.#mask) return false;
    this.#data[head & this.#mask] = byte;
    Atomics.store(this.#ctl, HEAD, (head + 1) | 0);
    if (Atomics.load(this.#ctl, CONSUMER_WAITING) !== 0) {
      Atomics.store(this.#ctl, CONSUMER_WAITING, 0);
      Atomics.notify(this.#ctl, HEAD);
    }
    return true;
  }

  /**
   * Producer: appends one byte, waiting up to `timeoutMs` for room (as a UART's transmitter holds the CPU when
   * its FIFO is full). False if there was still no room.
   */
  push(byte: number, timeoutMs = 1000): boolean {
    if (this.tryPush(byte)) return true;
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      Atomics.store(this.#ctl, PRODUCER_WAITING, 1);
      const tail = Atomics.load(this.#ctl, TAIL);
      if (this.tryPush(byte)) return true;
      Atomics.wait(this.#ctl, TAIL, tail, 10);
    }
    return this.tryPush(byte);
  }

  /** Consumer: takes one byte, or returns -1 when the ring is empty. */
  tryPop(): number {
    const tail = Atomics.load(this.#ctl, TAIL);
    if (((Atomics.load(this.#ctl, HEAD) - tail) | 0) === 0) return -1;
    const byte = this.#data[tail & this.#mask];
    Atomics.store(this.#ctl, TAIL, (tail + 1) | 0);
    if (Atomics.load(this.#ctl, PRODUCER_WAITING) !== 0) {
      Atomics.store(this.#ctl, PRODUCER_WAITING, 0);
      Atomics.notify(this.#ctl, TAIL);
    }
    return byte;
  }

  /** Consumer: takes every waiting byte (a copy). */
  drain(): Uint8Array {
    const tail = Atomics.load(this.#ctl, TAIL);
    const n = (Atomics.load(this.#ctl, HEAD) - tail) | 0;
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i++) out[i] = this.#data[(tail + i) & this.#mask];
    Atomics.store(this.#ctl, TAIL, (tail + n) | 0);
    if (n > 0 && Atomics.load(this.#ctl, PRODUCER_WAITING) !== 0) {
      Atomics.store(this.#ctl, PRODUCER_WAITING, 0);
      Atomics.notify(this.#ctl, TAIL);
    }
    return out;
  }

  /** Consumer: resolves when bytes are available or after `timeoutMs`. Does not block the thread. */
  async waitForData(timeoutMs: number): Promise<void> {
    const head = Atomics.load(this.#ctl, HEAD);
    if (((head - Atomics.load(this.#ctl, TAIL)) | 0) !== 0) return;
    Atomics.store(this.#ctl, CONSUMER_WAITING, 1);
    if (Atomics.load(this.#ctl, HEAD) !== head) return;
    const r = Atomics.waitAsync(this.#ctl, HEAD, head, timeoutMs);
    if (!r.async) return;
    // A pending waitAsync does not keep Deno's event loop alive; a timer of the same length does.
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([
      r.value,
      new Promise((wake) => timer = setTimeout(wake, Math.min(timeoutMs, 2 ** 31 - 1))),
    ]);
    clearTimeout(timer);
  }

  /** Producer (blocking threads only): blocks until bytes are available or `timeoutMs` passes. */
  waitForDataSync(timeoutMs: number): void {
    const head = Atomics.load(this.#ctl, HEAD);
    if (((head - Atomics.load(this.#ctl, TAIL)) | 0) !== 0) return;
    Atomics.store(this.#ctl, CONSUMER_WAITING, 1);
    Atomics.wait(this.#ctl, HEAD, head, timeoutMs);
  }
}
