/**
 * virtio-blk benchmark: the `blk_bench` kit guest writes then reads a 64 MiB raw disk in 64 KiB requests
 * (16 per notify) and reads 2048 × 4 KiB requests, under vmd and under QEMU's virtio-blk-pci (KVM, same
 * guest, same kind of image, same run). The guest times each phase with the TSC; the host converts cycles
 * with the TSC rate it measures itself. Prints MiB/s, requests/s and the ratios vmd/QEMU.
 *
 * Usage: deno run -A bench/blk.ts
 *
 * @module
 */
import { buildKitGuest } from "../examples/guests/kit/build.ts";
import { runUnderQemu } from "../tests/qemu_support.ts";
import { runKernel } from "../tests/kvm_support.ts";

const MiB = 1 << 20;
const DISK = 64 * MiB;

/** TSC ticks per second, measured against the wall clock (the guest's TSC runs at the host's rate). */
function tscHz(): number {
  const text = Deno.readTextFileSync("/proc/cpuinfo");
  const m = /cpu MHz\s*:\s*([\d.]+)/.exec(text);
  if (m === null) throw new Error("cannot find the CPU frequency in /proc/cpuinfo");
  return Number(m[1]) * 1e6;
}

interface Phases {
  write64k: number;
  read64k: number;
  read4k: number;
}

function parse(output: string, who: string): Phases {
  const m =
    /bench: write64k (\d+) reqs (\d+) cycles, read64k \d+ reqs (\d+) cycles, read4k 2048 reqs (\d+) cycles, 0 failed/
      .exec(output);
  if (m === null) throw new Error(`${who}: unexpected guest output: ${output}`);
  const hz = tscHz();
  const bytes = Number(m[1]) * 65536;
  return {
    write64k: bytes / MiB / (Number(m[2]) / hz),
    read64k: bytes / MiB / (Number(m[3]) / hz),
    read4k: 2048 / (Number(m[4]) / hz),
  };
}

const guest = await buildKitGuest("blk_bench");
const dir = await Deno.makeTempDir();
try {
  const img = `${dir}/bench.img`;
  await Deno.writeFile(img, new Uint8Array(DISK));
  const vmd = await runKernel(guest.path, { disks: [{ path: img }], memory: 128 * MiB, timeoutMs: 300_000 });
  const ours = parse(vmd.output, "vmd");
  const qemu = await runUnderQemu(guest.path, {
    memory: 128 * MiB,
    timeoutMs: 300_000,
    extraArgs: [
      "-drive",
      `file=${img},if=none,id=d0,format=raw`,
      "-device",
      "virtio-blk-pci,drive=d0,disable-legacy=on",
    ],
  });
  const theirs = parse(qemu.output, "QEMU");
  const row = (name: string, unit: string, a: number, b: number) =>
    console.log(
      `${name.padEnd(22)} vmd ${a.toFixed(1).padStart(9)} ${unit}  qemu ${
        b.toFixed(1).padStart(9)
      } ${unit}  ratio ${(a / b).toFixed(2)}`,
    );
  row("write 64K x16/notify", "MiB/s", ours.write64k, theirs.write64k);
  row("read 64K x16/notify", "MiB/s", ours.read64k, theirs.read64k);
  row("read 4K x16/notify", "req/s", ours.read4k, theirs.read4k);
} finally {
  await Deno.remove(dir, { recursive: true });
}
