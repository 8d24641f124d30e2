/**
 * The LZ4 legacy-frame decoder vmd uses for a bzImage's payload on PVM: hand-made frames (literals, an
 * overlapping match, hostile lengths and offsets), and Debian's bzImage, which must decompress to exactly the
 * vmlinux scripts/prepare_guests.ts extracts with the lz4 tool.
 */
import assert from "node:assert/strict";
import { isLz4Legacy, Lz4Error, lz4LegacyDecompress } from "../src/boot/lz4_legacy.ts";
import { pvhKernelInBzImage } from "../src/boot/bzimage_payload.ts";
import { prepareGuests } from "../scripts/prepare_guests.ts";

/** A legacy frame of `blocks`, optionally followed by the kernel build's 4-byte size. */
function frame(blocks: number[][], trailer?: number): Uint8Array {
  const out = [0x02, 0x21, 0x4c, 0x18];
  for (const b of blocks) out.push(b.length & 255, (b.length >> 8) & 255, 0, 0, ...b);
  if (trailer !== undefined) out.push(trailer & 255, (trailer >> 8) & 255, 0, 0);
  return Uint8Array.from(out);
}
const text = (b: Uint8Array) => new TextDecoder().decode(b);

Deno.test("lz4: literals, an overlapping match, a repeated magic and the appended size", () => {
  // "ab" then a match at offset 2 of length 6: "abababab"; then a last sequence of literals "!"
  const block = [0x22, 0x61, 0x62, 0x02, 0x00, 0x10, 0x21];
  const f = frame([block], 9);
  assert.ok(isLz4Legacy(f));
  assert.equal(text(lz4LegacyDecompress(f, 1 << 20)), "abababab!");
  const twice = Uint8Array.from([...frame([block]), 0x02, 0x21, 0x4c, 0x18, ...frame([block]).subarray(4)]);
  assert.equal(text(lz4LegacyDecompress(twice, 1 << 20)), "abababab!abababab!");
});

Deno.test("lz4: hostile frames fail with Lz4Error, never read or write out of bounds", () => {
  const bad: [string, Uint8Array][] = [
    ["offset before the output", frame([[0x10, 0x61, 0x05, 0x00]])],
    ["offset zero", frame([[0x10, 0x61, 0x00, 0x00]])],
    ["literals past the block", frame([[0x50, 0x61]])],
    ["length byte missing", frame([[0xf0]])],
    ["block past the input", Uint8Array.from([0x02, 0x21, 0x4c, 0x18, 0xff, 0xff, 0, 0, 1, 2, 3, 4, 5])],
    ["no magic", Uint8Array.from([1, 2, 3, 4, 5, 6])],
  ];
  for (const [why, f] of bad) assert.throws(() => lz4LegacyDecompress(f, 1 << 20), Lz4Error, why);
  // a match that would expand past the caller's limit
  const long = frame([[0x1f, 0x61, 0x01, 0x00, 0xff, 0xff, 0xff, 0x10]]);
  assert.throws(() => lz4LegacyDecompress(long, 100), Lz4Error);
  assert.equal(lz4LegacyDecompress(long, 1 << 20).length, 1 + 15 + 4 + 255 * 3 + 0x10);
});

Deno.test("lz4: Debian's bzImage payload decompresses to the vmlinux the lz4 tool extracts", async () => {
  const g = await prepareGuests({ log: () => {} });
  const elf = pvhKernelInBzImage(await Deno.readFile(g.bzImage), g.bzImage, 512 << 20);
  const want = await Deno.readFile(g.vmlinux);
  assert.ok(elf !== undefined, "an ELF with a PVH note");
  assert.equal(elf.length, want.length);
  assert.ok(elf.every((b, i) => b === want[i]), "byte for byte");
});
