/**
 * Serializable descriptions of the register models a vCPU worker puts on its buses, so the VM's main thread
 * can say which devices exist and the worker can build them over the shared state.
 *
 * @module
 */
import { BusError, MmioBus, PioBus } from "./bus.ts";
import { DEBUG_EXIT_SIZE, DebugExit } from "./debug_exit.ts";
import { Uart16550, type UartShare } from "./uart_16550.ts";

/** A port-I/O device to place on a vCPU's bus. */
export type PioDeviceSpec =
  | { readonly kind: "uart"; readonly base: number; readonly share: UartShare }
  | { readonly kind: "debug-exit"; readonly base: number };

/** What the buses' devices may ask of the vCPU that runs them. */
export interface BusHooks {
  /** End the VM with `status` (the exit port). */
  requestExit(status: number): void;
}

/** The buses of one vCPU. */
export interface Buses {
  /** Port I/O. */
  readonly pio: PioBus;
  /** Memory-mapped I/O. */
  readonly mmio: MmioBus;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null;
const isPort = (v: unknown): v is number =>
  typeof v === "number" && Number.isInteger(v) && v >= 0 && v <= 0xffff;

/** Checks a device spec that crossed a thread boundary; returns a reason when it is malformed. */
export function validatePioDeviceSpec(v: unknown): string | undefined {
  if (!isObject(v)) return "device spec is not an object";
  if (!isPort(v.base)) return `device spec base ${String(v.base)} is not a port number`;
  switch (v.kind) {
    case "debug-exit":
      return undefined;
    case "uart": {
      const share = v.share;
      if (
        !isObject(share) || !(share.state instanceof SharedArrayBuffer) ||
        !(share.tx instanceof SharedArrayBuffer) ||
        !(share.rx instanceof SharedArrayBuffer)
      ) return "uart spec lacks its shared buffers";
      return undefined;
    }
    default:
      return `unknown device kind ${String(v.kind)}`;
  }
}

/** Builds the buses for `specs`. Throws {@link BusError} for overlapping ranges. */
export function buildBuses(specs: readonly PioDeviceSpec[], hooks: BusHooks): Buses {
  const pio = new PioBus();
  for (const spec of specs) {
    switch (spec.kind) {
      case "uart":
        pio.register(spec.base, 8, new Uart16550(spec.share, `uart@0x${spec.base.toString(16)}`));
        break;
      case "debug-exit":
        pio.register(spec.base, DEBUG_EXIT_SIZE, new DebugExit((status) => hooks.requestExit(status)));
        break;
      default:
        throw new BusError(`unknown device kind ${(spec as { kind: string }).kind}`);
    }
  }
  return { pio, mmio: new MmioBus() };
}
