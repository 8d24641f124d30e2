/**
 * Bundles (src/build/bundles.ts): when they count as fresh and when not, and the TypeScript sources as the
 * other path: a daemon told `VMD_BUNDLES=off` runs its VM processes from cli.ts, and they work. (With fresh
 * bundles, which `deno task ok` builds, every other daemon and `vmd run` test runs the bundles;
 * vmd_daemon_test checks the VM processes' command lines.)
 */
import assert from "node:assert/strict";
import {
  BUNDLE_ENTRIES,
  type BundleManifest,
  bundleProblem,
  bundleUrl,
  MANIFEST_NAME,
} from "../src/build/bundles.ts";
import { kvmTest } from "./kvm_support.ts";
import { buildKitGuest } from "../examples/guests/kit/build.ts";
import { isVmProcessArgv } from "../src/vmd/vm_process_command.ts";
import { ConsoleSession, kitPaths, TestDaemon } from "./vmd_support.ts";

/** A program root with two source modules, every bundle file and a manifest that matches them. */
async function fakeBuild(): Promise<{ root: URL; dir: URL; manifest: BundleManifest }> {
  const root = new URL(`file://${await Deno.makeTempDir({ prefix: "vmd-bundles-" })}/`);
  const dir = new URL("build/bundles/", root);
  await Deno.mkdir(new URL("src", root), { recursive: true });
  await Deno.mkdir(dir, { recursive: true });
  await Deno.writeTextFile(new URL("src/a.ts", root), "export const a = 1;\n");
  await Deno.writeTextFile(new URL("src/b.ts", root), "export const b = 2;\n");
  for (const name of Object.keys(BUNDLE_ENTRIES) as (keyof typeof BUNDLE_ENTRIES)[]) {
    await Deno.writeTextFile(bundleUrl(name, dir), "// bundle\n");
  }
  const inputs: Record<string, [number, number]> = {};
  for (const path of ["src/a.ts", "src/b.ts"]) {
    const info = await Deno.stat(new URL(path, root));
    inputs[path] = [info.size, info.mtime!.getTime()];
  }
  const manifest: BundleManifest = { version: 1, deno: Deno.version.deno, inputs };
  await Deno.writeTextFile(new URL(MANIFEST_NAME, dir), JSON.stringify(manifest));
  return { root, dir, manifest };
}

Deno.test("bundles are fresh only while every source they came from is unchanged", async () => {
  const { root, dir, manifest } = await fakeBuild();
  try {
    assert.equal(bundleProblem(root, dir), null, "as built: fresh");

    // the same size, another modification time (an edit, or a checkout that rewrote the file)
    const b = new URL("src/b.ts", root);
    await Deno.utime(b, new Date(), new Date(Date.now() + 5000));
    assert.equal(bundleProblem(root, dir), "src/b.ts changed since the bundles were built");
    await Deno.writeTextFile(b, "export const b = 2;\n");
    const info = await Deno.stat(b);
    await Deno.utime(b, info.atime!, new Date(manifest.inputs["src/b.ts"][1]));
    assert.equal(bundleProblem(root, dir), null, "back as it was: fresh again");

    // another size, same time
    await Deno.writeTextFile(b, "export const b = 22;\n");
    await Deno.utime(b, info.atime!, new Date(manifest.inputs["src/b.ts"][1]));
    assert.equal(bundleProblem(root, dir), "src/b.ts changed since the bundles were built");
    await Deno.remove(b);
    assert.equal(bundleProblem(root, dir), "src/b.ts is gone");
    await Deno.writeTextFile(b, "export const b = 2;\n");
    await Deno.utime(b, info.atime!, new Date(manifest.inputs["src/b.ts"][1]));
    assert.equal(bundleProblem(root, dir), null);

    // a missing bundle, another Deno, a damaged or missing manifest
    await Deno.remove(bundleUrl("vcpu", dir));
    assert.equal(bundleProblem(root, dir), "vcpu.js is missing");
    await Deno.writeTextFile(bundleUrl("vcpu", dir), "// bundle\n");
    const m = new URL(MANIFEST_NAME, dir);
    await Deno.writeTextFile(m, JSON.stringify({ ...manifest, deno: "0.0.1" }));
    assert.equal(bundleProblem(root, dir), `built by Deno 0.0.1, running ${Deno.version.deno}`);
    await Deno.writeTextFile(m, JSON.stringify({ ...manifest, version: 2 }));
    assert.equal(bundleProblem(root, dir), "unknown manifest format");
    await Deno.writeTextFile(m, "{");
    assert.match(bundleProblem(root, dir) ?? "", /^unreadable manifest/);
    await Deno.remove(m);
    assert.equal(bundleProblem(root, dir), "not built");

    // fresh, but turned off
    await Deno.writeTextFile(m, JSON.stringify(manifest));
    assert.equal(bundleProblem(root, dir), null);
    Deno.env.set("VMD_BUNDLES", "off");
    try {
      assert.equal(bundleProblem(root, dir), "turned off (VMD_BUNDLES=off)");
    } finally {
      Deno.env.delete("VMD_BUNDLES");
    }
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

kvmTest(
  "VMD_BUNDLES=off: the daemon's VM processes run the TypeScript sources (cli.ts vm-process)",
  async () => {
    const { echo } = await kitPaths();
    const d = await TestDaemon.start(`vm "src" {\n  boot "${echo}"\n  memory 16M\n}\n`, {
      VMD_BUNDLES: "off",
    });
    await d.run(async () => {
      const vm = await d.waitState("src", "running");
      const cmdline = Deno.readTextFileSync(`/proc/${vm.pid}/cmdline`).split("\0");
      assert.ok(
        cmdline.some((a) => a.endsWith("/cli.ts")) && cmdline.includes("vm-process"),
        cmdline.join(" "),
      );
      assert.ok(!cmdline.includes(bundleUrl("vm-process").pathname), cmdline.join(" "));
      assert.match(
        d.log,
        /VM processes run from the TypeScript sources: bundles turned off \(VMD_BUNDLES=off\)/,
      );
      const c = new ConsoleSession(d, "src");
      await c.send("hi\r");
      await c.expect("HI");
      await c.detach();
    });
  },
);

Deno.test("a VM process is known by its command line, from the sources or from its bundle", () => {
  assert.ok(isVmProcessArgv(["deno", "run", "--allow-ffi", "/opt/vmd/cli.ts", "vm-process", "3"]));
  assert.ok(isVmProcessArgv(["deno", "run", "--allow-ffi", "/opt/vmd/build/bundles/vm-process.js", "3"]));
  assert.ok(!isVmProcessArgv(["deno", "run", "-A", "/opt/vmd/cli.ts", "-d"]));
  assert.ok(!isVmProcessArgv(["deno", "run", "/opt/vmd/build/bundles/run.js"]));
});

// vmd run from stale bundles would run the sources, where the worker starts with the VM
const stale = bundleProblem();
kvmTest(
  "vmd run from the bundles: virtio-rng's worker starts at the driver's DRIVER_OK and serves",
  async () => {
    const guest = await buildKitGuest("virtio_rng");
    const out = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        new URL("../cli.ts", import.meta.url).pathname,
        "run",
        "-m",
        "32M",
        "-b",
        guest.path,
      ],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const stdout = new TextDecoder().decode(out.stdout);
    assert.equal(
      stdout,
      "virtio_rng: status 0xf\nvirtio_rng: 4096 bytes, not constant\n",
      new TextDecoder().decode(out.stderr),
    );
    assert.equal(out.code, 0x21, "the guest's exit-port value");
  },
  stale === null ? null : `bundles ${stale} (deno task bundle builds them)`,
);
