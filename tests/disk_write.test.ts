/**
 * Writes through our qcow2 backend, checked by the reference implementation: `qemu-img check` finds no
 * errors or leaks, and `qemu-img compare` finds the image identical to a raw file written the same way.
 */
import assert from "node:assert/strict";
import { createImage, createQcow2, type Disk, openDisk, Qcow2Error } from "../mod.ts";
import { assertCheckClean, qemuImg, qemuIo, Rng, run, withTempDir } from "./disk_helpers.ts";

/** Applies `count` random writes and zeroings to `disk` and, with plain file writes, to the raw `reference`. */
async function randomOps(disk: Disk, reference: string, seed: number, count: number): Promise<void> {
  const rng = new Rng(seed);
  const ref = Deno.openSync(reference, { read: true, write: true });
  try {
    for (let i = 0; i < count; i++) {
      const big = rng.int(4) === 0;
      const len = 1 + rng.int(big ? 400_000 : 9000);
      const off = rng.int(disk.size - len);
      const zeroing = rng.int(10) === 0;
      const data = zeroing || rng.int(8) === 0 ? new Uint8Array(len) : rng.bytes(len);
      if (zeroing) await disk.writeZeroes(off, len);
      else await disk.write(off, data);
      ref.seekSync(off, Deno.SeekMode.Start);
      for (let done = 0; done < len;) done += ref.writeSync(data.subarray(done));
      if (rng.int(16) === 0) await disk.flush();
    }
  } finally {
    ref.close();
  }
}

/** Asserts that `qemu-img compare` says `a` and `b` have identical contents. */
async function assertSameContents(a: string, b: string): Promise<void> {
  const r = await run("qemu-img", ["compare", a, b]);
  assert.equal(r.code, 0, `qemu-img compare ${a} ${b}: ${r.stdout}${r.stderr}`);
}

const layouts: { version: 2 | 3; clusterBits: number }[] = [
  { version: 3, clusterBits: 16 },
  { version: 2, clusterBits: 16 },
  { version: 3, clusterBits: 12 },
];
for (const { version, clusterBits } of layouts) {
  Deno.test(`our qcow2 v${version}, ${2 ** clusterBits}-byte clusters: random writes pass check and compare`, async () => {
    await withTempDir(async (dir) => {
      const img = `${dir}/ours.qcow2`;
      const ref = `${dir}/ref.raw`;
      const size = (24 << 20) + 4096 * 3; // not a whole number of clusters
      await createQcow2(img, { size, version, clusterBits });
      await assertCheckClean(img);
      await createImage(ref, "raw", { size });
      const disk = await openDisk(img);
      await randomOps(disk, ref, clusterBits * 100 + version, 300);
      await disk.close();
      await assertCheckClean(img);
      await assertSameContents(img, ref);
      // Reopened, it still reads the same.
      const again = await openDisk(img, { readOnly: true });
      const buf = new Uint8Array(size);
      await again.read(0, buf);
      await again.close();
      assert.deepEqual(buf, Deno.readFileSync(ref));
    });
  });
}

Deno.test("writes over qemu-made compressed, zero and v2 clusters: check clean, compare identical", async () => {
  await withTempDir(async (dir) => {
    const src = `${dir}/src.raw`;
    const rng = new Rng(5);
    const data = new Uint8Array(8 << 20);
    for (let off = 0; off < data.length; off += 1 << 16) {
      if (rng.int(3) > 0) {
        data.set(new TextEncoder().encode(`text ${off} `.repeat(8000)).subarray(0, 1 << 16), off);
      }
    }
    Deno.writeFileSync(src, data);
    for (
      const [name, args] of [["c3", ["-c", "-o", "compat=1.1"]], ["c2", ["-c", "-o", "compat=0.10"]]] as const
    ) {
      const img = `${dir}/${name}.qcow2`;
      const ref = `${dir}/${name}.raw`;
      await qemuImg("convert", "-O", "qcow2", ...args, src, img);
      if (name === "c3") await qemuIo(img, "write -z 1M 256k", "write -z -u 3M 64k");
      await qemuImg("convert", "-O", "raw", img, ref);
      const disk = await openDisk(img);
      await randomOps(disk, ref, name === "c3" ? 1 : 2, 200);
      await disk.close();
      await assertCheckClean(img);
      await assertSameContents(img, ref);
    }
  });
});

