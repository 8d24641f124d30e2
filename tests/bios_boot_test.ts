/**
 * Booting through the BIOS: fw_cfg as SeaBIOS reads it (directory, data port, DMA, hostile DMA requests),
 * BIOS image checks, and real boots — a boot sector built at test time, booted by SeaBIOS from a virtio-blk
 * disk under `vmd run` on real KVM and under QEMU `-M pc` side by side, with the same line printed.
 */
import assert from "node:assert/strict";
import { FwCfgDirectory } from "../src/firmware/fw_cfg_directory.ts";
import { FW_CFG_KEY } from "../src/firmware/fw_cfg_items.ts";
import { createFwCfgState, FwCfg } from "../src/devices/fw_cfg.ts";
import { GuestMemory } from "../src/memory/guest_memory.ts";
import { BiosImageError, placeBios } from "../src/firmware/bios_image.ts";
import { biosFwCfg, e820Bytes, pciBootPath, scsiBootPath } from "../src/firmware/bios_config.ts";
import { BOOT_EXIT_STATUS, buildBootDisk, DISK_BOOT_LINE } from "../examples/guests/boot/build.ts";
import { buildKitGuest } from "../examples/guests/kit/build.ts";
import { kvmTest, runCli } from "./kvm_support.ts";
import { runQemuBios } from "./qemu_support.ts";
import { TestDaemon } from "./vmd_support.ts";

const RAM = 1 << 20;

function device(dir: FwCfgDirectory) {
  const mem = new GuestMemory({
    sab: new SharedArrayBuffer(RAM),
    offset: 0,
    regions: [{ gpa: 0, size: RAM }],
  });
  return { fw: new FwCfg(dir.freeze(), createFwCfgState(), mem), mem };
}

function readItem(fw: FwCfg, key: number, n: number): Uint8Array {
  fw.io.pioWrite(0, 2, key);
  return Uint8Array.from({ length: n }, () => fw.io.pioRead(1, 1));
}

/** Starts a DMA operation at guest address `at` as SeaBIOS does (outl of the big-endian address). */
function dma(
  fw: FwCfg,
  mem: GuestMemory,
  at: number,
  control: number,
  length: number,
  address: number | bigint,
) {
  mem.view.setUint32(at, control, false);
  mem.view.setUint32(at + 4, length, false);
  mem.view.setBigUint64(at + 8, BigInt(address), false);
  const be = ((at & 0xff) << 24) | ((at & 0xff00) << 8) | ((at >>> 8) & 0xff00) | (at >>> 24);
  fw.dma.pioWrite(4, 4, be >>> 0);
  return mem.view.getUint32(at, false);
}

Deno.test("fw_cfg: signature, DMA feature bit and file directory through the data port", () => {
  const dir = new FwCfgDirectory();
  dir.addU16(FW_CFG_KEY.FW_CFG_NB_CPUS, 3);
  const key = dir.addTextFile("bootorder", "/pci@i0cf8/*@1\nHALT");
  const { fw } = device(dir);
  assert.equal(new TextDecoder().decode(readItem(fw, FW_CFG_KEY.FW_CFG_SIGNATURE, 4)), "QEMU");
  assert.deepEqual([...readItem(fw, FW_CFG_KEY.FW_CFG_ID, 4)], [3, 0, 0, 0]);
  assert.deepEqual([...readItem(fw, FW_CFG_KEY.FW_CFG_NB_CPUS, 3)], [3, 0, 0], "past the end reads 0");
  const d = readItem(fw, FW_CFG_KEY.FW_CFG_FILE_DIR, 4 + 64);
  const v = new DataView(d.buffer);
  assert.equal(v.getUint32(0, false), 1);
  assert.equal(v.getUint32(4, false), 19);
  assert.equal(v.getUint16(8, false), key);
  assert.equal(new TextDecoder().decode(d.subarray(12, 21)), "bootorder");
  assert.equal(new TextDecoder().decode(readItem(fw, key, 19)), "/pci@i0cf8/*@1\nHALT");
  // the DMA register reads back "QEMU CFG" (big-endian)
  assert.equal(fw.dma.pioRead(0, 4), 0x554d4551);
  assert.equal(fw.dma.pioRead(4, 4), 0x47464320);
});

