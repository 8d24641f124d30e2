/**
 * A disk and its backing chain as open descriptors: what the daemon (or `vmd run`) hands a VM. Each image is
 * opened once, by {@link openFileOnce} (the owner's rights, no final symlink, non-blocking type check,
 * regular files only), locked as QEMU locks images (a written image is exclusive; read-only and backing
 * images are shared among readers), its format is decided once (declared, or probed from the open descriptor), and the
 * backing file it names is opened the same way, relative to the image's folder. Nothing opens a path again
 * later: the VM process and its disk worker use the descriptors, and the formats decided here are binding.
 *
 * @module
 */
import { closeFd } from "../../ffi/fd.ts";
import {
  type FileCredentials,
  fileSize,
  type OpenedFile,
  openFileOnce,
  preadFd,
} from "../../ffi/open_file.ts";
import { ImageLockError, lockImage } from "../../ffi/image_lock.ts";
import { DiskError, type DiskFormat } from "./disk.ts";
import { type DiskFile, MAX_BACKING_DEPTH } from "./open.ts";
import { type HeaderSource, QCOW2_MAGIC, readHeader } from "./qcow2_header.ts";
import { resolveBacking } from "./qcow2.ts";

/** One image of a chain, open. */
export interface ChainImage {
  /** The descriptor (close-on-exec; owned by the chain). */
  readonly fd: number;
  /** The path it was opened from, for messages only. */
  readonly name: string;
  /** Its format, decided once. */
  readonly format: DiskFormat;
  /** True when the format was probed (no prefix, no vm.conf `format`): then the guest may not change it. */
  readonly probed: boolean;
  /** Open for reading only (backing images always are). */
  readonly readOnly: boolean;
  /** Device and inode: which file this is. */
  readonly dev: bigint;
  /** See {@link ChainImage.dev}. */
  readonly ino: bigint;
}

/** An image of the chain is locked by another user of it (another VM, QEMU); says which file. */
export class ImageInUseError extends Error {
  /** The image's path as named. */
  readonly path: string;
  /** Its identity, to find the VM that holds it. */
  readonly dev: bigint;
  /** See {@link ImageInUseError.dev}. */
  readonly ino: bigint;

  /** Wraps the lock's error for the image `path`. */
  constructor(path: string, dev: bigint, ino: bigint, cause: ImageLockError) {
    super(cause.message, { cause });
    this.name = "ImageInUseError";
    this.path = path;
    this.dev = dev;
    this.ino = ino;
  }
}

/** Options of {@link openImageChain}. */
export interface ImageChainOptions {
  /** The declared format (vm.conf `format`, a `raw:`/`qcow2:` prefix); probed when absent. */
  readonly format?: DiskFormat;
  /**
   * The format probed when this image was first opened (a VM's earlier start): used instead of probing
   * again, and still treated as probed (the guest may not change it).
   */
  readonly probedBefore?: DiskFormat;
  /** Attach the image read-only. */
  readonly readOnly: boolean;
  /** Open the image with this identity's rights (the user who named it); the process's own when absent. */
  readonly as?: FileCredentials;
  /** Accept a block device as the image (root's own files only). */
  readonly allowBlockDevice?: boolean;
  /**
   * The identity a backing file is opened with, given the image that names it: a backing file must be one
   * the image's owner could open. Defaults to `as`.
   */
  readonly backingAs?: (namedBy: OpenedFile) => FileCredentials | undefined;
}

/** Reads from an open descriptor (pread: no path involved); `name` is what messages call it. */
function ioOf(fd: number, name: string): HeaderSource {
  const length = fileSize(fd);
  return {
    path: name,
    length,
    readAt(pos: number, buf: Uint8Array): void {
      const n = pos < length ? preadFd(fd, buf, pos) : 0;
      buf.fill(0, n);
    },
  };
}

function probeFormat(fd: number, name: string): DiskFormat {
  const io = ioOf(fd, name);
  const head = new Uint8Array(4);
  io.readAt(0, head);
  return io.length >= 4 && new DataView(head.buffer).getUint32(0) === QCOW2_MAGIC ? "qcow2" : "raw";
}

/** The backing file an open qcow2 image names, with the format its header gives (if any). */
function backingOf(fd: number, name: string): { file: string; format?: DiskFormat } | undefined {
  const h = readHeader(ioOf(fd, name));
  if (h.backingFile === undefined) return undefined;
  const fmt = h.backingFormat;
  if (fmt !== undefined && fmt !== "raw" && fmt !== "qcow2") {
    throw new DiskError(name, `backing file ${h.backingFile} has format "${fmt}"; only raw and qcow2 work`);
  }
  return { file: h.backingFile, format: fmt };
}

/**
 * Opens the disk image at `path` and every image of its backing chain (at most {@link MAX_BACKING_DEPTH}
 * below it; loops refused). Throws the error of the first image that cannot be used; nothing stays open
 * then.
 */
export function openImageChain(path: string, opts: ImageChainOptions): ChainImage[] {
  const chain: ChainImage[] = [];
  try {
    let name = path;
    let format = opts.format;
    let probedBefore = opts.probedBefore;
    let readOnly = opts.readOnly;
    let as = opts.as;
    for (;;) {
      const what = chain.length === 0 ? "disk image" : `backing file of ${chain[chain.length - 1].name}`;
      const allowBlockDevice = chain.length === 0 && opts.allowBlockDevice === true && as === undefined;
      const file = openFileOnce(name, { write: !readOnly, as, what, allowBlockDevice });
      // a loop first: locking a file the chain already holds would report it as in use by someone else
      if (chain.some((c) => c.dev === file.dev && c.ino === file.ino)) {
        closeFd(file.fd);
        throw new DiskError(
          path,
          `the backing chain loops: ${[...chain.map((c) => c.name), name].join(" -> ")}`,
        );
      }
      try {
        // exclusive for a written image, shared for a read-only or backing one (QEMU's lock bytes too)
        lockImage(file.fd, readOnly ? "read-only" : "read-write", name);
      } catch (e) {
        closeFd(file.fd);
        if (e instanceof ImageLockError) throw new ImageInUseError(name, file.dev, file.ino, e);
        throw e;
      }
      const probed = format === undefined;
      const fmt = format ?? probedBefore ?? probeFormat(file.fd, name);
      chain.push({ fd: file.fd, name, format: fmt, probed, readOnly, dev: file.dev, ino: file.ino });
      if (fmt === "raw") return chain;
      const backing = backingOf(file.fd, name);
      if (backing === undefined) return chain;
      if (chain.length > MAX_BACKING_DEPTH) {
        throw new DiskError(
          path,
          `the backing chain is deeper than ${MAX_BACKING_DEPTH} images; flatten it with \`vmctl create -i\``,
        );
      }
      as = opts.backingAs === undefined ? opts.as : opts.backingAs(file);
      name = resolveBacking(name, backing.file);
      format = backing.format;
      probedBefore = undefined;
      readOnly = true;
    }
  } catch (e) {
    closeImageChain(chain);
    throw e;
  }
}

/** What a disk worker is given of an opened chain: each image's descriptor, name and decided format. */
export function diskFilesOf(chain: readonly ChainImage[]): DiskFile[] {
  return chain.map((c) => ({ fd: c.fd, name: c.name, format: c.format, probed: c.probed }));
}

/** Closes every descriptor of a chain. */
export function closeImageChain(chain: readonly ChainImage[]): void {
  for (const c of chain) closeFd(c.fd);
}
