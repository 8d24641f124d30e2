/**
 * The guest preparation script on the real Debian packages (downloaded with apt on the first run, then
 * cached): the files it leaves, a second run that changes nothing, and the initramfs booted for real by the
 * prepared kernel (bzImage, and the extracted vmlinux through its PVH entry) under QEMU's TCG emulator (no
 * KVM needed): modules loaded, marker printed, a command typed on the console answered, and the VM ended by
 * `reboot -f`.
 */
import assert from "node:assert/strict";
import { gunzipSync } from "node:zlib";
import { readCpio } from "../scripts/cpio_newc.ts";
import { readBzImageHeader } from "../scripts/bzimage_extract.ts";
import { isElf, readElf } from "../scripts/elf_pvh.ts";
import { INITRAMFS_MARKER, INITRAMFS_MODULES } from "../scripts/initramfs.ts";
import { type PreparedGuests, prepareGuests } from "../scripts/prepare_guests.ts";
import { QEMU, QemuMissingError } from "./qemu_support.ts";

let prepared: Promise<PreparedGuests> | undefined;
/** One preparation per test file run (the first may download ~30 MB). */
const guests = (): Promise<PreparedGuests> => prepared ??= prepareGuests();

Deno.test("prepare_guests: the cloud bzImage, its ELF vmlinux with a PVH note, and a gzip cpio initrd", async () => {
  const g = await guests();
  assert.match(g.kernelVersion, /^\d+\.\d+\.\d+-\d+-cloud-amd64$/);
  assert.equal(g.package, `linux-image-${g.kernelVersion}`);

  const bz = await Deno.readFile(g.bzImage);
  assert.equal(new TextDecoder().decode(bz.subarray(0x202, 0x206)), "HdrS");
  const h = readBzImageHeader(bz);
  assert.ok(h.version >= 0x20a, `boot protocol ${h.version.toString(16)}`);
  assert.equal(g.payloadFormat, "lz4");

  const vmlinux = await Deno.readFile(g.vmlinux);
  const elf = readElf(vmlinux);
  assert.equal(elf.bits, 64);
  assert.equal(elf.machine, 62);
  assert.equal(elf.pvhEntry, g.pvhEntry);
  assert.ok(g.pvhEntry >= 0x100000 && g.pvhEntry < 0x4000000, `PVH entry 0x${g.pvhEntry.toString(16)}`);
  assert.ok(
    new TextDecoder("latin1").decode(vmlinux).includes(`Linux version ${g.kernelVersion.split("-")[0]}`),
  );

  const gz = await Deno.readFile(g.initrd);
  assert.deepEqual([gz[0], gz[1]], [0x1f, 0x8b]);
  const members = new Map(readCpio(new Uint8Array(gunzipSync(gz))).map((m) => [m.path, m]));
  const init = members.get("init");
  assert.ok(init !== undefined);
  assert.equal(init.mode, 0o100755);
  const initText = new TextDecoder().decode(init.data);
  assert.ok(initText.includes(`echo ${INITRAMFS_MARKER}`));
  assert.ok(initText.includes(`for m in ${g.modules.join(" ")}; do`));
  assert.ok(isElf(members.get("bin/busybox")?.data ?? new Uint8Array()));
  assert.deepEqual(members.get("dev/console")?.rdev, [5, 1]);
  assert.deepEqual([...g.modules, ...g.builtin, ...g.missing].sort(), [...INITRAMFS_MODULES].sort());
  assert.ok(g.modules.includes("virtio_pci") && g.modules.includes("virtio_blk"), g.modules.join(" "));
  for (const name of g.modules) {
    const ko = members.get(`lib/modules/${name}.ko`)?.data;
    assert.ok(ko !== undefined && isElf(ko), `${name}.ko in the initrd`);
    assert.equal(new DataView(ko.buffer, ko.byteOffset).getUint16(16, true), 1, `${name}.ko is ET_REL`);
    assert.ok(
      new TextDecoder("latin1").decode(ko).includes(`vermagic=${g.kernelVersion} `),
      `${name} vermagic`,
    );
  }

  // busybox's own cpio reads our archive the same way.
  const list = new Deno.Command(g.busybox, {
    args: ["cpio", "-t"],
    stdin: "piped",
    stdout: "piped",
    stderr: "null",
  }).spawn();
  const listed = list.output();
  const w = list.stdin.getWriter();
  await w.write(new Uint8Array(gunzipSync(gz)));
  await w.close();
  const names = new TextDecoder().decode((await listed).stdout).trim().split("\n");
  assert.deepEqual(names, [...members.keys()]);
});

