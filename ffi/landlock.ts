/**
 * Landlock (linux/landlock.h): the ABI the kernel reports, the access rights each ABI version handles, and
 * confining the calling thread to no filesystem access at all (a ruleset that handles every right and has
 * no rule), no TCP bind/connect and no abstract Unix sockets outside its domain.
 *
 * Landlock is per thread: `landlock_restrict_self` confines the calling thread and the threads it creates
 * afterwards, never its siblings. Each thread that can call libc confines itself ({@link confineThisThread});
 * threads without ffi (Deno's own pool threads, device workers without ffi) are covered by the seccomp
 * filter (installed on every thread with TSYNC), not by Landlock.
 *
 * Works with a libc-scoped ffi grant: everything goes through `syscall()` with integer arguments, and the
 * one struct is copied to a raw address with `memcpy`, never through Deno's pointer API.
 *
 * @module
 */
import { lastError } from "./errno.ts";
import { type Libc, openLibc } from "./libc.ts";
import { copyToScratch, withScratchPage } from "./scratch_page.ts";
import { StructLayout } from "./struct.ts";
import { SYSCALLS_X86_64 } from "./syscalls_x86_64.ts";

/** `PR_SET_NO_NEW_PRIVS` (prctl option). */
const PR_SET_NO_NEW_PRIVS = 38;

/** `LANDLOCK_CREATE_RULESET_VERSION`: ask for the highest ABI version instead of creating a ruleset. */
export const LANDLOCK_CREATE_RULESET_VERSION = 1;

/** Filesystem access rights (`LANDLOCK_ACCESS_FS_*`) and the ABI version that introduced each. */
export const LANDLOCK_ACCESS_FS: Readonly<Record<string, { readonly bit: bigint; readonly abi: number }>> = {
  EXECUTE: { bit: 1n << 0n, abi: 1 },
  WRITE_FILE: { bit: 1n << 1n, abi: 1 },
  READ_FILE: { bit: 1n << 2n, abi: 1 },
  READ_DIR: { bit: 1n << 3n, abi: 1 },
  REMOVE_DIR: { bit: 1n << 4n, abi: 1 },
  REMOVE_FILE: { bit: 1n << 5n, abi: 1 },
  MAKE_CHAR: { bit: 1n << 6n, abi: 1 },
  MAKE_DIR: { bit: 1n << 7n, abi: 1 },
  MAKE_REG: { bit: 1n << 8n, abi: 1 },
  MAKE_SOCK: { bit: 1n << 9n, abi: 1 },
  MAKE_FIFO: { bit: 1n << 10n, abi: 1 },
  MAKE_BLOCK: { bit: 1n << 11n, abi: 1 },
  MAKE_SYM: { bit: 1n << 12n, abi: 1 },
  REFER: { bit: 1n << 13n, abi: 2 },
  TRUNCATE: { bit: 1n << 14n, abi: 3 },
  IOCTL_DEV: { bit: 1n << 15n, abi: 5 },
};

/** Network access rights (`LANDLOCK_ACCESS_NET_*`), ABI 4. */
export const LANDLOCK_ACCESS_NET: Readonly<Record<string, { readonly bit: bigint; readonly abi: number }>> = {
  BIND_TCP: { bit: 1n << 0n, abi: 4 },
  CONNECT_TCP: { bit: 1n << 1n, abi: 4 },
};

/**
 * Scopes (`LANDLOCK_SCOPE_*`), ABI 6. Only abstract Unix sockets are scoped: `LANDLOCK_SCOPE_SIGNAL` is left
 * out because each thread confines itself into its own domain, and the main thread's SIGUSR2 kick to a vCPU
 * thread must keep working (the seccomp filter already limits signals to the process's own threads).
 */
export const LANDLOCK_SCOPE: Readonly<Record<string, { readonly bit: bigint; readonly abi: number }>> = {
  ABSTRACT_UNIX_SOCKET: { bit: 1n << 0n, abi: 6 },
};

/** `struct landlock_ruleset_attr` (ABI 6 size; older kernels are passed the prefix they know). */
export const landlock_ruleset_attr = new StructLayout("landlock_ruleset_attr", 24, [
  ["handled_access_fs", "u64"],
  ["handled_access_net", "u64"],
  ["scoped", "u64"],
]);

