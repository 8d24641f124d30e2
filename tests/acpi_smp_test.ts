/**
 * ACPI and SMP end to end: the kit's `acpi_smp` guest walks the tables the way an OS does and starts every
 * AP with INIT-SIPI-SIPI, under vmd and under QEMU (`-M pc -smp N`, whose tables SeaBIOS builds) in the same
 * test — the same lines from both.
 */
import assert from "node:assert/strict";
import { buildKitGuest } from "../examples/guests/kit/build.ts";
import { kvmTest, runKernel } from "./kvm_support.ts";
import { runUnderQemu } from "./qemu_support.ts";

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
