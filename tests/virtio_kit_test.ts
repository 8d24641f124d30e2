import assert from "node:assert/strict";
import { buildKitGuest } from "../examples/guests/kit/build.ts";
import { runUnderQemu } from "./qemu_support.ts";
import { kvmTest, runKernel } from "./kvm_support.ts";
import { patternImage } from "./virtio_support.ts";

kvmTest(
  "virtio-blk: the kit guest reads the host's pattern, writes, flushes and gets IOERR past the end; QEMU agrees",
  async () => {
    const guest = await buildKitGuest("virtio_blk");
    const dir = await Deno.makeTempDir();
    try {
      const ours = `${dir}/ours.img`;
      const theirs = `${dir}/qemu.img`;
      await patternImage(ours);
      await patternImage(theirs);
      const vmd = await runKernel(guest.path, { disks: [{ path: ours }], timeoutMs: 30_000 });
      assert.deepEqual(vmd.result.exit, { kind: "exit-port", status: 0x20 }, vmd.output);
      const qemu = await runUnderQemu(guest.path, {
        extraArgs: [
          "-drive",
          `file=${theirs},if=none,id=d0,format=raw`,
          "-device",
          "virtio-blk-pci,drive=d0,disable-legacy=on,serial=vmd-disk-0",
        ],
        timeoutMs: 30_000,
      });
      assert.equal(qemu.exitValue, 0x20, qemu.output + qemu.stderr);
      assert.equal(vmd.output, qemu.output);
      assert.match(vmd.output, /^virtio_blk: status 0xf capacity 2048 sectors$/m);
      assert.match(vmd.output, /^get_id: 1 done, status 0, id 'vmd-disk-0'$/m);
      assert.match(vmd.output, /^read: 8 done, 8 ok, 0 bad bytes$/m);
      assert.match(vmd.output, /^read back: 2 done, status 0, same; past the end: status 1$/m);
      for (const path of [ours, theirs]) {
        const img = await Deno.readFile(path);
        const written = img.subarray(100 * 512, 100 * 512 + 4096);
        assert.ok(written.every((b, j) => b === ((0xa5 ^ j) & 0xff)), `${path}: sectors 100..107`);
        assert.equal(img[99 * 512 + 5], (99 ^ 5) & 0xff, `${path}: sector 99 untouched`);
        assert.equal(img[108 * 512 + 7], (108 ^ 7) & 0xff, `${path}: sector 108 untouched`);
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
);

kvmTest("virtio-rng: the kit guest gets 4 KiB that is not constant, as under QEMU", async () => {
  const guest = await buildKitGuest("virtio_rng");
  const vmd = await runKernel(guest.path, { rng: true });
  assert.deepEqual(vmd.result.exit, { kind: "exit-port", status: 0x21 }, vmd.output);
  const qemu = await runUnderQemu(guest.path, { extraArgs: ["-device", "virtio-rng-pci,disable-legacy=on"] });
  assert.equal(qemu.exitValue, 0x21, qemu.output + qemu.stderr);
  assert.equal(vmd.output, qemu.output);
  assert.equal(vmd.output, "virtio_rng: status 0xf\nvirtio_rng: 4096 bytes, not constant\n");
});

kvmTest(
  "hostile virtio driver: loops, buffers past RAM, wrong directions, long indirect tables, a read-only disk " +
    "and a jumping avail index fail as they should; good requests still succeed and the VMM stays up",
  async () => {
    const guest = await buildKitGuest("virtio_hostile");
    const dir = await Deno.makeTempDir();
    try {
      await patternImage(`${dir}/rw.img`);
      await patternImage(`${dir}/ro.img`);
      const before = await Deno.readFile(`${dir}/ro.img`);
      const vmd = await runKernel(guest.path, {
        disks: [{ path: `${dir}/rw.img` }, { path: `${dir}/ro.img`, readOnly: true }],
        rng: true,
        timeoutMs: 30_000,
      });
      assert.deepEqual(vmd.result.exit, { kind: "exit-port", status: 0x22 }, vmd.output);
      const good = "good read status 0 data ok";
      assert.deepEqual(vmd.output.split("\n"), [
        "blk: status 0xf",
        `loop: 2 done, bad head 0 len 0 status 0xff; ${good}`,
        `past-ram: 2 done, bad head 0 len 0 status 0xff; ${good}`,
        `oversized: 2 done, bad head 0 len 0 status 0xff; ${good}`,
        `direction: 2 done, bad head 0 len 0 status 0xff; ${good}`,
        `indirect-too-long: 2 done, bad head 0 len 0 status 0xff; ${good}`,
        "indirect: 1 done, status 0 data ok",
        "ro: status 0xf",
        "read-only write: 1 done, status 1",
        "avail jump: status 0x4f isr 0x3", // config change (NEEDS_RESET) + the queue bit never read
        "reset: status 0xf",
        "after reset: 1 done, status 0 data ok",
        "moved BAR: decode off reads 0xff, old address 0xff, new at 0xd0000000: 1 done, status 0 data ok",
        "rng: 1 done, 64 bytes",
        "hostile: done",
        "",
      ]);
      assert.deepEqual(await Deno.readFile(`${dir}/ro.img`), before);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
);

kvmTest(
  "virtio INTx: a completion raises the function's line through the I/O APIC, as under QEMU",
  async () => {
    const guest = await buildKitGuest("virtio_irq");
    const vmd = await runKernel(guest.path, { rng: true });
    assert.deepEqual(vmd.result.exit, { kind: "exit-port", status: 0x23 }, vmd.output);
    const qemu = await runUnderQemu(guest.path, {
      extraArgs: ["-device", "virtio-rng-pci,disable-legacy=on"],
    });
    assert.equal(qemu.exitValue, 0x23, qemu.output + qemu.stderr);
    assert.equal(vmd.output, qemu.output);
    assert.equal(
      vmd.output,
      "virtio_irq: pin 1, line routed\nvirtio_irq: interrupt, isr 0x1, used idx 1, len 64\n",
    );
  },
);

kvmTest(
  "virtio MSI-X: a completion arrives as the message the guest put in the table, as under QEMU",
  async () => {
    const guest = await buildKitGuest("virtio_msix");
    const vmd = await runKernel(guest.path, { rng: true });
    assert.deepEqual(vmd.result.exit, { kind: "exit-port", status: 0x25 }, vmd.output);
    const qemu = await runUnderQemu(guest.path, {
      extraArgs: ["-device", "virtio-rng-pci,disable-legacy=on"],
    });
    assert.equal(qemu.exitValue, 0x25, qemu.output + qemu.stderr);
    assert.equal(vmd.output, qemu.output);
    assert.equal(
      vmd.output,
      "virtio_msix: 2 vectors\nvirtio_msix: status 0xf, config vector 1, queue vector 0\n" +
        "virtio_msix: interrupt on vector 0x31 (1), used idx 1, len 64\n",
    );
  },
);