Deno.test("fw_cfg: duplicate, reserved and badly named items are refused, naming the module", () => {
  const dir = new FwCfgDirectory();
  dir.addFile("etc/a", new Uint8Array(1));
  assert.throws(() => dir.addFile("etc/a", new Uint8Array(1)), /added twice.*|fw_cfg_directory\.ts/);
  assert.throws(() => dir.addFile("x".repeat(56), new Uint8Array(1)), /1\.\.55 printable/);
  assert.throws(() => dir.addItem(FW_CFG_KEY.FW_CFG_FILE_DIR, new Uint8Array(1)), /directory's own/);
  assert.throws(() => dir.addItem(0x20, new Uint8Array(1)), /addFile/);
});

Deno.test("fw_cfg DMA: select+read, skip, zero fill past the end; hostile requests fail without writing", () => {
  const dir = new FwCfgDirectory();
  const key = dir.addTextFile("etc/x", "abcdef");
  const { fw, mem } = device(dir);
  mem.fill(0x2000, 16, 0x55);
  assert.equal(dma(fw, mem, 0x1000, (key << 16) | 0x08 | 0x02, 2, 0x2000), 0);
  assert.equal(dma(fw, mem, 0x1000, 0x04, 1, 0), 0); // skip "c"
  assert.equal(dma(fw, mem, 0x1000, 0x02, 6, 0x2002), 0);
  assert.equal(new TextDecoder().decode(mem.read(0x2000, 8)), "abdef\0\0\0");
  assert.equal(mem.readU8(0x2008), 0x55, "nothing past the requested length");
  // a destination outside RAM, or one that runs off its end: error bit, nothing written
  assert.equal(dma(fw, mem, 0x1000, (key << 16) | 0x0a, 6, 0xfffff000), 1);
  assert.equal(dma(fw, mem, 0x1000, (key << 16) | 0x0a, 0x1000, RAM - 8), 1);
  assert.equal(dma(fw, mem, 0x1000, (key << 16) | 0x0a, 0xffffffff, 0), 1);
  assert.equal(dma(fw, mem, 0x1000, (key << 16) | 0x0a, 4, 2n ** 63n), 1);
  // writes are refused: nothing vmd serves is guest-writable
  assert.equal(dma(fw, mem, 0x1000, (key << 16) | 0x08 | 0x10, 2, 0x2000), 1);
  assert.equal(new TextDecoder().decode(readItem(fw, key, 6)), "abcdef");
  // an access structure outside RAM is ignored (no status to write)
  fw.dma.pioWrite(0, 4, 0x01000000);
  fw.dma.pioWrite(4, 4, 0);
  assert.equal(fw.dmaErrors, 6);
});

Deno.test("BIOS config: e820, boot order paths and the files SeaBIOS reads", () => {
  assert.equal(pciBootPath(1), "/pci@i0cf8/*@1");
  assert.equal(scsiBootPath(0x0a, 0, 0), "/pci@i0cf8/*@a/*@0/*@0,0");
  const e = e820Bytes([{ address: 0x100000, length: 0x200000, type: 1 }]);
  assert.equal(e.length, 20);
  assert.equal(new DataView(e.buffer).getBigUint64(8, true), 0x200000n);
  const dir = biosFwCfg({
    ram: [{ gpa: 0, size: 64 << 20 }],
    reserved: [{ gpa: 0xfffbc000, size: 0x4000 }],
    cpus: 2,
    bootOrder: [pciBootPath(1)],
    serialPort: 0x3f8,
  });
  assert.deepEqual(dir.fileNames, [
    "etc/e820",
    "bootorder",
    "etc/sercon-port",
    "etc/screen-and-debug",
    "opt/org.seabios/pci64",
  ]);
});

Deno.test("BIOS image: a wrong size or no reset-vector jump is refused, naming the file", () => {
  assert.throws(
    () => placeBios(new Uint8Array(1000), "/x/small.bin"),
    (e: Error) =>
      e instanceof BiosImageError && /\/x\/small\.bin: a BIOS image of 1000 bytes/.test(e.message),
  );
  assert.throws(() => placeBios(new Uint8Array(512 << 10), "/x/big.bin"), /big\.bin.*64 to 256 KiB/);
  assert.throws(
    () => placeBios(new Uint8Array(128 << 10), "/x/zero.bin"),
    /zero\.bin: no jump at the reset vector/,
  );
  const ok = new Uint8Array(128 << 10);
  ok[ok.length - 16] = 0xea;
  const p = placeBios(ok, "ok.bin");
  assert.equal(p.highBase, 0xfffe0000);
  assert.equal(p.lowBase, 0xe0000);
});

const DISK_LINE = new RegExp(`${DISK_BOOT_LINE}\\r?\\n`);

kvmTest(
  "vmd run boots a disk's boot sector through SeaBIOS as QEMU -M pc does, with the same line",
  async () => {
    const disk = await buildBootDisk();
    const log = await Deno.makeTempFile({ suffix: ".log" });
    try {
      const vmd = await runCli(["run", "-m", "64M", "-d", disk, "-B", "disk", "--bios-log", log]);
      const firmware = await Deno.readTextFile(log);
      assert.equal(vmd.code, BOOT_EXIT_STATUS, `${vmd.stderr}\nSeaBIOS log:\n${firmware}`);
      assert.match(vmd.stdout, DISK_LINE, vmd.stdout);
      assert.match(vmd.stdout, /SeaBIOS \(version/, "the BIOS's own text reaches the serial console");
      assert.match(firmware, /Found QEMU fw_cfg/);
      assert.match(firmware, /Searching bootorder for: \/pci@i0cf8\/\*@1/);
      const qemu = await runQemuBios([
        "-drive",
        `file=${disk},format=raw,if=none,id=d0`,
        "-device",
        "virtio-blk-pci,drive=d0",
      ]);
      assert.equal(qemu.exitValue, BOOT_EXIT_STATUS, qemu.stderr);
      assert.match(qemu.output, DISK_LINE, qemu.output);
      assert.equal(vmd.stdout.match(DISK_LINE)?.[0].trim(), qemu.output.match(DISK_LINE)?.[0].trim());
    } finally {
      await Deno.remove(log);
    }
  },
);

kvmTest(
  "vmd run: a missing BIOS, a bad BIOS image and -B with a kernel are refused, naming the file",
  async () => {
    const missing = await runCli(["run", "-m", "64M", "-b", "/nonexistent/bios.bin"]);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /\/nonexistent\/bios\.bin/);
    const bad = await Deno.makeTempFile({ suffix: ".bin" });
    try {
      await Deno.writeFile(bad, new Uint8Array(3000));
      const r = await runCli(["run", "-m", "64M", "-b", bad]);
      assert.equal(r.code, 1);
      assert.match(r.stderr, new RegExp(`${bad}: a BIOS image of 3000 bytes`));
    } finally {
      await Deno.remove(bad);
    }
    const kernel = await buildKitGuest("hello");
    const b = await runCli(["run", "-m", "64M", "-b", kernel.path, "-B", "disk"]);
    assert.equal(b.code, 1);
    assert.match(b.stderr, /-B disk chooses what the BIOS boots; .* is a kernel/);
    const nodisk = await runCli(["run", "-m", "64M", "-B", "disk"]);
    assert.equal(nodisk.code, 1);
    assert.match(nodisk.stderr, /boot device disk: the VM has no disk; attach one \(-d\)/);
  },
);

kvmTest(
  "vmd: a vm.conf VM without a kernel and vmctl start -d boot their disk through the BIOS",
  async () => {
    const disk = await buildBootDisk();
    const copy = (name: string) => Deno.copyFile(disk, name);
    const d = await TestDaemon.start("");
    try {
      // vm.conf: no `boot`, `boot device disk` (the boot sector reads its sector 1 back and exits with 0x31)
      await copy(`${d.dir}/conf.img`);
      await Deno.writeTextFile(
        `${d.dir}/more.conf`,
        `vm "fromconf" {\n  memory 64M\n  disk "${d.dir}/conf.img"\n  boot device disk\n}\n`,
      );
      assert.equal((await d.vmctl(["load", `${d.dir}/more.conf`])).code, 0);
      const conf = await d.waitState("fromconf", "stopped", 60_000).catch((e) => {
        throw new Error(`${e.message}\n${d.log}`);
      });
      assert.equal(conf.lastExit, `guest wrote ${BOOT_EXIT_STATUS} to the exit port`, d.log);
      // vmctl start -d -B disk: an ad hoc VM booting through the default BIOS
      await copy(`${d.dir}/adhoc.img`);
      const r = await d.vmctl(["start", "-m", "64M", "-d", `${d.dir}/adhoc.img`, "-B", "disk", "adhoc"]);
      assert.equal(r.code, 0, r.stderr);
      const adhoc = await d.waitState("adhoc", "stopped", 60_000);
      assert.equal(adhoc.lastExit, `guest wrote ${BOOT_EXIT_STATUS} to the exit port`, d.log);
      const bad = await d.vmctl(["start", "-B", "floppy", "x"]);
      assert.equal(bad.code, 1);
      assert.match(bad.stderr, /unknown boot device floppy/);
    } finally {
      await d.cleanup();
    }
  },
);
