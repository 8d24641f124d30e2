/** Pause keeps guest time: the kvmclock does not advance while a VM is paused. */
import assert from "node:assert/strict";
import { buildKitGuest } from "../examples/guests/kit/build.ts";
import { bootKernel } from "../src/vm/boot_kernel.ts";
import { Vm } from "../src/vm/vm.ts";
import { pauseKeepingClock, resumeKeepingClock } from "../src/vmd/guest_clock.ts";
import { kvmTest } from "./kvm_support.ts";

kvmTest("pause/unpause: the guest's kvmclock does not count the time spent paused", async () => {
  const guest = await buildKitGuest("echo");
  const vm = Vm.create({ memory: 16 << 20, platform: "pc" });
  try {
    await bootKernel(vm, guest.bytes, { kernelName: guest.path, cmdline: "clock", initrdName: "initrd" });
    await vm.start();
    const before = vm.fd.getClock();
    const saved = await pauseKeepingClock(vm);
    await new Promise((r) => setTimeout(r, 700));
    assert.ok(vm.fd.getClock() - saved > 500_000_000n, "without the restore, the clock runs on while paused");
    await resumeKeepingClock(vm, saved);
    const after = vm.fd.getClock();
    assert.ok(
      after - before < 300_000_000n,
      `guest time moved ${(after - before) / 1_000_000n} ms across a 700 ms pause`,
    );
    await vm.stop();
  } finally {
    vm.close();
  }
});
