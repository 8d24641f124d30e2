/**
 * The daemon's NIC plans (no KVM, no taps): vm.conf interfaces and switches, and `vmctl start -L/-n/-i`,
 * become NIC definitions in the order the guest sees them; bad counts, unknown or disabled switches and bad
 * names are refused before any privileged call.
 *
 * @module
 */
import assert from "node:assert/strict";
import { mapReader } from "../src/config/file_reader.ts";
import { checkConfig } from "../src/config/load.ts";
import { DefinitionError, definitionFromConfig, nicsFromStart } from "../src/vmd/definitions.ts";
import { NO_START_OPTIONS, validateRequest } from "../src/vmd/protocol.ts";
import { UserDb } from "../src/vmd/user_db.ts";
import type { StartOptions } from "../src/vmd/protocol.ts";
import { openNics, VmNicError } from "../src/vmd/vm_nics.ts";

const conf = `local prefix 10.20.0.0/16
switch "lan" {
  interface "br-lan"
  locked lladdr
}
switch "off" {
  disable
  interface "br-off"
}
vm "a" {
  boot "/k"
  local interface
  interface { switch "lan"
    lladdr fe:e1:bb:d1:00:07
  }
  interfaces 3
}
`;

const config = checkConfig("t.conf", conf, { reader: mapReader({}) }).config;
const db = new UserDb("root:x:0:0::/root:/bin/sh\n", "wheel:x:0:root\n");
const none: StartOptions = { ...NO_START_OPTIONS, kernel: "/k" };

Deno.test("vmd nics: vm.conf's local interface, switch (its bridge and locked lladdr) and interfaces N", () => {
  const def = definitionFromConfig(config.vms[0], db, config);
  assert.equal(def.localPrefix, "10.20.0.0/16");
  assert.deepEqual(def.nics, [
    { local: true, bridge: null, lladdr: null, locked: false, up: true, bridgeUp: null, tap: null },
    {
      local: false,
      bridge: "br-lan",
      lladdr: "fe:e1:bb:d1:00:07",
      locked: true,
      up: true,
      bridgeUp: true,
      tap: null,
    },
    { local: false, bridge: null, lladdr: null, locked: false, up: true, bridgeUp: null, tap: null },
  ]);
});

Deno.test("vmd nics: vmctl start -L -n -i plans (the larger count wins); too many, unknown and disabled switches are refused", () => {
  assert.deepEqual(nicsFromStart({ ...none, local: 1, switches: ["lan", "lan"], interfaces: 4 }, config), [
    { local: true, bridge: null, lladdr: null, locked: false, up: true, bridgeUp: null, tap: null },
    { local: false, bridge: "br-lan", lladdr: null, locked: true, up: true, bridgeUp: true, tap: null },
    { local: false, bridge: "br-lan", lladdr: null, locked: true, up: true, bridgeUp: true, tap: null },
    { local: false, bridge: null, lladdr: null, locked: false, up: true, bridgeUp: null, tap: null },
  ]);
  // as vmctl(8): one local interface per -L, and -i smaller than the -L/-n count does not remove any
  const plain = {
    local: false,
    bridge: null,
    lladdr: null,
    locked: false,
    up: true,
    bridgeUp: null,
    tap: null,
  };
  assert.deepEqual(nicsFromStart({ ...none, local: 2, switches: ["lan"], interfaces: 1 }, config), [
    { ...plain, local: true },
    { ...plain, local: true },
    { ...plain, bridge: "br-lan", locked: true, bridgeUp: true },
  ]);
  assert.deepEqual(nicsFromStart({ ...none, interfaces: 2 }, config), [plain, plain]);
  // -i 0 and a fractional -L are not requests vmctl can make: the daemon refuses them as malformed
  assert.throws(() =>
    validateRequest({ v: 1, type: "start", target: "x", options: { ...none, interfaces: 0 } })
  );
  assert.throws(() =>
    validateRequest({ v: 1, type: "start", target: "x", options: { ...none, local: true } })
  );
  assert.throws(() => nicsFromStart({ ...none, switches: ["off"] }, config), DefinitionError);
  // a host bridge's name is not a switch: only vm.conf's switches may be named
  assert.throws(() => nicsFromStart({ ...none, switches: ["br9"] }, config), /not defined in vm.conf/);
  assert.throws(() => nicsFromStart({ ...none, switches: ["br-lan"] }, config), /not defined in vm.conf/);
  assert.throws(
    () => nicsFromStart({ ...none, local: 1, switches: ["lan", "lan", "lan", "lan"] }, config),
    /at most 4 interfaces/,
  );
  const bad = { v: 1, type: "start", target: "x", options: { ...none, switches: ["x".repeat(257)] } };
  assert.throws(() => validateRequest(bad));
});

/** The reason of a bad interface name: validation's own words, which no tap or netlink error contains. */
const BAD_NAME = (name: string) =>
  `bad interface name "${name}": 1-15 of A-Z a-z 0-9 _ . - (not starting with -)`;

Deno.test("vmd nics: a bad bridge name or lladdr is refused before any tap is opened", async () => {
  const cases: [{ bridge: string | null; lladdr: string | null }, string][] = [
    [{ bridge: "a/b", lladdr: null }, `vm3-if0: ${BAD_NAME("a/b")}`],
    [{ bridge: "-x", lladdr: null }, `vm3-if0: ${BAD_NAME("-x")}`],
    [
      { bridge: null, lladdr: "01:00:00:00:00:01" },
      "vm3-if0: lladdr 01:00:00:00:00:01 is a multicast address",
    ],
  ];
  for (const [n, message] of cases) {
    // the validation's message, not a kernel's: refused by the checks that run before any tap is opened
    await assert.rejects(
      openNics(
        3,
        [{ local: false, locked: false, up: true, bridgeUp: null, tap: null, ...n }],
        "100.64.0.0/10",
      ),
      (e) => e instanceof VmNicError && e.message === message,
      message,
    );
  }
});

Deno.test("vmd nics: a vm.conf interface name names the tap; bad or repeated names are refused before any tap", async () => {
  const c = checkConfig(
    "t.conf",
    `vm "n" {\n  boot "/k"\n  interface "tap7"\n  interface tap\n  local interface "web0"\n}\n`,
    { reader: mapReader({}) },
  ).config;
  assert.deepEqual(definitionFromConfig(c.vms[0], db, c).nics.map((n) => n.tap), ["tap7", null, "web0"]);
  const plain = { local: false, bridge: null, lladdr: null, locked: false, up: true, bridgeUp: null };
  const x16 = "x".repeat(16);
  for (
    const [nics, message] of [
      [[{ ...plain, tap: "-tap" }], `-tap: ${BAD_NAME("-tap")}`],
      [[{ ...plain, tap: "a!b" }], `a!b: ${BAD_NAME("a!b")}`],
      [[{ ...plain, tap: x16 }], `${x16}: ${BAD_NAME(x16)}`],
      [[{ ...plain, tap: "dup0" }, { ...plain, tap: "dup0" }], "dup0: the vm names this interface twice"],
      [[{ ...plain, tap: null }, { ...plain, tap: "vm3-if0" }], "vm3-if0: the vm names this interface twice"],
    ] as const
  ) {
    await assert.rejects(
      openNics(3, nics, "100.64.0.0/10"),
      (e) => e instanceof VmNicError && e.message === message,
      message,
    );
  }
});
