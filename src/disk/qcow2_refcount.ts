/**
 * qcow2 refcounts: the refcount table and its 16-bit refcount blocks, cluster allocation, and deferred frees.
 *
 * Crash safety rests on two rules. A cluster's refcount reaches the disk before anything points to it
 * (increments are written first, by {@linkcode Refcounts.writeIncrements}); a decrement reaches the disk only
 * after the metadata that stopped pointing to the cluster (frees are queued, and applied by
 * {@linkcode Refcounts.applyFrees} at the end of a flush). A crash in between leaks clusters, never more.
 *
 * @module
 */
import type { FileIO } from "./file_io.ts";
import { Qcow2Error } from "./qcow2_error.ts";

/** Offset in the header of refcount_table_offset (u64), followed by refcount_table_clusters (u32). */
const REFTABLE_HEADER_OFFSET = 48;
/** Refcount blocks kept in memory when clean (dirty ones are kept until written). */
const CACHE_BLOCKS = 256;
/** Largest refcount table we make, in bytes (QEMU's own limit). */
const MAX_REFTABLE_BYTES = 8 << 20;

/** The refcounts of one open image. */
export class Refcounts {
  readonly #io: FileIO;
  readonly #clusterBits: number;
  readonly #clusterSize: number;
  /** log2 of the refcount entries in one block (16-bit entries). */
  readonly #blockBits: number;
  #tableOffset: number;
  #table: Float64Array;
  readonly #blocks = new Map<number, DataView>();
  readonly #dirtyBlocks = new Set<number>();
  readonly #dirtyTable = new Set<number>();
  #pendingFrees: number[] = [];
  #hint = 0;

