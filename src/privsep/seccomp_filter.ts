/**
 * A seccomp profile as data, its assembly into a classic-BPF program, and a small interpreter of that program
 * (the same semantics as the kernel's), so the profile printed by `vmd policy` and checked by the tests is
 * what the installed program decides, not a second description of it.
 *
 * Program shape: check `arch` is x86_64 and the number has no x32 bit (else refuse), then one block per rule
 * (`nr == rule ? block : next rule`), each block ending in a return; whatever no rule names is refused with
 * the profile's default errno. Every jump is local to its block, so offsets fit the 8-bit jump fields
 * however long the list grows.
 *
 * @module
 */
import {
  AUDIT_ARCH_X86_64,
  BPF_ABS,
  BPF_ALU,
  BPF_AND,
  BPF_JEQ,
  BPF_JMP,
  BPF_JSET,
  BPF_K,
  BPF_LD,
  BPF_RET,
  BPF_W,
  type BpfInstruction,
  SECCOMP_DATA_ARCH,
  SECCOMP_DATA_NR,
  SECCOMP_RET_ACTION_FULL,
  SECCOMP_RET_ALLOW,
  SECCOMP_RET_DATA,
  SECCOMP_RET_ERRNO,
  seccompArgLow,
} from "../../ffi/seccomp.ts";
import { type SyscallName, SYSCALLS_X86_64, X32_SYSCALL_BIT } from "../../ffi/syscalls_x86_64.ts";

/**
 * A test on the low 32 bits of one argument (every argument tested here is an `int` or `unsigned int` in
 * the kernel, which ignores the high bits): `in` — equals one of `values`; `not-in` — equals none of them;
 * `clear` — none of `mask`'s bits set; `set` — all of `mask`'s bits set.
 */
export type ArgTest =
  | { readonly arg: number; readonly op: "in" | "not-in"; readonly values: readonly number[] }
  | { readonly arg: number; readonly op: "clear" | "set"; readonly mask: number };

/** What a rule does with its system call. */
export type RuleAction =
  | { readonly kind: "allow" }
  | { readonly kind: "allow-if"; readonly tests: readonly ArgTest[] }
  | { readonly kind: "errno"; readonly errno: number };

/** One system call's rule, with why. */
export interface SyscallRule {
  /** The kernel's name. */
  readonly name: SyscallName;
  /** Allow, allow when every test holds (else the default errno), or fail with an errno. */
  readonly action: RuleAction;
  /** Why a running VM needs it (or why it gets this errno). */
  readonly reason: string;
}

/** A whole profile: the rules, and the errno for everything else. */
export interface SeccompProfile {
  /** The profile's name, as `vmd policy` prints it. */
  readonly name: string;
  /** One rule per system call (a name at most once). */
  readonly rules: readonly SyscallRule[];
  /** The errno every other call (and any other architecture or x32 call) fails with. */
  readonly defaultErrno: number;
}

/** A profile that cannot be assembled (a programming error in the profile). */
export class SeccompProfileError extends Error {
  /** Builds the error. */
  constructor(message: string) {
    super(message);
    this.name = "SeccompProfileError";
  }
}

type Jump = number | string;
interface Pending {
  code: number;
  k: number;
  jt: Jump;
  jf: Jump;
  label?: string;
}

const ld = (offset: number): Pending => ({ code: BPF_LD | BPF_W | BPF_ABS, k: offset, jt: 0, jf: 0 });
const ret = (value: number): Pending => ({ code: BPF_RET | BPF_K, k: value >>> 0, jt: 0, jf: 0 });
const jmp = (op: number, k: number, jt: Jump, jf: Jump): Pending => ({
  code: BPF_JMP | op | BPF_K,
  k: k >>> 0,
  jt,
  jf,
});

/** Resolves label jumps within one block to offsets, checking they fit the 8-bit fields. */
function resolve(block: Pending[]): BpfInstruction[] {
  const at = new Map<string, number>();
  block.forEach((p, i) => {
    if (p.label !== undefined) at.set(p.label, i);
  });
  return block.map((p, i) => {
    const off = (j: Jump): number => {
      if (typeof j === "number") return j;
      const target = at.get(j);
      if (target === undefined || target <= i) throw new SeccompProfileError(`bad jump to ${j}`);
      const d = target - i - 1;
      if (d > 255) throw new SeccompProfileError(`jump to ${j} is ${d} instructions: too far`);
      return d;
    };
    return { code: p.code, k: p.k, jt: off(p.jt), jf: off(p.jf) };
  });
}

