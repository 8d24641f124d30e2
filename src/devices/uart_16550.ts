/**
 * A 16550A-compatible UART register model (8 ports, COM1 at 0x3f8, IRQ 4): console output and input, polled
 * or interrupt-driven (received-data and transmitter-empty interrupts, edge-triggered as on a PC's ISA bus),
 * and the divisor latch, scratch register and loopback mode that Linux's 8250 driver probes.
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
const IIR_THRE = 0x02;
const IIR_RDA = 0x04;
const IER_RDA = 0x01;
const IER_THRE = 0x02;
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
const THRE_PENDING = 9; // a transmitter-empty interrupt is owed until IIR is read or THR written
const SLOTS = 10;

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

/** Raises the UART's interrupt line: one edge per call. */
export type IrqPulse = () => void;

/** The UART register model. */
export class Uart16550 implements PioDevice {
  /** Device name. */
  readonly name: string;
  readonly #s: Int32Array;
  readonly #tx: ByteRing;
  readonly #rx: ByteRing;
  readonly #irq: IrqPulse;

  /** Builds the model over shared state from {@link createUartShare}; `irq` pulses its interrupt line. */
  constructor(share: UartShare, name = "uart", irq: IrqPulse = () => {}) {
    this.name = name;
    this.#s = new Int32Array(share.state);
    this.#tx = new ByteRing({ sab: share.tx });
    this.#rx = new ByteRing({ sab: share.rx });
    this.#irq = irq;
  }

  /**
   * Host side: queues console input for the guest and raises the received-data interrupt if it is enabled.
   * Returns how many bytes fitted.
   */
  receive(bytes: Uint8Array): number {
    let n = 0;
    while (n < bytes.length && this.#rx.tryPush(bytes[n])) n++;
    if (n > 0 && (Atomics.load(this.#s, IER) & IER_RDA) !== 0) this.#irq();
    return n;
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
        case UART_REG.IIR_FCR: {
          const fifo = (s[FCR] & FCR_FIFO_ENABLE) !== 0 ? IIR_FIFO_ENABLED : 0;
          if ((s[IER] & IER_RDA) !== 0 && this.#rxReady()) return IIR_RDA | fifo;
          if ((s[IER] & IER_THRE) !== 0 && s[THRE_PENDING] !== 0) {
            s[THRE_PENDING] = 0; // reading IIR acknowledges a transmitter-empty interrupt
            return IIR_THRE | fifo;
          }
          return IIR_NO_INT | fifo;
        }
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
    let pulse = false;
    this.#lock();
    try {
      const s = this.#s;
      const dlab = (s[LCR] & LCR_DLAB) !== 0;
      switch (offset) {
        case UART_REG.RBR_THR_DLL:
          if (dlab) {
            s[DLL] = v;
            return;
          }
          if ((s[MCR] & MCR_LOOP) !== 0) s[LOOP_BYTE] = v;
          else this.#tx.push(v);
          // transmitted at once: the holding register is empty again (a new edge only if none is owed)
          pulse = s[THRE_PENDING] === 0 && (s[IER] & IER_THRE) !== 0;
          s[THRE_PENDING] = 1;
          return;
        case UART_REG.IER_DLM: {
          if (dlab) {
            s[DLM] = v;
            return;
          }
          const before = s[IER];
          s[IER] = v & 0x0f;
          if ((v & IER_THRE) !== 0 && (before & IER_THRE) === 0) {
            s[THRE_PENDING] = 1; // enabling THRE with an empty holding register interrupts at once
            pulse = true;
          }
          if ((v & IER_RDA) !== 0 && (before & IER_RDA) === 0 && this.#rxReady()) pulse = true;
          return;
        }
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
      if (pulse) this.#irq();
    }
  }
}
