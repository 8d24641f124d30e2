import assert from "node:assert/strict";
import { PciConfigSpace } from "../src/pci/config_space.ts";
import { PCI_MMIO_START, PciBus } from "../src/pci/pci_bus.ts";
import { VIRTIO_BAR, virtioPciConfigSpace, VirtioPciRegisters } from "../src/devices/virtio_pci.ts";
import { GuestMemory } from "../src/memory/guest_memory.ts";
import { createTransportState, ISR_QUEUE, STATUS, W } from "../src/virtio/transport_state.ts";
import { DeviceHandle } from "../src/virtio/device_handle.ts";
import { resolveLibcPath } from "../ffi/libc.ts";
import { buildMpTable } from "../src/boot/mptable.ts";

function mmio(
  dev: { mmioRead(o: number, d: Uint8Array, l: number): void },
  off: number,
  len: number,
): number {
  const d = new Uint8Array(8);
  dev.mmioRead(off, d, len);
  let v = 0;
  for (let i = len - 1; i >= 0; i--) v = v * 256 + d[i];
  return v;
}
function mmioW(
  dev: { mmioWrite(o: number, d: Uint8Array, l: number): void },
  off: number,
  len: number,
  v: number,
) {
  const d = new Uint8Array(8);
  for (let i = 0; i < len; i++) d[i] = Math.floor(v / 2 ** (8 * i)) & 0xff;
  dev.mmioWrite(off, d, len);
}

Deno.test("PCI: BAR sizing by writing all ones, read-only identity, capability list of a virtio function", () => {
  const cfg = virtioPciConfigSpace("blk", PCI_MMIO_START, 16, 1, 60);
  assert.equal(cfg.read(0, 4), 0x10421af4);
  assert.equal(cfg.read(0x08, 4) >>> 8, 0x018000); // class
  assert.equal(cfg.read(0x3c, 2), 0x0110); // INTA, line 16
  cfg.write(0, 4, 0); // ids are read-only
  assert.equal(cfg.read(0, 4), 0x10421af4);
  cfg.write(0x10, 4, 0xffffffff);
  assert.equal(cfg.read(0x10, 4), 0xffffc000); // 16 KiB, 32-bit memory BAR
  assert.equal(cfg.read(0x14, 4), 0); // unimplemented BAR stays 0
  cfg.write(0x10, 4, 0xd0000000);
  assert.equal(cfg.barAddress(0), 0xd0000000);
  assert.equal(cfg.barSize(0), 0x4000);
  // capability list: common, notify, ISR, device; vendor-specific caps with cfg_type
  assert.equal(cfg.read(0x06, 2) & 0x10, 0x10);
  const types: number[] = [];
  for (let p = cfg.read(0x34, 1); p !== 0; p = cfg.read(p + 1, 1)) {
    types.push(cfg.read(p, 1) === 0x09 ? cfg.read(p + 3, 1) : -cfg.read(p, 1));
  }
  assert.deepEqual(types, [1, 2, 3, 4, -0x11]); // virtio common, notify, ISR, device; then MSI-X
  const msix = cfg.findCapability(0x11)!;
  assert.equal(cfg.read(msix + 2, 2), 0x0001); // 2 vectors (table size - 1), disabled
  assert.equal(cfg.read(msix + 4, 4), 0x3800); // table in BAR 0 at 0x3800
  assert.equal(cfg.read(msix + 8, 4), 0x3c00); // PBA in BAR 0 at 0x3c00
  cfg.write(msix + 2, 2, 0xffff); // only enable and function mask are writable
  assert.equal(cfg.read(msix + 2, 2), 0xc001);
});

