/**
 * seccomp(2) with a classic-BPF filter: the kernel's constants and struct layouts as data (names from
 * `linux/seccomp.h`, `linux/filter.h`, `linux/bpf_common.h`, `linux/audit.h`), the encoding of a program into
 * `struct sock_filter` words, and the one call that installs it on every thread of the process
 * (`SECCOMP_FILTER_FLAG_TSYNC`).
 *
 * The program itself is assembled from a profile in `src/privsep/seccomp_filter.ts`; this module only knows
 * the kernel's side.
 *
 * @module
 */
import { lastError } from "./errno.ts";
import { type Libc, openLibc } from "./libc.ts";
import { StructLayout } from "./struct.ts";
import { SYSCALLS_X86_64 } from "./syscalls_x86_64.ts";

/** `BPF_LD`: load into the accumulator. */
export const BPF_LD = 0x00;
/** `BPF_ALU`: arithmetic on the accumulator. */
export const BPF_ALU = 0x04;
/** `BPF_JMP`: conditional jump. */
export const BPF_JMP = 0x05;
/** `BPF_RET`: return a value (the seccomp action). */
export const BPF_RET = 0x06;
/** `BPF_W`: a 32-bit word. */
export const BPF_W = 0x00;
/** `BPF_ABS`: at an absolute offset into `struct seccomp_data`. */
export const BPF_ABS = 0x20;
/** `BPF_K`: the operand is the instruction's constant. */
export const BPF_K = 0x00;
/** `BPF_AND`: accumulator &= operand. */
export const BPF_AND = 0x50;
/** `BPF_JEQ`: jump if accumulator == operand. */
export const BPF_JEQ = 0x10;
/** `BPF_JGE`: jump if accumulator >= operand. */
export const BPF_JGE = 0x30;
/** `BPF_JSET`: jump if accumulator & operand != 0. */
export const BPF_JSET = 0x40;

/** `SECCOMP_RET_KILL_PROCESS`. */
export const SECCOMP_RET_KILL_PROCESS = 0x80000000;
/** `SECCOMP_RET_ERRNO`: fail the call with the errno in the low 16 bits. */
export const SECCOMP_RET_ERRNO = 0x00050000;
/** `SECCOMP_RET_ALLOW`. */
export const SECCOMP_RET_ALLOW = 0x7fff0000;
/** `SECCOMP_RET_ACTION_FULL`: the action bits of a return value. */
export const SECCOMP_RET_ACTION_FULL = 0xffff0000;
/** `SECCOMP_RET_DATA`: the data bits (the errno for `SECCOMP_RET_ERRNO`). */
export const SECCOMP_RET_DATA = 0x0000ffff;

/** `SECCOMP_SET_MODE_FILTER` (seccomp(2) operation). */
export const SECCOMP_SET_MODE_FILTER = 1;
/** `SECCOMP_FILTER_FLAG_TSYNC`: put the filter on every thread of the process, or fail. */
export const SECCOMP_FILTER_FLAG_TSYNC = 1;
/** `BPF_MAXINSNS`: the longest program the kernel accepts. */
export const BPF_MAXINSNS = 4096;

/** `AUDIT_ARCH_X86_64` (`EM_X86_64 | __AUDIT_ARCH_64BIT | __AUDIT_ARCH_LE`). */
export const AUDIT_ARCH_X86_64 = 0xc000003e;

/** `PR_SET_NO_NEW_PRIVS` (prctl option). */
export const PR_SET_NO_NEW_PRIVS = 38;
/** `PR_GET_NO_NEW_PRIVS`. */
export const PR_GET_NO_NEW_PRIVS = 39;

/** `struct sock_filter { __u16 code; __u8 jt; __u8 jf; __u32 k; }`. */
export const sock_filter = new StructLayout("sock_filter", 8, [
  ["code", "u16"],
  ["jt", "u8"],
  ["jf", "u8"],
  ["k", "u32"],
]);

/** `struct sock_fprog { unsigned short len; struct sock_filter *filter; }`. */
export const sock_fprog = new StructLayout("sock_fprog", 16, [
  ["len", "u16"],
  ["filter", "u64"],
]);

/** `struct seccomp_data`: what a filter reads (`nr`, `arch`, `instruction_pointer`, `args[6]`). */
export const seccomp_data = new StructLayout("seccomp_data", 64, [
  ["nr", "i32"],
  ["arch", "u32"],
  ["instruction_pointer", "u64"],
  ["args", { of: "u64", length: 6 }],
]);

