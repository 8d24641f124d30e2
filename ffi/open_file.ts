/**
 * Opening a file a user named, the way a root daemon must (never a confused deputy): once, with that user's
 * rights, without following a final symbolic link, without blocking on a FIFO or a device, and checked by
 * `fstat` on the open descriptor (never by a second look at the path). The descriptor is what travels on.
 *
 * A user's rights are taken for the open alone, on the calling thread only: the raw `setgroups`,
 * `setfsgid` and `setfsuid` system calls change one thread's filesystem identity (glibc's `setgroups`
 * wrapper would change every thread's), and the daemon's own identity is put back before this returns.
 * JavaScript runs on one thread, so nothing else runs on it in between.
 *
 * @module
 */
import { describeErrno, EINTR, errno, ErrnoError, lastError } from "./errno.ts";
import { closeFd, cString } from "./fd.ts";
import { StructLayout } from "./struct.ts";
import { openedLibcPath, resolveLibcPath } from "./libc.ts";

const O_RDONLY = 0;
const O_RDWR = 0o2;
const O_NOCTTY = 0o400;
const O_NONBLOCK = 0o4000;
const O_NOFOLLOW = 0o400000;
const O_CLOEXEC = 0o2000000;
const F_GETFL = 3;
const EPERM = 1;
const ENOENT = 2;
const EACCES = 13;
const ELOOP = 40;
const F_SETFL = 4;

/** x86-64 system call numbers (the kernel's names). */
const SYS_getgroups = 115;
const SYS_setgroups = 116;
const SYS_setfsuid = 122;
const SYS_setfsgid = 123;

/** ioctl(2) request: a block device's size in bytes (`_IOR(0x12, 114, size_t)`). */
const BLKGETSIZE64 = 0x80081272n;

const S_IFMT = 0o170000;
const S_IFREG = 0o100000;
const S_IFDIR = 0o040000;
const S_IFBLK = 0o060000;
const S_IFCHR = 0o020000;
const S_IFIFO = 0o010000;
const S_IFSOCK = 0o140000;

/** struct stat (x86_64), laid out by C rules and checked against its size. */
export const STAT = new StructLayout("stat", 144, [
  ["st_dev", "u64"],
  ["st_ino", "u64"],
  ["st_nlink", "u64"],
  ["st_mode", "u32"],
  ["st_uid", "u32"],
  ["st_gid", "u32"],
  ["__pad0", "i32"],
  ["st_rdev", "u64"],
  ["st_size", "u64"],
  ["st_blksize", "u64"],
  ["st_blocks", "u64"],
  ["st_times", { of: "u64", length: 6 }],
  ["__glibc_reserved", { of: "u64", length: 3 }],
]);

interface StatFields {
  st_dev: bigint;
  st_ino: bigint;
  st_mode: number;
  st_uid: number;
  st_gid: number;
  st_size: bigint;
}

const SYMBOLS = {
  // int open(const char *pathname, int flags, mode_t mode);
  open: { parameters: ["buffer", "i32", "u32"], result: "i32" },
  // int fstat(int fd, struct stat *statbuf);
  fstat: { parameters: ["i32", "buffer"], result: "i32" },
  // int fcntl(int fd, int cmd, int arg);
  fcntl: { parameters: ["i32", "i32", "i32"], result: "i32" },
  // int ioctl(int fd, unsigned long request, void *argp);  (BLKGETSIZE64)
  ioctl: { parameters: ["i32", "u64", "buffer"], result: "i32" },
  // ssize_t pread(int fd, void *buf, size_t count, off_t offset);
  pread: { parameters: ["i32", "buffer", "usize", "i64"], result: "isize" },
  // ssize_t pwrite(int fd, const void *buf, size_t count, off_t offset);
  pwrite: { parameters: ["i32", "buffer", "usize", "i64"], result: "isize" },
  // int fdatasync(int fd);
  fdatasync: { parameters: ["i32"], result: "i32" },
  // int ftruncate(int fd, off_t length);
  ftruncate: { parameters: ["i32", "i64"], result: "i32" },
  // long syscall(long number, long a1, long a2);  (setfsuid, setfsgid, setgroups, getgroups)
  syscall2: { name: "syscall", parameters: ["i64", "i64", "buffer"], result: "i64" },
  // long syscall(long number, long a1);
  syscall1: { name: "syscall", parameters: ["i64", "i64"], result: "i64" },
} as const satisfies Deno.ForeignLibraryInterface;

let lib: Deno.DynamicLibrary<typeof SYMBOLS> | undefined;

function sym(): Deno.DynamicLibrary<typeof SYMBOLS>["symbols"] {
  lib ??= Deno.dlopen(openedLibcPath() ?? resolveLibcPath(), SYMBOLS);
  return lib.symbols;
}

