/**
 * The ACPI power button and soft-off: the PM1 register model on its own, then the kit's `acpi_power` guest
 * (it arms the power button, takes the SCI through the I/O APIC and enters S5) under vmd and under QEMU
 * (`system_powerdown` on its monitor) in the same test, and a graceful `vmctl stop` that presses the button.
 */
import assert from "node:assert/strict";
import { buildKitGuest } from "../examples/guests/kit/build.ts";
import {
  ACPI_PM_BASE,
  AcpiPm,
  createAcpiPmState,
  PM1_CNT,
  PM1_EVT,
  pressPowerButton,
  SCI_IRQ,
  SLP_TYP_S5,
} from "../src/devices/acpi_pm.ts";
import { PioBus } from "../src/devices/bus.ts";
import { kvmTest, runKernel } from "./kvm_support.ts";
import { runUnderQemu } from "./qemu_support.ts";
import { ConsoleSession, TestDaemon } from "./vmd_support.ts";

Deno.test("ACPI PM registers: SCI_EN from reset, the power button raises and clearing lowers the SCI, S5 powers off", async () => {
  const state = createAcpiPmState();
  const lines: string[] = [];
  const irq = (gsi: number, level: 0 | 1) => lines.push(`${gsi}=${level}`);
  let off = 0;
  const bus = new PioBus();
  bus.register(ACPI_PM_BASE, 12, new AcpiPm(state, irq, () => off++));
  const evt = ACPI_PM_BASE, cnt = ACPI_PM_BASE + 4, tmr = ACPI_PM_BASE + 8;
  assert.equal(bus.read(cnt, 2), PM1_CNT.SCI_EN, "always in ACPI mode");
  assert.equal(pressPowerButton(state, irq), false, "nobody enabled the event: not pressed");
  assert.equal(bus.read(evt, 2), 0);
  bus.write(evt + 2, 2, PM1_EVT.PWRBTN); // PWRBTN_EN
  assert.equal(bus.read(evt + 2, 2), PM1_EVT.PWRBTN);
  assert.equal(bus.read(evt, 4), PM1_EVT.PWRBTN << 16, "a dword read covers status and enable");
  lines.length = 0;
  assert.equal(pressPowerButton(state, irq), true);
  assert.deepEqual(lines, [`${SCI_IRQ}=1`]);
  assert.equal(bus.read(evt, 2), PM1_EVT.PWRBTN);
  bus.write(evt, 2, 0x0001); // clearing another bit leaves it pending
  assert.equal(bus.read(evt, 2), PM1_EVT.PWRBTN);
  bus.write(evt, 2, PM1_EVT.PWRBTN); // write 1 to clear
  assert.equal(bus.read(evt, 2), 0);
  assert.deepEqual(lines, [`${SCI_IRQ}=1`, `${SCI_IRQ}=1`, `${SCI_IRQ}=0`]);
  // a pending press with the event disabled keeps the line low; enabling it raises the SCI
  bus.write(evt + 2, 2, 0);
  assert.equal(pressPowerButton(state, irq), false);
  Atomics.or(new Int32Array(state), 0, PM1_EVT.PWRBTN);
  bus.write(evt + 2, 2, PM1_EVT.PWRBTN);
  assert.equal(lines.at(-1), `${SCI_IRQ}=1`);
  bus.write(evt, 2, PM1_EVT.PWRBTN);
  assert.equal(lines.at(-1), `${SCI_IRQ}=0`);

  bus.write(cnt, 2, (3 << 10) | PM1_CNT.SLP_EN); // S3: not offered, ignored
  assert.equal(off, 0);
  assert.equal(bus.read(cnt, 2), (3 << 10) | PM1_CNT.SCI_EN, "SLP_EN reads 0; SCI_EN stays set");
  bus.write(cnt, 2, SLP_TYP_S5 << 10); // SLP_TYP alone does nothing
  assert.equal(off, 0);
  bus.write(cnt + 1, 1, (SLP_TYP_S5 << 2) | (PM1_CNT.SLP_EN >> 8)); // the high byte alone
  assert.equal(off, 1, "S5 with SLP_EN powers off");

  const t0 = bus.read(tmr, 4);
  await new Promise((r) => setTimeout(r, 20));
  const ticks = (bus.read(tmr, 4) - t0) & 0xffffff;
  assert.ok(ticks > 3.579545e3 * 15 && ticks < 3.579545e3 * 200, `${ticks} ticks of the PM timer in ~20 ms`);
  assert.ok(bus.read(tmr, 4) < 0x1000000, "24 bits");
});

kvmTest(
  "power button: the guest arms it, vmd presses it, the guest enters S5 and the VM ends powered off; QEMU agrees",
  async () => {
    const guest = await buildKitGuest("acpi_power");
    let early: boolean | undefined;
    let pressed: boolean | undefined;
    const ours = await runKernel(guest.path, {
      timeoutMs: 20_000,
      beforeRun: (vm) => {
        early = vm.pressPowerButton();
        return Promise.resolve();
      },
      onOutput: (out, vm) => {
        if (pressed === undefined && out.includes("waiting for the power button\n")) {
          pressed = vm.pressPowerButton();
        }
      },
    });
    assert.equal(early, false, "before the guest enabled PWRBTN_EN the button is not pressed");
    assert.equal(pressed, true, ours.output);
    assert.deepEqual(ours.result.exit, { kind: "shutdown" }, ours.output);
    assert.equal(
      ours.output,
      "acpi_power: acpi mode on, sci irq 9\n" +
        "acpi_power: waiting for the power button\n" +
        "acpi_power: sci, power button pressed, status now 0x0\n" +
        "acpi_power: entering S5\n",
    );
    const qemu = await runUnderQemu(guest.path, {
      machine: "pc",
      monitor: { after: "waiting for the power button\n", command: "system_powerdown" },
      timeoutMs: 60_000,
    });
    assert.equal(qemu.status, 0, `QEMU powers off: ${qemu.stderr}`);
    assert.equal(ours.output, qemu.output);
  },
);

kvmTest(
  "vmd: a graceful stop presses the ACPI power button of a guest that armed it; it ends powered off",
  async () => {
    const guest = (await buildKitGuest("acpi_power")).path;
    const d = await TestDaemon.start(`vm "acpi" {\n  boot "${guest}"\n  memory 16M\n}\n`);
    await d.run(async () => {
      await d.waitState("acpi", "running");
      const c = new ConsoleSession(d, "acpi");
      await c.expect("acpi_power: waiting for the power button\n");
      const t0 = Date.now();
      const stopped = await d.vmctl(["stop", "-w", "acpi"]);
      assert.equal(stopped.code, 0, stopped.stderr);
      assert.ok(Date.now() - t0 < 5_000, "well before the force timeout");
      await c.expect("acpi_power: entering S5\n");
      await c.ended();
      const vm = await d.vm("acpi");
      assert.equal(vm.state, "stopped");
      assert.equal(vm.restarts, 0);
      assert.match(vm.lastExit ?? "", /guest powered off \(asked to shut down\)/);
      assert.match(d.log, /vm acpi: pressed the ACPI power button/);
      assert.doesNotMatch(d.log, /Ctrl-Alt-Del/);
    });
  },
);
