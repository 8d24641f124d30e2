/**
 * A port range that is claimed and ignored: port 0x80 (the POST diagnostic port, which Linux writes to for
 * I/O delays) and the like. Reads return zero, writes vanish, and neither is counted as unclaimed.
 *
 * @module
 */
import type { PioDevice } from "./bus.ts";

/** Ignores what is written and reads zero. */
export class PortSink implements PioDevice {
  /** Device name. */
  readonly name: string;

  /** Builds a sink called `name`. */
  constructor(name: string) {
    this.name = name;
  }

  /** Always zero. */
  pioRead(_offset: number, _size: number): number {
    return 0;
  }

  /** Ignored. */
  pioWrite(_offset: number, _size: number, _value: number): void {}
}