Deno.test("PCI: a 64-bit BAR sizes in two halves; the MMIO window follows a moved BAR and memory decoding", () => {
  const f = PciConfigSpace.create({ vendor: 0x1234, device: 0x5678, classCode: 0xff0000 });
  f.setMemoryBar(2, 0x1000, 0xc0010000, true);
  f.write(0x18, 4, 0xffffffff);
  f.write(0x1c, 4, 0xffffffff);
  assert.equal(f.read(0x18, 4), 0xfffff004);
  assert.equal(f.read(0x1c, 4), 0xffffffff);
  const seen: number[] = [];
  const bus = new PciBus();
  bus.add({
    slot: 1,
    config: f,
    bars: [undefined, undefined, {
      name: "t",
      mmioRead: (o, d) => {
        seen.push(o);
        d[0] = 0x42;
      },
      mmioWrite: () => {},
    }],
  });
  f.write(0x18, 4, 0xc0020000);
  f.write(0x1c, 4, 0);
  assert.equal(bus.configRead(0, 1, 0, 0, 2), 0x1234);
  assert.equal(bus.configRead(0, 2, 0, 0, 2), undefined);
  assert.equal(mmio(bus, 0x20010, 1), 0xff); // memory decoding off
  bus.configWrite(0, 1, 0, 0x04, 2, 0x2);
  assert.equal(mmio(bus, 0x20010, 1), 0x42);
  assert.deepEqual(seen, [0x10]);
  assert.equal(mmio(bus, 0x10010, 1), 0xff); // the old address no longer decodes
});

Deno.test("virtio-pci: feature negotiation needs VERSION_1 and a subset of the offer; reset clears the queues", () => {
  const state = createTransportState();
  const w = new Int32Array(state, 0, 64);
  w[W.DEVICE_FEATURES_LO] = 1 << 9;
  w[W.DEVICE_FEATURES_HI] = 1; // VERSION_1
  w[W.NUM_QUEUES] = 1;
  w[W.QUEUE_BASE + 1] = 128; // max size
  w[W.QUEUE_BASE] = 128;
  const lines: string[] = [];
  const r = new VirtioPciRegisters("t", state, 17, (g, l) => lines.push(`${g}=${l}`));
  mmioW(r, 20, 1, STATUS.ACKNOWLEDGE | STATUS.DRIVER);
  mmioW(r, 8, 4, 0);
  mmioW(r, 12, 4, (1 << 9) | (1 << 3)); // bit 3 was not offered
  mmioW(r, 8, 4, 1);
  mmioW(r, 12, 4, 1);
  mmioW(r, 20, 1, STATUS.ACKNOWLEDGE | STATUS.DRIVER | STATUS.FEATURES_OK);
  assert.equal(mmio(r, 20, 1) & STATUS.FEATURES_OK, 0);
  mmioW(r, 8, 4, 0);
  mmioW(r, 12, 4, 1 << 9);
  mmioW(r, 20, 1, STATUS.ACKNOWLEDGE | STATUS.DRIVER | STATUS.FEATURES_OK);
  assert.equal(mmio(r, 20, 1), 0xb);
  mmioW(r, 12, 4, 0); // features are locked after FEATURES_OK
  assert.equal(w[W.DRIVER_FEATURES_LO], 1 << 9);
  mmioW(r, 22, 2, 0);
  assert.equal(mmio(r, 24, 2), 128);
  mmioW(r, 24, 2, 100); // not a power of two: ignored
  assert.equal(mmio(r, 24, 2), 128);
  mmioW(r, 24, 2, 64);
  mmioW(r, 32, 4, 0x1000);
  mmioW(r, 40, 8, 0x2000);
  mmioW(r, 48, 4, 0x3000);
  mmioW(r, 28, 2, 1);
  assert.deepEqual([mmio(r, 24, 2), mmio(r, 32, 4), mmio(r, 40, 4), mmio(r, 48, 4)], [
    64,
    0x1000,
    0x2000,
    0x3000,
  ]);
  mmioW(r, 22, 2, 5); // no such queue: reads as zero
  assert.equal(mmio(r, 24, 2), 0);
  w[W.ISR] = ISR_QUEUE;
  w[W.IRQ_ASSERTED] = 1;
  const epoch = w[W.EPOCH];
  mmioW(r, 20, 1, 0);
  assert.equal(mmio(r, 20, 1), STATUS.NEEDS_RESET); // until the device worker has let go of its queues
  assert.equal(w[W.EPOCH], epoch + 1);
  w[W.RESET_PENDING] = 0; // what the device worker does when it sees the new epoch
  assert.equal(mmio(r, 20, 1), 0);
  mmioW(r, 22, 2, 0);
  assert.deepEqual([mmio(r, 24, 2), mmio(r, 28, 2), mmio(r, 32, 4)], [128, 0, 0]);
  assert.deepEqual(lines, ["17=0"]);
  assert.equal(mmio(r, VIRTIO_BAR.ISR, 1), 0);
});

