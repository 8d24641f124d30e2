/**
 * The I/O buses the exit loop dispatches to: port I/O (a 64 Ki-entry table, O(1) per access) and MMIO
 * (sorted ranges). Devices are register models: they see an offset inside their range and a value.
 *
 * Dispatch allocates nothing; unclaimed reads return all ones (as an empty ISA/PCI bus does) and unclaimed
 * writes are dropped, both counted.
 *
 * @module
 */

/** A device on the port I/O bus. */
export interface PioDevice {
  /** A short name for tables and errors. */
  readonly name: string;
  /** A read of `size` bytes (1, 2 or 4) at `offset` inside the device's range. */
  pioRead(offset: number, size: number): number;
  /** A write of `size` bytes at `offset`. */
  pioWrite(offset: number, size: number, value: number): void;
}

/** A device on the MMIO bus. */
export interface MmioDevice {
  /** A short name for tables and errors. */
  readonly name: string;
  /** Fills `data[0..len)` with the bytes read at `offset`. */
  mmioRead(offset: number, data: Uint8Array, len: number): void;
  /** Handles the write of `data[0..len)` at `offset`. */
  mmioWrite(offset: number, data: Uint8Array, len: number): void;
}

/** A registration that overlaps another or lies outside the bus. */
export class BusError extends Error {
  /** Builds the error. */
  constructor(message: string) {
    super(message);
    this.name = "BusError";
  }
}

const PORT_SPACE = 0x10000;
const ONES = [0, 0xff, 0xffff, 0xffffff, 0xffffffff];

/** The x86 port I/O bus (ports 0..0xffff). */
export class PioBus {
  readonly #slot = new Uint16Array(PORT_SPACE); // 0 = unclaimed, else index + 1
  readonly #devices: PioDevice[] = [];
  readonly #bases: number[] = [];
  /** Reads from unclaimed ports. */
  unclaimedReads = 0;
  /** Writes to unclaimed ports. */
  unclaimedWrites = 0;

  /** Claims ports `[base, base + length)` for `device`. */
  register(base: number, length: number, device: PioDevice): void {
    if (
      !Number.isInteger(base) || !Number.isInteger(length) || base < 0 || length <= 0 ||
      base + length > PORT_SPACE
    ) {
      throw new BusError(`${device.name}: port range 0x${base.toString(16)}+${length} is outside 0..0xffff`);
    }
    for (let p = base; p < base + length; p++) {
      const other = this.#slot[p];
      if (other !== 0) {
        throw new BusError(
          `${device.name}: port 0x${p.toString(16)} is already claimed by ${this.#devices[other - 1].name}`,
        );
      }
    }
    this.#devices.push(device);
    this.#bases.push(base);
    this.#slot.fill(this.#devices.length, base, base + length);
  }

  /** The device claiming `port`, if any. */
  deviceAt(port: number): PioDevice | undefined {
    const s = this.#slot[port];
    return s === 0 ? undefined : this.#devices[s - 1];
  }

  /** Dispatches a read; all ones when nothing claims the port. */
  read(port: number, size: number): number {
    const s = this.#slot[port];
    if (s === 0) {
      this.unclaimedReads++;
      return ONES[size];
    }
    return this.#devices[s - 1].pioRead(port - this.#bases[s - 1], size);
  }

  /** Dispatches a write; dropped when nothing claims the port. */
  write(port: number, size: number, value: number): void {
    const s = this.#slot[port];
    if (s === 0) {
      this.unclaimedWrites++;
      return;
    }
    this.#devices[s - 1].pioWrite(port - this.#bases[s - 1], size, value);
  }
}

/** The MMIO bus: non-overlapping ranges of guest physical address space. */
export class MmioBus {
  readonly #starts: number[] = [];
  readonly #ends: number[] = [];
  readonly #devices: MmioDevice[] = [];
  /** Reads from unclaimed addresses. */
  unclaimedReads = 0;
  /** Writes to unclaimed addresses. */
  unclaimedWrites = 0;

  /** Claims `[base, base + length)` for `device`. */
  register(base: number, length: number, device: MmioDevice): void {
    if (!Number.isSafeInteger(base) || !Number.isSafeInteger(length) || base < 0 || length <= 0) {
      throw new BusError(`${device.name}: bad MMIO range 0x${base.toString(16)}+${length}`);
    }
    const end = base + length;
    for (let i = 0; i < this.#devices.length; i++) {
      if (base < this.#ends[i] && this.#starts[i] < end) {
        throw new BusError(
          `${device.name}: MMIO range 0x${base.toString(16)}+0x${length.toString(16)} overlaps ${
            this.#devices[i].name
          }`,
        );
      }
    }
    let at = 0;
    while (at < this.#starts.length && this.#starts[at] < base) at++;
    this.#starts.splice(at, 0, base);
    this.#ends.splice(at, 0, end);
    this.#devices.splice(at, 0, device);
  }

  #find(addr: number): number {
    let lo = 0;
    let hi = this.#starts.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      if (addr < this.#starts[mid]) hi = mid - 1;
      else if (addr >= this.#ends[mid]) lo = mid + 1;
      else return mid;
    }
    return -1;
  }

  /** Dispatches a read into `data[0..len)`; all ones when unclaimed. */
  read(addr: number, data: Uint8Array, len: number): void {
    const i = this.#find(addr);
    if (i < 0) {
      this.unclaimedReads++;
      data.fill(0xff, 0, len);
      return;
    }
    this.#devices[i].mmioRead(addr - this.#starts[i], data, len);
  }

  /** Dispatches a write of `data[0..len)`; dropped when unclaimed. */
  write(addr: number, data: Uint8Array, len: number): void {
    const i = this.#find(addr);
    if (i < 0) {
      this.unclaimedWrites++;
      return;
    }
    this.#devices[i].mmioWrite(addr - this.#starts[i], data, len);
  }
}
