/**
 * A 16550A-compatible UART register model (8 ports, COM1 at 0x3f8): enough for polled console output and
 * input, the divisor latch, scratch register and loopback mode that Linux's 8250 driver probes.
 *
 * Its registers live in a SharedArrayBuffer so that every vCPU worker of a VM can run the same UART: each
 * access takes a tiny spin lock. Transmitted bytes go to a {@link ByteRing} read by the console's owner;
 * received bytes come from another.
 *
 * @module
 */
import type { PioDevice } from "./bus.ts";
import { ByteRing } from "../console/byte_ring.ts";

/** Register offsets from the base port. */
export const UART_REG = {
  RBR_THR_DLL: 0,
  IER_DLM: 1,
  IIR_FCR: 2,
  LCR: 3,
  MCR: 4,
  LSR: 5,
  MSR: 6,
  SCR: 7,
} as const;

/** Line status bits. */
export const UART_LSR = { DR: 0x01, OE: 0x02, THRE: 0x20, TEMT: 0x40 } as const;
const LCR_DLAB = 0x80;
const MCR_LOOP = 0x10;
const IIR_NO_INT = 0x01;
const IIR_FIFO_ENABLED = 0xc0;
const FCR_FIFO_ENABLE = 0x01;

// Slots of the shared state.
const LOCK = 0;
const IER = 1;
const LCR = 2;
const MCR = 3;
const SCR = 4;
const DLL = 5;
const DLM = 6;
const FCR = 7;
const LOOP_BYTE = 8; // -1 or the byte sent in loopback mode, waiting in RBR
const SLOTS = 9;

/** The shareable state of one UART. */
export interface UartShare {
  /** Register state. */
  readonly state: SharedArrayBuffer;
  /** Guest → host bytes. */
  readonly tx: SharedArrayBuffer;
  /** Host → guest bytes. */
  readonly rx: SharedArrayBuffer;
}

/** Creates the shared buffers for a new UART (power-on register values). */
export function createUartShare(): UartShare {
  const state = new SharedArrayBuffer(SLOTS * 4);
  const s = new Int32Array(state);
  s[LCR] = 0x03; // 8N1
  s[DLL] = 0x0c; // 9600 baud
  s[LOOP_BYTE] = -1;
  return { state, tx: ByteRing.create().sab, rx: ByteRing.create(1 << 12).sab };
}

/** The UART register model. */
export class Uart16550 implements PioDevice {
  /** Device name. */
  readonly name: string;
  readonly #s: Int32Array;
  readonly #tx: ByteRing;
  readonly #rx: ByteRing;

  /** Builds the model over shared state from {@link createUartShare}. */
  constructor(share: UartShare, name = "uart") {
    this.name = name;
    this.#s = new Int32Array(share.state);
    this.#tx = new ByteRing({ sab: share.tx });
    this.#rx = new ByteRing({ sab: share.rx });
  }

  #lock(): void {
    while (Atomics.compareExchange(this.#s, LOCK, 0, 1) !== 0) {
      // another vCPU is inside the UART for a few hundred nanoseconds
    }
  }

  #unlock(): void {
    Atomics.store(this.#s, LOCK, 0);
  }

  #rxReady(): boolean {
    return this.#s[LOOP_BYTE] >= 0 || this.#rx.available() > 0;
  }

  /** Port read. */
  pioRead(offset: number, _size: number): number {
    this.#lock();
    try {
      const s = this.#s;
      const dlab = (s[LCR] & LCR_DLAB) !== 0;
      switch (offset) {
        case UART_REG.RBR_THR_DLL: {
          if (dlab) return s[DLL];
          if (s[LOOP_BYTE] >= 0) {
            const b = s[LOOP_BYTE];
            s[LOOP_BYTE] = -1;
            return b;
          }
          const b = this.#rx.tryPop();
          return b < 0 ? 0 : b;
        }
        case UART_REG.IER_DLM:
          return dlab ? s[DLM] : s[IER];
        case UART_REG.IIR_FCR:
          return IIR_NO_INT | ((s[FCR] & FCR_FIFO_ENABLE) !== 0 ? IIR_FIFO_ENABLED : 0);
        case UART_REG.LCR:
          return s[LCR];
        case UART_REG.MCR:
          return s[MCR];
        case UART_REG.LSR:
          return UART_LSR.THRE | UART_LSR.TEMT | (this.#rxReady() ? UART_LSR.DR : 0);
        case UART_REG.MSR: {
          const mcr = s[MCR];
          if ((mcr & MCR_LOOP) === 0) return 0xb0; // DCD, DSR, CTS asserted: a cable is attached
          // Loopback: DTR→DSR, RTS→CTS, OUT1→RI, OUT2→DCD.
          return ((mcr & 0x01) << 5) | ((mcr & 0x02) << 3) | ((mcr & 0x04) << 4) | ((mcr & 0x08) << 4);
        }
        case UART_REG.SCR:
          return s[SCR];
        default:
          return 0xff;
      }
    } finally {
      this.#unlock();
    }
  }

  /** Port write. */
  pioWrite(offset: number, _size: number, value: number): void {
    const v = value & 0xff;
    this.#lock();
    try {
      const s = this.#s;
      const dlab = (s[LCR] & LCR_DLAB) !== 0;
      switch (offset) {
        case UART_REG.RBR_THR_DLL:
          if (dlab) s[DLL] = v;
          else if ((s[MCR] & MCR_LOOP) !== 0) s[LOOP_BYTE] = v;
          else this.#tx.push(v);
          return;
        case UART_REG.IER_DLM:
          if (dlab) s[DLM] = v;
          else s[IER] = v & 0x0f;
          return;
        case UART_REG.IIR_FCR:
          s[FCR] = v;
          return;
        case UART_REG.LCR:
          s[LCR] = v;
          return;
        case UART_REG.MCR:
          s[MCR] = v & 0x1f;
          return;
        case UART_REG.SCR:
          s[SCR] = v;
          return;
        default:
          return; // LSR and MSR are read-only
      }
    } finally {
      this.#unlock();
    }
  }
}