Deno.test("virtio-rng worker: served through the register model; its interrupt reaches the line and an ISR read lowers it", async () => {
  const RAM = 1 << 20;
  const mem = new GuestMemory({
    sab: new SharedArrayBuffer(RAM),
    offset: 0,
    regions: [{ gpa: 0, size: RAM }],
  });
  const state = createTransportState();
  const lines: string[] = [];
  let raised: () => void = () => {};
  const up = new Promise<void>((r) => raised = r);
  const h = await DeviceHandle.spawn({
    row: "virtio-rng",
    label: "rng-test",
    policy: { libcPath: resolveLibcPath() },
    memory: mem.share(),
    state,
    gsi: 18,
    irqLine: (g, l) => {
      lines.push(`${g}=${l}`);
      if (l === 1) raised();
    },
  });
  try {
    const r = new VirtioPciRegisters("rng", state, 18, (g, l) => lines.push(`${g}=${l}`));
    mmioW(r, 20, 1, 3);
    mmioW(r, 8, 4, 1);
    mmioW(r, 12, 4, 1);
    mmioW(r, 20, 1, 0xb);
    mmioW(r, 24, 2, 8);
    mmioW(r, 32, 4, 0x1000);
    mmioW(r, 40, 4, 0x2000);
    mmioW(r, 48, 4, 0x3000);
    mmioW(r, 28, 2, 1);
    mmioW(r, 20, 1, 0xf);
    mem.writeU64(0x1000, 0x10000n);
    mem.writeU32(0x1008, 256);
    mem.writeU16(0x100c, 2); // WRITE
    mem.writeU16(0x2004, 0);
    mem.writeU16(0x2002, 1);
    mmioW(r, VIRTIO_BAR.NOTIFY, 2, 0);
    await up;
    assert.equal(mem.readU16(0x3002), 1);
    assert.equal(mem.readU32(0x3008), 256);
    assert.ok(new Set(mem.read(0x10000, 256)).size > 64);
    assert.equal(mmio(r, VIRTIO_BAR.ISR, 1), ISR_QUEUE);
    assert.deepEqual(lines, ["18=1", "18=0"]);
    assert.equal(mmio(r, VIRTIO_BAR.ISR, 1), 0);
    // a reset completes once the worker has dropped its queues: status then reads 0
    mmioW(r, 20, 1, 0);
    const t0 = Date.now();
    while (mmio(r, 20, 1) !== 0 && Date.now() - t0 < 5000) await new Promise((r) => setTimeout(r, 1));
    assert.equal(mmio(r, 20, 1), 0);
  } finally {
    h.stop();
  }
});

Deno.test("MP table: a PCI bus and one level-triggered INTA entry per function", () => {
  const t = buildMpTable(1, 0xf0000, [{ slot: 1, gsi: 16 }, { slot: 2, gsi: 17 }]);
  const text = new TextDecoder().decode(t);
  assert.ok(text.includes("PCI   "));
  let sum = 0;
  for (const b of t.subarray(16)) sum = (sum + b) & 0xff;
  assert.equal(sum, 0);
  const entries: number[][] = [];
  for (let i = 16 + 44; i < t.length;) {
    const len = t[i] === 0 ? 20 : 8;
    if (t[i] === 3 && t[i + 4] === 1) entries.push([...t.subarray(i, i + 8)]);
    i += len;
  }
  assert.deepEqual(entries, [[3, 0, 0x0d, 0, 1, 1 << 2, 1, 16], [3, 0, 0x0d, 0, 1, 2 << 2, 1, 17]]);
});

Deno.test("virtio device: rings placed outside RAM at DRIVER_OK make the real worker ask for a reset", async () => {
  const RAM = 1 << 20;
  const mem = new GuestMemory({
    sab: new SharedArrayBuffer(RAM),
    offset: 0,
    regions: [{ gpa: 0, size: RAM }],
  });
  const state = createTransportState();
  const h = await DeviceHandle.spawn({
    row: "virtio-rng",
    label: "rng-bad-rings",
    policy: { libcPath: resolveLibcPath() },
    memory: mem.share(),
    state,
    gsi: 19,
    irqLine: () => {},
  });
  try {
    const r = new VirtioPciRegisters("rng", state, 19, () => {});
    mmioW(r, 20, 1, 3);
    mmioW(r, 8, 4, 1);
    mmioW(r, 12, 4, 1);
    mmioW(r, 20, 1, 0xb);
    mmioW(r, 32, 4, 0xfff00000); // descriptor table far outside the 1 MiB of RAM
    mmioW(r, 40, 4, 0x2000);
    mmioW(r, 48, 4, 0x3000);
    mmioW(r, 28, 2, 1);
    mmioW(r, 20, 1, 0xf);
    const t0 = Date.now();
    while ((mmio(r, 20, 1) & STATUS.NEEDS_RESET) === 0 && Date.now() - t0 < 5000) {
      await new Promise((r) => setTimeout(r, 1));
    }
    assert.equal(mmio(r, 20, 1), 0x4f);
    assert.equal(mmio(r, VIRTIO_BAR.ISR, 1) & 2, 2); // config-change interrupt
    assert.equal(h.failure, undefined); // the worker is alive and well
  } finally {
    h.stop();
  }
});