  /** Loads the refcount table (`clusters` clusters at `tableOffset`) of the image open in `io`. */
  constructor(io: FileIO, clusterBits: number, tableOffset: number, clusters: number) {
    this.#io = io;
    this.#clusterBits = clusterBits;
    this.#clusterSize = 2 ** clusterBits;
    this.#blockBits = clusterBits - 1;
    this.#tableOffset = tableOffset;
    const raw = new Uint8Array(clusters * this.#clusterSize);
    io.readAt(tableOffset, raw);
    const v = new DataView(raw.buffer);
    this.#table = new Float64Array(raw.length / 8);
    for (let i = 0; i < this.#table.length; i++) {
      const off = (v.getUint32(i * 8) & 0x00ffffff) * 2 ** 32 + ((v.getUint32(i * 8 + 4) & ~0x1ff) >>> 0);
      this.#table[i] = off;
    }
  }

  /** The refcount of cluster number `cluster`. */
  get(cluster: number): number {
    const b = this.#block(cluster);
    return b === undefined ? 0 : b.getUint16((cluster & ((1 << this.#blockBits) - 1)) * 2);
  }

  /**
   * Allocates between 1 and `max` contiguous free clusters (as many as are free in a row, within one refcount
   * block's range), gives them refcount 1, and returns the file offset of the first and how many there are.
   */
  allocate(max: number): { offset: number; count: number } {
    for (;;) {
      let start = this.#hint;
      while (this.get(start) !== 0) start++;
      if (this.#block(start) === undefined) {
        this.#createBlock(start); // takes `start` itself (or grows the table): look again
        continue;
      }
      const bi = this.#blockOf(start);
      let count = 1;
      while (count < max && this.#blockOf(start + count) === bi && this.get(start + count) === 0) count++;
      for (let c = start; c < start + count; c++) this.#set(c, 1);
      this.#hint = start + count;
      return { offset: start * this.#clusterSize, count };
    }
  }

  /** Queues a decrement of every cluster overlapping `[offset, offset + bytes)`, for the end of a flush. */
  deferFree(offset: number, bytes: number): void {
    const first = Math.floor(offset / this.#clusterSize);
    const last = Math.floor((offset + bytes - 1) / this.#clusterSize);
    for (let c = first; c <= last; c++) this.#pendingFrees.push(c);
  }

  /** True when increments or new blocks wait to be written. */
  get dirty(): boolean {
    return this.#dirtyBlocks.size > 0 || this.#dirtyTable.size > 0;
  }

  /** True when queued frees wait for {@linkcode Refcounts.applyFrees}. */
  get hasPendingFrees(): boolean {
    return this.#pendingFrees.length > 0;
  }

  /**
   * Writes the blocks holding increments, then (after a sync, when the table changed) the new table entries.
   * The caller syncs afterwards before writing anything that points to newly allocated clusters.
   */
  writeIncrements(): void {
    this.#writeBlocks();
    if (this.#dirtyTable.size > 0) {
      this.#io.sync(); // a table entry must never point to a block that is not on disk yet
      for (const i of [...this.#dirtyTable].sort((a, b) => a - b)) {
        const e = new Uint8Array(8);
        new DataView(e.buffer).setBigUint64(0, BigInt(this.#table[i]));
        this.#io.writeAt(this.#tableOffset + i * 8, e);
      }
      this.#dirtyTable.clear();
    }
  }

  /** Applies and writes the queued decrements. Call only once the unlinking metadata is durable. */
  applyFrees(): void {
    const frees = this.#pendingFrees;
    this.#pendingFrees = [];
    for (const c of frees) {
      const count = this.get(c);
      if (count === 0) {
        throw new Qcow2Error(
          this.#io.path,
          `refcount underflow at host cluster ${c}: the image is corrupt (run \`qemu-img check -r all\`)`,
        );
      }
      this.#set(c, count - 1);
      if (count === 1 && c < this.#hint) this.#hint = c;
    }
    this.#writeBlocks();
  }

  #writeBlocks(): void {
    for (const bi of [...this.#dirtyBlocks].sort((a, b) => a - b)) {
      const b = this.#blocks.get(bi)!;
      this.#io.writeAt(this.#table[bi], new Uint8Array(b.buffer));
    }
    this.#dirtyBlocks.clear();
  }

  #set(cluster: number, value: number): void {
    const b = this.#block(cluster);
    if (b === undefined) {
      throw new Qcow2Error(this.#io.path, `internal: no refcount block for cluster ${cluster}`);
    }
    b.setUint16((cluster & ((1 << this.#blockBits) - 1)) * 2, value);
    this.#dirtyBlocks.add(this.#blockOf(cluster));
  }

  #block(cluster: number): DataView | undefined {
    const bi = this.#blockOf(cluster);
    const cached = this.#blocks.get(bi);
    if (cached !== undefined) return cached;
    if (bi >= this.#table.length) return undefined;
    const off = this.#table[bi];
    if (off === 0) return undefined;
    if (off % this.#clusterSize !== 0 || off + this.#clusterSize > this.#io.length) {
      throw new Qcow2Error(
        this.#io.path,
        `refcount block ${bi} at offset ${off} is misaligned or past the end of the file: the image is corrupt`,
      );
    }
    const raw = new Uint8Array(this.#clusterSize);
    this.#io.readAt(off, raw);
    const v = new DataView(raw.buffer);
    if (this.#blocks.size >= CACHE_BLOCKS) {
      // Forget the oldest clean blocks (they are on disk as they are); dirty ones stay until written.
      for (const key of this.#blocks.keys()) {
        if (this.#blocks.size < CACHE_BLOCKS / 2) break;
        if (!this.#dirtyBlocks.has(key)) this.#blocks.delete(key);
      }
    }
    this.#blocks.set(bi, v);
    return v;
  }

  /** Creates the missing refcount block covering `cluster`, placed at `cluster` itself (self-describing). */
  #createBlock(cluster: number): void {
    const bi = this.#blockOf(cluster);
    if (bi >= this.#table.length) {
      this.#growTable(bi);
      return;
    }
    const v = new DataView(new ArrayBuffer(this.#clusterSize));
    this.#blocks.set(bi, v);
    this.#table[bi] = cluster * this.#clusterSize;
    this.#dirtyTable.add(bi);
    this.#set(cluster, 1);
  }

  /**
   * Replaces the refcount table by a larger one that has an entry for block `bi`. Block `bi` covers only free
   * clusters (it does not exist yet), so the new block goes in its first cluster and the new table right after
   * it, all described by the new block. Order: every dirty block → sync → new table → sync → header → sync;
   * the old table's clusters are freed at the next flush. A crash anywhere leaves the old table in charge.
   */
  #growTable(bi: number): void {
    const cs = this.#clusterSize;
    const entries = Math.max(bi + 1, this.#table.length * 2);
    const clusters = Math.ceil((entries * 8) / cs);
    const perBlock = 2 ** this.#blockBits;
    if (clusters * cs > MAX_REFTABLE_BYTES || 1 + clusters > perBlock) {
      throw new Qcow2Error(
        this.#io.path,
        `the refcount table would have to grow to ${clusters} clusters, more than supported: ` +
          "copy the image with `qemu-img convert -O qcow2` (larger clusters)",
      );
    }
    const first = bi * perBlock;
    const table = new Float64Array((clusters * cs) / 8);
    table.set(this.#table);
    table[bi] = first * cs;
    const block = new DataView(new ArrayBuffer(cs));
    for (let i = 0; i <= clusters; i++) block.setUint16(i * 2, 1);
    this.#blocks.set(bi, block);
    this.#dirtyBlocks.add(bi);
    const oldOffset = this.#tableOffset;
    const oldBytes = this.#table.length * 8;
    this.#table = table;
    this.#writeBlocks();
    this.#io.sync();
    const raw = new Uint8Array(clusters * cs);
    const rv = new DataView(raw.buffer);
    for (let i = 0; i < table.length; i++) rv.setBigUint64(i * 8, BigInt(table[i]));
    this.#tableOffset = (first + 1) * cs;
    this.#io.writeAt(this.#tableOffset, raw);
    this.#io.sync();
    const head = new Uint8Array(12);
    new DataView(head.buffer).setBigUint64(0, BigInt(this.#tableOffset));
    new DataView(head.buffer).setUint32(8, clusters);
    this.#io.writeAt(REFTABLE_HEADER_OFFSET, head);
    this.#io.sync();
    this.#dirtyTable.clear();
    this.deferFree(oldOffset, oldBytes);
  }

  #blockOf(cluster: number): number {
    return Math.floor(cluster / 2 ** this.#blockBits);
  }
}
