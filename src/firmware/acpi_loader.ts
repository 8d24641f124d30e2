/**
 * vmd's ACPI tables for a BIOS: the two blobs of {@link buildAcpiTables} linked for address 0, and the
 * linker/loader script (`etc/table-loader`, the format QEMU's firmware interface defines and SeaBIOS's
 * `romfile_loader` runs) that tells the firmware where to put them and how to relocate them. The firmware
 * allocates the tables in high memory and the RSDP in the F segment (where an OS's scan finds it), adds each
 * blob's address to the pointer fields that refer to it (each holds its target's offset, as linked for 0) and
 * then corrects every checksum by subtracting the blob's new sum.
 *
 * Script format: 128-byte little-endian entries, a u32 command then its arguments, file names 56 bytes
 * NUL-padded. ALLOCATE: file, u32 alignment, u8 zone. ADD_POINTER: destination file, source file, u32 offset,
 * u8 size. ADD_CHECKSUM: file, u32 offset of the checksum byte, u32 start, u32 length.
 *
 * @module
 */
import { type AcpiFile, type AcpiMachine, type AcpiTableSet, buildAcpiTables } from "../acpi/acpi_tables.ts";
import type { FwCfgDirectory } from "./fw_cfg_directory.ts";

/** The fw_cfg file holding every table but the RSDP. */
export const ACPI_TABLES_FILE = "etc/acpi/tables";
/** The fw_cfg file holding the RSDP. */
export const ACPI_RSDP_FILE = "etc/acpi/rsdp";
/** The fw_cfg file holding the loader script. */
export const TABLE_LOADER_FILE = "etc/table-loader";

/** Bytes of one script entry. */
export const LOADER_ENTRY_SIZE = 128;
/** Bytes of a file name field (the name and at least one NUL). */
export const LOADER_FILE_SIZE = 56;
/** Script commands. */
export const LOADER_COMMAND = { ALLOCATE: 1, ADD_POINTER: 2, ADD_CHECKSUM: 3 } as const;
/** Allocation zones: anywhere in RAM the firmware reserves, or the F segment (0xf0000–0xfffff). */
export const LOADER_ZONE = { HIGH: 1, FSEG: 2 } as const;

/** Where a blob goes. */
export interface LoaderAllocate {
  /** The command. */
  readonly command: "allocate";
  /** The fw_cfg file. */
  readonly file: string;
  /** Alignment in bytes (a power of two). */
  readonly align: number;
  /** A {@link LOADER_ZONE}. */
  readonly zone: number;
}

/** Add `source`'s address to the `size`-byte field at `offset` of `dest`. */
export interface LoaderAddPointer {
  /** The command. */
  readonly command: "add-pointer";
  /** The file the field is in. */
  readonly dest: string;
  /** The file whose address is added. */
  readonly source: string;
  /** The field's offset in `dest`. */
  readonly offset: number;
  /** The field's width. */
  readonly size: 1 | 2 | 4 | 8;
}

/** Subtract the sum of `length` bytes from `start` of `file` from the byte at `offset`. */
export interface LoaderAddChecksum {
  /** The command. */
  readonly command: "add-checksum";
  /** The file. */
  readonly file: string;
  /** The checksum byte. */
  readonly offset: number;
  /** First byte summed. */
  readonly start: number;
  /** Bytes summed. */
  readonly length: number;
}

/** One command of the script. */
export type LoaderCommand = LoaderAllocate | LoaderAddPointer | LoaderAddChecksum;

/** A table set or script the loader format cannot carry. */
export class AcpiLoaderError extends Error {
  /** Builds the error. */
  constructor(message: string) {
    super(`ACPI table loader (src/firmware/acpi_loader.ts): ${message}`);
    this.name = "AcpiLoaderError";
  }
}

/** The tables' alignment in high memory (the FACS needs 64). */
export const ACPI_TABLES_ALIGN = 64;
/** The RSDP's alignment (an OS scans 16-byte boundaries). */
export const ACPI_RSDP_ALIGN = 16;

const FILES: Record<AcpiFile, string> = { tables: ACPI_TABLES_FILE, rsdp: ACPI_RSDP_FILE };

