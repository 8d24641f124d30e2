/**
 * vmctl's command line as vmctl(8)'s users know it, checked through the real program (`cli.ts vmctl ...` as
 * a subprocess) where it fails before reaching any daemon, and through the parsing functions themselves:
 * usage and help, `-v`, messages in the command line's words (no option-parser or wire-format text),
 * options refused when repeated, sizes and counts as upstream reads them, relative paths made absolute in
 * vmctl's own working directory.
 */
import assert from "node:assert/strict";
import { getopt } from "../src/cli/getopt.ts";
import { absolutePath, logLevel, memoryArg, resetWhat, VmctlUsageError } from "../src/vmctl/commands.ts";

const cli = new URL("../cli.ts", import.meta.url).pathname;

/** vmctl against a socket nobody serves: anything that reaches the daemon says it cannot reach vmd. */
async function vmctl(...args: string[]) {
  const dir = await Deno.makeTempDir({ prefix: "vmctl-cli-" });
  try {
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", cli, "vmctl", ...args],
      env: { VMD_SOCKET: `${dir}/none.sock` },
      stdout: "piped",
      stderr: "piped",
    }).output();
    const d = new TextDecoder();
    return { code: out.code, stdout: d.decode(out.stdout), stderr: d.decode(out.stderr) };
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

const PARSER_TEXT = /To specify a positional|argument missing|Unknown option|field "|must be an integer from/;

Deno.test("vmctl help, -h and --help print every command's usage and exit 0; -v is accepted", async () => {
  for (const h of ["help", "-h", "--help"]) {
    const r = await vmctl(h);
    assert.equal(r.code, 0, `vmctl ${h}: ${r.stderr}`);
    assert.match(r.stderr, /^usage: vmctl \[-v\] command \[arg \.\.\.\]\n/);
    assert.match(r.stderr, /vmctl start \[-cL\]/);
    assert.match(r.stderr, /vmctl create \[-b base \| -i disk\] \[-s size\] disk/);
  }
  const none = await vmctl();
  assert.equal(none.code, 1);
  assert.match(none.stderr, /^usage: vmctl/);
  // -v comes before the command, as in vmctl(8)'s usage line; the command then runs (and here finds no vmd)
  const v = await vmctl("-v", "status");
  assert.equal(v.code, 1);
  assert.match(v.stderr, /^vmctl: cannot reach vmd at .*none\.sock: is vmd running\?/);
});

Deno.test("vmctl start: mistakes are named in the command line's words, before any daemon is asked", async () => {
  const cases: [string[], RegExp][] = [
    [["start", "-x", "vm"], /^vmctl: unknown option -x\nusage: vmctl start /],
    [["start", "-m"], /^vmctl: option -m needs a value\n/],
    [["start", "-m", "1G", "-m", "2G", "vm"], /^vmctl: memory specified multiple times\n/],
    [["start", "-b", "/k", "-b", "/k2", "vm"], /^vmctl: boot image specified multiple times\n/],
    [["start", "-i", "1", "-i", "2", "vm"], /^vmctl: interfaces specified multiple times\n/],
    [["start", "-i", "0", "vm"], /^vmctl: invalid interface count: 0 \(at least 1\)\n/],
    [["start", "-i", "two", "vm"], /^vmctl: invalid interface count: two/],
    [["start", "-L", "-L", "-L", "-n", "a", "-n", "b", "vm"], /^vmctl: too many network interfaces/],
    [["start", "-m", "512K", "vm"], /^vmctl: memory size must be at least 1MB/],
    [["start", "-m", "300G", "-b", "/k", "vm"], /^vmctl: memory size too large: 300G \(limit is 128G\)/],
    [["start", "-m", "lots", "vm"], /^vmctl: invalid memory size: lots/],
    [["start", "--cpus", "0", "vm"], /^vmctl: invalid cpu count: 0/],
    [["start", "-d", "a", "-d", "b", "-d", "c", "-d", "d", "-d", "e", "vm"], /^vmctl: too many disks/],
    [["start", "-b", "/k", "bad name"], /^vmctl: .*name/],
    [["log", "loud"], /^vmctl: unknown log level: loud \(brief or verbose\)\nusage: vmctl log/],
    [["reset", "everything"], /^vmctl: unknown reset mode: everything/],
    [["stop"], /^vmctl: give either -a or one id\nusage: vmctl stop/],
    [["status", "a", "b"], /^vmctl: wrong number of arguments\nusage: vmctl status/],
  ];
  for (const [args, re] of cases) {
    const r = await vmctl(...args);
    assert.equal(r.code, 1, `vmctl ${args.join(" ")}`);
    assert.match(r.stderr, re, `vmctl ${args.join(" ")}`);
    assert.doesNotMatch(r.stderr, PARSER_TEXT, `vmctl ${args.join(" ")}`);
    assert.doesNotMatch(r.stderr, /cannot reach vmd/, `vmctl ${args.join(" ")} must not need the daemon`);
  }
});

