/**
 * Crash safety: a child process writes to a qcow2 image (a child of a raw base, so partial writes copy from
 * the backing file) and is killed with SIGKILL at random moments, again and again on the same image. After
 * every kill, `qemu-img check` must find no corruption (leaked clusters are allowed), every write the child
 * saw flushed must read back, and every slot never written must still read as the base.
 */
import assert from "node:assert/strict";
import { createImage, openDisk } from "../mod.ts";
import { qemuImg, Rng, run, withTempDir } from "./disk_helpers.ts";
import { SLOT, slotData, slotOrder } from "./fixtures/disk/crash_slots.ts";

const WRITER = new URL("./fixtures/disk/crash_writer.ts", import.meta.url).pathname;
const KILLS = 12;
const SIZE = 48 << 20;

/** Runs the writer from permutation position `start` and kills it after `delayMs` of writing. */
async function crashRound(dir: string, image: string, start: number, delayMs: number) {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", `--allow-read=${dir}`, `--allow-write=${dir}`, WRITER, image, String(start)],
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let out = "";
  const dec = new TextDecoder();
  const reader = child.stdout.getReader();
  let killed = false;
  let timer: ReturnType<typeof setTimeout> | undefined;
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    out += dec.decode(value);
    if (timer === undefined && out.includes("ready")) {
      timer = setTimeout(() => {
        killed = true;
        child.kill("SIGKILL");
      }, delayMs);
    }
  }
  clearTimeout(timer);
  const status = await child.status;
  const err = dec.decode(await new Response(child.stderr).arrayBuffer());
  assert.ok(killed || status.code === 0, `writer failed: ${err}`);
  let started = start - 1;
  let flushed = start;
  for (const line of out.split("\n")) {
    const [k, v] = line.split(" ");
    if (k === "w") started = Math.max(started, Number(v));
    if (k === "f") flushed = Math.max(flushed, Number(v));
  }
  return { started, flushed, done: out.includes("done") };
}

async function crashTest(layout: "ours" | "qemu512"): Promise<void> {
  await withTempDir(async (dir) => {
    const base = new Uint8Array(SIZE);
    for (let off = 0; off < SIZE; off += 65536) crypto.getRandomValues(base.subarray(off, off + 65536));
    Deno.writeFileSync(`${dir}/base.raw`, base);
    const image = `${dir}/crash.qcow2`;
    if (layout === "ours") {
      await createImage(image, "qcow2", { size: SIZE, backing: { name: "base.raw", format: "raw" } });
    } else {
      // 512-byte clusters: the refcount table (64 entries, 8 MiB of file) must grow while writers get killed.
      await qemuImg(
        "create",
        "-q",
        "-f",
        "qcow2",
        "-o",
        "cluster_size=512",
        "-b",
        "base.raw",
        "-F",
        "raw",
        image,
      );
    }
    const order = slotOrder(SIZE);
    const rng = new Rng(77);
    let next = 0;
    let flushedUpTo = 0;
    let kills = 0;
    let leakyRounds = 0;
    const uncertain = new Set<number>(); // positions written but not flushed when a writer was killed
    // The 512-byte-cluster image must also have grown its refcount table (past 8 MiB of file) by the end.
    const tableGrew = () =>
      layout === "ours" || new DataView(Deno.readFileSync(image).buffer).getUint32(56) > 1;
    for (
      let round = 0;
      (kills < KILLS || !tableGrew()) && round < 3 * KILLS && next < order.length;
      round++
    ) {
      const r = await crashRound(dir, image, next, layout === "ours" ? 2 + rng.int(60) : 20 + rng.int(120));
      if (!r.done) kills++;
      flushedUpTo = r.flushed;
      for (let i = r.flushed; i <= r.started; i++) uncertain.add(i);
      next = r.started + 1;

      const check = await run("qemu-img", ["check", "--output=json", image]);
      // 0: clean; 3: leaked clusters only (allowed after a crash). 2 would be corruption.
      assert.ok(
        check.code === 0 || check.code === 3,
        `round ${round}: qemu-img check: ${check.stdout}${check.stderr}`,
      );
      const report = JSON.parse(check.stdout);
      if ((report["leaks"] ?? 0) > 0) leakyRounds++;
      assert.equal(report["corruptions"] ?? 0, 0, `round ${round}: corruption`);

      const disk = await openDisk(image, { readOnly: true });
      const buf = new Uint8Array(SLOT);
      for (let i = 0; i < order.length; i++) {
        if (uncertain.has(i)) continue; // written but not flushed when killed: old or new contents are fine
        const slot = order[i];
        await disk.read(slot * SLOT, buf);
        const want = i < next ? slotData(slot) : base.subarray(slot * SLOT, (slot + 1) * SLOT);
        if (!buf.every((b, j) => b === want[j])) {
          assert.fail(
            `round ${round}: slot ${slot} (write #${i}, flushed up to #${flushedUpTo}) reads wrong`,
          );
        }
      }
      await disk.close();
    }
    console.log(
      `crash (${layout}): ${kills} kills, ${flushedUpTo} writes flushed, ${uncertain.size} unflushed at a kill, ` +
        `${leakyRounds} checks with leaked clusters`,
    );
    assert.ok(tableGrew(), "the writers never made the refcount table grow");
    assert.ok(kills >= KILLS, `only ${kills} writers were killed before the slots ran out`);
    assert.ok(
      flushedUpTo > 0 && uncertain.size < flushedUpTo,
      "too few writes were flushed to prove anything",
    );
  });
}

Deno.test(`crash safety, our image with a raw base: ${KILLS} SIGKILLs, no corruption, flushed writes survive`, () =>
  crashTest("ours"));

Deno.test(`crash safety, qemu image with 512-byte clusters (growing refcount table): ${KILLS} SIGKILLs`, () =>
  crashTest("qemu512"));
