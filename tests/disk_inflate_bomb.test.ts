/**
 * A hostile qcow2 image whose compressed cluster inflates to gigabytes (a ~4 MB deflate stream of 2 GiB of
 * zeros behind a 2 MiB cluster's descriptor) costs at most one cluster of memory: the read fails with a
 * clear {@linkcode Qcow2Error}, and the image's other clusters still read.
 */
import assert from "node:assert/strict";
import { constants, deflateRawSync } from "node:zlib";
import { createQcow2, openDisk, Qcow2Error } from "../mod.ts";
import { withTempDir } from "./disk_helpers.ts";

const CLUSTER_BITS = 21;
const CS = 1 << CLUSTER_BITS;
/** What the bomb inflates to: 2 GiB. */
const BOMB_MIB = 2048;
/** The most the read may grow the process's resident memory by. */
const RSS_BOUND = 64 << 20;

/**
 * A raw deflate stream of `mib` MiB of zeros: one full-flushed MiB repeated (a full flush resets the
 * compressor, so the copies are identical and independent); no final block, as qcow2 readers tolerate.
 */
function zeroBomb(mib: number): Uint8Array {
  const one = deflateRawSync(new Uint8Array(1 << 20), { level: 9, finishFlush: constants.Z_FULL_FLUSH });
  const out = new Uint8Array(one.length * mib);
  for (let i = 0; i < mib; i++) out.set(one, i * one.length);
  return out;
}

/**
 * Makes a 2 MiB-cluster image whose guest clusters 0 and 1 hold data (1s and 2s), then points cluster 0's
 * L2 entry at `stream` (appended to the file) as a compressed cluster.
 */
async function hostileImage(path: string, stream: Uint8Array): Promise<void> {
  await createQcow2(path, { size: 4 * CS, clusterBits: CLUSTER_BITS });
  const d = await openDisk(path);
  await d.write(0, new Uint8Array(CS).fill(1));
  await d.write(CS, new Uint8Array(CS).fill(2));
  await d.close();
  const f = await Deno.open(path, { read: true, write: true });
  try {
    const word = new Uint8Array(8);
    const view = new DataView(word.buffer);
    const u64 = async (at: number): Promise<number> => {
      await f.seek(at, Deno.SeekMode.Start);
      assert.equal(await f.read(word), 8);
      return Number(view.getBigUint64(0));
    };
    const l1 = await u64(40);
    const l2 = (await u64(l1)) & 0x00ff_ffff_ffff_fe00;
    assert.ok(l2 > 0, "cluster 0 has an L2 table");
    const end = (await f.stat()).size;
    const host = Math.ceil(end / 512) * 512;
    const sectors = Math.ceil(stream.length / 512);
    const offsetBits = 62n - BigInt(CLUSTER_BITS - 8);
    assert.ok(sectors - 1 < 2 ** (CLUSTER_BITS - 8), "the stream fits a compressed descriptor");
    view.setBigUint64(0, 1n << 62n | BigInt(sectors - 1) << offsetBits | BigInt(host));
    await f.seek(l2, Deno.SeekMode.Start);
    assert.equal(await f.write(word), 8);
    await f.seek(host, Deno.SeekMode.Start);
    const padded = new Uint8Array(sectors * 512);
    padded.set(stream);
    let done = 0;
    while (done < padded.length) done += await f.write(padded.subarray(done));
  } finally {
    f.close();
  }
}

Deno.test("inflate bomb: a compressed cluster inflating to 2 GiB costs at most a cluster, the read fails clearly", async () => {
  await withTempDir(async (dir) => {
    const path = `${dir}/bomb.qcow2`;
    const stream = zeroBomb(BOMB_MIB);
    await hostileImage(path, stream);
    const fileBytes = (await Deno.stat(path)).size;
    assert.ok(fileBytes < 24 << 20, `the hostile image is small (${fileBytes} bytes)`);
    const d = await openDisk(path, { readOnly: true });
    try {
      const before = Deno.memoryUsage().rss;
      const sector = new Uint8Array(512);
      await assert.rejects(() => d.read(0, sector), (e: unknown) => {
        assert.ok(e instanceof Qcow2Error, `expected a Qcow2Error, got ${e}`);
        assert.match(e.message, /inflates to more than the 2097152-byte cluster size/);
        assert.match(e.message, /bomb\.qcow2/);
        return true;
      });
      const grown = Deno.memoryUsage().rss - before;
      assert.ok(grown < RSS_BOUND, `RSS grew by ${grown >> 20} MiB on one 512-byte read`);
      // The failure is that request's only: the next cluster still reads, and so does a retry's error.
      await d.read(CS, sector);
      assert.ok(sector.every((b) => b === 2), "cluster 1 reads its data after the failed read");
      await assert.rejects(() => d.read(512, sector), Qcow2Error);
      assert.ok(Deno.memoryUsage().rss - before < RSS_BOUND, "a retry costs no more");
    } finally {
      await d.close();
    }
  });
});

Deno.test("a compressed cluster inflating to exactly one cluster still reads (the cap is not too tight)", async () => {
  await withTempDir(async (dir) => {
    const path = `${dir}/exact.qcow2`;
    const data = new Uint8Array(CS);
    for (let i = 0; i < CS; i++) data[i] = (i * 7) & 0xff;
    await hostileImage(path, deflateRawSync(data));
    const d = await openDisk(path, { readOnly: true });
    try {
      const buf = new Uint8Array(CS);
      await d.read(0, buf);
      assert.deepEqual(buf, data);
    } finally {
      await d.close();
    }
  });
});
