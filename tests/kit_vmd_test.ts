import assert from "node:assert/strict";
import { buildKitGuest } from "../examples/guests/kit/build.ts";
import { runUnderQemu } from "./qemu_support.ts";
import { kvmTest, runKernel } from "./kvm_support.ts";

kvmTest(
  "kit hello: the same PVH guest prints the same text under vmd and under QEMU, same exit value",
  async () => {
    const guest = await buildKitGuest("hello");
    const ours = await runKernel(guest.path);
    const qemu = await runUnderQemu(guest.path, { machine: "microvm" });
    assert.deepEqual(ours.result.exit, { kind: "exit-port", status: 0x10 });
    assert.equal(qemu.exitValue, 0x10);
    assert.equal(ours.output, qemu.output);
    assert.match(ours.output, /^kit hello: ok\n/);
  },
);

kvmTest(
  "PVH: the guest finds our hvm_start_info — memory map, cmdline and module — and QEMU agrees",
  async () => {
    const guest = await buildKitGuest("pvh_info");
    const dir = await Deno.makeTempDir();
    try {
      const module = `${dir}/module.bin`;
      await Deno.writeTextFile(module, "vmd module payload\n");
      const cmdline = "console=ttyS0 vmd.test=pvh";
      const ours = await runKernel(guest.path, { cmdline, initrd: module, memory: 64 << 20 });
      assert.deepEqual(ours.result.exit, { kind: "exit-port", status: 0x11 }, ours.output);
      const lines = ours.output.split("\n");
      assert.ok(lines.includes("magic 0x336ec578 version 1 flags 0x0"));
      assert.ok(lines.includes("nr_modules 1"));
      assert.ok(lines.includes(`cmdline: ${cmdline}`));
      // our e820 map: low RAM, the reserved EBDA/BIOS hole, RAM from 1 MiB to 64 MiB
      assert.deepEqual(lines.filter((l) => l.startsWith("memmap: ")), [
        "memmap: 0x0 0x9fc00 1",
        "memmap: 0x9fc00 0x60400 2",
        "memmap: 0x100000 0x3f00000 1",
      ]);
      const payload = [...new TextEncoder().encode("vmd module payload\n")].map((b) =>
        b.toString(16).padStart(2, "0")
      );
      assert.ok(lines.some((l) => /^module 0: addr 0x[0-9a-f]+ size 19$/.test(l)));
      assert.ok(lines.includes(`module 0 bytes: ${payload.slice(0, 16).join(" ")}`), ours.output);

      // QEMU's loader reports the same cmdline and module (its memory map and addresses are its own)
      const qemu = await runUnderQemu(guest.path, { append: cmdline, initrd: module, machine: "microvm" });
      assert.equal(qemu.exitValue, 0x11);
      const q = qemu.output.split("\n");
      for (const l of ["magic 0x336ec578 version 1 flags 0x0", "nr_modules 1", `cmdline: ${cmdline}`]) {
        assert.ok(q.includes(l), `QEMU: ${l}`);
      }
      assert.ok(q.includes(`module 0 bytes: ${payload.slice(0, 16).join(" ")}`));
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
);

kvmTest("kit pci_scan: an empty PCI bus answers all ones and the guest finds no functions", async () => {
  const guest = await buildKitGuest("pci_scan");
  const ours = await runKernel(guest.path);
  assert.deepEqual(ours.result.exit, { kind: "exit-port", status: 0x13 });
  assert.equal(ours.output, "pci_scan: 0 functions\n");
});

kvmTest(
  "PC platform: CMOS clock and memory bytes, i8042 self-test, console input through IRQ 4",
  async () => {
    const guest = await buildKitGuest("platform");
    let sent = false;
    const before = new Date();
    const ours = await runKernel(guest.path, {
      memory: 128 << 20,
      onOutput: (out, vm) => {
        if (!sent && out.includes("waiting for input\n")) {
          sent = true;
          vm.consoleInput(new TextEncoder().encode("Z"));
        }
      },
    });
    assert.deepEqual(ours.result.exit, { kind: "exit-port", status: 0x14 }, ours.output);
    const lines = ours.output.split("\n");
    const rtc = /^rtc: (\d{4})-(\d\d)-(\d\d) (\d\d):(\d\d) status-b 0x2$/.exec(lines[0]);
    assert.ok(rtc, lines[0]);
    const guestTime = Date.UTC(+rtc[1], +rtc[2] - 1, +rtc[3], +rtc[4], +rtc[5]);
    assert.ok(
      Math.abs(guestTime - before.getTime()) < 3 * 60_000,
      `guest clock ${lines[0]} vs host ${before.toISOString()}`,
    );
    // 128 MiB: 640 KiB base, 63 MiB above 1 MiB (in KiB), 112 MiB above 16 MiB in 64 KiB units
    assert.equal(
      lines[1],
      `cmos: base 640 KiB, ext ${63 * 1024} KiB, above 16M ${(112 << 20) / 65536} x 64 KiB`,
    );
    assert.equal(lines[2], "i8042: self-test 0x55");
    assert.equal(lines[3], "waiting for input");
    assert.match(lines[4], /^irq4: got 'Z' after [1-9]\d* interrupt\(s\)$/);
  },
);

kvmTest("i8042 reset (0xFE on port 0x64) ends the VM with reason reboot", async () => {
  const { buildFlatGuest } = await import("../examples/guests/build.ts");
  const { loadFlatGuest } = await import("../src/vm/flat_guest.ts");
  const { Vm } = await import("../src/vm/vm.ts");
  const vm = Vm.create({ memory: 16 << 20, platform: "pc" });
  try {
    loadFlatGuest(vm, await buildFlatGuest("kbd_reset"));
    await vm.start();
    assert.deepEqual((await vm.wait()).exit, { kind: "reboot" });
  } finally {
    vm.close();
  }
});