Deno.test("child of a backing image: copy-on-write, base untouched, qemu agrees", async () => {
  await withTempDir(async (dir) => {
    const rng = new Rng(9);
    Deno.writeFileSync(`${dir}/base.raw`, rng.bytes(5 << 20));
    await qemuImg("convert", "-O", "qcow2", `${dir}/base.raw`, `${dir}/base.qcow2`);
    const baseBefore = Deno.readFileSync(`${dir}/base.qcow2`);
    await createImage(`${dir}/child.qcow2`, "qcow2", {
      size: 5 << 20,
      backing: { name: "base.qcow2", format: "qcow2" },
    });
    Deno.copyFileSync(`${dir}/base.raw`, `${dir}/ref.raw`);
    const disk = await openDisk(`${dir}/child.qcow2`);
    await randomOps(disk, `${dir}/ref.raw`, 10, 150);
    await disk.discard(0, 5 << 20); // with a backing file, v3 discards become zero clusters
    await disk.close();
    Deno.writeFileSync(`${dir}/ref.raw`, new Uint8Array(5 << 20));
    await assertCheckClean(`${dir}/child.qcow2`);
    await assertSameContents(`${dir}/child.qcow2`, `${dir}/ref.raw`);
    assert.deepEqual(Deno.readFileSync(`${dir}/base.qcow2`), baseBefore);
    const info = JSON.parse(await qemuImg("info", "--output=json", `${dir}/child.qcow2`));
    assert.equal(info["backing-filename"], "base.qcow2");
    assert.equal(info["backing-filename-format"], "qcow2");
  });
});

Deno.test("copy-on-write keeps the backing data around a partial write", async () => {
  await withTempDir(async (dir) => {
    const base = new Rng(4).bytes(1 << 20);
    Deno.writeFileSync(`${dir}/base.raw`, base);
    await createImage(`${dir}/c.qcow2`, "qcow2", {
      size: 1 << 20,
      backing: { name: "base.raw", format: "raw" },
    });
    const disk = await openDisk(`${dir}/c.qcow2`);
    await disk.write(70_000, new Uint8Array([1, 2, 3]));
    await disk.flush();
    const back = new Uint8Array(1 << 20);
    await disk.read(0, back);
    await disk.close();
    const want = base.slice();
    want.set([1, 2, 3], 70_000);
    assert.deepEqual(back, want);
    const alloc = JSON.parse(await qemuImg("map", "--output=json", `${dir}/c.qcow2`)) as { depth: number }[];
    assert.ok(
      alloc.some((e) => e.depth === 0) && alloc.some((e) => e.depth === 1),
      "one cluster in the child only",
    );
  });
});

Deno.test("1 TiB sparse image: cheap to create, write at both ends, check clean", async () => {
  await withTempDir(async (dir) => {
    const img = `${dir}/big.qcow2`;
    const t0 = performance.now();
    await createQcow2(img, { size: 2 ** 40 });
    assert.ok(Deno.statSync(img).size < 1 << 20, "a fresh 1 TiB image takes under 1 MiB");
    const disk = await openDisk(img);
    await disk.write(0, new Uint8Array(4096).fill(0xaa));
    await disk.write(2 ** 40 - 4096, new Uint8Array(4096).fill(0xbb));
    const st = await disk.blockStatus(1 << 20, 2 ** 40 - (2 << 20));
    assert.deepEqual(st, { kind: "zero", length: 2 ** 40 - (2 << 20) });
    await disk.close();
    assert.ok(performance.now() - t0 < 5000);
    assert.ok(Deno.statSync(img).size < 2 << 20, "two written clusters cost a few clusters of file");
    await assertCheckClean(img);
    await qemuIo(img, "read -P 0xaa 0 4k", `read -P 0xbb ${2 ** 40 - 4096} 4k`, "read -P 0 1M 1M");
  });
});

