/**
 * Exit-loop benchmark: a real-mode guest doing 1,000,000 port writes (one exit each), run by vmd (vCPU
 * worker, full bus dispatch to the UART model) and by a C program doing the same KVM_RUN loop, in the same
 * run. Prints exits/s for both and the ratio (target: vmd ≥ 0.95× the C loop).
 *
 * Usage: deno task bench [rounds]
 *
 * @module
 */
import { buildFlatGuest, cacheDir } from "../examples/guests/build.ts";
import { loadFlatGuest } from "../src/vm/flat_guest.ts";
import { Vm } from "../src/vm/vm.ts";

const rounds = Number(Deno.args[0] ?? 3);
const guest = await buildFlatGuest("exits_bench");
const dir = cacheDir();
const guestPath = `${dir}/exits_bench.bin`;
await Deno.writeFile(guestPath, guest.image);
const cBin = `${dir}/exits_loop`;
const cc = await new Deno.Command("gcc", {
  args: ["-O2", "-o", cBin, new URL("./exits_loop.c", import.meta.url).pathname],
}).output();
if (!cc.success) throw new Error(`gcc failed: ${new TextDecoder().decode(cc.stderr)}`);

async function runC(): Promise<{ exits: number; seconds: number }> {
  const out = await new Deno.Command(cBin, { args: [guestPath], stdout: "piped" }).output();
  if (!out.success) throw new Error("C loop failed");
  const [exits, seconds] = new TextDecoder().decode(out.stdout).trim().split(" ").map(Number);
  return { exits, seconds };
}

async function runVmd(): Promise<{ exits: number; seconds: number }> {
  const vm = Vm.create({ memory: 16 << 20 });
  try {
    loadFlatGuest(vm, guest);
    await vm.spawn();
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

const rate = (r: { exits: number; seconds: number }) => r.exits / r.seconds;
const c: number[] = [];
const v: number[] = [];
for (let i = 0; i < rounds; i++) {
  // alternate the order so neither side always runs on a warmer machine
  const first = i % 2 === 0 ? runC : runVmd;
  const second = i % 2 === 0 ? runVmd : runC;
  const a = await first();
  const b = await second();
  const [cr, vr] = i % 2 === 0 ? [a, b] : [b, a];
  c.push(rate(cr));
  v.push(rate(vr));
  console.log(
    `round ${i + 1}: C ${cr.exits} exits in ${cr.seconds.toFixed(2)} s = ${rate(cr).toFixed(0)}/s; ` +
      `vmd ${vr.exits} exits in ${vr.seconds.toFixed(2)} s = ${rate(vr).toFixed(0)}/s`,
  );
}
const median = (xs: number[]) => [...xs].sort((p, q) => p - q)[Math.floor(xs.length / 2)];
const cm = median(c);
const vm = median(v);
console.log(`median exits/s: C ${cm.toFixed(0)}, vmd ${vm.toFixed(0)}; vmd/C ratio ${(vm / cm).toFixed(3)}`);
