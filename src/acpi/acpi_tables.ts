/**
 * The one ACPI generator: from a VM's description it builds every table, lays them out one after another
 * (FACS, DSDT, FADT, MADT, XSDT), fills the pointers between them for a given base address and sums them.
 * It also says which fields are pointers and which bytes are checksums, relative to the two blobs — what a
 * firmware's table loader (QEMU's `etc/table-loader` over fw_cfg) needs to relocate them itself. Direct
 * kernel boot uses {@link writeAcpiTables}: the RSDP at {@link ACPI_RSDP_ADDR}, where an OS's scan of the BIOS
 * area finds it, and the tables right after.
 *
 * @module
 */
import type { GuestMemory } from "../memory/guest_memory.ts";
import { ACPI_RSDP_ADDR, ACPI_TABLES_END } from "../boot/layout.ts";
import { buildDsdt, type PciRoute } from "./dsdt.ts";
import {
  buildFacs,
  buildFadt,
  buildMadt,
  buildRsdp,
  buildXsdt,
  checksum,
  FADT,
  INTI_LEVEL_HIGH,
  RSDP,
  RSDP_SIZE,
  SDT_HEADER_SIZE,
} from "./tables.ts";
import { SCI_IRQ } from "../devices/acpi_pm.ts";
import { IOAPIC_ADDR, LAPIC_ADDR } from "../boot/mptable.ts";
import { PCI_MMIO_END, PCI_MMIO_START } from "../pci/pci_bus.ts";

/** What the tables describe. */
export interface AcpiMachine {
  /** vCPUs (local APIC ids 0..cpus-1). */
  readonly cpus: number;
  /** The INTA routing of the PCI functions. */
  readonly pciRoutes: readonly PciRoute[];
  /** COM1: base port and ISA IRQ. */
  readonly com1: { readonly port: number; readonly irq: number };
}

/** Which of the two blobs a pointer or checksum is in. */
export type AcpiFile = "tables" | "rsdp";

/** A table's place in the `tables` blob. */
export interface AcpiTableEntry {
  /** Its signature. */
  readonly signature: string;
  /** Offset in the blob. */
  readonly offset: number;
  /** Length in bytes. */
  readonly length: number;
}

/** A pointer field: `size` bytes at `offset` of `file` hold the address of `target` (an offset in `tables`). */
export interface AcpiPointer {
  /** The blob the field is in. */
  readonly file: AcpiFile;
  /** The field's offset. */
  readonly offset: number;
  /** The field's width. */
  readonly size: 4 | 8;
  /** The offset in `tables` it points at. */
  readonly target: number;
}

/** A checksum byte at `at` that makes `length` bytes from `start` of `file` sum to zero. */
export interface AcpiChecksum {
  /** The blob. */
  readonly file: AcpiFile;
  /** First byte summed. */
  readonly start: number;
  /** Bytes summed. */
  readonly length: number;
  /** Where the checksum byte is. */
  readonly at: number;
}

/** The generated tables. */
export interface AcpiTableSet {
  /** Every table but the RSDP, back to back, pointers filled for `base` and checksums set. */
  readonly tables: Uint8Array;
  /** The RSDP, its XSDT pointer filled for `base`. */
  readonly rsdp: Uint8Array;
  /** The address `tables` was linked for. */
  readonly base: number;
  /** Each table's place in `tables`. */
  readonly entries: readonly AcpiTableEntry[];
  /** Every pointer field. */
  readonly pointers: readonly AcpiPointer[];
  /** Every checksum (tables, then the RSDP's two). */
  readonly checksums: readonly AcpiChecksum[];
}

/** A machine the tables cannot describe. */
export class AcpiTablesError extends Error {
  /** Builds the error. */
  constructor(message: string) {
    super(message);
    this.name = "AcpiTablesError";
  }
}

/** Most vCPUs the tables describe with xAPIC entries (APIC ids 0..254; 255 is the broadcast id). */
export const ACPI_MAX_CPUS = 254;

