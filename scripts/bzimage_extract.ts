/**
 * Extracts the ELF `vmlinux` from a Linux x86 bzImage: find the compressed kernel (from the boot-protocol
 * header's `payload_offset` / `payload_length`, protocol 2.08+, else by scanning for a compression magic),
 * decompress it with the matching tool (`node:zlib` for gzip; lz4, xz, zstd, bzip2, lzop otherwise, installed
 * with apt when missing) and check that the result is an ELF file.
 *
 * @module
 */
import { gunzipSync } from "node:zlib";
import { ensureCommand } from "./apt.ts";
import { isElf } from "./elf_pvh.ts";

/** The compressions a bzImage payload can use. */
export type PayloadFormat = "gzip" | "xz" | "lz4" | "zstd" | "bzip2" | "lzma" | "lzo";

/** A bzImage that cannot be taken apart, with what is wrong. */
export class BzImageError extends Error {
  /** Builds the error. */
  constructor(message: string) {
    super(message);
    this.name = "BzImageError";
  }
}

/** The boot-protocol header fields this module reads. */
export interface BzImageHeader {
  /** `setup_sects` (0 means 4). */
  readonly setupSects: number;
  /** Boot protocol version, e.g. 0x020f. */
  readonly version: number;
  /** Offset of the protected-mode code in the file: (setup_sects + 1) * 512. */
  readonly protectedModeOffset: number;
  /** `payload_offset` (2.08+), relative to the protected-mode code; 0 when absent. */
  readonly payloadOffset: number;
  /** `payload_length` (2.08+); 0 when absent. */
  readonly payloadLength: number;
}

const MAGICS: readonly [PayloadFormat, readonly number[]][] = [
  ["gzip", [0x1f, 0x8b, 0x08]],
  ["xz", [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]],
  ["lz4", [0x02, 0x21, 0x4c, 0x18]],
  ["zstd", [0x28, 0xb5, 0x2f, 0xfd]],
  ["bzip2", [0x42, 0x5a, 0x68]],
  ["lzo", [0x89, 0x4c, 0x5a, 0x4f, 0x00, 0x0d, 0x0a, 0x1a, 0x0a]],
  ["lzma", [0x5d, 0x00, 0x00]],
];

/** The program, its arguments (data on stdin, result on stdout) and its Debian package, per format. */
const TOOLS: Readonly<Record<Exclude<PayloadFormat, "gzip">, readonly [string, string[], string]>> = {
  xz: ["xz", ["-dc", "--single-stream"], "xz-utils"],
  lz4: ["lz4", ["-dc"], "lz4"],
  zstd: ["zstd", ["-dcq"], "zstd"],
  bzip2: ["bzip2", ["-dc"], "bzip2"],
  lzma: ["xz", ["-dc", "--format=lzma"], "xz-utils"],
  lzo: ["lzop", ["-dc"], "lzop"],
};

/** Reads the boot-protocol header; throws BzImageError when the "HdrS" magic at 0x202 is missing. */
export function readBzImageHeader(bytes: Uint8Array): BzImageHeader {
  if (bytes.length < 0x250) {
    throw new BzImageError(`file too short for a bzImage header (${bytes.length} bytes)`);
  }
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (v.getUint32(0x202, true) !== 0x53726448) {
    throw new BzImageError('no "HdrS" boot-protocol magic at 0x202');
  }
  const setupSects = bytes[0x1f1] === 0 ? 4 : bytes[0x1f1];
  const version = v.getUint16(0x206, true);
  const has = version >= 0x208;
  return {
    setupSects,
    version,
    protectedModeOffset: (setupSects + 1) * 512,
    payloadOffset: has ? v.getUint32(0x248, true) : 0,
    payloadLength: has ? v.getUint32(0x24c, true) : 0,
  };
}

/** The compression whose magic starts `bytes`, if any. */
export function payloadFormat(bytes: Uint8Array): PayloadFormat | undefined {
  for (const [format, magic] of MAGICS) {
    if (magic.every((b, i) => bytes[i] === b)) return format;
  }
  return undefined;
}

async function pipeThrough(cmd: string, args: string[], input: Uint8Array): Promise<Uint8Array> {
  const child = new Deno.Command(cmd, { args, stdin: "piped", stdout: "piped", stderr: "piped" }).spawn();
  const result = child.output();
  const writer = child.stdin.getWriter();
  try {
    await writer.write(input);
    await writer.close();
  } catch {
    // the tool stopped reading (bad data); its status says why
  }
  const out = await result;
  if (!out.success) {
    throw new BzImageError(`${cmd} ${args.join(" ")} failed: ${new TextDecoder().decode(out.stderr).trim()}`);
  }
  return out.stdout;
}

/** Decompresses one kernel payload (without the 4-byte size the kernel build appends). */
export async function decompress(format: PayloadFormat, data: Uint8Array): Promise<Uint8Array> {
  if (format === "gzip") return new Uint8Array(gunzipSync(data));
  const [cmd, args, pkg] = TOOLS[format];
  await ensureCommand(cmd, pkg);
  return await pipeThrough(cmd, args, data);
}

/** The extracted kernel and how it was found. */
export interface ExtractedVmlinux {
  /** The ELF vmlinux. */
  readonly elf: Uint8Array;
  /** The payload's compression. */
  readonly format: PayloadFormat;
  /** Where the compressed payload starts in the bzImage. */
  readonly payloadStart: number;
}

async function fromHeader(bytes: Uint8Array, h: BzImageHeader): Promise<ExtractedVmlinux | undefined> {
  if (h.payloadLength < 8) return undefined;
  const start = h.protectedModeOffset + h.payloadOffset;
  if (start + h.payloadLength > bytes.length) {
    throw new BzImageError(`payload (${start} + ${h.payloadLength}) runs past the end of the file`);
  }
  const payload = bytes.subarray(start, start + h.payloadLength);
  const format = payloadFormat(payload);
  if (format === undefined) return undefined;
  const size = new DataView(payload.buffer, payload.byteOffset + payload.length - 4).getUint32(0, true);
  const elf = await decompress(format, payload.subarray(0, payload.length - 4));
  if (elf.length !== size) {
    throw new BzImageError(`${format} payload gave ${elf.length} bytes; the bzImage says ${size}`);
  }
  return { elf, format, payloadStart: start };
}

async function byScanning(bytes: Uint8Array, from: number): Promise<ExtractedVmlinux | undefined> {
  for (const [format, magic] of MAGICS) {
    let tries = 0;
    for (let at = bytes.indexOf(magic[0], from); at >= 0 && tries < 8; at = bytes.indexOf(magic[0], at + 1)) {
      if (!magic.every((b, i) => bytes[at + i] === b)) continue;
      tries++;
      try {
        const elf = await decompress(format, bytes.subarray(at));
        if (isElf(elf)) return { elf, format, payloadStart: at };
      } catch {
        // not this one (a tool refuses trailing data or a false magic); keep looking
      }
    }
  }
  return undefined;
}

/** Extracts the ELF vmlinux from a bzImage; throws BzImageError saying what failed. */
export async function extractVmlinux(bzImage: Uint8Array): Promise<ExtractedVmlinux> {
  const h = readBzImageHeader(bzImage);
  const found = (await fromHeader(bzImage, h)) ?? (await byScanning(bzImage, h.protectedModeOffset));
  if (found === undefined) throw new BzImageError("no compressed kernel found in the bzImage");
  if (!isElf(found.elf)) throw new BzImageError(`the ${found.format} payload is not an ELF file`);
  return found;
}
