/**
 * errno handling: {@link ErrnoError} carries the errno and the name of the call that failed.
 *
 * errno is thread-local; it is read through `__errno_location()` in the same thread, right after the call.
 *
 * @module
 */
import { type Libc, openLibc } from "./libc.ts";

/** Linux errno names by number (x86_64/asm-generic), for messages. */
export const ERRNO_NAMES: Readonly<Record<number, string>> = {
  1: "EPERM",
  2: "ENOENT",
  3: "ESRCH",
  4: "EINTR",
  5: "EIO",
  6: "ENXIO",
  7: "E2BIG",
  9: "EBADF",
  11: "EAGAIN",
  12: "ENOMEM",
  13: "EACCES",
  14: "EFAULT",
  16: "EBUSY",
  17: "EEXIST",
  19: "ENODEV",
  22: "EINVAL",
  24: "EMFILE",
  25: "ENOTTY",
  28: "ENOSPC",
  34: "ERANGE",
  38: "ENOSYS",
  95: "EOPNOTSUPP",
};

/** errno values the hot path compares against. */
export const EINTR = 4;
/** Resource temporarily unavailable. */
export const EAGAIN = 11;
/** Invalid argument. */
export const EINVAL = 22;
/** Bad file descriptor. */
export const EBADF = 9;
/** Inappropriate ioctl for device. */
export const ENOTTY = 25;

/** A failed libc call: `call` names it (e.g. `ioctl(KVM_CREATE_VM)`), `errno` says why. */
export class ErrnoError extends Error {
  /** The errno value. */
  readonly errno: number;
  /** The failed call, with the ioctl name where there is one. */
  readonly call: string;
  /** The errno's symbolic name, e.g. `EINVAL`. */
  readonly code: string;

  /** Builds the error; `detail` is the system's description of errno. */
  constructor(call: string, errno: number, detail: string) {
    const code = ERRNO_NAMES[errno] ?? `errno ${errno}`;
    super(`${call} failed: ${code} (${detail})`);
    this.name = "ErrnoError";
    this.errno = errno;
    this.call = call;
    this.code = code;
  }
}

let errnoAddress = 0n;
const errnoBuf = new Int32Array(1);

/** Reads this thread's errno. Call it immediately after the failing call, in the same thread. */
export function errno(libc: Libc = openLibc()): number {
  // __errno_location() is this thread's errno slot, valid for the thread's lifetime (module state is
  // per thread: each worker has its own copy of this module).
  if (errnoAddress === 0n) errnoAddress = libc.__errno_location();
  // Safe: copies the 4-byte int at that live address into our own buffer.
  libc.memcpy_from(errnoBuf, errnoAddress, 4n);
  return errnoBuf[0];
}

const messageBuf = new Uint8Array(256);

/** The system's description of an errno value (strerror_r). */
export function describeErrno(code: number, libc: Libc = openLibc()): string {
  // Safe: strerror_r writes at most messageBuf.length bytes, NUL-terminated, into our buffer.
  if (libc.strerror_r(code, messageBuf, BigInt(messageBuf.length)) !== 0) return `errno ${code}`;
  const end = messageBuf.indexOf(0);
  return new TextDecoder().decode(messageBuf.subarray(0, end < 0 ? messageBuf.length : end));
}

/** Builds an {@link ErrnoError} for `call` from the current errno. */
export function lastError(call: string, libc: Libc = openLibc()): ErrnoError {
  const code = errno(libc);
  return new ErrnoError(call, code, describeErrno(code, libc));
}
