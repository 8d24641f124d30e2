/**
 * The qcow2 header (versions 2 and 3) and its extensions: parsing with validation, and encoding for new
 * images. Layout per QEMU's docs/interop/qcow2.txt; all fields are big-endian.
 *
 * @module
 */
import type { FileIO } from "./file_io.ts";

/** What reading a header needs of a file: its name for messages, its length, positioned reads. */
export type HeaderSource = Pick<FileIO, "path" | "length" | "readAt">;
import { Qcow2Error } from "./qcow2_error.ts";

/** The first four bytes of every qcow2 image: "QFI\xfb". */
export const QCOW2_MAGIC = 0x514649fb;
/** Header extension: end of the extension area. */
const EXT_END = 0;
/** Header extension: the backing file's format name. */
export const EXT_BACKING_FORMAT = 0xe2792aca;
/** Header extension: human-readable names of feature bits. */
export const EXT_FEATURE_NAMES = 0x6803f857;
/** Header extension: full disk encryption parameters. */
const EXT_CRYPTO = 0x0537be77;
/** Header extension: external data file name. */
const EXT_DATA_FILE = 0x44415441;
/** Largest L1 table we accept, in bytes (QEMU's own limit). */
const MAX_L1_BYTES = 32 << 20;
/** Largest refcount table we accept, in bytes (QEMU's own limit). */
const MAX_REFTABLE_BYTES = 8 << 20;
/** Longest backing file name the format allows. */
export const MAX_BACKING_NAME = 1023;
/** Length of a version 2 header, and the fixed part of a version 3 header. */
export const V2_HEADER_LENGTH = 72;
/** Length of the mandatory part of a version 3 header. */
export const V3_HEADER_LENGTH = 104;

/** Incompatible feature bits this implementation knows (and the one it refuses for each). */
const INCOMPATIBLE_NAMES: Record<number, string> = {
  0: "dirty bit (refcounts may be stale: repair with `qemu-img check -r all`)",
  1: "corrupt bit (QEMU marked the image corrupt: repair with `qemu-img check -r all`)",
  2: "external data file",
  3: "compression type other than zlib",
  4: "extended L2 entries (subclusters)",
};

/** The parsed, validated header of a qcow2 image. */
export interface Qcow2Header {
  /** 2 or 3. */
  version: number;
  /** log2 of the cluster size, 9..21. */
  clusterBits: number;
  /** Cluster size in bytes. */
  clusterSize: number;
  /** Guest-visible size in bytes. */
  size: number;
  /** Entries in the L1 table. */
  l1Size: number;
  /** File offset of the L1 table. */
  l1Offset: number;
  /** File offset of the refcount table. */
  refTableOffset: number;
  /** Clusters occupied by the refcount table. */
  refTableClusters: number;
  /** Internal snapshots in the image (readable; writing is refused when there are any). */
  snapshots: number;
  /** Incompatible feature bits (v3; 0 for v2). */
  incompatible: bigint;
  /** Compatible feature bits (v3; 0 for v2). */
  compatible: bigint;
  /** Autoclear feature bits (v3; 0 for v2). */
  autoclear: bigint;
  /** Bytes of the header proper (72 for v2). */
  headerLength: number;
  /** The backing file name as stored (relative to the image's directory unless absolute), or undefined. */
  backingFile?: string;
  /** The backing format from the header extension, when present. */
  backingFormat?: string;
}

function u64(view: DataView, at: number): number {
  return view.getUint32(at) * 2 ** 32 + view.getUint32(at + 4);
}

