/**
 * The one interface every disk image backend implements (raw, qcow2), and the error class of the disk layer.
 *
 * Offsets and lengths are byte counts in the guest's view of the disk. Reads and writes take the caller's
 * buffer and fill or send it directly where the format allows (no intermediate copies for raw images or for
 * allocated qcow2 clusters).
 *
 * @module
 */

/** The image formats this layer understands. */
export type DiskFormat = "raw" | "qcow2";

/** What a range of the guest's disk holds, as reported by {@linkcode Disk.blockStatus}. */
export interface BlockStatus {
  /** `"zero"`: the range certainly reads as zeros (unallocated or a zero cluster); `"data"`: it may not. */
  kind: "data" | "zero";
  /** How many bytes from the asked offset have this status (at least 1, at most the asked length). */
  length: number;
}

/** A disk image opened for I/O. */
export interface Disk {
  /** The path the image was opened from (without any `raw:`/`qcow2:` prefix). */
  readonly path: string;
  /** The image's format. */
  readonly format: DiskFormat;
  /** The guest-visible size in bytes. */
  readonly size: number;
  /** True when the image was opened without write access; writes then throw. */
  readonly readOnly: boolean;
  /** Fills `buf` with the bytes at guest offset `offset`. The range must lie inside the disk. */
  read(offset: number, buf: Uint8Array): Promise<void>;
  /** Writes `data` at guest offset `offset`. Durable only after {@linkcode Disk.flush} resolves. */
  write(offset: number, data: Uint8Array): Promise<void>;
  /** Makes every write that resolved before this call durable (metadata in crash-safe order, then fsync). */
  flush(): Promise<void>;
  /** Tells the image that the range's contents are no longer needed; it may then read as zeros or as before. */
  discard(offset: number, length: number): Promise<void>;
  /** Makes the range read as zeros, releasing storage where the format can. */
  writeZeroes(offset: number, length: number): Promise<void>;
  /** Reports whether the range starting at `offset` certainly reads as zeros, and for how long. */
  blockStatus(offset: number, length: number): Promise<BlockStatus>;
  /** Flushes (when writable) and closes the image and any backing images. */
  close(): Promise<void>;
}

/** Every failure of the disk layer that is not a plain operating-system error: bad images, bad requests. */
export class DiskError extends Error {
  /** The image the error concerns. */
  readonly path: string;

  /** `message` should say what is wrong and what to do; the path is prefixed to it. */
  constructor(path: string, message: string, options?: ErrorOptions) {
    super(`${path}: ${message}`, options);
    this.name = "DiskError";
    this.path = path;
  }
}

/** Throws a {@linkcode DiskError} unless `[offset, offset + length)` lies inside a disk of `size` bytes. */
export function checkRange(path: string, size: number, offset: number, length: number): void {
  if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0) {
    throw new DiskError(path, `bad I/O range: offset ${offset}, length ${length}`);
  }
  if (offset + length > size) {
    throw new DiskError(path, `I/O range ${offset}+${length} is past the end of the ${size}-byte disk`);
  }
}
