/**
 * The disk layer inside a Worker with the permissions a virtio-blk device worker gets: read (and write, for a
 * writable disk) on its image folder only — no env, run, net or ffi. Compressed clusters (node:zlib) included.
 */
import assert from "node:assert/strict";
import { assertCheckClean, qemuImg, withTempDir } from "./disk_helpers.ts";

const WORKER = new URL("./fixtures/disk/disk_worker.ts", import.meta.url).href;

type Reply = { ok: true; first: number; last: number } | { ok: false; error: string };

function inWorker(path: string, write: boolean, read: string[], writable: string[] | false): Promise<Reply> {
  const worker = new Worker(WORKER, {
    type: "module",
    deno: {
      permissions: { read, write: writable, env: false, run: false, net: false, ffi: false, sys: false },
    },
  });
  return new Promise<Reply>((resolve, reject) => {
    worker.onmessage = (e: MessageEvent<Reply>) => {
      worker.terminate();
      resolve(e.data);
    };
    worker.onerror = (e) => {
      worker.terminate();
      reject(e);
    };
    worker.postMessage({ path, write });
  });
}

Deno.test("device-worker permissions: read-only disk with read only, writable child with read+write", async () => {
  await withTempDir(async (dir) => {
    Deno.writeFileSync(`${dir}/text.raw`, new TextEncoder().encode("a".repeat(3 << 20)));
    await qemuImg("convert", "-c", "-O", "qcow2", `${dir}/text.raw`, `${dir}/base.qcow2`);
    await qemuImg("create", "-q", "-f", "qcow2", "-b", "base.qcow2", "-F", "qcow2", `${dir}/child.qcow2`);

    const ro = await inWorker(`${dir}/base.qcow2`, false, [dir], false);
    assert.deepEqual(ro, { ok: true, first: 97, last: 97 });

    const noWrite = await inWorker(`${dir}/child.qcow2`, true, [dir], false);
    assert.equal(noWrite.ok, false, "opening for writing without write permission must fail");

    const rw = await inWorker(`${dir}/child.qcow2`, true, [dir], [`${dir}/child.qcow2`]);
    assert.deepEqual(rw, { ok: true, first: 0x77, last: 0x77 });
    await assertCheckClean(`${dir}/child.qcow2`);
    await assertCheckClean(`${dir}/base.qcow2`);
  });
});
