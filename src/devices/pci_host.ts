/**
 * The PCI host bridge's configuration mechanism #1: the address register at 0xcf8 and the data window at
 * 0xcfc..0xcff. With no device behind an address, reads return all ones — how a guest learns a slot is empty.
 * The address register reads back what was written (Linux checks this to detect mechanism #1).
 *
 * @module
 */
import type { PioDevice } from "./bus.ts";

/** A function that answers configuration reads for (bus, device, function, register); undefined = absent. */
export type PciConfigReader = (
  bus: number,
  dev: number,
  fn: number,
  reg: number,
  size: number,
) => number | undefined;

/** A function that takes configuration writes for (bus, device, function, register). */
export type PciConfigWriter = (
  bus: number,
  dev: number,
  fn: number,
  reg: number,
  size: number,
  value: number,
) => void;

/** The 0xcf8..0xcff port window. The address latch lives in shared memory so every vCPU sees the same one. */
export class PciConfigPorts implements PioDevice {
  /** Device name. */
  readonly name = "pci-host";
  readonly #addr: Int32Array;
  readonly #read: PciConfigReader;
  readonly #write: PciConfigWriter;

  /** `state` is a 4-byte SharedArrayBuffer; `read` answers for present functions, `write` takes writes. */
  constructor(
    state: SharedArrayBuffer,
    read: PciConfigReader = () => undefined,
    write: PciConfigWriter = () => {},
  ) {
    this.#addr = new Int32Array(state, 0, 1);
    this.#read = read;
    this.#write = write;
  }

  /** Reads the address register (0xcf8, 32-bit) or the data window. */
  pioRead(offset: number, size: number): number {
    if (offset < 4) {
      return offset === 0 && size === 4 ? Atomics.load(this.#addr, 0) >>> 0 : 0xffffffff >>> (32 - 8 * size);
    }
    const a = Atomics.load(this.#addr, 0) >>> 0;
    const ones = size === 4 ? 0xffffffff : size === 2 ? 0xffff : 0xff;
    if ((a & 0x80000000) === 0) return ones;
    const reg = (a & 0xfc) | (offset - 4);
    const v = this.#read((a >>> 16) & 0xff, (a >>> 11) & 0x1f, (a >>> 8) & 7, reg, size);
    return v === undefined ? ones : v;
  }

  /** Writes the address register or, through the data window, the selected function's register. */
  pioWrite(offset: number, size: number, value: number): void {
    if (offset < 4) {
      if (offset === 0 && size === 4) Atomics.store(this.#addr, 0, value | 0);
      return;
    }
    const a = Atomics.load(this.#addr, 0) >>> 0;
    if ((a & 0x80000000) === 0) return;
    this.#write((a >>> 16) & 0xff, (a >>> 11) & 0x1f, (a >>> 8) & 7, (a & 0xfc) | (offset - 4), size, value);
  }
}
