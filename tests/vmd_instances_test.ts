/**
 * What a socket user may do with instances, on a real vmd with a real user (useradd, setpriv): `allow
 * instance` enforced as vm.conf(5) says (boot covers kernel, initrd and command line; vCPUs never change),
 * names by vm.conf's rule (a newline, an escape sequence or a number is refused), failed starts leave nothing
 * listed, the per-user limits (memory, vCPUs, 8 VMs), and user text that cannot forge lines in vmd's log.
 */
import assert from "node:assert/strict";
import { NO_START_OPTIONS } from "../src/vmd/protocol.ts";
import { kvmTest } from "./kvm_support.ts";
import { cannotCreateUsers, withUsers } from "./user_support.ts";
import { kitPaths, stagedForOtherUsers, TestDaemon } from "./vmd_support.ts";

const GROUP = "vmdinsgrp";
const USERS = ["vmdinsusr"] as const;
const ESC = "\x1b";

kvmTest(
  "vmd instances: allow instance enforced, names validated, failed starts leave nothing, per-user limits",
  async () => {
    const missing = await cannotCreateUsers();
    if (missing !== null && Deno.env.get("CI") === "true") throw new Error(`cannot run: ${missing}`);
    assert.equal(missing, null, `this test needs root and useradd/setpriv: ${missing}`);
    const { echo } = await kitPaths();
    await stagedForOtherUsers();
    await withUsers(GROUP, USERS, async (as) => {
      const u = as.vmdinsusr;
      const tpl = (name: string, extra: string, allow: string) =>
        `vm "${name}" {\n  disable\n  boot "${echo}"\n  memory 16M\n${extra}  allow instance { ${allow} }\n}\n`;
      const d = await TestDaemon.start(
        `socket owner :${GROUP}\n` +
          tpl("itpl", "", "owner vmdinsusr") +
          tpl("itplm", "", "memory, disk, owner vmdinsusr") +
          tpl("itplc", "  cpus 17\n", "owner vmdinsusr"),
      );
      await d.run(async () => {
        const listed = async () => (await d!.status()).map((v) => v.name);
        const own = `${d.dir}/own-initrd`;
        await Deno.writeFile(own, new Uint8Array(4096));
        await Deno.chown(own, u.uid, u.gid);

        // allow instance { owner } only: boot (kernel, initrd, command line) and vCPUs may not change
        for (
          const [args, why] of [
            [
              ["--initrd", own],
              /does not allow instances to change the initrd \(allow instance \{ boot \}\)/,
            ],
            [["--cmdline", "init=/bin/sh"], /change the kernel command line \(allow instance \{ boot \}\)/],
            [["--cpus", "2"], /an instance has the vCPUs of itpl .*define a vm with the cpus you need/],
          ] as const
        ) {
          const r = await d.vmctl(["start", "-t", "itpl", ...args, "inst1"], { as: u });
          assert.equal(r.code, 1, args.join(" "));
          assert.match(r.stderr, why);
        }
        assert.ok(!(await listed()).includes("inst1"), "nothing is left of a refused instance");

        // names: vmctl refuses early; the daemon refuses what a client sends anyway
        const nl = await d.vmctl(["start", "-t", "itpl", "a\nb"], { as: u });
        assert.equal(nl.code, 1);
        assert.match(nl.stderr, /vmctl: invalid vm name "a\\nb": use letters, digits/);
        for (const name of ["a\nb", "\x1b[2Jroot", "999", "-x", "x".repeat(64)]) {
          const reply = await d.request({
            v: 1,
            type: "start",
            target: name,
            options: { ...NO_START_OPTIONS, template: "itpl" },
          });
          assert.equal(reply.type, "error", JSON.stringify(name));
          if (reply.type === "error") assert.match(reply.message, /vm name/, JSON.stringify(name));
          const adhoc = await d.request({
            v: 1,
            type: "start",
            target: name,
            options: { ...NO_START_OPTIONS, kernel: echo },
          });
          assert.equal(adhoc.type, "error", `ad hoc ${JSON.stringify(name)}`);
        }
        const digits = await d.vmctl(["start", "-b", echo, "999"]);
        assert.match(
          digits.stderr,
          /vmctl: invalid vm name "999": a name of digits only would read as a vm id/,
        );
        assert.deepEqual(await listed(), ["itpl", "itplm", "itplc"]);
        assert.ok(!d.log.includes(ESC), "no escape sequence from a name reached the log");
        assert.doesNotMatch(d.log, /^b: /m, "no name split a log line");

        // a path from a user cannot forge a line of vmd's log
        const forged = `${d.dir}/no-kernel\nvmd: vm forged: running on /dev/pts/0\x1b[2J`;
        const f = await d.vmctl(["start", "-b", forged, "forger"]);
        assert.equal(f.code, 1);
        assert.ok(!f.stderr.includes(ESC), "vmctl escapes what it prints");
        assert.match(d.log, /no-kernel(\\x0a|\\n)vmd: vm forged/, "the path is in the log, escaped");
        assert.doesNotMatch(d.log, /^vmd: vm forged/m);
        assert.ok(!d.log.includes(ESC));

        // failed starts leave nothing behind, however many
        const dirDisk = `${d.dir}/a-directory\nvmd: vm forged: running\x1b[2J`;
        await Deno.mkdir(dirDisk);
        await Deno.chown(dirDisk, u.uid, u.gid);
        const bad = await d.vmctl(["start", "-t", "itplm", "-d", dirDisk, "broken"], { as: u });
        assert.equal(bad.code, 1);
        assert.match(bad.stderr, /broken failed to start/);
        for (let i = 0; i < 40; i++) {
          const r = await d.request({
            v: 1,
            type: "start",
            target: `fail${i}`,
            options: { ...NO_START_OPTIONS, kernel: `${d.dir}/no-kernel-${i}` },
          });
          assert.equal(r.type, "error");
        }
        assert.deepEqual(await listed(), ["itpl", "itplm", "itplc"]);

        // per-user limits: 8 GiB and 16 vCPUs in all, 8 VMs
        const big = await d.vmctl(["start", "-t", "itplm", "-m", "9G", "big"], { as: u });
        assert.equal(big.code, 1);
        assert.match(big.stderr, /may run vms of at most 8 GiB in all; this one would make 9 GiB/);
        const many = await d.vmctl(["start", "-t", "itplc", "cpus17"], { as: u });
        assert.equal(many.code, 1);
        assert.match(many.stderr, /may run vms of at most 16 vCPUs in all; this one would make 17/);
        for (let i = 1; i <= 8; i++) {
          const r = await d.vmctl(["start", "-t", "itpl", `mine${i}`], { as: u });
          assert.equal(r.code, 0, r.stderr);
        }
        const ninth = await d.vmctl(["start", "-t", "itpl", "mine9"], { as: u });
        assert.equal(ninth.code, 1);
        assert.match(ninth.stderr, /has 8 vms, the most a user may have; stop one of yours/);
        // a stopped one is forgotten to make room
        assert.equal((await d.vmctl(["stop", "-f", "-w", "mine1"], { as: u })).code, 0);
        const room = await d.vmctl(["start", "-t", "itpl", "mine9"], { as: u });
        assert.equal(room.code, 0, room.stderr);
        const names = await listed();
        assert.ok(!names.includes("mine1") && names.includes("mine9"), names.join(" "));
        // root is not limited
        const rootVm = await d.vmctl(["start", "-t", "itplc", "rootcpus"]);
        assert.equal(rootVm.code, 0, rootVm.stderr);
      });
    });
  },
);
