/**
 * The virtio 1.x PCI "modern" transport: the function's identity and capabilities (common, notify, ISR and
 * device config, all in BAR 0) and the register model the vCPU workers run on MMIO exits. Registers live in
 * the shared transport state ({@link W}); the device worker reads queue addresses from there and is woken
 * through the notify doorbell.
 *
 * BAR 0 layout (16 KiB): common config at 0x0000, ISR at 0x1000, device config at 0x2000, notify at 0x3000
 * (queue q notifies at 0x3000 + 4q).
 *
 * @module
 */
import type { MmioDevice } from "./bus.ts";
import { PciConfigSpace } from "../pci/config_space.ts";
import {
  DEVICE_CONFIG_OFFSET,
  DEVICE_CONFIG_SIZE,
  FEATURE,
  hasFeature,
  lockIrq,
  MAX_QUEUES,
  msixWord,
  NO_VECTOR,
  NOTIFY_EPOCH,
  Q,
  queueWord,
  STATUS,
  unlockIrq,
  W,
} from "../virtio/transport_state.ts";

/** How long a status write waits for the device worker to finish a reset. */
const RESET_WAIT_MS = 100;

/** The MSI-X capability id. */
export const PCI_CAP_MSIX = 0x11;
/** MSI-X message control: enable. */
export const MSIX_ENABLE = 0x8000;
/** MSI-X message control: function mask. */
export const MSIX_FUNCTION_MASK = 0x4000;

/** BAR 0's size. */
export const VIRTIO_BAR_SIZE = 0x4000;
/** Offsets of the regions inside BAR 0. */
export const VIRTIO_BAR = {
  COMMON: 0x0000,
  ISR: 0x1000,
  DEVICE: 0x2000,
  NOTIFY: 0x3000,
  MSIX_TABLE: 0x3800,
  MSIX_PBA: 0x3c00,
} as const;
/** Bytes between two queues' notify addresses. */
export const NOTIFY_MULTIPLIER = 4;
const COMMON_LENGTH = 0x38;
/** The virtio vendor id. */
export const VIRTIO_VENDOR = 0x1af4;
/** Virtio device types this VMM offers. */
export const VIRTIO_DEVICE_TYPE = { net: 1, blk: 2, rng: 4, scsi: 8 } as const;

const CLASS: Record<keyof typeof VIRTIO_DEVICE_TYPE, number> = {
  net: 0x020000,
  blk: 0x018000,
  rng: 0x00ff00,
  scsi: 0x010000, // mass storage, SCSI
};

function virtioCap(cfgType: number, offset: number, length: number, extra?: number): Uint8Array {
  const len = extra === undefined ? 16 : 20;
  const b = new Uint8Array(len);
  const v = new DataView(b.buffer);
  b[0] = 0x09; // vendor-specific capability
  b[2] = len;
  b[3] = cfgType;
  b[4] = 0; // BAR 0
  v.setUint32(8, offset, true);
  v.setUint32(12, length, true);
  if (extra !== undefined) v.setUint32(16, extra, true);
  return b;
}

