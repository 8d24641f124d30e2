/**
 * Booting a PVH ELF kernel (XEN_ELFNOTE_PHYS32_ENTRY): load its segments, write `struct hvm_start_info`
 * (version 1, with the memory map, command line and modules), and enter 32-bit protected mode with paging
 * off, `%ebx` pointing at the start info — the x86 PVH boot ABI that Linux, FreeBSD and our test guests use.
 *
 * @module
 */
import type { GuestMemory } from "../memory/guest_memory.ts";
import { BootError } from "./boot_error.ts";
import { type ElfImage, pvhEntry } from "./elf.ts";
import {
  CMDLINE_ADDR,
  CMDLINE_MAX,
  e820Map,
  HIGH_MEMORY,
  PVH_INFO_ADDR,
  PVH_MEMMAP_ADDR,
  PVH_MODLIST_ADDR,
} from "./layout.ts";
import type { BootPlan, LoadOptions } from "./loader.ts";
import { placeInitrd } from "./initrd.ts";

/** hvm_start_info.magic. */
export const HVM_START_MAGIC_VALUE = 0x336ec578;
const HVM_START_INFO_SIZE = 56;
const MEMMAP_ENTRY_SIZE = 24;

/** Loads the PVH kernel `elf` and its boot data into `mem`; returns how to enter it. */
export function loadPvh(mem: GuestMemory, elf: ElfImage, bytes: Uint8Array, o: LoadOptions): BootPlan {
  const entry = pvhEntry(elf);
  if (entry === undefined) {
    throw new BootError(o.kernelName, "ELF kernel has no PVH entry note (Xen, type 18)");
  }
  let kernelEnd = 0;
  for (const s of elf.segments) {
    if (s.paddr < HIGH_MEMORY || !mem.contains(s.paddr, s.memSize)) {
      throw new BootError(
        o.kernelName,
        `segment at 0x${s.paddr.toString(16)} (${s.memSize} bytes) does not fit in guest RAM above 1 MiB; ` +
          "give the VM more memory",
      );
    }
    mem.write(s.paddr, bytes.subarray(s.offset, s.offset + s.fileSize));
    mem.fill(s.paddr + s.fileSize, s.memSize - s.fileSize);
    kernelEnd = Math.max(kernelEnd, s.paddr + s.memSize);
  }
  const cmdline = new TextEncoder().encode(o.cmdline);
  if (cmdline.length + 1 > CMDLINE_MAX) {
    throw new BootError(
      "cmdline",
      `${cmdline.length} bytes is longer than vmd's ${CMDLINE_MAX - 1}-byte limit`,
    );
  }
  mem.write(CMDLINE_ADDR, cmdline);
  mem.writeU8(CMDLINE_ADDR + cmdline.length, 0);

  const map = e820Map(mem.regions);
  map.forEach((e, i) => {
    const at = PVH_MEMMAP_ADDR + i * MEMMAP_ENTRY_SIZE;
    mem.writeU64(at, BigInt(e.addr));
    mem.writeU64(at + 8, BigInt(e.size));
    mem.writeU32(at + 16, e.type);
    mem.writeU32(at + 20, 0);
  });

  let modules = 0;
  if (o.initrd !== undefined) {
    const at = placeInitrd(mem, o.initrd, kernelEnd, 0xffff_ffff, o.initrdName);
    mem.writeU64(PVH_MODLIST_ADDR, BigInt(at));
    mem.writeU64(PVH_MODLIST_ADDR + 8, BigInt(o.initrd.length));
    mem.writeU64(PVH_MODLIST_ADDR + 16, 0n);
    mem.writeU64(PVH_MODLIST_ADDR + 24, 0n);
    modules = 1;
  }

  mem.fill(PVH_INFO_ADDR, HVM_START_INFO_SIZE);
  mem.writeU32(PVH_INFO_ADDR, HVM_START_MAGIC_VALUE);
  mem.writeU32(PVH_INFO_ADDR + 4, 1); // version 1: has the memory map
  mem.writeU32(PVH_INFO_ADDR + 8, 0); // flags
  mem.writeU32(PVH_INFO_ADDR + 12, modules);
  mem.writeU64(PVH_INFO_ADDR + 16, modules ? BigInt(PVH_MODLIST_ADDR) : 0n);
  mem.writeU64(PVH_INFO_ADDR + 24, BigInt(CMDLINE_ADDR));
  mem.writeU64(PVH_INFO_ADDR + 32, BigInt(o.rsdp ?? 0)); // rsdp_paddr (0: no ACPI)
  mem.writeU64(PVH_INFO_ADDR + 40, BigInt(PVH_MEMMAP_ADDR));
  mem.writeU32(PVH_INFO_ADDR + 48, map.length);
  return { mode: "protected32", entry, bootInfo: PVH_INFO_ADDR, kind: "pvh" };
}
