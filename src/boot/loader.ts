/**
 * The boot loaders behind one interface: give it the kernel file's bytes (and an initrd and a command line),
 * and it recognises a PVH ELF or a Linux bzImage, loads it into guest memory, and says how to enter it.
 *
 * @module
 */
import type { GuestMemory } from "../memory/guest_memory.ts";
import { BootError } from "./boot_error.ts";
import { isElf, parseElf } from "./elf.ts";
import { isBzImage, loadBzImage } from "./bzimage.ts";
import { loadPvh } from "./pvh.ts";

/** What to load besides the kernel. */
export interface LoadOptions {
  /** The kernel's name (its path) for errors. */
  readonly kernelName: string;
  /** The kernel command line. */
  readonly cmdline: string;
  /** The initrd's bytes, if any. */
  readonly initrd?: Uint8Array;
  /** The initrd's name for errors. */
  readonly initrdName: string;
  /** The ACPI RSDP's address, when the VM has ACPI tables (PVH `rsdp_paddr`, the zero page's `acpi_rsdp_addr`). */
  readonly rsdp?: number;
}

/** How to start a loaded kernel. */
export interface BootPlan {
  /** Which loader took it. */
  readonly kind: "pvh" | "bzimage";
  /** CPU mode at entry: PVH enters 32-bit protected mode (paging off); bzImage enters 64-bit long mode. */
  readonly mode: "protected32" | "long64";
  /** Entry address. */
  readonly entry: number;
  /** `%ebx` (PVH: hvm_start_info) or `%rsi` (Linux: the zero page). */
  readonly bootInfo: number;
}

/** Recognises and loads `kernel`; throws {@link BootError} for a file that is neither PVH ELF nor bzImage. */
export function loadKernel(mem: GuestMemory, kernel: Uint8Array, o: LoadOptions): BootPlan {
  if (isElf(kernel)) return loadPvh(mem, parseElf(kernel, o.kernelName), kernel, o);
  if (isBzImage(kernel)) return loadBzImage(mem, kernel, o);
  if (kernel.length < 0x260) {
    throw new BootError(o.kernelName, `file of ${kernel.length} bytes is too small to be a kernel`);
  }
  throw new BootError(
    o.kernelName,
    "neither an ELF kernel with a PVH note nor a Linux bzImage (no \\x7fELF magic, no HdrS header at 0x202)",
  );
}
