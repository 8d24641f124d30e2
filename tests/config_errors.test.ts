import assert from "node:assert/strict";
import { ConfigError } from "../src/config/config_error.ts";
import { formatDiagnostic } from "../src/config/diagnostic.ts";
import { mapReader } from "../src/config/file_reader.ts";
import { checkConfig, checkConfigFile, loadConfig } from "../src/config/load.ts";
import { runConfigCheck } from "../src/config/check_command.ts";
import { checkFixture } from "./config_fixtures.ts";

function messages(name: string): string[] {
  const r = checkFixture(`broken/${name}.conf`);
  assert.equal(r.ok, false);
  return r.diagnostics.map(formatDiagnostic);
}

const MEMROY = 'unknown vm option "memroy" in vm "a"; did you mean "memory"?';
const SIZE_1Q = 'invalid memory size "1Q": expected a number with an optional unit B, K, M, G, T, P or E';
const LLADDR =
  'invalid lladdr "fe:e1:ba:d0:00": expected six hex bytes separated by colons, e.g. fe:e1:ba:d0:00:01';
const KERNEL =
  'macro "kernel" is not defined: define it before this line (kernel = "value") or with -D kernel=value';
const LONG = "a-very-long-virtual-machine-name-that-goes-on-and-on-and-on-and-on";

Deno.test("broken corpus: each file gives its exact file:line:col and message", () => {
  const cases: [string, string[]][] = [
    ["unknown_keyword", [`broken/unknown_keyword.conf:2:2: ${MEMROY}`]],
    ["missing_brace", [
      'broken/missing_brace.conf:1:8: vm "a": this "{" is not closed before line 4; add "}"',
    ]],
    ["bad_size", [`broken/bad_size.conf:2:9: ${SIZE_1Q}`]],
    ["duplicate_vm", [
      'broken/duplicate_vm.conf:4:4: vm "a" is already defined at broken/duplicate_vm.conf:1:4',
    ]],
    ["undefined_macro", [`broken/undefined_macro.conf:2:7: ${KERNEL}`]],
    ["include_loop", [
      "broken/include_loop_b.conf:1:9: include loop: broken/include_loop.conf -> broken/include_loop_b.conf -> " +
      "broken/include_loop.conf; remove one of these includes",
    ]],
    ["too_many_disks", ['broken/too_many_disks.conf:6:2: too many disks: vm "a" already has 4, the maximum']],
    ["bad_lladdr", [`broken/bad_lladdr.conf:2:21: ${LLADDR}`]],
    ["name_too_long", [
      `broken/name_too_long.conf:1:4: vm name "${LONG}" is too long (66 characters; at most 63)`,
    ]],
  ];
  for (const [name, expected] of cases) assert.deepEqual(messages(name), expected, name);
});

Deno.test("broken corpus: every error of a file is reported in one run, in order", () => {
  const f = "broken/everything.conf";
  assert.deepEqual(messages("everything"), [
    `${f}:3:2: ${MEMROY}`,
    `${f}:4:9: ${SIZE_1Q}`,
    `${f}:9:2: too many disks: vm "a" already has 4, the maximum`,
    `${f}:10:21: ${LLADDR}`,
    `${f}:11:7: ${KERNEL}`,
    `${f}:13:4: vm "a" is already defined at ${f}:2:4`,
    `${f}:14:2: sev is not supported on this platform (AMD SEV guests need KVM_SEV, which vmd does not ` +
    "implement); remove this line",
    `${f}:16:4: vm name "${LONG}" is too long (66 characters; at most 63)`,
    `${f}:20:1: unknown statement "frobnicate"; expected vm, switch, include, local, socket, staggered, agentx, pool ` +
    'or a macro definition (name = "value")',
    `${f}:21:8: vm "b": this "{" is not closed before line 24; add "}"`,
    `${f}:25:9: memory size must be at least 1M ("0.5M" is 524288 bytes)`,
    "broken/include_loop_b.conf:1:9: include loop: broken/everything.conf -> broken/include_loop.conf -> " +
    "broken/include_loop_b.conf -> broken/include_loop.conf; remove one of these includes",
    `broken/include_loop.conf:1:4: vm "a" is already defined at ${f}:2:4`,
  ]);
});

function errs(text: string, files: Record<string, string> = {}): string[] {
  return checkConfig("t.conf", text, { reader: mapReader(files) }).diagnostics.map(formatDiagnostic);
}

