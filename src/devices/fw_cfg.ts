/**
 * QEMU's fw_cfg device on the x86 ports: the selector register (0x510, 16-bit), the data register (0x511,
 * byte reads from the selected item, advancing an offset) and the DMA address register (0x514..0x51b,
 * big-endian; a write of the low half starts an operation on a `FWCfgDmaAccess` in guest RAM).
 *
 * The items are a frozen {@link FwCfgImage}; the selector, offset and DMA high half live in shared memory so
 * every vCPU sees one device. The guest is hostile: every address and length it gives is checked against
 * guest RAM, an access outside it fails with the error bit, and no transfer is larger than the item it reads.
 * Writes to items are refused (error bit): nothing vmd serves is guest-writable yet.
 *
 * @module
 */
import type { PioDevice } from "./bus.ts";
import { FwCfgImage } from "../firmware/fw_cfg_directory.ts";
import {
  FW_CFG_DMA_ACCESS_SIZE,
  FW_CFG_DMA_CTL,
  FW_CFG_DMA_SIGNATURE,
  FW_CFG_ENTRY_MASK,
} from "../firmware/fw_cfg_items.ts";
import type { GuestMemory } from "../memory/guest_memory.ts";

/** Bytes of shared state one fw_cfg device needs. */
export const FW_CFG_STATE_SIZE = 16;
/** Ports the selector and data registers span (0x510, 0x511). */
export const FW_CFG_IO_SIZE = 2;
/** Ports the DMA address register spans (0x514..0x51b). */
export const FW_CFG_DMA_SIZE = 8;

const SELECTOR = 0;
const OFFSET = 1;
const DMA_HIGH = 2;
const CTL_ERROR = FW_CFG_DMA_CTL.FW_CFG_DMA_CTL_ERROR;
const CTL_READ = FW_CFG_DMA_CTL.FW_CFG_DMA_CTL_READ;
const CTL_SKIP = FW_CFG_DMA_CTL.FW_CFG_DMA_CTL_SKIP;
const CTL_SELECT = FW_CFG_DMA_CTL.FW_CFG_DMA_CTL_SELECT;
const CTL_WRITE = FW_CFG_DMA_CTL.FW_CFG_DMA_CTL_WRITE;
const SIG_HIGH = Number(FW_CFG_DMA_SIGNATURE >> 32n);
const SIG_LOW = Number(FW_CFG_DMA_SIGNATURE & 0xffffffffn);

/** A new shared state for one device. */
export function createFwCfgState(): SharedArrayBuffer {
  return new SharedArrayBuffer(FW_CFG_STATE_SIZE);
}

const bswap32 = (v: number): number =>
  (((v & 0xff) << 24) | ((v & 0xff00) << 8) | ((v >>> 8) & 0xff00) | (v >>> 24)) >>> 0;

/** The selector/data and DMA registers of one fw_cfg device. */
export class FwCfg {
  readonly #image: FwCfgImage;
  readonly #state: Int32Array;
  readonly #memory: GuestMemory;
  /** DMA operations that failed (bad address, write, overrun): for tests and debug logs. */
  dmaErrors = 0;

  /** Over `image` (a frozen directory), shared `state` and the guest RAM DMA reaches. */
  constructor(image: SharedArrayBuffer, state: SharedArrayBuffer, memory: GuestMemory) {
    this.#image = new FwCfgImage(image);
    this.#state = new Int32Array(state, 0, 4);
    this.#memory = memory;
  }

  /** The selector/data register pair, for the port bus at 0x510. */
  readonly io: PioDevice = {
    name: "fw_cfg",
    pioRead: (offset, size) => this.#ioRead(offset, size),
    pioWrite: (offset, size, value) => this.#ioWrite(offset, size, value),
  };

  /** The DMA address register, for the port bus at 0x514. */
  readonly dma: PioDevice = {
    name: "fw_cfg-dma",
    pioRead: (offset, size) => this.#dmaRead(offset, size),
    pioWrite: (offset, size, value) => this.#dmaWrite(offset, size, value),
  };

  #select(key: number): void {
    Atomics.store(this.#state, SELECTOR, key & FW_CFG_ENTRY_MASK);
    Atomics.store(this.#state, OFFSET, 0);
  }

  #ioRead(offset: number, size: number): number {
    if (offset === 0) return 0; // the selector is write-only
    // A wide read of the data port returns that many bytes in increasing address order.
    const key = Atomics.load(this.#state, SELECTOR);
    let at = Atomics.load(this.#state, OFFSET) >>> 0;
    let value = 0;
    for (let i = 0; i < size; i++) {
      value |= this.#image.byte(key, at) << (8 * i);
      if (at < this.#image.length(key)) at++;
    }
    Atomics.store(this.#state, OFFSET, at);
    return value >>> 0;
  }

  #ioWrite(offset: number, size: number, value: number): void {
    if (offset === 0 && size === 2) this.#select(value & 0xffff);
    // writes to the data register are ignored, as QEMU does since 2.4
  }

  #dmaRead(offset: number, size: number): number {
    if (size !== 4 || (offset !== 0 && offset !== 4)) return 0;
    return bswap32(offset === 0 ? SIG_HIGH : SIG_LOW);
  }

  #dmaWrite(offset: number, size: number, value: number): void {
    if (size !== 4) return;
    const v = bswap32(value);
    if (offset === 0) {
      Atomics.store(this.#state, DMA_HIGH, v | 0);
      return;
    }
    if (offset !== 4) return;
    const high = Atomics.load(this.#state, DMA_HIGH) >>> 0;
    Atomics.store(this.#state, DMA_HIGH, 0);
    this.#runDma(high * 2 ** 32 + v);
  }

  /** Runs the `FWCfgDmaAccess` at guest address `gpa`, then writes its status into its control field. */
  #runDma(gpa: number): void {
    const mem = this.#memory;
    const at = mem.find(gpa, FW_CFG_DMA_ACCESS_SIZE);
    if (at < 0) {
      this.dmaErrors++; // nowhere to report it: the access structure itself is not in RAM
      return;
    }
    const view = mem.view;
    const control = view.getUint32(at, false);
    const length = view.getUint32(at + 4, false);
    const address = Number(view.getBigUint64(at + 8, false));
    let ok = true;
    if (control & CTL_SELECT) this.#select(control >>> 16);
    if (control & CTL_READ) ok = this.#dmaCopyOut(address, length);
    else if (control & CTL_WRITE) ok = false;
    else if (control & CTL_SKIP) this.#advance(length);
    if (!ok) this.dmaErrors++;
    view.setUint32(at, ok ? 0 : CTL_ERROR, false);
  }

  #advance(length: number): void {
    const key = Atomics.load(this.#state, SELECTOR);
    const at = Atomics.load(this.#state, OFFSET) >>> 0;
    Atomics.store(this.#state, OFFSET, Math.min(this.#image.length(key), at + length));
  }

  /** Copies `length` bytes of the selected item into guest RAM at `address`; zeros past the item's end. */
  #dmaCopyOut(address: number, length: number): boolean {
    const mem = this.#memory;
    const dst = mem.find(address, length);
    if (dst < 0) return false;
    const key = Atomics.load(this.#state, SELECTOR);
    const at = Atomics.load(this.#state, OFFSET) >>> 0;
    const src = this.#image.view(key, at, length);
    mem.bytes.set(src, dst);
    if (src.length < length) mem.bytes.fill(0, dst + src.length, dst + length);
    this.#advance(length);
    return true;
  }
}
