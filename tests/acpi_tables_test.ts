/**
 * The ACPI generator: the AML encoder's edge cases, the tables' layout, pointers and checksums, and — with
 * ACPICA's `iasl` — every table disassembled without a complaint and the DSDT recompiled to the same bytes.
 */
import assert from "node:assert/strict";
import { eisaId, int, nameString, pkgLength } from "../src/acpi/aml.ts";
import {
  ACPI_TABLES_ADDR,
  type AcpiMachine,
  AcpiTablesError,
  buildAcpiTables,
} from "../src/acpi/acpi_tables.ts";
import { ACPI_RSDP_ADDR } from "../src/boot/layout.ts";

const MACHINE: AcpiMachine = {
  cpus: 4,
  pciRoutes: [{ slot: 1, gsi: 16 }, { slot: 2, gsi: 17 }],
  com1: { port: 0x3f8, irq: 4 },
};

const sum = (b: Uint8Array) => b.reduce((s, x) => (s + x) & 0xff, 0);
const hex = (b: Uint8Array) => [...b].map((x) => x.toString(16).padStart(2, "0")).join(" ");

Deno.test("AML encoder: package lengths at each size boundary, integers in their shortest form, names, EISA ids", () => {
  assert.equal(hex(pkgLength(0)), "01");
  assert.equal(hex(pkgLength(62)), "3f");
  // 63 bytes of body need two length bytes: 65 = 0x41 → lead 0x41 (one extra byte, low nibble 1), then 0x04
  assert.equal(hex(pkgLength(63)), "41 04");
  assert.equal(hex(pkgLength(0xffd)), "4f ff");
  assert.equal(hex(pkgLength(0xffe)), "81 00 01");
  assert.equal(hex(int(0)), "00");
  assert.equal(hex(int(1)), "01");
  assert.equal(hex(int(0x10)), "0a 10");
  assert.equal(hex(int(0x1234)), "0b 34 12");
  assert.equal(hex(int(0x0001ffff)), "0c ff ff 01 00");
  assert.equal(hex(int(0x1_0000_0000n)), "0e 00 00 00 00 01 00 00 00");
  assert.equal(hex(int(0xffff_ffff_ffff_ffffn)), "ff");
  assert.equal(new TextDecoder().decode(nameString("_HID")), "_HID");
  assert.equal(hex(nameString("\\_SB.PCI0")), "5c 2e 5f 53 42 5f 50 43 49 30");
  assert.equal(hex(nameString("\\_SB.PCI0.S08")), "5c 2f 03 5f 53 42 5f 50 43 49 30 53 30 38 5f");
  assert.equal(hex(eisaId("PNP0A03")), "0c 41 d0 0a 03");
  assert.equal(hex(eisaId("PNP0501")), "0c 41 d0 05 01");
  assert.throws(() => nameString("pci0"), /A-Z/);
  assert.throws(() => eisaId("PNP0A0"), /EISA id/);
  assert.throws(() => int(-1), /integer/);
});

