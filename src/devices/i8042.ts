/**
 * An i8042 keyboard controller with a PS/2 keyboard behind it and no mouse: enough for Linux's i8042 and
 * atkbd drivers to find a keyboard, for the host to type keys into the guest (Ctrl-Alt-Del, which asks a
 * stock Linux guest to reboot), and for `reboot=k` — a 0xFE command (pulse the reset line) on port 0x64 ends
 * the VM with reason `reboot`. Ports: 0x60 data, 0x64 status/command.
 *
 * The state lives in a SharedArrayBuffer: every vCPU worker builds its own model over it, and the VM's main
 * thread builds one more to inject keys. Bytes for the guest wait in a small queue; whenever a byte becomes
 * available (the queue was empty, or the guest read one and more remain) and the configuration byte's
 * keyboard-interrupt bit is set, IRQ 1 is pulsed (edge).
 *
 * Scancodes are taken in set 1, what the guest reads with the controller's translation on (the default, and
 * what Linux uses); with translation off they are converted to set 2 where this model knows the key.
 *
 * @module
 */
import type { PioDevice } from "./bus.ts";

const STATUS_OBF = 0x01;
const STATUS_SYS = 0x04;
const STATUS_CMD = 0x08; // the last write was to the command port

/** Configuration byte bits. */
const CTR_KBD_INT = 0x01;
const CTR_SYS = 0x04;
const CTR_KBD_DISABLED = 0x10;
const CTR_AUX_DISABLED = 0x20;
const CTR_TRANSLATE = 0x40;

const CMD_READ_CTR = 0x20;
const CMD_WRITE_CTR = 0x60;
const CMD_AUX_DISABLE = 0xa7;
const CMD_AUX_ENABLE = 0xa8;
const CMD_AUX_TEST = 0xa9;
const CMD_SELF_TEST = 0xaa;
const CMD_KBD_TEST = 0xab;
const CMD_KBD_DISABLE = 0xad;
const CMD_KBD_ENABLE = 0xae;
const CMD_READ_OUTPUT = 0xd0;
const CMD_WRITE_OUTPUT = 0xd1;
const CMD_RESET = 0xfe;

const KBD_SET_LEDS = 0xed;
const KBD_ECHO = 0xee;
const KBD_SCANCODE_SET = 0xf0;
const KBD_IDENTIFY = 0xf2;
const KBD_TYPEMATIC = 0xf3;
const KBD_ENABLE = 0xf4;
const KBD_DISABLE = 0xf5;
const KBD_DEFAULTS = 0xf6;
const KBD_RESET = 0xff;
const ACK = 0xfa;

/** What the aux-port test answers: not 0 (a working port) — there is no mouse. */
const AUX_TEST_FAILED = 0x02;

// Int32 slots of the shared state
const CTR = 0; // controller configuration byte
const PENDING = 1; // controller command waiting for its data byte, or 0
const KBD_PENDING = 2; // keyboard command waiting for its data byte, or 0
const SCANNING = 3; // 1: the keyboard sends keys (0xF4), 0: not (0xF5)
const LOCK = 4; // 0 free, 1 held
const HEAD = 5; // next byte to read (a running count)
const TAIL = 6; // next byte to write (a running count)
const STATUS_BITS = 7; // STATUS_CMD or 0
const DRIVER = 8; // 1 once the guest has configured the controller or talked to the keyboard
const SET = 9; // the keyboard's scancode set (1..3)
const QUEUE = 16; // first queue slot
/** The keyboard's interrupt line (ISA IRQ 1). */
export const I8042_IRQ = 1;
/** Bytes the output queue holds. */
export const I8042_QUEUE_SIZE = 64;
const SLOTS = QUEUE + I8042_QUEUE_SIZE;

/** Set-1 make codes this model can also send in set 2 (translation off). */
const SET1_TO_SET2: ReadonlyMap<number, number> = new Map([
  [0x1d, 0x14], // left Ctrl
  [0x38, 0x11], // left Alt
  [0x53, 0x71], // Delete (after 0xE0)
  [0x1c, 0x5a], // Enter
  [0x01, 0x76], // Escape
]);

/** Ctrl make, Alt make, Del make, then their breaks in reverse order (set 1). */
export const CTRL_ALT_DEL_SET1: readonly number[] = [0x1d, 0x38, 0xe0, 0x53, 0xe0, 0xd3, 0xb8, 0x9d];

