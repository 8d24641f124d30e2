/**
 * Passing open descriptors between processes: a Unix `SOCK_SEQPACKET` socket pair (each message arrives
 * whole, so a message is one frame) and `SCM_RIGHTS` ancillary data. The daemon keeps one end and a VM
 * process inherits the other; the daemon sends a VM's descriptors (console, taps, files) in one message
 * whose payload lists the numbers they have in the daemon, so the receiver can map the spec's numbers to
 * its own. Received descriptors are close-on-exec (`MSG_CMSG_CLOEXEC`).
 *
 * @module
 */
import { lastError } from "./errno.ts";
import { type Libc, openLibc } from "./libc.ts";

const AF_UNIX = 1;
const SOCK_SEQPACKET = 5;
const SOCK_CLOEXEC = 0o2000000;
const SOL_SOCKET = 1;
const SCM_RIGHTS = 1;
const MSG_DONTWAIT = 0x40;
const MSG_NOSIGNAL = 0x4000;
const MSG_TRUNC = 0x20;
const MSG_CTRUNC = 0x8;
const MSG_CMSG_CLOEXEC = 0x40000000;
/** The kernel's limit on descriptors in one SCM_RIGHTS message (SCM_MAX_FD). */
export const MAX_PASSED_FDS = 253;
/** sizeof(struct msghdr), sizeof(struct iovec), sizeof(struct cmsghdr) on x86_64. */
const MSGHDR = 56;
const IOVEC = 16;
const CMSGHDR = 16;

/** A descriptor message that could not be sent or received whole. */
export class FdPassingError extends Error {
  /** Builds the error. */
  constructor(message: string) {
    super(message);
    this.name = "FdPassingError";
  }
}

/** A new `SOCK_SEQPACKET` Unix socket pair, both ends close-on-exec. */
export function seqpacketPair(libc: Libc = openLibc()): [number, number] {
  // int sv[2] in our own 8-byte buffer
  const sv = new Int32Array(2);
  if (libc.socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, new Uint8Array(sv.buffer)) !== 0) {
    throw lastError("socketpair(AF_UNIX, SOCK_SEQPACKET)", libc);
  }
  return [sv[0], sv[1]];
}

/** The address of a JS buffer, for a pointer field of a struct the kernel reads (ffi/ only). */
function addressOf(buf: Uint8Array<ArrayBuffer>): bigint {
  // Safe: the buffer is referenced by the caller for the whole libc call the struct is passed to.
  return BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(buf)));
}

/**
 * Sends `fds` over the socket `sock` in one message whose payload is `payload` (at least 1 byte; a
 * SEQPACKET message carries it whole). The descriptors stay open here: the receiver gets its own copies.
 */
export function sendFds(
  sock: number,
  payload: Uint8Array,
  fds: readonly number[],
  libc: Libc = openLibc(),
): void {
  if (fds.length > MAX_PASSED_FDS) {
    throw new FdPassingError(`${fds.length} descriptors exceed ${MAX_PASSED_FDS}`);
  }
  if (payload.length === 0) {
    throw new FdPassingError("a descriptor message needs a payload of at least 1 byte");
  }
  const data = Uint8Array.from(payload);
  const iov = new Uint8Array(IOVEC);
  const iv = new DataView(iov.buffer);
  iv.setBigUint64(0, addressOf(data), true);
  iv.setBigUint64(8, BigInt(data.length), true);
  const space = fds.length === 0 ? 0 : CMSGHDR + Math.ceil((fds.length * 4) / 8) * 8;
  const control = new Uint8Array(Math.max(space, 8));
  const cv = new DataView(control.buffer);
  if (fds.length > 0) {
    cv.setBigUint64(0, BigInt(CMSGHDR + fds.length * 4), true); // cmsg_len = CMSG_LEN(n * sizeof(int))
    cv.setInt32(8, SOL_SOCKET, true);
    cv.setInt32(12, SCM_RIGHTS, true);
    fds.forEach((fd, i) => cv.setInt32(CMSGHDR + i * 4, fd, true));
  }
  const msg = new Uint8Array(MSGHDR);
  const mv = new DataView(msg.buffer);
  mv.setBigUint64(16, addressOf(iov), true); // msg_iov
  mv.setBigUint64(24, 1n, true); // msg_iovlen
  if (fds.length > 0) {
    mv.setBigUint64(32, addressOf(control), true); // msg_control
    mv.setBigUint64(40, BigInt(space), true); // msg_controllen
  }
  // Safe: msghdr, iovec, payload and control are our own buffers, alive for the call.
  const n = Number(libc.sendmsg(sock, msg, MSG_NOSIGNAL | MSG_DONTWAIT));
  if (n < 0) throw lastError("sendmsg(SCM_RIGHTS)", libc);
  if (n !== data.length) throw new FdPassingError(`sendmsg sent ${n} of ${data.length} bytes`);
}

/** One received message: its payload and the descriptors that came with it (now open in this process). */
export interface ReceivedFds {
  /** The payload bytes. */
  readonly payload: Uint8Array;
  /** The received descriptors, in the order they were sent (close-on-exec). */
  readonly fds: number[];
}

/**
 * Receives one message from `sock` without waiting (it must already be queued): at most `maxPayload` bytes
 * and `maxFds` descriptors. A message cut short (payload or descriptors) is refused, and the descriptors
 * that did arrive are closed.
 */
export function receiveFds(
  sock: number,
  maxPayload: number,
  maxFds: number,
  libc: Libc = openLibc(),
): ReceivedFds {
  const data = new Uint8Array(maxPayload);
  const iov = new Uint8Array(IOVEC);
  const iv = new DataView(iov.buffer);
  iv.setBigUint64(0, addressOf(data), true);
  iv.setBigUint64(8, BigInt(data.length), true);
  const space = CMSGHDR + Math.ceil((Math.min(maxFds, MAX_PASSED_FDS) * 4) / 8) * 8;
  const control = new Uint8Array(space);
  const msg = new Uint8Array(MSGHDR);
  const mv = new DataView(msg.buffer);
  mv.setBigUint64(16, addressOf(iov), true);
  mv.setBigUint64(24, 1n, true);
  mv.setBigUint64(32, addressOf(control), true);
  mv.setBigUint64(40, BigInt(space), true);
  // Safe: the kernel writes at most data.length payload bytes and msg_controllen control bytes into our
  // buffers, and updates msg_controllen and msg_flags in our msghdr.
  const n = Number(libc.recvmsg(sock, msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC));
  if (n < 0) throw lastError("recvmsg(SCM_RIGHTS)", libc);
  const fds: number[] = [];
  const controlLen = Number(mv.getBigUint64(40, true));
  const cv = new DataView(control.buffer);
  for (let at = 0; at + CMSGHDR <= controlLen;) {
    const len = Number(cv.getBigUint64(at, true));
    if (len < CMSGHDR) break;
    if (cv.getInt32(at + 8, true) === SOL_SOCKET && cv.getInt32(at + 12, true) === SCM_RIGHTS) {
      for (let i = 0; i < (len - CMSGHDR) / 4; i++) fds.push(cv.getInt32(at + CMSGHDR + i * 4, true));
    }
    at += Math.ceil(len / 8) * 8;
  }
  const flags = mv.getInt32(48, true);
  if ((flags & (MSG_TRUNC | MSG_CTRUNC)) !== 0 || n === 0) {
    for (const fd of fds) libc.close(fd);
    throw new FdPassingError(
      n === 0
        ? "the descriptor channel closed before a message arrived"
        : "a descriptor message was cut short (too many descriptors or too long); refused",
    );
  }
  return { payload: data.slice(0, n), fds };
}
