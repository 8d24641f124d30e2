import assert from "node:assert/strict";
import { buildKitGuest } from "../examples/guests/kit/build.ts";
import { createImage } from "../src/disk/create.ts";
import { formatPolicy, permissionsFor } from "../src/privsep/permission_table.ts";
import { resolveLibcPath } from "../ffi/libc.ts";
import { kvmTest, runKernel } from "./kvm_support.ts";
import { DENIED, patternImage } from "./virtio_support.ts";

Deno.test("the permission table: virtio-blk gets libc for its descriptors and no path; virtio-rng gets nothing", () => {
  const libcPath = resolveLibcPath();
  const none = { read: false, write: false, net: false, env: false, run: false, ffi: false, sys: false };
  assert.deepEqual(permissionsFor("virtio-rng", { libcPath }), { ...none, import: false });
  assert.deepEqual(permissionsFor("virtio-blk", { libcPath }), { ...none, import: false, ffi: [libcPath] });
  const text = formatPolicy({ libcPath });
  assert.match(text, /^virtio-blk\s+worker\s+one per disk/m);
  assert.match(text, /ffi\s+\S+libc\S+\s+pread\/pwrite\/fdatasync on the descriptors/);
  assert.match(text, /^virtio-rng\s+worker\s+entropy/m);
  assert.deepEqual(permissionsFor("virtio-net", { libcPath }), { ...none, import: false, ffi: [libcPath] });
  assert.match(text, /^virtio-net\s+worker\s+one per NIC/m);
  assert.match(text, /ffi\s+\S+libc\S+\s+read\/write\/poll on its tap fd/);
  assert.deepEqual(permissionsFor("virtio-scsi", { libcPath }), { ...none, import: false, ffi: [libcPath] });
  assert.match(text, /^virtio-scsi\s+worker\s+one per CD-ROM/m);
  assert.match(text, /ffi\s+\S+libc\S+\s+pread on the descriptor of its ISO image/);
});

kvmTest(
  "virtio-blk and virtio-rng workers of a real VM cannot read other files, write elsewhere, dlopen, reach " +
    "the network, run programs or read env; the qcow2 overlay's worker still reads through its backing image",
  async () => {
    const guest = await buildKitGuest("virtio_blk");
    const dir = await Deno.makeTempDir();
    try {
      const base = `${dir}/base.img`;
      const overlay = `${dir}/overlay.qcow2`;
      const secret = `${dir}/secret.txt`;
      await patternImage(base);
      await createImage(overlay, "qcow2", { size: 1 << 20, backing: { name: "base.img", format: "raw" } });
      await Deno.writeTextFile(secret, "not for device workers\n");
      const baseBefore = await Deno.readFile(base);
      const probes: Record<string, unknown> = {};
      const run = await runKernel(guest.path, {
        disks: [{ path: overlay }],
        rng: true,
        timeoutMs: 30_000,
        beforeRun: async (vm) => {
          for (const d of vm.virtioDevices) probes[d.label] = await d.probe(secret);
        },
      });
      assert.deepEqual(run.result.exit, { kind: "exit-port", status: 0x20 }, run.output);
      assert.match(run.output, /^read: 8 done, 8 ok, 0 bad bytes$/m);
      assert.match(run.output, /^read back: 2 done, status 0, same/m);
      assert.deepEqual(probes, { "virtio-blk0": DENIED, "virtio-rng": DENIED });
      assert.deepEqual(await Deno.readFile(base), baseBefore, "the backing image is untouched");
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
);
