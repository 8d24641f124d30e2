/**
 * Where boot data lives in guest physical memory, and the memory map (e820) every loader reports. The
 * addresses follow the PC conventions Linux expects (and that Firecracker and QEMU use): boot structures in
 * the first 640 KiB, the BIOS area reserved, the kernel from 1 MiB.
 *
 * @module
 */
import type { MemoryRegion } from "../memory/guest_memory.ts";

/** PVH `hvm_start_info`. */
export const PVH_INFO_ADDR = 0x6000;
/** PVH memory map (after the start info). */
export const PVH_MEMMAP_ADDR = 0x6040;
/** PVH module list. */
export const PVH_MODLIST_ADDR = 0x6400;
/** Linux's zero page (`struct boot_params`). */
export const ZERO_PAGE_ADDR = 0x7000;
/** Initial stack pointer for kernels entered by vmd. */
export const BOOT_STACK_ADDR = 0x8ff0;
/** The kernel command line. */
export const CMDLINE_ADDR = 0x20000;
/** The most command-line bytes vmd places (the kernel's own `cmdline_size` may be lower). */
export const CMDLINE_MAX = 0x10000;
/** Start of the extended BIOS data area; from here to 1 MiB is reserved. */
export const EBDA_START = 0x9fc00;
/** Where the ACPI RSDP goes, with the tables after it (inside the area an OS scans for the RSDP). */
export const ACPI_RSDP_ADDR = 0xe0000;
/** The end of the ACPI tables' area (the MP table follows). */
export const ACPI_TABLES_END = 0xf0000;
/** Where the MP table goes (inside the reserved BIOS area that Linux scans). */
export const MPTABLE_ADDR = 0xf0000;
/** Start of the BIOS ROM area, reserved. */
export const BIOS_START = 0xf0000;
/** 1 MiB: where kernels load. */
export const HIGH_MEMORY = 0x100000;

/** An e820 entry type. */
export const E820 = { RAM: 1, RESERVED: 2 } as const;

/** One memory-map entry. */
export interface E820Entry {
  /** Start address. */
  readonly addr: number;
  /** Length in bytes. */
  readonly size: number;
  /** {@link E820} type. */
  readonly type: number;
}

/** The memory map of a guest whose RAM is `regions` (the first starting at 0 and covering 1 MiB). */
export function e820Map(regions: readonly MemoryRegion[]): E820Entry[] {
  const [low, ...high] = regions;
  if (low === undefined || low.gpa !== 0 || low.size <= HIGH_MEMORY) {
    throw new RangeError("guest RAM must start at 0 and extend past 1 MiB");
  }
  return [
    { addr: 0, size: EBDA_START, type: E820.RAM },
    { addr: EBDA_START, size: HIGH_MEMORY - EBDA_START, type: E820.RESERVED },
    { addr: HIGH_MEMORY, size: low.size - HIGH_MEMORY, type: E820.RAM },
    ...high.map((r) => ({ addr: r.gpa, size: r.size, type: E820.RAM })),
  ];
}

/** The top of RAM below 4 GiB (end of the first region). */
export function lowRamEnd(regions: readonly MemoryRegion[]): number {
  return regions[0].gpa + regions[0].size;
}
