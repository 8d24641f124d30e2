/**
 * Linux bzImage by the x86 boot protocol (Documentation/arch/x86/boot.rst), 2.10 or later, entered through the
 * 64-bit entry point: parse and check the setup header (pure), load the protected-mode kernel, and write the
 * zero page (`struct boot_params`) with the e820 map, command line and initrd.
 *
 * @module
 */
import type { GuestMemory } from "../memory/guest_memory.ts";
import { BootError } from "./boot_error.ts";
import { CMDLINE_ADDR, CMDLINE_MAX, e820Map, HIGH_MEMORY, lowRamEnd, ZERO_PAGE_ADDR } from "./layout.ts";
import type { BootPlan, LoadOptions } from "./loader.ts";
import { placeInitrd } from "./initrd.ts";

/** "HdrS", the setup header's magic at 0x202. */
export const SETUP_HEADER_MAGIC = 0x53726448;
/** The oldest boot protocol vmd accepts (2.10: kernel_alignment, init_size semantics, 64-bit entry). */
export const MIN_BOOT_PROTOCOL = 0x020a;

/** Offsets of the setup header fields, in the file and in the zero page alike. */
export const SETUP = {
  setup_sects: 0x1f1,
  vid_mode: 0x1fa,
  boot_flag: 0x1fe,
  jump: 0x200,
  header: 0x202,
  version: 0x206,
  type_of_loader: 0x210,
  loadflags: 0x211,
  code32_start: 0x214,
  ramdisk_image: 0x218,
  ramdisk_size: 0x21c,
  heap_end_ptr: 0x224,
  cmd_line_ptr: 0x228,
  initrd_addr_max: 0x22c,
  kernel_alignment: 0x230,
  relocatable_kernel: 0x234,
  min_alignment: 0x235,
  xloadflags: 0x236,
  cmdline_size: 0x238,
  pref_address: 0x258,
  init_size: 0x260,
} as const;

/** Other zero-page offsets. */
export const ZERO_PAGE = {
  acpi_rsdp_addr: 0x070,
  e820_entries: 0x1e8,
  e820_table: 0x2d0,
  e820_max: 128,
} as const;

/** loadflags bits. */
export const LOADFLAGS = { LOADED_HIGH: 0x01, CAN_USE_HEAP: 0x80 } as const;
/** xloadflags bits. */
export const XLF = { KERNEL_64: 0x01, CAN_BE_LOADED_ABOVE_4G: 0x02 } as const;

/** The setup header fields vmd uses. */
export interface SetupHeader {
  /** Sectors of real-mode setup code (0 means 4). */
  readonly setupSects: number;
  /** Boot protocol version, e.g. 0x020f. */
  readonly version: number;
  /** loadflags. */
  readonly loadflags: number;
  /** Highest address the initrd may end at (inclusive). */
  readonly initrdAddrMax: number;
  /** Physical alignment the kernel needs. */
  readonly kernelAlignment: number;
  /** Whether the kernel can run from any aligned address. */
  readonly relocatable: boolean;
  /** xloadflags. */
  readonly xloadflags: number;
  /** Longest command line, without its NUL. */
  readonly cmdlineSize: number;
  /** Preferred load address. */
  readonly prefAddress: number;
  /** Bytes the kernel needs from its load address while it decompresses and starts. */
  readonly initSize: number;
  /** Offset in the file where the protected-mode kernel starts. */
  readonly kernelOffset: number;
  /** End of the setup header in the file (0x202 + the jump's displacement). */
  readonly headerEnd: number;
}

/** True if `bytes` has a Linux boot-protocol header. */
export function isBzImage(bytes: Uint8Array): boolean {
  if (bytes.length < 0x264) return false;
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return v.getUint32(SETUP.header, true) === SETUP_HEADER_MAGIC;
}