/** A new controller state (shared by every model of the same controller). */
export function createI8042State(): SharedArrayBuffer {
  const sab = new SharedArrayBuffer(SLOTS * 4);
  const s = new Int32Array(sab);
  s[CTR] = CTR_KBD_INT | CTR_SYS | CTR_TRANSLATE;
  s[SCANNING] = 1;
  s[SET] = 2;
  return sab;
}

/** Converts set-1 key bytes to set 2, or returns null if one of the keys is unknown here. */
function toSet2(set1: readonly number[]): number[] | null {
  const out: number[] = [];
  for (const b of set1) {
    if (b === 0xe0) {
      out.push(0xe0);
      continue;
    }
    const code = SET1_TO_SET2.get(b & 0x7f);
    if (code === undefined) return null;
    if (b & 0x80) out.push(0xf0);
    out.push(code);
  }
  return out;
}

/** The controller and its keyboard; `onReset` ends the VM, `pulseIrq` pulses IRQ 1. */
export class I8042 implements PioDevice {
  /** Device name. */
  readonly name = "i8042";
  readonly #onReset: () => void;
  readonly #pulseIrq: () => void;
  readonly #s: Int32Array;

  /** Builds the model over `state` from {@link createI8042State}. */
  constructor(state: SharedArrayBuffer, onReset: () => void, pulseIrq: () => void = () => {}) {
    this.#s = new Int32Array(state, 0, SLOTS);
    this.#onReset = onReset;
    this.#pulseIrq = pulseIrq;
  }

  /** Reads: 0x60 takes the next output byte; 0x64 is the status register. */
  pioRead(offset: number, _size: number): number {
    const s = this.#s;
    if (offset !== 0) {
      const full = Atomics.load(s, HEAD) !== Atomics.load(s, TAIL);
      return STATUS_SYS | Atomics.load(s, STATUS_BITS) | (full ? STATUS_OBF : 0);
    }
    this.#lock();
    let b = 0;
    let more = false;
    try {
      const head = s[HEAD];
      if (head !== s[TAIL]) {
        b = s[QUEUE + head % I8042_QUEUE_SIZE];
        s[HEAD] = head + 1;
        more = head + 1 !== s[TAIL];
      }
    } finally {
      this.#unlock();
    }
    if (more && (Atomics.load(s, CTR) & CTR_KBD_INT) !== 0) this.#pulseIrq();
    return b;
  }

  /** Writes: 0x64 takes a controller command, 0x60 a command's data byte or a keyboard command. */
  pioWrite(offset: number, _size: number, value: number): void {
    const v = value & 0xff;
    const s = this.#s;
    if (offset === 0) {
      Atomics.store(s, STATUS_BITS, 0);
      const pending = Atomics.exchange(s, PENDING, 0);
      if (pending === CMD_WRITE_CTR) {
        Atomics.store(s, CTR, v);
        Atomics.store(s, DRIVER, 1);
      } else if (pending === CMD_WRITE_OUTPUT) {
        if ((v & 1) === 0) this.#onReset();
      } else {
        this.#keyboardByte(v);
      }
      return;
    }
    Atomics.store(s, STATUS_BITS, STATUS_CMD);
    Atomics.store(s, PENDING, 0);
    switch (v) {
      case CMD_READ_CTR:
        this.#push([Atomics.load(s, CTR)]);
        return;
      case CMD_WRITE_CTR:
      case CMD_WRITE_OUTPUT:
        Atomics.store(s, PENDING, v);
        return;
      case CMD_AUX_DISABLE:
        Atomics.or(s, CTR, CTR_AUX_DISABLED);
        return;
      case CMD_AUX_ENABLE:
        Atomics.and(s, CTR, ~CTR_AUX_DISABLED);
        return;
      case CMD_AUX_TEST:
        this.#push([AUX_TEST_FAILED]);
        return;
      case CMD_SELF_TEST:
        this.#push([0x55]);
        return;
      case CMD_KBD_TEST:
        this.#push([0x00]);
        return;
      case CMD_KBD_DISABLE:
        Atomics.or(s, CTR, CTR_KBD_DISABLED);
        return;
      case CMD_KBD_ENABLE:
        Atomics.and(s, CTR, ~CTR_KBD_DISABLED);
        return;
      case CMD_READ_OUTPUT:
        this.#push([0x03]); // reset line high (not in reset), A20 on
        return;
      case CMD_RESET:
        this.#onReset();
        return;
      default:
        return; // other commands (aux loopback, password, pulse lines other than reset) do nothing here
    }
  }