/** What kind of file a descriptor is. */
export type FileKind = "file" | "directory" | "block" | "char" | "fifo" | "socket" | "symlink" | "other";

/** What `fstat` says of an open descriptor. */
export interface FileStat {
  /** Its kind. */
  readonly kind: FileKind;
  /** Device and inode: the file's identity, whatever it is called. */
  readonly dev: bigint;
  /** See {@link FileStat.dev}. */
  readonly ino: bigint;
  /** Its owner. */
  readonly uid: number;
  /** Its group. */
  readonly gid: number;
  /** Its permission bits. */
  readonly mode: number;
  /** Its length in bytes (regular files). */
  readonly size: number;
}

/** The identity a file is opened with: a user, its primary group and its supplementary groups. */
export interface FileCredentials {
  /** The user id. */
  readonly uid: number;
  /** The primary group id. */
  readonly gid: number;
  /** Supplementary group ids. */
  readonly groups: readonly number[];
}

/** A file that may not be used, and why, in words for the user who named it. */
export class OpenFileError extends Error {
  /** The path as named. */
  readonly path: string;
  /** The errno, when the open itself failed. */
  readonly errno: number | undefined;

  /** Builds the error; `message` says what is wrong and what to do. */
  constructor(path: string, message: string, code?: number) {
    super(`${path}: ${message}`);
    this.name = "OpenFileError";
    this.path = path;
    this.errno = code;
  }
}

function kindOf(mode: number): FileKind {
  switch (mode & S_IFMT) {
    case S_IFREG:
      return "file";
    case S_IFDIR:
      return "directory";
    case S_IFBLK:
      return "block";
    case S_IFCHR:
      return "char";
    case S_IFIFO:
      return "fifo";
    case S_IFSOCK:
      return "socket";
    default:
      return "other";
  }
}

/** fstat(2) of an open descriptor. */
export function fstatFd(fd: number): FileStat {
  const buf = STAT.alloc();
  // Safe: buf is our own struct stat, which fstat fills.
  if (sym().fstat(fd, buf) !== 0) throw lastError(`fstat(${fd})`);
  const st = STAT.fromBytes<StatFields>(buf);
  return {
    kind: kindOf(st.st_mode),
    dev: st.st_dev,
    ino: st.st_ino,
    uid: st.st_uid,
    gid: st.st_gid,
    mode: st.st_mode & 0o7777,
    size: Number(st.st_size),
  };
}

/** The size in bytes of an open regular file or block device. */
export function fileSize(fd: number): number {
  const st = fstatFd(fd);
  if (st.kind !== "block") return st.size;
  const out = new BigUint64Array(1);
  // Safe: BLKGETSIZE64 writes one u64 into our 8-byte buffer.
  if (sym().ioctl(fd, BLKGETSIZE64, new Uint8Array(out.buffer)) !== 0) {
    throw lastError(`ioctl(${fd}, BLKGETSIZE64)`);
  }
  return Number(out[0]);
}

/** Runs `fn` on this thread with the filesystem identity `cred`; the previous one is restored after. */
export function withFileCredentials<T>(cred: FileCredentials | undefined, fn: () => T): T {
  if (cred === undefined) return fn();
  const s = sym();
  const saved = new Uint32Array(256);
  const nsaved = Number(
    s.syscall2(BigInt(SYS_getgroups), BigInt(saved.length), new Uint8Array(saved.buffer)),
  );
  if (nsaved < 0) throw lastError("getgroups");
  const groups = Uint32Array.from(cred.groups.slice(0, 256));
  // raw syscalls: this thread only (glibc's setgroups would change every thread of the process)
  if (s.syscall2(BigInt(SYS_setgroups), BigInt(groups.length), new Uint8Array(groups.buffer)) !== 0n) {
    throw lastError("setgroups");
  }
  s.syscall1(BigInt(SYS_setfsgid), BigInt(cred.gid));
  s.syscall1(BigInt(SYS_setfsuid), BigInt(cred.uid));
  try {
    // setfsuid reports no error: read the identity back before trusting it
    const nowUid = Number(s.syscall1(BigInt(SYS_setfsuid), -1n));
    const nowGid = Number(s.syscall1(BigInt(SYS_setfsgid), -1n));
    if (nowUid !== cred.uid || nowGid !== cred.gid) {
      throw new Error(`could not take the identity of uid ${cred.uid} (fsuid is ${nowUid})`);
    }
    return fn();
  } finally {
    s.syscall1(BigInt(SYS_setfsuid), 0n);
    s.syscall1(BigInt(SYS_setfsgid), 0n);
    s.syscall2(BigInt(SYS_setgroups), BigInt(nsaved), new Uint8Array(saved.buffer));
  }
}