Deno.test("vmctl's parsing: sizes round down with a warning, log/reset words in any case, paths from the cwd", () => {
  const warned: string[] = [];
  assert.equal(memoryArg("1.5M", (l) => warned.push(l)), 1 << 20);
  assert.equal(memoryArg("64m", (l) => warned.push(l)), 64 << 20);
  assert.deepEqual(warned, ["vmctl: memory size rounded to 1M"]);
  assert.throws(() => memoryArg("1048575"), VmctlUsageError);
  assert.equal(logLevel("VERBOSE"), "verbose");
  assert.equal(logLevel("b"), "brief");
  assert.equal(logLevel("Verb"), "verbose");
  assert.throws(() => logLevel(""), /unknown log level/);
  assert.equal(resetWhat("VMs"), "vms");
  assert.equal(resetWhat("ALL"), "all");
  assert.equal(resetWhat(undefined), "all");
  assert.equal(absolutePath("bsd", "-b", "/home/u/vms"), "/home/u/vms/bsd");
  assert.equal(absolutePath("../img/d.qcow2", "-d", "/home/u/vms"), "/home/u/img/d.qcow2");
  assert.equal(absolutePath("qcow2:d.img", "-d", "/home/u"), "qcow2:/home/u/d.img");
  assert.equal(absolutePath("raw:/abs/d", "-d", "/home/u"), "raw:/abs/d");
  assert.throws(() => absolutePath("", "-b", "/"), /empty path/);
});

Deno.test("getopt reads clusters, attached and separate values, long options and operands as getopt_long", () => {
  const opts = {
    console: { type: "boolean", short: "c" },
    local: { type: "boolean", short: "L", multiple: true },
    memory: { type: "string", short: "m" },
    disk: { type: "string", short: "d", multiple: true },
    cmdline: { type: "string" },
  } as const;
  const r = getopt(
    ["-cLm1G", "vm1", "-d", "a.img", "--disk=b.img", "--cmdline", "-x y", "-L", "-", "--", "-m"],
    opts,
    true,
  );
  assert.deepEqual(r.values, {
    console: true,
    local: [true, true],
    memory: "1G",
    disk: ["a.img", "b.img"],
    cmdline: "-x y",
  });
  assert.deepEqual(r.positionals, ["vm1", "-", "-m"]);
  assert.deepEqual(getopt(["-m", "-c"], opts).values, { memory: "-c" }, "a value may start with a dash");
  assert.deepEqual(getopt([], opts), { values: {}, positionals: [] });
  assert.deepEqual(getopt(["--memory=", "--"], opts).values, { memory: "" });
  const problem = (args: string[], positionals = false) => {
    try {
      getopt(args, opts, positionals);
      return null;
    } catch (e) {
      return (e as Error).message;
    }
  };
  assert.equal(problem(["-x"]), "unknown option -x");
  assert.equal(problem(["-cx"]), "unknown option -x");
  assert.equal(problem(["--mem", "1G"]), "unknown option --mem");
  assert.equal(problem(["--constructor"]), "unknown option --constructor", "only the options' own names");
  assert.equal(problem(["-m"]), "option -m needs a value");
  assert.equal(problem(["-cm"]), "option -m needs a value");
  assert.equal(problem(["--memory"]), "option --memory needs a value");
  assert.equal(problem(["--console=1"]), "option --console takes no value");
  assert.equal(problem(["word"]), "unexpected argument word");
  assert.equal(problem(["--", "-c"]), "unexpected argument -c");
  assert.equal(problem(["word"], true), null);
});

Deno.test("getopt spots options marked once given twice, as getopt users expect", () => {
  const options = {
    console: { type: "boolean", short: "c" },
    memory: { type: "string", short: "m", once: "memory" },
    boot: { type: "string", short: "b", once: "boot image" },
  } as const;
  const repeated = (args: string[]) => {
    try {
      getopt(args, options, true);
      return null;
    } catch (e) {
      return (e as Error).message;
    }
  };
  assert.equal(repeated(["-m", "1G", "--memory", "2G"]), "memory specified multiple times");
  assert.equal(repeated(["-cm1G", "-m2G"]), "memory specified multiple times");
  // a value that looks like the option is a value, not a repeat
  assert.equal(repeated(["-b", "-m", "-m", "1G"]), null);
  assert.equal(repeated(["-m", "1G", "--", "-m"]), null);
});
