/**
 * Initial CPU state for the modes a VMM starts guests in: real mode at a chosen address, and 64-bit long mode
 * with a flat GDT and identity-mapped page tables (the state Linux's 64-bit boot protocol and Firecracker
 * use). The tables are written into guest memory at fixed low addresses.
 *
 * @module
 */
import type { KvmSegment, KvmSregs } from "../../ffi/kvm_structs.ts";
import type { VcpuFd } from "../../ffi/kvm.ts";
import type { GuestMemory } from "../memory/guest_memory.ts";

/** Where the boot GDT lives. */
export const BOOT_GDT_ADDR = 0x500;
/** Where the (empty) boot IDT lives. */
export const BOOT_IDT_ADDR = 0x520;
/** PML4 of the identity map; PDPT and four page directories follow, one page each. */
export const BOOT_PML4_ADDR = 0x9000;
/** How much the boot page tables identity-map (2 MiB pages). */
export const BOOT_IDENTITY_MAP_BYTES = 4 * 2 ** 30;

/**
 * Selectors in the boot GDT. Linux's 64-bit boot protocol asks for __BOOT_CS = 0x10 and __BOOT_DS = 0x18;
 * the 32-bit code segment for PVH entry sits at 0x08.
 */
export const BOOT_SELECTORS = { code32: 0x08, code64: 0x10, data: 0x18, tss: 0x20 } as const;

const CR0_PE = 1n << 0n;
const CR0_ET = 1n << 4n;
const CR0_PG = 1n << 31n;
const CR4_PAE = 1n << 5n;
const EFER_LME = 1n << 8n;
const EFER_LMA = 1n << 10n;
const PTE_PRESENT = 1n;
const PTE_RW = 2n;
const PTE_PS = 0x80n;

/** A GDT descriptor from base, limit (20 bits) and the 12 flag bits (access byte + granularity nibble). */
export function gdtEntry(flags: number, base: number, limit: number): bigint {
  const b = BigInt(base);
  const l = BigInt(limit);
  const f = BigInt(flags);
  return ((b & 0xff000000n) << 32n) | ((b & 0x00ffffffn) << 16n) | (l & 0xffffn) | ((l & 0xf0000n) << 32n) |
    ((f & 0xf0ffn) << 40n);
}

/** The KVM segment a GDT descriptor describes. */
export function segmentFromGdt(entry: bigint, selector: number): KvmSegment {
  const base = ((entry >> 16n) & 0xffffffn) | (((entry >> 56n) & 0xffn) << 24n);
  let limit = Number((entry & 0xffffn) | (((entry >> 48n) & 0xfn) << 16n));
  const g = Number((entry >> 55n) & 1n);
  if (g) limit = limit * 4096 + 4095;
  return {
    base,
    limit: limit >>> 0,
    selector,
    type: Number((entry >> 40n) & 0xfn),
    present: Number((entry >> 47n) & 1n),
    dpl: Number((entry >> 45n) & 3n),
    db: Number((entry >> 54n) & 1n),
    s: Number((entry >> 44n) & 1n),
    l: Number((entry >> 53n) & 1n),
    g,
    avl: Number((entry >> 52n) & 1n),
    unusable: Number(((entry >> 47n) & 1n) ^ 1n),
    padding: 0,
  };
}

/** Real mode: execution starts at `segment:offset` with the stack at `segment:stack`. */
export function enterRealMode(vcpu: VcpuFd, segment: number, offset: number, stack = 0xfffe): void {
  const sregs = vcpu.getSregs();
  const seg = (selector: number): KvmSegment => ({
    ...sregs.cs,
    selector,
    base: BigInt(selector) << 4n,
    limit: 0xffff,
  });
  sregs.cs = { ...seg(segment), type: 0xb };
  for (const r of ["ds", "es", "fs", "gs", "ss"] as const) sregs[r] = { ...seg(segment), type: 0x3 };
  sregs.cr0 &= ~(CR0_PE | CR0_PG);
  vcpu.setSregs(sregs);
  vcpu.setRegs({ rip: BigInt(offset), rsp: BigInt(stack), rflags: 2n });
}

