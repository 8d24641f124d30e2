/**
 * The pieces of the daemon's limits without a daemon: the VM name rule, escaping of what is printed, status
 * pages that never outgrow a frame (read back over a real socket by vmctl's loop), the per-user limits, and
 * what `vmctl start -n` and `allow instance` let through.
 */
import assert from "node:assert/strict";
import { checkConfig, loadConfig } from "../src/config/load.ts";
import type { VmdConfig } from "../src/config/types.ts";
import { vmNameProblem } from "../src/config/validate_vm.ts";
import { fetchAllStatus } from "../src/vmctl/client.ts";
import { formatStatusTable } from "../src/vmctl/status_table.ts";
import { ControlServer } from "../src/vmd/control_server.ts";
import {
  DefinitionError,
  definitionFromConfig,
  instanceDefinition,
  nicsFromStart,
  peerOwner,
} from "../src/vmd/definitions.ts";
import { encodeFrame, MAX_FRAME_BYTES } from "../src/vmd/framing.ts";
import { printable } from "../src/vmd/printable.ts";
import { NO_START_OPTIONS, type StartOptions, type VmStatus } from "../src/vmd/protocol.ts";
import { statusPage } from "../src/vmd/status_page.ts";
import { UserDb } from "../src/vmd/user_db.ts";
import { checkRunLimits, roomForOneMore, UserLimitError } from "../src/vmd/user_limits.ts";
import type { VmDefinition } from "../src/vmd/vm_entry.ts";

const noFiles = () => ({ ok: false as const, reason: "no includes here" });
const config = (text: string): VmdConfig => loadConfig("t.conf", text, { reader: noFiles });

Deno.test("vm names: vm.conf's rule everywhere; digits only, control characters and 64 characters refused", () => {
  for (const ok of ["web", "web-1.a_b", "1web", "a".repeat(63)]) assert.equal(vmNameProblem(ok), null, ok);
  for (const bad of ["999", "0", "a\nb", "\x1b[2J", "", "-a", ".a", "a b", "a/b", "a".repeat(64)]) {
    const p = vmNameProblem(bad);
    assert.ok(p !== null, JSON.stringify(bad));
    // deno-lint-ignore no-control-regex
    assert.doesNotMatch(p, /[\x00-\x1f]/, "the reason itself prints safely");
  }
  assert.match(vmNameProblem("999")!, /digits only would read as a vm id/);
  const r = checkConfig("t.conf", 'vm "999" {\n}\n', { reader: noFiles });
  assert.equal(r.ok, false, "vm.conf refuses the same names");
  assert.match(r.diagnostics[0].message, /digits only/);
});

const ROW: VmStatus = {
  id: 1,
  name: "web",
  pid: 10,
  vcpus: 1,
  maxmem: 16 << 20,
  curmem: null,
  tty: "/dev/pts/1",
  owner: "alice",
  state: "running",
  restarts: 0,
  lastExit: null,
};

Deno.test("printing: control characters in rows and log text are escaped; a row is one line", () => {
  assert.equal(printable("a\nb\x1b[2J\u202e\x7f"), "a\\x0ab\\x1b[2J\\u{202e}\\x7f");
  assert.equal(printable("plain /path ünïcode"), "plain /path ünïcode");
  const table = formatStatusTable([
    { ...ROW, name: "x\n    2   999     1    16M       -   pts/9         root  running forged" },
    { ...ROW, id: 2, owner: "\x1b[2Jeve", tty: "/dev/pts/\r2" },
  ]);
  assert.equal(table.split("\n").length, 3, table);
  // deno-lint-ignore no-control-regex
  assert.doesNotMatch(table, /[\x00-\x09\x0b-\x1f]/);
});

function fakeEntries(n: number, lastExit: string | null) {
  return Array.from({ length: n }, (_, i) => ({
    id: i + 1,
    status: (): VmStatus => ({ ...ROW, id: i + 1, name: `vm${i + 1}`, lastExit }),
  }));
}

Deno.test("status pages: each fits a frame, every VM appears once and in order, whatever the rows hold", () => {
  for (const [n, lastExit] of [[3000, null], [200, "\x01".repeat(10_000)], [0, null]] as const) {
    const entries = fakeEntries(n, lastExit);
    const seen: number[] = [];
    let after = 0;
    for (let pages = 0; pages < 1000; pages++) {
      const page = statusPage(entries, after);
      assert.equal(page.type, "status");
      if (page.type !== "status") break;
      assert.ok(encodeFrame(page).length <= MAX_FRAME_BYTES + 4);
      seen.push(...page.vms.map((v) => v.id));
      if (page.next === null || page.next === undefined) break;
      after = page.next;
    }
    assert.deepEqual(seen, entries.map((e) => e.id), `${n} vms`);
  }
});

