/**
 * The contents a VM's fw_cfg device serves: numbered items and named files (QEMU's file directory), frozen
 * into one SharedArrayBuffer that every vCPU worker's fw_cfg device reads. The directory knows nothing about
 * ports or guests; {@link FwCfgImage} is the read side the device uses.
 *
 * Image layout (little-endian): u32 item count, then per item u16 key, u16 reserved, u32 offset, u32 length,
 * then the items' bytes.
 *
 * @module
 */
import {
  FW_CFG_ENTRY_MASK,
  FW_CFG_FILE_ENTRY_SIZE,
  FW_CFG_KEY,
  FW_CFG_MAX_NAME,
  FW_CFG_VERSION,
} from "./fw_cfg_items.ts";

/** A refused item: a duplicate key or file name, a bad name, a directory that is full or too large. */
export class FwCfgError extends Error {
  /** Builds the error. */
  constructor(message: string) {
    super(`fw_cfg (src/firmware/fw_cfg_directory.ts): ${message}`);
    this.name = "FwCfgError";
  }
}

/** Most files in one directory (QEMU's default is 32 slots; machines raise it). */
export const FW_CFG_MAX_FILES = 0x400;
/** Largest image (all items together): 64 MiB, far above BIOS tables, far below guest RAM sizes. */
export const FW_CFG_MAX_IMAGE = 64 << 20;
const HEADER = 4;
const ROW = 12;

/** Builds a fw_cfg directory: the signature, feature bitmap and file directory are added by {@link freeze}. */
export class FwCfgDirectory {
  readonly #items = new Map<number, Uint8Array>();
  readonly #files: { name: string; key: number }[] = [];
  readonly #dma: boolean;

  /** `dma`: advertise the DMA interface in `FW_CFG_ID` (the device serves it either way). */
  constructor(options: { readonly dma?: boolean } = {}) {
    this.#dma = options.dma ?? true;
  }

