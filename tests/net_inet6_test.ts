/**
 * `local inet6` addresses (the part that needs no guest): derived as OpenBSD's vmd derives them, from the
 * IPv6 prefix, the guest's IPv4 address from the `local prefix`, and 1 (host) or 2 (guest) in the last byte.
 *
 * @module
 */
import assert from "node:assert/strict";
import { localInet6Text } from "../src/vmd/definitions.ts";
import { DEFAULT_LOCAL_INET6_PREFIX, localInet6Addresses } from "../src/net/local_inet6.ts";
import { LocalPrefixError } from "../src/net/local_prefix.ts";
import { parseRunArgs, RunUsageError } from "../src/cli/run.ts";
import { checkConfig } from "../src/config/load.ts";
import { mapReader } from "../src/config/file_reader.ts";

Deno.test("local inet6: fd00::/8 by default; the guest's IPv4 address in bits 64-95; host ::1, guest ::2", () => {
  assert.equal(DEFAULT_LOCAL_INET6_PREFIX, "fd00::/8");
  assert.deepEqual(localInet6Addresses(1, 0), {
    host: "fd00::6440:103:0:1",
    guest: "fd00::6440:103:0:2",
    prefixLength: 96,
  });
  // NIC 2 of VM 300: guest 100.65.44.7
  assert.equal(localInet6Addresses(300, 2).host, "fd00::6441:2c07:0:1");
  assert.equal(
    localInet6Addresses(5, 1, "10.20.0.0/16", "fd12:3456:789a:bcde::/64").host,
    "fd12:3456:789a:bcde:a14:505:0:1",
  );
  // a prefix shorter than /64 keeps its bits and the zeros after them
  assert.equal(localInet6Addresses(1, 0, undefined, "fd00:aa00::/24").guest, "fd00:aa00::6440:103:0:2");
  for (
    const [id, i, p4, p6] of [
      [1, 0, undefined, "fd00::/65"],
      [1, 0, undefined, "fd00::1/64"],
      [1, 0, undefined, "10.0.0.0/8"],
      [300, 0, "10.0.0.0/16", undefined],
    ] as const
  ) {
    assert.throws(() => localInet6Addresses(id, i, p4, p6), LocalPrefixError, `${id} ${i} ${p4} ${p6}`);
  }
});

Deno.test("local inet6: vmd run --local-inet6 [prefix] and vm.conf's local inet6 [prefix]", () => {
  const run = (...a: string[]) => parseRunArgs(["-b", "k", ...a]).nics;
  assert.equal(run("-L", "--local-inet6")[0].inet6?.host, "fd00::6440:103:0:1");
  assert.equal(run("--local-inet6", "-L", "--id", "7")[0].inet6?.host, "fd00::6440:703:0:1");
  assert.equal(run("-L", "--local-inet6", "fd00:1::/64")[0].inet6?.host, "fd00:1::6440:103:0:1");
  assert.equal(run("-L")[0].inet6, undefined);
  assert.equal(run("-L", "-n", "sw0", "--local-inet6")[1].inet6, undefined, "only local interfaces");
  assert.throws(() => run("-L", "--local-inet6", "fd00::/80"), RunUsageError);
  assert.throws(() => run("-n", "sw0", "--local-inet6"), RunUsageError, "--local-inet6 needs -L");

  const text = (conf: string) => {
    const r = checkConfig("vm.conf", conf, { reader: mapReader({}) });
    assert.deepEqual(r.diagnostics, []);
    return localInet6Text(r.config);
  };
  assert.equal(text(""), null);
  assert.equal(text("local inet6\n"), "fd00::/8");
  assert.equal(text("local inet6 prefix fd00:1234:5678::/48\n"), "fd00:1234:5678::/48");
});
