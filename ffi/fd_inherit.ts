/**
 * Handing open file descriptors to a child process: every fd vmd opens is close-on-exec, so a child sees
 * only what it is given. {@link spawnInheriting} clears FD_CLOEXEC on the chosen fds for the duration of
 * one synchronous spawn and sets it again at once; JavaScript runs on one thread, so no other spawn can
 * happen in between and take them too. The child finds each fd under the same number.
 *
 * @module
 */
import { lastError } from "./errno.ts";
import { openLibc, resolveLibcPath } from "./libc.ts";

const F_GETFD = 1;
const F_SETFD = 2;
const FD_CLOEXEC = 1;

const SYMBOLS = {
  // int fcntl(int fd, int cmd, int arg);
  fcntl: { parameters: ["i32", "i32", "i32"], result: "i32" },
} as const satisfies Deno.ForeignLibraryInterface;

let lib: Deno.DynamicLibrary<typeof SYMBOLS> | undefined;

function sym(): Deno.DynamicLibrary<typeof SYMBOLS>["symbols"] {
  lib ??= Deno.dlopen(resolveLibcPath(), SYMBOLS);
  return lib.symbols;
}

function setCloexec(fd: number, on: boolean): void {
  const flags = sym().fcntl(fd, F_GETFD, 0);
  if (flags < 0) throw lastError(`fcntl(${fd}, F_GETFD)`, openLibc());
  const next = on ? flags | FD_CLOEXEC : flags & ~FD_CLOEXEC;
  if (sym().fcntl(fd, F_SETFD, next) < 0) throw lastError(`fcntl(${fd}, F_SETFD)`, openLibc());
}

/** Runs `spawn` (which must start the child synchronously) with `fds` inheritable; returns its result. */
export function spawnInheriting<T>(fds: readonly number[], spawn: () => T): T {
  const cleared: number[] = [];
  try {
    for (const fd of fds) {
      setCloexec(fd, false);
      cleared.push(fd);
    }
    return spawn();
  } finally {
    for (const fd of cleared) setCloexec(fd, true);
  }
}
