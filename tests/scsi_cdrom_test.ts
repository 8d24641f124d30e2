/**
 * The virtio-scsi CD-ROM without a VM: the SCSI unit's answers (INQUIRY, capacity, reads, the MMC commands a
 * BIOS and Linux's sr driver send) and hostile input — CDBs with huge or overflowing LBAs and lengths, writes,
 * unknown opcodes, bad LUNs, requests too short for their header or response, data-in buffers too small, split
 * framing — each answered with sense data or a virtio error response, never a throw.
 */
import assert from "node:assert/strict";
import { GuestMemory } from "../src/memory/guest_memory.ts";
import { Chain } from "../src/virtio/virtqueue.ts";
import {
  CD_BLOCK,
  type CdMedium,
  cdromImageProblem,
  CdromUnit,
  SCSI_OP,
  type ScsiOutcome,
  SENSE,
} from "../src/virtio/scsi_cdrom.ts";
import {
  SCSI_QUEUE,
  SCSI_REQ_BYTES,
  SCSI_RESP_BYTES,
  SCSI_RESPONSE,
  ScsiBackend,
} from "../src/virtio/scsi.ts";

const BLOCKS = 10;

/** A medium whose byte i is (i * 7) & 0xff, or whose reads fail. */
function medium(blocks = BLOCKS, fail = false): CdMedium {
  return {
    length: blocks * CD_BLOCK,
    readAt(pos, buf) {
      if (fail) throw new Error("EIO");
      for (let i = 0; i < buf.length; i++) buf[i] = ((pos + i) * 7) & 0xff;
    },
  };
}

const unit = (blocks = BLOCKS, fail = false) => new CdromUnit(medium(blocks, fail), { serial: "VMD-CD0" });

function cdb(...bytes: number[]): Uint8Array {
  const c = new Uint8Array(32);
  c.set(bytes);
  return c;
}

function data(o: ScsiOutcome): Uint8Array {
  assert.equal(o.kind, "data", JSON.stringify(o));
  return (o as { bytes: Uint8Array }).bytes;
}

Deno.test("CD-ROM unit: INQUIRY says removable CD/DVD, VPD pages 0x00/0x80/0x83, clipped to the allocation", () => {
  const u = unit();
  const std = data(u.execute(cdb(SCSI_OP.INQUIRY, 0, 0, 0, 96)));
  assert.equal(std.length, 36);
  assert.equal(std[0], 0x05);
  assert.equal(std[1], 0x80);
  assert.equal(new TextDecoder().decode(std.subarray(8, 16)), "VMD     ");
  assert.equal(data(u.execute(cdb(SCSI_OP.INQUIRY, 0, 0, 0, 5))).length, 5);
  assert.equal(data(u.execute(cdb(SCSI_OP.INQUIRY, 0, 0, 0, 0))).length, 0);
  assert.deepEqual([...data(u.execute(cdb(SCSI_OP.INQUIRY, 1, 0x00, 0, 255)))], [
    5,
    0,
    0,
    3,
    0x00,
    0x80,
    0x83,
  ]);
  const serial = data(u.execute(cdb(SCSI_OP.INQUIRY, 1, 0x80, 0, 255)));
  assert.equal(new TextDecoder().decode(serial.subarray(4)), "VMD-CD0");
  const ids = data(u.execute(cdb(SCSI_OP.INQUIRY, 1, 0x83, 0, 255)));
  assert.equal(ids[1], 0x83);
  assert.equal(ids[5], 0x01, "a T10 vendor id designator");
  assert.deepEqual(u.execute(cdb(SCSI_OP.INQUIRY, 1, 0xb0, 0, 255)), {
    kind: "check",
    sense: SENSE.INVALID_FIELD_IN_CDB,
  });
  assert.deepEqual(u.execute(cdb(SCSI_OP.INQUIRY, 0, 0x80, 0, 255)), {
    kind: "check",
    sense: SENSE.INVALID_FIELD_IN_CDB,
  });
});

