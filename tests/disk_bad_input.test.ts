/**
 * Bad images get clear, typed errors and are never modified: truncated headers, tables and clusters past the
 * end of the file, unsupported refcount widths, refused features, looping, missing and too deep backing
 * chains; and a fuzz test that flips bytes of a valid image's metadata and only ever sees typed errors.
 */
import assert from "node:assert/strict";
import { createImage, createQcow2, DiskError, openDisk, Qcow2Error } from "../mod.ts";
import { qemuImg, Rng, withTempDir } from "./disk_helpers.ts";

const CS = 65536;
/** Mutated images the fuzz test tries. */
const ITERATIONS = 600;

/** A small v3 image of ours with data in its first and fifth clusters; returns its path. */
async function sampleImage(dir: string, name = "good.qcow2"): Promise<string> {
  const path = `${dir}/${name}`;
  await createQcow2(path, { size: 2 << 20 });
  const d = await openDisk(path);
  await d.write(0, new Uint8Array(CS).fill(1));
  await d.write(5 * CS + 100, new Uint8Array(3000).fill(2));
  await d.close();
  return path;
}

/** Big-endian u64 at `at` of `bytes`. */
function getU64(bytes: Uint8Array, at: number): number {
  return Number(new DataView(bytes.buffer).getBigUint64(at));
}

function setU64(bytes: Uint8Array, at: number, value: bigint): void {
  new DataView(bytes.buffer).setBigUint64(at, value);
}

/** Opens `path` for writing and reading all of it; asserts a {@linkcode DiskError} matching `re`, file untouched. */
async function assertRefused(path: string, re: RegExp): Promise<void> {
  const before = Deno.readFileSync(path);
  const attempt = async () => {
    const d = await openDisk(path);
    try {
      const buf = new Uint8Array(d.size);
      await d.read(0, buf);
    } finally {
      await d.close().catch(() => {});
    }
  };
  await assert.rejects(attempt, (e: unknown) => {
    assert.ok(e instanceof DiskError, `expected a DiskError, got ${e}`);
    assert.match((e as Error).message, re);
    assert.ok(
      (e as Error).message.includes(path.slice(path.lastIndexOf("/") + 1)),
      "the message names the file",
    );
    return true;
  });
  assert.deepEqual(Deno.readFileSync(path), before, "a refused image must not be modified");
}

/** Rewrites `path` through `edit`. */
function patch(path: string, edit: (bytes: Uint8Array) => void): void {
  const bytes = Deno.readFileSync(path);
  edit(bytes);
  Deno.writeFileSync(path, bytes);
}

Deno.test("truncated header, L1 past the end, cluster past the end: clear errors, nothing written", async () => {
  await withTempDir(async (dir) => {
    const good = await sampleImage(dir);
    const whole = Deno.readFileSync(good);

    Deno.writeFileSync(`${dir}/trunc.qcow2`, whole.subarray(0, 50));
    await assertRefused(`${dir}/trunc.qcow2`, /truncated header/);

    Deno.writeFileSync(`${dir}/l1.qcow2`, whole);
    patch(`${dir}/l1.qcow2`, (b) => setU64(b, 40, BigInt(1000 * CS)));
    await assertRefused(`${dir}/l1.qcow2`, /L1 table .*past the end/);

    Deno.writeFileSync(`${dir}/cl.qcow2`, whole);
    patch(`${dir}/cl.qcow2`, (b) => {
      const l2 = getU64(b, getU64(b, 40)) & 0x00fffffffffffe00;
      setU64(b, l2, 0x8000000000000000n | BigInt(4000 * CS));
    });
    await assertRefused(`${dir}/cl.qcow2`, /host offset \d+.*past the end/);

    Deno.writeFileSync(`${dir}/l2.qcow2`, whole);
    patch(`${dir}/l2.qcow2`, (b) => setU64(b, getU64(b, 40), 0x8000000000000000n | BigInt(3000 * CS)));
    await assertRefused(`${dir}/l2.qcow2`, /L1 entry 0 points to offset/);

    Deno.writeFileSync(`${dir}/rt.qcow2`, whole);
    patch(`${dir}/rt.qcow2`, (b) => setU64(b, 48, BigInt(5000 * CS)));
    await assertRefused(`${dir}/rt.qcow2`, /refcount table .*past the end/);
  });
});

Deno.test("refcount widths other than 16 bits (overflow at other widths) are refused, not misread", async () => {
  await withTempDir(async (dir) => {
    for (const bits of [1, 8, 64]) {
      const img = `${dir}/r${bits}.qcow2`;
      await qemuImg("create", "-q", "-f", "qcow2", "-o", `refcount_bits=${bits}`, img, "1M");
      await assertRefused(img, new RegExp(`refcount_order ${Math.log2(bits)} .*only 16-bit`));
    }
  });
});

