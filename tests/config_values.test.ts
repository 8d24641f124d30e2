import assert from "node:assert/strict";
import {
  checkGroupName,
  checkIfname,
  parseIpv4Prefix,
  parseIpv6Prefix,
  parseLladdr,
} from "../src/config/net.ts";
import { dirname, resolveFrom } from "../src/config/path.ts";
import { formatScaled, scanScaled } from "../src/config/size.ts";

Deno.test("scanScaled reads sizes as scan_scaled(3)", () => {
  const ok = (s: string) => {
    const r = scanScaled(s);
    assert.ok(r.ok, s);
    return r.bytes;
  };
  assert.equal(ok("512"), 512n);
  assert.equal(ok("512B"), 512n);
  assert.equal(ok("4k"), 4096n);
  assert.equal(ok("512M"), 512n << 20n);
  assert.equal(ok("1.5G"), 3n << 29n);
  assert.equal(ok("2t"), 2n << 40n);
  assert.equal(ok("1P"), 1n << 50n);
  assert.equal(ok("7E"), 7n << 60n);
  assert.equal(ok("-1M"), -(1n << 20n));
  assert.equal(ok(".5K"), 512n);
  for (const bad of ["", "M", "1MB", "1Q", "1.2.3", "1 M", "8E"]) {
    assert.equal(scanScaled(bad).ok, false, bad);
  }
  assert.deepEqual(scanScaled("8E"), { ok: false, reason: "value is too large" });
  assert.deepEqual([
    formatScaled(512 << 20),
    formatScaled(2 ** 30),
    formatScaled(1536 * 1024),
    formatScaled(100),
  ], [
    "512M",
    "1G",
    "1536K",
    "100",
  ]);
});

Deno.test("lladdr: ether_aton syntax, canonical output, no multicast", () => {
  assert.deepEqual(parseLladdr("FE:E1:BA:D0:0:1"), { ok: true, value: "fe:e1:ba:d0:00:01" });
  for (
    const bad of [
      "fe:e1:ba:d0:00",
      "fe:e1:ba:d0:00:01:02",
      "fe-e1-ba-d0-00-01",
      "fe:e1:ba:d0:00:100",
      "ff:ff:ff:ff:ff:ff",
    ]
  ) {
    assert.equal(parseLladdr(bad).ok, false, bad);
  }
});

Deno.test("local prefixes: IPv4 /1-/16, IPv6 /0-/64, host bits clear", () => {
  assert.deepEqual(parseIpv4Prefix("100.64.0.0/10"), {
    ok: true,
    value: { address: "100.64.0.0", length: 10 },
  });
  assert.deepEqual(parseIpv4Prefix("10.20.0.0"), { ok: true, value: { address: "10.20.0.0", length: 16 } });
  assert.equal(parseIpv4Prefix("10.0.0.0/17").ok, false);
  assert.equal(parseIpv4Prefix("10.0.0.1/8").ok, false);
  assert.equal(parseIpv4Prefix("256.0.0.0/8").ok, false);
  assert.deepEqual(parseIpv6Prefix("FD00:0:0:0::/64"), {
    ok: true,
    value: { address: "fd00::", length: 64 },
  });
  assert.deepEqual(parseIpv6Prefix("2001:db8:0:1::"), {
    ok: true,
    value: { address: "2001:db8:0:1::", length: 64 },
  });
  assert.equal(parseIpv6Prefix("fd00::1/64").ok, false);
  assert.equal(parseIpv6Prefix("fd00::/65").ok, false);
  assert.equal(parseIpv6Prefix("fd00:::1").ok, false);
});

Deno.test("interface and group names: IF_NAMESIZE, groups must not end in a digit", () => {
  assert.equal(checkIfname("br0").ok, true);
  assert.equal(checkIfname("a".repeat(15)).ok, true);
  assert.equal(checkIfname("a".repeat(16)).ok, false);
  assert.equal(checkIfname("a/b").ok, false);
  assert.equal(checkGroupName("vms").ok, true);
  assert.equal(checkGroupName("vms1").ok, false);
});

Deno.test("paths: includes resolve against the including file's directory", () => {
  assert.equal(dirname("/etc/vm.conf"), "/etc");
  assert.equal(dirname("vm.conf"), ".");
  assert.equal(resolveFrom("/etc", "vm.d/../a.conf"), "/etc/a.conf");
  assert.equal(resolveFrom(".", "./a.conf"), "a.conf");
  assert.equal(resolveFrom("/etc", "/abs/b.conf"), "/abs/b.conf");
  assert.equal(resolveFrom("conf", "../../x.conf"), "../x.conf");
});