/** The rights a ruleset handles at ABI version `abi`: every right that version knows. */
export function handledAccess(abi: number): { fs: bigint; net: bigint; scoped: bigint } {
  const sum = (table: Record<string, { bit: bigint; abi: number }>) =>
    Object.values(table).filter((r) => r.abi <= abi).reduce((acc, r) => acc | r.bit, 0n);
  return { fs: sum(LANDLOCK_ACCESS_FS), net: sum(LANDLOCK_ACCESS_NET), scoped: sum(LANDLOCK_SCOPE) };
}

/** Bytes of `landlock_ruleset_attr` the kernel of ABI `abi` accepts (it refuses unknown non-zero tails). */
export function rulesetAttrSize(abi: number): number {
  return abi >= 6 ? 24 : abi >= 4 ? 16 : 8;
}

/** Landlock refused; the message says what to check. */
export class LandlockError extends Error {
  /** Builds the error. */
  constructor(message: string) {
    super(message);
    this.name = "LandlockError";
  }
}

/** The kernel's Landlock ABI version, or `null` with the reason when it has none. */
export function landlockAbi(libc: Libc = openLibc()): { abi: number } | { abi: null; why: string } {
  const r = libc.syscall(
    BigInt(SYSCALLS_X86_64.landlock_create_ruleset),
    0n,
    0n,
    BigInt(LANDLOCK_CREATE_RULESET_VERSION),
    0n,
    0n,
  );
  if (r > 0n) return { abi: Number(r) };
  const e = lastError("landlock_create_ruleset(NULL, 0, LANDLOCK_CREATE_RULESET_VERSION)", libc);
  const why = e.code === "EOPNOTSUPP"
    ? "Landlock is built in but disabled (add landlock to the lsm= boot parameter)"
    : e.code === "ENOSYS"
    ? "the kernel has no Landlock (CONFIG_SECURITY_LANDLOCK, Linux 5.13+)"
    : e.message;
  return { abi: null, why };
}

/** What {@link confineThisThread} did. */
export type ThreadConfinement =
  | { readonly applied: true; readonly abi: number; readonly tid: number }
  | { readonly applied: false; readonly why: string; readonly tid: number };

/**
 * Confines the calling thread (and threads it creates later) to no filesystem access, no TCP bind or
 * connect, and no abstract Unix sockets outside its domain: a ruleset handling every right the kernel's ABI
 * knows, with no rule. Sets no_new_privs on this thread first (Landlock requires it of an unprivileged
 * thread). Files already open stay usable. Returns `applied: false` with the reason when the kernel has no
 * Landlock; throws {@link LandlockError} when it has one and refuses.
 */
export function confineThisThread(libc: Libc = openLibc()): ThreadConfinement {
  const tid = libc.gettid();
  const version = landlockAbi(libc);
  if (version.abi === null) return { applied: false, why: version.why, tid };
  const abi = version.abi;
  const access = handledAccess(abi);
  const attr = landlock_ruleset_attr.toBytes({
    handled_access_fs: access.fs,
    handled_access_net: access.net,
    scoped: access.scoped,
  });
  const size = rulesetAttrSize(abi);
  if (libc.prctl(PR_SET_NO_NEW_PRIVS, 1n, 0n, 0n, 0n) !== 0) {
    throw new LandlockError(lastError("prctl(PR_SET_NO_NEW_PRIVS)", libc).message);
  }
  const fd = withScratchPage(libc, (page) => {
    copyToScratch(libc, page, attr.subarray(0, size));
    return libc.syscall(BigInt(SYSCALLS_X86_64.landlock_create_ruleset), page, BigInt(size), 0n, 0n, 0n);
  });
  if (fd < 0n) {
    throw new LandlockError(
      `${lastError("landlock_create_ruleset", libc).message}: the kernel reported ABI ${abi} but refused ` +
        "its own rights; report this kernel",
    );
  }
  try {
    if (libc.syscall(BigInt(SYSCALLS_X86_64.landlock_restrict_self), fd, 0n, 0n, 0n, 0n) !== 0n) {
      throw new LandlockError(
        `${lastError("landlock_restrict_self", libc).message}: this thread may already carry the most ` +
          "Landlock layers (16)",
      );
    }
  } finally {
    libc.close(Number(fd));
  }
  return { applied: true, abi, tid };
}
