/**
 * Density: start N test-guest VMs through the daemon and N QEMU processes in the same run; measure the time
 * until every guest has printed its marker (`echo: ready`) and the memory once all run: PSS (shared pages
 * counted once over all processes: the honest per-VM figure) and RSS (shared code counted in every process),
 * of every child of vmd (its VM processes and any warm pool processes) and of the N QEMU processes; the
 * daemon's own PSS is printed apart. Prints VMs/s, MiB per VM and the ratios (vmd ÷ QEMU).
 *
 * Usage: `deno run -A bench/density.ts [N ...]` (default 10 25 50). Needs /dev/kvm, gcc and
 * qemu-system-x86_64.
 *
 * @module
 */
import { buildKitGuest } from "../examples/guests/kit/build.ts";
import { fetchAllStatus } from "../src/vmctl/client.ts";
import { childrenOf } from "../tests/soak_support.ts";
import { type MemorySum, processMemory, sumMemory } from "./memory.ts";
import { bundleSummary } from "../src/build/bundles.ts";

const MARKER = "echo: ready";
const MEMORY_MIB = 16;
const TIMEOUT_MS = 180_000;
const cli = new URL("../cli.ts", import.meta.url).pathname;

interface Result {
  readonly seconds: number;
  /** The VM processes' memory (vmd: every child of the daemon). */
  readonly memory: MemorySum;
  /** The daemon's own PSS (vmd only). */
  readonly daemonPss?: number;
}

async function readUntil(stream: ReadableStream<Uint8Array>, marker: string): Promise<void> {
  const dec = new TextDecoder();
  let text = "";
  for await (const chunk of stream) {
    text += dec.decode(chunk, { stream: true });
    if (text.includes(marker)) return;
  }
  throw new Error(`stream ended before ${JSON.stringify(marker)}`);
}

async function ttyMarker(tty: string): Promise<void> {
  const f = await Deno.open(tty, { read: true });
  try {
    await readUntil(f.readable, MARKER);
  } catch { /* readable closes the file */ }
}

async function runVmd(n: number, kernel: string): Promise<Result> {
  const dir = await Deno.makeTempDir({ prefix: "vmd-density-" });
  const conf = Array.from(
    { length: n },
    (_, i) => `vm "d${i}" {\n  boot "${kernel}"\n  memory ${MEMORY_MIB}M\n}\n`,
  );
  await Deno.writeTextFile(`${dir}/vm.conf`, conf.join(""));
  const socket = `${dir}/vmd.sock`;
  const t0 = performance.now();
  const vmd = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", cli, "-f", `${dir}/vm.conf`],
    env: { VMD_SOCKET: socket },
    stdout: "null",
    stderr: "null",
  }).spawn();
  try {
    const seen = new Set<string>();
    const waits: Promise<void>[] = [];
    const end = Date.now() + TIMEOUT_MS;
    while (seen.size < n) {
      if (Date.now() > end) throw new Error("vmd: timed out");
      try {
        const r = await fetchAllStatus(socket);
        if (Array.isArray(r)) {
          for (const vm of r) {
            if (vm.tty !== null && !seen.has(vm.name)) {
              seen.add(vm.name);
              waits.push(ttyMarker(vm.tty));
            }
          }
        }
      } catch { /* not listening yet */ }
      await new Promise((r) => setTimeout(r, 20));
    }
    await Promise.all(waits);
    const seconds = (performance.now() - t0) / 1000;
    await new Promise((r) => setTimeout(r, 500)); // the pool refills
    return { seconds, memory: sumMemory(childrenOf(vmd.pid)), daemonPss: processMemory(vmd.pid).pss };
  } finally {
    vmd.kill("SIGTERM");
    await vmd.status;
    await Deno.remove(dir, { recursive: true });
  }
}

async function runQemu(n: number, kernel: string): Promise<Result> {
  const t0 = performance.now();
  const procs = Array.from({ length: n }, () =>
    new Deno.Command("qemu-system-x86_64", {
      args: [
        "-accel",
        "kvm",
        "-machine",
        "microvm",
        "-nodefaults",
        "-nographic",
        "-display",
        "none",
        "-serial",
        "stdio",
        "-m",
        `${MEMORY_MIB}M`,
        "-kernel",
        kernel,
      ],
      stdin: "null",
      stdout: "piped",
      stderr: "null",
    }).spawn());
  try {
    await Promise.all(procs.map((p) => readUntil(p.stdout, MARKER)));
    const seconds = (performance.now() - t0) / 1000;
    await new Promise((r) => setTimeout(r, 500)); // the same settling time as vmd's
    return { seconds, memory: sumMemory(procs.map((p) => p.pid)) };
  } finally {
    for (const p of procs) {
      try {
        p.kill("SIGKILL");
      } catch { /* gone */ }
      await p.status;
    }
  }
}

if (import.meta.main) {
  const counts = Deno.args.length > 0 ? Deno.args.map(Number) : [10, 25, 50];
  const kernel = (await buildKitGuest("echo")).path;
  const mib = (bytes: number, n: number) => (bytes / n / 2 ** 20).toFixed(1).padStart(8);
  const ratio = (a: number, b: number) => (a / b).toFixed(2).padStart(6);
  console.log(`vmd runs ${bundleSummary()}`); // the figures depend on it (docs/vmd.md, "Bundles")
  console.log(
    "    N  VMs/s: vmd   qemu  ratio   PSS MiB/VM: vmd   qemu  ratio   RSS MiB/VM: vmd   qemu  ratio" +
      "   vmd daemon PSS MiB",
  );
  for (const n of counts) {
    const v = await runVmd(n, kernel);
    const q = await runQemu(n, kernel);
    const vRate = n / v.seconds;
    const qRate = n / q.seconds;
    console.log(
      `${String(n).padStart(5)} ${vRate.toFixed(1).padStart(11)} ${qRate.toFixed(1).padStart(6)} ${
        ratio(vRate, qRate)
      } ${mib(v.memory.pss, n).padStart(17)} ${mib(q.memory.pss, n)} ${ratio(v.memory.pss, q.memory.pss)} ${
        mib(v.memory.rss, n).padStart(17)
      } ${mib(q.memory.rss, n)} ${ratio(v.memory.rss, q.memory.rss)} ${
        mib(v.daemonPss ?? 0, 1).padStart(20)
      }`,
    );
  }
}
