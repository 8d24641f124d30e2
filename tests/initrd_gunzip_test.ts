/**
 * vmd's inflating of a gzip initramfs (on PVM): a gzip cpio archive comes out inflated; anything else, a
 * corrupt stream, one that is not a cpio archive or one that inflates past the limit, comes out unchanged.
 */
import assert from "node:assert/strict";
import { gzipSync } from "node:zlib";
import { inflateInitrd, isGzip } from "../src/boot/initrd_gunzip.ts";
import { prepareGuests } from "../scripts/prepare_guests.ts";

Deno.test("a gzip cpio archive is inflated; other bytes, corrupt streams and oversized ones are kept", async () => {
  const cpio = new TextEncoder().encode("070701" + "0".repeat(4000));
  const gz = new Uint8Array(gzipSync(cpio));
  assert.ok(isGzip(gz));
  assert.deepEqual(await inflateInitrd(gz, 1 << 20), cpio);
  assert.equal(await inflateInitrd(cpio, 1 << 20), cpio, "not gzip: unchanged");
  const corrupt = gz.slice();
  corrupt[20] ^= 0xff;
  assert.equal(await inflateInitrd(corrupt, 1 << 20), corrupt, "corrupt: unchanged");
  assert.equal(await inflateInitrd(gz, 1000), gz, "past the limit: unchanged");
  const notCpio = new Uint8Array(gzipSync(new TextEncoder().encode("hello, world")));
  assert.equal(await inflateInitrd(notCpio, 1 << 20), notCpio, "not a cpio archive: unchanged");
});

Deno.test("the test initramfs inflates to a newc cpio archive", async () => {
  const g = await prepareGuests({ log: () => {} });
  const out = await inflateInitrd(await Deno.readFile(g.initrd), 256 << 20);
  assert.equal(new TextDecoder().decode(out.subarray(0, 6)), "070701");
});
