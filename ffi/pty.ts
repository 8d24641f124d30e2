/**
 * Pseudo-terminals through libc: a VM's serial console lives on a pty whose master the VM process holds and
 * whose slave (`/dev/pts/N`) `vmctl console` opens. The VM process keeps its own slave fd open, in raw mode,
 * so the master never reads EIO while no console is attached and nothing the guest prints is echoed back.
 *
 * @module
 */
import { lastError } from "./errno.ts";
import { cString } from "./fd.ts";
import { openLibc, resolveLibcPath } from "./libc.ts";

const O_RDWR = 0o2;
const O_NOCTTY = 0o400;
const O_NONBLOCK = 0o4000;
const O_CLOEXEC = 0o2000000;
const TCSANOW = 0;
const EAGAIN = 11;
const EINTR = 4;
const EIO = 5;
/** sizeof(struct termios) on Linux/glibc is 60; a little slack costs nothing. */
const TERMIOS_BYTES = 64;

const SYMBOLS = {
  // int posix_openpt(int flags);
  posix_openpt: { parameters: ["i32"], result: "i32" },
  // int grantpt(int fd);
  grantpt: { parameters: ["i32"], result: "i32" },
  // int unlockpt(int fd);
  unlockpt: { parameters: ["i32"], result: "i32" },
  // int ptsname_r(int fd, char *buf, size_t buflen);
  ptsname_r: { parameters: ["i32", "buffer", "usize"], result: "i32" },
  // int open(const char *pathname, int flags);
  open: { parameters: ["buffer", "i32"], result: "i32" },
  // int tcgetattr(int fd, struct termios *termios_p);
  tcgetattr: { parameters: ["i32", "buffer"], result: "i32" },
  // int tcsetattr(int fd, int optional_actions, const struct termios *termios_p);
  tcsetattr: { parameters: ["i32", "i32", "buffer"], result: "i32" },
  // void cfmakeraw(struct termios *termios_p);
  cfmakeraw: { parameters: ["buffer"], result: "void" },
  // ssize_t read(int fd, void *buf, size_t count);
  read: { parameters: ["i32", "buffer", "usize"], result: "isize" },
  // ssize_t write(int fd, const void *buf, size_t count);
  write: { parameters: ["i32", "buffer", "usize"], result: "isize" },
  // int close(int fd);
  close: { parameters: ["i32"], result: "i32" },
} as const satisfies Deno.ForeignLibraryInterface;

let lib: Deno.DynamicLibrary<typeof SYMBOLS> | undefined;

function sym(): Deno.DynamicLibrary<typeof SYMBOLS>["symbols"] {
  lib ??= Deno.dlopen(resolveLibcPath(), SYMBOLS);
  return lib.symbols;
}

/** An open pty: the master (non-blocking) and a slave fd kept open in raw mode, and the slave's path. */
export interface Pty {
  /** The master fd. */
  readonly master: number;
  /** The slave fd this process keeps open. */
  readonly slave: number;
  /** The slave's path, e.g. `/dev/pts/3`. */
  readonly path: string;
}

/** Opens a new pty (needs read/write on /dev/ptmx and /dev/pts). */
export function openPty(): Pty {
  const libc = openLibc();
  const s = sym();
  const master = s.posix_openpt(O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
  if (master < 0) throw lastError("posix_openpt", libc);
  try {
    if (s.grantpt(master) !== 0) throw lastError("grantpt", libc);
    if (s.unlockpt(master) !== 0) throw lastError("unlockpt", libc);
    // Safe: ptsname_r writes a NUL-terminated name of at most 128 bytes into our buffer.
    const name = new Uint8Array(128);
    if (s.ptsname_r(master, name, BigInt(name.length)) !== 0) throw lastError("ptsname_r", libc);
    const path = new TextDecoder().decode(name.subarray(0, name.indexOf(0)));
    const slave = s.open(cString(path), O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (slave < 0) throw lastError(`open(${path})`, libc);
    makeRaw(slave);
    return { master, slave, path };
  } catch (e) {
    s.close(master);
    throw e;
  }
}

/** Puts the terminal `fd` in raw mode (no echo, no line editing, no signals, 8-bit). */
export function makeRaw(fd: number): void {
  const libc = openLibc();
  // Safe: struct termios is 60 bytes on Linux; tcgetattr/cfmakeraw/tcsetattr use our 64-byte buffer only.
  const t = new Uint8Array(TERMIOS_BYTES);
  if (sym().tcgetattr(fd, t) !== 0) throw lastError("tcgetattr", libc);
  sym().cfmakeraw(t);
  if (sym().tcsetattr(fd, TCSANOW, t) !== 0) throw lastError("tcsetattr", libc);
}

/** Reads what the master has: a byte count, or null when nothing is ready. */
export function readPty(fd: number, buf: Uint8Array): number | null {
  const libc = openLibc();
  // Safe: read writes at most buf.length bytes into our buffer.
  const n = Number(sym().read(fd, buf as Uint8Array<ArrayBuffer>, BigInt(buf.length)));
  if (n >= 0) return n;
  const e = lastError("read(pty)", libc);
  if (e.errno === EAGAIN || e.errno === EINTR || e.errno === EIO) return null;
  throw e;
}

/** Writes what the master takes now; the count (0 when the slave's input queue is full). */
export function writePty(fd: number, bytes: Uint8Array): number {
  const libc = openLibc();
  // Safe: write reads at most bytes.length bytes from our buffer.
  const n = Number(sym().write(fd, bytes as Uint8Array<ArrayBuffer>, BigInt(bytes.length)));
  if (n >= 0) return n;
  const e = lastError("write(pty)", libc);
  if (e.errno === EAGAIN || e.errno === EINTR || e.errno === EIO) return 0;
  throw e;
}

/** Closes both ends this process holds. */
export function closePty(pty: Pty): void {
  sym().close(pty.slave);
  sym().close(pty.master);
}
