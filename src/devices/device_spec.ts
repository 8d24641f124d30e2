/**
 * Serializable descriptions of the register models a vCPU worker puts on its buses, so the VM's main thread
 * can say which devices exist and the worker can build them over the shared state.
 *
 * @module
 */
import { BusError, MmioBus, PioBus } from "./bus.ts";
import { ACPI_PM_SIZE, ACPI_PM_STATE_SIZE, AcpiPm } from "./acpi_pm.ts";
import { CmosRtc } from "./cmos_rtc.ts";
import { DEBUG_EXIT_SIZE, DebugExit } from "./debug_exit.ts";
import { I8042, I8042_IRQ } from "./i8042.ts";
import { PciConfigPorts } from "./pci_host.ts";
import { PortSink } from "./port_sink.ts";
import { PCI_MMIO_END, PCI_MMIO_START, PciBus } from "../pci/pci_bus.ts";
import { PCI_FUNCTION_STATE_SIZE, PciConfigSpace } from "../pci/config_space.ts";
import { VirtioPciRegisters } from "./virtio_pci.ts";
import { TRANSPORT_STATE_SIZE } from "../virtio/transport_state.ts";

/** A function on PCI bus 0 (function 0 of `slot`), and the virtio register model behind its BAR 0, if any. */
export interface PciFunctionSpec {
  /** Its slot (device number). */
  readonly slot: number;
  /** Its config space state ({@link PciConfigSpace}). */
  readonly config: SharedArrayBuffer;
  /** A virtio-PCI function: its transport state, INTx GSI and a name. */
  readonly virtio?: { readonly state: SharedArrayBuffer; readonly gsi: number; readonly name: string };
}
import { Uart16550, type UartShare } from "./uart_16550.ts";
import { FW_CFG_DMA_SIZE, FW_CFG_IO_SIZE, FW_CFG_STATE_SIZE, FwCfg } from "./fw_cfg.ts";
import { DebugCon } from "./debugcon.ts";
import { GuestMemory, type GuestMemoryShare } from "../memory/guest_memory.ts";

/** A port-I/O device to place on a vCPU's bus. */
export type PioDeviceSpec =
  /** A 16550 UART; `irq` is its interrupt line (GSI), if interrupts are wired. */
  | { readonly kind: "uart"; readonly base: number; readonly share: UartShare; readonly irq?: number }
  | { readonly kind: "debug-exit"; readonly base: number }
  | { readonly kind: "rtc"; readonly base: number; readonly state: SharedArrayBuffer }
  | { readonly kind: "i8042"; readonly base: number; readonly state: SharedArrayBuffer }
  | {
    readonly kind: "pci-host";
    readonly base: number;
    readonly state: SharedArrayBuffer;
    /** The functions on bus 0 (none: an empty bus). */
    readonly functions?: readonly PciFunctionSpec[];
  }
  | { readonly kind: "sink"; readonly base: number; readonly length: number; readonly name: string }
  /** The debug console (SeaBIOS's log port): bytes go to the ring over `ring`. */
  | { readonly kind: "debugcon"; readonly base: number; readonly ring: SharedArrayBuffer }
  /**
   * fw_cfg: selector and data at `base`, the DMA register at `dmaBase`; `image` is a frozen directory, `state`
   * the shared selector state, `memory` the guest RAM DMA writes into.
   */
  | {
    readonly kind: "fw-cfg";
    readonly base: number;
    readonly dmaBase: number;
    readonly image: SharedArrayBuffer;
    readonly state: SharedArrayBuffer;
    readonly memory: GuestMemoryShare;
  }
  /** The ACPI PM1 registers and PM timer ({@link AcpiPm}). */
  | { readonly kind: "acpi-pm"; readonly base: number; readonly state: SharedArrayBuffer };

