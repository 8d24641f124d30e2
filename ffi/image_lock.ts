/**
 * Disk image locks that QEMU understands: open-file-description byte-range locks (`fcntl` `F_OFD_SETLK` /
 * `F_OFD_GETLK`) on the bytes QEMU's `file-posix` driver uses, so vmd and QEMU (and two vmd VMs) refuse to
 * write one image at the same time, or to read an image someone is writing.
 *
 * The layout, as QEMU's `block/file-posix.c` applies and checks it (read in QEMU's source; QEMU ≥ 2.10):
 * permission bit i is CONSISTENT_READ (0), WRITE (1), WRITE_UNCHANGED (2), RESIZE (3) — QEMU ≤ 6.1 also had
 * GRAPH_MOD (4), which vmd neither holds nor refuses. A holder takes a shared (read) lock on byte `100 + i`
 * for each permission it holds, and on byte `200 + i` for each permission it does not let others have. An
 * opener then tests, with an exclusive `F_OFD_GETLK`, byte `200 + i` for each permission it wants (someone
 * refuses it: QEMU's `Failed to get "write" lock`) and byte `100 + i` for each permission it refuses
 * (someone has it: `Failed to get shared "write" lock`). It locks before it tests, as QEMU does, so of two
 * openers racing at least one sees the other.
 *
 * vmd's modes are QEMU's own (as `/proc/locks` shows for `qemu-io` and `qemu-io -r` on QEMU 7.2):
 * `read-write` holds CONSISTENT_READ, WRITE and RESIZE and refuses WRITE and RESIZE to others; `read-only`
 * (also for backing images) holds CONSISTENT_READ and refuses WRITE and RESIZE. So two writers conflict, a
 * reader and a writer conflict, two readers do not.
 *
 * OFD locks belong to the open file description: they conflict between two `open()`s of one file even in
 * one process, survive `fork`/fd passing with the description, and go away when its last fd is closed.
 *
 * @module
 */
import { fstatFd } from "./open_file.ts";
import { lastError } from "./errno.ts";
import { cString, O_CLOEXEC, O_RDWR } from "./fd.ts";
import { openLibc, resolveLibcPath } from "./libc.ts";
import { StructLayout } from "./struct.ts";

/** fcntl(2): test for a conflicting open-file-description lock. */
export const F_OFD_GETLK = 36;
/** fcntl(2): take or release an open-file-description lock without waiting. */
export const F_OFD_SETLK = 37;
/** `l_type`: a shared lock. */
export const F_RDLCK = 0;
/** `l_type`: an exclusive lock. */
export const F_WRLCK = 1;
/** `l_type`: no lock (to release; and what F_OFD_GETLK leaves when nothing conflicts). */
export const F_UNLCK = 2;
const SEEK_SET = 0;
const O_RDONLY = 0;
const EAGAIN = 11;
const EACCES = 13;

/** QEMU's first "holds permission i" byte. */
export const LOCK_PERM_BASE = 100;
/** QEMU's first "does not share permission i" byte. */
export const LOCK_SHARED_BASE = 200;

/** QEMU's block permission bits (bit numbers), as file-posix numbers its lock bytes. */
export const IMAGE_PERM = { CONSISTENT_READ: 0, WRITE: 1, WRITE_UNCHANGED: 2, RESIZE: 3 } as const;

/** A permission, by QEMU's name for it (as its error messages print it). */
export type ImagePermission = "consistent read" | "write" | "write unchanged" | "resize";

const PERM_NAMES: readonly ImagePermission[] = ["consistent read", "write", "write unchanged", "resize"];

/** How vmd opens an image. */
export type ImageLockMode = "read-write" | "read-only";

const MODES: Readonly<Record<ImageLockMode, { held: readonly number[]; refused: readonly number[] }>> = {
  "read-write": {
    held: [IMAGE_PERM.CONSISTENT_READ, IMAGE_PERM.WRITE, IMAGE_PERM.RESIZE],
    refused: [IMAGE_PERM.WRITE, IMAGE_PERM.RESIZE],
  },
  "read-only": { held: [IMAGE_PERM.CONSISTENT_READ], refused: [IMAGE_PERM.WRITE, IMAGE_PERM.RESIZE] },
};

