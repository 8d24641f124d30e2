/**
 * qcow2 L1 and L2 tables: guest-offset-to-host lookups, a bounded write-back cache of L2 tables, and writing
 * changed tables back in order (every L2 table before the L1 entries that point to it).
 *
 * @module
 */
import type { FileIO } from "./file_io.ts";
import type { Qcow2Header } from "./qcow2_header.ts";
import { Qcow2Error } from "./qcow2_error.ts";
import type { Refcounts } from "./qcow2_refcount.ts";

/** Where one guest cluster's data lives. */
export type Mapping =
  | { kind: "unallocated" }
  | { kind: "zero"; host: number }
  | { kind: "data"; host: number; copied: boolean }
  | { kind: "compressed"; host: number; bytes: number; rangeStart: number; rangeBytes: number };

/** The unallocated mapping (shared: mappings are never mutated). */
const UNALLOCATED: Mapping = { kind: "unallocated" };
/** Bit 63 of an L1 or L2 entry (in the high word): refcount is exactly one. */
const COPIED = 0x80000000;
/** Bit 62 of an L2 entry (in the high word): the cluster is compressed. */
const COMPRESSED = 0x40000000;
/** L2 tables kept in memory at most. */
const CACHE_TABLES = 256;

interface L2Table {
  bytes: Uint8Array;
  view: DataView;
  dirty: boolean;
}

/** The L1 table and cached L2 tables of one open image. */
export class Qcow2Tables {
  readonly #io: FileIO;
  readonly #h: Qcow2Header;
  readonly #refcounts: Refcounts;
  readonly #l2Bits: number;
  readonly #l1: Float64Array;
  readonly #dirtyL1 = new Set<number>();
  readonly #cache = new Map<number, L2Table>();
  /** Called when the cache is full of dirty tables: the owner must flush metadata. */
  onPressure: () => void = () => {};

  /** Loads the L1 table of the image open in `io`. */
  constructor(io: FileIO, h: Qcow2Header, refcounts: Refcounts) {
    this.#io = io;
    this.#h = h;
    this.#refcounts = refcounts;
    this.#l2Bits = h.clusterBits - 3;
    const raw = new Uint8Array(h.l1Size * 8);
    io.readAt(h.l1Offset, raw);
    const v = new DataView(raw.buffer);
    this.#l1 = new Float64Array(h.l1Size);
    for (let i = 0; i < h.l1Size; i++) {
      const off = (v.getUint32(i * 8) & 0x00ffffff) * 2 ** 32 + ((v.getUint32(i * 8 + 4) & ~0x1ff) >>> 0);
      this.#l1[i] = off;
    }
  }

  /** The mapping of the guest cluster containing `guest`. */
  lookup(guest: number): Mapping {
    const t = this.#table(guest, false);
    if (t === undefined) return UNALLOCATED;
    const i = this.#l2Index(guest) * 8;
    return this.#decode(t.view.getUint32(i), t.view.getUint32(i + 4), guest);
  }

  /** Points the guest cluster containing `guest` at `host` (a fresh cluster with refcount 1). */
  setData(guest: number, host: number): void {
    this.#set(guest, COPIED | Math.floor(host / 2 ** 32), host >>> 0);
  }

  /** Marks the guest cluster containing `guest` as reading zeros (qcow2 v3), with no host cluster. */
  setZero(guest: number): void {
    this.#set(guest, 0, 1);
  }

  /** Marks the guest cluster containing `guest` as unallocated (reads fall through to the backing file). */
  setUnallocated(guest: number): void {
    this.#set(guest, 0, 0);
  }

  /** True when the L2 table covering `guest` exists (so a lookup that says unallocated is cheap to change). */
  hasTable(guest: number): boolean {
    return this.#l1[this.#l1Index(guest)] !== 0;
  }

