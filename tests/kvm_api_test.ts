import assert from "node:assert/strict";
import { ErrnoError } from "../ffi/errno.ts";
import { Kvm } from "../ffi/kvm.ts";
import { KVM, KVM_CAP, KVM_PIT_SPEAKER_DUMMY } from "../ffi/kvm_ioctls.ts";
import { kvm_regs, kvm_sregs } from "../ffi/kvm_structs.ts";
import { kvmTest } from "./kvm_support.ts";

Deno.test("ioctl numbers match the kernel's _IO/_IOR/_IOW encodings", () => {
  assert.equal(KVM.KVM_CREATE_VM, 0xae01n);
  assert.equal(KVM.KVM_RUN, 0xae80n);
  assert.equal(KVM.KVM_GET_REGS, 0x8090ae81n);
  assert.equal(KVM.KVM_SET_SREGS, 0x4138ae84n);
  assert.equal(KVM.KVM_SET_USER_MEMORY_REGION, 0x4020ae46n);
  assert.equal(KVM.KVM_GET_SUPPORTED_CPUID, 0xc008ae05n);
  assert.equal(KVM.KVM_SIGNAL_MSI, 0x4020aea5n);
  assert.equal(kvm_regs.size, 144);
  assert.equal(kvm_sregs.offsetOf("cr0"), 224);
  assert.equal(kvm_sregs.offsetOf("interrupt_bitmap"), 280);
});

kvmTest("KVM reports API 12 and the capabilities vmd needs", () => {
  const kvm = Kvm.open();
  try {
    assert.equal(kvm.apiVersion(), 12);
    for (const cap of ["KVM_CAP_USER_MEMORY", "KVM_CAP_SET_TSS_ADDR", "KVM_CAP_IRQCHIP"] as const) {
      assert.ok(kvm.checkExtension(KVM_CAP[cap]) > 0, cap);
    }
    assert.ok(kvm.vcpuMmapSize() >= 4096);
    assert.ok(kvm.supportedCpuid().some((e) => e.function === 0));
  } finally {
    kvm.close();
  }
});

kvmTest("a failing ioctl surfaces as ErrnoError with errno and the call's name", () => {
  const kvm = Kvm.open();
  const vm = kvm.createVm();
  try {
    const vcpu = vm.createVcpu(0);
    assert.throws(() => vm.createVcpu(0), (e) => {
      assert.ok(e instanceof ErrnoError);
      assert.equal(e.call, "ioctl(KVM_CREATE_VCPU)");
      assert.equal(e.code, "EEXIST");
      assert.equal(e.errno, 17);
      assert.match(e.message, /^ioctl\(KVM_CREATE_VCPU\) failed: EEXIST \(File exists\)$/);
      return true;
    });
    // registers round-trip through the struct layouts
    const regs = vcpu.getRegs();
    vcpu.setRegs({ ...regs, rax: 0x1234_5678_9abc_def0n, rflags: 2n });
    assert.equal(vcpu.getRegs().rax, 0x1234_5678_9abc_def0n);
    const sregs = vcpu.getSregs();
    assert.equal(sregs.cs.selector, 0xf000); // x86 reset state
    vcpu.close();
  } finally {
    vm.close();
    kvm.close();
  }
  assert.throws(() => Kvm.open("/dev/null-not-kvm"), (e) => e instanceof ErrnoError && e.code === "ENOENT");
});

kvmTest("KVM_REINJECT_CONTROL runs in the background and reports the kernel's own errno", async () => {
  const kvm = Kvm.open();
  const vm = kvm.createVm();
  try {
    vm.createIrqchip();
    // without a PIT the kernel refuses it (ENXIO): the error is the call's, not another thread's errno
    await assert.rejects(vm.reinjectControl(false), (e) => {
      assert.ok(e instanceof ErrnoError);
      assert.equal(e.call, "ioctl(KVM_REINJECT_CONTROL)");
      assert.equal(e.code, "ENXIO");
      return true;
    });
    vm.createPit2(KVM_PIT_SPEAKER_DUMMY);
    // Turning re-injection off waits for the kernel (an SRCU grace period, usually 15-20 ms here, now and
    // then under 1 ms); this thread goes on meanwhile. A synchronous call would hold it for all of it, so no
    // timer callback could run during a slow call. Up to 8 tries for slow calls; every slow one is checked.
    const slow: { ms: number; ticks: number }[] = [];
    for (let i = 0; i < 8 && slow.length < 2; i++) {
      let ticks = 0;
      const timer = setInterval(() => ticks++, 1);
      const t0 = performance.now();
      try {
        await vm.reinjectControl(false);
      } finally {
        clearInterval(timer);
      }
      const ms = performance.now() - t0;
      if (ms >= 5) slow.push({ ms, ticks });
      await vm.reinjectControl(true); // back on: the next call off waits again
    }
    console.log(`slow KVM_REINJECT_CONTROL calls (ms, timer callbacks meanwhile): ${JSON.stringify(slow)}`);
    for (const c of slow) assert.ok(c.ticks >= 1, `the event loop stood still for ${c.ms.toFixed(1)} ms`);
  } finally {
    vm.close();
    kvm.close();
  }
});