/** Every byte vmd may lock: what {@link unlockImage} releases. */
const ALL_BYTES: readonly number[] = [0, 1, 2, 3].flatMap((i) => [LOCK_PERM_BASE + i, LOCK_SHARED_BASE + i]);

/**
 * Why an image cannot be locked: another open file description `refuses` a permission this mode needs (it
 * holds byte 200 + i), or `holds` a permission this mode refuses (byte 100 + i).
 */
export interface ImageLockConflict {
  /** `refuses`: someone does not share `permission`; `holds`: someone has it, and this mode does not share it. */
  readonly kind: "refuses" | "holds";
  /** The permission in question. */
  readonly permission: ImagePermission;
  /** The lock byte that showed it. */
  readonly byte: number;
  /** The holder's pid when it holds a process-associated lock; undefined for OFD locks (QEMU's, vmd's). */
  readonly pid: number | undefined;
}

/** The image is in use in a way that conflicts with the requested mode. */
export class ImageLockError extends Error {
  /** The mode asked for. */
  readonly mode: ImageLockMode;
  /** What conflicts. */
  readonly conflict: ImageLockConflict;

  /** `what` names the image (its path) for the message. */
  constructor(what: string, mode: ImageLockMode, conflict: ImageLockConflict) {
    const who = conflict.pid === undefined ? "another program (or VM)" : `process ${conflict.pid}`;
    const why = conflict.kind === "holds"
      ? `${who} has it open with "${conflict.permission}" permission`
      : `${who} has it open and does not share "${conflict.permission}" permission`;
    super(
      `cannot lock image ${what} ${mode}: ${why} (lock byte ${conflict.byte}); stop whatever uses it ` +
        "(another VM, QEMU, qemu-img/qemu-nbd) or give this VM its own copy or overlay",
    );
    this.name = "ImageLockError";
    this.mode = mode;
    this.conflict = conflict;
  }
}

/** struct flock (x86_64): l_type and l_whence are shorts; off_t is 64-bit; l_pid must be 0 for OFD locks. */
export const FLOCK = new StructLayout("flock", 32, [
  ["l_type", "u16"],
  ["l_whence", "u16"],
  ["l_start", "u64"],
  ["l_len", "u64"],
  ["l_pid", "i32"],
]);

const SYMBOLS = {
  // int fcntl(int fd, int cmd, struct flock *lock);
  fcntl_flock: { name: "fcntl", parameters: ["i32", "i32", "buffer"], result: "i32" },
} as const satisfies Deno.ForeignLibraryInterface;

let lib: Deno.DynamicLibrary<typeof SYMBOLS> | undefined;

function sym(): Deno.DynamicLibrary<typeof SYMBOLS>["symbols"] {
  lib ??= Deno.dlopen(resolveLibcPath(), SYMBOLS);
  return lib.symbols;
}

const flock = FLOCK.alloc();
const flockView = new DataView(flock.buffer);
const TYPE_AT = FLOCK.offsetOf("l_type");
const PID_AT = FLOCK.offsetOf("l_pid");

/** Runs fcntl(`cmd`) with a one-byte struct flock of `type` at `byte`; returns fcntl's result. */
function fcntlByte(fd: number, cmd: number, type: number, byte: number): number {
  FLOCK.encode({ l_type: type, l_whence: SEEK_SET, l_start: BigInt(byte), l_len: 1n, l_pid: 0 }, flockView);
  // Safe: flock is our own 32-byte struct flock; the kernel reads it and (F_OFD_GETLK) writes it back.
  return sym().fcntl_flock(fd, cmd, flock);
}

function setByte(fd: number, type: number, byte: number): void {
  if (fcntlByte(fd, F_OFD_SETLK, type, byte) < 0) {
    throw lastError(`fcntl(${fd}, F_OFD_SETLK, byte ${byte})`, openLibc());
  }
}

/** Whether another open file description holds a lock on `byte` (its pid, or -1 for an OFD lock), or undefined. */
function heldElsewhere(fd: number, byte: number): number | undefined {
  if (fcntlByte(fd, F_OFD_GETLK, F_WRLCK, byte) < 0) {
    throw lastError(`fcntl(${fd}, F_OFD_GETLK, byte ${byte})`, openLibc());
  }
  if (flockView.getUint16(TYPE_AT, true) === F_UNLCK) return undefined;
  return flockView.getInt32(PID_AT, true);
}