/** Reads and validates the header of the qcow2 image open in `io`. Throws {@linkcode Qcow2Error}. */
export function readHeader(io: HeaderSource): Qcow2Header {
  const path = io.path;
  if (io.length < V2_HEADER_LENGTH) {
    throw new Qcow2Error(path, `truncated header: the file has ${io.length} bytes, a qcow2 header needs 72`);
  }
  const head = new Uint8Array(V2_HEADER_LENGTH);
  io.readAt(0, head);
  const hv = new DataView(head.buffer);
  if (hv.getUint32(0) !== QCOW2_MAGIC) throw new Qcow2Error(path, "not a qcow2 image (bad magic)");
  const version = hv.getUint32(4);
  if (version !== 2 && version !== 3) {
    throw new Qcow2Error(path, `qcow2 version ${version} is not supported (only 2 and 3)`);
  }
  const clusterBits = hv.getUint32(20);
  if (clusterBits < 9 || clusterBits > 21) {
    throw new Qcow2Error(path, `cluster_bits ${clusterBits} is out of range (9..21): the header is corrupt`);
  }
  const clusterSize = 2 ** clusterBits;
  // The header, its extensions and the backing file name all live in the first cluster.
  const first = new Uint8Array(Math.min(io.length, clusterSize));
  io.readAt(0, first);
  const v = new DataView(first.buffer);
  const h: Qcow2Header = {
    version,
    clusterBits,
    clusterSize,
    size: u64(v, 24),
    l1Size: v.getUint32(36),
    l1Offset: u64(v, 40),
    refTableOffset: u64(v, 48),
    refTableClusters: v.getUint32(56),
    snapshots: v.getUint32(60),
    incompatible: 0n,
    compatible: 0n,
    autoclear: 0n,
    headerLength: V2_HEADER_LENGTH,
  };
  if (v.getUint32(32) !== 0) {
    throw new Qcow2Error(path, "encrypted qcow2 images are not supported (feature: encryption)");
  }
  let refcountOrder = 4;
  if (version === 3) {
    if (io.length < V3_HEADER_LENGTH) {
      throw new Qcow2Error(path, `truncated header: ${io.length} bytes, a version 3 header needs 104`);
    }
    h.incompatible = v.getBigUint64(72);
    h.compatible = v.getBigUint64(80);
    h.autoclear = v.getBigUint64(88);
    refcountOrder = v.getUint32(96);
    h.headerLength = v.getUint32(100);
    if (h.headerLength < V3_HEADER_LENGTH || h.headerLength > first.length || h.headerLength % 8 !== 0) {
      throw new Qcow2Error(path, `header_length ${h.headerLength} is invalid: the header is corrupt`);
    }
  }
  if (refcountOrder !== 4) {
    throw new Qcow2Error(
      path,
      `refcount_order ${refcountOrder} (${
        2 ** Math.min(refcountOrder, 30)
      }-bit refcounts) is not supported; ` +
        "only 16-bit refcounts are: convert with `qemu-img amend -o refcount_bits=16`",
    );
  }
  if (h.size > Number.MAX_SAFE_INTEGER - clusterSize || h.size === 0 && h.l1Size > 0) {
    throw new Qcow2Error(path, `virtual size ${h.size} is invalid: the header is corrupt`);
  }
  const l2Covers = clusterSize * (clusterSize / 8);
  const l1Needed = Math.ceil(h.size / l2Covers);
  if (h.l1Size < l1Needed || h.l1Size * 8 > MAX_L1_BYTES) {
    throw new Qcow2Error(path, `L1 table size ${h.l1Size} does not fit the virtual size ${h.size}`);
  }
  checkTable(io, h, "L1 table", h.l1Offset, h.l1Size * 8);
  if (h.refTableClusters === 0 || h.refTableClusters * clusterSize > MAX_REFTABLE_BYTES) {
    throw new Qcow2Error(path, `refcount table of ${h.refTableClusters} clusters is invalid`);
  }
  checkTable(io, h, "refcount table", h.refTableOffset, h.refTableClusters * clusterSize);
  readExtensions(io, first, h);
  readBacking(io, first, v, h);
  return h;
}

function checkTable(io: HeaderSource, h: Qcow2Header, what: string, offset: number, bytes: number): void {
  if (bytes === 0) return;
  if (offset % h.clusterSize !== 0 || offset === 0) {
    throw new Qcow2Error(
      io.path,
      `${what} offset ${offset} is not a valid cluster offset: the image is corrupt`,
    );
  }
  if (offset + bytes > io.length) {
    throw new Qcow2Error(
      io.path,
      `${what} (${bytes} bytes at offset ${offset}) is past the end of the ${io.length}-byte file: ` +
        "the image is truncated or corrupt",
    );
  }
}

