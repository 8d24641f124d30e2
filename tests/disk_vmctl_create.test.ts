/**
 * `vmd vmctl create` end to end, as a subprocess of `deno run -A cli.ts`: exit statuses, messages, and the
 * images it makes (checked with qemu-img).
 */
import assert from "node:assert/strict";
import { parseSize } from "../src/vmctl/create.ts";
import { Progress } from "../src/vmctl/progress.ts";
import { assertCheckClean, qemuImg, Rng, run, withTempDir } from "./disk_helpers.ts";

const CLI = new URL("../cli.ts", import.meta.url).pathname;

/** Runs `vmd vmctl create args...` in `dir`. */
function vmctlCreate(dir: string, ...args: string[]) {
  return run(Deno.execPath(), ["run", "-A", CLI, "vmctl", "create", ...args], { cwd: dir });
}

async function info(path: string): Promise<Record<string, unknown>> {
  return JSON.parse(await qemuImg("info", "--output=json", path));
}

Deno.test("vmctl create -s: raw by default, qcow2 by extension or prefix, sizes rounded down to MB", async () => {
  await withTempDir(async (dir) => {
    let r = await vmctlCreate(dir, "-s", "1500K", "a.img");
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /disk size rounded to 1M\n/);
    assert.match(r.stderr, /raw imagefile created/);
    assert.equal(Deno.statSync(`${dir}/a.img`).size, 1 << 20);

    r = await vmctlCreate(dir, "-s", "1T", "big.qcow2");
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /qcow2 imagefile created/);
    assert.equal((await info(`${dir}/big.qcow2`))["virtual-size"], 2 ** 40);
    assert.ok(Deno.statSync(`${dir}/big.qcow2`).size < 1 << 20);
    await assertCheckClean(`${dir}/big.qcow2`);

    r = await vmctlCreate(dir, "-s", "10m", "qcow2:plain");
    assert.equal(r.code, 0, r.stderr);
    assert.equal((await info(`${dir}/plain`))["format"], "qcow2");
  });
});

Deno.test("vmctl create: errors for an existing target, bad sizes, missing size, conflicting options", async () => {
  await withTempDir(async (dir) => {
    Deno.writeFileSync(`${dir}/exists.img`, new Uint8Array([1, 2, 3]));
    const cases: [string[], RegExp][] = [
      [["-s", "1G", "exists.img"], /exists\.img: file exists/],
      [["-s", "12Q", "x.img"], /invalid size: 12Q/],
      [["-s", "0", "x.img"], /disk size must be at least 1MB/],
      [["-s", "1000K", "x.img"], /disk size must be at least 1MB/],
      [["x.img"], /missing size argument[\s\S]*usage: vmctl create/],
      [["-b", "a", "-i", "b", "x.qcow2"], /conflicting -b and -i arguments/],
      [["-s", "1G"], /usage: vmctl create/],
      [["-s", "1G", "-q", "x.img"], /^vmctl: unknown option -q\nusage: vmctl create/],
      [["-s"], /^vmctl: option -s needs a value\nusage: vmctl create/],
      [["-b", "missing.qcow2", "x.qcow2"], /missing\.qcow2: not found: check the path\n$/],
      [["-i", "missing.img", "x.qcow2"], /missing\.img: not found: check the path\n$/],
    ];
    for (const [args, re] of cases) {
      const r = await vmctlCreate(dir, ...args);
      assert.equal(r.code, 1, `vmctl create ${args.join(" ")} should fail`);
      assert.match(r.stderr, re, `vmctl create ${args.join(" ")}`);
    }
    assert.deepEqual(Deno.readFileSync(`${dir}/exists.img`), new Uint8Array([1, 2, 3]));
    assert.deepEqual(
      [...Deno.readDirSync(dir)].map((e) => e.name),
      ["exists.img"],
      "failed creates leave nothing",
    );
  });
});

