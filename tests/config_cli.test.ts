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

Deno.test("vmd -n: a good file whose kernels, disks and owners exist prints 'configuration OK'", async () => {
  const dir = Deno.makeTempDirSync({ prefix: "vmd-n-" });
  try {
    Deno.writeTextFileSync(`${dir}/kernel`, "k");
    Deno.writeTextFileSync(`${dir}/disk.img`, "d");
    Deno.writeTextFileSync(
      `${dir}/vm.conf`,
      'vm "a" {\n\tboot "kernel" { initrd "kernel" }\n\tdisk "disk.img"\n\towner root:root\n' +
        "\tallow instance { owner :root }\n}\nsocket owner root\n",
    );
    const r = await vmd("-n", "-f", `${dir}/vm.conf`);
    assert.deepEqual(r, { code: 0, stdout: "", stderr: "configuration OK\n" });
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("vmd -n: kernels, initrds, disks and cdroms must be readable files, owners must exist", async () => {
  const dir = Deno.makeTempDirSync({ prefix: "vmd-n-" });
  try {
    Deno.writeTextFileSync(`${dir}/kernel`, "k");
    Deno.mkdirSync(`${dir}/adir`);
    Deno.writeTextFileSync(
      `${dir}/vm.conf`,
      [
        'vm "a" {',
        '\tboot "nokernel" { initrd "noinitrd" }',
        '\tdisk "adir"',
        '\tcdrom "/no/such.iso"',
        "\towner nosuchuser9:nosuchgroup9",
        "}",
        'vm "a" instance "b" {',
        '\tdisk "kernel"',
        "\tallow instance { owner :nosuchgroup8 }",
        "}",
        "socket owner nosuchuser7",
        "",
      ].join("\n"),
    );
    const r = await vmd("-n", "-f", `${dir}/vm.conf`);
    assert.equal(r.code, 1);
    assert.equal(r.stdout, "");
    const f = `${dir}/vm.conf`;
    const fix = "fix the path in vm.conf or put the file there";
    const none = "does not exist on this host; create it or fix vm.conf";
    assert.deepEqual(r.stderr.trimEnd().split("\n"), [
      `${f}:2:7: kernel ${dir}/nokernel of vm "a" does not exist; ${fix}`,
      `${f}:2:27: initrd ${dir}/noinitrd of vm "a" does not exist; ${fix}`,
      `${f}:3:7: disk ${dir}/adir of vm "a" is a directory, not a file; ${fix}`,
      `${f}:4:8: cdrom /no/such.iso of vm "a" does not exist; ${fix}`,
      `${f}:5:8: user "nosuchuser9" (owner of vm "a") ${none}`,
      `${f}:5:8: group "nosuchgroup9" (owner of vm "a") ${none}`,
      `${f}:9:25: group "nosuchgroup8" (allow instance owner of vm "b") ${none}`,
      `${f}:11:14: user "nosuchuser7" (socket owner) ${none}`,
    ]);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("vmd -n: the manual's example fails here as on OpenBSD (no /bsd.rd, no user joe)", async () => {
  const r = await vmd("-n", "-f", "valid/manpage.conf");
  assert.equal(r.code, 1);
  assert.match(
    r.stderr,
    /^valid\/manpage\.conf:5:7: kernel \/bsd\.rd of vm "vm1\.example\.com" does not exist;/,
  );
  assert.match(
    r.stderr,
    /\nvalid\/manpage\.conf:12:8: user "joe" \(owner of vm "vm2\.example\.com"\) does not/,
  );
  assert.ok(!r.stderr.includes("configuration OK"));
});

Deno.test("vmd -n -v prints the resolved configuration (macros expanded, defaults filled in)", async () => {
  const r = await vmd("-n", "-v", "-f", "valid/linux.conf");
  assert.equal(r.stdout, Deno.readTextFileSync(`${FIXTURES}/valid/linux.expected`));
  // printed once the file is valid, even though this host has none of its kernels, disks and users
  assert.equal(r.code, 1);
  assert.match(r.stderr, /^valid\/linux\.conf:10:7: kernel \/boot\/vmlinuz of vm "web" /);
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
    `kernel=${ROOT}cli.ts`,
    "-D",
    "spare=1",
    "-f",
    "broken/undefined_macro.conf",
  );
  assert.equal(r.code, 0);
  assert.ok(r.stdout.includes(`\n\tboot "${ROOT}cli.ts"\n`));
  assert.equal(r.stderr, 'vmd: warning: macro "spare" given with -D is not used\nconfiguration OK\n');
  const o = await vmd("-n", "-v", "-D", "snapshots=/mirror/", "-f", "valid/openbsd_style.conf");
  assert.equal(o.code, 1); // no /mirror here
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

Deno.test("vmd -n: includes on disk nest relative to each file; a loop through a symlink stops at the depth limit", async () => {
  const dir = Deno.makeTempDirSync({ prefix: "vmd-n-include-" });
  try {
    Deno.mkdirSync(`${dir}/vm.d/sub`, { recursive: true });
    Deno.writeTextFileSync(`${dir}/kernel`, "k");
    Deno.writeTextFileSync(`${dir}/vm.conf`, 'include "vm.d/a.conf"\n');
    Deno.writeTextFileSync(`${dir}/vm.d/a.conf`, 'include "sub/b.conf"\nvm "a" {\n\tboot $k\n}\n');
    Deno.writeTextFileSync(`${dir}/vm.d/sub/b.conf`, `k = "${dir}/kernel"\n`);
    assert.deepEqual(await vmd("-n", "-f", `${dir}/vm.conf`), {
      code: 0,
      stdout: "",
      stderr: "configuration OK\n",
    });
    // loop.conf includes link/loop.conf, where link is a symlink to its own folder: every level is a new
    // path (link/loop.conf, link/link/loop.conf, ...) to the same file, which only the depth limit stops
    Deno.writeTextFileSync(`${dir}/loop.conf`, '# a loop\ninclude "link/loop.conf"\n');
    Deno.symlinkSync(".", `${dir}/link`);
    const r = await vmd("-n", "-f", `${dir}/loop.conf`);
    assert.equal(r.code, 1);
    assert.equal(r.stdout, "");
    const level = (n: number) => `${dir}/${"link/".repeat(n)}loop.conf`;
    assert.equal(
      r.stderr,
      `${level(16)}:2:9: includes nested more than 16 deep (${level(0)} -> ... -> ${level(16)} -> ${
        level(17)
      }); ` +
        "include these files from fewer levels (a loop through a link or another spelling of a path ends here)\n",
    );
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});
