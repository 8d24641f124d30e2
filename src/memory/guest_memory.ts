/**
 * Guest physical memory over a SharedArrayBuffer: one or more RAM regions (e.g. below and above a PCI hole)
 * laid out back to back in the buffer, with bounds-checked access by guest physical address.
 *
 * This module knows nothing of KVM and needs no permission: a device worker that receives the buffer can use
 * it as the vCPU threads do.
 *
 * @module
 */

/** One RAM region: `size` bytes at guest physical address `gpa`. */
export interface MemoryRegion {
  /** Guest physical start address. */
  readonly gpa: number;
  /** Length in bytes. */
  readonly size: number;
}

/** A region as placed in the buffer. */
export interface PlacedRegion extends MemoryRegion {
  /** Where the region starts inside {@link GuestMemory.bytes}. */
  readonly offset: number;
}

/** The description a worker needs to rebuild a {@link GuestMemory} over the same buffer. */
export interface GuestMemoryShare {
  /** The shared buffer. */
  readonly sab: SharedArrayBuffer;
  /** Offset of the first region in the buffer. */
  readonly offset: number;
  /** The regions, in guest-address order. */
  readonly regions: readonly MemoryRegion[];
}

/** An access outside guest RAM. */
export class GuestMemoryError extends Error {
  /** The guest physical address accessed. */
  readonly gpa: number;
  /** The length of the access. */
  readonly length: number;

  /** Builds the error for an access of `length` bytes at `gpa`. */
  constructor(gpa: number, length: number, detail: string) {
    super(`guest memory access of ${length} bytes at 0x${gpa.toString(16)}: ${detail}`);
    this.name = "GuestMemoryError";
    this.gpa = gpa;
    this.length = length;
  }
}

/** Bounds-checked guest physical memory. */
export class GuestMemory {
  /** All RAM bytes, regions back to back. */
  readonly bytes: Uint8Array;
  /** A DataView over {@link bytes}. */
  readonly view: DataView;
  /** The regions, with their offsets in {@link bytes}. */
  readonly regions: readonly PlacedRegion[];
  /** Total RAM in bytes. */
  readonly size: number;
  readonly #share: GuestMemoryShare;

  /** Lays `regions` out in `sab` from `offset`; they must be sorted and must not overlap. */
  constructor(share: GuestMemoryShare) {
    const placed: PlacedRegion[] = [];
    let at = 0;
    let end = 0;
    for (const r of share.regions) {
      if (!Number.isSafeInteger(r.gpa) || !Number.isSafeInteger(r.size) || r.gpa < 0 || r.size <= 0) {
        throw new GuestMemoryError(r.gpa, r.size, "region has a bad address or size");
      }
      if (r.gpa < end) throw new GuestMemoryError(r.gpa, r.size, "regions overlap or are not sorted");
      placed.push({ gpa: r.gpa, size: r.size, offset: at });
      at += r.size;
      end = r.gpa + r.size;
    }
    if (share.offset + at > share.sab.byteLength) {
      throw new GuestMemoryError(0, at, `regions need ${at} bytes, the buffer has ${share.sab.byteLength}`);
    }
    this.bytes = new Uint8Array(share.sab, share.offset, at);
    this.view = new DataView(share.sab, share.offset, at);
    this.regions = placed;
    this.size = at;
    this.#share = share;
  }

  /** What to post to a worker so it can build the same view. */
  share(): GuestMemoryShare {
    return this.#share;
  }

  /**
   * The index in {@link bytes} of guest address `gpa`, if `length` bytes from there lie in one region; else -1.
   * Never throws: for validating guest-supplied addresses.
   */
  find(gpa: number, length: number): number {
    const regions = this.regions;
    for (let i = 0; i < regions.length; i++) {
      const r = regions[i];
      if (gpa >= r.gpa && length >= 0 && gpa + length <= r.gpa + r.size) return r.offset + (gpa - r.gpa);
    }
    return -1;
  }

  /** True if `length` bytes at `gpa` are guest RAM (in one region). */
  contains(gpa: number, length: number): boolean {
    return this.find(gpa, length) >= 0;
  }

  /** The index in {@link bytes} for an access of `length` bytes at `gpa`; throws {@link GuestMemoryError}. */
  index(gpa: number, length: number): number {
    const i = this.find(gpa, length);
    if (i < 0) throw new GuestMemoryError(gpa, length, "outside guest RAM");
    return i;
  }

  /** A live view (no copy) of `length` bytes at `gpa`. */
  slice(gpa: number, length: number): Uint8Array {
    const i = this.index(gpa, length);
    return this.bytes.subarray(i, i + length);
  }

  /** Copies `data` into guest memory at `gpa`. */
  write(gpa: number, data: Uint8Array): void {
    this.bytes.set(data, this.index(gpa, data.length));
  }

  /** Copies `length` bytes at `gpa` out of guest memory. */
  read(gpa: number, length: number): Uint8Array {
    return this.slice(gpa, length).slice();
  }

  /** Reads a byte. */
  readU8(gpa: number): number {
    return this.bytes[this.index(gpa, 1)];
  }
  /** Reads a little-endian u16. */
  readU16(gpa: number): number {
    return this.view.getUint16(this.index(gpa, 2), true);
  }
  /** Reads a little-endian u32. */
  readU32(gpa: number): number {
    return this.view.getUint32(this.index(gpa, 4), true);
  }
  /** Reads a little-endian u64. */
  readU64(gpa: number): bigint {
    return this.view.getBigUint64(this.index(gpa, 8), true);
  }
  /** Writes a byte. */
  writeU8(gpa: number, value: number): void {
    this.bytes[this.index(gpa, 1)] = value;
  }
  /** Writes a little-endian u16. */
  writeU16(gpa: number, value: number): void {
    this.view.setUint16(this.index(gpa, 2), value, true);
  }
  /** Writes a little-endian u32. */
  writeU32(gpa: number, value: number): void {
    this.view.setUint32(this.index(gpa, 4), value >>> 0, true);
  }
  /** Writes a little-endian u64. */
  writeU64(gpa: number, value: bigint): void {
    this.view.setBigUint64(this.index(gpa, 8), value, true);
  }
  /** Fills `length` bytes at `gpa` with `value`. */
  fill(gpa: number, length: number, value = 0): void {
    const i = this.index(gpa, length);
    this.bytes.fill(value, i, i + length);
  }
}
