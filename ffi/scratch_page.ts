/**
 * A private page for passing small structs to the kernel by address from a thread whose ffi grant is scoped
 * to libc: such a thread may call libc but may not take a JS buffer's address (Deno's pointer API is denied),
 * so the struct is copied into a fresh anonymous mapping, the call gets the mapping's address, and the
 * mapping is gone when {@link withScratchPage} returns.
 *
 * @module
 */
import { lastError } from "./errno.ts";
import type { Libc } from "./libc.ts";

/** `PROT_READ | PROT_WRITE`. */
const PROT_READ_WRITE = 0x1 | 0x2;
/** `MAP_PRIVATE | MAP_ANONYMOUS`. */
const MAP_PRIVATE_ANONYMOUS = 0x02 | 0x20;
/** `MAP_FAILED` as an unsigned address. */
const MAP_FAILED = 0xffff_ffff_ffff_ffffn;
/** The page's size. */
export const SCRATCH_PAGE_SIZE = 4096;

/** Calls `fn` with the address of a fresh zeroed private page, then unmaps it. */
export function withScratchPage<T>(libc: Libc, fn: (page: bigint) => T): T {
  const page = BigInt(
    libc.mmap(0n, BigInt(SCRATCH_PAGE_SIZE), PROT_READ_WRITE, MAP_PRIVATE_ANONYMOUS, -1, 0n),
  );
  if (page === MAP_FAILED) throw lastError("mmap(scratch page)", libc);
  try {
    return fn(page);
  } finally {
    libc.munmap(page, BigInt(SCRATCH_PAGE_SIZE));
  }
}

/** Copies `bytes` to `address` (inside a page from {@link withScratchPage}). */
export function copyToScratch(libc: Libc, address: bigint, bytes: Uint8Array<ArrayBuffer>): void {
  if (bytes.length > SCRATCH_PAGE_SIZE) {
    throw new RangeError(`${bytes.length} bytes do not fit a scratch page`);
  }
  // Safe: the caller passes an address inside a live scratch page; the length fits the page (checked above,
  // callers keep offset + length within it).
  libc.memcpy_to(address, bytes, BigInt(bytes.length));
}

/** Copies `into.length` bytes from `address` (inside a page from {@link withScratchPage}). */
export function copyFromScratch(libc: Libc, into: Uint8Array<ArrayBuffer>, address: bigint): void {
  if (into.length > SCRATCH_PAGE_SIZE) throw new RangeError(`${into.length} bytes do not fit a scratch page`);
  // Safe: reads within the same live scratch page the kernel just wrote.
  libc.memcpy_from(into, address, BigInt(into.length));
}
