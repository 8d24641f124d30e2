/**
 * vmd's ACPI tables reaching a BIOS through fw_cfg: the `etc/table-loader` script decoded back from its bytes
 * and run here the way SeaBIOS runs it (a small interpreter written for this test, not the generator's code),
 * and a real boot: a disk image built at test time finds the RSDP as an OS does and lists the tables, under
 * vmd (vmd's tables, OEM `VMD   `) and under QEMU `-M pc` (QEMU's, OEM `BOCHS `).
 */
import assert from "node:assert/strict";
import { type AcpiMachine, buildAcpiTables } from "../src/acpi/acpi_tables.ts";
import {
  ACPI_RSDP_FILE,
  ACPI_TABLES_FILE,
  acpiLoaderCommands,
  AcpiLoaderError,
  encodeLoaderScript,
  TABLE_LOADER_FILE,
} from "../src/firmware/acpi_loader.ts";
import { biosFwCfg } from "../src/firmware/bios_config.ts";
import { createFwCfgState, FwCfg } from "../src/devices/fw_cfg.ts";
import { GuestMemory } from "../src/memory/guest_memory.ts";
import { FW_CFG_KEY } from "../src/firmware/fw_cfg_items.ts";
import { ACPI_PROBE_EXIT_STATUS, buildAcpiProbeDisk } from "../examples/guests/boot/build.ts";
import { kvmTest, runCli } from "./kvm_support.ts";
import { runQemuBios } from "./qemu_support.ts";

const MACHINE: AcpiMachine = {
  cpus: 2,
  pciRoutes: [{ slot: 1, gsi: 16 }, { slot: 2, gsi: 17 }],
  com1: { port: 0x3f8, irq: 4 },
};

/** One decoded script entry, read field by field from the 128 bytes (little-endian, names NUL-padded). */
type Entry =
  | { cmd: 1; file: string; align: number; zone: number }
  | { cmd: 2; dest: string; src: string; offset: number; size: number }
  | { cmd: 3; file: string; offset: number; start: number; length: number };

function name(b: Uint8Array, at: number): string {
  const field = b.subarray(at, at + 56);
  const end = field.indexOf(0);
  assert.ok(end > 0, "a file name is NUL-terminated inside its 56 bytes");
  assert.ok(field.subarray(end).every((x) => x === 0), "and NUL-padded");
  return new TextDecoder().decode(field.subarray(0, end));
}

function decode(script: Uint8Array): Entry[] {
  assert.equal(script.length % 128, 0);
  const v = new DataView(script.buffer, script.byteOffset, script.length);
  const out: Entry[] = [];
  for (let at = 0; at < script.length; at += 128) {
    const cmd = v.getUint32(at, true);
    const a = at + 4;
    if (cmd === 1) {
      out.push({ cmd, file: name(script, a), align: v.getUint32(a + 56, true), zone: script[a + 60] });
    } else if (cmd === 2) {
      out.push({
        cmd,
        dest: name(script, a),
        src: name(script, a + 56),
        offset: v.getUint32(a + 112, true),
        size: script[a + 116],
      });
    } else if (cmd === 3) {
      out.push({
        cmd,
        file: name(script, a),
        offset: v.getUint32(a + 56, true),
        start: v.getUint32(a + 60, true),
        length: v.getUint32(a + 64, true),
      });
    } else assert.fail(`unknown command ${cmd} at ${at}`);
  }
  return out;
}

const sum8 = (b: Uint8Array) => b.reduce((s, x) => (s + x) & 0xff, 0);

/**
 * Runs a script as SeaBIOS's romfile loader does: each ALLOCATE copies its file to the next address of its
 * zone, ADD_POINTER adds the source's address to the little-endian field, ADD_CHECKSUM subtracts the range's
 * sum from the checksum byte.
 */
