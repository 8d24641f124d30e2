import assert from "node:assert/strict";
import { buildKitGuest } from "../examples/guests/kit/build.ts";
import { BootError } from "../src/boot/boot_error.ts";
import { parseSetupHeader, SETUP, ZERO_PAGE } from "../src/boot/bzimage.ts";
import { parseElf, pvhEntry } from "../src/boot/elf.ts";
import { CMDLINE_ADDR, ZERO_PAGE_ADDR } from "../src/boot/layout.ts";
import { loadKernel, type LoadOptions } from "../src/boot/loader.ts";
import { buildMpTable } from "../src/boot/mptable.ts";
import { GuestMemory } from "../src/memory/guest_memory.ts";
import { ramLayout } from "../src/vm/vm.ts";

function memory(bytes: number): GuestMemory {
  return new GuestMemory({ sab: new SharedArrayBuffer(bytes), offset: 0, regions: ramLayout(bytes) });
}

const opts = (over: Partial<LoadOptions> = {}): LoadOptions => ({
  kernelName: "kernel.img",
  cmdline: "console=ttyS0",
  initrdName: "initrd.img",
  ...over,
});

function bootError(f: () => unknown, pattern: RegExp): void {
  assert.throws(f, (e) => {
    assert.ok(e instanceof BootError, `expected BootError, got ${e}`);
    assert.match(e.message, pattern);
    return true;
  });
}

/** A synthetic bzImage: setup header fields as a real one has them, a small "kernel" after the setup code. */
function fakeBzImage(
  over: { version?: number; cmdlineSize?: number; initSize?: number; xloadflags?: number } = {},
) {
  const setupSects = 4;
  const img = new Uint8Array((setupSects + 1) * 512 + 4096);
  const v = new DataView(img.buffer);
  img[SETUP.setup_sects] = setupSects;
  v.setUint16(SETUP.boot_flag, 0xaa55, true);
  img[SETUP.jump] = 0xeb;
  img[SETUP.jump + 1] = 0x6a; // header ends at 0x26c
  v.setUint32(SETUP.header, 0x53726448, true);
  v.setUint16(SETUP.version, over.version ?? 0x020f, true);
  img[SETUP.loadflags] = 0x01;
  v.setUint32(SETUP.initrd_addr_max, 0x7fffffff, true);
  v.setUint32(SETUP.kernel_alignment, 0x200000, true);
  img[SETUP.relocatable_kernel] = 1;
  v.setUint16(SETUP.xloadflags, over.xloadflags ?? 0x1, true);
  v.setUint32(SETUP.cmdline_size, over.cmdlineSize ?? 2048, true);
  v.setBigUint64(SETUP.pref_address, 0x1000000n, true);
  v.setUint32(SETUP.init_size, over.initSize ?? 0x800000, true);
  img.fill(0x90, (setupSects + 1) * 512);
  return img;
}

Deno.test("bzImage: the zero page carries the header, loader fields, cmdline, initrd and e820 map", () => {
  const mem = memory(64 << 20);
  const initrd = new Uint8Array(8192).fill(7);
  const plan = loadKernel(mem, fakeBzImage(), opts({ cmdline: "console=ttyS0 quiet", initrd }));
  assert.deepEqual(plan, { kind: "bzimage", mode: "long64", entry: 0x100200, bootInfo: ZERO_PAGE_ADDR });
  const zp = ZERO_PAGE_ADDR;
  assert.equal(mem.readU32(zp + SETUP.header), 0x53726448);
  assert.equal(mem.readU16(zp + SETUP.version), 0x020f);
  assert.equal(mem.readU8(zp + SETUP.type_of_loader), 0xff);
  assert.equal(mem.readU8(zp + SETUP.loadflags), 0x81); // LOADED_HIGH | CAN_USE_HEAP
  assert.equal(mem.readU32(zp + SETUP.cmd_line_ptr), CMDLINE_ADDR);
  assert.equal(new TextDecoder().decode(mem.read(CMDLINE_ADDR, 20)), "console=ttyS0 quiet\0");
  const rd = mem.readU32(zp + SETUP.ramdisk_image);
  assert.equal(mem.readU32(zp + SETUP.ramdisk_size), 8192);
  assert.equal(rd % 4096, 0);
  assert.ok(rd >= 0x1000000 + 0x800000, "initrd lies above the kernel's init_size");
  assert.ok(rd + 8192 <= 64 << 20);
  assert.deepEqual([...mem.read(rd, 4)], [7, 7, 7, 7]);
  assert.equal(mem.readU8(zp + ZERO_PAGE.e820_entries), 3);
  const e820 = [0, 1, 2].map((i) => {
    const at = zp + ZERO_PAGE.e820_table + 20 * i;
    return [Number(mem.readU64(at)), Number(mem.readU64(at + 8)), mem.readU32(at + 16)];
  });
  assert.deepEqual(e820, [[0, 0x9fc00, 1], [0x9fc00, 0x60400, 2], [0x100000, (64 << 20) - 0x100000, 1]]);
  assert.equal(mem.readU8(0x100000), 0x90, "protected-mode kernel loaded at 1 MiB");
  assert.equal(mem.readU64(zp + ZERO_PAGE.acpi_rsdp_addr), 0n, "no ACPI tables: no RSDP address");
});

