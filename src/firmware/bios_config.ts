/**
 * What a VM booting through SeaBIOS is told over fw_cfg: its memory map (`etc/e820`, plus the legacy RAM
 * size and CPU counts), the boot order (`bootorder`, OpenBSD vmd's device paths), a serial console
 * (`etc/sercon-port`, so BIOS and boot-loader text reaches COM1), no boot menu, no debug text on the screen,
 * every PCI BAR kept below 4 GiB (`opt/org.seabios/pci64`: vmd's MMIO window is the 32-bit PCI hole), and
 * vmd's ACPI tables with the loader script that places them (`etc/acpi/tables`, `etc/acpi/rsdp`,
 * `etc/table-loader`, which SeaBIOS runs; it then uses those tables, as it does QEMU's).
 *
 * @module
 */
import { FwCfgDirectory } from "./fw_cfg_directory.ts";
import { FW_CFG_KEY } from "./fw_cfg_items.ts";
import type { AcpiMachine } from "../acpi/acpi_tables.ts";
import { addAcpiFiles } from "./acpi_loader.ts";

/** e820 types. */
export const E820_TYPE = { RAM: 1, RESERVED: 2 } as const;
/** `struct e820_entry` as fw_cfg's `etc/e820` holds it: u64 address, u64 length, u32 type (packed). */
export const E820_ENTRY_SIZE = 20;

/** Where a BIOS boots from: OpenBSD vmd's `-B`. */
export type BootDevice = "disk" | "cdrom" | "net";

/** A memory map entry. */
export interface E820Entry {
  /** Guest address. */
  readonly address: number;
  /** Length in bytes. */
  readonly length: number;
  /** An {@link E820_TYPE}. */
  readonly type: number;
}

/** What the BIOS is told. */
export interface BiosConfig {
  /** RAM ranges (guest address, size). */
  readonly ram: readonly { readonly gpa: number; readonly size: number }[];
  /** Reserved ranges the BIOS must leave alone (KVM's TSS and identity-map pages). */
  readonly reserved: readonly { readonly gpa: number; readonly size: number }[];
  /** vCPUs. */
  readonly cpus: number;
  /** Boot order device paths (tried in order, nothing else after them); none: the BIOS's own order. */
  readonly bootOrder?: readonly string[];
  /** The serial console's port (COM1), or none. */
  readonly serialPort?: number;
  /**
   * What vmd's ACPI tables describe (the same as for a kernel boot); none: no ACPI tables (SeaBIOS builds
   * its own only on a chipset it knows, PIIX4 or Q35, and vmd has neither).
   */
  readonly acpi?: AcpiMachine;
}

/** SeaBIOS's device path for the PCI function in `slot` of bus 0 (a virtio-blk disk boots by it). */
export function pciBootPath(slot: number): string {
  return `/pci@i0cf8/*@${slot.toString(16)}`;
}

/** SeaBIOS's device path for SCSI `target`/`lun` behind the PCI function in `slot` (virtio-scsi). */
export function scsiBootPath(slot: number, target: number, lun: number): string {
  return `${pciBootPath(slot)}/*@0/*@${target.toString(16)},${lun.toString(16)}`;
}

/** The `etc/e820` bytes for `entries`. */
export function e820Bytes(entries: readonly E820Entry[]): Uint8Array {
  const out = new Uint8Array(E820_ENTRY_SIZE * entries.length);
  const v = new DataView(out.buffer);
  entries.forEach((e, i) => {
    v.setBigUint64(E820_ENTRY_SIZE * i, BigInt(e.address), true);
    v.setBigUint64(E820_ENTRY_SIZE * i + 8, BigInt(e.length), true);
    v.setUint32(E820_ENTRY_SIZE * i + 16, e.type, true);
  });
  return out;
}

/** The fw_cfg directory for a SeaBIOS boot. */
export function biosFwCfg(c: BiosConfig): FwCfgDirectory {
  const dir = new FwCfgDirectory();
  const ramBytes = c.ram.reduce((sum, r) => sum + r.size, 0);
  dir.addU64(FW_CFG_KEY.FW_CFG_RAM_SIZE, BigInt(ramBytes));
  dir.addU16(FW_CFG_KEY.FW_CFG_NB_CPUS, c.cpus);
  dir.addU16(FW_CFG_KEY.FW_CFG_MAX_CPUS, c.cpus);
  dir.addU16(FW_CFG_KEY.FW_CFG_NOGRAPHIC, c.serialPort === undefined ? 0 : 1);
  dir.addU16(FW_CFG_KEY.FW_CFG_BOOT_MENU, 0);
  dir.addU32(FW_CFG_KEY.FW_CFG_IRQ0_OVERRIDE, 1); // the in-kernel PIT's IRQ 0 reaches IOAPIC pin 2
  dir.addFile(
    "etc/e820",
    e820Bytes([
      ...c.ram.map((r) => ({ address: r.gpa, length: r.size, type: E820_TYPE.RAM })),
      ...c.reserved.map((r) => ({ address: r.gpa, length: r.size, type: E820_TYPE.RESERVED })),
    ]),
  );
  if (c.bootOrder !== undefined) dir.addTextFile("bootorder", [...c.bootOrder, "HALT"].join("\n"));
  if (c.serialPort !== undefined) dir.addIntFile("etc/sercon-port", c.serialPort, 2);
  dir.addIntFile("etc/screen-and-debug", 0, 1);
  dir.addTextFile("opt/org.seabios/pci64", "no");
  if (c.acpi !== undefined) addAcpiFiles(dir, c.acpi);
  return dir;
}
