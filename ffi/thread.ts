/**
 * Thread identity and signals: the vCPU kick (`tgkill` with SIGUSR2) that makes a thread blocked in KVM_RUN
 * return with EINTR. SIGUSR1 is never used: Deno starts its inspector on it.
 *
 * @module
 */
import { lastError } from "./errno.ts";
import { type Libc, openLibc } from "./libc.ts";

/** The kick signal. */
export const SIGUSR2 = 12;
/** The name Deno's signal API uses for it. */
export const KICK_SIGNAL: Deno.Signal = "SIGUSR2";

/** The calling thread's kernel thread id. */
export function gettid(libc: Libc = openLibc()): number {
  return libc.gettid();
}

/** The process id. */
export function getpid(libc: Libc = openLibc()): number {
  return libc.getpid();
}

/** Sends `signal` to thread `tid` of process `pid`. Returns false if the thread is gone (ESRCH). */
export function tgkill(pid: number, tid: number, signal: number = SIGUSR2, libc: Libc = openLibc()): boolean {
  if (libc.tgkill(pid, tid, signal) === 0) return true;
  const err = lastError(`tgkill(${pid}, ${tid}, ${signal})`, libc);
  if (err.code === "ESRCH") return false;
  throw err;
}
