/**
 * The ACPI fixed-hardware power-management registers (ACPI 6.5, section 4.8) the FADT points at: the PM1a
 * event block (status and enable), the PM1a control block (SCI_EN, SLP_TYP, SLP_EN) and the 24-bit PM
 * timer. What it models: the power button (the VMM sets PWRBTN_STS; the SCI on IRQ 9 is asserted while an
 * enabled status bit is set) and the soft-off request (SLP_TYP = S5 with SLP_EN ends the VM). There is no SMI
 * command port: the machine is always in ACPI mode, so SCI_EN reads 1 from reset. The timer's overflow event
 * (TMR_STS) is not raised.
 *
 * The registers live in a SharedArrayBuffer: every vCPU's copy of this model and the VMM's main thread (which
 * presses the button) see the same ones.
 *
 * @module
 */
import type { PioDevice } from "./bus.ts";

/** First port of the PM registers (the PM1a event block), where QEMU's PIIX4 puts them too. */
export const ACPI_PM_BASE = 0x600;
/** Ports the registers span. */
export const ACPI_PM_SIZE = 0x0c;
/** PM1a_EVT_BLK: PM1 status (2 bytes) then PM1 enable (2 bytes). */
export const PM1A_EVT_BLK = ACPI_PM_BASE;
/** PM1_EVT_LEN. */
export const PM1_EVT_LEN = 4;
/** PM1a_CNT_BLK. */
export const PM1A_CNT_BLK = ACPI_PM_BASE + 4;
/** PM1_CNT_LEN. */
export const PM1_CNT_LEN = 2;
/** PM_TMR_BLK. */
export const PM_TMR_BLK = ACPI_PM_BASE + 8;
/** PM_TMR_LEN. */
export const PM_TMR_LEN = 4;
/** The SCI's ISA interrupt (and GSI), level triggered, active high. */
export const SCI_IRQ = 9;
/** The SLP_TYP value the DSDT's `_S5_` names for soft-off. */
export const SLP_TYP_S5 = 5;
/** The PM timer's frequency in Hz. */
export const PM_TIMER_HZ = 3_579_545;

/** PM1 status/enable bits. */
export const PM1_EVT = { TMR: 1 << 0, PWRBTN: 1 << 8, WAK: 1 << 15 } as const;
/** PM1 control bits. */
export const PM1_CNT = { SCI_EN: 1 << 0, SLP_TYP_SHIFT: 10, SLP_TYP_MASK: 7 << 10, SLP_EN: 1 << 13 } as const;

const TIMER_EPOCH_MS = Date.UTC(2020, 0, 1);
const STS = 0;
const EN = 1;
const CNT = 2;
/** Bytes of shared state. */
export const ACPI_PM_STATE_SIZE = 12;

/** Creates the registers' shared state at reset: SCI_EN set, nothing pending or enabled. */
export function createAcpiPmState(): SharedArrayBuffer {
  const sab = new SharedArrayBuffer(ACPI_PM_STATE_SIZE);
  new Int32Array(sab)[CNT] = PM1_CNT.SCI_EN;
  return sab;
}

/**
 * Drives the SCI to match the registers: asserted while a status bit is set whose enable bit is set. Called
 * by whichever thread changed them; it re-reads after driving the line, so that when two threads race (the
 * VMM sets a status bit while a vCPU clears one) the last one to drive the line drives the final level.
 */
export function syncSci(state: Int32Array, irqLine: (gsi: number, level: 0 | 1) => void): void {
  let level = -1;
  for (;;) {
    const now = (Atomics.load(state, STS) & Atomics.load(state, EN) & PM1_EVT.PWRBTN) !== 0 ? 1 : 0;
    if (now === level) return;
    level = now;
    irqLine(SCI_IRQ, now);
  }
}

/**
 * Presses the power button: sets PWRBTN_STS and raises the SCI. Returns false, doing nothing, while the guest
 * has not enabled the power-button event (PWRBTN_EN): no ACPI driver is there to answer it.
 */
