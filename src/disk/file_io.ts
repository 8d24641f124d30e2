/**
 * Positioned reads and writes on one open file, through `Deno.FsFile` only (no ffi), so that a device worker
 * holding nothing but read/write permission on its image can use it.
 *
 * Calls are synchronous under the hood: one request is one seek plus one read or write, requests can never
 * interleave with one another, and a disk lives in its own worker where blocking is what we want.
 *
 * @module
 */

/** A file opened for positioned I/O. Reads past the end of the file return zeros. */
export class FileIO {
  /** The file's path, for error messages. */
  readonly path: string;
  /** Whether the file was opened for writing. */
  readonly writable: boolean;
  readonly #file: Deno.FsFile;
  #length: number;

  private constructor(path: string, file: Deno.FsFile, writable: boolean, length: number) {
    this.path = path;
    this.#file = file;
    this.writable = writable;
    this.#length = length;
  }

  /**
   * Opens `path` for reading, and for writing too when `writable`; `name` is what messages call it (the
   * path the user gave, when `path` is a descriptor's link).
   */
  static open(path: string, writable: boolean, name: string = path): FileIO {
    const file = Deno.openSync(path, { read: true, write: writable });
    try {
      // the length by seeking, not fstat: Deno checks a stat against the file's real path, which a worker
      // reaching its image through a descriptor link is not granted
      const length = file.seekSync(0, Deno.SeekMode.End);
      return new FileIO(name, file, writable, length);
    } catch (e) {
      file.close();
      throw e;
    }
  }

  /** Creates `path`, which must not exist yet, open for reading and writing. */
  static create(path: string): FileIO {
    const file = Deno.openSync(path, { read: true, write: true, createNew: true });
    return new FileIO(path, file, true, 0);
  }

  /** The file's length in bytes, as this object has seen and made it. */
  get length(): number {
    return this.#length;
  }

  /** Fills `buf` from file offset `pos`; bytes past the end of the file read as zeros. */
  readAt(pos: number, buf: Uint8Array): void {
    let done = 0;
    if (pos < this.#length) {
      this.#file.seekSync(pos, Deno.SeekMode.Start);
      const want = Math.min(buf.length, this.#length - pos);
      while (done < want) {
        const n = this.#file.readSync(done === 0 && want === buf.length ? buf : buf.subarray(done, want));
        if (n === null || n === 0) break;
        done += n;
      }
    }
    if (done < buf.length) buf.fill(0, done);
  }

  /** Writes all of `data` at file offset `pos`. */
  writeAt(pos: number, data: Uint8Array): void {
    this.#file.seekSync(pos, Deno.SeekMode.Start);
    let done = 0;
    while (done < data.length) {
      done += this.#file.writeSync(done === 0 ? data : data.subarray(done));
    }
    if (pos + data.length > this.#length) this.#length = pos + data.length;
  }

  /** Sets the file's length (sparse when growing). */
  truncate(length: number): void {
    this.#file.truncateSync(length);
    this.#length = length;
  }

  /** Waits until written data (and the metadata needed to read it back) is on stable storage. */
  sync(): void {
    this.#file.syncDataSync();
  }

  /** Closes the file. */
  close(): void {
    this.#file.close();
  }
}
