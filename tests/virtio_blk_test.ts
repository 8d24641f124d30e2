import assert from "node:assert/strict";
import { GuestMemory } from "../src/memory/guest_memory.ts";
import { openDisk } from "../src/disk/open.ts";
import { BLK_F, BLK_S, BLK_T, BlkBackend, parseBlkRequest } from "../src/virtio/blk.ts";
import { Chain } from "../src/virtio/virtqueue.ts";
import { patternByte, patternImage } from "./virtio_support.ts";

const RAM = 1 << 20;
const HDR = 0x1000;
const STATUS = 0x2000;

function memory(): GuestMemory {
  return new GuestMemory({ sab: new SharedArrayBuffer(RAM), offset: 0, regions: [{ gpa: 0, size: RAM }] });
}

/** A chain over `bufs` (guest address, length, device-writable), as the virtqueue would resolve it. */
function chainOf(bufs: [number, number, boolean][]): Chain {
  const c = new Chain(16);
  for (const [gpa, len, w] of bufs) {
    c.at[c.count] = gpa;
    c.len[c.count] = len;
    c.count++;
    if (w) c.writeBytes += len;
    else {
      c.readable++;
      c.readBytes += len;
    }
  }
  return c;
}

function header(mem: GuestMemory, type: number, sector: number, at = HDR): void {
  mem.writeU32(at, type);
  mem.writeU32(at + 4, 0);
  mem.writeU64(at + 8, BigInt(sector));
}

