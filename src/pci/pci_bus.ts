/**
 * PCI bus 0 as a vCPU worker sees it: functions by slot (a host bridge at 00:00.0, devices from 00:01.0),
 * configuration reads and writes for the 0xcf8 ports, and one MMIO window over the PCI hole that sends an
 * access to whichever BAR currently decodes it. The BAR addresses are read from the shared config space on
 * every access, so a guest that moves a BAR (or turns memory decoding off) is followed at once, on every vCPU.
 *
 * @module
 */
import type { MmioDevice } from "../devices/bus.ts";
import type { PciConfigSpace } from "./config_space.ts";

/** Start of the 32-bit PCI hole where the VMM places BARs. */
export const PCI_MMIO_START = 0xc000_0000;
/** End of the PCI MMIO window (the I/O APIC follows). */
export const PCI_MMIO_END = 0xfec0_0000;

/** One function on the bus: its config space and the register model behind each BAR. */
export interface PciDevice {
  /** Its slot on bus 0 (function 0). */
  readonly slot: number;
  /** Its config space. */
  readonly config: PciConfigSpace;
  /** The register model behind each implemented memory BAR, by BAR index. */
  readonly bars: readonly (MmioDevice | undefined)[];
  /** Called after the guest wrote config register `reg` (e.g. to act on an MSI-X mask change). */
  readonly configWritten?: (reg: number, size: number) => void;
}

/**
 * The identity of the host bridge at 00:00.0: QEMU's generic PCIe host bridge, with the subsystem ids QEMU
 * gives its host bridges (Red Hat, "QEMU virtual machine"), by which SeaBIOS recognises a QEMU-compatible
 * machine and looks for fw_cfg.
 */
export const HOST_BRIDGE = {
  vendor: 0x1b36,
  device: 0x0008,
  classCode: 0x060000,
  subsystemVendor: 0x1af4,
  subsystem: 0x1100,
} as const;

/** Bus 0: configuration access and BAR dispatch. */
export class PciBus implements MmioDevice {
  /** Device name. */
  readonly name = "pci-mmio";
  readonly #slots: (PciDevice | undefined)[] = new Array(32).fill(undefined);
  readonly #devices: PciDevice[] = [];

  /** Adds `device` at its slot. */
  add(device: PciDevice): void {
    if (!Number.isInteger(device.slot) || device.slot < 0 || device.slot > 31) {
      throw new RangeError(`PCI slot ${device.slot} is not 0..31`);
    }
    if (this.#slots[device.slot] !== undefined) throw new RangeError(`PCI slot ${device.slot} is taken`);
    this.#slots[device.slot] = device;
    this.#devices.push(device);
  }

  /** A configuration read; undefined for an absent function (the ports then return all ones). */
  configRead(bus: number, dev: number, fn: number, reg: number, size: number): number | undefined {
    if (bus !== 0 || fn !== 0) return undefined;
    return this.#slots[dev]?.config.read(reg, size);
  }

  /** A configuration write; dropped for an absent function. */
  configWrite(bus: number, dev: number, fn: number, reg: number, size: number, value: number): void {
    if (bus !== 0 || fn !== 0) return;
    const d = this.#slots[dev];
    if (d === undefined) return;
    d.config.write(reg, size, value);
    d.configWritten?.(reg, size);
  }

  #hitModel: MmioDevice | undefined = undefined;
  #hitOffset = 0;

  /** Finds the BAR decoding `addr` (into #hitModel/#hitOffset, allocation-free); false when none does. */
  #claim(addr: number): boolean {
    const devs = this.#devices;
    for (let d = 0; d < devs.length; d++) {
      const dev = devs[d];
      if (!dev.config.memoryEnabled()) continue;
      for (let b = 0; b < dev.bars.length; b++) {
        const model = dev.bars[b];
        if (model === undefined) continue;
        const base = dev.config.barAddress(b);
        const size = dev.config.barSize(b);
        if (addr >= base && addr < base + size) {
          this.#hitModel = model;
          this.#hitOffset = addr - base;
          return true;
        }
      }
    }
    return false;
  }

  /** An MMIO read inside the window, relative to {@link PCI_MMIO_START}. */
  mmioRead(offset: number, data: Uint8Array, len: number): void {
    if (this.#claim(PCI_MMIO_START + offset)) this.#hitModel!.mmioRead(this.#hitOffset, data, len);
    else data.fill(0xff, 0, len);
  }

  /** An MMIO write inside the window, relative to {@link PCI_MMIO_START}; dropped when no BAR decodes it. */
  mmioWrite(offset: number, data: Uint8Array, len: number): void {
    if (this.#claim(PCI_MMIO_START + offset)) this.#hitModel!.mmioWrite(this.#hitOffset, data, len);
  }
}