/**
 * The first conflict between `mode` and the locks other open file descriptions hold on `fd`'s file, or
 * undefined when `mode` could be had. Takes no lock (a check alone can race; {@link lockImage} cannot).
 */
export function findImageLockConflict(fd: number, mode: ImageLockMode): ImageLockConflict | undefined {
  const m = MODES[mode];
  const conflict = (kind: ImageLockConflict["kind"], perm: number, byte: number, pid: number) => ({
    kind,
    permission: PERM_NAMES[perm],
    byte,
    pid: pid > 0 ? pid : undefined,
  });
  for (const perm of m.held) {
    const pid = heldElsewhere(fd, LOCK_SHARED_BASE + perm);
    if (pid !== undefined) return conflict("refuses", perm, LOCK_SHARED_BASE + perm, pid);
  }
  for (const perm of m.refused) {
    const pid = heldElsewhere(fd, LOCK_PERM_BASE + perm);
    if (pid !== undefined) return conflict("holds", perm, LOCK_PERM_BASE + perm, pid);
  }
  return undefined;
}

/**
 * Locks the image open on `fd` for `mode` (the fd must be open for reading), replacing any image lock this
 * open file description held. Throws {@link ImageLockError} when another open file description's locks
 * conflict; the fd then holds no image lock. `what` names the image in messages (its path).
 */
export function lockImage(fd: number, mode: ImageLockMode, what = `on fd ${fd}`): void {
  const m = MODES[mode];
  const wanted = [...m.held.map((p) => LOCK_PERM_BASE + p), ...m.refused.map((p) => LOCK_SHARED_BASE + p)];
  let conflict: ImageLockConflict | undefined;
  try {
    for (const byte of wanted) {
      if (fcntlByte(fd, F_OFD_SETLK, F_RDLCK, byte) >= 0) continue;
      const e = lastError(`fcntl(${fd}, F_OFD_SETLK, byte ${byte})`, openLibc());
      if (e.errno !== EAGAIN && e.errno !== EACCES) throw e;
      // someone holds an exclusive lock on the byte: not QEMU's way, but it excludes us all the same
      const kind = byte >= LOCK_SHARED_BASE ? "refuses" : "holds";
      conflict = { kind, permission: PERM_NAMES[byte % 100], byte, pid: undefined };
      break;
    }
    conflict ??= findImageLockConflict(fd, mode);
  } catch (e) {
    unlockImage(fd);
    throw e;
  }
  if (conflict !== undefined) {
    unlockImage(fd);
    throw new ImageLockError(what, mode, conflict);
  }
  for (const byte of ALL_BYTES) if (!wanted.includes(byte)) setByte(fd, F_UNLCK, byte);
}

/** Releases every image lock byte this open file description holds on `fd` (closing its last fd does too). */
export function unlockImage(fd: number): void {
  for (const byte of ALL_BYTES) setByte(fd, F_UNLCK, byte);
}

/**
 * Opens `path` (close-on-exec) for `mode` and returns the raw fd to lock; close it with `closeFd` (fd.ts),
 * which releases its locks. Deno's own files do not expose their fds, hence this.
 */
export function openImageFd(path: string, mode: ImageLockMode): number {
  const libc = openLibc();
  const fd = libc.open(cString(path), (mode === "read-write" ? O_RDWR : O_RDONLY) | O_CLOEXEC, 0);
  if (fd < 0) throw lastError(`open(${path})`, libc);
  return fd;
}

/** What identifies a file whatever its path: device and inode. */
export interface FileIdentity {
  /** st_dev. */
  readonly dev: bigint;
  /** st_ino. */
  readonly ino: bigint;
  /** `dev:ino`, for use as a map key (e.g. image → the VM that holds it). */
  readonly key: string;
}

/** The device and inode of the file open on `fd` (fstat(2)). */
export function fileIdentity(fd: number): FileIdentity {
  const st = fstatFd(fd);
  return { dev: st.dev, ino: st.ino, key: `${st.dev}:${st.ino}` };
}
