/**
 * C struct layouts as data. A layout lists the kernel's field names and C types; offsets follow the C ABI
 * (natural alignment) and the total is checked against the size the kernel's headers give, so a wrong field
 * list fails at load time rather than corrupting an ioctl.
 *
 * Values are plain objects: u64 fields are bigint, smaller integers are number, arrays are arrays, nested
 * structs are objects.
 *
 * @module
 */

/** A scalar C type. */
export type Scalar = "u8" | "u16" | "u32" | "i32" | "u64";

/** A field's type: a scalar, a nested struct, or a fixed-length array. */
export type FieldType = Scalar | StructLayout | ArrayType;

/** A fixed-length C array, `T name[length]`. */
export interface ArrayType {
  /** The element type. */
  readonly of: FieldType;
  /** The number of elements. */
  readonly length: number;
}

/** One placed field. */
export interface Field {
  /** The kernel's field name. */
  readonly name: string;
  /** Its C type. */
  readonly type: FieldType;
  /** Byte offset from the start of the struct. */
  readonly offset: number;
}

const SCALAR_SIZE: Record<Scalar, number> = { u8: 1, u16: 2, u32: 4, i32: 4, u64: 8 };

/** Error in a layout definition (a programming error, found at module load). */
export class StructLayoutError extends Error {
  /** Builds the error. */
  constructor(message: string) {
    super(message);
    this.name = "StructLayoutError";
  }
}

function sizeOf(t: FieldType): number {
  if (typeof t === "string") return SCALAR_SIZE[t];
  if (t instanceof StructLayout) return t.size;
  return sizeOf(t.of) * t.length;
}

function alignOf(t: FieldType): number {
  if (typeof t === "string") return SCALAR_SIZE[t];
  if (t instanceof StructLayout) return t.align;
  return alignOf(t.of);
}

/** A C struct layout with encode/decode to plain objects. */
export class StructLayout {
  /** The kernel's struct name. */
  readonly name: string;
  /** Placed fields. */
  readonly fields: readonly Field[];
  /** sizeof(struct). */
  readonly size: number;
  /** _Alignof(struct). */
  readonly align: number;

  /**
   * Lays out `fields` in order with natural alignment and checks the result against `expectedSize`.
   */
  constructor(name: string, expectedSize: number, fields: ReadonlyArray<readonly [string, FieldType]>) {
    let offset = 0;
    let align = 1;
    const placed: Field[] = [];
    for (const [fieldName, type] of fields) {
      const a = alignOf(type);
      align = Math.max(align, a);
      offset = Math.ceil(offset / a) * a;
      placed.push({ name: fieldName, type, offset });
      offset += sizeOf(type);
    }
    const size = Math.ceil(offset / align) * align;
    if (size !== expectedSize) {
      throw new StructLayoutError(`struct ${name}: laid out as ${size} bytes, kernel says ${expectedSize}`);
    }
    this.name = name;
    this.fields = placed;
    this.size = size;
    this.align = align;
  }

  /** The offset of a field by name (throws for an unknown name). */
  offsetOf(field: string): number {
    const f = this.fields.find((x) => x.name === field);
    if (f === undefined) throw new StructLayoutError(`struct ${this.name} has no field ${field}`);
    return f.offset;
  }

  /** A zeroed buffer of this struct's size. */
  alloc(): Uint8Array<ArrayBuffer> {
    return new Uint8Array(this.size);
  }

  /** Decodes the struct at `offset` in `view`. */
  decode<T>(view: DataView, offset = 0): T {
    const out: Record<string, unknown> = {};
    for (const f of this.fields) out[f.name] = decodeField(f.type, view, offset + f.offset);
    return out as T;
  }

  /** Encodes `value` at `offset` in `view`; missing fields are written as zero. */
  encode(value: object, view: DataView, offset = 0): void {
    const rec = value as Record<string, unknown>;
    for (const f of this.fields) {
      encodeField(f.type, rec[f.name], view, offset + f.offset, `${this.name}.${f.name}`);
    }
  }

  /** Encodes `value` into a fresh buffer. */
  toBytes(value: object): Uint8Array<ArrayBuffer> {
    const buf = this.alloc();
    this.encode(value, new DataView(buf.buffer));
    return buf;
  }

  /** Decodes a buffer holding exactly this struct. */
  fromBytes<T>(buf: Uint8Array): T {
    return this.decode<T>(new DataView(buf.buffer, buf.byteOffset, buf.byteLength));
  }
}

function decodeField(t: FieldType, view: DataView, at: number): unknown {
  if (typeof t === "string") {
    switch (t) {
      case "u8":
        return view.getUint8(at);
      case "u16":
        return view.getUint16(at, true);
      case "u32":
        return view.getUint32(at, true);
      case "i32":
        return view.getInt32(at, true);
      case "u64":
        return view.getBigUint64(at, true);
    }
  }
  if (t instanceof StructLayout) return t.decode(view, at);
  const step = sizeOf(t.of);
  return Array.from({ length: t.length }, (_, i) => decodeField(t.of, view, at + i * step));
}

function encodeField(t: FieldType, v: unknown, view: DataView, at: number, where: string): void {
  if (typeof t === "string") {
    if (t === "u64") {
      view.setBigUint64(at, v === undefined ? 0n : BigInt(v as bigint | number), true);
      return;
    }
    const n = v === undefined ? 0 : Number(v);
    if (!Number.isInteger(n)) throw new StructLayoutError(`${where}: ${String(v)} is not an integer`);
    switch (t) {
      case "u8":
        view.setUint8(at, n);
        return;
      case "u16":
        view.setUint16(at, n, true);
        return;
      case "u32":
        view.setUint32(at, n >>> 0, true);
        return;
      case "i32":
        view.setInt32(at, n, true);
        return;
    }
  }
  if (t instanceof StructLayout) {
    t.encode((v ?? {}) as object, view, at);
    return;
  }
  const arr = (v ?? []) as unknown[];
  const step = sizeOf(t.of);
  for (let i = 0; i < t.length; i++) encodeField(t.of, arr[i], view, at + i * step, `${where}[${i}]`);
}
