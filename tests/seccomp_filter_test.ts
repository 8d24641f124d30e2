import assert from "node:assert/strict";
import { AUDIT_ARCH_X86_64, encodeFilter, sock_filter } from "../ffi/seccomp.ts";
import { SYSCALLS_X86_64, X32_SYSCALL_BIT } from "../ffi/syscalls_x86_64.ts";
import { assembleProfile, evaluateFilter, type SeccompDecision } from "../src/privsep/seccomp_filter.ts";
import {
  ALLOWED_PRCTL,
  CLONE_THREAD,
  ENOSYS,
  EPERM,
  MUST_REFUSE,
  TIOCSTI,
  vmSeccompProfile,
} from "../src/privsep/vm_seccomp_profile.ts";

// The assembled program is run by an interpreter with the kernel's semantics; what it decides is what the
// kernel decides for the same program (the lock-down test runs the same program in the kernel).

const PID = 4321;
const program = assembleProfile(vmSeccompProfile(PID));
const run = (name: keyof typeof SYSCALLS_X86_64, args: (number | bigint)[] = []): SeccompDecision =>
  evaluateFilter(program, { nr: SYSCALLS_X86_64[name], args });
const ALLOW = { kind: "allow" };
const REFUSED = { kind: "errno", errno: EPERM };

Deno.test("seccomp profile: every call that must be refused fails with EPERM", () => {
  for (const name of MUST_REFUSE) assert.deepEqual(run(name), REFUSED, name);
});

Deno.test("seccomp profile: a call no rule names is refused, and so are x32 and foreign-architecture calls", () => {
  assert.deepEqual(run("reboot"), REFUSED);
  assert.deepEqual(run("ioctl", [3, 0xae80]), ALLOW);
  assert.deepEqual(evaluateFilter(program, { nr: SYSCALLS_X86_64.ioctl | X32_SYSCALL_BIT }), REFUSED);
  assert.deepEqual(
    evaluateFilter(program, { nr: SYSCALLS_X86_64.read, arch: 0x40000003 /* i386 */ }),
    REFUSED,
  );
  assert.deepEqual(evaluateFilter(program, { nr: SYSCALLS_X86_64.read, arch: AUDIT_ARCH_X86_64 }), ALLOW);
  assert.deepEqual(evaluateFilter(program, { nr: 9999 }), REFUSED);
});

Deno.test("seccomp profile: argument tests (clone, tgkill, kill, prctl, ioctl)", () => {
  const thread = 0x3d0f00; // glibc's pthread_create flags
  assert.deepEqual(run("clone", [thread]), ALLOW);
  assert.equal(thread & CLONE_THREAD, CLONE_THREAD);
  assert.deepEqual(run("clone", [0x01200011]), REFUSED, "fork (no CLONE_THREAD)");
  assert.deepEqual(run("clone", [0x4111]), REFUSED, "vfork-style spawn");
  assert.deepEqual(run("clone", [thread | 0x10000000]), REFUSED, "CLONE_NEWUSER");
  assert.deepEqual(run("clone", [thread | 0x40000000]), REFUSED, "CLONE_NEWNET");
  assert.deepEqual(run("clone3"), { kind: "errno", errno: ENOSYS });
  assert.deepEqual(run("tgkill", [PID, 77, 12]), ALLOW);
  assert.deepEqual(run("tgkill", [PID + 1, 77, 12]), REFUSED);
  assert.deepEqual(run("kill", [PID, 6]), ALLOW);
  assert.deepEqual(run("kill", [1, 9]), REFUSED);
  assert.deepEqual(run("kill", [-1, 9]), REFUSED);
  for (const v of Object.values(ALLOWED_PRCTL)) assert.deepEqual(run("prctl", [v]), ALLOW, `prctl ${v}`);
  assert.deepEqual(run("prctl", [4, /* PR_SET_DUMPABLE */ 1]), REFUSED);
  assert.deepEqual(run("prctl", [24 /* PR_CAPBSET_DROP */]), REFUSED);
  assert.deepEqual(run("ioctl", [5, TIOCSTI]), REFUSED);
  assert.deepEqual(run("ioctl", [5, 0xffffffff00000000n | BigInt(TIOCSTI)]), REFUSED, "high bits ignored");
  assert.deepEqual(run("ioctl", [5, 0x5401 /* TCGETS */]), ALLOW);
});

Deno.test("seccomp profile: the program fits the kernel's limit and encodes as struct sock_filter", () => {
  assert.ok(program.length < 4096);
  const bytes = encodeFilter(program);
  assert.equal(bytes.length, program.length * sock_filter.size);
  const first = sock_filter.fromBytes<{ code: number; k: number }>(bytes.subarray(0, 8));
  assert.deepEqual(first, { code: 0x20, jt: 0, jf: 0, k: 4 }); // ld [seccomp_data.arch]
  // ioctl is tested first: the hot path (KVM_RUN) runs the fewest instructions
  assert.equal(program[6].k, SYSCALLS_X86_64.ioctl);
});
