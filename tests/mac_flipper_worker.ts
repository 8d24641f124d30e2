/**
 * Test worker for the locked-lladdr race: plays a second vCPU that rewrites one byte of a frame in guest
 * memory as fast as it can, between the NIC's MAC (`good`) and a spoofed value (`bad`), until told to stop.
 *
 * Message in: `{ ram, at, good, bad, ctl }` (`ram` the guest memory buffer, `ctl` an Int32Array's buffer:
 * [0] = stop flag, [1] = set to 1 once flipping). Message out: how many flips it made.
 *
 * @module
 */
/// <reference no-default-lib="true" />
/// <reference lib="deno.worker" />

/** What the test posts to start flipping. */
export interface FlipOrder {
  /** Guest memory. */
  readonly ram: SharedArrayBuffer;
  /** Index of the byte to flip in `ram`. */
  readonly at: number;
  /** The byte's honest value. */
  readonly good: number;
  /** The byte's spoofed value. */
  readonly bad: number;
  /** Control words: [0] stop, [1] running. */
  readonly ctl: SharedArrayBuffer;
}

self.onmessage = (e: MessageEvent<FlipOrder>) => {
  const { ram, at, good, bad, ctl } = e.data;
  const bytes = new Uint8Array(ram);
  const c = new Int32Array(ctl);
  Atomics.store(c, 1, 1);
  let flips = 0;
  while (Atomics.load(c, 0) === 0) {
    Atomics.store(bytes, at, bad);
    Atomics.store(bytes, at, good);
    flips++;
  }
  self.postMessage(flips);
};