Deno.test("the RSDP's address reaches the kernel: zero page acpi_rsdp_addr (bzImage), rsdp_paddr (PVH)", async () => {
  const mem = memory(64 << 20);
  loadKernel(mem, fakeBzImage(), opts({ rsdp: 0xe0000 }));
  assert.equal(mem.readU64(ZERO_PAGE_ADDR + ZERO_PAGE.acpi_rsdp_addr), 0xe0000n);
  const pvh = memory(64 << 20);
  const guest = await buildKitGuest("hello");
  const plan = loadKernel(pvh, guest.bytes, opts({ rsdp: 0xe0000 }));
  assert.equal(pvh.readU64(plan.bootInfo + 32), 0xe0000n);
});

Deno.test("bzImage: refused clearly when too old, 32-bit only, too big for RAM, or the cmdline is too long", () => {
  bootError(
    () => loadKernel(memory(64 << 20), fakeBzImage({ version: 0x0206 }), opts()),
    /boot protocol 2\.06 is older than 2\.10/,
  );
  bootError(
    () => loadKernel(memory(64 << 20), fakeBzImage({ xloadflags: 0 }), opts()),
    /no 64-bit entry point/,
  );
  bootError(
    () => loadKernel(memory(16 << 20), fakeBzImage(), opts()),
    /^kernel\.img: kernel needs guest RAM up to 0x1800000 \(24 MiB.*the VM has 16 MiB/,
  );
  bootError(
    () =>
      loadKernel(memory(64 << 20), fakeBzImage({ cmdlineSize: 10 }), opts({ cmdline: "console=ttyS0 x" })),
    /^cmdline: 15 bytes is longer than this kernel's cmdline_size \(10\)$/,
  );
  bootError(
    () => loadKernel(memory(32 << 20), fakeBzImage(), opts({ initrd: new Uint8Array(16 << 20) })),
    /^initrd\.img: initrd of 16777216 bytes does not fit in guest RAM/,
  );
});

Deno.test("ELF: truncated files, files with no PVH note and files that are neither are refused clearly", async () => {
  const elf = await Deno.readFile((await buildKitGuest("hello")).path);
  const parsed = parseElf(elf, "hello.elf");
  assert.equal(parsed.bits, 32);
  assert.equal(pvhEntry(parsed), parsed.entry);
  bootError(() => loadKernel(memory(64 << 20), elf.subarray(0, 40), opts()), /truncated ELF header/);
  bootError(() => loadKernel(memory(64 << 20), elf.subarray(0, 200), opts()), /truncated ELF/);
  // the same ELF with its note renamed: no PVH entry
  const noNote = elf.slice();
  const at = new TextDecoder("latin1").decode(noNote).indexOf("Xen\0");
  assert.ok(at > 0);
  noNote[at] = "Y".charCodeAt(0);
  bootError(() => loadKernel(memory(64 << 20), noNote, opts()), /no PVH entry note \(Xen, type 18\)/);
  bootError(
    () => loadKernel(memory(64 << 20), new Uint8Array(4096).fill(0x41), opts()),
    /neither an ELF kernel with a PVH note nor a Linux bzImage/,
  );
  bootError(() => loadKernel(memory(64 << 20), new Uint8Array(10), opts()), /too small to be a kernel/);
  // a PVH module larger than RAM
  bootError(
    () => loadKernel(memory(8 << 20), elf, opts({ initrd: new Uint8Array(16 << 20) })),
    /initrd of 16777216 bytes does not fit in guest RAM/,
  );
});

Deno.test("MP table: floating pointer and configuration table with valid checksums, CPUs, bus, IOAPIC, IRQs", () => {
  const t = buildMpTable(2, 0xf0000);
  const sum = (b: Uint8Array) => b.reduce((s, x) => (s + x) & 0xff, 0);
  assert.equal(new TextDecoder().decode(t.subarray(0, 4)), "_MP_");
  assert.equal(sum(t.subarray(0, 16)), 0);
  const v = new DataView(t.buffer);
  assert.equal(v.getUint32(4, true), 0xf0010);
  assert.equal(new TextDecoder().decode(t.subarray(16, 20)), "PCMP");
  const len = v.getUint16(20, true);
  assert.equal(len, t.length - 16);
  assert.equal(sum(t.subarray(16, 16 + len)), 0);
  // 2 processors + bus + IOAPIC + 16 ISA IRQs + 2 local interrupts
  assert.equal(v.getUint16(16 + 34, true), 22);
  assert.equal(t[60], 0); // first entry: processor
  assert.equal(t[63], 0x03); // enabled, BSP
  assert.equal(t[80 + 3], 0x01); // second processor: enabled, not BSP
});

Deno.test("the setup header of Debian's real bzImage (lz4 cloud kernel) parses and loads", async () => {
  const { prepareGuests } = await import("../scripts/prepare_guests.ts");
  const g = await prepareGuests({ log: () => {} });
  const bz = await Deno.readFile(g.bzImage);
  const h = parseSetupHeader(bz, g.bzImage);
  assert.ok(h.version >= 0x020c, `boot protocol 0x${h.version.toString(16)}`);
  assert.ok(h.relocatable);
  assert.equal(h.xloadflags & 1, 1, "64-bit entry");
  assert.equal(h.kernelAlignment, 0x200000);
  assert.equal(h.prefAddress, 0x1000000);
  assert.ok(h.initSize > 0x1000000 && h.initSize < 0x8000000);
  assert.equal(h.cmdlineSize, 2047);
  const mem = memory(256 << 20);
  const initrd = await Deno.readFile(g.initrd);
  const plan = loadKernel(mem, bz, opts({ initrd }));
  assert.equal(plan.entry, 0x100200);
  assert.deepEqual([...mem.read(0x100000, 16)], [...bz.subarray(h.kernelOffset, h.kernelOffset + 16)]);
  assert.equal(mem.readU32(ZERO_PAGE_ADDR + SETUP.ramdisk_size), initrd.length);
});
