/**
 * Access control with real users: the test creates two users and a group (useradd/groupadd, as root), runs
 * vmd with `socket owner :group`, and runs vmctl as each user through setpriv(1). Identities come from the
 * kernel (SO_PEERCRED): a VM's owner may control it, another user may not, and a user outside the socket's
 * group cannot connect at all.
 */
import assert from "node:assert/strict";
import { kvmTest } from "./kvm_support.ts";
import { cannotCreateUsers, withUsers } from "./user_support.ts";
import { ConsoleSession, kitPaths, stagedForOtherUsers, TestDaemon } from "./vmd_support.ts";

const GROUP = "vmdtgrp";
const USERS = ["vmdtusra", "vmdtusrb", "vmdtusrc"] as const;
/** Why real users cannot be made here (not root, no useradd or setpriv), or null. */
const MISSING = await cannotCreateUsers();

kvmTest(
  "vmd access: owners control their own VMs, not others'; identities come from SO_PEERCRED",
  async () => {
    const { echo } = await kitPaths();
    await stagedForOtherUsers();
    await withUsers(GROUP, USERS, async (as) => {
      const d = await TestDaemon.start(`
socket owner :${GROUP}
vm "a1" {
  boot "${echo}" { cmdline "vm=a1" }
  memory 16M
  owner vmdtusra
}
vm "b1" {
  boot "${echo}" { cmdline "vm=b1" }
  memory 16M
  owner vmdtusrb
}
vm "t1" {
  disable
  boot "${echo}" { cmdline "vm=t1" }
  memory 16M
  allow instance { disk, owner vmdtusra }
}
vm "g1" {
  disable
  boot "${echo}" { cmdline "vm=g1" }
  memory 16M
  owner :${GROUP}
}
`);
      await d.run(async () => {
        await d.waitState("a1", "running");
        await d.waitState("b1", "running");
        const a = as.vmdtusra;

        // anyone who may connect sees the status, with owners
        const st = await d.vmctl(["status"], { as: a });
        assert.equal(st.code, 0, st.stderr);
        assert.match(st.stdout, /vmdtusra\s+running a1/);
        assert.match(st.stdout, /vmdtusrb\s+running b1/);

        // a's own VM: pause and unpause allowed
        assert.equal((await d.vmctl(["pause", "a1"], { as: a })).code, 0);
        assert.equal((await d.vm("a1")).state, "paused");
        assert.equal((await d.vmctl(["unpause", "a1"], { as: a })).code, 0);

        // a's console: the pty belongs to a, and the guest answers
        const tty = (await d.vm("a1")).tty!;
        assert.equal(Deno.statSync(tty).uid, a.uid);
        const con = new ConsoleSession(d, "a1", a);
        await con.expect("echo: ready vm=a1\n");
        await con.send("mine\r");
        await con.expect("MINE\r\n");
        assert.equal(await con.detach(), 0);

        // b's VM: every control request is refused, and b1 keeps running
        for (const args of [["stop", "b1"], ["pause", "b1"], ["console", "b1"], ["stop", "-f", "b1"]]) {
          const r = await d.vmctl(args, { as: a });
          assert.equal(r.code, 1, args.join(" "));
          assert.match(r.stderr, /permission denied: uid \d+ may not/, args.join(" "));
        }
        assert.equal((await d.vm("b1")).state, "running");

        // daemon-wide requests and new VMs are root's
        for (const args of [["reload"], ["log", "verbose"], ["start", "-b", echo, "adhoc"]]) {
          const r = await d.vmctl(args, { as: a });
          assert.equal(r.code, 1, args.join(" "));
          assert.match(r.stderr, /permission denied/);
        }

        // a group-owned VM: a member may start and stop it
        assert.equal((await d.vmctl(["start", "g1"], { as: a })).code, 0);
        assert.equal((await d.vmctl(["stop", "-w", "g1"], { as: a })).code, 0);

        // instances: a may create one of t1 with its own disk, but not with a file that is not a's
        const own = `${d.dir}/a-disk.img`;
        await Deno.writeFile(own, new Uint8Array(1 << 20));
        await Deno.chown(own, a.uid, a.gid);
        const rootFile = `${d.dir}/root-disk.img`;
        await Deno.writeFile(rootFile, new Uint8Array(1 << 20));
        const stolen = await d.vmctl(["start", "-t", "t1", "-d", rootFile, "i1"], { as: a });
        assert.equal(stolen.code, 1);
        assert.match(stolen.stderr, /permission denied \(opened as uid \d+\)/);
        const inst = await d.vmctl(["start", "-t", "t1", "-d", own, "i2"], { as: a });
        assert.equal(inst.code, 0, inst.stderr);
        assert.equal((await d.vm("i2")).owner, "vmdtusra");
        assert.equal((await d.vmctl(["start", "-t", "t1", "i3"], { as: as.vmdtusrb })).code, 1, "b may not");

        // b may stop its own VM
        const sb = await d.vmctl(["stop", "-w", "b1"], { as: as.vmdtusrb });
        assert.equal(sb.code, 0, sb.stderr);
        assert.equal((await d.vm("b1")).state, "stopped");

        // c is not in the socket's group: the kernel refuses the connection
        const c = await d.vmctl(["status"], { as: as.vmdtusrc });
        assert.equal(c.code, 1);
        assert.match(c.stderr, /permission denied on .*socket owner/);
      });
    }, ["vmdtusrc"]);
  },
  MISSING,
);
