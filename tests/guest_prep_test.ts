/**
 * The pieces of the guest preparation script on synthetic input: the cpio newc writer and reader, the
 * bzImage payload extractor (gzip through node:zlib, xz/lz4/zstd through their tools), the ELF PVH note
 * reader, and the `/init` text.
 */
import assert from "node:assert/strict";
import { gzipSync } from "node:zlib";
import { ensureCommand } from "../scripts/apt.ts";
import { CpioError, readCpio, writeCpio } from "../scripts/cpio_newc.ts";
import {
  BzImageError,
  extractVmlinux,
  payloadFormat,
  readBzImageHeader,
} from "../scripts/bzimage_extract.ts";
import { ElfReadError, readElf } from "../scripts/elf_pvh.ts";
import { INITRAMFS_MARKER, initScript, SHELL_SWITCH } from "../scripts/initramfs.ts";

/** A minimal ELF64 with one PT_NOTE holding the Xen PHYS32_ENTRY note (and some filler to compress). */
function tinyElf64(pvhEntry: number | undefined): Uint8Array {
  const b = new Uint8Array(4096);
  const v = new DataView(b.buffer);
  b.set([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1]);
  v.setUint16(16, 2, true); // ET_EXEC
  v.setUint16(18, 62, true); // EM_X86_64
  v.setBigUint64(24, 0x1000000n, true);
  v.setBigUint64(32, 64n, true); // e_phoff
  v.setUint16(54, 56, true);
  v.setUint16(56, 1, true);
  v.setUint32(64, 4, true); // PT_NOTE
  v.setBigUint64(64 + 8, 0x100n, true);
  v.setBigUint64(64 + 32, 24n, true);
  v.setUint32(0x100, 4, true);
  v.setUint32(0x104, 8, true);
  v.setUint32(0x108, pvhEntry === undefined ? 17 : 18, true);
  b.set(new TextEncoder().encode("Xen\0"), 0x10c);
  v.setBigUint64(0x110, BigInt(pvhEntry ?? 0), true);
  for (let i = 0x200; i < b.length; i++) b[i] = (i * 7) & 0xff;
  return b;
}

/** A bzImage-shaped file: boot sector and setup with the header, then `payload` + its 4-byte size. */
function fakeBzImage(compressed: Uint8Array, size: number, withPayloadFields = true): Uint8Array {
  const setupSects = 3;
  const pm = (setupSects + 1) * 512;
  const junk = 0x40;
  const b = new Uint8Array(pm + junk + compressed.length + 4 + 16);
  const v = new DataView(b.buffer);
  b[0x1f1] = setupSects;
  v.setUint32(0x202, 0x53726448, true);
  v.setUint16(0x206, withPayloadFields ? 0x20f : 0x206, true);
  if (withPayloadFields) {
    v.setUint32(0x248, junk, true);
    v.setUint32(0x24c, compressed.length + 4, true);
  }
  b.set(compressed, pm + junk);
  v.setUint32(pm + junk + compressed.length, size, true);
  return b;
}

async function compressWith(cmd: string, args: string[], data: Uint8Array): Promise<Uint8Array> {
  const child = new Deno.Command(cmd, { args, stdin: "piped", stdout: "piped" }).spawn();
  const out = child.output();
  const w = child.stdin.getWriter();
  await w.write(data);
  await w.close();
  return (await out).stdout;
}

Deno.test("cpio newc: what is written reads back, padded to 4 bytes, with the trailer; bad input is refused", () => {
  const data = new TextEncoder().encode("hello\n");
  const bytes = writeCpio([
    { kind: "dir", path: "bin" },
    { kind: "file", path: "bin/hello", data, mode: 0o755 },
    { kind: "symlink", path: "bin/hi", target: "hello" },
    { kind: "char", path: "dev/console", major: 5, minor: 1 },
  ]);
  assert.equal(bytes.length % 4, 0);
  assert.equal(new TextDecoder().decode(bytes.subarray(0, 6)), "070701");
  const members = readCpio(bytes);
  assert.deepEqual(members.map((m) => [m.path, m.mode.toString(8)]), [
    ["bin", "40755"],
    ["bin/hello", "100755"],
    ["bin/hi", "120777"],
    ["dev/console", "20600"],
  ]);
  assert.deepEqual(members[1].data, data);
  assert.equal(new TextDecoder().decode(members[2].data), "hello");
  assert.deepEqual(members[3].rdev, [5, 1]);
  assert.throws(() => writeCpio([{ kind: "dir", path: "/abs" }]), CpioError);
  assert.throws(() => readCpio(bytes.subarray(0, bytes.length - 120)), CpioError);
});

