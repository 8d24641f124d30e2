/**
 * Start latency on a running daemon, next to QEMU's cold start, interleaved in one run: from spawning the
 * real `vmctl start -c <vm>` (a Deno process, like a user's) to the echo guest's marker on its stdout; from
 * sending the start request over the socket (no client process) to the marker on the VM's console; and from
 * spawning `qemu-system-x86_64 -M microvm` to the same guest's marker on its serial console. The daemon runs
 * with the pool size given (default: vm.conf's default), started once; between samples the VM is stopped.
 *
 * Usage: `deno run -A bench/start.ts [runs] [pool size]` (default 10 runs). Needs /dev/kvm, gcc, QEMU.
 *
 * @module
 */
import { buildKitGuest } from "../examples/guests/kit/build.ts";
import { fetchAllStatus, sendRequest } from "../src/vmctl/client.ts";
import { NO_START_OPTIONS } from "../src/vmd/protocol.ts";
import { QEMU, qemuArgs } from "../tests/qemu_support.ts";
import { bundleSummary } from "../src/build/bundles.ts";

const runs = Number(Deno.args[0] ?? 10);
const poolSize = Deno.args[1];
const MARKER = "echo: ready";
const cli = new URL("../cli.ts", import.meta.url).pathname;
const guest = (await buildKitGuest("echo")).path;

/** Reads `stream` until `marker` has appeared; resolves to the time it did (performance.now()). */
async function markerAt(stream: ReadableStream<Uint8Array>, marker: string): Promise<number> {
  const dec = new TextDecoder();
  let text = "";
  for await (const chunk of stream) {
    text += dec.decode(chunk, { stream: true });
    if (text.includes(marker)) return performance.now();
  }
  throw new Error(`stream ended before ${JSON.stringify(marker)}: ${JSON.stringify(text.slice(-300))}`);
}

const dir = await Deno.makeTempDir({ prefix: "vmd-start-" });
const socket = `${dir}/vmd.sock`;
const pool = poolSize === undefined ? "" : `pool size ${poolSize}\n`;
await Deno.writeTextFile(
  `${dir}/vm.conf`,
  `${pool}vm "s" {\n  disable\n  boot "${guest}"\n  memory 16M\n}\n`,
);
const vmd = new Deno.Command(Deno.execPath(), {
  args: ["run", "-A", cli, "-d", "-f", `${dir}/vm.conf`],
  env: { VMD_SOCKET: socket },
  stdin: "null",
  stdout: "null",
  stderr: "null",
}).spawn();

async function waitState(want: "stopped" | "running"): Promise<void> {
  for (let i = 0; i < 1000; i++) {
    try {
      const r = await fetchAllStatus(socket);
      if (Array.isArray(r) && r.find((v) => v.name === "s")?.state === want) return;
    } catch { /* not listening yet */ }
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`vm s never ${want}`);
}

async function stopVm(): Promise<void> {
  await sendRequest({ v: 1, type: "stop", target: "s", force: true, wait: true }, socket);
  await waitState("stopped");
}

/**
 * Spawns `command` with `args`; resolves to the ms from the spawn to {@link MARKER} on its stdout, then kills
 * it. A piped stdin stays open meanwhile (`vmctl start -c` would detach at its end).
 */
async function spawnToMarker(
  command: string,
  args: string[],
  o: { env?: Record<string, string>; stdin: "piped" | "null" },
): Promise<number> {
  const t0 = performance.now();
  const child = new Deno.Command(command, {
    args,
    env: o.env,
    stdin: o.stdin,
    stdout: "piped",
    stderr: "null",
  }).spawn();
  try {
    return await markerAt(child.stdout, MARKER) - t0;
  } finally {
    child.kill("SIGKILL");
    await child.status;
    if (o.stdin === "piped") await child.stdin.close().catch(() => {});
  }
}

/** `vmctl start -c s` from spawn to the marker on its stdout. */
async function vmctlStart(): Promise<number> {
  try {
    return await spawnToMarker(Deno.execPath(), ["run", "-A", cli, "vmctl", "start", "-c", "s"], {
      env: { VMD_SOCKET: socket },
      stdin: "piped",
    });
  } finally {
    await stopVm();
  }
}

/** A start request over the socket (no client process), then the marker on the VM's tty. */
async function requestStart(): Promise<number> {
  const t0 = performance.now();
  const reply = await sendRequest({
    v: 1,
    type: "start",
    target: "s",
    options: NO_START_OPTIONS,
  }, socket);
  const tty = (await fetchAllStatus(socket) as { name: string; tty: string | null }[])
    .find((v) => v.name === "s")?.tty;
  if (tty === undefined || tty === null) throw new Error(`no tty after start: ${JSON.stringify(reply)}`);
  const f = await Deno.open(tty, { read: true });
  try {
    return await markerAt(f.readable, MARKER) - t0;
  } finally {
    await stopVm();
  }
}

/** QEMU microvm from spawn to the marker. */
async function qemuCold(): Promise<number> {
  return await spawnToMarker(QEMU, await qemuArgs(guest, { machine: "microvm", memory: 16 * 2 ** 20 }), {
    stdin: "null",
  });
}

const cases: [string, () => Promise<number>][] = [
  ["vmctl start -c", vmctlStart],
  ["start request", requestStart],
  ["qemu microvm (cold)", qemuCold],
];
try {
  await waitState("stopped");
  await new Promise((r) => setTimeout(r, 1000)); // let the daemon's pool fill
  const times = new Map<string, number[]>(cases.map(([n]) => [n, []]));
  for (let i = 0; i < runs; i++) {
    for (const [name, f] of cases) {
      times.get(name)!.push(await f());
      await new Promise((r) => setTimeout(r, 300)); // a replacement pool process starts in the background
    }
  }
  const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  console.log(
    `vmd runs ${bundleSummary()}; ${runs} runs each, pool size ${
      poolSize ?? "default"
    }; ms from spawn/request to the marker`,
  );
  for (const [name] of cases) {
    const xs = times.get(name)!;
    console.log(
      `${name.padEnd(22)} min ${Math.min(...xs).toFixed(1).padStart(6)}  median ${
        med(xs).toFixed(1).padStart(6)
      }  max ${Math.max(...xs).toFixed(1).padStart(6)}`,
    );
  }
  const q = med(times.get("qemu microvm (cold)")!);
  for (const name of ["vmctl start -c", "start request"]) {
    console.log(`${name} / qemu microvm cold: ${(med(times.get(name)!) / q).toFixed(2)}x`);
  }
} finally {
  vmd.kill("SIGTERM");
  await vmd.status;
  await Deno.remove(dir, { recursive: true });
}
