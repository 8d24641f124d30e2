/**
 * An i8042 keyboard controller with no keyboard: enough for Linux to probe it and for `reboot=k` — a 0xFE
 * command (pulse the reset line) on port 0x64 ends the VM with reason `reboot`. Ports: 0x60 data, 0x64
 * status/command.
 *
 * @module
 */
import type { PioDevice } from "./bus.ts";

const STATUS_OBF = 0x01;
const STATUS_SYS = 0x04;
const CMD_READ_CTR = 0x20;
const CMD_WRITE_CTR = 0x60;
const CMD_SELF_TEST = 0xaa;
const CMD_WRITE_OUTPUT = 0xd1;
const CMD_RESET = 0xfe;

const CTR = 0; // controller configuration byte
const OUT = 1; // pending output byte, or -1
const PENDING = 2; // command waiting for its data byte, or 0

/** A new controller state (shared by every vCPU's model of the same controller). */
export function createI8042State(): SharedArrayBuffer {
  const sab = new SharedArrayBuffer(12);
  const s = new Int32Array(sab);
  s[CTR] = 0x45; // keyboard interrupt on, system flag, translation
  s[OUT] = -1;
  return sab;
}

/** The controller; `onReset` ends the VM. */
export class I8042 implements PioDevice {
  /** Device name. */
  readonly name = "i8042";
  readonly #onReset: () => void;
  readonly #s: Int32Array;

  /** Builds the controller over `state` from {@link createI8042State}. */
  constructor(state: SharedArrayBuffer, onReset: () => void) {
    this.#s = new Int32Array(state, 0, 3);
    this.#onReset = onReset;
  }

  /** Reads: 0x60 takes the output byte; 0x64 is the status register. */
  pioRead(offset: number, _size: number): number {
    if (offset === 0) {
      const b = Atomics.exchange(this.#s, OUT, -1);
      return b < 0 ? 0 : b;
    }
    return STATUS_SYS | (Atomics.load(this.#s, OUT) >= 0 ? STATUS_OBF : 0);
  }

  /** Writes: 0x64 takes a command, 0x60 its data byte. */
  pioWrite(offset: number, _size: number, value: number): void {
    const v = value & 0xff;
    const s = this.#s;
    if (offset === 0) {
      const pending = Atomics.exchange(s, PENDING, 0);
      if (pending === CMD_WRITE_CTR) Atomics.store(s, CTR, v);
      else if (pending === CMD_WRITE_OUTPUT && (v & 1) === 0) this.#onReset();
      return;
    }
    switch (v) {
      case CMD_READ_CTR:
        Atomics.store(s, OUT, Atomics.load(s, CTR));
        return;
      case CMD_WRITE_CTR:
      case CMD_WRITE_OUTPUT:
        Atomics.store(s, PENDING, v);
        return;
      case CMD_SELF_TEST:
        Atomics.store(s, OUT, 0x55);
        return;
      case CMD_RESET:
        this.#onReset();
        return;
      default:
        return; // enable/disable port commands and the like need no action without a keyboard
    }
  }
}
