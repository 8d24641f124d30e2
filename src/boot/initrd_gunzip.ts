/**
 * A gzip initramfs, decompressed by vmd. On PVM the kernel would inflate it at emulated speed (Debian's
 * kernel spent 265 s unpacking the 1.1 MiB test initramfs there); the kernel takes an uncompressed cpio
 * archive just as well. Anything vmd cannot inflate whole (another compression, concatenated archives of
 * different kinds, a corrupt stream, more than the limit) is passed on unchanged for the kernel to handle.
 *
 * @module
 */
// node:zlib is imported only for a gzip initrd: loading it costs an isolate ~20 ms and ~3 MiB (docs/vmd.md).

/** gzip's magic and the deflate method byte. */
const GZIP_MAGIC = [0x1f, 0x8b, 0x08] as const;

/** True if `bytes` starts with a gzip member header (deflate). */
export function isGzip(bytes: Uint8Array): boolean {
  return bytes.length >= 18 && GZIP_MAGIC.every((b, i) => bytes[i] === b);
}

/**
 * `initrd` inflated when it is gzip and inflates to at most `limit` bytes of a cpio archive (`070701` or
 * `070702` magic); otherwise `initrd` itself.
 */
export async function inflateInitrd(initrd: Uint8Array, limit: number): Promise<Uint8Array> {
  if (!isGzip(initrd)) return initrd;
  const { gunzipSync } = await import("node:zlib");
  let out: Uint8Array;
  try {
    out = new Uint8Array(gunzipSync(initrd, { maxOutputLength: limit }));
  } catch {
    return initrd;
  }
  const magic = new TextDecoder().decode(out.subarray(0, 6));
  return magic === "070701" || magic === "070702" ? out : initrd;
}