async function withDisk(
  readOnly: boolean,
  f: (b: BlkBackend, mem: GuestMemory, path: string) => Promise<void>,
): Promise<void> {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/d.img`;
    await patternImage(path, 64 * 1024);
    const disk = await openDisk(path, { readOnly });
    try {
      await f(new BlkBackend(disk, { id: "serial-123" }), memory(), path);
    } finally {
      await disk.close();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("virtio-blk parse: status byte, data length and rejections, without touching memory", () => {
  const mem = memory();
  const h = new Uint8Array(16);
  header(mem, BLK_T.IN, 7);
  let r = parseBlkRequest(chainOf([[HDR, 16, false], [0x3000, 1024, true], [STATUS, 1, true]]), mem, h)!;
  assert.deepEqual(r, { type: BLK_T.IN, sector: 7, dataBytes: 1024, statusAt: STATUS, reject: undefined });
  // header split over two buffers; data and status in one writable buffer
  mem.writeU32(0x5000, BLK_T.IN);
  mem.writeU32(0x5004, 0);
  mem.writeU64(0x6000, 3n);
  r = parseBlkRequest(chainOf([[0x5000, 8, false], [0x6000, 8, false], [0x3000, 513, true]]), mem, h)!;
  assert.equal(r.sector, 3);
  assert.equal(r.dataBytes, 512);
  assert.equal(r.statusAt, 0x3000 + 512);
  assert.equal(parseBlkRequest(chainOf([[HDR, 16, false]]), mem, h), undefined); // no status byte
  r = parseBlkRequest(chainOf([[HDR, 8, false], [STATUS, 1, true]]), mem, h)!; // short header
  assert.equal(r.reject, BLK_S.IOERR);
  header(mem, 99, 0);
  r = parseBlkRequest(chainOf([[HDR, 16, false], [STATUS, 1, true]]), mem, h)!;
  assert.equal(r.reject, BLK_S.UNSUPP);
  header(mem, BLK_T.IN, 0);
  r = parseBlkRequest(chainOf([[HDR, 16, false], [0x3000, 100, true], [STATUS, 1, true]]), mem, h)!;
  assert.equal(r.reject, BLK_S.IOERR); // not whole sectors
  header(mem, BLK_T.OUT, 0);
  r = parseBlkRequest(chainOf([[HDR, 16, false], [0x3000, 512, true], [STATUS, 1, true]]), mem, h)!;
  assert.equal(r.reject, BLK_S.IOERR); // write data in a writable buffer
});

Deno.test("virtio-blk: read, write, flush, GET_ID and out-of-range requests against a real image", async () => {
  await withDisk(false, async (b, mem, path) => {
    header(mem, BLK_T.IN, 2);
    let n = await b.handle(0, chainOf([[HDR, 16, false], [0x3000, 1024, true], [STATUS, 1, true]]), mem);
    assert.equal(n, 1025);
    assert.equal(mem.readU8(STATUS), BLK_S.OK);
    for (let i = 0; i < 1024; i++) assert.equal(mem.readU8(0x3000 + i), patternByte(1024 + i));
    mem.fill(0x4000, 512, 0x77);
    header(mem, BLK_T.OUT, 5);
    n = await b.handle(0, chainOf([[HDR, 16, false], [0x4000, 512, false], [STATUS, 1, true]]), mem);
    assert.equal(n, 1);
    assert.equal(mem.readU8(STATUS), BLK_S.OK);
    header(mem, BLK_T.FLUSH, 0);
    await b.handle(0, chainOf([[HDR, 16, false], [STATUS, 1, true]]), mem);
    assert.equal(mem.readU8(STATUS), BLK_S.OK);
    const img = await Deno.readFile(path);
    assert.ok(img.subarray(5 * 512, 6 * 512).every((x) => x === 0x77));
    assert.equal(img[6 * 512], patternByte(6 * 512));
    header(mem, BLK_T.GET_ID, 0);
    n = await b.handle(0, chainOf([[HDR, 16, false], [0x3000, 20, true], [STATUS, 1, true]]), mem);
    assert.equal(n, 21);
    assert.equal(new TextDecoder().decode(mem.read(0x3000, 10)), "serial-123");
    header(mem, BLK_T.IN, 127); // the last sector plus one more: past the end
    await b.handle(0, chainOf([[HDR, 16, false], [0x3000, 1024, true], [STATUS, 1, true]]), mem);
    assert.equal(mem.readU8(STATUS), BLK_S.IOERR);
    header(mem, BLK_T.IN, 2 ** 60); // a sector whose byte offset is not a safe integer
    await b.handle(0, chainOf([[HDR, 16, false], [0x3000, 512, true], [STATUS, 1, true]]), mem);
    assert.equal(mem.readU8(STATUS), BLK_S.IOERR);
  });
});

Deno.test("virtio-blk: DISCARD and WRITE_ZEROES ranges; bad flags, too many segments, past the end", async () => {
  await withDisk(false, async (b, mem, path) => {
    assert.notEqual(b.features & (1n << BigInt(BLK_F.WRITE_ZEROES)), 0n);
    const seg = (at: number, sector: number, count: number, flags: number) => {
      mem.writeU64(at, BigInt(sector));
      mem.writeU32(at + 8, count);
      mem.writeU32(at + 12, flags);
    };
    header(mem, BLK_T.WRITE_ZEROES, 0);
    seg(0x3000, 10, 2, 1);
    seg(0x3010, 20, 1, 0);
    await b.handle(0, chainOf([[HDR, 16, false], [0x3000, 32, false], [STATUS, 1, true]]), mem);
    assert.equal(mem.readU8(STATUS), BLK_S.OK);
    const img = await Deno.readFile(path);
    assert.ok(img.subarray(10 * 512, 12 * 512).every((x) => x === 0));
    assert.ok(img.subarray(20 * 512, 21 * 512).every((x) => x === 0));
    assert.equal(img[12 * 512 + 3], patternByte(12 * 512 + 3));
    header(mem, BLK_T.DISCARD, 0);
    seg(0x3000, 30, 1, 1); // discard has no flags
    await b.handle(0, chainOf([[HDR, 16, false], [0x3000, 16, false], [STATUS, 1, true]]), mem);
    assert.equal(mem.readU8(STATUS), BLK_S.UNSUPP);
    seg(0x3000, 30, 1, 0);
    seg(0x3010, 127, 2, 0); // second range past the end: nothing is done
    await b.handle(0, chainOf([[HDR, 16, false], [0x3000, 32, false], [STATUS, 1, true]]), mem);
    assert.equal(mem.readU8(STATUS), BLK_S.IOERR);
    seg(0x3000, 30, 1, 0);
    await b.handle(0, chainOf([[HDR, 16, false], [0x3000, 16, false], [STATUS, 1, true]]), mem);
    assert.equal(mem.readU8(STATUS), BLK_S.OK);
    await b.handle(0, chainOf([[HDR, 16, false], [0x3000, 17 * 16, false], [STATUS, 1, true]]), mem);
    assert.equal(mem.readU8(STATUS), BLK_S.UNSUPP); // more than 16 segments
  });
});

Deno.test("virtio-blk: a read-only disk offers RO, serves reads and answers every write with IOERR", async () => {
  await withDisk(true, async (b, mem, path) => {
    assert.notEqual(b.features & (1n << BigInt(BLK_F.RO)), 0n);
    assert.equal(b.features & (1n << BigInt(BLK_F.DISCARD)), 0n);
    const before = await Deno.readFile(path);
    for (const type of [BLK_T.OUT, BLK_T.DISCARD, BLK_T.WRITE_ZEROES]) {
      header(mem, type, 0);
      mem.writeU64(0x3000, 0n);
      mem.writeU32(0x3008, 1);
      mem.writeU32(0x300c, 0);
      await b.handle(0, chainOf([[HDR, 16, false], [0x3000, 512, false], [STATUS, 1, true]]), mem);
      assert.equal(mem.readU8(STATUS), BLK_S.IOERR, `type ${type}`);
    }
    header(mem, BLK_T.IN, 0);
    await b.handle(0, chainOf([[HDR, 16, false], [0x3000, 512, true], [STATUS, 1, true]]), mem);
    assert.equal(mem.readU8(STATUS), BLK_S.OK);
    assert.deepEqual(await Deno.readFile(path), before);
    const config = new Uint8Array(60);
    b.writeConfig(config);
    const v = new DataView(config.buffer);
    assert.equal(v.getBigUint64(0, true), 128n); // 64 KiB in sectors
    assert.equal(v.getUint32(12, true), 254); // seg_max
  });
});