/** Builds every table for `machine`, linked for `base` (0 for a loader that relocates them). */
export function buildAcpiTables(machine: AcpiMachine, base = 0): AcpiTableSet {
  if (!Number.isInteger(machine.cpus) || machine.cpus < 1 || machine.cpus > ACPI_MAX_CPUS) {
    throw new AcpiTablesError(`ACPI tables describe 1..${ACPI_MAX_CPUS} vCPUs, not ${machine.cpus}`);
  }
  if (base % 64 !== 0) {
    throw new AcpiTablesError(`ACPI tables base 0x${base.toString(16)} is not 64-byte aligned`);
  }
  const facs = buildFacs();
  const dsdt = buildDsdt({
    pciRoutes: machine.pciRoutes,
    pciMmio: { start: PCI_MMIO_START, end: PCI_MMIO_END - 1 },
    com1: machine.com1,
  });
  const fadt = buildFadt();
  const madt = buildMadt({
    cpus: machine.cpus,
    lapicAddress: LAPIC_ADDR,
    ioapic: { id: machine.cpus, address: IOAPIC_ADDR, gsiBase: 0 },
    // KVM's default routing wires ISA IRQ n to I/O APIC pin n (the PIT's IRQ 0 included), so only the SCI
    // needs an override: level triggered, active high, as the PM model drives it.
    overrides: [{ irq: SCI_IRQ, gsi: SCI_IRQ, flags: INTI_LEVEL_HIGH }],
  });
  const xsdt = buildXsdt(2);
  const parts: [string, Uint8Array][] = [["FACS", facs], ["DSDT", dsdt], ["FACP", fadt], ["APIC", madt], [
    "XSDT",
    xsdt,
  ]];
  const entries: AcpiTableEntry[] = [];
  let size = 0;
  for (const [signature, bytes] of parts) {
    entries.push({ signature, offset: size, length: bytes.length });
    size += Math.ceil(bytes.length / 8) * 8;
  }
  const at = (sig: string) => entries.find((e) => e.signature === sig)!.offset;
  const tables = new Uint8Array(size);
  parts.forEach(([, bytes], i) => tables.set(bytes, entries[i].offset));
  const rsdp = buildRsdp();

  const pointers: AcpiPointer[] = [
    { file: "tables", offset: at("FACP") + FADT.firmwareCtrl, size: 4, target: at("FACS") },
    { file: "tables", offset: at("FACP") + FADT.dsdt, size: 4, target: at("DSDT") },
    { file: "tables", offset: at("FACP") + FADT.xDsdt, size: 8, target: at("DSDT") },
    { file: "tables", offset: at("XSDT") + SDT_HEADER_SIZE, size: 8, target: at("FACP") },
    { file: "tables", offset: at("XSDT") + SDT_HEADER_SIZE + 8, size: 8, target: at("APIC") },
    { file: "rsdp", offset: RSDP.xsdtAddress, size: 8, target: at("XSDT") },
  ];
  const views = { tables: new DataView(tables.buffer), rsdp: new DataView(rsdp.buffer) };
  for (const p of pointers) {
    const address = base + p.target;
    if (p.size === 4) {
      if (address > 0xffff_ffff) throw new AcpiTablesError("a 32-bit ACPI pointer cannot reach above 4 GiB");
      views[p.file].setUint32(p.offset, address, true);
    } else views[p.file].setBigUint64(p.offset, BigInt(address), true);
  }

  const checksums: AcpiChecksum[] = entries.filter((e) => e.signature !== "FACS").map((e) => ({
    file: "tables",
    start: e.offset,
    length: e.length,
    at: e.offset + 9,
  }));
  checksums.push(
    { file: "rsdp", start: 0, length: 20, at: RSDP.checksum },
    { file: "rsdp", start: 0, length: RSDP_SIZE, at: RSDP.extendedChecksum },
  );
  const blobs = { tables, rsdp };
  for (const c of checksums) {
    const b = blobs[c.file];
    b[c.at] = 0;
    b[c.at] = checksum(b.subarray(c.start, c.start + c.length));
  }
  return { tables, rsdp, base, entries, pointers, checksums };
}

/** Where the tables go after the RSDP (the FACS first: 64-byte aligned). */
export const ACPI_TABLES_ADDR = ACPI_RSDP_ADDR + 64;

/**
 * Writes the tables for `machine` into the BIOS area: the RSDP at {@link ACPI_RSDP_ADDR}, the rest after it.
 * Returns the RSDP's address, for the boot protocol (PVH `rsdp_paddr`, the zero page's `acpi_rsdp_addr`).
 */
export function writeAcpiTables(mem: GuestMemory, machine: AcpiMachine): number {
  const set = buildAcpiTables(machine, ACPI_TABLES_ADDR);
  if (ACPI_TABLES_ADDR + set.tables.length > ACPI_TABLES_END) {
    throw new AcpiTablesError(
      `ACPI tables of ${set.tables.length} bytes do not fit below 0x${ACPI_TABLES_END.toString(16)}; ` +
        "give the VM fewer vCPUs or PCI devices",
    );
  }
  mem.write(ACPI_RSDP_ADDR, set.rsdp);
  mem.write(ACPI_TABLES_ADDR, set.tables);
  return ACPI_RSDP_ADDR;
}
