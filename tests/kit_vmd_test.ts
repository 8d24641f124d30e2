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
