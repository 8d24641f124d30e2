/**
 * Linux boot benchmark: Debian's stock cloud kernel (lz4 bzImage) with the project's initramfs, from process
 * start to the initramfs marker (`VMD-INITRAMFS-READY`), under `vmd run` and under QEMU's TCG (software
 * emulation, `-accel tcg`) in the same run, N runs each; prints each time, the medians and their ratio. On a
 * PVM host (docs/pvm.md) this is the figure that says what a stock kernel costs there; on hardware KVM vmd
 * should win by far.
 *
 * Both get the same command line (`console=ttyS0 vmd.shell`); QEMU also gets `no_timer_check`, without which
 * a loaded host makes the kernel's IO-APIC timer check fail under TCG and panic (vmd's guest sees no IO-APIC
 * timer check: it has no ACPI and no MP table it reads). vmd adds its PVM switches itself when it detects PVM.
 *
 * Usage: deno run -A bench/linux_boot.ts [runs] [memory MiB] [limit s]
 *
 * A boot that has not printed the marker after `limit` seconds (default 1800) is stopped and counted as that
 * limit, and the ratio is printed as a lower bound: on PVM a stock kernel takes longer than 30 minutes.
 *
 * @module
 */
import { prepareGuests } from "../scripts/prepare_guests.ts";
import { QEMU } from "../tests/qemu_support.ts";

const runs = Number(Deno.args[0] ?? 1);
const memoryMiB = Number(Deno.args[1] ?? 256);
const MARKER = "VMD-INITRAMFS-READY";
const TIMEOUT_MS = Number(Deno.args[2] ?? 1800) * 1000;
const CMDLINE = "console=ttyS0 vmd.shell";
const root = new URL("..", import.meta.url).pathname;
const g = await prepareGuests();

/**
 * Runs `cmd` and resolves to the milliseconds until `MARKER` appears on its stdout, then kills it; or to
 * undefined when it has not appeared within the limit.
 */
async function timeToMarker(cmd: readonly string[]): Promise<number | undefined> {
  const t0 = performance.now();
  const child = new Deno.Command(cmd[0], {
    args: cmd.slice(1),
    cwd: root,
    stdin: "piped",
    stdout: "piped",
    stderr: "null",
  }).spawn();
  const timer = setTimeout(() => child.kill("SIGKILL"), TIMEOUT_MS);
  let text = "";
  let seen = -1;
  const decoder = new TextDecoder();
  for await (const chunk of child.stdout) {
    text += decoder.decode(chunk, { stream: true });
    if (seen < 0 && text.includes(MARKER)) {
      seen = performance.now() - t0;
      child.kill("SIGTERM");
    }
  }
  clearTimeout(timer);
  await child.status;
  if (seen >= 0) return seen;
  const last = text.trimEnd().split("\n").pop() ?? "";
  console.log(`${cmd[0]}: no ${MARKER} within ${TIMEOUT_MS / 1000} s; last line: ${last.slice(0, 120)}`);
  return undefined;
}

const vmd = [
  Deno.execPath(),
  "run",
  "--allow-all",
  "cli.ts",
  "run",
  "-m",
  `${memoryMiB}M`,
  "-b",
  g.bzImage,
  "--initrd",
  g.initrd,
  "--cmdline",
  CMDLINE,
];
const qemu = [
  QEMU,
  "-accel",
  "tcg",
  "-M",
  "pc",
  "-m",
  String(memoryMiB),
  "-nographic",
  "-nodefaults",
  "-no-reboot",
  "-serial",
  "stdio",
  "-kernel",
  g.bzImage,
  "-initrd",
  g.initrd,
  "-append",
  `${CMDLINE} no_timer_check`,
];

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const times: Record<string, number[]> = { vmd: [], "qemu-tcg": [] };
let capped = false;
for (let i = 0; i < runs; i++) {
  for (const [name, cmd] of [["qemu-tcg", qemu], ["vmd", vmd]] as const) {
    const ms = await timeToMarker(cmd);
    capped ||= ms === undefined;
    times[name].push(ms ?? TIMEOUT_MS);
    const shown = ms === undefined ? `> ${TIMEOUT_MS / 1000}` : (ms / 1000).toFixed(1);
    console.log(`run ${i + 1}: ${name.padEnd(8)} ${shown} s to ${MARKER}`);
  }
}
const v = median(times.vmd);
const q = median(times["qemu-tcg"]);
const at = capped ? ">= " : "";
console.log(
  `median: vmd ${at}${(v / 1000).toFixed(1)} s, QEMU TCG ${(q / 1000).toFixed(1)} s: ` +
    `vmd/TCG ${at}${(v / q).toFixed(1)}`,
);
