/**
 * virtio-blk (device type 2): parsing a request from a chain (pure) and executing it against a {@link Disk}.
 *
 * A request is a 16-byte header (type, reserved, sector) in the readable bytes, then data (readable for
 * writes, writable for reads), then one writable status byte at the very end. Framing is not assumed: the
 * header and data may be split across buffers in any way.
 *
 * @module
 */
import type { Disk } from "../disk/disk.ts";
import type { GuestMemory } from "../memory/guest_memory.ts";
import type { VirtioBackend } from "./device_core.ts";
import type { Chain } from "./virtqueue.ts";

/** Request types. */
export const BLK_T = { IN: 0, OUT: 1, FLUSH: 4, GET_ID: 8, DISCARD: 11, WRITE_ZEROES: 13 } as const;
/** Status values. */
export const BLK_S = { OK: 0, IOERR: 1, UNSUPP: 2 } as const;
/** Feature bits. */
export const BLK_F = {
  SIZE_MAX: 1,
  SEG_MAX: 2,
  RO: 5,
  BLK_SIZE: 6,
  FLUSH: 9,
  DISCARD: 13,
  WRITE_ZEROES: 14,
} as const;
/** Sector size of the protocol. */
export const SECTOR = 512;
/** Bytes of a GET_ID answer. */
export const BLK_ID_BYTES = 20;
/** Queue size offered. */
export const BLK_QUEUE_SIZE = 256;
/** Most data segments per request (seg_max). */
export const BLK_SEG_MAX = BLK_QUEUE_SIZE - 2;
/** Largest data segment (size_max). */
export const BLK_SIZE_MAX = 1 << 20;
/** Most discard / write-zeroes segments per request. */
export const BLK_MAX_RANGE_SEGS = 16;
/** Largest discard / write-zeroes range, in sectors. */
export const BLK_MAX_RANGE_SECTORS = 1 << 22;
/** Bytes of device config. */
export const BLK_CONFIG_LENGTH = 60;

/** A parsed request: where its parts are in the chain, in bytes of the chain's readable/writable streams. */
export interface BlkRequest {
  /** The request type (maybe one we do not support). */
  type: number;
  /** The first sector. */
  sector: number;
  /** Data bytes (after the header for writes, before the status byte for reads). */
  dataBytes: number;
  /** The status byte's index in guest memory. */
  statusAt: number;
  /** Why the request cannot be executed, if so (answered with `status`). */
  reject: number | undefined;
}

/** Copies `n` bytes of the chain's readable stream from byte `from` into `out`. */
export function gatherReadable(chain: Chain, mem: GuestMemory, from: number, out: Uint8Array): void {
  let skip = from;
  let o = 0;
  for (let i = 0; i < chain.readable && o < out.length; i++) {
    const len = chain.len[i];
    if (skip >= len) {
      skip -= len;
      continue;
    }
    const n = Math.min(len - skip, out.length - o);
    out.set(mem.bytes.subarray(chain.at[i] + skip, chain.at[i] + skip + n), o);
    o += n;
    skip = 0;
  }
}

/** A fresh request record to parse into. */
export function newBlkRequest(): BlkRequest {
  return { type: -1, sector: 0, dataBytes: 0, statusAt: -1, reject: undefined };
}

/**
 * Parses the request in `chain` (pure: reads the header and guest memory, writes only `header` — a 16-byte
 * scratch buffer — and `req`, which it returns; a fresh record when omitted). Returns undefined when the
 * chain has no status byte (nothing can be answered).
 */
