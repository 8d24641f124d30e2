/**
 * Raw disk images: the guest's bytes, one for one, in a (usually sparse) file.
 *
 * @module
 */
import { type BlockStatus, checkRange, type Disk, DiskError } from "./disk.ts";
import { FileIO } from "./file_io.ts";
import { QCOW2_MAGIC } from "./qcow2_header.ts";

/** Chunk size used when writing zeros into a raw image. */
const ZERO_CHUNK = 1 << 20;

/** Options of {@linkcode RawDisk.open}. */
export interface RawOpenOptions {
  /** Open without write access. */
  readOnly?: boolean;
  /** Use this already open file instead of opening `path`. */
  io?: FileIO;
  /**
   * The format was probed, not declared: refuse a write that would make the image's first bytes a qcow2
   * header (a guest must not turn its own disk into an image that names a host file as its backing file).
   */
  guardHeader?: boolean;
}

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
  readonly #guardHeader: boolean;

  private constructor(io: FileIO, guardHeader: boolean) {
    this.#io = io;
    this.#guardHeader = guardHeader;
    this.path = io.path;
    this.readOnly = !io.writable;
    this.#size = io.length;
  }

  /** Opens the raw image at `path`. */
  static open(path: string, opts: RawOpenOptions = {}): Promise<RawDisk> {
    const io = opts.io ?? FileIO.open(path, !opts.readOnly);
    return Promise.resolve(new RawDisk(io, opts.guardHeader ?? false));
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
    if (this.#guardHeader && offset < 4 && this.#wouldLookQcow2(offset, data)) {
      return Promise.reject(
        new DiskError(
          this.path,
          "the guest wrote a qcow2 header into a disk whose format was probed as raw; the write was refused " +
            "(declare the format, e.g. vm.conf `format raw` or `-d raw:path`, to let the guest write it)",
        ),
      );
    }
    this.#io.writeAt(offset, data);
    return Promise.resolve();
  }

  /** True when writing `data` at `offset` (< 4) would leave the qcow2 magic in the image's first 4 bytes. */
  #wouldLookQcow2(offset: number, data: Uint8Array): boolean {
    const head = new Uint8Array(4);
    this.#io.readAt(0, head);
    head.set(data.subarray(0, 4 - offset), offset);
    return new DataView(head.buffer).getUint32(0) === QCOW2_MAGIC;
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
