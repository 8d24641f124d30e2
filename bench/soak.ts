/**
 * `deno task bench:soak [cycles] [--console-every n]`: a real daemon (in a network namespace made for the
 * run) taken through `cycles` (default 1000) cycles of every path that ends a VM, a control client or a
 * console session (see tests/soak_support.ts), printing the daemon's descriptors by kind, threads, RSS and
 * PSS, children, taps and bridges at the start (after one warm-up cycle), the middle and the end, each
 * after the daemon has settled; then SIGTERM, and what it left behind. A real `vmctl console` (detached with
 * `~.`, and one killed) runs every `--console-every` cycles (default 10: each is two Deno start-ups).
 * Exits 1 when descriptors or children did not return to the start's.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { sh } from "../tests/net_support.ts";
import { describeFootprint, type Footprint, Soak } from "../tests/soak_support.ts";

const { values, positionals } = parseArgs({
  args: Deno.args,
  allowPositionals: true,
  options: { "console-every": { type: "string", default: "10" } },
});
const cycles = Number(positionals[0] ?? 1000);
const consoleEvery = Number(values["console-every"]);
if (!Number.isInteger(cycles) || cycles < 2 || !Number.isInteger(consoleEvery) || consoleEvery < 0) {
  console.error("usage: bench/soak.ts [cycles >= 2] [--console-every n]");
  Deno.exit(2);
}

const ns = `vmdsoak${Deno.pid}`;
await sh("ip", "netns", "add", ns);
let failed = false;
try {
  await sh("ip", "-n", ns, "link", "set", "lo", "up");
  const soak = await Soak.start(ns, consoleEvery);
  try {
    const t0 = performance.now();
    await soak.cycle();
    const base = await soak.baseline();
    console.log(describeFootprint("start", base));
    const rows: [string, Footprint][] = [["start", base]];
    for (let i = 1; i <= cycles; i++) {
      await soak.cycle();
      if (i === Math.floor(cycles / 2) || i === cycles) {
        const f = await soak.settle(base);
        const label = i === cycles ? "end" : "middle";
        console.log(describeFootprint(label, f));
        rows.push([label, f]);
      } else if (i % 50 === 0) {
        console.error(`cycle ${i}/${cycles} (${((performance.now() - t0) / 1000).toFixed(0)} s)`);
      }
    }
    const end = rows[rows.length - 1][1];
    const s = ((performance.now() - t0) / 1000).toFixed(0);
    console.log(
      `${cycles} cycles in ${s} s; PSS ${((end.pssKiB - base.pssKiB) / 1024).toFixed(1)} MiB, ` +
        `RSS ${((end.rssKiB - base.rssKiB) / 1024).toFixed(1)} MiB over the start`,
    );
    failed = JSON.stringify(end.fds) !== JSON.stringify(base.fds) || end.children !== base.children ||
      end.taps !== 0 || end.bridges !== 0;
    const term = await soak.terminate();
    console.log(
      `SIGTERM: exit ${term.code}; VM processes left ${term.orphans}, taps ${term.taps}, bridges ${term.bridges}`,
    );
    failed ||= term.code !== 0 || term.orphans !== 0 || term.taps !== 0 || term.bridges !== 0;
  } finally {
    await soak.d.cleanup();
  }
} finally {
  await sh("ip", "netns", "del", ns).catch(() => {});
}
if (failed) {
  console.error("the daemon did not return to its baseline");
  Deno.exit(1);
}
