/**
 * Tap devices: opening `/dev/net/tun` and attaching the fd to a named tap with TUNSETIFF (IFF_TAP |
 * IFF_NO_PI, no packet-info header), and the frame I/O a virtio-net worker does on that fd (read, write, and
 * poll awaited on one of Deno's blocking threads).
 *
 * Deno cannot adopt a raw fd as a file, so the worker reaches its tap through libc: its ffi grant is scoped
 * to libc's path (see the `virtio-net` row of the permission table).
 *
 * @module
 */
import { lastError } from "./errno.ts";
import { cString, O_CLOEXEC, O_RDWR } from "./fd.ts";
import { type Libc, openLibc } from "./libc.ts";

/** The tun/tap clone device. */
export const TUN_DEVICE = "/dev/net/tun";
/** open(2) flag: non-blocking reads (the worker polls before reading). */
export const O_NONBLOCK = 0o4000;
/** TUNSETIFF = _IOW('T', 202, int). */
export const TUNSETIFF = 0x400454can;
/** SIOCGIFHWADDR (the tun fd answers it for its own interface). */
export const SIOCGIFHWADDR = 0x8927n;
/** ifreq flag: an Ethernet (tap) device. */
export const IFF_TAP = 0x0002;
/** ifreq flag: no packet-information header before each frame. */
export const IFF_NO_PI = 0x1000;
/** Linux's IFNAMSIZ (including the NUL). */
export const IFNAMSIZ = 16;
/** sizeof(struct ifreq) on x86_64. */
const IFREQ_SIZE = 40;

/** An interface name that may not be handed to the kernel or to `ip`. */
export class InterfaceNameError extends Error {
  /** Builds the error. */
  constructor(message: string) {
    super(message);
    this.name = "InterfaceNameError";
  }
}

/**
 * Checks an interface name before any privileged call: 1-15 bytes of letters, digits, `-`, `_` and `.`,
 * not `.`/`..`, not starting with `-` (so it never reads as an option to `ip`).
 */
export function validateInterfaceName(name: string): string {
  if (!/^[A-Za-z0-9_.-]{1,15}$/.test(name) || name === "." || name === ".." || name.startsWith("-")) {
    throw new InterfaceNameError(
      `bad interface name ${JSON.stringify(name)}: 1-${
        IFNAMSIZ - 1
      } of A-Z a-z 0-9 _ . - (not starting with -)`,
    );
  }
  return name;
}

/** An open tap: its fd and the MAC of its host side. */
export interface OpenTap {
  /** The fd (non-blocking, close-on-exec). */
  readonly fd: number;
  /** The host side's MAC. */
  readonly hostMac: Uint8Array;
}

/**
 * Opens `/dev/net/tun` non-blocking and attaches it to tap `name` (created if missing, persisting only while
 * the fd is open). The caller closes the fd, which removes the tap.
 */
export function openTap(name: string, libc: Libc = openLibc()): OpenTap {
  validateInterfaceName(name);
  const fd = libc.open(cString(TUN_DEVICE), O_RDWR | O_CLOEXEC | O_NONBLOCK, 0);
  if (fd < 0) throw lastError(`open(${TUN_DEVICE})`, libc);
  const ifr = new Uint8Array(IFREQ_SIZE);
  ifr.set(new TextEncoder().encode(name));
  new DataView(ifr.buffer).setUint16(IFNAMSIZ, IFF_TAP | IFF_NO_PI, true);
  // ifr is our own 40-byte struct ifreq; the kernel reads the name and flags and writes back the name.
  if (libc.ioctl_ptr(fd, TUNSETIFF, ifr) < 0) {
    const e = lastError(`TUNSETIFF(${name})`, libc);
    libc.close(fd);
    throw e;
  }
  // Same 40-byte buffer; the kernel writes struct sockaddr (family, then the MAC) at offset 16.
  if (libc.ioctl_ptr(fd, SIOCGIFHWADDR, ifr) < 0) {
    const e = lastError(`SIOCGIFHWADDR(${name})`, libc);
    libc.close(fd);
    throw e;
  }
  return { fd, hostMac: ifr.slice(18, 24) };
}

const SYMBOLS = {
  // ssize_t read(int fd, void *buf, size_t count);
  read: { parameters: ["i32", "buffer", "usize"], result: "isize" },
  // ssize_t write(int fd, const void *buf, size_t count);
  write: { parameters: ["i32", "buffer", "usize"], result: "isize" },
  // int poll(struct pollfd *fds, nfds_t nfds, int timeout);   (run on a blocking thread)
  poll_async: { name: "poll", parameters: ["buffer", "u64", "i32"], result: "i32", nonblocking: true },
} as const satisfies Deno.ForeignLibraryInterface;

/** Frame I/O on one tap fd, for the virtio-net worker (opens libc itself from the path it was given). */
export class TapIo {
  readonly #fd: number;
  readonly #lib: Deno.DynamicLibrary<typeof SYMBOLS>;
  readonly #pollfd = new Uint8Array(8);

  /** Opens libc at `libcPath` (the worker's only ffi grant) for I/O on `fd`. */
  constructor(fd: number, libcPath: string) {
    this.#fd = fd;
    this.#lib = Deno.dlopen(libcPath, SYMBOLS);
    const v = new DataView(this.#pollfd.buffer);
    v.setInt32(0, fd, true);
    v.setInt16(4, 0x001, true); // POLLIN
  }

  /** Reads one frame into `buf`; returns its length, or -1 when none is waiting (or on error). */
  read(buf: Uint8Array<ArrayBuffer>): number {
    // buf is the caller's own buffer of buf.length bytes; read(2) writes at most that many.
    return Number(this.#lib.symbols.read(this.#fd, buf, BigInt(buf.length)));
  }

  /** Writes one frame; returns the bytes written or -1. */
  write(frame: Uint8Array): number {
    // frame is the caller's buffer (possibly a view of guest RAM); write(2) reads exactly frame.length bytes.
    return Number(this.#lib.symbols.write(this.#fd, frame, BigInt(frame.length)));
  }

  /** Waits (off this thread) until a frame is waiting or `timeoutMs` passes; true when readable. */
  async readable(timeoutMs: number): Promise<boolean> {
    // #pollfd is a private 8-byte struct pollfd, not touched again until the call returns.
    const n = await this.#lib.symbols.poll_async(this.#pollfd, 1n, timeoutMs);
    return n > 0 && (this.#pollfd[6] & 0x001) !== 0;
  }

  /** Closes this handle on libc (the fd belongs to the main thread). */
  close(): void {
    this.#lib.close();
  }
}
