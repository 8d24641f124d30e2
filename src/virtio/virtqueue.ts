/**
 * Split virtqueues (virtio 1.x) over guest memory, knowing nothing of any device. The device side pops
 * descriptor chains from the available ring, and returns them through the used ring.
 *
 * The guest is hostile: every index, address, length and chain is checked. A chain that is malformed on its
 * own (a loop, a descriptor outside RAM, a table too long, a readable descriptor after a writable one) is a
 * failed request: {@link SplitQueue.pop} reports it and the caller returns the head with nothing written. A
 * ring that is broken as a whole (an available index more than the queue size ahead, a head index past the
 * table) cannot be trusted again: the queue reports `broken` and the device must set NEEDS_RESET.
 *
 * The hot path allocates nothing: a chain is resolved into a caller-owned {@link Chain} of preallocated
 * arrays holding indices into {@link GuestMemory.bytes}.
 *
 * @module
 */
import type { GuestMemory } from "../memory/guest_memory.ts";

/** Descriptor flag: the chain continues at `next`. */
export const VIRTQ_DESC_F_NEXT = 1;
/** Descriptor flag: the buffer is device-writable. */
export const VIRTQ_DESC_F_WRITE = 2;
/** Descriptor flag: the buffer is a table of descriptors. */
export const VIRTQ_DESC_F_INDIRECT = 4;
/** Available-ring flag: the driver asks for no interrupts (without EVENT_IDX). */
export const VIRTQ_AVAIL_F_NO_INTERRUPT = 1;
/** The largest queue size the split layout allows. */
export const MAX_QUEUE_SIZE = 32768;

/** Why a chain or a ring was refused. */
export type ChainError =
  | "loop"
  | "outside-ram"
  | "too-long"
  | "bad-next"
  | "write-before-read"
  | "bad-indirect"
  | "too-large";

/** A resolved descriptor chain: its head and its buffers, as indices into guest memory. */
export class Chain {
  /** The head descriptor's index (what goes back in the used ring). */
  head = 0;
  /** Number of buffers. */
  count = 0;
  /** How many of the buffers (from the start) are device-readable; the rest are device-writable. */
  readable = 0;
  /** Each buffer's index in {@link GuestMemory.bytes}. */
  readonly at: Float64Array;
  /** Each buffer's length. */
  readonly len: Uint32Array;
  /** Total bytes in device-readable buffers. */
  readBytes = 0;
  /** Total bytes in device-writable buffers. */
  writeBytes = 0;
  /** Why the chain was refused, when it was. */
  error: ChainError | undefined = undefined;

  /** Room for `max` buffers (chains longer than that are refused as too long). */
  constructor(max: number) {
    this.at = new Float64Array(max);
    this.len = new Uint32Array(max);
  }

  /** The most buffers this chain can hold. */
  get capacity(): number {
    return this.at.length;
  }
}

/** What {@link SplitQueue.pop} found. */
export type PopResult = "empty" | "chain" | "failed" | "broken";

/** Where a queue lives and how it behaves; the driver's register values. */
export interface QueueConfig {
  /** Queue size (a power of two, 1..32768). */
  readonly size: number;
  /** Descriptor table address. */
  readonly desc: number;
  /** Available ring ("driver area") address. */
  readonly avail: number;
  /** Used ring ("device area") address. */
  readonly used: number;
  /** VIRTIO_F_EVENT_IDX was negotiated. */
  readonly eventIdx: boolean;
  /** VIRTIO_F_INDIRECT_DESC was negotiated. */
  readonly indirect: boolean;
}

