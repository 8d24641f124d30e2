/**
 * Creating empty qcow2 images (version 3 by default, or 2), optionally as the child of a backing image.
 *
 * Layout: cluster 0 holds the header, its extensions and the backing file name; then the refcount table
 * (sized so that the image can grow to its full virtual size without ever growing the table), one refcount
 * block, and the L1 table. Nothing else is allocated, so a 1 TiB image is a few hundred KiB of file.
 *
 * @module
 */
import type { DiskFormat } from "./disk.ts";
import { FileIO } from "./file_io.ts";
import { encodeHeader } from "./qcow2_header.ts";
import { Qcow2Error } from "./qcow2_error.ts";

/** Options of {@linkcode createQcow2}. */
export interface CreateQcow2Options {
  /** Guest-visible size in bytes. */
  size: number;
  /** 2 or 3 (default 3). */
  version?: 2 | 3;
  /** log2 of the cluster size, 9..21 (default 16: 64 KiB clusters). */
  clusterBits?: number;
  /** Backing file name to record, as it should be resolved from the new image's folder. */
  backingFile?: string;
  /** Format of the backing file, recorded in a header extension. */
  backingFormat?: DiskFormat;
}

/** Largest virtual size we create (256 TiB). */
export const MAX_QCOW2_SIZE = 2 ** 48;

/** Creates an empty qcow2 image at `path`, which must not exist yet. */
export function createQcow2(path: string, opts: CreateQcow2Options): Promise<void> {
  const version = opts.version ?? 3;
  const bits = opts.clusterBits ?? 16;
  const size = opts.size;
  if (!Number.isSafeInteger(size) || size <= 0 || size > MAX_QCOW2_SIZE) {
    throw new Qcow2Error(
      path,
      `cannot create a qcow2 image of ${size} bytes: the size must be 1..${MAX_QCOW2_SIZE}`,
    );
  }
  if (!Number.isInteger(bits) || bits < 9 || bits > 21) {
    throw new Qcow2Error(path, `cluster_bits ${bits} is out of range (9..21)`);
  }
  const cs = 2 ** bits;
  const l1Size = Math.ceil(size / (cs * (cs / 8)));
  const l1Clusters = Math.max(1, Math.ceil((l1Size * 8) / cs));
  const refsPerBlock = cs / 2;
  // Host clusters the image could ever need: data, L2 tables, metadata, with a margin.
  const hostClusters = Math.ceil(size / cs) * (1 + 8 / cs) + l1Clusters + 64;
  const blocks = Math.ceil(hostClusters * 1.1 / refsPerBlock) + 1;
  const refTableClusters = Math.max(1, Math.ceil((blocks * 8) / cs));
  const refTableOffset = cs;
  const refBlockOffset = refTableOffset + refTableClusters * cs;
  const l1Offset = refBlockOffset + cs;
  const used = 2 + refTableClusters + l1Clusters;
  if (used > refsPerBlock) {
    throw new Qcow2Error(path, `metadata of a ${size}-byte image does not fit: use a smaller size`);
  }

  const header = encodeHeader(path, {
    version,
    clusterBits: bits,
    size,
    l1Size,
    l1Offset,
    refTableOffset,
    refTableClusters,
    backingFile: opts.backingFile,
    backingFormat: opts.backingFile === undefined ? undefined : opts.backingFormat,
  });
  const table = new Uint8Array(refTableClusters * cs);
  new DataView(table.buffer).setBigUint64(0, BigInt(refBlockOffset));
  const block = new Uint8Array(cs);
  const bv = new DataView(block.buffer);
  for (let c = 0; c < used; c++) bv.setUint16(c * 2, 1);

  const io = FileIO.create(path);
  try {
    io.writeAt(0, header);
    io.writeAt(refTableOffset, table);
    io.writeAt(refBlockOffset, block);
    io.writeAt(l1Offset, new Uint8Array(l1Clusters * cs));
    io.sync();
  } catch (e) {
    io.close();
    Deno.removeSync(path);
    throw e;
  } finally {
    try {
      io.close();
    } catch { /* already closed */ }
  }
  return Promise.resolve();
}