function runScript(entries: Entry[], files: Record<string, Uint8Array>, zones: Record<number, number>) {
  const placed: Record<string, { bytes: Uint8Array; address: number }> = {};
  for (const e of entries) {
    if (e.cmd === 1) {
      assert.equal(placed[e.file], undefined, `${e.file} allocated once`);
      assert.equal(zones[e.zone] % e.align, 0, `zone ${e.zone} base aligned for ${e.file}`);
      placed[e.file] = { bytes: files[e.file].slice(), address: zones[e.zone] };
    } else if (e.cmd === 2) {
      const d = placed[e.dest];
      const s = placed[e.src];
      assert.ok(d && s, "a pointer names allocated files");
      assert.ok(e.offset + e.size <= d.bytes.length);
      let value = 0n;
      for (let i = 0; i < e.size; i++) value |= BigInt(d.bytes[e.offset + i]) << BigInt(8 * i);
      value += BigInt(s.address);
      for (let i = 0; i < e.size; i++) d.bytes[e.offset + i] = Number((value >> BigInt(8 * i)) & 0xffn);
    } else {
      const f = placed[e.file];
      assert.ok(f && e.start + e.length <= f.bytes.length && e.offset < f.bytes.length);
      f.bytes[e.offset] = (f.bytes[e.offset] - sum8(f.bytes.subarray(e.start, e.start + e.length))) & 0xff;
    }
  }
  return placed;
}

Deno.test("ACPI loader: the script decodes to allocations, then pointers, then checksums", () => {
  const set = buildAcpiTables(MACHINE, 0);
  const entries = decode(encodeLoaderScript(acpiLoaderCommands(set)));
  assert.deepEqual(entries.slice(0, 2), [
    { cmd: 1, file: ACPI_TABLES_FILE, align: 64, zone: 1 },
    { cmd: 1, file: ACPI_RSDP_FILE, align: 16, zone: 2 },
  ]);
  const kinds = entries.map((e) => e.cmd).join("");
  assert.match(kinds, /^112+3+$/, "every pointer before every checksum");
  const pointers = entries.filter((e) => e.cmd === 2);
  assert.equal(pointers.length, set.pointers.length);
  assert.ok(pointers.every((p) => p.src === ACPI_TABLES_FILE), "every pointer targets the tables");
  assert.deepEqual(
    pointers.filter((p) => p.dest === ACPI_RSDP_FILE).map((p) => [p.offset, p.size]),
    [[24, 8]],
    "the RSDP's XSDT address",
  );
  const checks = entries.filter((e) => e.cmd === 3);
  // one per table but the FACS (which has no checksum), then the RSDP's 20-byte one before its extended one
  assert.equal(checks.length, set.entries.length - 1 + 2);
  assert.deepEqual(checks.slice(-2), [
    { cmd: 3, file: ACPI_RSDP_FILE, offset: 8, start: 0, length: 20 },
    { cmd: 3, file: ACPI_RSDP_FILE, offset: 32, start: 0, length: 36 },
  ]);
  for (const t of set.entries.filter((t) => t.signature !== "FACS")) {
    assert.ok(
      checks.some((c) => c.file === ACPI_TABLES_FILE && c.start === t.offset && c.length === t.length),
      `${t.signature} is summed`,
    );
  }
  assert.throws(() => acpiLoaderCommands(buildAcpiTables(MACHINE, 0xe0040)), AcpiLoaderError);
  assert.throws(
    () => encodeLoaderScript([{ command: "allocate", file: "x".repeat(56), align: 16, zone: 1 }]),
    /1\.\.55 bytes/,
  );
});

