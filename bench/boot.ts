/**
 * Boot benchmark: the kit's `hello` guest (a PVH ELF), from process start to its marker on the console and to
 * process exit, N runs each, under vmd (`vmd run`) and QEMU with KVM (microvm and pc) in the same run. Prints
 * min/median/max per VMM, the ratios of the medians, peak RSS per VMM process (GNU time's %M), and what
 * Deno's own start-up (an empty script) costs. BIOS boot too: a boot sector on a virtio-blk disk, booted by
 * SeaBIOS (`vmd run -d disk`, no kernel) against QEMU `-M pc` with the same disk, start to its marker line;
 * and the El Torito image from the CD-ROM (`vmd run -r iso -B cdrom`, virtio-scsi) against QEMU's
 * virtio-scsi-pci + scsi-cd.
 *
 * Usage: deno task bench:boot [runs]
 *
 * @module
 */
import { buildKitGuest } from "../examples/guests/kit/build.ts";
import { QEMU, qemuArgs } from "../tests/qemu_support.ts";
import {
  buildBootDisk,
  buildBootIso,
  CDROM_BOOT_PREFIX,
  DISK_BOOT_LINE,
} from "../examples/guests/boot/build.ts";
import { bundleSummary } from "../src/build/bundles.ts";

const runs = Number(Deno.args[0] ?? 10);
const MARKER = "kit hello: ok";
const root = new URL("..", import.meta.url).pathname;
const guest = await buildKitGuest("hello");
const disk = await buildBootDisk();
const iso = await buildBootIso();
/** What the El Torito image prints when SeaBIOS boots it from the first CD drive. */
const CD_LINE = `${CDROM_BOOT_PREFIX}e0 read=CD001`;
const empty = await Deno.makeTempFile({ suffix: ".ts" });
await Deno.writeTextFile(empty, "");

interface Sample {
  marker: number;
  exit: number;
  rssKiB: number;
}

/** Runs `cmd` under /usr/bin/time, timing the marker on stdout and the exit. */
async function sample(cmd: string[], marker: string | undefined): Promise<Sample> {
  const rssFile = await Deno.makeTempFile();
  const t0 = performance.now();
  const child = new Deno.Command("/usr/bin/time", {
    args: ["-f", "%M", "-o", rssFile, ...cmd],
    cwd: root,
    stdout: "piped",
    stderr: "null",
    stdin: "null",
  }).spawn();
  let seen = marker === undefined ? 0 : -1;
  let text = "";
  const decoder = new TextDecoder();
  for await (const chunk of child.stdout) {
    text += decoder.decode(chunk, { stream: true });
    if (seen < 0 && marker !== undefined && text.includes(marker)) seen = performance.now() - t0;
  }
  await child.status;
  const exit = performance.now() - t0;
  const rssKiB = Number((await Deno.readTextFile(rssFile)).trim().split("\n").pop());
  await Deno.remove(rssFile);
  if (seen < 0) throw new Error(`${cmd.join(" ")}: no "${marker}" in its output:\n${text}`);
  return { marker: seen || exit, exit, rssKiB };
}

