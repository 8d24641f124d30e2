/**
 * Initrd placement: as high as possible below a ceiling (the kernel's `initrd_addr_max`, and the end of low
 * RAM), page-aligned, above the kernel — where Linux's boot protocol and QEMU put it.
 *
 * @module
 */
import type { GuestMemory } from "../memory/guest_memory.ts";
import { BootError } from "./boot_error.ts";
import { lowRamEnd } from "./layout.ts";

const PAGE = 4096;

/**
 * Copies `initrd` to the highest page-aligned address whose end is at or below `ceiling` (inclusive last
 * byte) and below the end of low RAM, and above `floor`; returns that address.
 */
export function placeInitrd(
  mem: GuestMemory,
  initrd: Uint8Array,
  floor: number,
  ceiling: number,
  what: string,
): number {
  const top = Math.min(ceiling + 1, lowRamEnd(mem.regions));
  const at = Math.floor((top - initrd.length) / PAGE) * PAGE;
  const start = Math.ceil(floor / PAGE) * PAGE;
  if (initrd.length === 0) throw new BootError(what, "initrd is empty");
  if (at < start) {
    throw new BootError(
      what,
      `initrd of ${initrd.length} bytes does not fit in guest RAM between the kernel (ends at 0x${
        floor.toString(16)
      }) and 0x${top.toString(16)}; give the VM more memory`,
    );
  }
  mem.write(at, initrd);
  return at;
}
