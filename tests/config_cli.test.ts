import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { FIXTURES } from "./config_fixtures.ts";

const ROOT = fileURLToPath(new URL("..", import.meta.url));

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `deno run -A cli.ts args...` in the fixture directory, as a user would run vmd. */
async function vmd(...args: string[]): Promise<Run> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--config", `${ROOT}deno.json`, `${ROOT}cli.ts`, ...args],
    cwd: FIXTURES,
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

Deno.test("vmd -n: a good file prints 'configuration OK' and exits 0", async () => {
  const r = await vmd("-n", "-f", "valid/manpage.conf");
  assert.deepEqual(r, { code: 0, stdout: "", stderr: "configuration OK\n" });
});

Deno.test("vmd -n -v prints the resolved configuration (macros expanded, defaults filled in)", async () => {
  const r = await vmd("-n", "-v", "-f", "valid/linux.conf");
  assert.equal(r.code, 0);
  assert.equal(r.stdout, Deno.readTextFileSync(`${FIXTURES}/valid/linux.expected`));
  assert.equal(r.stderr, "configuration OK\n");
});

Deno.test("vmd -n: a broken file prints every error and exits 1", async () => {
  const r = await vmd("-n", "-f", "broken/everything.conf");
  assert.equal(r.code, 1);
  assert.equal(r.stdout, "");
  const lines = r.stderr.trimEnd().split("\n");
  assert.equal(lines.length, 13);
  assert.equal(
    lines[0],
    'broken/everything.conf:3:2: unknown vm option "memroy" in vm "a"; did you mean "memory"?',
  );
  assert.equal(
    lines[12],
    'broken/include_loop.conf:1:4: vm "a" is already defined at broken/everything.conf:2:4',
  );
  assert.ok(!r.stderr.includes("configuration OK"));
});

Deno.test("vmd -n -D overrides a macro of the file; unused -D macros are warned about", async () => {
  const before = await vmd("-n", "-f", "broken/undefined_macro.conf");
  assert.equal(before.code, 1);
  const r = await vmd(
    "-n",
    "-v",
    "-D",
    "kernel=/bsd.rd",
    "-D",
    "spare=1",
    "-f",
    "broken/undefined_macro.conf",
  );
  assert.equal(r.code, 0);
  assert.match(r.stdout, /\n\tboot "\/bsd\.rd"\n/);
  assert.equal(r.stderr, 'vmd: warning: macro "spare" given with -D is not used\nconfiguration OK\n');
  const o = await vmd("-n", "-v", "-D", "snapshots=/mirror/", "-f", "valid/openbsd_style.conf");
  assert.equal(o.code, 0);
  assert.match(o.stdout, /\tboot "\/mirror\/bsd\.rd"\n/);
  assert.match(o.stdout, /\tdisk "\/mirror\/install78\.img"\n/);
});

Deno.test("vmd -n: a missing -f file or a bad -D is an error (exit 1)", async () => {
  const r = await vmd("-n", "-f", "nope.conf");
  assert.deepEqual(r, { code: 1, stdout: "", stderr: "vmd: cannot read nope.conf: no such file\n" });
  const d = await vmd("-n", "-D", "novalue", "-f", "valid/manpage.conf");
  assert.equal(d.code, 1);
  assert.equal(
    d.stderr,
    'vmd: invalid -D "novalue": expected name=value, the name made of letters, digits and underscores\n',
  );
});