  /**
   * Types set-1 key bytes (converted to set 2 when the guest turned translation off); returns false, and
   * sends nothing, when the guest cannot take them: no driver has set the keyboard up, the keyboard port
   * or its interrupt is off, scanning is disabled, a key is unknown in set 2, or the queue lacks room.
   */
  typeKeys(set1: readonly number[]): boolean {
    const s = this.#s;
    const ctr = Atomics.load(s, CTR);
    if (
      Atomics.load(s, DRIVER) === 0 || Atomics.load(s, SCANNING) === 0 || (ctr & CTR_KBD_DISABLED) !== 0 ||
      (ctr & CTR_KBD_INT) === 0
    ) return false;
    const bytes = (ctr & CTR_TRANSLATE) !== 0 ? [...set1] : toSet2(set1);
    if (bytes === null) return false;
    return this.#push(bytes);
  }

  /** Whether a guest driver has set the keyboard up to take keys (see {@link typeKeys}). */
  get keyboardReady(): boolean {
    const s = this.#s;
    const ctr = Atomics.load(s, CTR);
    return Atomics.load(s, DRIVER) === 1 && Atomics.load(s, SCANNING) === 1 &&
      (ctr & (CTR_KBD_DISABLED | CTR_KBD_INT)) === CTR_KBD_INT;
  }

  #keyboardByte(v: number): void {
    const s = this.#s;
    Atomics.store(s, DRIVER, 1);
    Atomics.and(s, CTR, ~CTR_KBD_DISABLED); // writing to the keyboard enables its port
    const pending = Atomics.exchange(s, KBD_PENDING, 0);
    if (pending === KBD_SCANCODE_SET) {
      if (v === 0) {
        this.#push([ACK, Atomics.load(s, SET)]);
        return;
      }
      if (v >= 1 && v <= 3) Atomics.store(s, SET, v);
      this.#push([ACK]);
      return;
    }
    if (pending !== 0) { // the LEDs or typematic rate: accepted and ignored
      this.#push([ACK]);
      return;
    }
    const translated = (Atomics.load(s, CTR) & CTR_TRANSLATE) !== 0;
    switch (v) {
      case KBD_SET_LEDS:
      case KBD_TYPEMATIC:
      case KBD_SCANCODE_SET:
        Atomics.store(s, KBD_PENDING, v);
        this.#push([ACK]);
        return;
      case KBD_ECHO:
        this.#push([KBD_ECHO]);
        return;
      case KBD_IDENTIFY:
        // an MF2 keyboard is 0xAB 0x83; the controller's translation turns 0x83 into 0x41
        this.#push([ACK, 0xab, translated ? 0x41 : 0x83]);
        return;
      case KBD_ENABLE:
        Atomics.store(s, SCANNING, 1);
        this.#push([ACK]);
        return;
      case KBD_DISABLE:
      case KBD_DEFAULTS:
        Atomics.store(s, SCANNING, v === KBD_DEFAULTS ? 1 : 0);
        Atomics.store(s, SET, 2);
        this.#push([ACK]);
        return;
      case KBD_RESET:
        Atomics.store(s, SCANNING, 1);
        Atomics.store(s, SET, 2);
        this.#push([ACK, 0xaa]); // acknowledged, then the power-on self-test passed
        return;
      default:
        this.#push([ACK]);
        return;
    }
  }

  /** Queues `bytes` for the guest (all or none); pulses IRQ 1 if the queue was empty. */
  #push(bytes: readonly number[]): boolean {
    const s = this.#s;
    let wasEmpty: boolean;
    this.#lock();
    try {
      const head = s[HEAD];
      const tail = s[TAIL];
      if (tail - head + bytes.length > I8042_QUEUE_SIZE) return false;
      wasEmpty = head === tail;
      bytes.forEach((b, i) => s[QUEUE + (tail + i) % I8042_QUEUE_SIZE] = b & 0xff);
      s[TAIL] = tail + bytes.length;
    } finally {
      this.#unlock();
    }
    if (wasEmpty && bytes.length > 0 && (Atomics.load(s, CTR) & CTR_KBD_INT) !== 0) this.#pulseIrq();
    return true;
  }

  #lock(): void {
    while (Atomics.compareExchange(this.#s, LOCK, 0, 1) !== 0) {
      // held by another thread for a few instructions only
    }
  }

  #unlock(): void {
    Atomics.store(this.#s, LOCK, 0);
  }
}
