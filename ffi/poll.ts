/**
 * poll(2) over raw file descriptors, awaited off the main thread: the call runs on one of Deno's blocking
 * threads (`nonblocking: true`), so the event loop keeps serving while the kernel waits. errno is not
 * readable after such a call (it belongs to the other thread); a failed poll is reported as "no events" and
 * the caller polls again.
 *
 * @module
 */
import { resolveLibcPath } from "./libc.ts";

/** poll(2) event: data to read. */
export const POLLIN = 0x001;
/** poll(2) event: writing will not block. */
export const POLLOUT = 0x004;
/** poll(2) event: error condition. */
export const POLLERR = 0x008;
/** poll(2) event: hang-up. */
export const POLLHUP = 0x010;
/** poll(2) event: the fd is not open. */
export const POLLNVAL = 0x020;

const SYMBOLS = {
  // int poll(struct pollfd *fds, nfds_t nfds, int timeout);   (run on a blocking thread)
  poll_async: { name: "poll", parameters: ["buffer", "u64", "i32"], result: "i32", nonblocking: true },
} as const satisfies Deno.ForeignLibraryInterface;

let lib: Deno.DynamicLibrary<typeof SYMBOLS> | undefined;

function symbols(): Deno.DynamicLibrary<typeof SYMBOLS>["symbols"] {
  lib ??= Deno.dlopen(resolveLibcPath(), SYMBOLS);
  return lib.symbols;
}

/** One descriptor to wait on and the events wanted. */
export interface PollRequest {
  /** The file descriptor. */
  readonly fd: number;
  /** Wanted events ({@link POLLIN}, {@link POLLOUT}). */
  readonly events: number;
}

/**
 * Waits until one of `requests` is ready or `timeoutMs` passes; resolves to each one's returned events (0
 * when none, or when poll failed).
 */
export async function pollFds(requests: readonly PollRequest[], timeoutMs: number): Promise<number[]> {
  // struct pollfd { int fd; short events; short revents; } — 8 bytes each, in our own buffer, which stays
  // referenced (and unchanged) until the call returns.
  const buf = new Uint8Array(requests.length * 8);
  const view = new DataView(buf.buffer);
  requests.forEach((r, i) => {
    view.setInt32(i * 8, r.fd, true);
    view.setInt16(i * 8 + 4, r.events, true);
  });
  const n = await symbols().poll_async(buf, BigInt(requests.length), Math.max(-1, Math.trunc(timeoutMs)));
  if (n <= 0) return requests.map(() => 0);
  return requests.map((_, i) => view.getUint16(i * 8 + 6, true));
}