Deno.test("status pages: vmctl reads every page over the socket", async () => {
  const dir = await Deno.makeTempDir({ prefix: "vmd-pages-" });
  const entries = fakeEntries(2500, "guest wrote 16 to the exit port");
  const server = ControlServer.listen(
    `${dir}/s.sock`,
    (req) => Promise.resolve(req.type === "status" ? statusPage(entries, req.after ?? 0) : statusPage([], 0)),
    () => {},
  );
  try {
    const all = await fetchAllStatus(`${dir}/s.sock`);
    assert.ok(Array.isArray(all));
    assert.equal(all.length, 2500);
    assert.equal(all[2499].name, "vm2500");
  } finally {
    await server.close();
    await Deno.remove(dir, { recursive: true });
  }
});

const DEF: VmDefinition = {
  name: "x",
  kernel: "/k",
  bootDevice: null,
  initrd: null,
  cmdline: "",
  cpus: 2,
  memory: 2 * 2 ** 30,
  owner: { uid: 1000, gid: null, text: "u" },
  disks: [],
  cdrom: null,
  nics: [],
  localPrefix: "100.64.0.0/10",
  localInet6: null,
  fromConfig: false,
  enabled: false,
  namedBy: null,
  userPaths: [],
  allowInstance: null,
};

Deno.test("per-user limits: memory and vCPUs of running VMs, 8 listed, stopped ones make room; root unlimited", () => {
  const vm = (id: number, state: string, def: Partial<VmDefinition> = {}) => ({
    id,
    state,
    def: { ...DEF, ...def },
  });
  const running = [vm(1, "running"), vm(2, "running"), vm(3, "running")];
  checkRunLimits(running, 1000, DEF, null); // 8 GiB, 8 vCPUs
  assert.throws(() => checkRunLimits([...running, vm(4, "paused")], 1000, DEF, null), /at most 8 GiB/);
  assert.throws(() => checkRunLimits(running, 1000, { ...DEF, memory: 1 << 20, cpus: 11 }, null), /16 vCPUs/);
  checkRunLimits([...running, vm(4, "stopped")], 1000, DEF, null);
  checkRunLimits([...running, vm(4, "running", { fromConfig: true })], 1000, DEF, null);
  checkRunLimits(
    [...running, vm(4, "running", { owner: { uid: 7, gid: null, text: "o" } })],
    1000,
    DEF,
    null,
  );
  checkRunLimits([...running, vm(4, "running")], 0, DEF, null);
  const eight = Array.from({ length: 8 }, (_, i) => vm(i + 1, i === 2 || i === 5 ? "stopped" : "running"));
  assert.deepEqual(roomForOneMore(eight, 1000).map((e) => e.id), [3]);
  assert.deepEqual(roomForOneMore(eight.slice(0, 7), 1000), []);
  const busy = eight.map((e) => ({ ...e, state: "running" }));
  assert.throws(() => roomForOneMore(busy, 1000), UserLimitError);
  assert.deepEqual(roomForOneMore(busy, 0), []);
});

const SWITCHES = `switch "lan" {\n  interface "vmdbr3"\n  locked lladdr\n}\n` +
  `switch "off" {\n  disable\n  interface "vmdbr4"\n}\n` +
  `vm "tpl" {\n  boot "/k"\n  allow instance { memory, owner alice }\n}\n`;

Deno.test("-n names vm.conf switches only: a host bridge's name is refused; locked lladdr comes along", () => {
  const c = config(SWITCHES);
  const [nic] = nicsFromStart({ ...NO_START_OPTIONS, switches: ["lan"] }, c);
  assert.equal(nic.bridge, "vmdbr3");
  assert.equal(nic.locked, true);
  assert.throws(
    () => nicsFromStart({ ...NO_START_OPTIONS, switches: ["vmdbr3"] }, c),
    /switch "vmdbr3" is not defined in vm.conf; define it there/,
  );
  assert.throws(() => nicsFromStart({ ...NO_START_OPTIONS, switches: ["docker0"] }, c), DefinitionError);
  assert.throws(
    () => nicsFromStart({ ...NO_START_OPTIONS, switches: ["off"] }, c),
    /switch off is disabled in vm.conf/,
  );
});

Deno.test("allow instance: boot covers kernel, initrd and command line; vCPUs never change", () => {
  const c = config(SWITCHES);
  const db = new UserDb("alice:x:1000:1000::/:/bin/sh\n", "");
  const tpl = definitionFromConfig(c.vms[0], db, c);
  const make = (o: Partial<StartOptions>) =>
    instanceDefinition(
      "i1",
      tpl,
      c.vms[0].allowInstance,
      { ...NO_START_OPTIONS, ...o },
      peerOwner(1000, db),
      c,
    );
  assert.equal(make({ memory: 64 << 20 }).memory, 64 << 20);
  assert.throws(() => make({ kernel: "/evil" }), /allow instance \{ boot \}/);
  assert.throws(() => make({ initrd: "/evil.img" }), /the initrd \(allow instance \{ boot \}\)/);
  assert.throws(() => make({ cmdline: "init=/bin/sh" }), /kernel command line \(allow instance \{ boot \}\)/);
  assert.throws(() => make({ cpus: 4 }), /has the vCPUs of tpl/);
  assert.throws(() => make({ switches: ["lan"] }), /allow instance \{ interface \}/);
});
