/**
 * Opening a disk image by the name a user gives: `raw:path` and `qcow2:path` force the format; otherwise the
 * qcow2 magic decides, then the file extension, then raw (as vmctl(8) does). Backing chains are opened
 * read-only, relative to the image that names them, at most {@linkcode MAX_BACKING_DEPTH} deep, and loops are
 * refused.
 *
 * @module
 */
import { type Disk, DiskError, type DiskFormat } from "./disk.ts";
import { QCOW2_MAGIC } from "./qcow2_header.ts";
import { Qcow2Disk } from "./qcow2.ts";
import { RawDisk } from "./raw.ts";
import { FileIO } from "./file_io.ts";
import { type DiskSpec, parseDiskSpec } from "./disk_spec.ts";

/** Most backing images below one disk (vmd's limit). */
export const MAX_BACKING_DEPTH = 4;

export { type DiskSpec, parseDiskSpec } from "./disk_spec.ts";

/** The format implied by a file name's extension, if any (`.qcow2`/`.qcow` → qcow2, `.raw`/`.img` → raw). */
export function formatFromExtension(path: string): DiskFormat | undefined {
  if (/\.qcow2?$/i.test(path)) return "qcow2";
  if (/\.(raw|img)$/i.test(path)) return "raw";
  return undefined;
}

/** True when the file at `path` exists and starts with the qcow2 magic. */
export function hasQcow2Magic(path: string): boolean {
  let file: Deno.FsFile;
  try {
    file = Deno.openSync(path, { read: true });
  } catch {
    return false;
  }
  try {
    const head = new Uint8Array(4);
    const n = file.readSync(head);
    return n === 4 && new DataView(head.buffer).getUint32(0) === QCOW2_MAGIC;
  } finally {
    file.close();
  }
}

/** The format of the disk named `spec`: prefix, else magic, else extension, else raw. */
export function detectFormat(spec: DiskSpec): DiskFormat {
  if (spec.format !== undefined) return spec.format;
  if (hasQcow2Magic(spec.path)) return "qcow2";
  return formatFromExtension(spec.path) ?? "raw";
}

/** Options of {@linkcode openDisk}. */
export interface OpenDiskOptions {
  /** Open without write access (backing images are always read-only). */
  readOnly?: boolean;
}

/** Opens the disk named `spec` (e.g. `qcow2:/var/vm/a.img`, `disk.qcow2`) and its backing chain. */
export async function openDisk(spec: string, opts: OpenDiskOptions = {}): Promise<Disk> {
  const s = parseDiskSpec(spec);
  return await openChain(s.path, detectFormat(s), opts.readOnly ?? false, []);
}

async function openChain(
  path: string,
  format: DiskFormat,
  readOnly: boolean,
  chain: string[],
): Promise<Disk> {
  let real: string;
  try {
    real = Deno.realPathSync(path);
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
    // the hint about relative backing names only helps for a backing file, not for the image itself
    throw new DiskError(
      path,
      chain.length > 0
        ? `backing file of ${chain[chain.length - 1]} not found: check the name recorded in that image ` +
          "(relative names are taken from the image's folder)"
        : "not found: check the path",
    );
  }
  if (chain.includes(real)) {
    throw new DiskError(path, `the backing chain loops: ${[...chain, real].join(" -> ")}`);
  }
  if (chain.length > MAX_BACKING_DEPTH) {
    throw new DiskError(
      chain[0],
      `the backing chain is deeper than ${MAX_BACKING_DEPTH} images: ${[...chain, real].join(" -> ")}; ` +
        "flatten it with `vmctl create -i`",
    );
  }
  const info = Deno.statSync(real);
  if (!info.isFile) throw new DiskError(path, "not a regular file");
  if (format === "raw") return await RawDisk.open(path, { readOnly });
  return await Qcow2Disk.open(path, {
    readOnly,
    openBacking: (backingPath, backingFormat) =>
      openChain(backingPath, backingFormat ?? detectFormat({ path: backingPath }), true, [...chain, real]),
  });
}

/** One image of a chain that was opened before (see `image_chain.ts`), as a disk worker receives it. */
export interface DiskFile {
  /** The open descriptor (fds are shared by every thread of the process): no user path. */
  readonly fd: number;
  /** The path the user named, for messages. */
  readonly name: string;
  /** The format decided when the chain was opened (binding). */
  readonly format: DiskFormat;
  /** The format was probed: the guest may not write another format's header into a raw image. */
  readonly probed: boolean;
}

/**
 * Opens a disk from its pre-opened chain: `files[0]` is the image, each next one the backing image of the
 * one before, in the formats decided when they were opened. A backing file the image names now but did not
 * name then is refused: nothing is looked up by name here.
 */
export async function openDiskFiles(files: readonly DiskFile[], readOnly: boolean): Promise<Disk> {
  if (files.length === 0) throw new DiskError("disk", "no image given");
  const open = async (i: number, ro: boolean): Promise<Disk> => {
    const f = files[i];
    const io = FileIO.fromFd(f.fd, !ro, f.name);
    if (f.format === "raw") {
      return await RawDisk.open(f.name, { readOnly: ro, io, guardHeader: f.probed && !ro });
    }
    return await Qcow2Disk.open(f.name, {
      readOnly: ro,
      io,
      openBacking: (backing) => {
        if (i + 1 >= files.length) {
          throw new DiskError(
            f.name,
            `names backing file ${backing}, which it did not name when the VM started; restart the VM`,
          );
        }
        return open(i + 1, true);
      },
    });
  };
  return await open(0, readOnly);
}
