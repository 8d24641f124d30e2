/**
 * File-descriptor helpers over libc: open flags, C strings, eventfd.
 *
 * @module
 */
import { lastError } from "./errno.ts";
import { type Libc, openLibc } from "./libc.ts";

/** open(2) flag: read and write. */
export const O_RDWR = 0o2;
/** open(2) flag: close on exec, so VM fds never leak into children. */
export const O_CLOEXEC = 0o2000000;
/** eventfd(2) flag: close on exec. */
export const EFD_CLOEXEC = 0o2000000;
/** eventfd(2) flag: non-blocking reads. */
export const EFD_NONBLOCK = 0o4000;

const encoder = new TextEncoder();

/** A NUL-terminated copy of `s` for passing as `const char *`. */
export function cString(s: string): Uint8Array<ArrayBuffer> {
  const bytes = encoder.encode(s);
  const out = new Uint8Array(bytes.length + 1);
  out.set(bytes);
  return out;
}

/** close(2); errors are ignored (the fd is gone either way). */
export function closeFd(fd: number, libc: Libc = openLibc()): void {
  libc.close(fd);
}

/** eventfd(2): a new eventfd with counter `initial`. */
export function createEventfd(flags = EFD_CLOEXEC, initial = 0, libc: Libc = openLibc()): number {
  const fd = libc.eventfd(initial, flags);
  if (fd < 0) throw lastError("eventfd", libc);
  return fd;
}

const counter = new Uint8Array(8);
const counterView = new DataView(counter.buffer);

/** Adds `value` to an eventfd's counter (write(2) of a u64). */
export function signalEventfd(fd: number, value = 1n, libc: Libc = openLibc()): void {
  counterView.setBigUint64(0, value, true);
  if (libc.write(fd, counter, 8n) !== 8n) throw lastError("write(eventfd)", libc);
}

/** Reads and resets an eventfd's counter (read(2) of a u64). */
export function drainEventfd(fd: number, libc: Libc = openLibc()): bigint {
  if (libc.read(fd, counter, 8n) !== 8n) throw lastError("read(eventfd)", libc);
  return counterView.getBigUint64(0, true);
}