/** What the buses' devices may ask of the vCPU that runs them. */
export interface BusHooks {
  /** End the VM with `status` (the exit port). */
  requestExit(status: number): void;
  /** End the VM with reason `reboot` (the keyboard controller's reset line). */
  requestReboot(): void;
  /** End the VM as switched off (ACPI S5). */
  requestPowerOff(): void;
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
    case "pci-host": {
      if (!(v.state instanceof SharedArrayBuffer)) return "pci-host spec lacks its shared state";
      if (v.functions === undefined) return undefined;
      if (!Array.isArray(v.functions)) return "pci-host functions must be an array";
      for (const f of v.functions) {
        if (
          !isObject(f) || typeof f.slot !== "number" || !Number.isInteger(f.slot) || f.slot < 0 || f.slot > 31
        ) {
          return "pci function needs a slot 0..31";
        }
        if (!(f.config instanceof SharedArrayBuffer) || f.config.byteLength < PCI_FUNCTION_STATE_SIZE) {
          return "pci function lacks its config space";
        }
        const vt = f.virtio;
        if (vt === undefined) continue;
        if (
          !isObject(vt) || !(vt.state instanceof SharedArrayBuffer) ||
          vt.state.byteLength < TRANSPORT_STATE_SIZE || typeof vt.name !== "string" ||
          typeof vt.gsi !== "number" || !Number.isInteger(vt.gsi) || vt.gsi < 0 || vt.gsi > 23
        ) return "virtio function needs its transport state, a GSI 0..23 and a name";
      }
      return undefined;
    }
    case "debugcon":
      return v.ring instanceof SharedArrayBuffer ? undefined : "debugcon spec lacks its ring";
    case "fw-cfg": {
      if (!isPort(v.dmaBase)) return `fw-cfg dmaBase ${String(v.dmaBase)} is not a port number`;
      if (!(v.image instanceof SharedArrayBuffer)) return "fw-cfg spec lacks its image";
      if (!(v.state instanceof SharedArrayBuffer) || v.state.byteLength < FW_CFG_STATE_SIZE) {
        return "fw-cfg spec lacks its shared state";
      }
      const m = v.memory;
      if (!isObject(m) || !(m.sab instanceof SharedArrayBuffer) || !Array.isArray(m.regions)) {
        return "fw-cfg spec lacks guest memory";
      }
      return undefined;
    }
    case "acpi-pm":
      return v.state instanceof SharedArrayBuffer && v.state.byteLength >= ACPI_PM_STATE_SIZE
        ? undefined
        : "acpi-pm spec lacks its shared state";
    case "rtc":
    case "i8042":
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
  const mmio = new MmioBus();
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
        const kbc = new I8042(spec.state, () => hooks.requestReboot(), () => {
          hooks.irqLine(I8042_IRQ, 1);
          hooks.irqLine(I8042_IRQ, 0);
        });
        pio.register(spec.base, 1, kbc);
        pio.register(spec.base + 4, 1, {
          name: "i8042",
          pioRead: (_o, s) => kbc.pioRead(4, s),
          pioWrite: (_o, s, v) => kbc.pioWrite(4, s, v),
        });
        break;
      }
      case "pci-host": {
        const bus = new PciBus();
        for (const f of spec.functions ?? []) {
          const v = f.virtio;
          const regs = v === undefined
            ? undefined
            : new VirtioPciRegisters(v.name, v.state, v.gsi, (gsi, level) => hooks.irqLine(gsi, level));
          bus.add({
            slot: f.slot,
            config: new PciConfigSpace(f.config),
            bars: regs === undefined ? [] : [regs],
            configWritten: regs === undefined ? undefined : (reg) => regs.capabilityWritten(reg),
          });
        }
        pio.register(
          spec.base,
          8,
          new PciConfigPorts(
            spec.state,
            (b, d, fn, reg, size) => bus.configRead(b, d, fn, reg, size),
            (b, d, fn, reg, size, value) => bus.configWrite(b, d, fn, reg, size, value),
          ),
        );
        if ((spec.functions ?? []).length > 0) {
          mmio.register(PCI_MMIO_START, PCI_MMIO_END - PCI_MMIO_START, bus);
        }
        break;
      }
      case "sink":
        pio.register(spec.base, spec.length, new PortSink(spec.name));
        break;
      case "debugcon":
        pio.register(spec.base, 1, new DebugCon(spec.ring));
        break;
      case "fw-cfg": {
        const fw = new FwCfg(spec.image, spec.state, new GuestMemory(spec.memory));
        pio.register(spec.base, FW_CFG_IO_SIZE, fw.io);
        pio.register(spec.dmaBase, FW_CFG_DMA_SIZE, fw.dma);
        break;
      }
      case "acpi-pm":
        pio.register(
          spec.base,
          ACPI_PM_SIZE,
          new AcpiPm(spec.state, (gsi, level) => hooks.irqLine(gsi, level), () => hooks.requestPowerOff()),
        );
        break;
      default:
        throw new BusError(`unknown device kind ${(spec as { kind: string }).kind}`);
    }
  }
  return { pio, mmio };
}
