/**
 * One PCI function's configuration space (256 bytes, header type 0) in a SharedArrayBuffer, so every vCPU
 * worker sees the same registers. A second 256-byte array holds which bits the guest may write; BAR sizing
 * falls out of it: a BAR's writable bits are its address bits, so writing all ones reads back the size mask.
 *
 * @module
 */

/** Bytes of one function's shared state: the config space, then its write mask. */
export const PCI_FUNCTION_STATE_SIZE = 512;

/** Config register offsets used across the PCI code. */
export const PCI_REG = {
  VENDOR_ID: 0x00,
  DEVICE_ID: 0x02,
  COMMAND: 0x04,
  STATUS: 0x06,
  REVISION: 0x08,
  CLASS_PROG: 0x09,
  HEADER_TYPE: 0x0e,
  BAR0: 0x10,
  SUBSYSTEM_VENDOR_ID: 0x2c,
  SUBSYSTEM_ID: 0x2e,
  CAPABILITIES: 0x34,
  INTERRUPT_LINE: 0x3c,
  INTERRUPT_PIN: 0x3d,
} as const;

/** Command register: memory space decoding. */
export const PCI_COMMAND_MEMORY = 0x2;
/** Status register: the function has a capability list. */
export const PCI_STATUS_CAP_LIST = 0x10;
/** BAR flag: 64-bit memory BAR. */
export const PCI_BAR_MEM_64 = 0x4;

/** What the VMM says about a function when it creates it. */
export interface PciFunctionInfo {
  /** Vendor id. */
  readonly vendor: number;
  /** Device id. */
  readonly device: number;
  /** Class code, subclass and programming interface as 0xCCSSPP. */
  readonly classCode: number;
  /** Revision id. */
  readonly revision?: number;
  /** Subsystem vendor id. */
  readonly subsystemVendor?: number;
  /** Subsystem id. */
  readonly subsystem?: number;
  /** Interrupt pin (1 = INTA), 0 for none. */
  readonly interruptPin?: number;
  /** The GSI written in the Interrupt Line register. */
  readonly interruptLine?: number;
}

/** A refused configuration (bad BAR size, capability list full). */
export class PciConfigError extends Error {
  /** Builds the error. */
  constructor(message: string) {
    super(message);
    this.name = "PciConfigError";
  }
}

/** A function's configuration space over shared memory. */
export class PciConfigSpace {
  /** The shared state (config bytes then write mask). */
  readonly state: SharedArrayBuffer;
  readonly #cfg: Uint8Array;
  readonly #mask: Uint8Array;
  readonly #view: DataView;
  #capEnd = 0x40;

  /** Over an existing state buffer (in a worker), or a new one. */
  constructor(state: SharedArrayBuffer = new SharedArrayBuffer(PCI_FUNCTION_STATE_SIZE)) {
    if (state.byteLength < PCI_FUNCTION_STATE_SIZE) {
      throw new PciConfigError(`PCI function state needs ${PCI_FUNCTION_STATE_SIZE} bytes`);
    }
    this.state = state;
    this.#cfg = new Uint8Array(state, 0, 256);
    this.#mask = new Uint8Array(state, 256, 256);
    this.#view = new DataView(state, 0, 256);
  }

  /** A new type-0 function with `info`'s identity; command, cache line, latency and interrupt line writable. */
  static create(info: PciFunctionInfo): PciConfigSpace {
    const s = new PciConfigSpace();
    const v = s.#view;
    v.setUint16(PCI_REG.VENDOR_ID, info.vendor, true);
    v.setUint16(PCI_REG.DEVICE_ID, info.device, true);
    v.setUint8(PCI_REG.REVISION, info.revision ?? 0);
    v.setUint8(0x09, info.classCode & 0xff);
    v.setUint8(0x0a, (info.classCode >> 8) & 0xff);
    v.setUint8(0x0b, (info.classCode >> 16) & 0xff);
    v.setUint16(PCI_REG.SUBSYSTEM_VENDOR_ID, info.subsystemVendor ?? 0, true);
    v.setUint16(PCI_REG.SUBSYSTEM_ID, info.subsystem ?? 0, true);
    v.setUint8(PCI_REG.INTERRUPT_PIN, info.interruptPin ?? 0);
    v.setUint8(PCI_REG.INTERRUPT_LINE, info.interruptLine ?? 0);
    // memory space, bus master, parity, SERR, INTx disable
    s.#mask[PCI_REG.COMMAND] = 0x46;
    s.#mask[PCI_REG.COMMAND + 1] = 0x05;
    s.#mask[0x0c] = 0xff; // cache line size
    s.#mask[0x0d] = 0xff; // latency timer
    s.#mask[PCI_REG.INTERRUPT_LINE] = 0xff;
    return s;
  }