Deno.test("ACPI tables: RSDP → XSDT → FADT (→ FACS, DSDT) and MADT, linked for their address, every checksum zero", () => {
  const set = buildAcpiTables(MACHINE, ACPI_TABLES_ADDR);
  assert.equal(ACPI_TABLES_ADDR, ACPI_RSDP_ADDR + 64);
  assert.deepEqual(set.entries.map((e) => e.signature), ["FACS", "DSDT", "FACP", "APIC", "XSDT"]);
  const rsdp = new DataView(set.rsdp.buffer);
  assert.equal(new TextDecoder().decode(set.rsdp.subarray(0, 8)), "RSD PTR ");
  assert.equal(set.rsdp[15], 2, "revision 2");
  assert.equal(sum(set.rsdp.subarray(0, 20)), 0);
  assert.equal(sum(set.rsdp), 0);
  assert.equal(rsdp.getUint32(16, true), 0, "no RSDT");
  const addrOf = (sig: string) => ACPI_TABLES_ADDR + set.entries.find((e) => e.signature === sig)!.offset;
  assert.equal(Number(rsdp.getBigUint64(24, true)), addrOf("XSDT"));
  const t = new DataView(set.tables.buffer);
  const at = (sig: string) => addrOf(sig) - ACPI_TABLES_ADDR;
  for (const e of set.entries) {
    const bytes = set.tables.subarray(e.offset, e.offset + e.length);
    assert.equal(new TextDecoder().decode(bytes.subarray(0, 4)), e.signature);
    assert.equal(t.getUint32(e.offset + 4, true), e.length);
    if (e.signature !== "FACS") assert.equal(sum(bytes), 0, `${e.signature} checksum`);
  }
  assert.equal(addrOf("FACS") % 64, 0, "FACS 64-byte aligned");
  const xsdt = at("XSDT");
  assert.deepEqual(
    [Number(t.getBigUint64(xsdt + 36, true)), Number(t.getBigUint64(xsdt + 44, true))],
    [addrOf("FACP"), addrOf("APIC")],
  );
  const fadt = at("FACP");
  assert.equal(t.getUint32(fadt + 36, true), addrOf("FACS"));
  assert.equal(t.getUint32(fadt + 40, true), addrOf("DSDT"));
  assert.equal(Number(t.getBigUint64(fadt + 140, true)), addrOf("DSDT"));
  assert.equal(t.getUint16(fadt + 46, true), 9, "SCI on IRQ 9");
  assert.equal(t.getUint32(fadt + 112, true) & (1 << 4), 0, "fixed-feature power button");
  const madt = at("APIC");
  const ids: number[] = [];
  for (let o = madt + 44; o < madt + t.getUint32(madt + 4, true); o += set.tables[o + 1]) {
    if (set.tables[o] === 0) ids.push(set.tables[o + 3]);
  }
  assert.deepEqual(ids, [0, 1, 2, 3]);

  // relinked at 0 (for a firmware's loader), the pointer fields hold the offsets the pointer list names
  const rel = buildAcpiTables(MACHINE, 0);
  const rv = { tables: new DataView(rel.tables.buffer), rsdp: new DataView(rel.rsdp.buffer) };
  for (const p of rel.pointers) {
    const v = p.size === 4
      ? rv[p.file].getUint32(p.offset, true)
      : Number(rv[p.file].getBigUint64(p.offset, true));
    assert.equal(v, p.target);
  }
  assert.equal(rel.checksums.length, 6, "DSDT, FADT, MADT, XSDT and the RSDP's two");
  assert.throws(() => buildAcpiTables({ ...MACHINE, cpus: 0 }), AcpiTablesError);
  assert.throws(() => buildAcpiTables(MACHINE, 0x10), /aligned/);
});

function iaslMissing(): string | null {
  try {
    new Deno.Command("iasl", { args: ["-v"], stdout: "null", stderr: "null" }).outputSync();
    return null;
  } catch {
    return "iasl is not installed (apt-get install acpica-tools; scripts/prereqs.sh does this)";
  }
}

const noIasl = iaslMissing();
if (noIasl !== null) console.error(`(${noIasl}: the ACPICA cross-check is not run here)`);

Deno.test({
  name: "ACPI tables under ACPICA's iasl: each disassembles cleanly, and the DSDT recompiles to the same AML",
  ignore: noIasl !== null,
  fn: async () => {
    const set = buildAcpiTables({ ...MACHINE, cpus: 8 }, ACPI_TABLES_ADDR);
    const dir = await Deno.makeTempDir({ prefix: "vmd-acpi-" });
    try {
      const run = async (args: string[]) => {
        const out = await new Deno.Command("iasl", { args, cwd: dir, stdout: "piped", stderr: "piped" })
          .output();
        const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
        assert.ok(out.success, `iasl ${args.join(" ")}:\n${text}`);
        return text;
      };
      for (const e of set.entries) {
        const file = `${e.signature.toLowerCase()}.dat`;
        await Deno.writeFile(`${dir}/${file}`, set.tables.subarray(e.offset, e.offset + e.length));
        await run(["-d", file]);
        const dsl = await Deno.readTextFile(`${dir}/${e.signature.toLowerCase()}.dsl`);
        assert.doesNotMatch(dsl, /\b(Error|Warning|Invalid|Unknown)\b/, `${e.signature}:\n${dsl}`);
      }
      const dsdt = await Deno.readTextFile(`${dir}/dsdt.dsl`);
      for (
        const want of [
          'EisaId ("PNP0A03")',
          'EisaId ("PNP0501")',
          'EisaId ("PNP0303")',
          'EisaId ("PNP0B00")',
          "Name (_PRT, Package (0x02)",
          "Name (_S5, Package (0x04)",
          "0xFEBFFFFF",
        ]
      ) assert.ok(dsdt.includes(want), `DSDT lacks ${want}:\n${dsdt}`);
      const madt = await Deno.readTextFile(`${dir}/apic.dsl`);
      assert.equal(madt.match(/\[Processor Local APIC\]/g)?.length, 8);
      const log = await run(["-oa", "-p", "again", "dsdt.dsl"]);
      assert.match(log, /0 Errors, 0 Warnings/);
      const again = await Deno.readFile(`${dir}/again.aml`);
      const ours = set.tables.subarray(set.entries[1].offset, set.entries[1].offset + set.entries[1].length);
      assert.deepEqual(again.subarray(36), ours.subarray(36), "the AML body, compiled back by iasl");
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
