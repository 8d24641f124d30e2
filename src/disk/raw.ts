/**
 * Raw disk images: the guest's bytes, one for one, in a (usually sparse) file.
 *
 * @module
 */
import { type BlockStatus, checkRange, type Disk, DiskError } from "./disk.ts";
import { FileIO } from "./file_io.ts";

/** Chunk size used when writing zeros into a raw image. */
const ZERO_CHUNK = 1 << 20;

/** A raw image. The guest-visible size is the file's length. */
export class RawDisk implements Disk {
  /** See {@linkcode Disk.path}. */
  readonly path: string;
  /** Always `"raw"`. */
  readonly format = "raw" as const;
  /** See {@linkcode Disk.readOnly}. */
  readonly readOnly: boolean;
  readonly #io: FileIO;
  readonly #size: number;

  private constructor(io: FileIO) {
    this.#io = io;
    this.path = io.path;
    this.readOnly = !io.writable;
    this.#size = io.length;
  }

  /** Opens the raw image at `path`. */
  static open(path: string, opts: { readOnly?: boolean } = {}): Promise<RawDisk> {
    return Promise.resolve(new RawDisk(FileIO.open(path, !opts.readOnly)));
  }

  /** Creates a sparse raw image of `size` bytes at `path`, which must not exist yet. */
  static create(path: string, size: number): Promise<void> {
    if (!Number.isSafeInteger(size) || size <= 0) {
      throw new DiskError(path, `cannot create a raw image of ${size} bytes: the size must be positive`);
    }
    const io = FileIO.create(path);
    try {
      io.truncate(size);
    } finally {
      io.close();
    }
    return Promise.resolve();
  }

  /** See {@linkcode Disk.size}. */
  get size(): number {
    return this.#size;
  }

  /** See {@linkcode Disk.read}. */
  read(offset: number, buf: Uint8Array): Promise<void> {
    checkRange(this.path, this.#size, offset, buf.length);
    this.#io.readAt(offset, buf);
    return Promise.resolve();
  }

  /** See {@linkcode Disk.write}. */
  write(offset: number, data: Uint8Array): Promise<void> {
    this.#writable();
    checkRange(this.path, this.#size, offset, data.length);
    this.#io.writeAt(offset, data);
    return Promise.resolve();
  }

  /** See {@linkcode Disk.flush}. */
  flush(): Promise<void> {
    if (!this.readOnly) this.#io.sync();
    return Promise.resolve();
  }

  /** Raw files cannot punch holes without ffi, so a discard keeps the data (which the interface allows). */
  discard(offset: number, length: number): Promise<void> {
    this.#writable();
    checkRange(this.path, this.#size, offset, length);
    return Promise.resolve();
  }

  /** See {@linkcode Disk.writeZeroes}. */
  writeZeroes(offset: number, length: number): Promise<void> {
    this.#writable();
    checkRange(this.path, this.#size, offset, length);
    const zeros = new Uint8Array(Math.min(ZERO_CHUNK, length));
    for (let done = 0; done < length; done += zeros.length) {
      this.#io.writeAt(offset + done, zeros.subarray(0, Math.min(zeros.length, length - done)));
    }
    return Promise.resolve();
  }

  /** Raw files give no allocation information here: everything is reported as data. */
  blockStatus(offset: number, length: number): Promise<BlockStatus> {
    checkRange(this.path, this.#size, offset, length);
    return Promise.resolve({ kind: "data", length });
  }

  /** See {@linkcode Disk.close}. */
  close(): Promise<void> {
    this.#io.close();
    return Promise.resolve();
  }

  #writable(): void {
    if (this.readOnly) throw new DiskError(this.path, "the image is open read-only; writes are refused");
  }
}
