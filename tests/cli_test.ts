import assert from "node:assert/strict";
import { kvmTest, runCli } from "./kvm_support.ts";
import { v8FlagsArg } from "../src/vmd/v8_flags.ts";

const vmd = (...args: string[]) => runCli(args);

kvmTest("`vmd demo` boots the embedded guest, shows its console and exits 0", async () => {
  const r = await vmd("demo");
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^vmd demo guest: 64-bit long mode/);
  assert.match(r.stdout, /counting: 5\nscratch register round trip ok; exiting with status 0\n$/);
  assert.match(r.stderr, /vmd: demo: guest wrote 0 to the exit port after \d+ ms, \d+ exits/);
});

Deno.test("`vmd policy` prints the permission table; unknown vmctl commands fail with usage", async () => {
  const p = await vmd("policy");
  assert.equal(p.code, 0);
  assert.match(p.stdout, /^vcpu\s+worker/m);
  const v = await vmd("vmctl", "frobnicate");
  assert.equal(v.code, 1);
  assert.match(v.stderr, /^vmctl: unknown command: frobnicate\nusage: vmctl/);
  const bad = await vmd("-x");
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /^vmd: unknown option -x\nusage: vmd /);
  const noValue = await vmd("-f");
  assert.equal(noValue.code, 1);
  assert.match(noValue.stderr, /^vmd: option -f needs a value\n/);
  const help = await vmd("-h");
  assert.equal(help.code, 0);
  assert.match(help.stderr, /^usage: vmd \[-dnv\]/);
  const run = await vmd("run", "-q");
  assert.equal(run.code, 1);
  assert.match(run.stderr, /^vmd run: unknown option -q\n/);
  for (const out of [bad.stderr, noValue.stderr, run.stderr]) {
    assert.doesNotMatch(out, /To specify a positional|argument missing|'--/, "no option-parser text");
  }
});

Deno.test("deno task install: vmd and vmctl run on their own, with no deno on PATH", async () => {
  const dir = await Deno.makeTempDir({ prefix: "vmd-install-" });
  try {
    const r = await new Deno.Command("./scripts/deno", {
      args: ["task", "install", "--root", dir],
      cwd: new URL("..", import.meta.url).pathname,
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.equal(r.code, 0, new TextDecoder().decode(r.stderr));
    const run = async (cmd: string, args: string[]) => {
      const o = await new Deno.Command(`${dir}/bin/${cmd}`, {
        args,
        clearEnv: true,
        env: { PATH: "/usr/bin:/bin", HOME: dir },
        stdout: "piped",
        stderr: "piped",
      }).output();
      return { code: o.code, out: new TextDecoder().decode(o.stdout) + new TextDecoder().decode(o.stderr) };
    };
    const help = await run("vmctl", ["-h"]);
    assert.equal(help.code, 0, help.out);
    assert.match(help.out, /^usage: vmctl/m);
    const policy = await run("vmd", ["policy"]);
    assert.equal(policy.code, 0, policy.out);
    // the daemon runs with vmd's V8 flags (a bounded young generation: see src/vmd/v8_flags.ts)
    assert.ok(
      (await Deno.readTextFile(`${dir}/bin/vmd`)).includes(`'${v8FlagsArg()}'`),
      "vmd shim's V8 flags",
    );
    assert.match(policy.out, /^vcpu\s+worker/m);
    assert.ok(
      (await new Deno.Command("sh", { args: ["-c", "PATH=/usr/bin:/bin command -v deno"] }).output()).code !==
        0,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("deno task vmd runs the daemon with vmd's V8 flags", async () => {
  const config = JSON.parse(await Deno.readTextFile(new URL("../deno.json", import.meta.url)));
  assert.ok(String(config.tasks.vmd).split(" ").includes(v8FlagsArg()), config.tasks.vmd);
});