  /** Declares a memory BAR of `size` bytes (a power of two ≥ 16) at `address`; 64-bit takes two slots. */
  setMemoryBar(index: number, size: number, address: number, is64 = false): void {
    if (!Number.isInteger(index) || index < 0 || index > (is64 ? 4 : 5)) {
      throw new PciConfigError(`BAR ${index} does not exist${is64 ? " for a 64-bit BAR" : ""}`);
    }
    if (size < 16 || size > 2 ** 31 || (size & (size - 1)) !== 0) {
      throw new PciConfigError(`BAR size ${size} is not a power of two between 16 bytes and 2 GiB`);
    }
    if (address % size !== 0) {
      throw new PciConfigError(`BAR address 0x${address.toString(16)} is not aligned`);
    }
    const off = PCI_REG.BAR0 + 4 * index;
    this.#view.setUint32(off, (address >>> 0) | (is64 ? PCI_BAR_MEM_64 : 0), true);
    new DataView(this.state, 256, 256).setUint32(off, ~(size - 1) >>> 0, true);
    if (is64) {
      this.#view.setUint32(off + 4, Math.floor(address / 2 ** 32), true);
      new DataView(this.state, 256, 256).setUint32(off + 4, 0xffffffff, true);
    }
  }

  /** Appends a capability (its bytes from the cap id on; the next pointer is filled in); returns its offset. */
  addCapability(body: Uint8Array): number {
    const at = this.#capEnd;
    if (body.length < 2 || at + body.length > 256) throw new PciConfigError("capability list is full");
    this.#cfg.set(body, at);
    this.#cfg[at + 1] = 0;
    if (at === 0x40) this.#cfg[PCI_REG.CAPABILITIES] = at;
    else {
      let p = this.#cfg[PCI_REG.CAPABILITIES];
      while (this.#cfg[p + 1] !== 0) p = this.#cfg[p + 1];
      this.#cfg[p + 1] = at;
    }
    this.#view.setUint16(
      PCI_REG.STATUS,
      this.#view.getUint16(PCI_REG.STATUS, true) | PCI_STATUS_CAP_LIST,
      true,
    );
    this.#capEnd = (at + body.length + 3) & ~3;
    return at;
  }

  /** Lets the guest write the bits of `mask` in byte `reg` (e.g. a capability's control bits). */
  setWritable(reg: number, mask: number): void {
    if (reg < 0x40 || reg > 0xff) {
      throw new PciConfigError(`register 0x${reg.toString(16)} is not capability space`);
    }
    this.#mask[reg] = mask & 0xff;
  }

  /** The offset of the first capability with id `id`, if any. */
  findCapability(id: number): number | undefined {
    for (let p = this.#cfg[PCI_REG.CAPABILITIES], n = 0; p !== 0 && n < 48; p = this.#cfg[p + 1], n++) {
      if (this.#cfg[p] === id) return p;
    }
    return undefined;
  }

  /** Reads `size` (1, 2, 4) bytes at `reg` (little-endian). Never throws: out of range reads all ones. */
  read(reg: number, size: number): number {
    if (reg < 0 || reg + size > 256) return size === 4 ? 0xffffffff : (1 << (8 * size)) - 1;
    let v = 0;
    for (let i = size - 1; i >= 0; i--) v = (v * 256) + Atomics.load(this.#cfg, reg + i);
    return v;
  }

  /** Writes `size` bytes at `reg`; only writable bits change. */
  write(reg: number, size: number, value: number): void {
    if (reg < 0 || reg + size > 256) return;
    for (let i = 0; i < size; i++) {
      const m = this.#mask[reg + i];
      if (m === 0) continue;
      const b = (value >>> (8 * i)) & 0xff;
      Atomics.store(this.#cfg, reg + i, (Atomics.load(this.#cfg, reg + i) & ~m) | (b & m));
    }
  }

  /** True when memory decoding is on. */
  memoryEnabled(): boolean {
    return (this.read(PCI_REG.COMMAND, 2) & PCI_COMMAND_MEMORY) !== 0;
  }

  /** BAR `index`'s size (0 when not implemented). */
  barSize(index: number): number {
    const mask = new DataView(this.state, 256, 256).getUint32(PCI_REG.BAR0 + 4 * index, true);
    return mask === 0 ? 0 : ((~mask) >>> 0) + 1;
  }

  /** BAR `index`'s current address (memory BARs; 64-bit ones include their high half). */
  barAddress(index: number): number {
    const lo = this.read(PCI_REG.BAR0 + 4 * index, 4);
    const base = (lo & ~0xf) >>> 0;
    if ((lo & 0x6) === PCI_BAR_MEM_64 && index < 5) {
      return this.read(PCI_REG.BAR0 + 4 * index + 4, 4) * 2 ** 32 + base;
    }
    return base;
  }
}
