/**
 * Copying one disk into another (of any formats) sparsely: ranges the source reports as zero, and chunks that
 * read as all zeros, are skipped.
 *
 * @module
 */
import { type Disk, DiskError } from "./disk.ts";

/** Bytes copied per read/write while converting. */
export const CONVERT_CHUNK = 1 << 20;

/** Called during {@linkcode copyDisk} with the bytes done so far and the total. */
export type ProgressCallback = (done: number, total: number) => void;

/** True when every byte of `buf` is zero. */
export function isZero(buf: Uint8Array): boolean {
  const words = buf.length >>> 3;
  if (buf.byteOffset % 8 === 0 && words > 0) {
    const w = new BigUint64Array(buf.buffer, buf.byteOffset, words);
    for (let i = 0; i < w.length; i++) if (w[i] !== 0n) return false;
  } else {
    for (let i = 0; i < words * 8; i++) if (buf[i] !== 0) return false;
  }
  for (let i = words * 8; i < buf.length; i++) if (buf[i] !== 0) return false;
  return true;
}

/**
 * Copies the contents of `src` into `dst` (which must read as zeros and be at least as large), skipping zeros,
 * then flushes `dst`. Returns the number of bytes actually written.
 */
export async function copyDisk(src: Disk, dst: Disk, onProgress?: ProgressCallback): Promise<number> {
  if (dst.size < src.size) {
    throw new DiskError(
      dst.path,
      `is ${dst.size} bytes, smaller than the ${src.size}-byte source ${src.path}`,
    );
  }
  const buf = new Uint8Array(CONVERT_CHUNK);
  let written = 0;
  let pos = 0;
  while (pos < src.size) {
    const status = await src.blockStatus(pos, Math.min(src.size - pos, 64 * CONVERT_CHUNK));
    if (status.kind === "zero") {
      pos += status.length;
    } else {
      const end = pos + status.length;
      while (pos < end) {
        const n = Math.min(buf.length - (pos % buf.length), end - pos);
        const chunk = buf.subarray(0, n);
        await src.read(pos, chunk);
        if (!isZero(chunk)) {
          await dst.write(pos, chunk);
          written += n;
        }
        pos += n;
      }
    }
    onProgress?.(pos, src.size);
  }
  await dst.flush();
  return written;
}
