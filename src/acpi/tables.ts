/**
 * Builders for the fixed-layout ACPI tables (ACPI 6.5, chapter 5): the common table header and checksum,
 * the RSDP (revision 2), XSDT, MADT, FADT (revision 6) and FACS. Each builder returns the table's bytes with
 * its pointer fields at zero and its checksum unset: {@link ../acpi/acpi_tables.ts} lays the tables out, fills
 * the pointers and sums them last.
 *
 * @module
 */
import {
  PM1_CNT_LEN,
  PM1_EVT_LEN,
  PM1A_CNT_BLK,
  PM1A_EVT_BLK,
  PM_TMR_BLK,
  PM_TMR_LEN,
  SCI_IRQ,
} from "../devices/acpi_pm.ts";

/** The OEM id in every header and the RSDP. */
export const OEM_ID = "VMD   ";
/** The OEM table id in every header. */
export const OEM_TABLE_ID = "VMDACPI ";
/** Bytes of the common system description table header. */
export const SDT_HEADER_SIZE = 36;
/** Bytes of a revision 2 RSDP. */
export const RSDP_SIZE = 36;

const ascii = (s: string) => new TextEncoder().encode(s);

/** The 8-bit checksum byte that makes `bytes` sum to zero (with the byte itself currently zero). */
export function checksum(bytes: Uint8Array): number {
  let sum = 0;
  for (const b of bytes) sum = (sum + b) & 0xff;
  return (0x100 - sum) & 0xff;
}

/** A table of `length` bytes with its header filled (checksum zero), and a DataView on it. */
export function sdt(
  signature: string,
  revision: number,
  length: number,
): { bytes: Uint8Array; view: DataView } {
  const bytes = new Uint8Array(length);
  const view = new DataView(bytes.buffer);
  bytes.set(ascii(signature), 0);
  view.setUint32(4, length, true);
  bytes[8] = revision;
  bytes.set(ascii(OEM_ID), 10);
  bytes.set(ascii(OEM_TABLE_ID), 16);
  view.setUint32(24, 1, true); // OEM revision
  bytes.set(ascii("VMD "), 28); // creator id
  view.setUint32(32, 1, true); // creator revision
  return { bytes, view };
}

/** Offsets of the RSDP's fields. */
export const RSDP = {
  checksum: 8,
  rsdtAddress: 16,
  length: 20,
  xsdtAddress: 24,
  extendedChecksum: 32,
} as const;

/** A revision 2 RSDP with no RSDT (an OS uses the XSDT); the XSDT address is filled by the caller. */
export function buildRsdp(): Uint8Array {
  const bytes = new Uint8Array(RSDP_SIZE);
  bytes.set(ascii("RSD PTR "), 0);
  bytes.set(ascii(OEM_ID), 9);
  bytes[15] = 2;
  new DataView(bytes.buffer).setUint32(RSDP.length, RSDP_SIZE, true);
  return bytes;
}

/** An XSDT with `entries` 64-bit table addresses (filled by the caller). */
export function buildXsdt(entries: number): Uint8Array {
  return sdt("XSDT", 1, SDT_HEADER_SIZE + 8 * entries).bytes;
}

/** What the MADT describes. */
export interface MadtOptions {
  /** Enabled processors: local APIC ids 0..cpus-1, ACPI processor UIDs the same. */
  readonly cpus: number;
  /** The local APICs' address. */
  readonly lapicAddress: number;
  /** The I/O APIC's id, address and first GSI. */
  readonly ioapic: { readonly id: number; readonly address: number; readonly gsiBase: number };
  /** Interrupt source overrides: ISA `irq` arrives at `gsi` with MPS INTI `flags`. */
  readonly overrides: readonly { readonly irq: number; readonly gsi: number; readonly flags: number }[];
}

/** MADT interrupt controller structure types. */
export const MADT_TYPE = { LocalApic: 0, IoApic: 1, InterruptSourceOverride: 2, LocalApicNmi: 4 } as const;
/** MADT flag: the machine also has dual 8259 PICs. */
const PCAT_COMPAT = 1;
/** MPS INTI flags: active high (01), level triggered (11 << 2). */
export const INTI_LEVEL_HIGH = 0x000d;

