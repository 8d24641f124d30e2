import assert from "node:assert/strict";
import { kvmTest, runFlatGuest } from "./kvm_support.ts";

kvmTest("real-mode guest prints through the UART and ends through the exit port", async () => {
  const { output, result } = await runFlatGuest("real_hello");
  assert.deepEqual(output, "hello from real mode\n");
  assert.deepEqual(result.exit, { kind: "exit-port", status: 0x11 });
  assert.deepEqual(result.vcpu, 0);
});

kvmTest("long-mode guest set up by the VMM runs with paging on", async () => {
  const { output, result } = await runFlatGuest("long_hello");
  assert.deepEqual(output, "hello from long mode\npaging on\n");
  assert.deepEqual(result.exit, { kind: "exit-port", status: 0x22 });
});

kvmTest("a guest that triple-faults ends with reason shutdown", async () => {
  const { output, result } = await runFlatGuest("triple_fault");
  assert.deepEqual(output, "");
  assert.equal(result.exit.kind, "shutdown");
  // the registers come along: the fault is at the guest's first instruction (ud2 at its load address)
  assert.ok(
    "dump" in result.exit && result.exit.dump !== undefined,
    "a triple fault carries a register dump",
  );
  assert.equal(BigInt(result.exit.dump.regs.rip), 0x100000n);
});

kvmTest("HLT without an in-kernel irqchip ends the run with reason hlt", async () => {
  const { result } = await runFlatGuest("halt");
  assert.deepEqual(result.exit, { kind: "hlt" });
});

kvmTest("the demo guest counts, round-trips the scratch register and exits 0", async () => {
  const { output, result } = await runFlatGuest("demo");
  assert.deepEqual(result.exit, { kind: "exit-port", status: 0 });
  const lines = output.trimEnd().split("\n");
  assert.deepEqual(lines.slice(2, 7), [1, 2, 3, 4, 5].map((n) => `counting: ${n}`));
  assert.deepEqual(lines[7], "scratch register round trip ok; exiting with status 0");
});