export function parseBlkRequest(
  chain: Chain,
  mem: GuestMemory,
  header: Uint8Array,
  req: BlkRequest = newBlkRequest(),
): BlkRequest | undefined {
  if (chain.writeBytes === 0) return undefined;
  // The status byte: the last byte of the last non-empty writable buffer.
  let statusAt = -1;
  for (let i = chain.count - 1; i >= chain.readable; i--) {
    if (chain.len[i] > 0) {
      statusAt = chain.at[i] + chain.len[i] - 1;
      break;
    }
  }
  req.type = -1;
  req.sector = 0;
  req.dataBytes = 0;
  req.statusAt = statusAt;
  req.reject = undefined;
  if (chain.readBytes < 16) {
    req.reject = BLK_S.IOERR;
    return req;
  }
  gatherReadable(chain, mem, 0, header);
  req.type = (header[0] | (header[1] << 8) | (header[2] << 16) | (header[3] << 24)) >>> 0;
  const lo = (header[8] | (header[9] << 8) | (header[10] << 16) | (header[11] << 24)) >>> 0;
  const hi = (header[12] | (header[13] << 8) | (header[14] << 16) | (header[15] << 24)) >>> 0;
  const sector = hi * 2 ** 32 + lo; // exact up to 2^53; larger sectors are past any disk anyway
  req.sector = sector > Number.MAX_SAFE_INTEGER ? Number.MAX_SAFE_INTEGER : sector;
  switch (req.type) {
    case BLK_T.IN:
    case BLK_T.GET_ID:
      req.dataBytes = chain.writeBytes - 1;
      if (chain.readBytes !== 16) req.reject = BLK_S.IOERR;
      break;
    case BLK_T.OUT:
    case BLK_T.DISCARD:
    case BLK_T.WRITE_ZEROES:
      req.dataBytes = chain.readBytes - 16;
      if (chain.writeBytes !== 1) req.reject = BLK_S.IOERR;
      break;
    case BLK_T.FLUSH:
      break;
    default:
      req.reject = BLK_S.UNSUPP;
  }
  if (req.reject === undefined && (req.type === BLK_T.IN || req.type === BLK_T.OUT)) {
    if (req.dataBytes % SECTOR !== 0) req.reject = BLK_S.IOERR;
    const first = req.type === BLK_T.IN ? chain.readable : 1;
    const last = req.type === BLK_T.IN ? chain.count : chain.readable;
    if (last - first > BLK_SEG_MAX + 1) req.reject = BLK_S.IOERR;
    for (let i = first; i < last; i++) if (chain.len[i] > BLK_SIZE_MAX + 16) req.reject = BLK_S.IOERR;
  }
  return req;
}

/** Options of the virtio-blk backend. */
export interface BlkOptions {
  /** The serial number GET_ID answers (at most 20 bytes). */
  readonly id: string;
}

/** The virtio-blk backend over one disk. */
export class BlkBackend implements VirtioBackend {
  /** One request queue. */
  readonly numQueues = 1;
  /** Queue size. */
  readonly maxQueueSize = BLK_QUEUE_SIZE;
  /** Offered features. */
  readonly features: bigint;
  /** Bytes of device config. */
  readonly configLength = BLK_CONFIG_LENGTH;
  readonly #disk: Disk;
  readonly #id: Uint8Array;
  readonly #header = new Uint8Array(16);
  readonly #range = new Uint8Array(16);
  readonly #rangeView = new DataView(this.#range.buffer);
  readonly #req = newBlkRequest();
  #dataWritten = 0;

  /** Serves `disk`. */
  constructor(disk: Disk, opts: BlkOptions) {
    this.#disk = disk;
    this.#id = new Uint8Array(BLK_ID_BYTES);
    this.#id.set(new TextEncoder().encode(opts.id).subarray(0, BLK_ID_BYTES));
    let f = 0n;
    for (const b of [BLK_F.SIZE_MAX, BLK_F.SEG_MAX, BLK_F.BLK_SIZE, BLK_F.FLUSH]) f |= 1n << BigInt(b);
    if (disk.readOnly) f |= 1n << BigInt(BLK_F.RO);
    else f |= (1n << BigInt(BLK_F.DISCARD)) | (1n << BigInt(BLK_F.WRITE_ZEROES));
    this.features = f;
  }

