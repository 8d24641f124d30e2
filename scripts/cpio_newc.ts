/**
 * Writes and reads cpio archives in the "newc" format (magic `070701`), the format the Linux kernel unpacks
 * as an initramfs. Every header field is eight ASCII hex digits; names and file data are padded to 4 bytes.
 * Entries carry fixed owner root and mtime 0, so the same inputs give the same bytes.
 *
 * @module
 */

/** One archive member. Paths are relative ("init", "bin/busybox"), without a leading slash. */
export type CpioEntry =
  | { readonly kind: "dir"; readonly path: string; readonly mode?: number }
  | { readonly kind: "file"; readonly path: string; readonly data: Uint8Array; readonly mode?: number }
  | { readonly kind: "symlink"; readonly path: string; readonly target: string }
  | {
    readonly kind: "char";
    readonly path: string;
    readonly major: number;
    readonly minor: number;
    readonly mode?: number;
  };

/** A malformed archive or entry. */
export class CpioError extends Error {
  /** Builds the error. */
  constructor(message: string) {
    super(message);
    this.name = "CpioError";
  }
}

const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;
const S_IFLNK = 0o120000;
const S_IFCHR = 0o020000;
const MAGIC = "070701";
const TRAILER = "TRAILER!!!";
const HEADER = 110;

const pad4 = (n: number): number => (4 - (n % 4)) % 4;
const hex8 = (n: number): string => (n >>> 0).toString(16).padStart(8, "0");

/** Builds a newc archive of `entries` (in order) followed by the trailer. */
export function writeCpio(entries: readonly CpioEntry[]): Uint8Array {
  const enc = new TextEncoder();
  const chunks: Uint8Array[] = [];
  let ino = 1;
  const add = (name: string, mode: number, data: Uint8Array, rdev: [number, number], nlink: number) => {
    if (name.startsWith("/") || name.length === 0) {
      throw new CpioError(`bad cpio path "${name}": use a relative path`);
    }
    const nameBytes = enc.encode(`${name}\0`);
    const fields = [ino++, mode, 0, 0, nlink, 0, data.length, 0, 0, rdev[0], rdev[1], nameBytes.length, 0];
    chunks.push(enc.encode(MAGIC + fields.map(hex8).join("")), nameBytes);
    chunks.push(new Uint8Array(pad4(HEADER + nameBytes.length)), data, new Uint8Array(pad4(data.length)));
  };
  for (const e of entries) {
    switch (e.kind) {
      case "dir":
        add(e.path, S_IFDIR | (e.mode ?? 0o755), new Uint8Array(0), [0, 0], 2);
        break;
      case "file":
        add(e.path, S_IFREG | (e.mode ?? 0o644), e.data, [0, 0], 1);
        break;
      case "symlink":
        add(e.path, S_IFLNK | 0o777, enc.encode(e.target), [0, 0], 1);
        break;
      case "char":
        add(e.path, S_IFCHR | (e.mode ?? 0o600), new Uint8Array(0), [e.major, e.minor], 1);
        break;
    }
  }
  ino = 0;
  add(TRAILER, 0, new Uint8Array(0), [0, 0], 1);
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}

/** A member as read back: its path, full mode (type and permissions), data, and device numbers. */
export interface CpioMember {
  /** Relative path. */
  readonly path: string;
  /** st_mode. */
  readonly mode: number;
  /** File contents or symlink target. */
  readonly data: Uint8Array;
  /** Device major and minor (character and block devices). */
  readonly rdev: readonly [number, number];
}

/** Reads a newc archive up to its trailer; throws CpioError when it is malformed or cut short. */
export function readCpio(bytes: Uint8Array): CpioMember[] {
  const dec = new TextDecoder();
  const members: CpioMember[] = [];
  let at = 0;
  for (;;) {
    if (at + HEADER > bytes.length) throw new CpioError(`archive ends inside a header at byte ${at}`);
    const header = dec.decode(bytes.subarray(at, at + HEADER));
    if (!header.startsWith(MAGIC)) throw new CpioError(`no newc magic at byte ${at}`);
    const field = (i: number): number => parseInt(header.slice(6 + i * 8, 14 + i * 8), 16);
    const nameSize = field(11);
    const dataSize = field(6);
    const nameAt = at + HEADER;
    const dataAt = nameAt + nameSize + pad4(HEADER + nameSize);
    if (dataAt + dataSize > bytes.length) throw new CpioError(`archive ends inside member at byte ${at}`);
    const path = dec.decode(bytes.subarray(nameAt, nameAt + nameSize - 1));
    if (path === TRAILER) return members;
    members.push({
      path,
      mode: field(1),
      data: bytes.slice(dataAt, dataAt + dataSize),
      rdev: [field(9), field(10)],
    });
    at = dataAt + dataSize + pad4(dataSize);
  }
}
