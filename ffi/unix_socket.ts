/**
 * Unix stream sockets through libc, for the one thing Deno does not expose: the peer's credentials
 * (SO_PEERCRED), which the control socket's access checks rest on. Every fd is non-blocking and
 * close-on-exec; readiness comes from {@link pollFds} in `poll.ts`.
 *
 * @module
 */
import { type ErrnoError, lastError } from "./errno.ts";
import { cString } from "./fd.ts";
import { type Libc, openLibc, resolveLibcPath } from "./libc.ts";

const AF_UNIX = 1;
const SOCK_STREAM = 1;
const SOCK_NONBLOCK = 0o4000;
const SOCK_CLOEXEC = 0o2000000;
const SOL_SOCKET = 1;
const SO_PEERCRED = 17;
const MSG_NOSIGNAL = 0x4000;
const SUN_PATH_MAX = 108;
/** errno: try again. */
const EAGAIN = 11;
/** errno: interrupted. */
const EINTR = 4;

const SYMBOLS = {
  // int socket(int domain, int type, int protocol);
  socket: { parameters: ["i32", "i32", "i32"], result: "i32" },
  // int bind(int sockfd, const struct sockaddr *addr, socklen_t addrlen);
  bind: { parameters: ["i32", "buffer", "u32"], result: "i32" },
  // int listen(int sockfd, int backlog);
  listen: { parameters: ["i32", "i32"], result: "i32" },
  // int accept4(int sockfd, struct sockaddr *addr, socklen_t *addrlen, int flags);  (addr, addrlen NULL)
  accept4: { parameters: ["i32", "usize", "usize", "i32"], result: "i32" },
  // int getsockopt(int sockfd, int level, int optname, void *optval, socklen_t *optlen);
  getsockopt: { parameters: ["i32", "i32", "i32", "buffer", "buffer"], result: "i32" },
  // ssize_t recv(int sockfd, void *buf, size_t len, int flags);
  recv: { parameters: ["i32", "buffer", "usize", "i32"], result: "isize" },
  // ssize_t send(int sockfd, const void *buf, size_t len, int flags);
  send: { parameters: ["i32", "buffer", "usize", "i32"], result: "isize" },
} as const satisfies Deno.ForeignLibraryInterface;

let lib: Deno.DynamicLibrary<typeof SYMBOLS> | undefined;

function sym(): Deno.DynamicLibrary<typeof SYMBOLS>["symbols"] {
  lib ??= Deno.dlopen(resolveLibcPath(), SYMBOLS);
  return lib.symbols;
}

/** The credentials the kernel recorded for a socket's peer when it connected. */
export interface PeerCredentials {
  /** The peer's process id. */
  readonly pid: number;
  /** Its user id. */
  readonly uid: number;
  /** Its group id. */
  readonly gid: number;
}

/** A socket path that does not fit in `sockaddr_un`. */
export class SocketPathError extends Error {
  /** Builds the error. */
  constructor(path: string) {
    super(`socket path ${path} is longer than ${SUN_PATH_MAX - 1} bytes; choose a shorter VMD_SOCKET`);
    this.name = "SocketPathError";
  }
}

function fail(call: string, libc: Libc): ErrnoError {
  return lastError(call, libc);
}

/** Creates a listening Unix stream socket bound to `path` (which must not exist). */
export function listenUnix(path: string, backlog = 1024): number {
  const libc = openLibc();
  const name = cString(path);
  if (name.length > SUN_PATH_MAX) throw new SocketPathError(path);
  // struct sockaddr_un { sa_family_t sun_family; char sun_path[108]; } in our own 110-byte buffer
  const addr = new Uint8Array(2 + SUN_PATH_MAX);
  new DataView(addr.buffer).setUint16(0, AF_UNIX, true);
  addr.set(name, 2);
  const fd = sym().socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) throw fail("socket(AF_UNIX)", libc);
  if (sym().bind(fd, addr, addr.length) !== 0) {
    const e = fail(`bind(${path})`, libc);
    libc.close(fd);
    throw e;
  }
  if (sym().listen(fd, backlog) !== 0) {
    const e = fail(`listen(${path})`, libc);
    libc.close(fd);
    throw e;
  }
  return fd;
}

/** Accepts one pending connection (non-blocking, close-on-exec); null when none is waiting. */
export function acceptUnix(listenFd: number): number | null {
  const libc = openLibc();
  // NULL address and length: we learn who the peer is from SO_PEERCRED, not from its address
  const fd = sym().accept4(listenFd, 0n, 0n, SOCK_NONBLOCK | SOCK_CLOEXEC);
  if (fd >= 0) return fd;
  const e = fail("accept4", libc);
  if (e.errno === EAGAIN || e.errno === EINTR) return null;
  throw e;
}

/** The peer's pid, uid and gid as the kernel recorded them at connect time (SO_PEERCRED). */
export function peerCredentials(fd: number): PeerCredentials {
  const libc = openLibc();
  // struct ucred { pid_t pid; uid_t uid; gid_t gid; } and its socklen_t length, both our own buffers
  const cred = new Uint8Array(12);
  const len = new Uint8Array(4);
  new DataView(len.buffer).setUint32(0, 12, true);
  if (sym().getsockopt(fd, SOL_SOCKET, SO_PEERCRED, cred, len) !== 0) {
    throw fail("getsockopt(SO_PEERCRED)", libc);
  }
  const v = new DataView(cred.buffer);
  return { pid: v.getInt32(0, true), uid: v.getUint32(4, true), gid: v.getUint32(8, true) };
}

/** Reads what is available into `buf`: a byte count, 0 at end of stream, or null when nothing is ready. */
export function recvSome(fd: number, buf: Uint8Array): number | null {
  const libc = openLibc();
  // Safe: recv writes at most buf.length bytes into our buffer.
  const n = Number(sym().recv(fd, buf, BigInt(buf.length), 0));
  if (n >= 0) return n;
  const e = fail("recv", libc);
  if (e.errno === EAGAIN || e.errno === EINTR) return null;
  throw e;
}

/** Writes what the socket takes now (never raising SIGPIPE); resolves to the count, 0 when it is full. */
export function sendSome(fd: number, bytes: Uint8Array): number {
  const libc = openLibc();
  // Safe: send reads at most bytes.length bytes from our buffer.
  const n = Number(sym().send(fd, bytes as Uint8Array<ArrayBuffer>, BigInt(bytes.length), MSG_NOSIGNAL));
  if (n >= 0) return n;
  const e = fail("send", libc);
  if (e.errno === EAGAIN || e.errno === EINTR) return 0;
  throw e;
}