Deno.test("more errors: lexical, syntax and limits, with positions", () => {
  const cases: [string, string[]][] = [
    ['vm "a" {\n\tdisk "/x\n}\n', [
      't.conf:1:8: vm "a": this "{" is never closed; add "}" at the end of the block',
      't.conf:2:7: unterminated quoted string: add the closing "',
    ]],
    ['vm "a" { memory 99999999999999999999 }\n', [
      't.conf:1:17: "99999999999999999999" is not a valid number: too large',
    ]],
    ["}\n", ['t.conf:1:1: unexpected "}": no block is open here']],
    ['vm "a" { interfaces 5 }\n', ["t.conf:1:21: too many interfaces: 5 (a vm has at most 4)"]],
    ['vm "a" {\n interface\n interface\n interface\n interface\n interface\n}\n', [
      't.conf:6:2: too many interfaces: vm "a" already has 4, the maximum',
    ]],
    ['vm "a" { memory 1G\nmemory 2G }\n', [
      "t.conf:2:1: memory specified more than once (first at t.conf:1:10); remove one",
    ]],
    ['vm "a" { boot "/a"\nboot "/b" }\n', [
      "t.conf:2:1: boot kernel specified more than once (first at t.conf:1:10); remove one",
    ]],
    ['vm "-a" { }\n', [
      "t.conf:1:4: invalid vm name \"-a\": use letters, digits, '.', '-' and '_', starting with a letter or digit",
    ]],
    ['vm "b" instance "c" { }\n', [
      't.conf:1:4: vm "c" is an instance of "b", which is not defined before it',
    ]],
    ['vm "a" { disk 42 }\n', [
      't.conf:1:15: disk: expected a name or path in quotes, got number 42 (quote it: "42")',
    ]],
    ['vm "a" { disk memory }\n', [
      't.conf:1:15: disk: expected a name or path in quotes, got keyword "memory" (it is a keyword; quote it to use it as a name: "memory")',
    ]],
    ['vm "a" { boot device floppy }\n', [
      't.conf:1:22: boot device: expected cdrom, disk or net, got "floppy"',
    ]],
    ['vm "a" { cpus 0 }\n', ["t.conf:1:15: invalid cpus 0: it must be from 1 to 64"]],
    ['vm "a" { seves }\n', [
      "t.conf:1:10: seves is not supported on this platform (AMD SEV guests need KVM_SEV, which vmd does not implement); remove this line",
    ]],
    ['vm "a" { interface { rdomain 256 } }\n', [
      "t.conf:1:30: invalid rdomain 256: it must be from 0 to 255",
    ]],
    ['vm "a" { interface "a-very-long-tap-name" }\n', [
      't.conf:1:20: invalid interface name "a-very-long-tap-name": it must have 1 to 15 characters',
    ]],
    ['switch "s" { interface br0\n group "grp1" }\n', [
      't.conf:2:8: invalid group name "grp1": it must not end with a digit',
    ]],
    ['switch "s" { up }\n', [
      't.conf:1:1: switch "s" is missing an interface: add "interface bridge0" (the host bridge to attach VMs to)',
    ]],
    ['switch "s" { interface br0 }\nswitch "s" { interface br1 }\n', [
      't.conf:2:8: switch "s" is already defined at t.conf:1:8',
    ]],
    ["local prefix 10.0.0.1/16\n", [
      't.conf:1:14: invalid local prefix "10.0.0.1/16": host bits are set outside the /16 mask',
    ]],
    ["local prefix 10.0.0.0/24\n", [
      't.conf:1:14: invalid local prefix "10.0.0.0/24": the prefix length must be a number from 1 to 16',
    ]],
    ["local inet6 prefix fd00::/96\n", [
      't.conf:1:20: invalid local inet6 prefix "fd00::/96": the prefix length must be a number from 0 to 64',
    ]],
    ["socket owner :\n", ['t.conf:1:14: empty owner ":": give user, user:group or :group']],
    ["staggered start parallel 0 delay 5\n", [
      "t.conf:1:26: staggered start parallel must be at least 1, not 0",
    ]],
    ['agentx path "rel"\n', ['t.conf:1:13: agentx path "rel" is not absolute']],
    ["local\n", [
      't.conf:1:6: local: expected "prefix" or "inet6", got end of line ("local interface" belongs in a vm block)',
    ]],
    ['vm "a" { boot "/k" { initrd "/i" initrd "/j" } }\n', [
      "t.conf:1:34: initrd specified more than once (first at t.conf:1:22); remove one",
    ]],
    ['vm "a" { boot "/k" { append "x" } }\n', [
      't.conf:1:22: unknown boot option "append"; expected one of: initrd, cmdline',
    ]],
    ['include "x.conf"\n', ['t.conf:1:9: cannot include "x.conf": no such file']],
    ["$\n", [
      "t.conf:1:1: '$' must be followed by a macro name (letters, digits, underscores); quote a literal $",
    ]],
  ];
  const failures = cases.filter(([text, expected]) =>
    JSON.stringify(errs(text)) !== JSON.stringify(expected)
  );
  assert.deepEqual(failures.map(([text]) => [text, errs(text)]), []);
});

Deno.test("warnings do not fail the check: undefined switch", () => {
  const r = checkConfig("t.conf", 'vm "a" { interface { switch "nope" } }\n', { reader: mapReader({}) });
  assert.equal(r.ok, true);
  assert.deepEqual(r.diagnostics.map(formatDiagnostic), [
    't.conf:1:29: warning: switch "nope" is not defined; this interface will not be attached',
  ]);
});