Deno.test("vmctl create -b: a qcow2 child of the base's size; -s must match; raw targets refused", async () => {
  await withTempDir(async (dir) => {
    Deno.mkdirSync(`${dir}/vms`);
    await qemuImg("create", "-q", "-f", "qcow2", `${dir}/base.qcow2`, "100M");
    let r = await vmctlCreate(dir, "-b", "base.qcow2", "child.qcow2");
    assert.equal(r.code, 0, r.stderr);
    const child = await info(`${dir}/child.qcow2`);
    assert.equal(child["virtual-size"], 100 << 20);
    assert.equal(child["backing-filename"], "base.qcow2");
    await assertCheckClean(`${dir}/child.qcow2`);

    r = await vmctlCreate(dir, "-b", "base.qcow2", "vms/other.qcow2"); // another folder: recorded absolute
    assert.equal(r.code, 0, r.stderr);
    assert.equal(
      (await info(`${dir}/vms/other.qcow2`))["backing-filename"],
      Deno.realPathSync(`${dir}/base.qcow2`),
    );

    r = await vmctlCreate(dir, "-b", "base.qcow2", "-s", "100M", "same.qcow2");
    assert.equal(r.code, 0, r.stderr);
    r = await vmctlCreate(dir, "-b", "base.qcow2", "-s", "2G", "wrong.qcow2");
    assert.equal(r.code, 1);
    assert.match(r.stderr, /does not match the base image's size/);
    r = await vmctlCreate(dir, "-b", "base.qcow2", "child.img");
    assert.equal(r.code, 1);
    assert.match(r.stderr, /base images require qcow2 disk format/);
  });
});

Deno.test("vmctl create -i: sparse copy and conversion, progress lines when not a terminal", async () => {
  await withTempDir(async (dir) => {
    const src = new Uint8Array(12 << 20);
    const rng = new Rng(3);
    for (let mb = 0; mb < 12; mb += 3) src.set(rng.bytes(1 << 20), mb << 20);
    Deno.writeFileSync(`${dir}/src.raw`, src);
    let r = await vmctlCreate(dir, "-i", "src.raw", "conv.qcow2");
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /src\.raw -> conv\.qcow2: 100% \(12\.0 MiB \/ 12\.0 MiB, .*\/s, ETA/);
    await assertCheckClean(`${dir}/conv.qcow2`);
    assert.equal((await run("qemu-img", ["compare", `${dir}/src.raw`, `${dir}/conv.qcow2`])).code, 0);
    const map = JSON.parse(await qemuImg("map", "--output=json", `${dir}/conv.qcow2`)) as { data: boolean }[];
    assert.ok(map.some((e) => !e.data), "zero megabytes were skipped");

    r = await vmctlCreate(dir, "-i", "conv.qcow2", "-s", "20M", "back.img");
    assert.equal(r.code, 0, r.stderr);
    const back = Deno.readFileSync(`${dir}/back.img`);
    assert.equal(back.length, 20 << 20);
    assert.deepEqual(back.subarray(0, src.length), src);

    r = await vmctlCreate(dir, "-i", "conv.qcow2", "-s", "1M", "small.img");
    assert.equal(r.code, 1);
    assert.match(r.stderr, /size cannot be smaller than input disk size/);
  });
});

Deno.test("parseSize and the progress bar", () => {
  // as vmctl(8): rounded down to whole megabytes, with a warning; under 1 MB refused
  const warnings: string[] = [];
  assert.equal(parseSize("1048577", (l) => warnings.push(l)), 1 << 20);
  assert.deepEqual(warnings, ["vmctl: disk size rounded to 1M"]);
  assert.equal(parseSize("2.5M", (l) => warnings.push(l)), 2 << 20);
  assert.equal(parseSize("1M", (l) => warnings.push(l)), 1 << 20);
  assert.equal(warnings.length, 2, "an exact size is not reported as rounded");
  assert.throws(() => parseSize("1"), /at least 1MB/);
  assert.throws(() => parseSize("1023K"), /at least 1MB/);
  assert.equal(parseSize("1.5G"), 1536 << 20);
  assert.equal(parseSize("4t"), 4 * 2 ** 40);
  assert.throws(() => parseSize("-1M"), /invalid size/);
  let t = 0;
  let out = "";
  const p = new Progress("copy", 1000 << 20, { write: (s) => out += s, tty: true, now: () => t });
  t = 2000;
  p.update(500 << 20);
  assert.match(out, /\rcopy \[={15} {15}\] {2}50% 500\.0 MiB \/ 1000\.0 MiB, 250\.0 MiB\/s, ETA 0:02/);
});