Deno.test("prepare_guests: a second run is a no-op that rewrites nothing", async () => {
  const first = await guests();
  const files = [first.bzImage, first.vmlinux, first.initrd];
  const before = await Promise.all(files.map((f) => Deno.stat(f)));
  const t0 = performance.now();
  const again = await prepareGuests();
  const ms = performance.now() - t0;
  assert.deepEqual(again, first);
  const after = await Promise.all(files.map((f) => Deno.stat(f)));
  assert.deepEqual(after.map((s) => s.mtime), before.map((s) => s.mtime));
  assert.ok(ms < 2000, `cached run took ${ms.toFixed(0)} ms`);
});

/** An interactive QEMU: the serial console on a pipe, read until a pattern appears. */
class Console {
  readonly #child: Deno.ChildProcess;
  readonly #writer: WritableStreamDefaultWriter<Uint8Array>;
  #text = "";
  #ended = false;
  readonly done: Promise<Deno.CommandStatus>;

  constructor(args: string[]) {
    let child: Deno.ChildProcess;
    try {
      child = new Deno.Command(QEMU, { args, stdin: "piped", stdout: "piped", stderr: "null" }).spawn();
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) throw new QemuMissingError();
      throw e;
    }
    this.#child = child;
    this.#writer = child.stdin.getWriter();
    const dec = new TextDecoder();
    const pump = (async () => {
      for await (const c of child.stdout) this.#text += dec.decode(c, { stream: true });
    })();
    this.done = pump.then(() => child.status).finally(() => this.#ended = true);
  }

  get text(): string {
    return this.#text;
  }

  async waitFor(re: RegExp, timeoutMs: number, from = 0): Promise<RegExpExecArray> {
    const until = performance.now() + timeoutMs;
    for (;;) {
      const m = re.exec(this.#text.slice(from));
      if (m !== null) return m;
      if (this.#ended || performance.now() > until) {
        throw new Error(
          `console never showed ${re} (${this.#ended ? "QEMU exited" : "timeout"}):\n${this.#text}`,
        );
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  async type(line: string): Promise<void> {
    await this.#writer.write(new TextEncoder().encode(`${line}\n`));
  }

  async close(): Promise<void> {
    await this.#writer.close().catch(() => {});
    if (!this.#ended) {
      try {
        this.#child.kill("SIGKILL");
      } catch {
        // gone
      }
    }
    await this.done;
  }
}

/** `p`, or undefined when it has not settled within `ms`. */
async function within<T>(p: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([p, new Promise<undefined>((r) => timer = setTimeout(() => r(undefined), ms))]);
  } finally {
    clearTimeout(timer);
  }
}

const tcgArgs = (g: PreparedGuests, cmdline: string, kernel = g.bzImage): string[] => [
  ...["-accel", "tcg", "-machine", "pc", "-nodefaults", "-nographic", "-display", "none", "-serial", "stdio"],
  ...["-m", "256M", "-no-reboot", "-device", "virtio-rng-pci", "-kernel", kernel, "-initrd", g.initrd],
  ...["-append", `console=ttyS0 reboot=k panic=-1 quiet ${cmdline}`],
];

for (const kind of ["bzImage", "vmlinux"] as const) {
  Deno.test(`prepared ${kind} with the initramfs boots under QEMU TCG: marker, then reboot -f ends the VM`, async () => {
    const g = await guests();
    const c = new Console(tcgArgs(g, "", g[kind]));
    try {
      await c.waitFor(new RegExp(INITRAMFS_MARKER), 120_000);
      const status = await within(c.done, 60_000);
      assert.ok(status !== undefined, "QEMU should exit after reboot -f (with -no-reboot)");
      assert.equal(status.code, 0);
      assert.ok(!c.text.includes("insmod"), c.text);
      assert.match(c.text, /reboot: Restarting system/);
    } finally {
      await c.close();
    }
  });
}

Deno.test("prepared initramfs with vmd.shell: a shell on the console answers, virtio-rng is bound", async () => {
  const g = await guests();
  const c = new Console(tcgArgs(g, "vmd.shell"));
  try {
    await c.waitFor(new RegExp(INITRAMFS_MARKER), 120_000);
    await c.waitFor(/\/ # /, 30_000);
    await c.type("echo answer-$((6*7))");
    await c.waitFor(/answer-42/, 30_000);
    await c.type("echo mods: $(cut -d' ' -f1 /proc/modules | sort) :end");
    const mods = await c.waitFor(/mods: ([a-z0-9_ ]+) :end/, 30_000);
    assert.deepEqual(mods[1].split(" "), g.modules.map((m) => m.replaceAll("-", "_")).sort());
    await c.type("echo rng: $(cat /sys/class/misc/hw_random/rng_current) :end");
    const rng = await c.waitFor(/rng: (\S+) :end/, 30_000);
    assert.match(rng[1], /^virtio_rng\.\d+$/);
    await c.type("exit");
    const status = await within(c.done, 60_000);
    assert.equal(status?.code, 0, "leaving the shell reboots, and QEMU (-no-reboot) exits");
  } finally {
    await c.close();
  }
});
