/**
 * LZ4's legacy frame format (what `lz4 -l` writes and Linux's bzImage carries when built with
 * CONFIG_KERNEL_LZ4): the magic 0x184C2102, then blocks, each a little-endian u32 compressed length and an
 * LZ4 block that expands to at most 8 MiB. A repeated magic (concatenated frames) is skipped. Every length
 * is checked against the input and a caller-given output limit, so a hostile file can only make it fail.
 *
 * @module
 */

/** The legacy frame's magic number (little-endian u32 at offset 0). */
export const LZ4_LEGACY_MAGIC = 0x184c2102;
/** The largest block a legacy frame holds, decompressed. */
export const LZ4_LEGACY_BLOCK_MAX = 8 << 20;

/** A malformed or oversized LZ4 stream. */
export class Lz4Error extends Error {
  /** Builds the error. */
  constructor(message: string) {
    super(message);
    this.name = "Lz4Error";
  }
}

/** True if `bytes` starts with the legacy frame magic. */
export function isLz4Legacy(bytes: Uint8Array): boolean {
  return bytes.length >= 4 &&
    new DataView(bytes.buffer, bytes.byteOffset, 4).getUint32(0, true) === LZ4_LEGACY_MAGIC;
}

/** Decodes one LZ4 block `src` into `out` at `at`; returns the new end. Throws on anything out of bounds. */
function decodeBlock(src: Uint8Array, out: Uint8Array, at: number, blockEnd: number): number {
  let i = 0;
  let o = at;
  const extend = (n: number): number => {
    if (n !== 15) return n;
    for (;;) {
      if (i >= src.length) throw new Lz4Error("block ends inside a length");
      const b = src[i++];
      n += b;
      if (b !== 255) return n;
    }
  };
  while (i < src.length) {
    const token = src[i++];
    const literals = extend(token >> 4);
    if (i + literals > src.length) throw new Lz4Error("literals run past the block");
    if (o + literals > blockEnd) throw new Lz4Error("block expands past its limit");
    out.set(src.subarray(i, i + literals), o);
    i += literals;
    o += literals;
    if (i === src.length) break; // the last sequence has literals only
    if (i + 2 > src.length) throw new Lz4Error("block ends inside a match offset");
    const offset = src[i] | (src[i + 1] << 8);
    i += 2;
    if (offset === 0 || offset > o - at) throw new Lz4Error(`match offset ${offset} points before the block`);
    const length = extend(token & 15) + 4;
    if (o + length > blockEnd) throw new Lz4Error("block expands past its limit");
    // byte by byte: a match may overlap what it is copying (offset < length repeats a pattern)
    for (let k = 0; k < length; k++, o++) out[o] = out[o - offset];
  }
  return o;
}

/**
 * Decompresses legacy-frame `input` (which may end with trailing bytes shorter than a block header, such as
 * the kernel build's appended size) into at most `limit` bytes.
 */
export function lz4LegacyDecompress(input: Uint8Array, limit: number): Uint8Array {
  if (!isLz4Legacy(input)) throw new Lz4Error("no LZ4 legacy magic");
  const v = new DataView(input.buffer, input.byteOffset, input.byteLength);
  let out = new Uint8Array(Math.min(limit, 4 * input.length));
  let o = 0;
  let i = 4;
  while (i + 4 <= input.length) {
    const size = v.getUint32(i, true);
    if (size === LZ4_LEGACY_MAGIC) {
      i += 4;
      continue;
    }
    if (i + 4 + size > input.length) {
      // the kernel build appends the decompressed size (4 bytes) after the last block
      if (i + 4 === input.length) break;
      throw new Lz4Error(`block of ${size} bytes at ${i} runs past the input (${input.length} bytes)`);
    }
    const room = Math.min(o + LZ4_LEGACY_BLOCK_MAX, limit);
    if (out.length < room) {
      const bigger = new Uint8Array(Math.min(limit, Math.max(room, out.length * 2)));
      bigger.set(out.subarray(0, o));
      out = bigger;
    }
    o = decodeBlock(input.subarray(i + 4, i + 4 + size), out, o, room);
    i += 4 + size;
  }
  return out.slice(0, o);
}
