/**
 * The CMOS real-time clock at ports 0x70 (index) / 0x71 (data): the current time from the host clock (BCD,
 * 24-hour, as a PC BIOS leaves it), status registers that never report an update in progress, and the
 * memory-size bytes a BIOS fills in. Without it Linux waits two seconds for a clock that never ticks.
 *
 * @module
 */
import type { PioDevice } from "./bus.ts";

/** CMOS register numbers. */
export const CMOS = {
  SECONDS: 0x00,
  MINUTES: 0x02,
  HOURS: 0x04,
  WEEKDAY: 0x06,
  DAY: 0x07,
  MONTH: 0x08,
  YEAR: 0x09,
  STATUS_A: 0x0a,
  STATUS_B: 0x0b,
  STATUS_C: 0x0c,
  STATUS_D: 0x0d,
  BASE_MEM_LO: 0x15,
  BASE_MEM_HI: 0x16,
  EXT_MEM_LO: 0x17,
  EXT_MEM_HI: 0x18,
  EXT_MEM2_LO: 0x30,
  EXT_MEM2_HI: 0x31,
  CENTURY: 0x32,
  MEM_ABOVE_16M_LO: 0x34,
  MEM_ABOVE_16M_HI: 0x35,
  MEM_ABOVE_4G_LO: 0x5b,
  MEM_ABOVE_4G_MID: 0x5c,
  MEM_ABOVE_4G_HI: 0x5d,
} as const;

const STATUS_B_24H = 0x02;
const STATUS_D_VALID = 0x80;

/** The guest's RAM as the BIOS would report it. */
export interface CmosMemory {
  /** Bytes of RAM below 4 GiB. */
  readonly below4g: number;
  /** Bytes of RAM above 4 GiB. */
  readonly above4g: number;
}

const bcd = (n: number) => ((Math.floor(n / 10) << 4) | (n % 10)) & 0xff;

/** Builds the 128 CMOS bytes (without the clock, which is read live). */
export function cmosImage(mem: CmosMemory): Uint8Array {
  const c = new Uint8Array(128);
  const set16 = (lo: number, v: number) => {
    c[lo] = v & 0xff;
    c[lo + 1] = (v >> 8) & 0xff;
  };
  set16(CMOS.BASE_MEM_LO, 640);
  const extKiB = Math.min(Math.max(0, mem.below4g - 0x100000) / 1024, 0xfc00); // 1 MiB .. 64 MiB, in KiB
  set16(CMOS.EXT_MEM_LO, extKiB);
  set16(CMOS.EXT_MEM2_LO, extKiB);
  const above16m = Math.min(Math.max(0, mem.below4g - 16 * 2 ** 20) / 65536, 0xffff);
  set16(CMOS.MEM_ABOVE_16M_LO, above16m);
  const above4g = Math.floor(mem.above4g / 65536);
  c[CMOS.MEM_ABOVE_4G_LO] = above4g & 0xff;
  c[CMOS.MEM_ABOVE_4G_MID] = (above4g >> 8) & 0xff;
  c[CMOS.MEM_ABOVE_4G_HI] = (above4g >> 16) & 0xff;
  c[CMOS.STATUS_A] = 0x26; // 32.768 kHz time base, 1.024 kHz rate; UIP never set
  c[CMOS.STATUS_B] = STATUS_B_24H; // BCD, 24-hour
  c[CMOS.STATUS_D] = STATUS_D_VALID;
  return c;
}

/** The RTC register model. State (index + RAM) lives in a SharedArrayBuffer shared by every vCPU. */
export class CmosRtc implements PioDevice {
  /** Device name. */
  readonly name = "rtc";
  readonly #ram: Uint8Array;
  readonly #now: () => Date;

  /** `state` holds 1 index byte then the 128 CMOS bytes (see {@link createCmosState}). */
  constructor(state: SharedArrayBuffer, now: () => Date = () => new Date()) {
    this.#ram = new Uint8Array(state);
    this.#now = now;
  }

  /** Port read: 0x70 returns the index, 0x71 the selected register. */
  pioRead(offset: number, _size: number): number {
    if (offset === 0) return this.#ram[0];
    const reg = this.#ram[0] & 0x7f;
    const t = this.#now();
    switch (reg) {
      case CMOS.SECONDS:
        return bcd(t.getUTCSeconds());
      case CMOS.MINUTES:
        return bcd(t.getUTCMinutes());
      case CMOS.HOURS:
        return bcd(t.getUTCHours());
      case CMOS.WEEKDAY:
        return bcd(t.getUTCDay() + 1);
      case CMOS.DAY:
        return bcd(t.getUTCDate());
      case CMOS.MONTH:
        return bcd(t.getUTCMonth() + 1);
      case CMOS.YEAR:
        return bcd(t.getUTCFullYear() % 100);
      case CMOS.CENTURY:
        return bcd(Math.floor(t.getUTCFullYear() / 100));
      case CMOS.STATUS_C:
        return 0; // no interrupt flags
      default:
        return this.#ram[1 + reg];
    }
  }

  /** Port write: 0x70 selects a register (bit 7 is the NMI mask), 0x71 writes it (clock writes are ignored). */
  pioWrite(offset: number, _size: number, value: number): void {
    if (offset === 0) {
      this.#ram[0] = value & 0xff;
      return;
    }
    const reg = this.#ram[0] & 0x7f;
    if (reg <= CMOS.YEAR || reg === CMOS.STATUS_C || reg === CMOS.STATUS_D || reg === CMOS.CENTURY) return;
    if (reg === CMOS.STATUS_A) {
      this.#ram[1 + reg] = value & 0x7f; // UIP is read-only
      return;
    }
    this.#ram[1 + reg] = value & 0xff;
  }
}

/** A new RTC state buffer for a guest with `mem`. */
export function createCmosState(mem: CmosMemory): SharedArrayBuffer {
  const sab = new SharedArrayBuffer(129);
  new Uint8Array(sab).set(cmosImage(mem), 1);
  return sab;
}
