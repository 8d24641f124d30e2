/**
 * Positioned reads and writes on one open file: either a file this process opens by path (`Deno.FsFile`:
 * `vmctl create`, conversions, the library), or a descriptor vmd opened before and handed over (a disk
 * worker: `pread`/`pwrite` through libc on the descriptor, so that no path is ever resolved again — Deno's
 * own file API opens paths only, and re-resolves links by name).
 *
 * Calls are synchronous: requests can never interleave with one another, and a disk lives in its own worker
 * where blocking is what we want.
 *
 * @module
 */
import { fdatasyncFd, fileSize, ftruncateFd, preadFd, pwriteFd } from "../../ffi/open_file.ts";

/** The operations behind a {@link FileIO}. */
interface Backend {
  read(pos: number, buf: Uint8Array): number;
  write(pos: number, data: Uint8Array): void;
  truncate(length: number): void;
  sync(): void;
  close(): void;
}

function fsFileBackend(file: Deno.FsFile): Backend {
  return {
    read(pos, buf) {
      file.seekSync(pos, Deno.SeekMode.Start);
      let done = 0;
      while (done < buf.length) {
        const n = file.readSync(done === 0 ? buf : buf.subarray(done));
        if (n === null || n === 0) break;
        done += n;
      }
      return done;
    },
    write(pos, data) {
      file.seekSync(pos, Deno.SeekMode.Start);
      let done = 0;
      while (done < data.length) done += file.writeSync(done === 0 ? data : data.subarray(done));
    },
    truncate: (length) => file.truncateSync(length),
    sync: () => file.syncDataSync(),
    close: () => file.close(),
  };
}

function fdBackend(fd: number): Backend {
  return {
    read: (pos, buf) => preadFd(fd, buf, pos),
    write: (pos, data) => pwriteFd(fd, data, pos),
    truncate: (length) => ftruncateFd(fd, length),
    sync: () => fdatasyncFd(fd),
    // the descriptor belongs to whoever opened it (vmd, or the VM's device set), which closes it
    close: () => {},
  };
}

/** A file opened for positioned I/O. Reads past the end of the file return zeros. */
export class FileIO {
  /** The file's name, for error messages. */
  readonly path: string;
  /** Whether the file was opened for writing. */
  readonly writable: boolean;
  readonly #io: Backend;
  #length: number;

  private constructor(path: string, io: Backend, writable: boolean, length: number) {
    this.path = path;
    this.#io = io;
    this.writable = writable;
    this.#length = length;
  }

  /** Opens `path` for reading, and for writing too when `writable`. */
  static open(path: string, writable: boolean): FileIO {
    const file = Deno.openSync(path, { read: true, write: writable });
    try {
      const length = file.statSync().size;
      return new FileIO(path, fsFileBackend(file), writable, length);
    } catch (e) {
      file.close();
      throw e;
    }
  }

  /**
   * Uses the open descriptor `fd` (a regular file or, for root, a block device, opened and type-checked
   * before); `name` is what messages
   * call it. Closing the result leaves the descriptor open.
   */
  static fromFd(fd: number, writable: boolean, name: string): FileIO {
    return new FileIO(name, fdBackend(fd), writable, fileSize(fd));
  }

  /** Creates `path`, which must not exist yet, open for reading and writing. */
  static create(path: string): FileIO {
    const file = Deno.openSync(path, { read: true, write: true, createNew: true });
    return new FileIO(path, fsFileBackend(file), true, 0);
  }

  /** The file's length in bytes, as this object has seen and made it. */
  get length(): number {
    return this.#length;
  }

  /** Fills `buf` from file offset `pos`; bytes past the end of the file read as zeros. */
  readAt(pos: number, buf: Uint8Array): void {
    let done = 0;
    if (pos < this.#length) {
      const want = Math.min(buf.length, this.#length - pos);
      done = this.#io.read(pos, want === buf.length ? buf : buf.subarray(0, want));
    }
    if (done < buf.length) buf.fill(0, done);
  }

  /** Writes all of `data` at file offset `pos`. */
  writeAt(pos: number, data: Uint8Array): void {
    this.#io.write(pos, data);
    if (pos + data.length > this.#length) this.#length = pos + data.length;
  }

  /** Sets the file's length (sparse when growing). */
  truncate(length: number): void {
    this.#io.truncate(length);
    this.#length = length;
  }

  /** Waits until written data (and the metadata needed to read it back) is on stable storage. */
  sync(): void {
    this.#io.sync();
  }

  /** Closes the file (a descriptor given to {@link FileIO.fromFd} stays open). */
  close(): void {
    this.#io.close();
  }
}
