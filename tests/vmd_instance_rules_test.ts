/**
 * `allow instance` as vmd(8) applies it, on a real vmd with a real user: root is not restricted by it (it may
 * change anything, and make instances of any VM, instances included); an instance root creates has its
 * parent's owner; a user may make an instance of an instance only when the parent allowed `instance`, and is
 * told why otherwise.
 */
import assert from "node:assert/strict";
import { kvmTest } from "./kvm_support.ts";
import { cannotCreateUsers, withUsers } from "./user_support.ts";
import { kitPaths, stagedForOtherUsers, TestDaemon } from "./vmd_support.ts";

const GROUP = "vmdirgrp";
const USERS = ["vmdirusr"] as const;
const MISSING = await cannotCreateUsers();

kvmTest(
  "vmd allow instance: root unrestricted, root's instances keep the owner, instances of instances",
  async () => {
    const { echo } = await kitPaths();
    await stagedForOtherUsers();
    await withUsers(GROUP, USERS, async (as) => {
      const u = as.vmdirusr;
      const vm = (name: string, extra: string) =>
        `vm "${name}" {\n  disable\n  boot "${echo}"\n  memory 16M\n${extra}}\n`;
      const d = await TestDaemon.start(
        `socket owner :${GROUP}\n` +
          // no allow instance at all: only root may make instances, and root may change anything
          vm("bare", "  owner 4242:4343\n") +
          vm("chain", "  allow instance { instance, memory, owner vmdirusr }\n") +
          vm("flat", "  allow instance { memory, owner vmdirusr }\n"),
      );
      await d.run(async () => {
        const owner = async (name: string) => (await d!.vm(name)).owner;

        // root: memory and command line changed on a VM that allows neither; the instance is the parent's owner's
        const r1 = await d.vmctl([
          "start",
          "-t",
          "bare",
          "-m",
          "32M",
          "--cpus",
          "2",
          "--cmdline",
          "console=ttyS0 x",
          "rootinst",
        ]);
        assert.equal(r1.code, 0, r1.stderr);
        const s1 = await d.vm("rootinst");
        assert.equal(s1.owner, "4242:4343");
        assert.equal(s1.maxmem, 32 * 2 ** 20);
        assert.equal(s1.vcpus, 2);
        // root: an instance of that instance (whose parent allowed nothing), and of an ad hoc VM
        const r2 = await d.vmctl(["start", "-t", "rootinst", "rootinst2"]);
        assert.equal(r2.code, 0, r2.stderr);
        assert.equal(await owner("rootinst2"), "4242:4343");
        const adhoc = await d.vmctl(["start", "-b", echo, "-m", "16M", "adhoc"]);
        assert.equal(adhoc.code, 0, adhoc.stderr);
        const r3 = await d.vmctl(["start", "-t", "adhoc", "rootinst3"]);
        assert.equal(r3.code, 0, r3.stderr);
        assert.equal(await owner("rootinst3"), "root");

        // a user: not on a VM without allow instance, nor on root's instance of it
        const no = await d.vmctl(["start", "-t", "bare", "mine0"], { as: u });
        assert.equal(no.code, 1);
        assert.match(
          no.stderr,
          /may not create instances of bare: vm\.conf's allow instance \{ owner \} of bare/,
        );
        // a user's instance is the user's, and is a parent in turn only where the parent allowed `instance`
        const c1 = await d.vmctl(["start", "-t", "chain", "-m", "24M", "mine1"], { as: u });
        assert.equal(c1.code, 0, c1.stderr);
        assert.equal(await owner("mine1"), "vmdirusr");
        const c2 = await d.vmctl(["start", "-t", "mine1", "mine2"], { as: u });
        assert.equal(c2.code, 0, c2.stderr);
        assert.equal(
          (await d.vm("mine2")).maxmem,
          24 * 2 ** 20,
          "an instance of an instance has its parent's memory",
        );
        const f1 = await d.vmctl(["start", "-t", "flat", "mine3"], { as: u });
        assert.equal(f1.code, 0, f1.stderr);
        const f2 = await d.vmctl(["start", "-t", "mine3", "mine4"], { as: u });
        assert.equal(f2.code, 1);
        assert.match(
          f2.stderr,
          /may not create instances of mine3: mine3 is an instance or ad hoc vm whose parent did not allow instance \{ instance \}/,
        );
        // the user stays bound by the flags: boot was never allowed
        const b = await d.vmctl(["start", "-t", "mine1", "--cmdline", "x", "mine5"], { as: u });
        assert.equal(b.code, 1);
        assert.match(b.stderr, /does not allow instances to change the kernel command line/);
        const names = (await d.status()).map((v) => v.name);
        assert.ok(
          !names.includes("mine4") && !names.includes("mine5") && !names.includes("mine0"),
          names.join(" "),
        );
      });
    });
  },
  MISSING,
);
