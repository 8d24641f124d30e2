/**
 * Guest RAM backing: a SharedArrayBuffer whose page-aligned part is registered with KVM. Only this module
 * looks at the buffer's host address; workers get the buffer and the offset and need no ffi.
 *
 * @module
 */

import { openLibc } from "./libc.ts";

/** The x86 page size. */
export const PAGE_SIZE = 4096;

/** madvise(2) advice: leave the range out of core dumps. */
const MADV_DONTDUMP = 16;

/** A SharedArrayBuffer with `size` page-aligned bytes starting at `offset`. */
export interface GuestRamBacking {
  /** The buffer; share it with workers as is. */
  readonly sab: SharedArrayBuffer;
  /** Byte offset of the first page-aligned byte. */
  readonly offset: number;
  /** Usable bytes from `offset`. */
  readonly size: number;
}

/** The host virtual address of the first byte of `bytes`. */
export function hostAddressOf(bytes: Uint8Array): bigint {
  // Taking the address of a live typed array is safe; the caller keeps `bytes` (and its buffer) alive.
  return Deno.UnsafePointer.value(Deno.UnsafePointer.of(bytes));
}

/**
 * Allocates `size` bytes (a multiple of the page size) of guest RAM. V8 places a SharedArrayBuffer's data a
 * few bytes past a page boundary, so one extra page is allocated and the aligned part is used. Untouched pages
 * cost nothing. The aligned part is marked MADV_DONTDUMP: a core dump of the VMM leaves the guest's memory out
 * (as QEMU's dump-guest-core=off does), and the range stays a mapping of its own in /proc/PID/smaps (areas
 * with other flags never merge with it), which is how vmd reads a guest's resident memory (CURMEM).
 */
export function allocateGuestRam(size: number): GuestRamBacking {
  if (!Number.isSafeInteger(size) || size <= 0 || size % PAGE_SIZE !== 0) {
    throw new RangeError(`guest RAM size ${size} is not a positive multiple of ${PAGE_SIZE}`);
  }
  const sab = new SharedArrayBuffer(size + PAGE_SIZE);
  const address = hostAddressOf(new Uint8Array(sab));
  const offset = Number((BigInt(PAGE_SIZE) - (address % BigInt(PAGE_SIZE))) % BigInt(PAGE_SIZE));
  // Safe: the range is the page-aligned part of the buffer just allocated, which `sab` keeps alive.
  openLibc().madvise(address + BigInt(offset), BigInt(size), MADV_DONTDUMP);
  return { sab, offset, size };
}