function readExtensions(io: HeaderSource, first: Uint8Array, h: Qcow2Header): void {
  const v = new DataView(first.buffer);
  const featureNames = new Map<string, string>();
  let at = h.headerLength;
  let hasCrypto = false;
  let hasDataFile = false;
  while (at + 8 <= first.length) {
    const type = v.getUint32(at);
    const len = v.getUint32(at + 4);
    if (type === EXT_END) break;
    if (at + 8 + len > first.length) {
      throw new Qcow2Error(io.path, `header extension 0x${type.toString(16)} runs past the header area`);
    }
    const data = first.subarray(at + 8, at + 8 + len);
    if (type === EXT_BACKING_FORMAT) h.backingFormat = new TextDecoder().decode(data);
    else if (type === EXT_CRYPTO) hasCrypto = true;
    else if (type === EXT_DATA_FILE) hasDataFile = true;
    else if (type === EXT_FEATURE_NAMES) {
      for (let e = 0; e + 48 <= len; e += 48) {
        const name = new TextDecoder().decode(data.subarray(e + 2, e + 48)).replace(/\0.*$/s, "");
        featureNames.set(`${data[e]}:${data[e + 1]}`, name);
      }
    }
    at += 8 + Math.ceil(len / 8) * 8;
  }
  if (hasCrypto) {
    throw new Qcow2Error(io.path, "encrypted qcow2 images are not supported (feature: encryption)");
  }
  for (let bit = 0; bit < 64; bit++) {
    if ((h.incompatible >> BigInt(bit) & 1n) === 0n) continue;
    const name = INCOMPATIBLE_NAMES[bit] ?? featureNames.get(`0:${bit}`) ?? "unknown";
    throw new Qcow2Error(
      io.path,
      `the image uses incompatible feature bit ${bit} (${name}), which this implementation does not support; ` +
        "the image was not modified",
    );
  }
  if (hasDataFile) {
    throw new Qcow2Error(io.path, "qcow2 images with an external data file are not supported");
  }
}

function readBacking(io: HeaderSource, first: Uint8Array, v: DataView, h: Qcow2Header): void {
  const offset = u64(v, 8);
  const length = v.getUint32(16);
  if (offset === 0) return;
  if (length === 0 || length > MAX_BACKING_NAME || offset + length > first.length) {
    throw new Qcow2Error(
      io.path,
      `backing file name (${length} bytes at offset ${offset}) is outside the header area: the header is corrupt`,
    );
  }
  h.backingFile = new TextDecoder().decode(first.subarray(offset, offset + length));
}

/** What {@linkcode encodeHeader} needs to write a new image's header cluster. */
export interface NewHeader {
  /** 2 or 3. */
  version: number;
  /** log2 of the cluster size. */
  clusterBits: number;
  /** Guest-visible size in bytes. */
  size: number;
  /** L1 entries. */
  l1Size: number;
  /** L1 table file offset. */
  l1Offset: number;
  /** Refcount table file offset. */
  refTableOffset: number;
  /** Refcount table clusters. */
  refTableClusters: number;
  /** Backing file name to store, if any. */
  backingFile?: string;
  /** Backing format to store in the extension, if any. */
  backingFormat?: string;
}

/** Encodes the first cluster of a new image: header, extensions, backing file name. */
export function encodeHeader(path: string, n: NewHeader): Uint8Array {
  const clusterSize = 2 ** n.clusterBits;
  const out = new Uint8Array(clusterSize);
  const v = new DataView(out.buffer);
  v.setUint32(0, QCOW2_MAGIC);
  v.setUint32(4, n.version);
  v.setUint32(20, n.clusterBits);
  v.setBigUint64(24, BigInt(n.size));
  v.setUint32(36, n.l1Size);
  v.setBigUint64(40, BigInt(n.l1Offset));
  v.setBigUint64(48, BigInt(n.refTableOffset));
  v.setUint32(56, n.refTableClusters);
  let at = V2_HEADER_LENGTH;
  if (n.version === 3) {
    v.setUint32(96, 4);
    v.setUint32(100, V3_HEADER_LENGTH);
    at = V3_HEADER_LENGTH;
  }
  const enc = new TextEncoder();
  if (n.backingFormat !== undefined) {
    const fmt = enc.encode(n.backingFormat);
    v.setUint32(at, EXT_BACKING_FORMAT);
    v.setUint32(at + 4, fmt.length);
    out.set(fmt, at + 8);
    at += 8 + Math.ceil(fmt.length / 8) * 8;
  }
  at += 8; // end-of-extensions marker (type 0, length 0)
  if (n.backingFile !== undefined) {
    const name = enc.encode(n.backingFile);
    if (name.length === 0 || name.length > MAX_BACKING_NAME || at + name.length > clusterSize) {
      throw new Qcow2Error(
        path,
        `backing file name is ${name.length} bytes; it must be 1..${MAX_BACKING_NAME}`,
      );
    }
    out.set(name, at);
    v.setBigUint64(8, BigInt(at));
    v.setUint32(16, name.length);
  }
  return out;
}

/** Offset of the autoclear feature field in a version 3 header. */
export const AUTOCLEAR_OFFSET = 88;
