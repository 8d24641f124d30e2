/**
 * An Intel MultiProcessor Specification 1.4 table, so a guest without ACPI (Linux with `acpi=off`, or a kernel
 * built without it) finds its CPUs, the I/O APIC and how the 16 ISA interrupts reach it. Written into the BIOS
 * area, where Linux scans for the `_MP_` floating pointer.
 *
 * @module
 */
import type { GuestMemory } from "../memory/guest_memory.ts";
import { MPTABLE_ADDR } from "./layout.ts";

/** The local APICs' physical address. */
export const LAPIC_ADDR = 0xfee0_0000;
/** The I/O APIC's physical address. */
export const IOAPIC_ADDR = 0xfec0_0000;

const MPC_PROCESSOR = 0;
const MPC_BUS = 1;
const MPC_IOAPIC = 2;
const MPC_INTSRC = 3;
const MPC_LINTSRC = 4;
const MP_INT = 0;
const MP_NMI = 1;
const MP_EXTINT = 3;
const ISA_BUS = 0;
const PCI_BUS = 1;
/** Interrupt flags for PCI INTx: active high, level triggered (how KVM_IRQ_LINE drives the pin). */
const PCI_INT_FLAGS = 0x0d;

/** A PCI function's INTA routing: bus 0 `slot` to IOAPIC pin `gsi`. */
export interface MpPciIrq {
  /** Device number on PCI bus 0. */
  readonly slot: number;
  /** IOAPIC pin. */
  readonly gsi: number;
}

function checksum(bytes: Uint8Array): number {
  let sum = 0;
  for (const b of bytes) sum = (sum + b) & 0xff;
  return (0x100 - sum) & 0xff;
}

/** Builds the floating pointer and configuration table for `cpus` CPUs, to be placed at `at`. */
export function buildMpTable(
  cpus: number,
  at: number = MPTABLE_ADDR,
  pciIrqs: readonly MpPciIrq[] = [],
): Uint8Array {
  if (!Number.isInteger(cpus) || cpus < 1 || cpus > 254) {
    throw new RangeError(`MP table: bad CPU count ${cpus}`);
  }
  const ioapicId = cpus;
  const entries: Uint8Array[] = [];
  for (let id = 0; id < cpus; id++) {
    const e = new Uint8Array(20);
    const v = new DataView(e.buffer);
    e[0] = MPC_PROCESSOR;
    e[1] = id; // local APIC id
    e[2] = 0x14; // local APIC version
    e[3] = 0x01 | (id === 0 ? 0x02 : 0); // enabled, bootstrap processor
    v.setUint32(4, 0x600, true); // CPU signature: family 6
    v.setUint32(8, 0x201, true); // features: FPU, APIC
    entries.push(e);
  }
  const bus = new Uint8Array(8);
  bus[0] = MPC_BUS;
  bus[1] = ISA_BUS;
  bus.set(new TextEncoder().encode("ISA   "), 2);
  entries.push(bus);
  if (pciIrqs.length > 0) {
    const pci = new Uint8Array(8);
    pci[0] = MPC_BUS;
    pci[1] = PCI_BUS;
    pci.set(new TextEncoder().encode("PCI   "), 2);
    entries.push(pci);
  }
  const ioapic = new Uint8Array(8);
  ioapic[0] = MPC_IOAPIC;
  ioapic[1] = ioapicId;
  ioapic[2] = 0x11; // I/O APIC version
  ioapic[3] = 0x01; // enabled
  new DataView(ioapic.buffer).setUint32(4, IOAPIC_ADDR, true);
  entries.push(ioapic);
  for (let irq = 0; irq < 16; irq++) {
    // ISA IRQ n reaches I/O APIC pin n, as KVM's default GSI routing wires them; flags 0: bus defaults.
    entries.push(new Uint8Array([MPC_INTSRC, MP_INT, 0, 0, ISA_BUS, irq, ioapicId, irq]));
  }
  for (const p of pciIrqs) {
    // source: PCI bus, IRQ field = (device << 2) | pin (INTA = 0)
    entries.push(
      new Uint8Array([MPC_INTSRC, MP_INT, PCI_INT_FLAGS, 0, PCI_BUS, p.slot << 2, ioapicId, p.gsi]),
    );
  }
  entries.push(new Uint8Array([MPC_LINTSRC, MP_EXTINT, 0, 0, ISA_BUS, 0, 0xff, 0])); // LINT0: ExtINT (the PIC)
  entries.push(new Uint8Array([MPC_LINTSRC, MP_NMI, 0, 0, ISA_BUS, 0, 0xff, 1])); // LINT1: NMI

  const headerSize = 44;
  const bodySize = entries.reduce((n, e) => n + e.length, 0);
  const table = new Uint8Array(16 + headerSize + bodySize);
  const v = new DataView(table.buffer);
  // Floating pointer structure.
  table.set(new TextEncoder().encode("_MP_"), 0);
  v.setUint32(4, at + 16, true); // physical address of the configuration table
  table[8] = 1; // length in 16-byte units
  table[9] = 4; // spec revision 1.4
  table[10] = checksum(table.subarray(0, 16));
  // Configuration table header.
  const h = 16;
  table.set(new TextEncoder().encode("PCMP"), h);
  v.setUint16(h + 4, headerSize + bodySize, true);
  table[h + 6] = 4;
  table.set(new TextEncoder().encode("VMD     "), h + 8); // OEM id
  table.set(new TextEncoder().encode("LINUX-KVM   "), h + 16); // product id
  v.setUint16(h + 34, entries.length, true);
  v.setUint32(h + 36, LAPIC_ADDR, true);
  let off = h + headerSize;
  for (const e of entries) {
    table.set(e, off);
    off += e.length;
  }
  table[h + 7] = checksum(table.subarray(h, h + headerSize + bodySize));
  return table;
}

/** Writes the MP table for `cpus` CPUs into guest memory at {@link MPTABLE_ADDR}. */
export function writeMpTable(mem: GuestMemory, cpus: number, pciIrqs: readonly MpPciIrq[] = []): void {
  mem.write(MPTABLE_ADDR, buildMpTable(cpus, MPTABLE_ADDR, pciIrqs));
}