Deno.test("CD-ROM unit: capacity in 2048-byte blocks; READ(10/12/16) within the medium, LBA OUT OF RANGE past it", () => {
  const u = unit();
  const cap = new DataView(data(u.execute(cdb(SCSI_OP.READ_CAPACITY_10))).buffer);
  assert.equal(cap.getUint32(0), BLOCKS - 1);
  assert.equal(cap.getUint32(4), CD_BLOCK);
  const cap16 = data(u.execute(cdb(SCSI_OP.SERVICE_ACTION_IN_16, 0x10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 32)));
  assert.equal(new DataView(cap16.buffer).getBigUint64(0), BigInt(BLOCKS - 1));
  assert.deepEqual(u.execute(cdb(SCSI_OP.READ_10, 0, 0, 0, 0, 2, 0, 0, 3)), {
    kind: "read",
    offset: 2 * CD_BLOCK,
    length: 3 * CD_BLOCK,
  });
  assert.deepEqual(u.execute(cdb(SCSI_OP.READ_10, 0, 0, 0, 0, 9, 0, 0, 1)), {
    kind: "read",
    offset: 9 * CD_BLOCK,
    length: CD_BLOCK,
  });
  assert.deepEqual(u.execute(cdb(SCSI_OP.READ_10, 0, 0, 0, 0, 10, 0, 0, 0)), {
    kind: "data",
    bytes: new Uint8Array(0),
  });
  const out = { kind: "check", sense: SENSE.LBA_OUT_OF_RANGE };
  // one block past the end, an LBA far past it, a count that overflows 32 bits of LBA + count
  assert.deepEqual(u.execute(cdb(SCSI_OP.READ_10, 0, 0, 0, 0, 9, 0, 0, 2)), out);
  assert.deepEqual(u.execute(cdb(SCSI_OP.READ_10, 0, 0xff, 0xff, 0xff, 0xff, 0, 0xff, 0xff)), out);
  assert.deepEqual(u.execute(cdb(SCSI_OP.READ_12, 0, 0, 0, 0, 1, 0xff, 0xff, 0xff, 0xff)), out);
  assert.deepEqual(
    u.execute(cdb(SCSI_OP.READ_16, 0, ...new Array(8).fill(0xff), 0xff, 0xff, 0xff, 0xff)),
    out,
  );
  assert.deepEqual(u.execute(cdb(SCSI_OP.READ_16, 0, 0, 0, 0, 0, 0, 0, 0, 11, 0, 0, 0, 0)), out);
  assert.deepEqual(u.execute(cdb(SCSI_OP.READ_16, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 9)), {
    kind: "read",
    offset: CD_BLOCK,
    length: 9 * CD_BLOCK,
  });
});

Deno.test("CD-ROM unit: writes and unknown opcodes are INVALID COMMAND OPERATION CODE; bad fields INVALID FIELD", () => {
  const u = unit();
  const invalid = { kind: "check", sense: SENSE.INVALID_OPCODE };
  // WRITE(6/10/12/16), WRITE AND VERIFY, FORMAT UNIT, MODE SELECT, SYNCHRONIZE CACHE, BLANK, every unused code
  for (const op of [0x0a, 0x2a, 0xaa, 0x8a, 0x2e, 0x04, 0x15, 0x55, 0x35, 0xa1, 0xff, 0x7f, 0xc0]) {
    assert.deepEqual(u.execute(cdb(op, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff)), invalid, `op ${op}`);
  }
  const field = { kind: "check", sense: SENSE.INVALID_FIELD_IN_CDB };
  assert.deepEqual(u.execute(cdb(SCSI_OP.REPORT_LUNS, 0, 0, 0, 0, 0, 0, 0, 0, 15)), field);
  assert.deepEqual(u.execute(cdb(SCSI_OP.READ_TOC, 0, 5, 0, 0, 0, 0, 0, 255)), field);
  assert.deepEqual(u.execute(cdb(SCSI_OP.READ_TOC, 0, 0, 0, 0, 0, 2, 0, 255)), field);
  assert.deepEqual(
    u.execute(cdb(SCSI_OP.GET_EVENT_STATUS, 0, 0, 0, 0x10, 0, 0, 0, 8)),
    field,
    "asynchronous",
  );
  assert.deepEqual(u.execute(cdb(SCSI_OP.MODE_SENSE_10, 0, 0x08, 0, 0, 0, 0, 0, 255)), field);
  assert.deepEqual(u.execute(cdb(SCSI_OP.SERVICE_ACTION_IN_16, 0x11)), field);
  assert.equal(u.execute(cdb(SCSI_OP.MODE_SENSE_6, 0, 0xea, 0, 255)).kind, "check", "saved values");
  assert.deepEqual(u.execute(cdb(SCSI_OP.READ_DISC_INFORMATION, 1, 0, 0, 0, 0, 0, 0, 255)), field);
  // every opcode with every other byte 0xff answers without throwing
  for (let op = 0; op < 256; op++) u.execute(cdb(op, ...new Array(31).fill(0xff)));
});