/** The MADT (revision 5): one enabled local APIC per CPU, the I/O APIC, the overrides, LINT1 as NMI. */
export function buildMadt(o: MadtOptions): Uint8Array {
  const size = 44 + 8 * o.cpus + 12 + 10 * o.overrides.length + 6;
  const { bytes, view } = sdt("APIC", 5, size);
  view.setUint32(36, o.lapicAddress, true);
  view.setUint32(40, PCAT_COMPAT, true);
  let at = 44;
  for (let id = 0; id < o.cpus; id++) {
    bytes.set([MADT_TYPE.LocalApic, 8, id, id], at);
    view.setUint32(at + 4, 1, true); // enabled
    at += 8;
  }
  bytes.set([MADT_TYPE.IoApic, 12, o.ioapic.id, 0], at);
  view.setUint32(at + 4, o.ioapic.address, true);
  view.setUint32(at + 8, o.ioapic.gsiBase, true);
  at += 12;
  for (const ov of o.overrides) {
    bytes.set([MADT_TYPE.InterruptSourceOverride, 10, 0, ov.irq], at); // bus 0: ISA
    view.setUint32(at + 4, ov.gsi, true);
    view.setUint16(at + 8, ov.flags, true);
    at += 10;
  }
  bytes.set([MADT_TYPE.LocalApicNmi, 6, 0xff, 0, 0, 1], at); // all processors, flags: bus default, LINT1
  return bytes;
}

/** Offsets of the FADT fields that hold pointers. */
export const FADT = { firmwareCtrl: 36, dsdt: 40, xDsdt: 140 } as const;
/** Bytes of a revision 6 FADT. */
export const FADT_SIZE = 276;
/** FADT flags. */
export const FADT_FLAGS = { WBINVD: 1 << 0, PROC_C1: 1 << 2, SLP_BUTTON: 1 << 5, RTC_S4: 1 << 7 } as const;
/** IA-PC boot architecture flags. */
export const IAPC_BOOT_ARCH = { LEGACY_DEVICES: 1 << 0, I8042: 1 << 1, VGA_NOT_PRESENT: 1 << 2 } as const;

/** A generic address structure for `width` bits of system I/O at `port`, accessed as `access` (1..4). */
function ioGas(view: DataView, at: number, port: number, width: number, access: number): void {
  view.setUint8(at, 1); // system I/O space
  view.setUint8(at + 1, width);
  view.setUint8(at + 2, 0);
  view.setUint8(at + 3, access);
  view.setBigUint64(at + 4, BigInt(port), true);
}

/**
 * The FADT (revision 6, not hardware-reduced): the SCI on IRQ 9, the PM1a event and control blocks and PM
 * timer of {@link ../devices/acpi_pm.ts}, no SMI command port (always in ACPI mode), a fixed-feature power
 * button and no sleep button, a legacy PC with an i8042 and no VGA, the RTC's century at CMOS 0x32.
 */
export function buildFadt(): Uint8Array {
  const { bytes, view } = sdt("FACP", 6, FADT_SIZE);
  view.setUint16(46, SCI_IRQ, true);
  view.setUint32(56, PM1A_EVT_BLK, true);
  view.setUint32(64, PM1A_CNT_BLK, true);
  view.setUint32(76, PM_TMR_BLK, true);
  bytes[88] = PM1_EVT_LEN;
  bytes[89] = PM1_CNT_LEN;
  bytes[91] = PM_TMR_LEN;
  view.setUint16(96, 101, true); // P_LVL2_LAT > 100: C2 not supported
  view.setUint16(98, 1001, true); // P_LVL3_LAT > 1000: C3 not supported
  bytes[108] = 0x32; // CENTURY
  view.setUint16(
    109,
    IAPC_BOOT_ARCH.LEGACY_DEVICES | IAPC_BOOT_ARCH.I8042 | IAPC_BOOT_ARCH.VGA_NOT_PRESENT,
    true,
  );
  view.setUint32(
    112,
    FADT_FLAGS.WBINVD | FADT_FLAGS.PROC_C1 | FADT_FLAGS.SLP_BUTTON | FADT_FLAGS.RTC_S4,
    true,
  );
  bytes[131] = 5; // FADT minor version: ACPI 6.5
  ioGas(view, 148, PM1A_EVT_BLK, PM1_EVT_LEN * 8, 2);
  ioGas(view, 172, PM1A_CNT_BLK, PM1_CNT_LEN * 8, 2);
  ioGas(view, 208, PM_TMR_BLK, PM_TMR_LEN * 8, 3);
  bytes.set(ascii("VMD-KVM "), 268); // hypervisor vendor identity
  return bytes;
}

/** Bytes of the FACS. */
export const FACS_SIZE = 64;

/** The FACS (version 2): no waking vector, no global lock. It has no checksum; it must be 64-byte aligned. */
export function buildFacs(): Uint8Array {
  const bytes = new Uint8Array(FACS_SIZE);
  bytes.set(ascii("FACS"), 0);
  new DataView(bytes.buffer).setUint32(4, FACS_SIZE, true);
  bytes[32] = 2; // version
  return bytes;
}