/** The config space of a modern virtio-PCI function with BAR 0 at `barAddress` and INTA on `gsi`. */
export function virtioPciConfigSpace(
  type: keyof typeof VIRTIO_DEVICE_TYPE,
  barAddress: number,
  gsi: number,
  numQueues: number,
  configLength: number,
): PciConfigSpace {
  const id = VIRTIO_DEVICE_TYPE[type];
  const cfg = PciConfigSpace.create({
    vendor: VIRTIO_VENDOR,
    device: 0x1040 + id,
    classCode: CLASS[type],
    revision: 1,
    subsystemVendor: VIRTIO_VENDOR,
    subsystem: 0x40,
    interruptPin: 1,
    interruptLine: gsi,
  });
  cfg.setMemoryBar(0, VIRTIO_BAR_SIZE, barAddress);
  cfg.addCapability(virtioCap(1, VIRTIO_BAR.COMMON, COMMON_LENGTH));
  cfg.addCapability(virtioCap(2, VIRTIO_BAR.NOTIFY, NOTIFY_MULTIPLIER * numQueues, NOTIFY_MULTIPLIER));
  cfg.addCapability(virtioCap(3, VIRTIO_BAR.ISR, 4));
  if (configLength > 0) cfg.addCapability(virtioCap(4, VIRTIO_BAR.DEVICE, configLength));
  // MSI-X: one vector per queue plus one for configuration changes; table and PBA in BAR 0.
  const msix = new Uint8Array(12);
  const mv = new DataView(msix.buffer);
  msix[0] = PCI_CAP_MSIX;
  mv.setUint16(2, numQueues, true); // table size - 1
  mv.setUint32(4, VIRTIO_BAR.MSIX_TABLE, true);
  mv.setUint32(8, VIRTIO_BAR.MSIX_PBA, true);
  const at = cfg.addCapability(msix);
  cfg.setWritable(at + 3, 0xc0); // enable, function mask
  return cfg;
}

/** Raises or lowers an interrupt line (the vCPU's KVM_IRQ_LINE). */
export type IrqLine = (gsi: number, level: 0 | 1) => void;

/** The register model of BAR 0, one per vCPU worker, over the shared transport state. */
export class VirtioPciRegisters implements MmioDevice {
  /** Device name. */
  readonly name: string;
  readonly #w: Int32Array;
  readonly #devcfg: Uint8Array;
  readonly #gsi: number;
  readonly #irqLine: IrqLine;
  readonly #scratch = new DataView(new ArrayBuffer(COMMON_LENGTH + 8));
  readonly #scratchBytes = new Uint8Array(this.#scratch.buffer);

  /** Over `state` (see {@link W}); `irqLine` lowers the INTx line on ISR reads and resets. */
  constructor(name: string, state: SharedArrayBuffer, gsi: number, irqLine: IrqLine) {
    this.name = name;
    this.#w = new Int32Array(state, 0, DEVICE_CONFIG_OFFSET / 4);
    this.#devcfg = new Uint8Array(state, DEVICE_CONFIG_OFFSET, DEVICE_CONFIG_SIZE);
    this.#gsi = gsi;
    this.#irqLine = irqLine;
  }