function ruleBlock(rule: SyscallRule, deny: number): Pending[] {
  const a = rule.action;
  if (a.kind === "allow") return [ret(SECCOMP_RET_ALLOW)];
  if (a.kind === "errno") return [ret(SECCOMP_RET_ERRNO | (a.errno & SECCOMP_RET_DATA))];
  const out: Pending[] = [];
  a.tests.forEach((t, n) => {
    const next = `test${n + 1}`;
    const first = ld(seccompArgLow(t.arg));
    first.label = `test${n}`;
    out.push(first);
    if (t.op === "in") {
      t.values.forEach((v, i) => {
        out.push(jmp(BPF_JEQ, v, next, i === t.values.length - 1 ? "deny" : 0));
      });
    } else if (t.op === "not-in") {
      t.values.forEach((v, i) => {
        out.push(jmp(BPF_JEQ, v, "deny", i === t.values.length - 1 ? next : 0));
      });
    } else if (t.op === "clear") {
      out.push(jmp(BPF_JSET, t.mask, "deny", next));
    } else if (t.op === "set") {
      out.push({ code: BPF_ALU | BPF_AND | BPF_K, k: t.mask >>> 0, jt: 0, jf: 0 });
      out.push(jmp(BPF_JEQ, t.mask, next, "deny"));
    }
  });
  out.push({ ...ret(SECCOMP_RET_ALLOW), label: `test${a.tests.length}` });
  out.push({ ...ret(deny), label: "deny" });
  return out;
}

/** Assembles `profile` into a program for `seccomp(SECCOMP_SET_MODE_FILTER)`. */
export function assembleProfile(profile: SeccompProfile): BpfInstruction[] {
  const deny = SECCOMP_RET_ERRNO | (profile.defaultErrno & SECCOMP_RET_DATA);
  const seen = new Set<string>();
  const program: BpfInstruction[] = resolve([
    ld(SECCOMP_DATA_ARCH),
    jmp(BPF_JEQ, AUDIT_ARCH_X86_64, 1, 0),
    ret(deny),
    ld(SECCOMP_DATA_NR),
    jmp(BPF_JSET, X32_SYSCALL_BIT, 0, 1),
    ret(deny),
  ]);
  for (const rule of profile.rules) {
    if (seen.has(rule.name)) throw new SeccompProfileError(`${profile.name}: ${rule.name} has two rules`);
    seen.add(rule.name);
    const block = resolve(ruleBlock(rule, deny));
    if (block.length > 255) throw new SeccompProfileError(`${rule.name}: its block is too long`);
    program.push({ code: BPF_JMP | BPF_JEQ | BPF_K, k: SYSCALLS_X86_64[rule.name], jt: 0, jf: block.length });
    program.push(...block);
  }
  program.push(resolve([ret(deny)])[0]);
  return program;
}

/** The input of one evaluation: what `struct seccomp_data` would hold. */
export interface SeccompInput {
  /** The system call number. */
  readonly nr: number;
  /** The audit architecture (defaults to x86_64). */
  readonly arch?: number;
  /** Up to six arguments (missing ones are 0). */
  readonly args?: readonly (number | bigint)[];
}

/** A decision: allowed, or refused with an errno. */
export type SeccompDecision = { readonly kind: "allow" } | { readonly kind: "errno"; readonly errno: number };

/** Runs `program` as the kernel would on `input` (only the instructions {@link assembleProfile} emits). */
export function evaluateFilter(program: readonly BpfInstruction[], input: SeccompInput): SeccompDecision {
  const data = new DataView(new ArrayBuffer(64));
  data.setInt32(SECCOMP_DATA_NR, input.nr, true);
  data.setUint32(SECCOMP_DATA_ARCH, input.arch ?? AUDIT_ARCH_X86_64, true);
  (input.args ?? []).forEach((v, i) =>
    data.setBigUint64(seccompArgLow(i), BigInt.asUintN(64, BigInt(v)), true)
  );
  let acc = 0;
  for (let pc = 0; pc < program.length; pc++) {
    const { code, k, jt, jf } = program[pc];
    if (code === (BPF_LD | BPF_W | BPF_ABS)) acc = data.getUint32(k, true);
    else if (code === (BPF_ALU | BPF_AND | BPF_K)) acc = (acc & k) >>> 0;
    else if (code === (BPF_JMP | BPF_JEQ | BPF_K)) pc += acc === k ? jt : jf;
    else if (code === (BPF_JMP | BPF_JSET | BPF_K)) pc += (acc & k) !== 0 ? jt : jf;
    else if (code === (BPF_RET | BPF_K)) {
      if ((k & SECCOMP_RET_ACTION_FULL) >>> 0 === SECCOMP_RET_ALLOW) return { kind: "allow" };
      if ((k & SECCOMP_RET_ACTION_FULL) >>> 0 === SECCOMP_RET_ERRNO) {
        return { kind: "errno", errno: k & SECCOMP_RET_DATA };
      }
      throw new SeccompProfileError(`instruction ${pc}: return value 0x${k.toString(16)} is not handled`);
    } else throw new SeccompProfileError(`instruction ${pc}: opcode 0x${code.toString(16)} is not handled`);
  }
  throw new SeccompProfileError("the program ran off its end");
}
