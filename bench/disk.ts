/**
 * Disk benchmark: our qcow2 backend against `qemu-img bench` on 1 GiB qcow2 images in the same run.
 * Sequential 64 KiB writes (allocating, into a fresh image), then sequential 4 KiB and 64 KiB reads and
 * in-place writes, and strided ("random": a prime stride wrapping around the image) 4 KiB and 64 KiB ones,
 * all at queue depth 1 through the page cache (`-t writeback`), which is how our backend works.
 * Prints MiB/s for both and the ratio ours/qemu.
 *
 * Usage: deno run -A bench/disk.ts
 *
 * @module
 */
import { createQcow2, openDisk } from "../mod.ts";

const GIB = 1 << 30;
/** Strides for the scattered 4 KiB requests: a prime number of blocks, so offsets wrap all over the image. */
const STRIDE = 4096 * 7919;
const RANDOM_OPS = 40_000;

interface Case {
  name: string;
  block: number;
  count: number;
  step: number;
  write: boolean;
}

const CASES: Case[] = [
  { name: "seq write 64K (allocating)", block: 65536, count: GIB / 65536, step: 65536, write: true },
  { name: "seq read 64K", block: 65536, count: GIB / 65536, step: 65536, write: false },
  { name: "seq write 4K (in place)", block: 4096, count: RANDOM_OPS * 4, step: 4096, write: true },
  { name: "seq read 4K", block: 4096, count: RANDOM_OPS * 4, step: 4096, write: false },
  { name: "rand read 4K", block: 4096, count: RANDOM_OPS, step: STRIDE, write: false },
  { name: "rand write 4K (in place)", block: 4096, count: RANDOM_OPS, step: STRIDE, write: true },
  { name: "rand read 64K", block: 65536, count: RANDOM_OPS / 4, step: 65536 * 7919, write: false },
  { name: "rand write 64K (in place)", block: 65536, count: RANDOM_OPS / 4, step: 65536 * 7919, write: true },
];

async function ours(path: string, c: Case): Promise<number> {
  const disk = await openDisk(path);
  const buf = new Uint8Array(c.block).fill(0x5a);
  const t0 = performance.now();
  let off = 0;
  for (let i = 0; i < c.count; i++) {
    if (c.write) await disk.write(off, buf);
    else await disk.read(off, buf);
    off = (off + c.step) % disk.size;
  }
  await disk.flush();
  const secs = (performance.now() - t0) / 1000;
  await disk.close();
  return (c.block * c.count) / secs / (1 << 20);
}

async function qemu(path: string, c: Case): Promise<number> {
  const args = [
    "bench",
    "-f",
    "qcow2",
    "-t",
    "writeback",
    "-d",
    "1",
    "-c",
    String(c.count),
    "-s",
    String(c.block),
  ];
  args.push("-S", String(c.step), ...(c.write ? ["-w"] : []), path);
  const out = await new Deno.Command("qemu-img", { args, stdout: "piped", stderr: "piped" }).output();
  const text = new TextDecoder().decode(out.stdout);
  const m = /Run completed in ([\d.]+) seconds/.exec(text);
  if (out.code !== 0 || m === null) throw new Error(`qemu-img ${args.join(" ")} failed: ${text}`);
  return (c.block * c.count) / Number(m[1]) / (1 << 20);
}

const dir = await Deno.makeTempDir({ prefix: "vmd-bench-" });
try {
  const mine = `${dir}/ours.qcow2`;
  const theirs = `${dir}/qemu.qcow2`;
  await createQcow2(mine, { size: GIB });
  await createQcow2(theirs, { size: GIB });
  console.log(
    `${"case".padEnd(28)} ${"ours MiB/s".padStart(11)} ${"qemu MiB/s".padStart(11)} ${"ratio".padStart(6)}`,
  );
  for (const c of CASES) {
    const a = await ours(mine, c);
    const b = await qemu(theirs, c);
    console.log(
      `${c.name.padEnd(28)} ${a.toFixed(1).padStart(11)} ${b.toFixed(1).padStart(11)} ${
        (a / b).toFixed(2).padStart(6)
      }`,
    );
  }
} finally {
  await Deno.remove(dir, { recursive: true });
}