/** Offset of `seccomp_data.nr`. */
export const SECCOMP_DATA_NR = seccomp_data.offsetOf("nr");
/** Offset of `seccomp_data.arch`. */
export const SECCOMP_DATA_ARCH = seccomp_data.offsetOf("arch");

/** Offset of the low 32 bits of `seccomp_data.args[i]` (little-endian). */
export function seccompArgLow(i: number): number {
  if (!Number.isInteger(i) || i < 0 || i > 5) throw new RangeError(`seccomp_data has args[0..5], not ${i}`);
  return seccomp_data.offsetOf("args") + 8 * i;
}

/** One BPF instruction, as `struct sock_filter` holds it. */
export interface BpfInstruction {
  /** Opcode (class | size | mode, or class | op | source). */
  readonly code: number;
  /** Jump offset when true (relative to the next instruction). */
  readonly jt: number;
  /** Jump offset when false. */
  readonly jf: number;
  /** The constant operand. */
  readonly k: number;
}

/** The program as the kernel reads it: consecutive `struct sock_filter`s. */
export function encodeFilter(program: readonly BpfInstruction[]): Uint8Array<ArrayBuffer> {
  if (program.length === 0 || program.length > BPF_MAXINSNS) {
    throw new RangeError(`a seccomp program has 1..${BPF_MAXINSNS} instructions, not ${program.length}`);
  }
  const out = new Uint8Array(program.length * sock_filter.size);
  const view = new DataView(out.buffer);
  program.forEach((ins, i) => sock_filter.encode(ins, view, i * sock_filter.size));
  return out;
}

/** A seccomp call the kernel refused; the message says what to check. */
export class SeccompError extends Error {
  /** Builds the error. */
  constructor(message: string) {
    super(message);
    this.name = "SeccompError";
  }
}

/**
 * Sets no_new_privs on the calling thread (seccomp with TSYNC then sets it on every thread). Without it an
 * unprivileged thread may not install a filter, and Landlock refuses to restrict it.
 */
export function setNoNewPrivs(libc: Libc = openLibc()): void {
  if (libc.prctl(PR_SET_NO_NEW_PRIVS, 1n, 0n, 0n, 0n) !== 0) {
    throw lastError("prctl(PR_SET_NO_NEW_PRIVS)", libc);
  }
}

/**
 * Installs `program` on every thread of the process (`seccomp(SECCOMP_SET_MODE_FILTER,
 * SECCOMP_FILTER_FLAG_TSYNC, &prog)`). The calling thread must have no_new_privs set (or CAP_SYS_ADMIN).
 * Needs unscoped ffi: the `sock_fprog` holds the program's address, taken with Deno's pointer API.
 */
export function installSeccompFilter(program: readonly BpfInstruction[], libc: Libc = openLibc()): void {
  const words = encodeFilter(program);
  // Safe: `words` stays referenced until the synchronous syscall below returns; the kernel copies the
  // program during the call and never keeps the address.
  const address = Deno.UnsafePointer.value(Deno.UnsafePointer.of(words));
  const fprog = sock_fprog.toBytes({ len: program.length, filter: BigInt(address) });
  // Safe: `fprog` is a live 16-byte struct sock_fprog whose filter field points at `words` (above).
  const fprogAddress = Deno.UnsafePointer.value(Deno.UnsafePointer.of(fprog));
  const r = libc.syscall(
    BigInt(SYSCALLS_X86_64.seccomp),
    BigInt(SECCOMP_SET_MODE_FILTER),
    BigInt(SECCOMP_FILTER_FLAG_TSYNC),
    BigInt(fprogAddress),
    0n,
    0n,
  );
  if (r === 0n) return;
  if (r > 0n) {
    throw new SeccompError(
      `seccomp(TSYNC): thread ${r} could not take the filter (it has a different filter or is exiting); ` +
        "lock down before starting threads with filters of their own",
    );
  }
  const e = lastError("seccomp(SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_TSYNC)", libc);
  throw new SeccompError(
    `${e.message}: ${
      e.code === "EACCES" ? "set no_new_privs first" : "the kernel needs CONFIG_SECCOMP_FILTER"
    }`,
  );
}