  /** Adds numbered item `key` (below the file range, or arch-local). */
  addItem(key: number, data: Uint8Array): void {
    if (!Number.isInteger(key) || key < 0 || key > 0xffff || (key & ~FW_CFG_ENTRY_MASK) !== 0) {
      throw new FwCfgError(
        `item key 0x${key.toString(16)} is not a fw_cfg key; use 0..0x3fff or 0x8000..0xbfff`,
      );
    }
    const reserved = key === FW_CFG_KEY.FW_CFG_SIGNATURE || key === FW_CFG_KEY.FW_CFG_ID ||
      key === FW_CFG_KEY.FW_CFG_FILE_DIR;
    if (reserved || (key >= FW_CFG_KEY.FW_CFG_FILE_FIRST && key < 0x4000)) {
      throw new FwCfgError(`item key 0x${key.toString(16)} is the directory's own; add files with addFile()`);
    }
    if (this.#items.has(key)) throw new FwCfgError(`item key 0x${key.toString(16)} was added twice`);
    this.#items.set(key, data.slice());
  }

  /** Adds a 16-bit little-endian item. */
  addU16(key: number, value: number): void {
    const b = new Uint8Array(2);
    new DataView(b.buffer).setUint16(0, value, true);
    this.addItem(key, b);
  }

  /** Adds a 32-bit little-endian item. */
  addU32(key: number, value: number): void {
    const b = new Uint8Array(4);
    new DataView(b.buffer).setUint32(0, value, true);
    this.addItem(key, b);
  }

  /** Adds a 64-bit little-endian item. */
  addU64(key: number, value: bigint): void {
    const b = new Uint8Array(8);
    new DataView(b.buffer).setBigUint64(0, value, true);
    this.addItem(key, b);
  }

  /** Adds file `name` (printable ASCII, at most 55 bytes, unique) and returns its selector key. */
  addFile(name: string, data: Uint8Array): number {
    if (name.length === 0 || name.length > FW_CFG_MAX_NAME || !/^[\x21-\x7e]+$/.test(name)) {
      throw new FwCfgError(
        `file name ${JSON.stringify(name)} must be 1..${FW_CFG_MAX_NAME} printable ASCII characters`,
      );
    }
    if (this.#files.some((f) => f.name === name)) throw new FwCfgError(`file ${name} was added twice`);
    if (this.#files.length >= FW_CFG_MAX_FILES) {
      throw new FwCfgError(`more than ${FW_CFG_MAX_FILES} files; the directory is full`);
    }
    const key = FW_CFG_KEY.FW_CFG_FILE_FIRST + this.#files.length;
    this.#files.push({ name, key });
    this.#items.set(key, data.slice());
    return key;
  }

  /** Adds a file holding `text` (ASCII, no NUL: SeaBIOS reads text files by their size). */
  addTextFile(name: string, text: string): number {
    return this.addFile(name, new TextEncoder().encode(text));
  }

  /** Adds a file holding a little-endian integer of `bytes` bytes (how SeaBIOS reads `etc/...` numbers). */
  addIntFile(name: string, value: number, bytes: 1 | 2 | 4 | 8 = 8): number {
    const b = new Uint8Array(bytes);
    let v = BigInt(value);
    for (let i = 0; i < bytes; i++, v >>= 8n) b[i] = Number(v & 0xffn);
    return this.addFile(name, b);
  }

  /** The file names, in directory order. */
  get fileNames(): readonly string[] {
    return this.#files.map((f) => f.name);
  }

  /** Freezes the directory (signature, feature bitmap and file directory included) into a shared image. */
  freeze(): SharedArrayBuffer {
    const items = new Map(this.#items);
    items.set(FW_CFG_KEY.FW_CFG_SIGNATURE, new TextEncoder().encode("QEMU"));
    const id = new Uint8Array(4);
    new DataView(id.buffer).setUint32(
      0,
      FW_CFG_VERSION.FW_CFG_VERSION | (this.#dma ? FW_CFG_VERSION.FW_CFG_VERSION_DMA : 0),
      true,
    );
    items.set(FW_CFG_KEY.FW_CFG_ID, id);
    const dir = new Uint8Array(4 + FW_CFG_FILE_ENTRY_SIZE * this.#files.length);
    const dv = new DataView(dir.buffer);
    dv.setUint32(0, this.#files.length, false);
    this.#files.forEach((f, i) => {
      const at = 4 + FW_CFG_FILE_ENTRY_SIZE * i;
      dv.setUint32(at, this.#items.get(f.key)!.length, false);
      dv.setUint16(at + 4, f.key, false);
      dir.set(new TextEncoder().encode(f.name), at + 8);
    });
    items.set(FW_CFG_KEY.FW_CFG_FILE_DIR, dir);
    const keys = [...items.keys()].sort((a, b) => a - b);
    let size = HEADER + ROW * keys.length;
    for (const k of keys) size += items.get(k)!.length;
    if (size > FW_CFG_MAX_IMAGE) {
      throw new FwCfgError(`the items come to ${size} bytes, more than ${FW_CFG_MAX_IMAGE}; add less`);
    }
    const sab = new SharedArrayBuffer(size);
    const out = new Uint8Array(sab);
    const v = new DataView(sab);
    v.setUint32(0, keys.length, true);
    let data = HEADER + ROW * keys.length;
    keys.forEach((k, i) => {
      const bytes = items.get(k)!;
      v.setUint16(HEADER + ROW * i, k, true);
      v.setUint32(HEADER + ROW * i + 4, data, true);
      v.setUint32(HEADER + ROW * i + 8, bytes.length, true);
      out.set(bytes, data);
      data += bytes.length;
    });
    return sab;
  }
}

/** The read side of a frozen directory: item lookup by key, allocation-free after construction. */
export class FwCfgImage {
  readonly #bytes: Uint8Array;
  readonly #offset = new Map<number, number>();
  readonly #length = new Map<number, number>();

  /** Reads the table of `image` (a frozen directory), checking every row lies inside it. */
  constructor(image: SharedArrayBuffer) {
    this.#bytes = new Uint8Array(image);
    const v = new DataView(image);
    if (image.byteLength < HEADER) throw new FwCfgError("the image is shorter than its header");
    const count = v.getUint32(0, true);
    if (HEADER + ROW * count > image.byteLength) throw new FwCfgError("the image's table overruns it");
    for (let i = 0; i < count; i++) {
      const key = v.getUint16(HEADER + ROW * i, true);
      const offset = v.getUint32(HEADER + ROW * i + 4, true);
      const length = v.getUint32(HEADER + ROW * i + 8, true);
      if (offset + length > image.byteLength) {
        throw new FwCfgError(`item 0x${key.toString(16)} overruns the image`);
      }
      this.#offset.set(key, offset);
      this.#length.set(key, length);
    }
  }

  /** The length of item `key` (0 for an absent item, which reads as an empty one). */
  length(key: number): number {
    return this.#length.get(key) ?? 0;
  }

  /** Byte `at` of item `key`, 0 past its end or for an absent item. */
  byte(key: number, at: number): number {
    const len = this.#length.get(key) ?? 0;
    return at < len ? this.#bytes[this.#offset.get(key)! + at] : 0;
  }

  /** Item `key`'s bytes `[at, at + length)` clipped to the item (a view, no copy). */
  view(key: number, at: number, length: number): Uint8Array {
    const len = this.#length.get(key) ?? 0;
    if (at >= len) return this.#bytes.subarray(0, 0);
    const start = this.#offset.get(key)! + at;
    return this.#bytes.subarray(start, start + Math.min(length, len - at));
  }
}
