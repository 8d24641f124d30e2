import assert from "node:assert/strict";
import { checkConfig, type CheckOptions } from "../src/config/load.ts";
import { mapReader } from "../src/config/file_reader.ts";
import { formatDiagnostic } from "../src/config/diagnostic.ts";
import { printConfig } from "../src/config/printer.ts";
import type { VmConfig } from "../src/config/types.ts";
import { defaultInterface } from "../src/config/validate_vm.ts";
import { checkFixture, FIXTURES } from "./config_fixtures.ts";

const noFiles: CheckOptions = { reader: mapReader({}) };
const MIB = 1024 * 1024;

function ok(text: string, options: CheckOptions = noFiles) {
  const r = checkConfig("t.conf", text, options);
  assert.deepEqual(r.diagnostics.filter((d) => d.severity === "error").map(formatDiagnostic), []);
  return r;
}

function errors(text: string, options: CheckOptions = noFiles): string[] {
  return checkConfig("t.conf", text, options).diagnostics.map(formatDiagnostic);
}

const NO_ALLOW = {
  boot: false,
  memory: false,
  interface: false,
  disk: false,
  cdrom: false,
  instance: false,
  owner: null,
};

Deno.test("vm.conf(5) examples resolve to the exact expected structure", () => {
  const r = checkFixture("valid/manpage.conf");
  assert.deepEqual(r.diagnostics, []);
  const f = "valid/manpage.conf";
  const uplink = { ...defaultInterface(), switch: "uplink" };
  const vm2: VmConfig = {
    name: "vm2.example.com",
    instanceOf: null,
    enabled: true,
    memoryBytes: 1024 * MIB,
    cpus: 1,
    boot: { kind: "bios" },
    bootDevice: "default",
    cdrom: null,
    disks: [{ path: "/home/joe/vm2-disk.img", format: "auto" }],
    interfaces: [uplink],
    owner: { user: { kind: "name", name: "joe" }, group: null },
    allowInstance: NO_ALLOW,
    pos: { file: f, line: 8, col: 1 },
  };
  assert.deepEqual(r.config, {
    global: {
      localPrefix: { address: "100.64.0.0", length: 10 },
      localInet6: { kind: "disabled" },
      socketOwner: { user: { kind: "id", id: 0 }, group: { kind: "id", id: 0 } },
      staggeredStart: { kind: "off" },
      agentx: { kind: "off" },
      poolSize: 1,
    },
    switches: [{
      name: "uplink",
      enabled: true,
      interface: "bridge0",
      group: null,
      lockedLladdr: false,
      rdomain: null,
      up: true,
      pos: { file: f, line: 19, col: 1 },
    }],
    vms: [
      {
        name: "vm1.example.com",
        instanceOf: null,
        enabled: true,
        memoryBytes: 512 * MIB,
        cpus: 1,
        boot: { kind: "kernel", path: "/bsd.rd", initrd: null, cmdline: null },
        bootDevice: "default",
        cdrom: null,
        disks: [],
        interfaces: [],
        owner: null,
        allowInstance: NO_ALLOW,
        pos: { file: f, line: 3, col: 1 },
      },
      vm2,
      {
        ...vm2,
        name: "vm3.example.com",
        instanceOf: "vm2.example.com",
        disks: [{ path: "/home/joe/vm3-disk.img", format: "auto" }],
        pos: { file: f, line: 15, col: 1 },
      },
    ],
  });
});

Deno.test("the valid corpus prints exactly the expected resolved configuration", () => {
  for (const name of ["manpage", "openbsd_style", "linux", "globals", "hosting"]) {
    const r = checkFixture(`valid/${name}.conf`);
    assert.equal(r.ok, true, `${name}: ${r.diagnostics.map(formatDiagnostic).join("\n")}`);
    const expected = Deno.readTextFileSync(`${FIXTURES}/valid/${name}.expected`);
    assert.equal(printConfig(r.config), expected, name);
  }
});

