/**
 * QEMU's debug console (`-debugcon`, SeaBIOS's debug port 0x402): bytes written to the port go to a ring the
 * VM's main thread drains into the firmware log; a read returns 0xe9, the value SeaBIOS checks to see the
 * port is there. A full ring drops bytes rather than stall the guest.
 *
 * @module
 */
import type { PioDevice } from "./bus.ts";
import { ByteRing } from "../console/byte_ring.ts";

/** SeaBIOS's debug output port under QEMU. */
export const DEBUGCON_PORT = 0x402;
/** What a read of the port returns (QEMU's readback value). */
export const DEBUGCON_READBACK = 0xe9;

/** The debug console register model. */
export class DebugCon implements PioDevice {
  /** Device name. */
  readonly name = "debugcon";
  readonly #ring: ByteRing;
  /** Bytes dropped because the ring was full. */
  dropped = 0;

  /** Writes into the ring over `sab` (a {@link ByteRing} buffer). */
  constructor(sab: SharedArrayBuffer) {
    this.#ring = new ByteRing({ sab });
  }

  /** Reads return the readback value. */
  pioRead(_offset: number, _size: number): number {
    return DEBUGCON_READBACK;
  }

  /** Each written byte (the low byte of wider writes) goes to the ring. */
  pioWrite(_offset: number, _size: number, value: number): void {
    if (!this.#ring.tryPush(value & 0xff)) this.dropped++;
  }
}
