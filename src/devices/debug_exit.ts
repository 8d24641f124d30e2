/**
 * The exit port, compatible with QEMU's `isa-debug-exit` (port 0xf4, 4 bytes wide): a guest write of value v
 * ends the VM. QEMU exits with status (v << 1) | 1; vmd ends the VM with status v and says so.
 *
 * @module
 */
import type { PioDevice } from "./bus.ts";

/** The conventional port. */
export const DEBUG_EXIT_PORT = 0xf4;
/** Its width in ports. */
export const DEBUG_EXIT_SIZE = 4;

/** The exit-port register model; `onExit` is called with the value written. */
export class DebugExit implements PioDevice {
  /** Device name. */
  readonly name = "debug-exit";
  readonly #onExit: (status: number) => void;

  /** Builds the device; `onExit` ends the VM. */
  constructor(onExit: (status: number) => void) {
    this.#onExit = onExit;
  }

  /** Reads return zero (QEMU's device returns 0 too). */
  pioRead(_offset: number, _size: number): number {
    return 0;
  }

  /** Any write ends the VM with the written value. */
  pioWrite(_offset: number, size: number, value: number): void {
    this.#onExit(size === 4 ? value >>> 0 : value & (size === 2 ? 0xffff : 0xff));
  }
}
