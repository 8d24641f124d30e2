/**
 * Finds the PVH entry point of an ELF file: the `XEN_ELFNOTE_PHYS32_ENTRY` note (owner "Xen", type 18) in a
 * PT_NOTE segment. Reads 32- and 64-bit little-endian ELF. Used by the guest preparation script and tests to
 * check what they built or extracted; the VMM's own loader lives in `src/boot`.
 *
 * @module
 */

/** The ELF note type of the PVH 32-bit physical entry address. */
export const XEN_ELFNOTE_PHYS32_ENTRY = 18;

/** A file that is not a readable little-endian ELF file. */
export class ElfReadError extends Error {
  /** Builds the error. */
  constructor(message: string) {
    super(message);
    this.name = "ElfReadError";
  }
}

/** What the ELF header says, as far as the checks here need. */
export interface ElfSummary {
  /** 32 or 64. */
  readonly bits: 32 | 64;
  /** e_machine (3 = i386, 62 = x86-64). */
  readonly machine: number;
  /** e_entry. */
  readonly entry: number;
  /** The PVH entry address from the note, or undefined when there is none. */
  readonly pvhEntry: number | undefined;
}

const PT_NOTE = 4;

/** True when `bytes` starts with the ELF magic. */
export function isElf(bytes: Uint8Array): boolean {
  return bytes.length >= 4 && bytes[0] === 0x7f && bytes[1] === 0x45 && bytes[2] === 0x4c &&
    bytes[3] === 0x46;
}

/** Reads the header and the PVH note of an ELF file; throws ElfReadError when it is not one or is cut short. */
export function readElf(bytes: Uint8Array): ElfSummary {
  if (!isElf(bytes)) throw new ElfReadError("not an ELF file (no \\x7fELF magic)");
  if (bytes.length < 52) throw new ElfReadError(`ELF header truncated (${bytes.length} bytes)`);
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const cls = bytes[4];
  if (cls !== 1 && cls !== 2) throw new ElfReadError(`unknown ELF class ${cls}`);
  if (bytes[5] !== 1) throw new ElfReadError("not a little-endian ELF file");
  const is64 = cls === 2;
  if (is64 && bytes.length < 64) throw new ElfReadError(`ELF64 header truncated (${bytes.length} bytes)`);
  const word = (at: number): number => is64 ? Number(v.getBigUint64(at, true)) : v.getUint32(at, true);
  const machine = v.getUint16(18, true);
  const entry = word(24);
  const phoff = is64 ? word(32) : word(28);
  const phentsize = v.getUint16(is64 ? 54 : 42, true);
  const phnum = v.getUint16(is64 ? 56 : 44, true);
  if (phoff + phentsize * phnum > bytes.length) {
    throw new ElfReadError(`program headers run past the end of the file (${bytes.length} bytes)`);
  }
  let pvhEntry: number | undefined;
  for (let i = 0; i < phnum && pvhEntry === undefined; i++) {
    const ph = phoff + i * phentsize;
    if (v.getUint32(ph, true) !== PT_NOTE) continue;
    const offset = is64 ? word(ph + 8) : word(ph + 4);
    const size = is64 ? word(ph + 32) : word(ph + 16);
    if (offset + size > bytes.length) throw new ElfReadError(`PT_NOTE ${i} runs past the end of the file`);
    pvhEntry = findPvhNote(bytes.subarray(offset, offset + size));
  }
  return { bits: is64 ? 64 : 32, machine, entry, pvhEntry };
}

const align4 = (n: number): number => (n + 3) & ~3;

function findPvhNote(notes: Uint8Array): number | undefined {
  const v = new DataView(notes.buffer, notes.byteOffset, notes.byteLength);
  let at = 0;
  while (at + 12 <= notes.length) {
    const namesz = v.getUint32(at, true);
    const descsz = v.getUint32(at + 4, true);
    const type = v.getUint32(at + 8, true);
    const nameAt = at + 12;
    const descAt = nameAt + align4(namesz);
    if (descAt + descsz > notes.length) return undefined;
    const name = new TextDecoder().decode(notes.subarray(nameAt, nameAt + namesz)).replace(/\0+$/, "");
    if (name === "Xen" && type === XEN_ELFNOTE_PHYS32_ENTRY && descsz >= 4) return v.getUint32(descAt, true);
    at = descAt + align4(descsz);
  }
  return undefined;
}