const deno = Deno.execPath();
const vmdFlags = [
  "--allow-ffi",
  "--allow-read",
  "--allow-write",
  "--allow-env",
  "--allow-run",
  "--allow-sys",
];
/** QEMU -M pc as the BIOS cases run it: SeaBIOS, serial console on stdout, the exit port. */
const qemuPc = [
  ...["-accel", "kvm", "-machine", "pc", "-nodefaults", "-nographic", "-serial", "stdio", "-display", "none"],
  ...["-device", "isa-debug-exit,iobase=0xf4,iosize=4", "-m", "64M"],
];
const cases: [string, string[], string | undefined][] = [
  ["vmd run", [deno, "run", ...vmdFlags, "cli.ts", "run", "-m", "64M", "-b", guest.path], MARKER],
  ["qemu microvm", [QEMU, ...await qemuArgs(guest.path, { machine: "microvm" })], MARKER],
  ["qemu pc", [QEMU, ...await qemuArgs(guest.path, { machine: "pc" })], MARKER],
  ["vmd run (BIOS)", [deno, "run", ...vmdFlags, "cli.ts", "run", "-m", "64M", "-d", disk], DISK_BOOT_LINE],
  ["qemu pc (BIOS)", [
    QEMU,
    ...qemuPc,
    ...["-drive", `file=${disk},format=raw,if=none,id=d0,readonly=on`, "-device", "virtio-blk-pci,drive=d0"],
  ], DISK_BOOT_LINE],
  [
    "vmd run (CD-ROM)",
    [deno, "run", ...vmdFlags, "cli.ts", "run", "-m", "64M", "-r", iso, "-B", "cdrom"],
    CD_LINE,
  ],
  ["qemu pc (CD-ROM)", [
    QEMU,
    ...qemuPc,
    ...["-drive", `file=${iso},format=raw,if=none,id=cd0,media=cdrom,readonly=on`],
    ...["-device", "virtio-scsi-pci,id=scsi0", "-device", "scsi-cd,drive=cd0,bus=scsi0.0,bootindex=0"],
  ], CD_LINE],
  ["deno (empty script)", [deno, "run", empty], undefined],
];

const results = new Map<string, Sample[]>(cases.map(([name]) => [name, []]));
for (let i = 0; i < runs; i++) {
  for (const [name, cmd, marker] of cases) results.get(name)!.push(await sample(cmd, marker));
}

const stats = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return { min: s[0], median: s[Math.floor(s.length / 2)], max: s[s.length - 1] };
};
const f = (n: number) => n.toFixed(1).padStart(7);
console.log(
  `vmd runs ${bundleSummary()}; ${runs} runs each; times in ms from spawn (min / median / max); peak RSS in MiB (median)`,
);
console.log(`${"".padEnd(20)} ${"to marker".padEnd(27)} ${"to exit".padEnd(27)} RSS`);
const medians = new Map<string, { marker: number; exit: number; rss: number }>();
for (const [name] of cases) {
  const xs = results.get(name)!;
  const m = stats(xs.map((x) => x.marker));
  const e = stats(xs.map((x) => x.exit));
  const r = stats(xs.map((x) => x.rssKiB / 1024));
  medians.set(name, { marker: m.median, exit: e.median, rss: r.median });
  console.log(
    `${name.padEnd(20)} ${f(m.min)} ${f(m.median)} ${f(m.max)}    ${f(e.min)} ${f(e.median)} ${f(e.max)}    ${
      r.median.toFixed(1)
    }`,
  );
}
const v = medians.get("vmd run")!;
for (const peer of ["qemu microvm", "qemu pc"]) {
  const p = medians.get(peer)!;
  console.log(
    `vmd / ${peer}: to marker ${(v.marker / p.marker).toFixed(2)}x, to exit ${
      (v.exit / p.exit).toFixed(2)
    }x, ` +
      `RSS ${(v.rss / p.rss).toFixed(2)}x`,
  );
}
for (const kind of ["BIOS", "CD-ROM"]) {
  const vb = medians.get(`vmd run (${kind})`)!;
  const qb = medians.get(`qemu pc (${kind})`)!;
  console.log(
    `vmd / qemu pc, ${kind} boot: to marker ${(vb.marker / qb.marker).toFixed(2)}x, to exit ${
      (vb.exit / qb.exit).toFixed(2)
    }x, RSS ${(vb.rss / qb.rss).toFixed(2)}x`,
  );
}
const d = medians.get("deno (empty script)")!;
console.log(`Deno's own start-up and exit (empty script): ${d.exit.toFixed(1)} ms, ${d.rss.toFixed(1)} MiB`);
await Deno.remove(empty);