Deno.test("MSI-X: a message held back by the function mask goes out when the guest clears the mask", async () => {
  const RAM = 1 << 20;
  const mem = new GuestMemory({
    sab: new SharedArrayBuffer(RAM),
    offset: 0,
    regions: [{ gpa: 0, size: RAM }],
  });
  const state = createTransportState();
  const cfg = virtioPciConfigSpace("rng", PCI_MMIO_START, 20, 1, 0);
  const cap = cfg.findCapability(0x11)!;
  const sent: number[][] = [];
  let got: () => void = () => {};
  const arrived = new Promise<void>((r) => got = r);
  const h = await DeviceHandle.spawn({
    row: "virtio-rng",
    label: "rng-msix",
    policy: { libcPath: resolveLibcPath() },
    memory: mem.share(),
    state,
    gsi: 20,
    irqLine: () => assert.fail("no INTx while MSI-X is on"),
    msix: { config: cfg.state, cap, signal: (lo, hi, data) => (sent.push([lo, hi, data]), got()) },
  });
  try {
    const r = new VirtioPciRegisters("rng", state, 20, () => {});
    const bus = new PciBus();
    bus.add({ slot: 1, config: cfg, bars: [r], configWritten: (reg) => r.capabilityWritten(reg) });
    bus.configWrite(0, 1, 0, 0x04, 2, 0x6);
    bus.configWrite(0, 1, 0, cap + 2, 2, 0xc000); // MSI-X on, function masked
    mmioW(bus, 0x3800, 4, 0xfee00000);
    mmioW(bus, 0x3804, 4, 0);
    mmioW(bus, 0x3808, 4, 0x41);
    mmioW(bus, 0x380c, 4, 0); // entry 0 unmasked
    mmioW(bus, 20, 1, 3);
    mmioW(bus, 8, 4, 1);
    mmioW(bus, 12, 4, 1);
    mmioW(bus, 20, 1, 0xb);
    mmioW(bus, 22, 2, 0);
    mmioW(bus, 26, 2, 0); // queue 0 -> vector 0
    assert.equal(mmio(bus, 26, 2), 0);
    mmioW(bus, 16, 2, 7); // no such vector: reads back as NO_VECTOR
    assert.equal(mmio(bus, 16, 2), 0xffff);
    mmioW(bus, 24, 2, 8);
    mmioW(bus, 32, 4, 0x1000);
    mmioW(bus, 40, 4, 0x2000);
    mmioW(bus, 48, 4, 0x3000);
    mmioW(bus, 28, 2, 1);
    mmioW(bus, 20, 1, 0xf);
    mem.writeU64(0x1000, 0x10000n);
    mem.writeU32(0x1008, 32);
    mem.writeU16(0x100c, 2);
    mem.writeU16(0x2004, 0);
    mem.writeU16(0x2002, 1);
    mmioW(bus, 0x3000, 2, 0);
    const t0 = Date.now();
    while (mem.readU16(0x3002) !== 1 && Date.now() - t0 < 5000) await new Promise((r) => setTimeout(r, 1));
    await new Promise((r) => setTimeout(r, 20));
    assert.deepEqual(sent, []); // held back by the function mask
    assert.equal(mmio(bus, 0x3c00, 4) & 1, 1); // pending bit
    bus.configWrite(0, 1, 0, cap + 2, 2, 0x8000); // clear the function mask
    await arrived;
    assert.deepEqual(sent, [[0xfee00000, 0, 0x41]]);
    assert.equal(mmio(bus, 0x3c00, 4) & 1, 0);
  } finally {
    h.stop();
  }
});
