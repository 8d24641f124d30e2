/**
 * ACPI and SMP end to end: the kit's `acpi_smp` guest walks the tables the way an OS does and starts every
 * AP with INIT-SIPI-SIPI, under vmd and under QEMU (`-M pc -smp N`, whose tables SeaBIOS builds) in the same
 * test — the same lines from both.
 */
import assert from "node:assert/strict";
import { buildKitGuest } from "../examples/guests/kit/build.ts";
import { kvmTest, runKernel } from "./kvm_support.ts";
import { runUnderQemu } from "./qemu_support.ts";
import type { Vm } from "../src/vm/vm.ts";

/** The guest's console up to its first newline (or what came within 10 s). */
async function firstConsoleLine(vm: Vm): Promise<string> {
  const decoder = new TextDecoder();
  let out = "";
  const deadline = Date.now() + 10_000;
  while (!out.includes("\n") && Date.now() < deadline) {
    await vm.consoleOut.waitForData(100);
    out += decoder.decode(vm.consoleOut.drain());
  }
  return out;
}

for (const cpus of [1, 4]) {
  kvmTest(
    `acpi_smp with ${cpus} vCPU(s): the guest finds the same tables and starts the same APs under vmd and QEMU`,
    async () => {
      const guest = await buildKitGuest("acpi_smp");
      const ours = await runKernel(guest.path, { cpus, timeoutMs: 30_000 });
      assert.deepEqual(ours.result.exit, { kind: "exit-port", status: 0x28 }, ours.output);
      const lines = ours.output.trimEnd().split("\n");
      assert.equal(lines[0], "rsdp: checksums ok, found by the start info and by scanning");
      const ids = Array.from({ length: cpus }, (_, i) => ` ${i}`).join("");
      assert.ok(lines.includes(`madt: ${cpus} enabled cpus, apic ids${ids}`), ours.output);
      assert.ok(lines.includes("dsdt: _PRT: yes, _S5_: yes"), ours.output);
      assert.ok(lines.includes("pm timer: counts at about 3.58 MHz"), ours.output);
      for (let id = 1; id < cpus; id++) assert.ok(lines.includes(`ap: apic id ${id} running`), ours.output);
      assert.equal(lines.at(-2), `smp: ${cpus - 1} aps started, counter ${cpus - 1}`);
      assert.equal(lines.at(-1), "acpi_smp: ok");

      const qemu = await runUnderQemu(guest.path, {
        machine: "pc",
        extraArgs: ["-smp", String(cpus)],
        timeoutMs: 60_000,
      });
      assert.equal(qemu.exitValue, 0x28, qemu.output);
      assert.equal(ours.output, qemu.output);
    },
  );
}

kvmTest(
  "SMP: pause, resume and stop reach every vCPU, APs still waiting for their SIPI included",
  async () => {
    const { Vm, kvmMaxVcpus } = await import("../src/vm/vm.ts");
    const { bootKernel } = await import("../src/vm/boot_kernel.ts");
    const { VcpuState } = await import("../src/vcpu/vcpu_state.ts");
    const guest = await buildKitGuest("echo");
    const vm = Vm.create({ memory: 32 << 20, vcpus: 4, platform: "pc" });
    try {
      assert.ok(kvmMaxVcpus(vm.kvm) >= 4, "KVM reports its vCPU limit");
      await bootKernel(vm, guest.bytes, {
        kernelName: guest.path,
        cmdline: "console=ttyS0",
        initrdName: "none",
      });
      await vm.start();
      assert.equal(
        await firstConsoleLine(vm),
        "echo: ready console=ttyS0\n",
        "the BSP runs while the APs wait for their SIPI",
      );
      assert.equal(vm.vcpus.length, 4);
      await vm.pause();
      assert.deepEqual(vm.vcpus.map((h) => h.workerState), Array(4).fill(VcpuState.Paused));
      await vm.resume();
      assert.deepEqual(vm.vcpus.map((h) => h.workerState), Array(4).fill(VcpuState.Running));
      const result = await vm.stop();
      assert.deepEqual(result.exit, { kind: "stopped" });
      assert.deepEqual(vm.vcpus.map((h) => h.workerState), Array(4).fill(VcpuState.Stopped));
    } finally {
      vm.close();
    }
    // more than the APIC ids allow: refused before any worker starts
    assert.throws(() => Vm.create({ memory: 32 << 20, vcpus: 255, platform: "pc" }), /bad vCPU count 255/);
  },
);

kvmTest(
  "a pc platform prepared ahead (the warm pool's) is what the next pc VM runs on, and only that one",
  async () => {
    const { Vm } = await import("../src/vm/vm.ts");
    const { prepareVmPlatform } = await import("../src/vm/pc_platform.ts");
    const { bootKernel } = await import("../src/vm/boot_kernel.ts");
    const guest = await buildKitGuest("echo");
    const preparedFd = prepareVmPlatform();
    assert.equal(prepareVmPlatform(), preparedFd, "preparing twice keeps the one prepared");
    const vm = Vm.create({ memory: 32 << 20, vcpus: 2, platform: "pc", rng: true });
    try {
      assert.equal(vm.fd.fd, preparedFd, "the VM took the prepared platform");
      await bootKernel(vm, guest.bytes, {
        kernelName: guest.path,
        cmdline: "console=ttyS0",
        initrdName: "none",
      });
      await vm.start();
      assert.equal(await firstConsoleLine(vm), "echo: ready console=ttyS0\n");
      assert.deepEqual((await vm.stop()).exit, { kind: "stopped" });
    } finally {
      vm.close();
    }
    const again = prepareVmPlatform();
    const own = Vm.create({ memory: 16 << 20, platform: "pc", pvm: { pvm: false, why: "test override" } });
    try {
      // the prepared fd is still open, so the VM's own fd has another number
      assert.notEqual(own.fd.fd, again, "a VM with its own PVM choice does not take the prepared platform");
    } finally {
      own.close();
    }
    const taker = Vm.create({ memory: 16 << 20, platform: "pc" });
    try {
      assert.equal(taker.fd.fd, again, "the prepared platform waited for a VM that can take it");
    } finally {
      taker.close();
    }
  },
);