/** Returns why a queue's configuration is unusable, or undefined. */
export function checkQueueConfig(mem: GuestMemory, c: QueueConfig): string | undefined {
  if (!Number.isInteger(c.size) || c.size < 1 || c.size > MAX_QUEUE_SIZE || (c.size & (c.size - 1)) !== 0) {
    return `queue size ${c.size} is not a power of two up to ${MAX_QUEUE_SIZE}`;
  }
  if (c.desc % 16 !== 0 || c.avail % 2 !== 0 || c.used % 4 !== 0) return "queue areas are misaligned";
  if (!mem.contains(c.desc, 16 * c.size)) return "descriptor table is outside guest RAM";
  if (!mem.contains(c.avail, 6 + 2 * c.size)) return "available ring is outside guest RAM";
  if (!mem.contains(c.used, 6 + 8 * c.size)) return "used ring is outside guest RAM";
  return undefined;
}

/** The device side of one split virtqueue. */
export class SplitQueue {
  readonly #mem: GuestMemory;
  readonly #view: DataView;
  readonly #u16: Uint16Array;
  readonly #size: number;
  readonly #desc: number; // indices into mem.bytes
  readonly #avail: number;
  readonly #used: number;
  readonly #eventIdx: boolean;
  readonly #indirect: boolean;
  readonly #seen: Uint8Array;
  #lastAvail = 0;
  #usedIdx = 0;
  #signalledUsed = 0;
  #broken = false;