Deno.test("ACPI loader: run as SeaBIOS runs it, the tables sum to zero and point where they should", () => {
  const high = 0x3ff_0000;
  const fseg = 0xf5a40;
  const dir = biosFwCfg({ ram: [{ gpa: 0, size: 64 << 20 }], reserved: [], cpus: 2, acpi: MACHINE });
  assert.deepEqual(dir.fileNames.slice(-3), [ACPI_TABLES_FILE, ACPI_RSDP_FILE, TABLE_LOADER_FILE]);
  // read the three files back through the fw_cfg device, as the BIOS does
  const mem = new GuestMemory({
    sab: new SharedArrayBuffer(1 << 20),
    offset: 0,
    regions: [{ gpa: 0, size: 1 << 20 }],
  });
  const fw = new FwCfg(dir.freeze(), createFwCfgState(), mem);
  const read = (key: number, n: number) => {
    fw.io.pioWrite(0, 2, key);
    return Uint8Array.from({ length: n }, () => fw.io.pioRead(1, 1));
  };
  const count = new DataView(read(FW_CFG_KEY.FW_CFG_FILE_DIR, 4).buffer).getUint32(0, false);
  const d = read(FW_CFG_KEY.FW_CFG_FILE_DIR, 4 + 64 * count);
  const dv = new DataView(d.buffer);
  const files: Record<string, Uint8Array> = {};
  for (let i = 0; i < count; i++) {
    const at = 4 + 64 * i;
    files[name(d, at + 8)] = read(dv.getUint16(at + 4, false), dv.getUint32(at, false));
  }
  const placed = runScript(decode(files[TABLE_LOADER_FILE]), files, { 1: high, 2: fseg });
  const tables = placed[ACPI_TABLES_FILE];
  const rsdp = placed[ACPI_RSDP_FILE];
  assert.equal(tables.address, high);
  assert.equal(rsdp.address, fseg);

  // what an OS sees: every checksum zero, every pointer at its table
  const tv = new DataView(tables.bytes.buffer);
  const rv = new DataView(rsdp.bytes.buffer);
  const sig = (addr: number) => new TextDecoder().decode(tables.bytes.subarray(addr - high, addr - high + 4));
  assert.equal(sum8(rsdp.bytes.subarray(0, 20)), 0, "RSDP checksum");
  assert.equal(sum8(rsdp.bytes), 0, "RSDP extended checksum");
  const xsdt = Number(rv.getBigUint64(24, true));
  assert.equal(sig(xsdt), "XSDT");
  const at = (addr: number) => addr - high;
  const listed: string[] = [];
  for (let p = at(xsdt) + 36; p < at(xsdt) + tv.getUint32(at(xsdt) + 4, true); p += 8) {
    const t = Number(tv.getBigUint64(p, true));
    const len = tv.getUint32(at(t) + 4, true);
    assert.equal(sum8(tables.bytes.subarray(at(t), at(t) + len)), 0, `${sig(t)} checksum`);
    listed.push(sig(t));
  }
  assert.deepEqual(listed, ["FACP", "APIC"]);
  const fadt = Number(tv.getBigUint64(at(xsdt) + 36, true));
  assert.equal(sig(tv.getUint32(at(fadt) + 36, true)), "FACS");
  assert.equal(sig(tv.getUint32(at(fadt) + 40, true)), "DSDT");
  assert.equal(Number(tv.getBigUint64(at(fadt) + 140, true)), tv.getUint32(at(fadt) + 40, true));
  const dsdt = tv.getUint32(at(fadt) + 40, true);
  assert.equal(sum8(tables.bytes.subarray(at(dsdt), at(dsdt) + tv.getUint32(at(dsdt) + 4, true))), 0);
  assert.equal(tv.getUint32(at(fadt) + 76, true), 0x608, "the PM timer the acpi-pm device serves");

  // and the bytes are what the generator links for those addresses itself
  const direct = buildAcpiTables(MACHINE, high);
  assert.deepEqual(tables.bytes, direct.tables);
  assert.deepEqual(rsdp.bytes, direct.rsdp);
});

const PROBE =
  /ACPI-PROBE rsdp=([0-9a-f]{8}) oem=(.{6}) rev=([0-9a-f]{2}) (xsdt|rsdt)=([0-9a-f]{8}) (ok|bad)\r?\n/;