export function pressPowerButton(
  sab: SharedArrayBuffer,
  irqLine: (gsi: number, level: 0 | 1) => void,
): boolean {
  const state = new Int32Array(sab);
  if ((Atomics.load(state, EN) & PM1_EVT.PWRBTN) === 0) return false;
  Atomics.or(state, STS, PM1_EVT.PWRBTN);
  syncSci(state, irqLine);
  return true;
}

/** The PM registers on a vCPU's port bus. */
export class AcpiPm implements PioDevice {
  /** Device name. */
  readonly name = "acpi-pm";
  readonly #state: Int32Array;
  readonly #irqLine: (gsi: number, level: 0 | 1) => void;
  readonly #powerOff: () => void;
  /**
   * This worker's time origin in milliseconds since 2020 (the Unix epoch moved so that the tick count stays
   * an exact integer in a double): the same clock in every worker, unlike `performance.now()` alone.
   */
  readonly #origin = performance.timeOrigin - TIMER_EPOCH_MS;

  /** Builds the model over `sab`; `powerOff` ends the VM as switched off. */
  constructor(sab: SharedArrayBuffer, irqLine: (gsi: number, level: 0 | 1) => void, powerOff: () => void) {
    this.#state = new Int32Array(sab);
    this.#irqLine = irqLine;
    this.#powerOff = powerOff;
  }

  /** Reads a register (byte, word or dword accesses inside a block). */
  pioRead(offset: number, size: number): number {
    let v: number;
    if (offset >= 8) {
      const ticks = Math.floor((this.#origin + performance.now()) * (PM_TIMER_HZ / 1000));
      v = ticks % 0x100_0000;
      return size === 4 && offset === 8 ? v : (v >>> (8 * (offset - 8))) & (size === 1 ? 0xff : 0xffff);
    }
    if (offset >= 4) v = Atomics.load(this.#state, CNT) & ~PM1_CNT.SLP_EN;
    else v = (Atomics.load(this.#state, STS) & 0xffff) | (Atomics.load(this.#state, EN) << 16);
    const shift = 8 * (offset & 3);
    return size === 4 ? v >>> 0 : (v >>> shift) & (size === 1 ? 0xff : 0xffff);
  }

  /** Writes a register: status bits are cleared by writing 1, enables and control are stored. */
  pioWrite(offset: number, size: number, value: number): void {
    if (offset >= 8) return; // the timer is read-only
    const mask = size === 4 ? 0xffffffff : size === 2 ? 0xffff : 0xff;
    const shift = 8 * (offset & 3);
    if (offset < 4) {
      // a 32-bit write covers both registers; narrower ones only the bytes written
      const wide = ((value & mask) << shift) >>> 0;
      const sts = wide & 0xffff;
      const en = wide >>> 16;
      const enBytes = ((mask << shift) >>> 16) & 0xffff;
      if (sts !== 0) Atomics.and(this.#state, STS, ~sts);
      if (enBytes !== 0) {
        const old = Atomics.load(this.#state, EN);
        Atomics.store(this.#state, EN, (old & ~enBytes) | en);
      }
      syncSci(this.#state, this.#irqLine);
      return;
    }
    const bytes = (mask << shift) & 0xffff;
    const cnt = ((value << shift) & bytes) | PM1_CNT.SCI_EN;
    const old = Atomics.load(this.#state, CNT);
    Atomics.store(this.#state, CNT, ((old & ~bytes) | cnt) & ~PM1_CNT.SLP_EN);
    if ((bytes & PM1_CNT.SLP_EN) !== 0 && (cnt & PM1_CNT.SLP_EN) !== 0) {
      const typ = (((old & ~bytes) | cnt) & PM1_CNT.SLP_TYP_MASK) >> PM1_CNT.SLP_TYP_SHIFT;
      if (typ === SLP_TYP_S5) this.#powerOff();
    }
  }
}
