/**
 * ACPI resource descriptors (ACPI 6.5, section 6.4) for `_CRS` buffers: the small I/O port and IRQ
 * descriptors, the large Word/DWord address-space descriptors a PCI host bridge's windows use, and the end
 * tag. {@link resourceTemplate} wraps them in a `Buffer`, as ASL's `ResourceTemplate()` does.
 *
 * @module
 */
import { type Aml, AmlError, buffer, cat } from "./aml.ts";

/** Resource descriptor tags, by the specification's names. */
export const RESOURCE_TAG = {
  IrqFormatDescriptor: 0x22, // small item 0x04, length 2 (no flags byte)
  IoPortDescriptor: 0x47, // small item 0x08, length 7
  EndTag: 0x79, // small item 0x0f, length 1
  DWordAddressSpace: 0x87,
  WordAddressSpace: 0x88,
} as const;

/** Address space resource types. */
export const ADDRESS_SPACE = { Memory: 0, Io: 1, BusNumber: 2 } as const;

/** General flags of a bridge window: a producer whose minimum and maximum are fixed, positive decode. */
const PRODUCER_FIXED = 0x0c;

function check16(what: string, v: number): void {
  if (!Number.isInteger(v) || v < 0 || v > 0xffff) {
    throw new AmlError(`${what} 0x${v.toString(16)} is not 16-bit`);
  }
}

/** `IO(Decode16, min, min, 1, length)`: `length` ports at `base`. */
export function ioPort(base: number, length: number): Uint8Array {
  check16("I/O port", base);
  if (!Number.isInteger(length) || length < 1 || length > 0xff) throw new AmlError(`I/O length ${length}`);
  return new Uint8Array([
    RESOURCE_TAG.IoPortDescriptor,
    0x01,
    base & 0xff,
    base >> 8,
    base & 0xff,
    base >> 8,
    1,
    length,
  ]);
}

/** `IRQNoFlags() { irq }`: edge triggered, active high, exclusive (an ISA interrupt). */
export function irqNoFlags(irq: number): Uint8Array {
  if (!Number.isInteger(irq) || irq < 0 || irq > 15) throw new AmlError(`ISA IRQ ${irq} is not 0..15`);
  const mask = 1 << irq;
  return new Uint8Array([RESOURCE_TAG.IrqFormatDescriptor, mask & 0xff, mask >> 8]);
}

/** A Word address-space window (bus numbers or I/O ports) from `min` to `max`, as a bridge produces it. */
export function wordWindow(type: number, min: number, max: number): Uint8Array {
  check16("window start", min);
  check16("window end", max);
  if (max < min) throw new AmlError(`window 0x${min.toString(16)}-0x${max.toString(16)} is empty`);
  const out = new Uint8Array(16);
  const v = new DataView(out.buffer);
  out[0] = RESOURCE_TAG.WordAddressSpace;
  v.setUint16(1, 13, true); // length of the rest
  out[3] = type;
  out[4] = PRODUCER_FIXED;
  out[5] = type === ADDRESS_SPACE.Io ? 0x03 : 0x00; // I/O: ISA and non-ISA ranges
  v.setUint16(6, 0, true); // granularity
  v.setUint16(8, min, true);
  v.setUint16(10, max, true);
  v.setUint16(12, 0, true); // translation offset
  v.setUint16(14, max - min + 1, true);
  return out;
}

/** A DWord memory window (cacheable, read-write) from `min` to `max` inclusive. */
export function dwordMemoryWindow(min: number, max: number): Uint8Array {
  if (!Number.isInteger(min) || !Number.isInteger(max) || min < 0 || max > 0xffff_ffff || max < min) {
    throw new AmlError(`memory window 0x${min.toString(16)}-0x${max.toString(16)} is not inside 4 GiB`);
  }
  const out = new Uint8Array(26);
  const v = new DataView(out.buffer);
  out[0] = RESOURCE_TAG.DWordAddressSpace;
  v.setUint16(1, 23, true);
  out[3] = ADDRESS_SPACE.Memory;
  out[4] = PRODUCER_FIXED;
  out[5] = 0x03; // read-write, cacheable
  v.setUint32(6, 0, true); // granularity
  v.setUint32(10, min, true);
  v.setUint32(14, max, true);
  v.setUint32(18, 0, true); // translation offset
  v.setUint32(22, max - min + 1, true);
  return out;
}

/** `ResourceTemplate() { descriptors }`: a Buffer of the descriptors and an end tag (checksum 0: none). */
export function resourceTemplate(...descriptors: readonly Uint8Array[]): Aml {
  return buffer(cat(...descriptors, new Uint8Array([RESOURCE_TAG.EndTag, 0])));
}