  /** True when L2 tables or L1 entries wait to be written. */
  get dirty(): boolean {
    if (this.#dirtyL1.size > 0) return true;
    for (const t of this.#cache.values()) if (t.dirty) return true;
    return false;
  }

  /** Writes the changed L2 tables. Returns whether L1 entries still wait (write them after a sync). */
  writeL2(): boolean {
    for (const [off, t] of this.#cache) {
      if (!t.dirty) continue;
      this.#io.writeAt(off, t.bytes);
      t.dirty = false;
    }
    return this.#dirtyL1.size > 0;
  }

  /** Writes the changed L1 entries (as one span of the table). */
  writeL1(): void {
    if (this.#dirtyL1.size === 0) return;
    const idx = [...this.#dirtyL1];
    const lo = Math.min(...idx);
    const hi = Math.max(...idx);
    const out = new Uint8Array((hi - lo + 1) * 8);
    const v = new DataView(out.buffer);
    for (let i = lo; i <= hi; i++) {
      const off = this.#l1[i];
      if (off !== 0) {
        v.setUint32((i - lo) * 8, COPIED | Math.floor(off / 2 ** 32));
        v.setUint32((i - lo) * 8 + 4, off >>> 0);
      }
    }
    this.#io.writeAt(this.#h.l1Offset + lo * 8, out);
    this.#dirtyL1.clear();
  }

  /** Drops the oldest clean tables until at most `keep` remain (or only dirty ones are left). */
  trim(keep: number = CACHE_TABLES): void {
    for (const [off, t] of this.#cache) {
      if (this.#cache.size <= keep) break;
      if (!t.dirty) this.#cache.delete(off);
    }
  }

  #l1Index(guest: number): number {
    return Math.floor(guest / 2 ** (this.#h.clusterBits + this.#l2Bits));
  }

  #l2Index(guest: number): number {
    return Math.floor(guest / this.#h.clusterSize) & ((1 << this.#l2Bits) - 1);
  }

  #set(guest: number, hi: number, lo: number): void {
    const t = this.#table(guest, true)!;
    const i = this.#l2Index(guest) * 8;
    t.view.setUint32(i, hi >>> 0);
    t.view.setUint32(i + 4, lo >>> 0);
    t.dirty = true;
  }

  #table(guest: number, create: boolean): L2Table | undefined {
    const l1i = this.#l1Index(guest);
    let off = this.#l1[l1i];
    if (off === 0) {
      if (!create) return undefined;
      off = this.#refcounts.allocate(1).offset;
      const bytes = new Uint8Array(this.#h.clusterSize);
      const t = { bytes, view: new DataView(bytes.buffer), dirty: true };
      this.#insert(off, t);
      this.#l1[l1i] = off;
      this.#dirtyL1.add(l1i);
      return t;
    }
    const cached = this.#cache.get(off);
    if (cached !== undefined) return cached;
    if (off % this.#h.clusterSize !== 0 || off + this.#h.clusterSize > this.#io.length) {
      throw new Qcow2Error(
        this.#io.path,
        `L1 entry ${l1i} points to offset ${off}, which is misaligned or past the end of the file: ` +
          "the image is corrupt",
      );
    }
    const bytes = new Uint8Array(this.#h.clusterSize);
    this.#io.readAt(off, bytes);
    const t = { bytes, view: new DataView(bytes.buffer), dirty: false };
    this.#insert(off, t);
    return t;
  }

  #insert(off: number, t: L2Table): void {
    if (this.#cache.size >= CACHE_TABLES) {
      this.trim(CACHE_TABLES / 2);
      if (this.#cache.size >= CACHE_TABLES) {
        this.onPressure(); // every table is dirty: write them all (in crash-safe order), then drop half
        this.trim(CACHE_TABLES / 2);
      }
    }
    this.#cache.set(off, t);
  }

  #decode(hi: number, lo: number, guest: number): Mapping {
    if ((hi & COMPRESSED) !== 0) return this.#compressed(hi, lo, guest);
    const host = (hi & 0x00ffffff) * 2 ** 32 + ((lo & ~0x1ff) >>> 0);
    if (host !== 0) {
      if (host % this.#h.clusterSize !== 0 || host >= this.#io.length) {
        throw new Qcow2Error(
          this.#io.path,
          `guest offset ${guest} maps to host offset ${host}, which is misaligned or past the end of the ` +
            `${this.#io.length}-byte file: the image is corrupt`,
        );
      }
    }
    if ((lo & 1) !== 0) {
      if (this.#h.version < 3) {
        throw new Qcow2Error(
          this.#io.path,
          `zero-cluster flag at guest offset ${guest} in a version 2 image`,
        );
      }
      return { kind: "zero", host };
    }
    if (host === 0) return UNALLOCATED;
    return { kind: "data", host, copied: (hi & COPIED) !== 0 };
  }

  #compressed(hi: number, lo: number, guest: number): Mapping {
    const desc = BigInt(hi & 0x3fffffff) << 32n | BigInt(lo >>> 0);
    const x = BigInt(62 - (this.#h.clusterBits - 8));
    const host = Number(desc & ((1n << x) - 1n));
    const sectors = Number(desc >> x) + 1;
    const rangeStart = host - (host % 512);
    const rangeBytes = sectors * 512;
    if (host >= this.#io.length || host === 0) {
      throw new Qcow2Error(
        this.#io.path,
        `compressed cluster for guest offset ${guest} starts at host offset ${host}, past the end of the file`,
      );
    }
    return { kind: "compressed", host, bytes: rangeStart + rangeBytes - host, rangeStart, rangeBytes };
  }
}