Deno.test("loadConfig throws a ConfigError that carries every diagnostic", () => {
  let caught: unknown = null;
  try {
    loadConfig("t.conf", 'vm "a" { memroy 1G }\nvm "a" { }\n', { reader: mapReader({}) });
  } catch (e) {
    caught = e;
  }
  assert.ok(caught instanceof ConfigError);
  assert.equal(caught.diagnostics.length, 2);
  assert.equal(
    caught.message,
    "configuration has 2 errors:\n" +
      `t.conf:1:10: ${MEMROY}\n` +
      't.conf:2:4: vm "a" is already defined at t.conf:1:4',
  );
  const config = loadConfig("t.conf", 'vm "a" { }\n', { reader: mapReader({}) });
  assert.deepEqual(config.vms.map((v) => v.name), ["a"]);
});

Deno.test("recovery: one error per broken line, blank lines and same-line keywords handled", () => {
  assert.deepEqual(errs('vm "a" {\n\tmemroy 1G\n\n\n\tdisk "/a" 5\n\tmemory 1G\n}\n'), [
    `t.conf:2:2: ${MEMROY}`,
    't.conf:5:12: vm "a": unexpected number 5; put each option on its own line',
  ]);
  assert.deepEqual(errs('vm "a" { include "x" }\n'), [
    't.conf:1:10: unknown vm option "include" in vm "a"; expected one of: allow, boot, cdrom, cpus, disable, ' +
    "disk, enable, interface, interfaces, local, memory, owner, sev, seves",
  ]);
  assert.deepEqual(errs('vm "a" {\n\tinterface {\n\t\tswitch "s"\nvm "b" { }\n'), [
    't.conf:1:8: vm "a": this "{" is not closed before line 4; add "}"',
    't.conf:2:12: interface: this "{" is not closed before line 4; add "}"',
    't.conf:3:10: warning: switch "s" is not defined; this interface will not be attached',
  ]);
});

Deno.test("checkConfigFile reads the main file through the reader; an unreadable one is an error", () => {
  const reader = mapReader({ "/etc/vm.conf": 'vm "a" { memory 1G }\n' });
  assert.deepEqual(checkConfigFile("/etc/vm.conf", { reader }).config.vms.map((v) => v.memoryBytes), [
    1 << 30,
  ]);
  const r = checkConfigFile("/etc/none.conf", { reader });
  assert.equal(r.ok, false);
  assert.deepEqual(r.diagnostics.map(formatDiagnostic), ["vmd: cannot read /etc/none.conf: no such file"]);
});

Deno.test("runConfigCheck: a missing default /etc/vm.conf is an empty configuration, as in vmd", () => {
  const out: string[] = [];
  const err: string[] = [];
  const code = runConfigCheck({
    reader: mapReader({}),
    verbose: true,
    out: (s) => out.push(s),
    err: (s) => err.push(s),
  });
  assert.equal(code, 0);
  assert.deepEqual(err, [
    "vmd: /etc/vm.conf: no such file; using an empty configuration",
    "configuration OK",
  ]);
  assert.deepEqual(out, [
    "# vmd: resolved configuration (macros expanded, includes inlined, defaults filled in)\n" +
    'local prefix 100.64.0.0/10\nsocket owner "0:0"',
  ]);
});

Deno.test("warnings: a disk image used twice", () => {
  assert.deepEqual(errs('vm "a" { disk "/d.img"\ndisk "/d.img" }\nvm "b" { disk "/x/../d.img" }\n'), [
    't.conf:1:1: warning: disk "/d.img" is used by vm "a" twice; two writers corrupt an image',
    't.conf:3:1: warning: disk "/d.img" is used by vm "b" and by vm "a"; two writers corrupt an image',
  ]);
});

Deno.test("include depth: a file including itself is a loop at its own line; 16 levels nest, a 17th does not", () => {
  // itself, by any spelling of its path
  for (const spelling of ["t.conf", "./t.conf", "sub/../t.conf"]) {
    assert.deepEqual(errs(`vm "a" { memory 1G }\ninclude "${spelling}"\n`), [
      "t.conf:2:9: include loop: t.conf -> t.conf; remove one of these includes",
    ], spelling);
  }
  // n0.conf includes n1.conf, ..., each one level deeper; t.conf includes n0.conf
  const chain = (levels: number): Record<string, string> => {
    const files: Record<string, string> = {};
    for (let i = 0; i < levels; i++) {
      files[`n${i}.conf`] = i + 1 < levels ? `include "n${i + 1}.conf"\n` : 'vm "deep" { memory 1G }\n';
    }
    return files;
  };
  const sixteen = checkConfig("t.conf", 'include "n0.conf"\n', { reader: mapReader(chain(16)) });
  assert.deepEqual(sixteen.diagnostics, []);
  assert.equal(sixteen.config.vms[0].name, "deep");
  assert.deepEqual(errs('include "n0.conf"\n', chain(17)), [
    "n15.conf:1:9: includes nested more than 16 deep (t.conf -> ... -> n15.conf -> n16.conf); include these " +
    "files from fewer levels (a loop through a link or another spelling of a path ends here)",
  ]);
});
