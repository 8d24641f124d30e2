/**
 * Leaving root: supplementary groups, gid and uid (real, effective and saved) through glibc's wrappers, which
 * apply each change to every thread of the process (the kernel's calls change only the calling thread;
 * glibc signals the others to do the same). A uid change from 0 to non-zero with all three ids clears the
 * permitted and effective capability sets; {@link effectiveCapabilities} reads them back.
 *
 * @module
 */
import { lastError } from "./errno.ts";
import { type Libc, openLibc } from "./libc.ts";
import { copyFromScratch, copyToScratch, withScratchPage } from "./scratch_page.ts";
import { StructLayout } from "./struct.ts";
import { SYSCALLS_X86_64 } from "./syscalls_x86_64.ts";

/** `_LINUX_CAPABILITY_VERSION_3`: capget with two 32-bit words per set. */
export const LINUX_CAPABILITY_VERSION_3 = 0x20080522;

/** `struct __user_cap_header_struct`. */
export const cap_user_header = new StructLayout("__user_cap_header_struct", 8, [
  ["version", "u32"],
  ["pid", "i32"],
]);

/** `struct __user_cap_data_struct` (version 3 passes two of them). */
export const cap_user_data = new StructLayout("__user_cap_data_struct", 12, [
  ["effective", "u32"],
  ["permitted", "u32"],
  ["inheritable", "u32"],
]);

/** The process could not take (or keep) the identity; the message says what to check. */
export class IdentityError extends Error {
  /** Builds the error. */
  constructor(message: string) {
    super(message);
    this.name = "IdentityError";
  }
}

/**
 * Drops every supplementary group, then sets real, effective and saved gid to `gid` and uid to `uid`, on
 * every thread. Then checks the change holds and cannot be undone (`setresuid(0, 0, 0)` must fail).
 */
export function dropIdentity(uid: number, gid: number, libc: Libc = openLibc()): void {
  if (uid === 0 || gid === 0) throw new IdentityError("refusing to 'drop' to uid or gid 0");
  if (libc.setgroups(0n, 0n) !== 0) {
    throw new IdentityError(`${lastError("setgroups(0, NULL)", libc).message}: vmd must start VMs as root`);
  }
  if (libc.setresgid(gid, gid, gid) !== 0) {
    throw new IdentityError(lastError(`setresgid(${gid})`, libc).message);
  }
  if (libc.setresuid(uid, uid, uid) !== 0) {
    throw new IdentityError(lastError(`setresuid(${uid})`, libc).message);
  }
  if (libc.getuid() !== uid || libc.geteuid() !== uid || libc.getgid() !== gid) {
    throw new IdentityError(`after setresuid(${uid}) the process still runs as uid ${libc.geteuid()}`);
  }
  if (libc.setresuid(0, 0, 0) === 0) {
    throw new IdentityError("setresuid(0) succeeded after the drop: root kept");
  }
}

/**
 * The calling thread's effective and permitted capability sets (64 bits each), read with capget (works under
 * a libc-scoped ffi grant: the structs travel through a scratch page).
 */
export function effectiveCapabilities(libc: Libc = openLibc()): { effective: bigint; permitted: bigint } {
  return withScratchPage(libc, (page) => {
    copyToScratch(libc, page, cap_user_header.toBytes({ version: LINUX_CAPABILITY_VERSION_3, pid: 0 }));
    const dataAt = page + 64n;
    if (libc.syscall(BigInt(SYSCALLS_X86_64.capget), page, dataAt, 0n, 0n, 0n) !== 0n) {
      throw lastError("capget", libc);
    }
    const data = new Uint8Array(2 * cap_user_data.size);
    copyFromScratch(libc, data, dataAt);
    const view = new DataView(data.buffer);
    const lo = cap_user_data.decode<{ effective: number; permitted: number }>(view, 0);
    const hi = cap_user_data.decode<{ effective: number; permitted: number }>(view, cap_user_data.size);
    return {
      effective: (BigInt(hi.effective) << 32n) | BigInt(lo.effective),
      permitted: (BigInt(hi.permitted) << 32n) | BigInt(lo.permitted),
    };
  });
}
