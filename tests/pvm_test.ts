/**
 * PVM (KVM without hardware virtualisation): detection, the CPUID masks, and the instructions vmd completes
 * or refuses. The guest tests run on both kinds of host: on hardware KVM the CPU runs the instructions
 * itself, so each test states what either host must show.
 */
import assert from "node:assert/strict";
import { Kvm } from "../ffi/kvm.ts";
import { detectPvm, pvmCpuid, pvmFromNestedState, withPvmSwitches } from "../src/vm/pvm.ts";
import { describeVcpuExit, formatRegisterDump } from "../src/vcpu/vcpu_exit.ts";
import { hardwareKvm, kvmTest, runFlatGuest } from "./kvm_support.ts";
import { isLinuxKernel } from "../src/vm/boot_kernel.ts";
import { prepareGuests } from "../scripts/prepare_guests.ts";
import { buildKitGuest } from "../examples/guests/kit/build.ts";

const ON_PVM = !hardwareKvm().present;

Deno.test("PVM is a KVM without nested-state support; any nested-state size means hardware KVM", () => {
  assert.equal(pvmFromNestedState(0).pvm, true);
  assert.equal(pvmFromNestedState(8320).pvm, false);
});

kvmTest("KVM's answer agrees with the CPU flags: PVM exactly where the CPU has neither VMX nor SVM", () => {
  const kvm = Kvm.open();
  try {
    assert.equal(detectPvm(kvm).pvm, ON_PVM, detectPvm(kvm).why);
  } finally {
    kvm.close();
  }
});

Deno.test("on PVM, CPUID leaf 1 loses cx16 and nothing else; the input is left alone", () => {
  const leaf1 = {
    function: 1,
    index: 0,
    flags: 0,
    eax: 0xa10f11,
    ebx: 0x800,
    ecx: 0x81202000,
    edx: 0x78bfbff,
  };
  const other = { function: 7, index: 0, flags: 1, eax: 1, ebx: 0x01800002, ecx: 0x104, edx: 0x20000000 };
  const out = pvmCpuid([leaf1, other]);
  assert.equal(out[0].ecx, (0x81202000 & ~(1 << 13)) >>> 0);
  assert.deepEqual({ ...out[0], ecx: leaf1.ecx }, leaf1);
  assert.deepEqual(out[1], other);
  assert.equal(leaf1.ecx, 0x81202000);
});

Deno.test("the PVM switches come after the user's command line, which stays intact", () => {
  const line = withPvmSwitches('console=ttyS0 foo="a b"');
  assert.ok(line.startsWith('console=ttyS0 foo="a b"'), line);
});

kvmTest(
  "an instruction PVM cannot emulate and vmd does not complete stops the VM with its bytes",
  async () => {
    const { result } = await runFlatGuest("emul_reject");
    if (ON_PVM) {
      const e = result.exit;
      assert.equal(e.kind, "internal-error", JSON.stringify(e));
      assert.ok(e.kind === "internal-error");
      assert.equal(e.suberror, 1);
      // popcnt %rax, %rcx: f3 48 0f b8 c8, the guest's fourth instruction (two 5-byte movs before it)
      assert.ok(e.insn?.startsWith("f3 48 0f b8 c8"), e.insn);
      assert.equal(BigInt(e.dump.regs.rip), 0x10000an);
      const message = describeVcpuExit(e);
      assert.match(message, /rip=0x000000000010000a/);
      assert.match(message, /bytes: f3 48 0f b8 c8/);
      assert.match(formatRegisterDump(e.dump), /rax=0x0000000000ff00ff/);
    } else {
      // hardware KVM: the CPU runs popcnt and the guest halts
      assert.deepEqual(result.exit, { kind: "hlt" });
    }
  },
);

kvmTest(
  "INT3 reaches the guest's #BP handler with RIP after the 0xcc (completed by vmd on PVM)",
  async () => {
    const { result } = await runFlatGuest("int3_trap");
    assert.deepEqual(result.exit, { kind: "exit-port", status: 0x33 });
  },
);

kvmTest("STAC and CLAC set and clear RFLAGS.AC (completed by vmd on PVM)", async () => {
  const { result } = await runFlatGuest("ac_flag");
  assert.deepEqual(result.exit, { kind: "exit-port", status: 0x66 });
});

Deno.test("only Linux gets the PVM changes: vmlinux and bzImage are Linux, a kit PVH guest is not", async () => {
  const g = await prepareGuests({ log: () => {} });
  assert.equal(isLinuxKernel(await Deno.readFile(g.vmlinux), g.vmlinux), true);
  assert.equal(isLinuxKernel(await Deno.readFile(g.bzImage), g.bzImage), true);
  const kit = await buildKitGuest("hello");
  assert.equal(isLinuxKernel(await Deno.readFile(kit.path), kit.path), false);
});
