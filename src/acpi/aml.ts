/**
 * A small encoder for ACPI Machine Language (ACPI 6.5, chapter 20): the handful of terms a virtual machine's
 * DSDT needs — names, integers, strings, packages, buffers, scopes, devices, methods and `Return`. Each
 * function returns the encoded bytes of one term; nesting is done by passing the children's bytes.
 *
 * @module
 */

/** An encoded AML term (or a list of them, concatenated). */
export type Aml = Uint8Array;

/** A name, value or size that AML cannot encode. */
export class AmlError extends Error {
  /** Builds the error. */
  constructor(message: string) {
    super(message);
    this.name = "AmlError";
  }
}

/** AML opcodes and prefixes, by the specification's names. */
export const AML_OP = {
  ZeroOp: 0x00,
  OneOp: 0x01,
  NameOp: 0x08,
  BytePrefix: 0x0a,
  WordPrefix: 0x0b,
  DWordPrefix: 0x0c,
  StringPrefix: 0x0d,
  QWordPrefix: 0x0e,
  ScopeOp: 0x10,
  BufferOp: 0x11,
  PackageOp: 0x12,
  MethodOp: 0x14,
  DualNamePrefix: 0x2e,
  MultiNamePrefix: 0x2f,
  ExtOpPrefix: 0x5b,
  DeviceOp: 0x82, // after ExtOpPrefix
  RootChar: 0x5c,
  ParentPrefixChar: 0x5e,
  ReturnOp: 0xa4,
  OnesOp: 0xff,
} as const;