/** Options of {@link openFileOnce}. */
export interface OpenFileOptions {
  /** Open for reading and writing (default: reading only). */
  readonly write?: boolean;
  /** Open with this identity's rights (default: the process's own). */
  readonly as?: FileCredentials;
  /** Accept a block device too (only for files root named: a user's device nodes are refused). */
  readonly allowBlockDevice?: boolean;
  /** What the file is, for messages (`disk image`, `kernel`). */
  readonly what?: string;
}

/** An open regular file and what `fstat` said of it. */
export interface OpenedFile extends FileStat {
  /** The descriptor (close-on-exec; the caller owns it). */
  readonly fd: number;
  /** The path as named (for messages only: nothing opens it again). */
  readonly path: string;
}

/**
 * Opens `path` once: as `opts.as` when given, `O_NOFOLLOW` (a final symbolic link is refused),
 * `O_NONBLOCK` (a FIFO or device cannot stall the caller), close-on-exec; then `fstat` on the descriptor,
 * and anything but a regular file is closed again and refused. Throws {@link OpenFileError}.
 */
export function openFileOnce(path: string, opts: OpenFileOptions = {}): OpenedFile {
  const what = opts.what ?? "file";
  const s = sym();
  const flags = (opts.write ? O_RDWR : O_RDONLY) | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY;
  let code = 0;
  const fd = withFileCredentials(opts.as, () => {
    const r = s.open(cString(path), flags, 0);
    if (r < 0) code = errno();
    return r;
  });
  if (fd < 0) throw openError(path, what, code, opts);
  try {
    const st = fstatFd(fd);
    if (st.kind === "block" && opts.allowBlockDevice) return { fd, path, ...st, size: fileSize(fd) };
    if (st.kind !== "file") {
      throw new OpenFileError(
        path,
        `the ${what} is a ${st.kind === "fifo" ? "FIFO" : st.kind}, not a regular file; name an image file`,
      );
    }
    // regular files ignore O_NONBLOCK, but drop it so the descriptor is an ordinary one
    const fl = s.fcntl(fd, F_GETFL, 0);
    if (fl < 0 || s.fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) < 0) throw lastError(`fcntl(${path})`);
    return { fd, path, ...st };
  } catch (e) {
    closeFd(fd);
    throw e;
  }
}

function openError(path: string, what: string, code: number, opts: OpenFileOptions): OpenFileError {
  const who = opts.as === undefined ? "" : ` (opened as uid ${opts.as.uid})`;
  if (code === ELOOP) {
    return new OpenFileError(path, `the ${what} is a symbolic link; name the file itself${who}`, code);
  }
  if (code === ENOENT) return new OpenFileError(path, `no such ${what}: check the path${who}`, code);
  if (code === EACCES || code === EPERM) {
    return new OpenFileError(
      path,
      `permission denied${who}: the ${what} must be ${opts.write ? "readable and writable" : "readable"} ` +
        "by the VM's owner",
      code,
    );
  }
  return new OpenFileError(
    path,
    `cannot open the ${what}${who}: ${new ErrnoError("open", code, describeErrno(code)).message}`,
    code,
  );
}

/** Fills `buf` from offset `pos` of the open file `fd` (short only at the end of the file); returns the count. */
export function preadFd(fd: number, buf: Uint8Array, pos: number): number {
  let done = 0;
  while (done < buf.length) {
    // Safe: pread writes at most buf.length - done bytes into our own buffer at that offset.
    const n = Number(sym().pread(fd, buf.subarray(done), BigInt(buf.length - done), BigInt(pos + done)));
    if (n < 0) {
      if (errno() === EINTR) continue;
      throw lastError(`pread(${fd})`);
    }
    if (n === 0) break;
    done += n;
  }
  return done;
}

/** Writes all of `data` at offset `pos` of the open file `fd`. */
export function pwriteFd(fd: number, data: Uint8Array, pos: number): void {
  let done = 0;
  while (done < data.length) {
    // Safe: pwrite reads at most data.length - done bytes from our own buffer.
    const n = Number(sym().pwrite(fd, data.subarray(done), BigInt(data.length - done), BigInt(pos + done)));
    if (n < 0) {
      if (errno() === EINTR) continue;
      throw lastError(`pwrite(${fd})`);
    }
    done += n;
  }
}

/** fdatasync(2): written data (and what is needed to read it back) reaches stable storage. */
export function fdatasyncFd(fd: number): void {
  if (sym().fdatasync(fd) !== 0) throw lastError(`fdatasync(${fd})`);
}

/** ftruncate(2). */
export function ftruncateFd(fd: number, length: number): void {
  if (sym().ftruncate(fd, BigInt(length)) !== 0) throw lastError(`ftruncate(${fd})`);
}