Deno.test("CD-ROM unit: the MMC answers Linux's sr driver and SeaBIOS ask for", () => {
  const u = unit(CD_BLOCK * 4);
  assert.deepEqual(u.execute(cdb(SCSI_OP.TEST_UNIT_READY)), { kind: "data", bytes: new Uint8Array(0) });
  assert.equal(data(u.execute(cdb(SCSI_OP.REQUEST_SENSE, 0, 0, 0, 252)))[0], 0x70);
  assert.equal(data(u.execute(cdb(SCSI_OP.START_STOP_UNIT, 0, 0, 0, 2))).length, 0, "eject accepted");
  assert.equal(data(u.execute(cdb(SCSI_OP.PREVENT_ALLOW, 0, 0, 0, 1))).length, 0);
  const luns = data(u.execute(cdb(SCSI_OP.REPORT_LUNS, 0, 0, 0, 0, 0, 0, 0, 0, 16)));
  assert.deepEqual([...luns], [0, 0, 0, 8, ...new Array(12).fill(0)]);
  const mode = data(u.execute(cdb(SCSI_OP.MODE_SENSE_10, 0, 0x2a, 0, 0, 0, 0, 0, 255)));
  assert.equal((mode[0] << 8 | mode[1]) + 2, mode.length);
  assert.equal(mode[8], 0x2a);
  assert.equal(data(u.execute(cdb(SCSI_OP.MODE_SENSE_6, 0, 0x3f, 0, 255)))[4], 0x2a);
  const conf = new DataView(data(u.execute(cdb(SCSI_OP.GET_CONFIGURATION, 0, 0, 0, 0, 0, 0, 0, 255))).buffer);
  assert.equal(conf.getUint16(6), 0x0008, "a CD-sized image is a CD-ROM");
  const toc = data(u.execute(cdb(SCSI_OP.READ_TOC, 0, 0, 0, 0, 0, 0, 0, 255)));
  assert.deepEqual([...toc.subarray(0, 4)], [0, 18, 1, 1]);
  assert.equal(toc[14], 0xaa);
  assert.equal(
    new DataView(toc.buffer).getUint32(16),
    CD_BLOCK * 4,
    "the lead-out starts after the last block",
  );
  const msf = data(u.execute(cdb(SCSI_OP.READ_TOC, 2, 0, 0, 0, 0, 0, 0, 255)));
  assert.deepEqual([...msf.subarray(8, 12)], [0, 0, 2, 0], "track 1 at 00:02:00");
  const ev = data(u.execute(cdb(SCSI_OP.GET_EVENT_STATUS, 1, 0, 0, 0x10, 0, 0, 0, 8)));
  assert.deepEqual([...ev], [0, 6, 4, 0x10, 0, 2, 0, 0]);
  assert.equal(data(u.execute(cdb(SCSI_OP.READ_DISC_INFORMATION, 0, 0, 0, 0, 0, 0, 0, 34))).length, 34);
  const dvd = new CdromUnit(medium(400_000), { serial: "x" });
  const dconf = data(dvd.execute(cdb(SCSI_OP.GET_CONFIGURATION, 0, 0, 0, 0, 0, 0, 0, 8)));
  assert.equal(new DataView(dconf.buffer).getUint16(6), 0x0010, "a bigger image is a DVD-ROM");
  assert.match(cdromImageProblem(100) ?? "", /100 bytes holds no 2048-byte block; name an ISO 9660 image/);
  assert.equal(cdromImageProblem(2048), undefined);
});

/** Guest memory and a way to lay a chain's buffers out in it. */
function rig(fail = false) {
  const mem = new GuestMemory({
    sab: new SharedArrayBuffer(1 << 20),
    offset: 0,
    regions: [{ gpa: 0, size: 1 << 20 }],
  });
  const backend = new ScsiBackend(unit(BLOCKS, fail));
  let next = 0x1000;
  /** A chain of readable buffers (their bytes) then writable ones (their sizes, filled with 0xee). */
  const chain = (readable: Uint8Array[], writable: number[]) => {
    const c = new Chain(64);
    if (next > (1 << 20) - 65536) next = 0x1000; // reuse the memory: each chain is used before the next
    for (const r of readable) {
      mem.bytes.set(r, next);
      c.at[c.count] = next;
      c.len[c.count] = r.length;
      c.count++;
      c.readable++;
      c.readBytes += r.length;
      next += r.length + 64;
    }
    for (const w of writable) {
      mem.bytes.fill(0xee, next, next + w);
      c.at[c.count] = next;
      c.len[c.count] = w;
      c.count++;
      c.writeBytes += w;
      next += w + 64;
    }
    return c;
  };
  /** The writable stream of `c`, joined. */
  const written = (c: Chain) => {
    const parts: number[] = [];
    for (let i = c.readable; i < c.count; i++) parts.push(...mem.bytes.subarray(c.at[i], c.at[i] + c.len[i]));
    return Uint8Array.from(parts);
  };
  return { mem, backend, chain, written };
}

