/**
 * A BIOS image and where a PC puts it: the whole image ends at 4 GiB (read-only, where the reset vector
 * 0xfffffff0 reaches it) and a copy ends at 1 MiB (0xc0000..0xfffff at most, the legacy ROM area, where
 * real-mode code runs and where the BIOS keeps its variables — RAM, as a chipset's shadow RAM is once the
 * BIOS has unlocked it). This is OpenBSD vmd's layout, and QEMU's once SeaBIOS has shadowed itself.
 *
 * Parsing only: the bytes come from a file someone else opened.
 *
 * @module
 */
import { isBzImage } from "../boot/bzimage.ts";
import { isElf } from "../boot/elf.ts";

/** A BIOS image vmd cannot use. */
export class BiosImageError extends Error {
  /** Builds the error; `file` names the image. */
  constructor(file: string, message: string) {
    super(`${file}: ${message} (src/firmware/bios_image.ts)`);
    this.name = "BiosImageError";
  }
}

/** Smallest BIOS image accepted. */
export const BIOS_MIN_SIZE = 64 << 10;
/** Largest BIOS image accepted: 0xc0000..0xfffff below 1 MiB; above 4 GiB it stays clear of KVM's TSS. */
export const BIOS_MAX_SIZE = 256 << 10;
/** BIOS images are whole pages (they are mapped as a memory slot). */
export const BIOS_SIZE_UNIT = 4 << 10;
/** The end of the low copy. */
export const BIOS_LOW_END = 0x10_0000;
/** The end of the high (reset-vector) mapping. */
export const BIOS_HIGH_END = 2 ** 32;
/** The default BIOS: SeaBIOS as Debian's `seabios` package installs it (QEMU's `-M pc` default too). */
export const DEFAULT_BIOS_PATH = "/usr/share/seabios/bios-256k.bin";

/** Where a checked image goes. */
export interface BiosPlacement {
  /** The image. */
  readonly image: Uint8Array;
  /** Guest address of the read-only mapping (ends at 4 GiB). */
  readonly highBase: number;
  /** Guest address of the RAM copy (ends at 1 MiB). */
  readonly lowBase: number;
}

/** True when `bytes` is a kernel vmd boots directly (PVH ELF or bzImage), not a BIOS image. */
export function isKernelImage(bytes: Uint8Array): boolean {
  return isElf(bytes) || isBzImage(bytes);
}

/** Checks `image` (named `file` in errors) and says where it goes. */
export function placeBios(image: Uint8Array, file: string): BiosPlacement {
  const n = image.length;
  if (n < BIOS_MIN_SIZE || n > BIOS_MAX_SIZE || n % BIOS_SIZE_UNIT !== 0) {
    throw new BiosImageError(
      file,
      `a BIOS image of ${n} bytes; vmd takes ${BIOS_MIN_SIZE / 1024} to ${
        BIOS_MAX_SIZE / 1024
      } KiB in whole ` +
        `${BIOS_SIZE_UNIT / 1024} KiB pages (SeaBIOS's bios.bin or bios-256k.bin); give a BIOS image, or ` +
        "a kernel (PVH ELF or bzImage)",
    );
  }
  // The reset vector: the last 16 bytes start with a jump (0xea far jump or 0xe9/0xeb near jump).
  const reset = image[n - 16];
  if (reset !== 0xea && reset !== 0xe9 && reset !== 0xeb) {
    throw new BiosImageError(
      file,
      `no jump at the reset vector (byte 0x${
        reset.toString(16)
      } at 16 bytes before the end); this is not a ` +
        "BIOS image",
    );
  }
  return { image, highBase: BIOS_HIGH_END - n, lowBase: BIOS_LOW_END - n };
}
