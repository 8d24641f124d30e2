/**
 * `vmd run`'s exit status as the README states it, with real kit guests on real KVM: 0 after the guest
 * reboots (0xFE to the i8042), 1 with the one-line reason and a register dump after a triple fault.
 */
import assert from "node:assert/strict";
import { buildKitGuest } from "../examples/guests/kit/build.ts";
import { kvmTest, runCli } from "./kvm_support.ts";

kvmTest("vmd run: a guest reboot ends it with status 0 and says so, without a register dump", async () => {
  const guest = await buildKitGuest("reboot");
  const r = await runCli(["run", "-m", "16M", "-b", guest.path]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, "reboot: going down\n");
  assert.match(r.stderr, /\nvmd run: guest requested a reboot\n$/);
  assert.doesNotMatch(r.stderr, /rip=/);
});

kvmTest("vmd run: a triple fault ends it with status 1, the reason and a register dump", async () => {
  const guest = await buildKitGuest("triple");
  const r = await runCli(["run", "-m", "16M", "-b", guest.path]);
  assert.equal(r.code, 1, r.stderr);
  assert.equal(r.stdout, "triple: faulting\n");
  const lines = r.stderr.trimEnd().split("\n");
  const at = lines.indexOf("vmd run: guest shut down (triple fault)");
  assert.ok(at >= 0, r.stderr);
  const dump = lines.slice(at + 1).join("\n");
  assert.match(dump, /^\s+rax=0x[0-9a-f]{16} /);
  assert.match(dump, /\ncr0=0x[0-9a-f]{16} cr2=.* cs=sel=0x8 base=0x0{16} l=0 db=1$/);
  // the fault is in the guest's code, which is loaded at 1 MiB (the ud2 after lidt)
  const rip = BigInt(/\brip=(0x[0-9a-f]{16})/.exec(dump)?.[1] ?? "0");
  assert.ok(rip >= 0x100000n && rip < 0x100000n + BigInt(guest.bytes.length), `rip ${rip.toString(16)}`);
});
