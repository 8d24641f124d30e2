/**
 * Serializable descriptions of the register models a vCPU worker puts on its buses, so the VM's main thread
 * can say which devices exist and the worker can build them over the shared state.
 *
 * @module
 */
import { BusError, MmioBus, PioBus } from "./bus.ts";
import { CmosRtc } from "./cmos_rtc.ts";
import { DEBUG_EXIT_SIZE, DebugExit } from "./debug_exit.ts";
import { I8042 } from "./i8042.ts";
import { PciConfigPorts } from "./pci_host.ts";
import { PortSink } from "./port_sink.ts";
import { Uart16550, type UartShare } from "./uart_16550.ts";

/** A port-I/O device to place on a vCPU's bus. */
export type PioDeviceSpec =
  /** A 16550 UART; `irq` is its interrupt line (GSI), if interrupts are wired. */
  | { readonly kind: "uart"; readonly base: number; readonly share: UartShare; readonly irq?: number }
  | { readonly kind: "debug-exit"; readonly base: number }
  | { readonly kind: "rtc"; readonly base: number; readonly state: SharedArrayBuffer }
  | { readonly kind: "i8042"; readonly base: number; readonly state: SharedArrayBuffer }
  | { readonly kind: "pci-host"; readonly base: number; readonly state: SharedArrayBuffer }
  | { readonly kind: "sink"; readonly base: number; readonly length: number; readonly name: string };

/** What the buses' devices may ask of the vCPU that runs them. */
export interface BusHooks {
  /** End the VM with `status` (the exit port). */
  requestExit(status: number): void;
  /** End the VM with reason `reboot` (the keyboard controller's reset line). */
  requestReboot(): void;
  /** Drive interrupt line `gsi` to `level` (KVM_IRQ_LINE). */
  irqLine(gsi: number, level: 0 | 1): void;
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
      if (
        v.irq !== undefined &&
        !(typeof v.irq === "number" && Number.isInteger(v.irq) && v.irq >= 0 && v.irq < 24)
      ) {
        return `uart irq ${String(v.irq)} is not a GSI 0..23`;
      }
      return undefined;
    }
    case "rtc":
    case "i8042":
    case "pci-host":
      return v.state instanceof SharedArrayBuffer ? undefined : `${v.kind} spec lacks its shared state`;
    case "sink":
      return typeof v.name === "string" && typeof v.length === "number" && Number.isInteger(v.length) &&
          v.length > 0 && v.length <= 0x100
        ? undefined
        : "sink spec needs a name and a length of 1..256 ports";
    default:
      return `unknown device kind ${String(v.kind)}`;
  }
}

/** Builds the buses for `specs`. Throws {@link BusError} for overlapping ranges. */
export function buildBuses(specs: readonly PioDeviceSpec[], hooks: BusHooks): Buses {
  const pio = new PioBus();
  for (const spec of specs) {
    switch (spec.kind) {
      case "uart": {
        const irq = spec.irq;
        const pulse = irq === undefined ? undefined : () => {
          hooks.irqLine(irq, 1);
          hooks.irqLine(irq, 0);
        };
        pio.register(spec.base, 8, new Uart16550(spec.share, `uart@0x${spec.base.toString(16)}`, pulse));
        break;
      }
      case "debug-exit":
        pio.register(spec.base, DEBUG_EXIT_SIZE, new DebugExit((status) => hooks.requestExit(status)));
        break;
      case "rtc":
        pio.register(spec.base, 2, new CmosRtc(spec.state));
        break;
      case "i8042": {
        const kbc = new I8042(spec.state, () => hooks.requestReboot());
        pio.register(spec.base, 1, kbc);
        pio.register(spec.base + 4, 1, {
          name: "i8042",
          pioRead: (_o, s) => kbc.pioRead(4, s),
          pioWrite: (_o, s, v) => kbc.pioWrite(4, s, v),
        });
        break;
      }
      case "pci-host":
        pio.register(spec.base, 8, new PciConfigPorts(spec.state));
        break;
      case "sink":
        pio.register(spec.base, spec.length, new PortSink(spec.name));
        break;
      default:
        throw new BusError(`unknown device kind ${(spec as { kind: string }).kind}`);
    }
  }
  return { pio, mmio: new MmioBus() };
}
