import assert from "node:assert/strict";
import { closeFd } from "../ffi/fd.ts";
import { InterfaceNameError, openTap, validateInterfaceName } from "../ffi/tap.ts";
import { linkExists, sh } from "./net_support.ts";

Deno.test("interface names are checked before any privileged call", () => {
  for (const bad of ["", "a".repeat(16), "-x", "a b", "a/b", "..", "a,b", "tap\n0", "ta:p"]) {
    assert.throws(() => validateInterfaceName(bad), InterfaceNameError, bad);
    assert.throws(() => openTap(bad), InterfaceNameError, bad);
  }
  for (const good of ["vm1-if0", "tap0", "a.b_c-d", "x".repeat(15)]) {
    assert.equal(validateInterfaceName(good), good);
  }
});

Deno.test("openTap makes a tap with IFF_NO_PI and its host MAC; closing the fd removes it", async () => {
  const name = `vt-${Deno.pid % 100000}`;
  const tap = openTap(name);
  try {
    assert.equal(await linkExists(name), true);
    const shown = await sh("ip", "-j", "link", "show", name);
    const info = JSON.parse(shown) as { address: string; flags: string[] }[];
    const mac = [...tap.hostMac].map((b) => b.toString(16).padStart(2, "0")).join(":");
    assert.equal(info[0].address, mac);
  } finally {
    closeFd(tap.fd);
  }
  assert.equal(await linkExists(name), false);
});