Deno.test("read-only images refuse writes; out-of-range requests are refused", async () => {
  await withTempDir(async (dir) => {
    await createQcow2(`${dir}/a.qcow2`, { size: 1 << 20 });
    const ro = await openDisk(`${dir}/a.qcow2`, { readOnly: true });
    await assert.rejects(ro.write(0, new Uint8Array(1)), Qcow2Error);
    await assert.rejects(ro.read(1 << 20, new Uint8Array(1)), /past the end/);
    await ro.close();
  });
});

Deno.test("a qemu-made image with 512-byte clusters outgrows its refcount table: the table grows, qemu agrees", async () => {
  await withTempDir(async (dir) => {
    const img = `${dir}/small.qcow2`;
    const ref = `${dir}/small.raw`;
    await qemuImg("create", "-q", "-f", "qcow2", "-o", "cluster_size=512", img, "40M");
    const before = JSON.parse(await qemuImg("info", "--output=json", img));
    await createImage(ref, "raw", { size: 40 << 20 });
    const disk = await openDisk(img);
    const rng = new Rng(8);
    const refFile = Deno.openSync(ref, { write: true });
    for (let off = 0; off < 36 << 20; off += 1 << 20) { // 288 refcount blocks: more than are cached
      const data = rng.bytes(1 << 20);
      await disk.write(off, data);
      refFile.seekSync(off, Deno.SeekMode.Start);
      for (let done = 0; done < data.length;) done += refFile.writeSync(data.subarray(done));
    }
    refFile.close();
    await randomOps(disk, ref, 12, 60);
    await disk.close();
    await assertCheckClean(img);
    await assertSameContents(img, ref);
    assert.equal(before["cluster-size"], 512);
    const header = new DataView(Deno.readFileSync(img).buffer);
    assert.ok(header.getUint32(56) > 1, "the refcount table grew beyond its first cluster");
  });
});

Deno.test("discard and writeZeroes release clusters, which are reused only after a flush", async () => {
  await withTempDir(async (dir) => {
    for (const version of [2, 3] as const) {
      const img = `${dir}/d${version}.qcow2`;
      await createQcow2(img, { size: 8 << 20, version });
      const disk = await openDisk(img);
      await disk.write(0, new Uint8Array(4 << 20).fill(9));
      await disk.flush();
      const full = JSON.parse(await qemuImg("check", "--output=json", img))["allocated-clusters"];
      await disk.discard(0, 2 << 20);
      await disk.writeZeroes(2 << 20, (1 << 20) + 100); // 16 whole clusters and a partial one
      await disk.write(6 << 20, new Uint8Array(1 << 20).fill(3)); // must not reuse the freed clusters yet
      await disk.flush();
      const back = new Uint8Array(8 << 20);
      await disk.read(0, back);
      assert.ok(back.subarray(0, (3 << 20) + 100).every((b) => b === 0));
      assert.ok(back.subarray((3 << 20) + 100, 4 << 20).every((b) => b === 9));
      assert.ok(back.subarray(6 << 20, 7 << 20).every((b) => b === 3));
      await disk.write(5 << 20, new Uint8Array(64 << 10).fill(4)); // now freed clusters are reusable
      await disk.close();
      await assertCheckClean(img);
      const after = JSON.parse(await qemuImg("check", "--output=json", img));
      assert.ok(after["allocated-clusters"] < full, `v${version}: discarded clusters were released`);
      const map = JSON.parse(await qemuImg("map", "--output=json", img)) as {
        start: number;
        offset?: number;
      }[];
      const hostOf = (guest: number) => map.find((e) => e.start === guest)?.offset ?? Infinity;
      assert.ok(
        hostOf(5 << 20) < hostOf(6 << 20),
        `v${version}: the write after the flush reused a freed cluster`,
      );
      assert.ok(
        hostOf(6 << 20) > 4 << 20,
        `v${version}: the write before the flush did not reuse a freed cluster`,
      );
      await qemuIo(img, "read -P 0 0 3M", "read -P 9 3145828 1048476", "read -P 4 5M 64k", "read -P 3 6M 1M");
    }
  });
});
