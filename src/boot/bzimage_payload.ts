/**
 * The kernel inside a bzImage: its compressed payload (boot protocol 2.08+: `payload_offset` and
 * `payload_length`, counted from the protected-mode kernel) and, when vmd can decompress it (LZ4 legacy
 * frames), the ELF `vmlinux` it holds. vmd boots that ELF through its PVH entry on PVM, where the kernel's own
 * decompressor would run at emulated speed (docs/pvm.md).
 *
 * @module
 */
import { BootError } from "./boot_error.ts";
import { parseSetupHeader } from "./bzimage.ts";
import { isElf, parseElf, pvhEntry } from "./elf.ts";
import { isLz4Legacy, lz4LegacyDecompress } from "./lz4_legacy.ts";

/** `payload_offset` and `payload_length` in the setup header (boot protocol 2.08+). */
export const PAYLOAD_FIELDS = { payload_offset: 0x248, payload_length: 0x24c } as const;

/** The compressed payload of bzImage `bytes` (a view into it); throws {@link BootError} if out of bounds. */
export function bzImagePayload(bytes: Uint8Array, what: string): Uint8Array {
  const header = parseSetupHeader(bytes, what);
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const start = header.kernelOffset + v.getUint32(PAYLOAD_FIELDS.payload_offset, true);
  const length = v.getUint32(PAYLOAD_FIELDS.payload_length, true);
  if (length === 0 || start + length > bytes.length) {
    throw new BootError(what, `payload [${start}, +${length}) lies outside the ${bytes.length}-byte file`);
  }
  return bytes.subarray(start, start + length);
}

/**
 * The ELF kernel inside bzImage `bytes` when its payload is LZ4 (legacy frames) and the ELF has a PVH entry
 * note, else undefined (another compression, or no PVH entry: the caller boots the bzImage as it is). At most
 * `limit` bytes are decompressed.
 */
export function pvhKernelInBzImage(bytes: Uint8Array, what: string, limit: number): Uint8Array | undefined {
  const payload = bzImagePayload(bytes, what);
  if (!isLz4Legacy(payload)) return undefined;
  const elf = lz4LegacyDecompress(payload, limit);
  if (!isElf(elf)) return undefined;
  return pvhEntry(parseElf(elf, `${what} (payload)`)) === undefined ? undefined : elf;
}