Deno.test("ELF PVH note reader: finds the entry, reports none, refuses non-ELF and truncated files", () => {
  const elf = readElf(tinyElf64(0x1000850));
  assert.deepEqual(elf, { bits: 64, machine: 62, entry: 0x1000000, pvhEntry: 0x1000850 });
  assert.equal(readElf(tinyElf64(undefined)).pvhEntry, undefined);
  assert.throws(() => readElf(new Uint8Array(64)), ElfReadError);
  assert.throws(() => readElf(tinyElf64(1).subarray(0, 100)), ElfReadError);
});

Deno.test("bzImage extractor: gzip payload found from the header fields, and by scanning without them", async () => {
  const elf = tinyElf64(0x1000850);
  const gz = new Uint8Array(gzipSync(elf));
  for (const withFields of [true, false]) {
    const bz = fakeBzImage(gz, elf.length, withFields);
    const h = readBzImageHeader(bz);
    assert.equal(h.protectedModeOffset, 2048);
    const got = await extractVmlinux(bz);
    assert.equal(got.format, "gzip");
    assert.equal(got.payloadStart, 2048 + 0x40);
    assert.deepEqual(got.elf, elf);
  }
});

for (
  const [format, cmd, args, pkg] of [
    ["xz", "xz", ["-c", "--check=crc32"], "xz-utils"],
    ["lz4", "lz4", ["-l", "-c"], "lz4"],
    ["zstd", "zstd", ["-c", "-q"], "zstd"],
  ] as const
) {
  Deno.test(`bzImage extractor: ${format} payload through the ${cmd} tool`, async () => {
    await ensureCommand(cmd, pkg);
    const elf = tinyElf64(0x1000850);
    const compressed = await compressWith(cmd, [...args], elf);
    assert.equal(payloadFormat(compressed), format);
    const got = await extractVmlinux(fakeBzImage(compressed, elf.length));
    assert.equal(got.format, format);
    assert.deepEqual(got.elf, elf);
  });
}

Deno.test("bzImage extractor: no HdrS, a wrong size and a payload past the end are clear errors", async () => {
  const elf = tinyElf64(1);
  const gz = new Uint8Array(gzipSync(elf));
  assert.throws(() => readBzImageHeader(new Uint8Array(4096)), /HdrS/);
  await assert.rejects(extractVmlinux(fakeBzImage(gz, elf.length + 1)), /says 4097/);
  const bz = fakeBzImage(gz, elf.length);
  await assert.rejects(extractVmlinux(bz.subarray(0, bz.length - 40)), BzImageError);
});

Deno.test("/init loads the modules in order, prints the marker, and offers a shell only on vmd.shell", () => {
  const text = initScript(["virtio", "virtio_pci", "virtio-rng"], ["ext4"]);
  assert.ok(text.startsWith("#!/bin/busybox sh\n"));
  assert.match(text, /for m in virtio virtio_pci virtio-rng; do\n {2}insmod \/lib\/modules\/\$m\.ko/);
  assert.match(text, /# Built into this kernel, so not loaded here: ext4/);
  assert.ok(text.includes(`echo ${INITRAMFS_MARKER}\n`));
  assert.ok(text.includes(`${SHELL_SWITCH} | ${SHELL_SWITCH}=*) shell=1`));
  assert.ok(text.trimEnd().endsWith("reboot -f"));
  for (const fs of ["proc proc /proc", "sysfs sysfs /sys", "devtmpfs devtmpfs /dev"]) {
    assert.ok(text.includes(`mount -t ${fs}\n`), fs);
  }
});
