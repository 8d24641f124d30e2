/**
 * virtio-rng (entropy source, device type 4): one queue of device-writable buffers, filled from the host's
 * CSPRNG (`crypto.getRandomValues`, which needs no permission).
 *
 * @module
 */
import type { GuestMemory } from "../memory/guest_memory.ts";
import type { VirtioBackend } from "./device_core.ts";
import type { Chain } from "./virtqueue.ts";

const CHUNK = 65536; // getRandomValues' limit per call

/** The virtio-rng backend. */
export class RngBackend implements VirtioBackend {
  /** One request queue. */
  readonly numQueues = 1;
  /** Queue size. */
  readonly maxQueueSize = 64;
  /** No device config. */
  readonly configLength = 0;
  /** No device-type features. */
  readonly features = 0n;
  // getRandomValues refuses views of shared memory: fill a private buffer, then copy.
  readonly #scratch = new Uint8Array(CHUNK);

  /** virtio-rng has no device config. */
  writeConfig(_config: Uint8Array): void {}

  /** Fills every writable buffer of the chain; readable buffers are ignored. */
  handle(_q: number, chain: Chain, mem: GuestMemory): number {
    let written = 0;
    for (let i = chain.readable; i < chain.count; i++) {
      let at = chain.at[i];
      let left = chain.len[i];
      while (left > 0) {
        const n = Math.min(left, CHUNK);
        const r = crypto.getRandomValues(this.#scratch.subarray(0, n));
        mem.bytes.set(r, at);
        at += n;
        left -= n;
        written += n;
      }
    }
    return written;
  }
}