Deno.test("dirty bit, corrupt bit, unknown incompatible feature, encryption, external data file: refused by name", async () => {
  await withTempDir(async (dir) => {
    const whole = Deno.readFileSync(await sampleImage(dir));
    const cases: [string, (b: Uint8Array) => void, RegExp][] = [
      ["dirty", (b) => setU64(b, 72, 1n), /feature bit 0 \(dirty bit/],
      ["corrupt", (b) => setU64(b, 72, 2n), /feature bit 1 \(corrupt bit/],
      ["datafile", (b) => setU64(b, 72, 4n), /feature bit 2 \(external data file/],
      ["unknown", (b) => setU64(b, 72, 1n << 9n), /incompatible feature bit 9 \(unknown\)/],
      ["crypt", (b) => new DataView(b.buffer).setUint32(32, 1), /encryption/],
      ["luks", (b) => new DataView(b.buffer).setUint32(32, 2), /encryption/],
    ];
    for (const [name, edit, re] of cases) {
      Deno.writeFileSync(`${dir}/${name}.qcow2`, whole);
      patch(`${dir}/${name}.qcow2`, edit);
      await assertRefused(`${dir}/${name}.qcow2`, re);
    }
    const luks = `${dir}/luks.qcow2`;
    // qemu-img times its PBKDF iterations against CPU time; on a busy 2-core machine it sometimes measures
    // nothing and fails with "Unable to get accurate CPU usage". That is qemu-img's flake, not ours: retry.
    for (let attempt = 1;; attempt++) {
      try {
        await qemuImg(
          "create",
          "-q",
          "--object",
          "secret,id=s0,data=pw",
          "-f",
          "qcow2",
          "-o",
          "encrypt.format=luks,encrypt.key-secret=s0,encrypt.iter-time=250",
          luks,
          "1M",
        );
        break;
      } catch (e) {
        if (attempt >= 5 || !String(e).includes("Unable to get accurate CPU usage")) throw e;
        await Deno.remove(luks).catch(() => {});
      }
    }
    await assertRefused(luks, /encrypt/);
  });
});

Deno.test("backing chains: loop, missing file, deeper than 4: clear errors; 4 deep works", async () => {
  await withTempDir(async (dir) => {
    await createImage(`${dir}/a.qcow2`, "qcow2", {
      size: 1 << 20,
      backing: { name: "b.qcow2", format: "qcow2" },
    });
    await createImage(`${dir}/b.qcow2`, "qcow2", {
      size: 1 << 20,
      backing: { name: "a.qcow2", format: "qcow2" },
    });
    await assertRefused(`${dir}/a.qcow2`, /backing chain loops/);

    await createImage(`${dir}/orphan.qcow2`, "qcow2", {
      size: 1 << 20,
      backing: { name: "gone.qcow2", format: "qcow2" },
    });
    await assertRefused(`${dir}/orphan.qcow2`, /gone\.qcow2: backing file of .*orphan\.qcow2 not found/);

    await createImage(`${dir}/l0.raw`, "raw", { size: 1 << 20 });
    for (let i = 1; i <= 5; i++) {
      const name = i === 1 ? "l0.raw" : `l${i - 1}.qcow2`;
      await createImage(`${dir}/l${i}.qcow2`, "qcow2", {
        size: 1 << 20,
        backing: { name, format: i === 1 ? "raw" : "qcow2" },
      });
    }
    const ok = await openDisk(`${dir}/l4.qcow2`); // l4 -> l3 -> l2 -> l1 -> l0: 4 backing images
    await ok.close();
    await assertRefused(`${dir}/l5.qcow2`, /deeper than 4/);
  });
});

Deno.test("fuzz: flipped metadata bytes only ever produce typed errors", async () => {
  await withTempDir(async (dir) => {
    const good = await sampleImage(dir);
    // A compressed qemu image as a second seed, for the compressed-cluster paths.
    const raw = `${dir}/text.raw`;
    Deno.writeFileSync(raw, new TextEncoder().encode("compressible ".repeat(100_000)));
    await qemuImg("convert", "-c", "-O", "qcow2", raw, `${dir}/comp.qcow2`);
    const seeds = [Deno.readFileSync(good), Deno.readFileSync(`${dir}/comp.qcow2`)];
    const rng = new Rng(2024);
    let typed = 0;
    for (let iter = 0; iter < ITERATIONS; iter++) {
      const bytes = seeds[iter % 2].slice();
      // Metadata lives in the first clusters (header, refcount table/block, L1) and the L2 table(s).
      const regions = [[0, 112], [CS, CS + 64], [2 * CS, 2 * CS + 64], [3 * CS, 3 * CS + 64], [
        0,
        bytes.length,
      ]];
      for (let flips = 1 + rng.int(4); flips > 0; flips--) {
        const [lo, hi] = regions[rng.int(regions.length)];
        const at = Math.min(bytes.length - 1, lo + rng.int(hi - lo));
        bytes[at] ^= 1 << rng.int(8);
      }
      const path = `${dir}/fuzz.qcow2`;
      Deno.writeFileSync(path, bytes);
      try {
        const d = await openDisk(`qcow2:${path}`);
        try {
          const buf = new Uint8Array(Math.min(d.size, 4 << 20));
          await d.read(0, buf);
          await d.write(rng.int(buf.length - 5000), rng.bytes(5000));
          await d.flush();
        } finally {
          await d.close().catch((e) => {
            if (!(e instanceof DiskError)) throw e;
          });
        }
      } catch (e) {
        if (!(e instanceof DiskError)) throw new Error(`iteration ${iter}: untyped error ${e}`, { cause: e });
        typed++;
      }
    }
    assert.ok(
      typed > ITERATIONS / 10,
      `only ${typed} of ${ITERATIONS} mutations were refused: the fuzzer is not reaching metadata`,
    );
  });
});

Deno.test("Qcow2Error is a DiskError and names the image", async () => {
  await withTempDir(async (dir) => {
    Deno.writeFileSync(`${dir}/x.qcow2`, new Uint8Array(100));
    await assert.rejects(
      openDisk(`${dir}/x.qcow2`),
      (e: unknown) => e instanceof Qcow2Error && e instanceof DiskError,
    );
  });
});
