/**
 * Exit-loop benchmark: a real-mode guest doing 1,000,000 port writes (one exit each), run by vmd (vCPU
 * worker, full bus dispatch to the UART model) and by a C program doing the same KVM_RUN loop, in the same
 * run. Prints exits/s for both and the ratio (target: vmd ≥ 0.95× the C loop).
 *
 * Usage: deno task bench [rounds] [--lockdown]
 *
 * With `--lockdown` (as root), after the rounds above the same number of VMs are created with their vCPU
 * workers up, the process locks itself down as a VM process does (per-VM uid, no_new_privs, Landlock,
 * the seccomp filter on every thread), and the vmd loop runs again under the filter: its median is compared
 * with the C loop's from the rounds before.
 *
 * @module
 */
import { buildFlatGuest, cacheDir } from "../examples/guests/build.ts";
import { loadFlatGuest } from "../src/vm/flat_guest.ts";
import { lockDown, vmIdentity } from "../src/privsep/lockdown.ts";
import { Vm } from "../src/vm/vm.ts";

const locked = Deno.args.includes("--lockdown");
const rounds = Number(Deno.args.find((a) => !a.startsWith("--")) ?? 3);
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

const rate = (r: { exits: number; seconds: number }) => r.exits / r.seconds;
const c: number[] = [];
const v: number[] = [];
for (let i = 0; i < rounds; i++) {
  // alternate the order so neither side always runs on a warmer machine
  const first = i % 2 === 0 ? runC : () => runVmd();
  const second = i % 2 === 0 ? () => runVmd() : runC;
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

if (locked) {
  const vms: Vm[] = [];
  for (let i = 0; i < rounds; i++) vms.push(await readyVm());
  const report = lockDown({ identity: vmIdentity(1) });
  console.log(
    `locked down: uid ${report.identity.uid}, seccomp ${report.seccomp?.instructions} instructions, ` +
      `Landlock ${report.landlock.applied ? "on the main thread" : "unavailable"}`,
  );
  const l: number[] = [];
  for (const [i, ready] of vms.entries()) {
    const r = await runVmd(ready);
    l.push(rate(r));
    console.log(
      `locked round ${i + 1}: vmd ${r.exits} exits in ${r.seconds.toFixed(2)} s = ${rate(r).toFixed(0)}/s`,
    );
  }
  const lm = median(l);
  console.log(
    `median exits/s locked down: vmd ${lm.toFixed(0)}; locked/C ratio ${(lm / cm).toFixed(3)}, ` +
      `locked/unlocked ${(lm / vm).toFixed(3)}`,
  );
}