  /** Capacity, segment limits, block size, discard and write-zeroes limits. */
  writeConfig(config: Uint8Array): void {
    const v = new DataView(config.buffer, config.byteOffset, BLK_CONFIG_LENGTH);
    v.setBigUint64(0, BigInt(Math.floor(this.#disk.size / SECTOR)), true);
    v.setUint32(8, BLK_SIZE_MAX, true);
    v.setUint32(12, BLK_SEG_MAX, true);
    v.setUint32(20, SECTOR, true);
    v.setUint32(36, BLK_MAX_RANGE_SECTORS, true);
    v.setUint32(40, BLK_MAX_RANGE_SEGS, true);
    v.setUint32(44, 1, true);
    v.setUint32(48, BLK_MAX_RANGE_SECTORS, true);
    v.setUint32(52, BLK_MAX_RANGE_SEGS, true);
    v.setUint8(56, 1);
  }

  /** Executes one request; answers in its status byte. */
  async handle(_q: number, chain: Chain, mem: GuestMemory): Promise<number> {
    const req = parseBlkRequest(chain, mem, this.#header, this.#req);
    if (req === undefined) return 0;
    let status: number = req.reject ?? BLK_S.OK;
    let written = 1;
    if (req.reject === undefined) {
      this.#dataWritten = 0;
      try {
        status = await this.#execute(req, chain, mem);
        written += this.#dataWritten;
      } catch {
        status = BLK_S.IOERR;
      }
    }
    mem.bytes[req.statusAt] = status;
    return written;
  }

  #inRange(sector: number, bytes: number): boolean {
    return sector <= Number.MAX_SAFE_INTEGER / SECTOR && sector * SECTOR + bytes <= this.#disk.size;
  }

  /** Runs a parsed request; returns its status and leaves the bytes of data it wrote in #dataWritten. */
  async #execute(req: BlkRequest, chain: Chain, mem: GuestMemory): Promise<number> {
    const disk = this.#disk;
    switch (req.type) {
      case BLK_T.IN: {
        if (!this.#inRange(req.sector, req.dataBytes)) return BLK_S.IOERR;
        let pos = req.sector * SECTOR;
        let left = req.dataBytes;
        for (let i = chain.readable; i < chain.count && left > 0; i++) {
          const n = Math.min(chain.len[i], left);
          await disk.read(pos, mem.bytes.subarray(chain.at[i], chain.at[i] + n));
          pos += n;
          left -= n;
        }
        this.#dataWritten = req.dataBytes;
        return BLK_S.OK;
      }
      case BLK_T.OUT: {
        if (disk.readOnly || !this.#inRange(req.sector, req.dataBytes)) {
          return BLK_S.IOERR;
        }
        let pos = req.sector * SECTOR;
        let skip = 16;
        for (let i = 0; i < chain.readable; i++) {
          const len = chain.len[i];
          if (skip >= len) {
            skip -= len;
            continue;
          }
          await disk.write(pos, mem.bytes.subarray(chain.at[i] + skip, chain.at[i] + len));
          pos += len - skip;
          skip = 0;
        }
        return BLK_S.OK;
      }
      case BLK_T.FLUSH:
        if (!disk.readOnly) await disk.flush();
        return BLK_S.OK;
      case BLK_T.GET_ID: {
        const n = Math.min(BLK_ID_BYTES, req.dataBytes);
        let o = 0;
        for (let i = chain.readable; i < chain.count && o < n; i++) {
          const k = Math.min(chain.len[i], n - o);
          mem.bytes.set(this.#id.subarray(o, o + k), chain.at[i]);
          o += k;
        }
        this.#dataWritten = n;
        return BLK_S.OK;
      }
      default:
        return await this.#ranges(req, chain, mem);
    }
  }

  /** DISCARD and WRITE_ZEROES: a list of (sector, count, flags) ranges. */
  async #ranges(req: BlkRequest, chain: Chain, mem: GuestMemory): Promise<number> {
    const disk = this.#disk;
    if (disk.readOnly) return BLK_S.IOERR;
    const n = req.dataBytes / 16;
    if (!Number.isInteger(n) || n === 0 || n > BLK_MAX_RANGE_SEGS) return BLK_S.UNSUPP;
    const v = this.#rangeView;
    // Check every range before touching the disk.
    for (let pass = 0; pass < 2; pass++) {
      for (let s = 0; s < n; s++) {
        gatherReadable(chain, mem, 16 + 16 * s, this.#range);
        const sector = Number(v.getBigUint64(0, true));
        const count = v.getUint32(8, true);
        const flags = v.getUint32(12, true);
        const unmap = req.type === BLK_T.WRITE_ZEROES ? 1 : 0;
        if (pass === 0) {
          if ((flags & ~unmap) !== 0) return BLK_S.UNSUPP;
          if (count > BLK_MAX_RANGE_SECTORS || !this.#inRange(sector, count * SECTOR)) return BLK_S.IOERR;
          continue;
        }
        if (req.type === BLK_T.DISCARD) await disk.discard(sector * SECTOR, count * SECTOR);
        else await disk.writeZeroes(sector * SECTOR, count * SECTOR);
      }
    }
    return BLK_S.OK;
  }
}