/** Concatenates encoded terms. */
export function cat(...parts: readonly Uint8Array[]): Aml {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

const SEG = /^[A-Z_][A-Z0-9_]{0,3}$/;

/** One NameSeg: 1..4 characters (upper case, digits, `_`, not starting with a digit), padded with `_`. */
function nameSeg(seg: string): number[] {
  if (!SEG.test(seg)) {
    throw new AmlError(`AML name segment "${seg}" must be 1-4 of A-Z 0-9 _, not a digit first`);
  }
  return [...seg.padEnd(4, "_")].map((c) => c.charCodeAt(0));
}

/**
 * A NameString: an optional `\` (root) or `^` prefixes, then segments separated by dots, e.g. `\_SB.PCI0`,
 * `_HID`, `^COM1`.
 */
export function nameString(path: string): Aml {
  const out: number[] = [];
  let rest = path;
  if (rest.startsWith("\\")) {
    out.push(AML_OP.RootChar);
    rest = rest.slice(1);
  }
  while (rest.startsWith("^")) {
    out.push(AML_OP.ParentPrefixChar);
    rest = rest.slice(1);
  }
  const segs = rest === "" ? [] : rest.split(".");
  if (segs.length === 0) out.push(0x00); // NullName
  else if (segs.length === 2) out.push(AML_OP.DualNamePrefix);
  else if (segs.length > 2) {
    if (segs.length > 255) throw new AmlError(`AML name ${path} has more than 255 segments`);
    out.push(AML_OP.MultiNamePrefix, segs.length);
  }
  for (const s of segs) out.push(...nameSeg(s));
  return new Uint8Array(out);
}

/** A PkgLength for `n` bytes that follow it: the encoded length counts its own bytes too. */
export function pkgLength(n: number): Aml {
  if (!Number.isInteger(n) || n < 0) throw new AmlError(`bad AML package length ${n}`);
  if (n + 1 < 0x40) return new Uint8Array([n + 1]);
  for (let extra = 1; extra <= 3; extra++) {
    const total = n + 1 + extra;
    if (total < 2 ** (4 + 8 * extra)) {
      const out = new Uint8Array(1 + extra);
      out[0] = (extra << 6) | (total & 0x0f);
      for (let i = 0; i < extra; i++) out[1 + i] = Math.floor(total / 2 ** (4 + 8 * i)) & 0xff;
      return out;
    }
  }
  throw new AmlError(`AML package of ${n} bytes is longer than 2^28`);
}

/** `opcode PkgLength body`, with an optional extended-opcode prefix. */
function withPkg(op: readonly number[], body: Uint8Array): Aml {
  return cat(new Uint8Array(op), pkgLength(body.length), body);
}

/** An integer, in the shortest form: ZeroOp, OneOp, OnesOp (for 2^64-1) or a Byte/Word/DWord/QWord constant. */
export function int(value: number | bigint): Aml {
  const v = BigInt(value);
  if (v < 0n || v > 0xffff_ffff_ffff_ffffn) throw new AmlError(`AML integer ${v} is not 0..2^64-1`);
  if (v === 0n) return new Uint8Array([AML_OP.ZeroOp]);
  if (v === 1n) return new Uint8Array([AML_OP.OneOp]);
  if (v === 0xffff_ffff_ffff_ffffn) return new Uint8Array([AML_OP.OnesOp]);
  const [prefix, bytes] = v <= 0xffn
    ? [AML_OP.BytePrefix, 1]
    : v <= 0xffffn
    ? [AML_OP.WordPrefix, 2]
    : v <= 0xffff_ffffn
    ? [AML_OP.DWordPrefix, 4]
    : [AML_OP.QWordPrefix, 8];
  const out = new Uint8Array(1 + bytes);
  out[0] = prefix;
  for (let i = 0; i < bytes; i++) out[1 + i] = Number((v >> BigInt(8 * i)) & 0xffn);
  return out;
}

/** A string constant (ASCII 0x01..0x7f). */
export function string(s: string): Aml {
  const codes = [...s].map((c) => c.charCodeAt(0));
  if (codes.some((c) => c < 1 || c > 0x7f)) {
    throw new AmlError(`AML string ${JSON.stringify(s)} is not ASCII`);
  }
  return new Uint8Array([AML_OP.StringPrefix, ...codes, 0]);
}

/**
 * An EISA id such as `PNP0A03` as the 32-bit compressed form (three 5-bit letters, four hex digits), encoded
 * as a DWord constant — what ASL's `EisaId()` produces.
 */
export function eisaId(id: string): Aml {
  const m = /^([A-Z]{3})([0-9A-F]{4})$/.exec(id);
  if (m === null) throw new AmlError(`EISA id "${id}" must be three capital letters and four hex digits`);
  const [a, b, c] = [...m[1]].map((ch) => ch.charCodeAt(0) - 0x40);
  const vendor = (a << 10) | (b << 5) | c;
  const product = parseInt(m[2], 16);
  return new Uint8Array([
    AML_OP.DWordPrefix,
    vendor >> 8,
    vendor & 0xff,
    product >> 8,
    product & 0xff,
  ]);
}

/** `Name(path, value)`. */
export function name(path: string, value: Aml): Aml {
  return cat(new Uint8Array([AML_OP.NameOp]), nameString(path), value);
}

/** `Scope(path) { terms }`. */
export function scope(path: string, ...terms: readonly Aml[]): Aml {
  return withPkg([AML_OP.ScopeOp], cat(nameString(path), ...terms));
}

/** `Device(path) { terms }`. */
export function device(path: string, ...terms: readonly Aml[]): Aml {
  return withPkg([AML_OP.ExtOpPrefix, AML_OP.DeviceOp], cat(nameString(path), ...terms));
}

/** `Method(path, args, NotSerialized) { terms }`. */
export function method(path: string, args: number, ...terms: readonly Aml[]): Aml {
  if (!Number.isInteger(args) || args < 0 || args > 7) {
    throw new AmlError(`AML method takes 0-7 args, not ${args}`);
  }
  return withPkg([AML_OP.MethodOp], cat(nameString(path), new Uint8Array([args]), ...terms));
}

/** `Return(value)`. */
export function returnValue(value: Aml): Aml {
  return cat(new Uint8Array([AML_OP.ReturnOp]), value);
}

/** `Package() { elements }` (at most 255 elements). */
export function pkg(...elements: readonly Aml[]): Aml {
  if (elements.length > 255) throw new AmlError(`AML package of ${elements.length} elements (255 at most)`);
  return withPkg([AML_OP.PackageOp], cat(new Uint8Array([elements.length]), ...elements));
}

/** `Buffer() { bytes }`. */
export function buffer(bytes: Uint8Array): Aml {
  return withPkg([AML_OP.BufferOp], cat(int(bytes.length), bytes));
}