/** Parses and checks the setup header of bzImage `bytes` (pure). */
export function parseSetupHeader(bytes: Uint8Array, what: string): SetupHeader {
  if (!isBzImage(bytes)) throw new BootError(what, "not a Linux bzImage (no HdrS magic at 0x202)");
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (v.getUint16(SETUP.boot_flag, true) !== 0xaa55) {
    throw new BootError(what, "boot_flag at 0x1fe is not 0xAA55");
  }
  const version = v.getUint16(SETUP.version, true);
  if (version < MIN_BOOT_PROTOCOL) {
    throw new BootError(
      what,
      `boot protocol ${version >> 8}.${(version & 0xff).toString().padStart(2, "0")} is older than 2.10; ` +
        "vmd boots kernels from Linux 3.x on",
    );
  }
  const setupSects = bytes[SETUP.setup_sects] || 4;
  const kernelOffset = (setupSects + 1) * 512;
  if (kernelOffset >= bytes.length) {
    throw new BootError(what, "truncated bzImage: no protected-mode kernel after the setup code");
  }
  const loadflags = bytes[SETUP.loadflags];
  if ((loadflags & LOADFLAGS.LOADED_HIGH) === 0) {
    throw new BootError(what, "zImage (not loaded high) is not supported");
  }
  const xloadflags = v.getUint16(SETUP.xloadflags, true);
  if ((xloadflags & XLF.KERNEL_64) === 0) {
    throw new BootError(what, "kernel has no 64-bit entry point (XLF_KERNEL_64); vmd boots 64-bit kernels");
  }
  const kernelAlignment = v.getUint32(SETUP.kernel_alignment, true);
  if (kernelAlignment === 0 || (kernelAlignment & (kernelAlignment - 1)) !== 0) {
    throw new BootError(what, `kernel_alignment 0x${kernelAlignment.toString(16)} is not a power of two`);
  }
  return {
    setupSects,
    version,
    loadflags,
    initrdAddrMax: v.getUint32(SETUP.initrd_addr_max, true),
    kernelAlignment,
    relocatable: bytes[SETUP.relocatable_kernel] !== 0,
    xloadflags,
    cmdlineSize: v.getUint32(SETUP.cmdline_size, true),
    prefAddress: Number(v.getBigUint64(SETUP.pref_address, true)),
    initSize: v.getUint32(SETUP.init_size, true),
    kernelOffset,
    headerEnd: Math.min(SETUP.header + bytes[SETUP.jump + 1], 0x1000),
  };
}

/** Loads bzImage `bytes` into `mem` at 1 MiB, writes the zero page, and returns the 64-bit entry. */
export function loadBzImage(mem: GuestMemory, bytes: Uint8Array, o: LoadOptions): BootPlan {
  const h = parseSetupHeader(bytes, o.kernelName);
  const kernel = bytes.subarray(h.kernelOffset);
  const loadAddress = HIGH_MEMORY;
  // The kernel decompresses itself at its preferred (aligned) address and needs init_size bytes from there.
  const runStart = h.relocatable ? Math.max(loadAddress, h.prefAddress) : h.prefAddress;
  const runEnd = Math.max(runStart + h.initSize, loadAddress + kernel.length);
  const ramEnd = lowRamEnd(mem.regions);
  if (runEnd > ramEnd) {
    throw new BootError(
      o.kernelName,
      `kernel needs guest RAM up to 0x${runEnd.toString(16)} (${
        Math.ceil(runEnd / 2 ** 20)
      } MiB: load address, ` +
        `init_size 0x${h.initSize.toString(16)}); the VM has ${Math.floor(ramEnd / 2 ** 20)} MiB below 4 GiB`,
    );
  }
  mem.write(loadAddress, kernel);

  const cmdline = new TextEncoder().encode(o.cmdline);
  const limit = Math.min(h.cmdlineSize, CMDLINE_MAX - 1);
  if (cmdline.length > limit) {
    throw new BootError(
      "cmdline",
      `${cmdline.length} bytes is longer than this kernel's cmdline_size (${limit})`,
    );
  }
  mem.write(CMDLINE_ADDR, cmdline);
  mem.writeU8(CMDLINE_ADDR + cmdline.length, 0);

  // The zero page: the file's setup header at its own offsets, then what the loader fills in.
  const zp = ZERO_PAGE_ADDR;
  mem.fill(zp, 4096);
  mem.write(zp + SETUP.setup_sects, bytes.subarray(SETUP.setup_sects, h.headerEnd));
  mem.writeU16(zp + SETUP.vid_mode, 0xffff); // "normal" video mode
  mem.writeU8(zp + SETUP.type_of_loader, 0xff); // undefined boot loader
  mem.writeU8(zp + SETUP.loadflags, h.loadflags | LOADFLAGS.CAN_USE_HEAP);
  mem.writeU16(zp + SETUP.heap_end_ptr, 0xfe00);
  mem.writeU32(zp + SETUP.cmd_line_ptr, CMDLINE_ADDR);
  mem.writeU32(zp + SETUP.code32_start, loadAddress);
  // a boot_params field (not the setup header's): Linux reads it instead of scanning for the RSDP
  if (o.rsdp !== undefined) mem.writeU64(zp + ZERO_PAGE.acpi_rsdp_addr, BigInt(o.rsdp));
  if (o.initrd !== undefined) {
    const at = placeInitrd(mem, o.initrd, runEnd, h.initrdAddrMax, o.initrdName);
    mem.writeU32(zp + SETUP.ramdisk_image, at);
    mem.writeU32(zp + SETUP.ramdisk_size, o.initrd.length);
  }
  const map = e820Map(mem.regions);
  if (map.length > ZERO_PAGE.e820_max) throw new BootError(o.kernelName, "too many memory-map entries");
  mem.writeU8(zp + ZERO_PAGE.e820_entries, map.length);
  map.forEach((e, i) => {
    const at = zp + ZERO_PAGE.e820_table + 20 * i;
    mem.writeU64(at, BigInt(e.addr));
    mem.writeU64(at + 8, BigInt(e.size));
    mem.writeU32(at + 16, e.type);
  });
  return { kind: "bzimage", mode: "long64", entry: loadAddress + 0x200, bootInfo: zp };
}