Deno.test("Linux extensions: cpus, boot { initrd cmdline }, with includes and macros", () => {
  const r = checkFixture("valid/linux.conf");
  const web = r.config.vms[0];
  assert.equal(web.cpus, 2);
  assert.deepEqual(web.boot, {
    kind: "kernel",
    path: "/boot/vmlinuz",
    initrd: "/boot/initrd.img",
    cmdline: "console=ttyS0 reboot=k",
  });
  assert.deepEqual(web.disks, [
    { path: "/var/vm/web.qcow2", format: "qcow2" },
    { path: "valid/data/web-data.img", format: "raw" },
  ]);
  assert.deepEqual(web.interfaces.map((i) => [i.local, i.name, i.switch, i.lladdr, i.locked, i.group]), [
    [true, { kind: "auto" }, null, { kind: "random" }, false, null],
    [
      false,
      { kind: "named", name: "tap7" },
      "lan",
      { kind: "fixed", address: "fe:e1:ba:d0:00:07" },
      true,
      "webs",
    ],
    [false, { kind: "auto" }, null, { kind: "random" }, false, null],
  ]);
  assert.deepEqual(web.allowInstance, {
    ...NO_ALLOW,
    memory: true,
    disk: true,
    owner: { user: null, group: { kind: "name", name: "staff" } },
  });
  assert.deepEqual(
    r.config.switches.map((s) => [s.name, s.enabled, s.interface, s.rdomain, s.up, s.pos.file]),
    [
      ["lan", true, "br0", 3, true, "valid/linux_switches.conf"],
      ["spare", false, "br9", null, false, "valid/linux_switches.conf"],
    ],
  );
  const web2 = r.config.vms[1];
  assert.equal(web2.instanceOf, "web");
  assert.equal(web2.memoryBytes, 1536 * MIB);
  assert.equal(web2.cpus, 2);
  const builder = r.config.vms[2];
  assert.deepEqual([builder.enabled, builder.memoryBytes, builder.bootDevice, builder.cdrom], [
    false,
    4096 * MIB,
    "cdrom",
    "/iso/debian.iso",
  ]);
});

Deno.test("extension words are not reserved: OpenBSD files using them as names still parse", () => {
  const r = ok('cpus = "x"\ninitrd = "/i"\nvm cpus { boot $initrd }\nvm cmdline { disk $cpus }\n');
  assert.deepEqual(r.config.vms.map((v) => v.name), ["cpus", "cmdline"]);
  assert.deepEqual(r.config.vms[0].boot, { kind: "kernel", path: "/i", initrd: null, cmdline: null });
});

Deno.test("global options and their defaults", () => {
  const r = checkFixture("valid/globals.conf");
  assert.deepEqual(r.config.global, {
    localPrefix: { address: "10.200.0.0", length: 16 },
    localInet6: { kind: "prefix", prefix: { address: "fd00:1234:5678::", length: 48 } },
    socketOwner: { user: { kind: "name", name: "root" }, group: { kind: "name", name: "vmusers" } },
    staggeredStart: { kind: "on", parallel: 4, delaySeconds: 15 },
    agentx: { kind: "on", context: "vmd", path: "/var/agentx/master" },
    poolSize: 3,
  });
  assert.deepEqual(r.diagnostics.map(formatDiagnostic), [
    "valid/globals.conf:6:1: warning: agentx is not supported by this vmd: the setting is accepted and ignored",
  ]);
  assert.deepEqual(ok("local inet6\n").config.global.localInet6, { kind: "auto" });
  assert.deepEqual(ok("socket owner :wheel\n").config.global.socketOwner, {
    user: { kind: "id", id: 0 },
    group: { kind: "name", name: "wheel" },
  });
});

Deno.test("pool size: 0 to 16, not a reserved word (a macro or VM may be called pool)", () => {
  assert.equal(ok("pool size 0\n").config.global.poolSize, 0);
  assert.equal(ok("pool size 16\n").config.global.poolSize, 16);
  assert.equal(ok("").config.global.poolSize, 1);
  const bad = checkConfig("t.conf", "pool size 17\n", noFiles);
  assert.deepEqual(bad.diagnostics.map(formatDiagnostic), [
    "t.conf:1:11: pool size must be 0 to 16, not 17",
  ]);
  const named = ok('pool = "p"\nvm $pool { memory 64M }\nvm pool { memory 64M }\n');
  assert.deepEqual(named.config.vms.map((v) => v.name), ["p", "pool"]);
});

Deno.test("macros: expansion outside quotes only, -D overrides, unused warnings", () => {
  const text = 'mem = "1G"\nname = "x"\nvm "a" { memory $mem\n disk "/vm/$name.img" }\nunused = "1"\n';
  const r = checkConfig("t.conf", text, noFiles);
  assert.equal(r.config.vms[0].memoryBytes, 1024 * MIB);
  assert.deepEqual(r.config.vms[0].disks, [{ path: "/vm/$name.img", format: "auto" }]);
  assert.deepEqual(r.diagnostics.map(formatDiagnostic), [
    't.conf:2:1: warning: macro "name" is defined but not used',
    't.conf:5:1: warning: macro "unused" is defined but not used',
  ]);
  const d = checkConfig("t.conf", 'mem = "1G"\nvm "a" { memory $mem }\n', {
    ...noFiles,
    defines: { mem: "2G", extra: "1" },
  });
  assert.equal(d.config.vms[0].memoryBytes, 2048 * MIB);
  assert.deepEqual(d.diagnostics.map(formatDiagnostic), [
    'vmd: warning: macro "extra" given with -D is not used',
  ]);
  assert.deepEqual(errors('vm = "x"\n'), [
    't.conf:1:1: "vm" is a reserved word and cannot be a macro name; pick another name',
  ]);
});