  #queue(): number {
    const q = Atomics.load(this.#w, W.QUEUE_SELECT);
    return q < Atomics.load(this.#w, W.NUM_QUEUES) ? q : -1;
  }

  #q(field: number): number {
    const q = this.#queue();
    return q < 0 ? 0 : Atomics.load(this.#w, queueWord(q, field));
  }

  #fillCommon(): void {
    const s = this.#scratch;
    const w = this.#w;
    const fsel = Atomics.load(w, W.DEVICE_FEATURE_SELECT);
    const dsel = Atomics.load(w, W.DRIVER_FEATURE_SELECT);
    s.setUint32(0, fsel, true);
    s.setUint32(4, fsel === 0 ? w[W.DEVICE_FEATURES_LO] : fsel === 1 ? w[W.DEVICE_FEATURES_HI] : 0, true);
    s.setUint32(8, dsel, true);
    s.setUint32(12, dsel === 0 ? w[W.DRIVER_FEATURES_LO] : dsel === 1 ? w[W.DRIVER_FEATURES_HI] : 0, true);
    s.setUint16(16, Atomics.load(w, W.CONFIG_MSIX_VECTOR), true);
    s.setUint16(18, Atomics.load(w, W.NUM_QUEUES), true);
    // Until the device has finished resetting, status reads as NEEDS_RESET rather than 0.
    s.setUint8(20, Atomics.load(w, W.RESET_PENDING) !== 0 ? STATUS.NEEDS_RESET : Atomics.load(w, W.STATUS));
    s.setUint8(21, Atomics.load(w, W.CONFIG_GENERATION));
    s.setUint16(22, Atomics.load(w, W.QUEUE_SELECT), true);
    const exists = this.#queue() >= 0;
    s.setUint16(24, this.#q(Q.SIZE), true);
    s.setUint16(26, exists ? this.#q(Q.MSIX_VECTOR) : NO_VECTOR, true);
    s.setUint16(28, this.#q(Q.ENABLE), true);
    s.setUint16(30, exists ? this.#queue() : 0, true);
    s.setUint32(32, this.#q(Q.DESC_LO), true);
    s.setUint32(36, this.#q(Q.DESC_HI), true);
    s.setUint32(40, this.#q(Q.DRIVER_LO), true);
    s.setUint32(44, this.#q(Q.DRIVER_HI), true);
    s.setUint32(48, this.#q(Q.DEVICE_LO), true);
    s.setUint32(52, this.#q(Q.DEVICE_HI), true);
  }

  /** A read from BAR 0. */
  mmioRead(offset: number, data: Uint8Array, len: number): void {
    data.fill(0, 0, len);
    if (offset < VIRTIO_BAR.ISR) {
      if (offset + len > COMMON_LENGTH) return;
      this.#fillCommon();
      data.set(this.#scratchBytes.subarray(offset, offset + len));
    } else if (offset === VIRTIO_BAR.ISR) {
      data[0] = this.#readIsr();
    } else if (offset >= VIRTIO_BAR.MSIX_TABLE && offset < VIRTIO_BAR.MSIX_PBA) {
      const v = (offset - VIRTIO_BAR.MSIX_TABLE) >> 4;
      if (v < this.#vectors() && (offset & 3) === 0 && (len === 4 || len === 8)) {
        for (let i = 0; i < len / 4; i++) {
          const word = ((offset >> 2) & 3) + i;
          if (word > 3) break;
          const x = Atomics.load(this.#w, msixWord(v, word));
          data[4 * i] = x & 0xff;
          data[4 * i + 1] = (x >>> 8) & 0xff;
          data[4 * i + 2] = (x >>> 16) & 0xff;
          data[4 * i + 3] = (x >>> 24) & 0xff;
        }
      }
    } else if (offset === VIRTIO_BAR.MSIX_PBA && len >= 4) {
      const p = Atomics.load(this.#w, W.PENDING_VECTORS);
      data[0] = p & 0xff;
      data[1] = (p >>> 8) & 0xff;
    } else if (offset >= VIRTIO_BAR.DEVICE && offset < VIRTIO_BAR.NOTIFY) {
      const o = offset - VIRTIO_BAR.DEVICE;
      if (o + len <= Atomics.load(this.#w, W.CONFIG_LENGTH)) data.set(this.#devcfg.subarray(o, o + len));
    }
  }

  #readIsr(): number {
    const w = this.#w;
    lockIrq(w);
    const isr = Atomics.exchange(w, W.ISR, 0);
    if (Atomics.load(w, W.IRQ_ASSERTED) !== 0) {
      Atomics.store(w, W.IRQ_ASSERTED, 0);
      this.#irqLine(this.#gsi, 0);
    }
    unlockIrq(w);
    return isr & 0xff;
  }

  /** A write to BAR 0. */
  mmioWrite(offset: number, data: Uint8Array, len: number): void {
    let value = 0;
    for (let i = len - 1; i >= 0; i--) value = value * 256 + data[i];
    if (offset >= VIRTIO_BAR.NOTIFY && offset < VIRTIO_BAR.NOTIFY + NOTIFY_MULTIPLIER * MAX_QUEUES) {
      const q = (offset - VIRTIO_BAR.NOTIFY) / NOTIFY_MULTIPLIER;
      if (Number.isInteger(q) && q < Atomics.load(this.#w, W.NUM_QUEUES)) this.#ring(1 << q);
      return;
    }
    if (offset < COMMON_LENGTH) this.#writeCommon(offset, len, value);
    else if (offset >= VIRTIO_BAR.MSIX_TABLE && offset < VIRTIO_BAR.MSIX_PBA) {
      this.#writeMsix(offset, len, value);
    }
    // ISR is read-only; device config writes are not offered by our devices.
  }

  /**
   * After a config write in capability space (the MSI-X enable and function-mask bits live there): ring the
   * interrupt doorbell so that messages which became pending while masked go out now.
   */
  capabilityWritten(reg: number): void {
    if (reg < 0x40) return;
    Atomics.add(this.#w, W.IRQ_SEQ, 1);
    Atomics.notify(this.#w, W.IRQ_SEQ);
  }

  #vectors(): number {
    return Atomics.load(this.#w, W.NUM_QUEUES) + 1;
  }

  #writeMsix(offset: number, len: number, value: number): void {
    const v = (offset - VIRTIO_BAR.MSIX_TABLE) >> 4;
    if (v >= this.#vectors() || (offset & 3) !== 0 || (len !== 4 && len !== 8)) return;
    for (let i = 0; i < len / 4; i++) {
      const word = ((offset >> 2) & 3) + i;
      if (word > 3) break;
      const x = Math.floor(value / 2 ** (32 * i)) % 2 ** 32;
      if (word === 3) {
        const was = Atomics.exchange(this.#w, msixWord(v, 3), x & 1);
        // Unmasking a vector with a pending message: let the interrupt pump deliver it now.
        if ((was & 1) === 1 && (x & 1) === 0) {
          Atomics.add(this.#w, W.IRQ_SEQ, 1);
          Atomics.notify(this.#w, W.IRQ_SEQ);
        }
      } else Atomics.store(this.#w, msixWord(v, word), x | 0);
    }
  }

  #ring(bits: number): void {
    Atomics.or(this.#w, W.NOTIFY, bits);
    Atomics.notify(this.#w, W.NOTIFY);
  }

  #writeCommon(offset: number, len: number, value: number): void {
    const w = this.#w;
    const status = Atomics.load(w, W.STATUS);
    const featuresLocked = (status & STATUS.FEATURES_OK) !== 0;
    const q = this.#queue();
    const queueLocked = (status & STATUS.DRIVER_OK) !== 0;
    const setQ = (field: number, v: number) => {
      if (q >= 0 && !queueLocked && Atomics.load(w, queueWord(q, Q.ENABLE)) === 0) {
        Atomics.store(w, queueWord(q, field), v | 0);
      }
    };
    switch (offset) {
      case 0:
        if (len === 4) Atomics.store(w, W.DEVICE_FEATURE_SELECT, value | 0);
        return;
      case 8:
        if (len === 4) Atomics.store(w, W.DRIVER_FEATURE_SELECT, value | 0);
        return;
      case 12: {
        if (len !== 4 || featuresLocked) return;
        const sel = Atomics.load(w, W.DRIVER_FEATURE_SELECT);
        if (sel === 0) Atomics.store(w, W.DRIVER_FEATURES_LO, value | 0);
        else if (sel === 1) Atomics.store(w, W.DRIVER_FEATURES_HI, value | 0);
        return;
      }
      case 16:
        if (len === 2) Atomics.store(w, W.CONFIG_MSIX_VECTOR, value < this.#vectors() ? value : NO_VECTOR);
        return;
      case 20:
        if (len === 1) this.#writeStatus(value & 0xff);
        return;
      case 26:
        if (len === 2 && q >= 0) {
          Atomics.store(w, queueWord(q, Q.MSIX_VECTOR), value < this.#vectors() ? value : NO_VECTOR);
        }
        return;
      case 22:
        if (len === 2) Atomics.store(w, W.QUEUE_SELECT, value & 0xffff);
        return;
      case 24:
        if (len === 2) {
          // Only a power of two up to the maximum; anything else keeps the old size.
          const max = q >= 0 ? Atomics.load(w, queueWord(q, Q.MAX_SIZE)) : 0;
          if (value >= 1 && value <= max && (value & (value - 1)) === 0) setQ(Q.SIZE, value);
        }
        return;
      case 28:
        if (len === 2 && value === 1 && q >= 0 && !queueLocked) Atomics.store(w, queueWord(q, Q.ENABLE), 1);
        return;
      case 32:
      case 36:
      case 40:
      case 44:
      case 48:
      case 52: {
        const field = Q.DESC_LO + (offset - 32) / 4;
        if (len === 4) setQ(field, value);
        else if (len === 8) {
          // (two words; an 8-byte MMIO access reaches us as one exit)
          setQ(field, value % 2 ** 32);
          setQ(field + 1, Math.floor(value / 2 ** 32));
        }
        return;
      }
    }
  }

  #writeStatus(value: number): void {
    const w = this.#w;
    if (value === 0) {
      this.#reset();
      return;
    }
    // A driver that does not wait for a reset to read back 0 (SeaBIOS writes its next status at once) is held
    // here, briefly, until the device worker has finished the reset, as if the reset were synchronous.
    if (Atomics.load(w, W.RESET_PENDING) !== 0) Atomics.wait(w, W.RESET_PENDING, 1, RESET_WAIT_MS);
    const old = Atomics.load(w, W.STATUS);
    let next = value | (old & STATUS.NEEDS_RESET);
    if ((value & STATUS.FEATURES_OK) !== 0 && (old & STATUS.FEATURES_OK) === 0) {
      const dlo = Atomics.load(w, W.DRIVER_FEATURES_LO);
      const dhi = Atomics.load(w, W.DRIVER_FEATURES_HI);
      const ok = (dlo & ~w[W.DEVICE_FEATURES_LO]) === 0 && (dhi & ~w[W.DEVICE_FEATURES_HI]) === 0 &&
        hasFeature(dlo, dhi, FEATURE.VERSION_1);
      if (!ok) next &= ~STATUS.FEATURES_OK;
    }
    if ((next & STATUS.DRIVER_OK) !== 0 && (next & STATUS.FEATURES_OK) === 0) next &= ~STATUS.DRIVER_OK;
    Atomics.store(w, W.STATUS, next);
    if ((next & STATUS.DRIVER_OK) !== 0 && (old & STATUS.DRIVER_OK) === 0) {
      Atomics.add(w, W.EPOCH, 1);
      this.#ring(NOTIFY_EPOCH);
    }
  }

  #reset(): void {
    const w = this.#w;
    Atomics.store(w, W.RESET_PENDING, 1);
    Atomics.store(w, W.STATUS, 0);
    Atomics.store(w, W.DRIVER_FEATURES_LO, 0);
    Atomics.store(w, W.DRIVER_FEATURES_HI, 0);
    Atomics.store(w, W.DEVICE_FEATURE_SELECT, 0);
    Atomics.store(w, W.DRIVER_FEATURE_SELECT, 0);
    Atomics.store(w, W.QUEUE_SELECT, 0);
    const n = Atomics.load(w, W.NUM_QUEUES);
    Atomics.store(w, W.CONFIG_MSIX_VECTOR, NO_VECTOR);
    Atomics.store(w, W.PENDING_VECTORS, 0);
    for (let q = 0; q < n; q++) {
      Atomics.store(w, queueWord(q, Q.SIZE), Atomics.load(w, queueWord(q, Q.MAX_SIZE)));
      for (let f = Q.ENABLE; f <= Q.DEVICE_HI; f++) Atomics.store(w, queueWord(q, f), 0);
      Atomics.store(w, queueWord(q, Q.MSIX_VECTOR), NO_VECTOR);
    }
    lockIrq(w);
    Atomics.store(w, W.ISR, 0);
    if (Atomics.load(w, W.IRQ_ASSERTED) !== 0) {
      Atomics.store(w, W.IRQ_ASSERTED, 0);
      this.#irqLine(this.#gsi, 0);
    }
    unlockIrq(w);
    Atomics.add(w, W.EPOCH, 1);
    this.#ring(NOTIFY_EPOCH);
  }
}