  /** Binds to the rings in `mem`; throws RangeError when {@link checkQueueConfig} refuses `c`. */
  constructor(mem: GuestMemory, c: QueueConfig) {
    const why = checkQueueConfig(mem, c);
    if (why !== undefined) throw new RangeError(why);
    this.#mem = mem;
    this.#view = mem.view;
    this.#u16 = new Uint16Array(mem.bytes.buffer, mem.bytes.byteOffset, mem.bytes.byteLength >>> 1);
    this.#size = c.size;
    this.#desc = mem.find(c.desc, 16 * c.size);
    this.#avail = mem.find(c.avail, 6 + 2 * c.size);
    this.#used = mem.find(c.used, 6 + 8 * c.size);
    this.#eventIdx = c.eventIdx;
    this.#indirect = c.indirect;
    this.#seen = new Uint8Array(Math.max(c.size, 1));
    // A queue starts at index 0 on both rings (whatever the used ring held before); publish that.
    Atomics.store(this.#u16, (this.#used + 2) >>> 1, 0);
  }

  /** The queue size. */
  get size(): number {
    return this.#size;
  }

  /** True once the ring itself was found corrupt; the device must then ask for a reset. */
  get broken(): boolean {
    return this.#broken;
  }

  #availIdx(): number {
    // 16-bit aligned (checked) so an atomic load gives acquire ordering for the ring entries after it.
    return Atomics.load(this.#u16, (this.#avail + 2) >>> 1);
  }

  /** How many chains the driver has made available and the device has not taken. */
  pending(): number {
    return (this.#availIdx() - this.#lastAvail) & 0xffff;
  }

  /**
   * Takes the next available chain into `chain`. `"chain"`: a good chain; `"failed"`: a malformed chain whose
   * head must be returned with {@link push}(head, 0) (`chain.error` says why); `"empty"`: nothing pending;
   * `"broken"`: the ring is corrupt, stop using the queue.
   */
  pop(chain: Chain): PopResult {
    if (this.#broken) return "broken";
    const avail = this.#availIdx();
    const pending = (avail - this.#lastAvail) & 0xffff;
    if (pending === 0) return "empty";
    if (pending > this.#size) {
      this.#broken = true;
      return "broken";
    }
    const slot = this.#lastAvail & (this.#size - 1);
    const head = this.#view.getUint16(this.#avail + 4 + 2 * slot, true);
    if (head >= this.#size) {
      this.#broken = true;
      return "broken";
    }
    this.#lastAvail = (this.#lastAvail + 1) & 0xffff;
    if (this.#eventIdx) {
      // avail_event: tell the driver which index we will look at next.
      this.#view.setUint16(this.#used + 4 + 8 * this.#size, this.#lastAvail, true);
    }
    chain.head = head;
    chain.error = this.#walk(chain, head);
    return chain.error === undefined ? "chain" : "failed";
  }

  #walk(chain: Chain, head: number): ChainError | undefined {
    chain.count = 0;
    chain.readable = 0;
    chain.readBytes = 0;
    chain.writeBytes = 0;
    const v = this.#view;
    const seen = this.#seen;
    seen.fill(0);
    let table = this.#desc;
    let tableSize = this.#size;
    let i = head;
    let indirectDone = false;
    let writing = false;
    for (;;) {
      if (i >= tableSize) return "bad-next";
      if (seen[i] !== 0) return "loop";
      seen[i] = 1;
      const d = table + 16 * i;
      const addr = Number(v.getBigUint64(d, true));
      const len = v.getUint32(d + 8, true);
      const flags = v.getUint16(d + 12, true);
      const next = v.getUint16(d + 14, true);
      if ((flags & VIRTQ_DESC_F_INDIRECT) !== 0) {
        // An indirect descriptor must be alone in its chain (no NEXT), in the main table, and hold whole
        // descriptors that fit in RAM.
        if (
          !this.#indirect || indirectDone || table !== this.#desc || (flags & VIRTQ_DESC_F_NEXT) !== 0 ||
          len === 0 || len % 16 !== 0 || chain.count !== 0
        ) return "bad-indirect";
        const at = this.#mem.find(addr, len);
        if (at < 0 || at % 2 !== 0) return at < 0 ? "outside-ram" : "bad-indirect";
        indirectDone = true;
        table = at;
        tableSize = len / 16;
        if (tableSize > seen.length) return "too-long";
        seen.fill(0);
        i = 0;
        continue;
      }
      const at = len === 0 ? 0 : this.#mem.find(addr, len);
      if (at < 0) return "outside-ram";
      const w = (flags & VIRTQ_DESC_F_WRITE) !== 0;
      if (w) writing = true;
      else if (writing) return "write-before-read";
      if (chain.count >= chain.capacity) return "too-long";
      chain.at[chain.count] = at;
      chain.len[chain.count] = len;
      chain.count++;
      if (w) chain.writeBytes += len;
      else {
        chain.readable++;
        chain.readBytes += len;
      }
      if ((flags & VIRTQ_DESC_F_NEXT) === 0) return undefined;
      i = next;
    }
  }

  /**
   * Returns chain `head` to the driver, saying `written` bytes were written into its writable buffers. The
   * element is written first, then the index is published with an atomic store (release ordering).
   */
  push(head: number, written: number): void {
    if (this.#broken) return;
    const slot = this.#usedIdx & (this.#size - 1);
    const e = this.#used + 4 + 8 * slot;
    this.#view.setUint32(e, head, true);
    this.#view.setUint32(e + 4, written >>> 0, true);
    this.#usedIdx = (this.#usedIdx + 1) & 0xffff;
    Atomics.store(this.#u16, (this.#used + 2) >>> 1, this.#usedIdx);
  }

  /**
   * Whether the driver wants an interrupt for what was pushed since the last call that said yes: with
   * EVENT_IDX, when used_event lies among the new entries; without, unless it set NO_INTERRUPT.
   */
  shouldNotify(): boolean {
    const old = this.#signalledUsed;
    const now = this.#usedIdx;
    if (old === now) return false;
    let yes: boolean;
    if (this.#eventIdx) {
      const usedEvent = Atomics.load(this.#u16, (this.#avail + 4 + 2 * this.#size) >>> 1);
      // Notify when used_event is in [old, now): the driver asked to hear once the device got past it.
      yes = ((now - usedEvent - 1) & 0xffff) < ((now - old) & 0xffff);
    } else {
      yes = (Atomics.load(this.#u16, this.#avail >>> 1) & VIRTQ_AVAIL_F_NO_INTERRUPT) === 0;
    }
    this.#signalledUsed = now;
    return yes;
  }
}