Deno.test("includes are resolved relative to the including file, through the reader only", () => {
  const reader = mapReader({
    "/etc/vm.d/a.conf": 'include "sub/b.conf"\nvm "a" { memory $m }\n',
    "/etc/vm.d/sub/b.conf": 'm = "3G"\n',
  });
  const r = checkConfig("/etc/vm.conf", 'include "vm.d/a.conf"\n', { reader });
  assert.deepEqual(r.diagnostics, []);
  assert.equal(r.config.vms[0].memoryBytes, 3072 * MIB);
  assert.deepEqual(r.config.vms[0].pos, { file: "/etc/vm.d/a.conf", line: 2, col: 1 });
});

Deno.test("quoting, line continuation, comments and string concatenation", () => {
  const r = ok(
    [
      "# comment",
      'vm "a" { # trailing comment',
      "\tmem\\",
      "ory 1\\",
      "G",
      '\tdisk "/with\\"quote" "/and more"',
      "\tdisk '/single quoted' format \"QCOW2\"",
      "}",
      "",
    ].join("\n"),
  );
  const vm = r.config.vms[0];
  assert.equal(vm.memoryBytes, 1024 * MIB);
  assert.deepEqual(vm.disks, [
    { path: '/with"quote/and more', format: "auto" },
    { path: "/single quoted", format: "qcow2" },
  ]);
});

Deno.test("interface options: block, inline with commas, locked lladdr without address", () => {
  const r = ok(
    'vm "a" {\n\tinterface tap1 switch "s" , locked lladdr, group "g" rdomain 7 down\n}\nswitch "s" { interface br0 }\n',
  );
  assert.deepEqual(r.config.vms[0].interfaces, [{
    local: false,
    name: { kind: "named", name: "tap1" },
    switch: "s",
    group: "g",
    lladdr: { kind: "random" },
    locked: true,
    rdomain: 7,
    up: false,
  }]);
});

Deno.test("memory: bytes, scan_scaled units, rounding down to megabytes, bounds", () => {
  const mem = (v: string) => ok(`vm "a" { memory ${v} }\n`).config.vms[0].memoryBytes;
  assert.equal(mem("1048576"), MIB);
  assert.equal(mem("2g"), 2048 * MIB);
  assert.equal(mem("1.5G"), 1536 * MIB);
  assert.equal(mem("1536k"), MIB);
  assert.equal(mem("128G"), 128 * 1024 * MIB);
  assert.deepEqual(errors('vm "a" { memory 129G }\n'), [
    "t.conf:1:17: memory size too large (limit is 128G)",
  ]);
  assert.deepEqual(errors('vm "a" { memory 512 }\n'), [
    "t.conf:1:17: memory size must be at least 1M: a plain number is bytes; add a unit, e.g. 512M",
  ]);
});

Deno.test("small forms: number macros, numeric owners, single allow instance flag, empty block", () => {
  const r = ok(
    'n = 2\nvm "a" {\n\tinterfaces $n\n\towner "1000:100"\n\tallow instance boot\n}\nvm "b" { }\n',
  );
  const [a, b] = r.config.vms;
  assert.equal(a.interfaces.length, 2);
  assert.deepEqual(a.owner, { user: { kind: "id", id: 1000 }, group: { kind: "id", id: 100 } });
  assert.deepEqual(a.allowInstance, { ...NO_ALLOW, boot: true });
  assert.deepEqual(ok("vm x { owner 1000 }\n").config.vms[0].owner, {
    user: { kind: "id", id: 1000 },
    group: null,
  });
  assert.equal(b.memoryBytes, 512 * MIB);
});

Deno.test("per-VM include files: positions name the included file; macros carry across includes", () => {
  const r = checkFixture("valid/hosting.conf");
  assert.deepEqual(r.diagnostics, []);
  assert.deepEqual(r.config.vms.map((v) => [v.name, v.instanceOf, v.enabled, v.pos.file, v.pos.line]), [
    ["template.debian", null, false, "valid/hosting.conf", 13],
    ["alice.example.net", "template.debian", true, "valid/hosting.d/alice.conf", 2],
    ["bob.example.net", null, true, "valid/hosting.d/bob.conf", 1],
  ]);
  assert.equal(r.config.vms[2].interfaces[0].switch, "uplink");
});