/** A command request header: LUN 1/target/0x40|lun, then the CDB at byte 19. */
function request(cdbBytes: number[], lun = [1, 0, 0x40, 0]): Uint8Array {
  const h = new Uint8Array(SCSI_REQ_BYTES);
  h.set(lun);
  h.set(cdbBytes, 19);
  return h;
}

const resp = (w: Uint8Array) => {
  const v = new DataView(w.buffer, w.byteOffset);
  return { senseLen: v.getUint32(0, true), residual: v.getUint32(4, true), status: w[10], response: w[11] };
};

Deno.test("virtio-scsi: a READ(10) split across buffers lands in the data-in bytes; residual and length reported", () => {
  const { backend, chain, written, mem } = rig();
  const req = request([SCSI_OP.READ_10, 0, 0, 0, 0, 3, 0, 0, 2]);
  // the header split in two, the response split, the data in uneven pieces, 100 spare bytes at the end
  const c = chain([req.subarray(0, 7), req.subarray(7)], [50, SCSI_RESP_BYTES - 50 + 1000, 3096 + 100]);
  const n = backend.handle(SCSI_QUEUE.REQUEST, c, mem);
  assert.equal(n, SCSI_RESP_BYTES + 2 * CD_BLOCK);
  const w = written(c);
  assert.deepEqual(resp(w), { senseLen: 0, residual: 100, status: 0, response: SCSI_RESPONSE.OK });
  const got = w.subarray(SCSI_RESP_BYTES, SCSI_RESP_BYTES + 2 * CD_BLOCK);
  const want = new Uint8Array(2 * CD_BLOCK);
  medium().readAt(3 * CD_BLOCK, want);
  assert.deepEqual(got, want);
  assert.equal(w[SCSI_RESP_BYTES + 2 * CD_BLOCK], 0xee, "nothing past the transfer");
  assert.equal(backend.stats().scsiReadBytes, 2 * CD_BLOCK);
});