/** The boot GDT: null, 32-bit code, 64-bit code, data, TSS — all flat. */
export const BOOT_GDT: readonly bigint[] = [
  0n,
  gdtEntry(0xc09b, 0, 0xfffff), // 0x08 code32: present, ring 0, execute/read, accessed; D/B=1, G=1
  gdtEntry(0xa09b, 0, 0xfffff), // 0x10 code64: present, ring 0, execute/read, accessed; L=1, G=1
  gdtEntry(0xc093, 0, 0xfffff), // 0x18 data: present, ring 0, read/write, accessed; D/B=1, G=1
  gdtEntry(0x808b, 0, 0xfffff), // 0x20 TSS: present, busy TSS
];

function writeGdt(mem: GuestMemory): void {
  BOOT_GDT.forEach((e, i) => mem.writeU64(BOOT_GDT_ADDR + 8 * i, e));
  mem.writeU64(BOOT_IDT_ADDR, 0n);
}

function flatSregs(sregs: KvmSregs, code: number): void {
  const data = segmentFromGdt(BOOT_GDT[3], BOOT_SELECTORS.data);
  sregs.cs = segmentFromGdt(BOOT_GDT[code / 8], code);
  sregs.ds =
    sregs.es =
    sregs.fs =
    sregs.gs =
    sregs.ss =
      data;
  sregs.tr = segmentFromGdt(BOOT_GDT[4], BOOT_SELECTORS.tss);
  sregs.gdt = { base: BigInt(BOOT_GDT_ADDR), limit: BOOT_GDT.length * 8 - 1 };
  sregs.idt = { base: BigInt(BOOT_IDT_ADDR), limit: 7 };
}

/**
 * 32-bit protected mode with paging off and flat segments, as the PVH boot ABI specifies: execution at
 * `entry`, `%ebx` = `ebx` (the hvm_start_info address).
 */
export function enterProtectedMode32(vcpu: VcpuFd, mem: GuestMemory, entry: number, ebx: number): void {
  writeGdt(mem);
  const sregs: KvmSregs = vcpu.getSregs();
  flatSregs(sregs, BOOT_SELECTORS.code32);
  sregs.cr0 = (sregs.cr0 | CR0_PE | CR0_ET) & ~CR0_PG;
  sregs.cr4 = 0n;
  sregs.efer = 0n;
  vcpu.setSregs(sregs);
  vcpu.setRegs({ rip: BigInt(entry), rbx: BigInt(ebx), rflags: 2n });
}

/** Writes the boot GDT, an empty IDT and the identity-map page tables into guest memory. */
export function writeLongModeTables(mem: GuestMemory): void {
  writeGdt(mem);
  const pml4 = BOOT_PML4_ADDR;
  const pdpt = pml4 + 0x1000;
  const pd = pdpt + 0x1000;
  const dirs = BOOT_IDENTITY_MAP_BYTES / 2 ** 30;
  mem.fill(pml4, 0x1000 * (2 + dirs));
  mem.writeU64(pml4, BigInt(pdpt) | PTE_PRESENT | PTE_RW);
  for (let d = 0; d < dirs; d++) {
    mem.writeU64(pdpt + 8 * d, BigInt(pd + 0x1000 * d) | PTE_PRESENT | PTE_RW);
    for (let i = 0; i < 512; i++) {
      const phys = (BigInt(d) << 30n) + (BigInt(i) << 21n);
      mem.writeU64(pd + 0x1000 * d + 8 * i, phys | PTE_PRESENT | PTE_RW | PTE_PS);
    }
  }
}

/**
 * 64-bit long mode with paging on: flat segments from the boot GDT, identity map of the first 4 GiB,
 * execution at `entry` with the stack at `stack`. `rsi` is passed through (Linux expects the zero page there).
 */
export function enterLongMode(
  vcpu: VcpuFd,
  mem: GuestMemory,
  entry: number,
  stack: number,
  rsi = 0,
): void {
  writeLongModeTables(mem);
  const sregs: KvmSregs = vcpu.getSregs();
  flatSregs(sregs, BOOT_SELECTORS.code64);
  sregs.cr3 = BigInt(BOOT_PML4_ADDR);
  sregs.cr4 |= CR4_PAE;
  sregs.cr0 |= CR0_PE | CR0_PG | CR0_ET;
  sregs.efer |= EFER_LME | EFER_LMA;
  vcpu.setSregs(sregs);
  vcpu.setRegs({ rip: BigInt(entry), rsp: BigInt(stack), rbp: BigInt(stack), rsi: BigInt(rsi), rflags: 2n });
}
