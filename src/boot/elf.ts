/**
 * A minimal ELF reader for kernels (pure: bytes in, typed data out): the file header, PT_LOAD segments and
 * the notes, for ELF32 and ELF64 little-endian x86 files. Every offset and size is checked against the file.
 *
 * @module
 */
import { BootError } from "./boot_error.ts";

/** A loadable segment. */
export interface ElfSegment {
  /** Physical load address (p_paddr). */
  readonly paddr: number;
  /** Offset of the segment's bytes in the file. */
  readonly offset: number;
  /** Bytes taken from the file (p_filesz). */
  readonly fileSize: number;
  /** Bytes in memory (p_memsz, ≥ fileSize; the rest is zeroed). */
  readonly memSize: number;
}

/** An ELF note. */
export interface ElfNote {
  /** The owner name, without its NUL ("Xen", "GNU", ...). */
  readonly name: string;
  /** The note type. */
  readonly type: number;
  /** The descriptor bytes (a view into the file). */
  readonly desc: Uint8Array;
}

/** What vmd needs of an ELF kernel. */
export interface ElfImage {
  /** 32 or 64. */
  readonly bits: 32 | 64;
  /** e_entry. */
  readonly entry: number;
  /** PT_LOAD segments. */
  readonly segments: readonly ElfSegment[];
  /** Notes from PT_NOTE segments. */
  readonly notes: readonly ElfNote[];
}

const PT_LOAD = 1;
const PT_NOTE = 4;
const EM_386 = 3;
const EM_X86_64 = 62;

/** True if `bytes` starts with the ELF magic. */
export function isElf(bytes: Uint8Array): boolean {
  return bytes.length >= 4 && bytes[0] === 0x7f && bytes[1] === 0x45 && bytes[2] === 0x4c &&
    bytes[3] === 0x46;
}

/** Parses `bytes` as an x86 ELF executable; `what` names the file in errors. */
export function parseElf(bytes: Uint8Array, what: string): ElfImage {
  if (!isElf(bytes)) throw new BootError(what, "not an ELF file");
  if (bytes.length < 52) throw new BootError(what, "truncated ELF header");
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const cls = bytes[4];
  if (cls !== 1 && cls !== 2) throw new BootError(what, `unknown ELF class ${cls}`);
  if (bytes[5] !== 1) throw new BootError(what, "big-endian ELF; x86 kernels are little-endian");
  const bits = cls === 1 ? 32 : 64;
  if (bits === 64 && bytes.length < 64) throw new BootError(what, "truncated ELF64 header");
  const machine = v.getUint16(18, true);
  if (machine !== EM_386 && machine !== EM_X86_64) {
    throw new BootError(what, `ELF machine ${machine} is not x86 (3) or x86-64 (62)`);
  }
  const u = (off: number, size: 4 | 8) =>
    size === 4 ? v.getUint32(off, true) : Number(v.getBigUint64(off, true));
  const word = bits === 32 ? 4 : 8;
  const entry = u(24, word);
  const phoff = u(bits === 32 ? 28 : 32, word);
  const phentsize = v.getUint16(bits === 32 ? 42 : 54, true);
  const phnum = v.getUint16(bits === 32 ? 44 : 56, true);
  const minEnt = bits === 32 ? 32 : 56;
  if (phnum === 0) throw new BootError(what, "ELF file has no program headers");
  if (phentsize < minEnt) throw new BootError(what, `ELF program header size ${phentsize} is too small`);
  if (!Number.isSafeInteger(phoff) || phoff + phnum * phentsize > bytes.length) {
    throw new BootError(what, "truncated ELF: program headers lie past the end of the file");
  }
  const segments: ElfSegment[] = [];
  const notes: ElfNote[] = [];
  for (let i = 0; i < phnum; i++) {
    const p = phoff + i * phentsize;
    const type = v.getUint32(p, true);
    const offset = bits === 32 ? v.getUint32(p + 4, true) : u(p + 8, 8);
    const paddr = bits === 32 ? v.getUint32(p + 12, true) : u(p + 24, 8);
    const fileSize = bits === 32 ? v.getUint32(p + 16, true) : u(p + 32, 8);
    const memSize = bits === 32 ? v.getUint32(p + 20, true) : u(p + 40, 8);
    if (type !== PT_LOAD && type !== PT_NOTE) continue;
    if (!Number.isSafeInteger(offset + fileSize) || offset + fileSize > bytes.length) {
      throw new BootError(
        what,
        `truncated ELF: segment ${i} (${fileSize} bytes at ${offset}) lies past the end of the file`,
      );
    }
    if (type === PT_LOAD) {
      if (memSize < fileSize) {
        throw new BootError(what, `ELF segment ${i} is smaller in memory than in the file`);
      }
      segments.push({ paddr, offset, fileSize, memSize });
    } else {
      notes.push(...parseNotes(bytes.subarray(offset, offset + fileSize), what));
    }
  }
  if (segments.length === 0) throw new BootError(what, "ELF file has no loadable segments");
  return { bits, entry, segments, notes };
}

function parseNotes(data: Uint8Array, what: string): ElfNote[] {
  const v = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const out: ElfNote[] = [];
  let at = 0;
  const align4 = (n: number) => (n + 3) & ~3;
  while (at + 12 <= data.length) {
    const namesz = v.getUint32(at, true);
    const descsz = v.getUint32(at + 4, true);
    const type = v.getUint32(at + 8, true);
    const nameAt = at + 12;
    const descAt = nameAt + align4(namesz);
    const end = descAt + align4(descsz);
    if (namesz > data.length || descsz > data.length || descAt + descsz > data.length) {
      throw new BootError(what, "malformed ELF note: it runs past its segment");
    }
    const nameBytes = data.subarray(nameAt, nameAt + namesz);
    const nul = nameBytes.indexOf(0);
    const name = new TextDecoder().decode(nul < 0 ? nameBytes : nameBytes.subarray(0, nul));
    out.push({ name, type, desc: data.subarray(descAt, descAt + descsz) });
    at = end;
  }
  return out;
}

/** XEN_ELFNOTE_PHYS32_ENTRY: the note type of the PVH 32-bit entry point. */
export const XEN_ELFNOTE_PHYS32_ENTRY = 18;

/** The PVH entry point from the "Xen" note of type 18, if the kernel has one. */
export function pvhEntry(elf: ElfImage): number | undefined {
  const note = elf.notes.find((n) => n.name === "Xen" && n.type === XEN_ELFNOTE_PHYS32_ENTRY);
  if (note === undefined || note.desc.length < 4) return undefined;
  const v = new DataView(note.desc.buffer, note.desc.byteOffset, note.desc.byteLength);
  return note.desc.length >= 8 ? Number(v.getBigUint64(0, true)) : v.getUint32(0, true);
}