/**
 * The script for `set`, which must be linked for address 0 (each pointer field then holds its target's
 * offset, to which the firmware adds the tables' address): both allocations, every pointer, then every
 * checksum in the set's order (the RSDP's 20-byte checksum before its extended one, which covers it).
 */
export function acpiLoaderCommands(set: AcpiTableSet): LoaderCommand[] {
  if (set.base !== 0) {
    throw new AcpiLoaderError(
      `the tables are linked for 0x${set.base.toString(16)}; build them with buildAcpiTables(machine, 0)`,
    );
  }
  const commands: LoaderCommand[] = [
    { command: "allocate", file: ACPI_TABLES_FILE, align: ACPI_TABLES_ALIGN, zone: LOADER_ZONE.HIGH },
    { command: "allocate", file: ACPI_RSDP_FILE, align: ACPI_RSDP_ALIGN, zone: LOADER_ZONE.FSEG },
  ];
  for (const p of set.pointers) {
    commands.push({
      command: "add-pointer",
      dest: FILES[p.file],
      source: ACPI_TABLES_FILE,
      offset: p.offset,
      size: p.size,
    });
  }
  for (const c of set.checksums) {
    commands.push({
      command: "add-checksum",
      file: FILES[c.file],
      offset: c.at,
      start: c.start,
      length: c.length,
    });
  }
  return commands;
}

function putName(out: Uint8Array, at: number, name: string): void {
  const bytes = new TextEncoder().encode(name);
  if (bytes.length === 0 || bytes.length >= LOADER_FILE_SIZE || bytes.includes(0)) {
    throw new AcpiLoaderError(
      `file name ${JSON.stringify(name)} must be 1..${LOADER_FILE_SIZE - 1} bytes without NUL`,
    );
  }
  out.set(bytes, at);
}

/** The script's bytes: one {@link LOADER_ENTRY_SIZE}-byte entry per command. */
export function encodeLoaderScript(commands: readonly LoaderCommand[]): Uint8Array {
  const out = new Uint8Array(LOADER_ENTRY_SIZE * commands.length);
  const v = new DataView(out.buffer);
  commands.forEach((c, i) => {
    const at = LOADER_ENTRY_SIZE * i;
    const args = at + 4;
    if (c.command === "allocate") {
      if (c.align < 1 || (c.align & (c.align - 1)) !== 0) {
        throw new AcpiLoaderError(`alignment ${c.align} of ${c.file} is not a power of two`);
      }
      v.setUint32(at, LOADER_COMMAND.ALLOCATE, true);
      putName(out, args, c.file);
      v.setUint32(args + LOADER_FILE_SIZE, c.align, true);
      out[args + LOADER_FILE_SIZE + 4] = c.zone;
    } else if (c.command === "add-pointer") {
      v.setUint32(at, LOADER_COMMAND.ADD_POINTER, true);
      putName(out, args, c.dest);
      putName(out, args + LOADER_FILE_SIZE, c.source);
      v.setUint32(args + 2 * LOADER_FILE_SIZE, c.offset, true);
      out[args + 2 * LOADER_FILE_SIZE + 4] = c.size;
    } else {
      v.setUint32(at, LOADER_COMMAND.ADD_CHECKSUM, true);
      putName(out, args, c.file);
      v.setUint32(args + LOADER_FILE_SIZE, c.offset, true);
      v.setUint32(args + LOADER_FILE_SIZE + 4, c.start, true);
      v.setUint32(args + LOADER_FILE_SIZE + 8, c.length, true);
    }
  });
  return out;
}

/**
 * Adds vmd's tables for `machine` to a BIOS's fw_cfg directory: `etc/acpi/tables`, `etc/acpi/rsdp` and the
 * `etc/table-loader` script that places them. Returns the set it built (linked for 0).
 */
export function addAcpiFiles(dir: FwCfgDirectory, machine: AcpiMachine): AcpiTableSet {
  const set = buildAcpiTables(machine, 0);
  dir.addFile(ACPI_TABLES_FILE, set.tables);
  dir.addFile(ACPI_RSDP_FILE, set.rsdp);
  dir.addFile(TABLE_LOADER_FILE, encodeLoaderScript(acpiLoaderCommands(set)));
  return set;
}