const TABLES = /ACPI-PROBE tables:([^\r\n]*)\r?\n/;
const DSDT = /ACPI-PROBE dsdt=(\S+) pmtmr=([0-9a-f]{4}) (ticking|stopped)\r?\n/;

/** What the probe printed, or a failure that shows all of it. */
function probe(output: string) {
  const head = output.match(PROBE);
  const tables = output.match(TABLES);
  const dsdt = output.match(DSDT);
  assert.ok(head && tables && dsdt && /ACPI-PROBE done/.test(output), `the probe's lines:\n${output}`);
  return {
    rsdp: parseInt(head[1], 16),
    oem: head[2],
    revision: parseInt(head[3], 16),
    root: head[4],
    rootAddress: parseInt(head[5], 16),
    rootSum: head[6],
    tables: tables[1].trim().split(" "),
    dsdt: dsdt[1],
    pmTimer: parseInt(dsdt[2], 16),
    timer: dsdt[3],
  };
}

kvmTest(
  "SeaBIOS places vmd's ACPI tables from fw_cfg: a boot image finds vmd's under vmd and QEMU's under QEMU",
  async () => {
    const disk = await buildAcpiProbeDisk();
    const log = await Deno.makeTempFile({ suffix: ".log" });
    try {
      const vmd = await runCli(["run", "-m", "64M", "-d", disk, "-B", "disk", "--bios-log", log]);
      const firmware = await Deno.readTextFile(log);
      assert.equal(
        vmd.code,
        ACPI_PROBE_EXIT_STATUS,
        `${vmd.stderr}\n${vmd.stdout}\nSeaBIOS log:\n${firmware}`,
      );
      const ours = probe(vmd.stdout);
      assert.deepEqual(
        {
          oem: ours.oem,
          revision: ours.revision,
          root: ours.root,
          rootSum: ours.rootSum,
          tables: ours.tables,
        },
        { oem: "VMD   ", revision: 2, root: "xsdt", rootSum: "ok", tables: ["FACP", "APIC"] },
        vmd.stdout,
      );
      assert.ok(ours.rsdp >= 0xf0000 && ours.rsdp % 16 === 0, "the RSDP in the F segment");
      assert.ok(ours.rootAddress >= 1 << 20 && ours.rootAddress < 64 << 20, "the tables in high RAM");
      assert.equal(ours.dsdt, "DSDT", "the FADT's DSDT pointer was relocated and its checksum fixed");
      assert.deepEqual([ours.pmTimer, ours.timer], [0x608, "ticking"], "the acpi-pm device serves the timer");
      // SeaBIOS read the DSDT it was given (it looks for the keyboard there) and did not fall back to its own
      assert.match(firmware, /ACPI: parse DSDT at/, firmware);
      assert.doesNotMatch(firmware, /parse error|internal error|WARNING/i, firmware);

      const qemu = await runQemuBios([
        "-drive",
        `file=${disk},format=raw,if=none,id=d0`,
        "-device",
        "virtio-blk-pci,drive=d0",
      ]);
      assert.equal(qemu.exitValue, ACPI_PROBE_EXIT_STATUS, `${qemu.stderr}\n${qemu.output}`);
      const theirs = probe(qemu.output);
      assert.equal(theirs.oem, "BOCHS ", qemu.output);
      assert.equal(theirs.rootSum, "ok", qemu.output);
      assert.ok(theirs.tables.includes("FACP") && theirs.tables.includes("APIC"), qemu.output);
      assert.ok(
        theirs.tables.every((t) => !t.endsWith("!")),
        `every QEMU table sums to zero: ${qemu.output}`,
      );
      assert.equal(theirs.dsdt, "DSDT", qemu.output);
      assert.notDeepEqual(theirs.tables, ours.tables, "two different table sets, both walked");
    } finally {
      await Deno.remove(log);
    }
  },
);
