import assert from "node:assert/strict";
import { buildKitGuest } from "../examples/guests/kit/build.ts";
import { parseRunArgs } from "../src/cli/run.ts";
import { CLI_FLAGS, kvmTest, runCli } from "./kvm_support.ts";
import { patternImage } from "./virtio_support.ts";

// `vmd run` with disks needs no --allow-run: the flags below prove it.
const vmd = (...args: string[]) => runCli(args, CLI_FLAGS.filter((f) => f !== "--allow-run"));

Deno.test("vmd run: -d attaches read-write disks in order; -r is the one CD-ROM, as in vmctl", () => {
  const o = parseRunArgs(["-b", "k", "-d", "a.img", "-r", "b.iso", "-d", "qcow2:c"]);
  // a raw:/qcow2: prefix declares the format (binding), and is not part of the path
  assert.deepEqual(o.disks, [
    { path: "a.img", readOnly: false },
    { path: "c", format: "qcow2", readOnly: false },
  ]);
  assert.equal(o.cdrom, "b.iso");
  assert.throws(() => parseRunArgs(["-r", "a.iso", "-r", "b.iso"]), /-r given 2 times: a VM has one CD-ROM/);
});

kvmTest("`vmd run -d image` serves the disk to the guest and the write lands in the file", async () => {
  const guest = await buildKitGuest("virtio_blk");
  const dir = await Deno.makeTempDir();
  try {
    const img = `${dir}/disk.img`;
    await patternImage(img);
    const r = await vmd("run", "-m", "64M", "-b", guest.path, "-d", img);
    assert.equal(r.code, 0x20, r.stderr);
    assert.match(r.stdout, /^read: 8 done, 8 ok, 0 bad bytes$/m);
    const bytes = await Deno.readFile(img);
    assert.equal(bytes[100 * 512 + 1], 0xa5 ^ 1);
    const missing = await vmd("run", "-b", guest.path, "-d", `${dir}/nope.img`);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /nope\.img: no such disk image: check the path/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("`vmd policy` lists the virtio-blk and virtio-rng workers", async () => {
  const p = await vmd("policy");
  assert.equal(p.code, 0);
  assert.match(p.stdout, /^virtio-blk\s+worker/m);
  assert.match(p.stdout, /^virtio-rng\s+worker/m);
});