Deno.test("virtio-scsi: hostile requests get sense or an error response, never a throw or a write past the chain", () => {
  const { backend, chain, written, mem } = rig();
  // past the end: CHECK CONDITION with fixed sense ILLEGAL REQUEST / LBA OUT OF RANGE, nothing transferred
  let c = chain([request([SCSI_OP.READ_10, 0, 0, 0, 0, 9, 0, 0, 5])], [SCSI_RESP_BYTES + 5 * CD_BLOCK]);
  assert.equal(backend.handle(SCSI_QUEUE.REQUEST, c, mem), SCSI_RESP_BYTES);
  let w = written(c);
  assert.deepEqual(resp(w), { senseLen: 18, residual: 5 * CD_BLOCK, status: 2, response: 0 });
  assert.deepEqual([w[12], w[14], w[24], w[25]], [0x70, 0x05, 0x21, 0x00]);
  // a write: INVALID COMMAND OPERATION CODE
  c = chain([request([0x2a, 0, 0, 0, 0, 0, 0, 0, 1]), new Uint8Array(CD_BLOCK)], [SCSI_RESP_BYTES]);
  backend.handle(SCSI_QUEUE.REQUEST, c, mem);
  w = written(c);
  assert.deepEqual([w[10], w[14], w[24]], [2, 0x05, 0x20]);
  // data-in too small for the read: OVERRUN, nothing read
  c = chain([request([SCSI_OP.READ_10, 0, 0, 0, 0, 0, 0, 0, 2])], [SCSI_RESP_BYTES + CD_BLOCK]);
  assert.equal(backend.handle(SCSI_QUEUE.REQUEST, c, mem), SCSI_RESP_BYTES);
  assert.equal(written(c)[11], SCSI_RESPONSE.OVERRUN);
  assert.equal(written(c)[SCSI_RESP_BYTES], 0xee);
  // another target, another LUN, a malformed LUN structure
  for (
    const [lun, why] of [
      [[1, 1, 0x40, 0], SCSI_RESPONSE.BAD_TARGET],
      [[2, 0, 0x40, 0], SCSI_RESPONSE.BAD_TARGET],
      [[1, 0, 0x40, 1], SCSI_RESPONSE.INCORRECT_LUN],
      [[1, 0, 0xc0, 0], SCSI_RESPONSE.INCORRECT_LUN],
      [[1, 0, 0x40, 0, 0, 0, 0, 9], SCSI_RESPONSE.INCORRECT_LUN],
    ] as const
  ) {
    c = chain([request([SCSI_OP.INQUIRY, 0, 0, 0, 36], [...lun])], [SCSI_RESP_BYTES + 36]);
    assert.equal(backend.handle(SCSI_QUEUE.REQUEST, c, mem), SCSI_RESP_BYTES);
    assert.equal(written(c)[11], why, `lun ${lun}`);
  }
  // a header too short: FAILURE in the response's fixed part; a response too short to hold even that: nothing
  c = chain([request([SCSI_OP.INQUIRY]).subarray(0, 20)], [SCSI_RESP_BYTES]);
  assert.equal(backend.handle(SCSI_QUEUE.REQUEST, c, mem), 12);
  assert.equal(written(c)[11], SCSI_RESPONSE.FAILURE);
  c = chain([request([SCSI_OP.INQUIRY])], [40]);
  assert.equal(backend.handle(SCSI_QUEUE.REQUEST, c, mem), 12);
  assert.equal(written(c)[11], SCSI_RESPONSE.FAILURE);
  assert.equal(written(c)[12], 0xee, "nothing past the fixed part");
  c = chain([request([SCSI_OP.INQUIRY])], [11]);
  assert.equal(backend.handle(SCSI_QUEUE.REQUEST, c, mem), 0);
  assert.ok(written(c).every((b) => b === 0xee));
  c = chain([], []);
  assert.equal(backend.handle(SCSI_QUEUE.REQUEST, c, mem), 0);
  // the medium failing: MEDIUM ERROR sense
  const bad = rig(true);
  c = bad.chain([request([SCSI_OP.READ_10, 0, 0, 0, 0, 0, 0, 0, 1])], [SCSI_RESP_BYTES + CD_BLOCK]);
  assert.equal(bad.backend.handle(SCSI_QUEUE.REQUEST, c, bad.mem), SCSI_RESP_BYTES);
  assert.deepEqual([bad.written(c)[10], bad.written(c)[14], bad.written(c)[24]], [2, 0x03, 0x11]);
  // random headers on every queue
  const r = new Uint8Array(SCSI_REQ_BYTES + 16);
  for (let i = 0; i < 2000; i++) {
    crypto.getRandomValues(r);
    if (i % 2 === 0) r.set([1, 0, 0x40, 0]);
    const n = r[60] % (r.length + 1);
    c = chain([r.slice(0, n)], [r[61] * 4, r[62] * 16]);
    const q = r[63] % 3;
    const wrote = backend.handle(q, c, mem);
    assert.ok(wrote >= 0 && wrote <= c.writeBytes, `wrote ${wrote} of ${c.writeBytes}`);
  }
  assert.ok(backend.stats().scsiMalformed > 0);
});

Deno.test("virtio-scsi: task management completes, notifications subscribe to nothing, the event queue waits", () => {
  const { backend, chain, written, mem } = rig();
  const tmf = new Uint8Array(24);
  tmf.set([0, 0, 0, 0, 5, 0, 0, 0, 1, 0, 0x40, 0]); // TMF, logical unit reset, target 0 LUN 0
  let c = chain([tmf], [1]);
  assert.equal(backend.handle(SCSI_QUEUE.CONTROL, c, mem), 1);
  assert.equal(written(c)[0], SCSI_RESPONSE.FUNCTION_COMPLETE);
  tmf[9] = 3;
  c = chain([tmf], [1]);
  backend.handle(SCSI_QUEUE.CONTROL, c, mem);
  assert.equal(written(c)[0], SCSI_RESPONSE.BAD_TARGET);
  const an = new Uint8Array(16);
  an.set([1, 0, 0, 0, 1, 0, 0x40, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff]);
  c = chain([an], [5]);
  assert.equal(backend.handle(SCSI_QUEUE.CONTROL, c, mem), 5);
  assert.deepEqual([...written(c)], [0, 0, 0, 0, 0]);
  c = chain([Uint8Array.of(7, 0, 0, 0)], [8]);
  assert.equal(backend.handle(SCSI_QUEUE.CONTROL, c, mem), 0, "an unknown control type");
  c = chain([an], [4]);
  assert.equal(backend.handle(SCSI_QUEUE.CONTROL, c, mem), 0, "no room for the answer");
  assert.equal(backend.ready(SCSI_QUEUE.EVENT), false);
  assert.equal(backend.ready(SCSI_QUEUE.REQUEST), true);
  const config = new Uint8Array(64);
  backend.writeConfig(config);
  const v = new DataView(config.buffer);
  assert.deepEqual([
    v.getUint32(0, true),
    v.getUint32(20, true),
    v.getUint32(24, true),
    v.getUint16(30, true),
  ], [
    1,
    96,
    32,
    0,
  ]);
});
