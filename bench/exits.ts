/**
 * Exit-loop benchmark: a real-mode guest doing 1,000,000 port writes (one exit each), run by vmd (vCPU
 * worker, full bus dispatch to the UART model) and by a C program doing the same KVM_RUN loop, in the same
 * run. Prints exits/s for both and the ratio (target: vmd ≥ 0.95× the C loop).
 *
 * Usage: deno task bench [rounds] [--lockdown]
 *
 * With `--lockdown` (as root) each round also runs the vmd loop in a child process that locks itself down
 * as a VM process does once its vCPU worker is up (per-VM uid, no_new_privs, Landlock, the seccomp filter
 * on every thread); the three runs of a round take turns going first.
 *
 * @module
 */
import { buildFlatGuest, cacheDir } from "../examples/guests/build.ts";
import { loadFlatGuest } from "../src/vm/flat_guest.ts";
import { lockDown, vmIdentity } from "../src/privsep/lockdown.ts";
import { Vm } from "../src/vm/vm.ts";

const locked = Deno.args.includes("--lockdown");
const lockedChild = Deno.args.includes("--locked-child");
const rounds = Number(Deno.args.find((a) => !a.startsWith("--")) ?? 3);
const guest = await buildFlatGuest("exits_bench");
const dir = cacheDir();
const guestPath = `${dir}/exits_bench.bin`;
const cBin = `${dir}/exits_loop`;
if (!lockedChild) {
  await Deno.writeFile(guestPath, guest.image);
  const cc = await new Deno.Command("gcc", {
    args: ["-O2", "-o", cBin, new URL("./exits_loop.c", import.meta.url).pathname],
  }).output();
  if (!cc.success) throw new Error(`gcc failed: ${new TextDecoder().decode(cc.stderr)}`);
}

async function runC(): Promise<{ exits: number; seconds: number }> {
  const out = await new Deno.Command(cBin, { args: [guestPath], stdout: "piped" }).output();
  if (!out.success) throw new Error("C loop failed");
  const [exits, seconds] = new TextDecoder().decode(out.stdout).trim().split(" ").map(Number);
  return { exits, seconds };
}

async function readyVm(): Promise<Vm> {
  const vm = Vm.create({ memory: 16 << 20 });
  try {
    loadFlatGuest(vm, guest);
    await vm.spawn();
    return vm;
  } catch (e) {
    vm.close();
    throw e;
  }
}

async function runVmd(ready?: Vm): Promise<{ exits: number; seconds: number }> {
  const vm = ready ?? await readyVm();
  try {
    const t0 = performance.now();
    vm.run();
    const { exit } = await vm.wait();
    const seconds = (performance.now() - t0) / 1000;
    if (exit.kind !== "exit-port" || exit.status !== 0) {
      throw new Error(`unexpected end: ${JSON.stringify(exit)}`);
    }
    return { exits: vm.vcpus[0].exits, seconds };
  } finally {
    vm.close();
  }
}

/** The vmd loop in a child process that locks down between spawning its vCPU worker and running it. */
async function runLocked(): Promise<{ exits: number; seconds: number }> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-ffi",
      "--allow-read",
      "--allow-write",
      "--allow-env",
      "--allow-run",
      "--allow-sys",
      new URL(import.meta.url).pathname,
      "--locked-child",
    ],
    stdout: "piped",
  }).output();
  if (!out.success) throw new Error("the locked-down child failed");
  return JSON.parse(new TextDecoder().decode(out.stdout));
}

if (lockedChild) {
  const vm = await readyVm();
  lockDown({ identity: vmIdentity(1), log: () => {} });
  console.log(JSON.stringify(await runVmd(vm)));
  Deno.exit(0);
}

const rate = (r: { exits: number; seconds: number }) => r.exits / r.seconds;
const c: number[] = [];
const v: number[] = [];
const l: number[] = [];
for (let i = 0; i < rounds; i++) {
  // rotate the order so no side always runs on a warmer machine
  const runs = [
    { name: "C", run: runC, rates: c },
    { name: "vmd", run: () => runVmd(), rates: v },
    ...(locked ? [{ name: "vmd locked down", run: runLocked, rates: l }] : []),
  ];
  const order = runs.map((_, k) => runs[(k + i) % runs.length]);
  const line: string[] = [];
  for (const r of order) {
    const res = await r.run();
    r.rates.push(rate(res));
    line.push(`${r.name} ${res.exits} exits in ${res.seconds.toFixed(2)} s = ${rate(res).toFixed(0)}/s`);
  }
  console.log(`round ${i + 1}: ${line.join("; ")}`);
}
const median = (xs: number[]) => [...xs].sort((p, q) => p - q)[Math.floor(xs.length / 2)];
const cm = median(c);
const vm = median(v);
console.log(`median exits/s: C ${cm.toFixed(0)}, vmd ${vm.toFixed(0)}; vmd/C ratio ${(vm / cm).toFixed(3)}`);

if (locked) {
  const lm = median(l);
  console.log(
    `median exits/s locked down: vmd ${lm.toFixed(0)}; locked/C ratio ${(lm / cm).toFixed(3)}, ` +
      `locked/unlocked ${(lm / vm).toFixed(3)}`,
  );
}
