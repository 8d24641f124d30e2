/**
 * The DSDT's AML for vmd's PC platform: the PCI host bridge (`PNP0A03`) with its resources and `_PRT`
 * routing each virtio function's INTA to its own I/O APIC pin, COM1 (`PNP0501`), the i8042 keyboard
 * controller (`PNP0303`), the RTC (`PNP0B00`), and `_S5_` (soft-off). The power button is the FADT's fixed
 * feature, so it has no device here.
 *
 * @module
 */
import { cat, device, eisaId, int, name, pkg, scope } from "./aml.ts";
import {
  ADDRESS_SPACE,
  dwordMemoryWindow,
  ioPort,
  irqNoFlags,
  resourceTemplate,
  wordWindow,
} from "./aml_resources.ts";
import { SLP_TYP_S5 } from "../devices/acpi_pm.ts";
import { sdt, SDT_HEADER_SIZE } from "./tables.ts";

/** A PCI function's INTA routing: bus 0 `slot` to I/O APIC input `gsi`. */
export interface PciRoute {
  /** Device number on bus 0. */
  readonly slot: number;
  /** Global system interrupt. */
  readonly gsi: number;
}

/** What the DSDT describes. */
export interface DsdtOptions {
  /** INTA of each PCI function that has one. */
  readonly pciRoutes: readonly PciRoute[];
  /** The 32-bit PCI memory window, inclusive. */
  readonly pciMmio: { readonly start: number; readonly end: number };
  /** COM1: base port and ISA IRQ. */
  readonly com1: { readonly port: number; readonly irq: number };
}

/** `_PRT`: one package per routed function: address (slot << 16 | 0xffff), pin 0 (INTA), no link, its GSI. */
function prt(routes: readonly PciRoute[]): Uint8Array {
  return name(
    "_PRT",
    pkg(...routes.map((r) => pkg(int(r.slot * 0x10000 + 0xffff), int(0), int(0), int(r.gsi)))),
  );
}

/** The PCI host bridge: bus 0 only, configuration ports, all other I/O ports, the VGA hole, the PCI hole. */
function pciHostBridge(o: DsdtOptions): Uint8Array {
  return device(
    "PCI0",
    name("_HID", eisaId("PNP0A03")),
    name("_UID", int(0)),
    name("_BBN", int(0)),
    name("_SEG", int(0)),
    name(
      "_CRS",
      resourceTemplate(
        wordWindow(ADDRESS_SPACE.BusNumber, 0, 0xff),
        ioPort(0xcf8, 8),
        wordWindow(ADDRESS_SPACE.Io, 0x0000, 0x0cf7),
        wordWindow(ADDRESS_SPACE.Io, 0x0d00, 0xffff),
        dwordMemoryWindow(0x000a_0000, 0x000b_ffff),
        dwordMemoryWindow(o.pciMmio.start, o.pciMmio.end),
      ),
    ),
    prt(o.pciRoutes),
  );
}

/** The DSDT (revision 2: 64-bit integers), its checksum not yet set. */
export function buildDsdt(o: DsdtOptions): Uint8Array {
  const aml = cat(
    scope(
      "\\_SB",
      pciHostBridge(o),
      device(
        "COM1",
        name("_HID", eisaId("PNP0501")),
        name("_UID", int(1)),
        name("_CRS", resourceTemplate(ioPort(o.com1.port, 8), irqNoFlags(o.com1.irq))),
      ),
      device(
        "KBD",
        name("_HID", eisaId("PNP0303")),
        name("_CRS", resourceTemplate(ioPort(0x60, 1), ioPort(0x64, 1), irqNoFlags(1))),
      ),
      device(
        "RTC",
        name("_HID", eisaId("PNP0B00")),
        name("_CRS", resourceTemplate(ioPort(0x70, 2), irqNoFlags(8))),
      ),
    ),
    name("_S5", pkg(int(SLP_TYP_S5), int(SLP_TYP_S5), int(0), int(0))),
  );
  const { bytes } = sdt("DSDT", 2, SDT_HEADER_SIZE + aml.length);
  bytes.set(aml, SDT_HEADER_SIZE);
  return bytes;
}
