/**
 * The daemon and vmctl behaving as vmd(8), vmctl(8) and vm.conf(5) say, through a real vmd and real VMs:
 * status and stop -a exit codes and messages, wait on a stopped VM, relative paths taken from vmctl's working
 * directory, `-b` on a defined VM for its next boot only, stopped ad hoc VMs replaced or dropped by reload,
 * VMs the daemon cannot start listed with the reason, interfaces on undefined switches left out, and the
 * default staggered start.
 */
import assert from "node:assert/strict";
import { kvmTest } from "./kvm_support.ts";
import { guestResidentFromSmaps } from "../src/vmd/guest_memory_use.ts";
import { processRss } from "../src/vmd/vm_entry.ts";
import { kitPaths, TestDaemon } from "./vmd_support.ts";

Deno.test("CURMEM: the resident part of the guest-RAM mapping, not the process's RSS", () => {
  const mapping = (range: string, perms: string, size: number, rss: number, path = "") =>
    `${range} ${perms} 00000000 00:00 0 ${path}\nSize: ${size} kB\nRss: ${rss} kB\nPss: ${rss} kB\n`;
  const smaps = mapping("5600-5700", "r-xp", 40000, 30000, "/usr/bin/deno") +
    mapping("7f00-7f10", "rw-p", 32776, 1200) + // guest RAM: 32 MiB + alignment page + header
    mapping("7f20-7f30", "---p", 32768, 0) + // a reservation of the same size, not accessible
    mapping("7f40-7f50", "rw-p", 65536, 50000); // a V8 heap: bigger than the guest, not guest RAM
  assert.equal(guestResidentFromSmaps(smaps, 32 << 20), 1200 * 1024);
  assert.equal(guestResidentFromSmaps(smaps, 16 << 20), null, "no mapping of a 16 MiB guest");
});

kvmTest(
  "vmd conform: status/stop -a/wait exit codes, relative paths, -b for the next boot, ad hoc VMs replaced",
  async () => {
    const { echo, hello } = await kitPaths();
    const d = await TestDaemon.start(`vm "base" {\n  disable\n  boot "${echo}"\n  memory 16M\n}\n`);
    await d.run(async () => {
      // nothing running: status -r lists nothing and exits 1; an unknown id shows the header only, exit 0
      const r = await d.vmctl(["status", "-r"]);
      assert.equal(r.code, 1);
      assert.match(r.stdout, /^\s+ID\s+PID\s+VCPUS\s+MAXMEM\s+CURMEM\s+TTY\s+OWNER\s+STATE\s+NAME\n$/);
      const unknown = await d.vmctl(["status", "nosuchvm"]);
      assert.equal(unknown.code, 0, unknown.stderr);
      assert.equal(unknown.stdout.trim().split("\n").length, 1, "the header only");
      const all = await d.vmctl(["status"]);
      assert.equal(all.code, 0);
      assert.match(all.stdout, / base\n$/);
      // stop -a with nothing running says so; wait on a stopped VM fails and says why
      const stopAll = await d.vmctl(["stop", "-a"]);
      assert.equal(stopAll.code, 0);
      assert.equal(stopAll.stderr, "vmctl: no running vm to stop\n");
      const wait = await d.vmctl(["wait", "base"]);
      assert.equal(wait.code, 1);
      assert.match(wait.stderr, /^vmctl: vm base is not running\n$/);

      // -b on a defined, stopped VM boots that kernel once (hello exits with 16), named relative to vmctl's cwd
      const kitDir = hello.slice(0, hello.lastIndexOf("/"));
      const helloName = hello.slice(hello.lastIndexOf("/") + 1);
      const once = await d.vmctl(["start", "-b", helloName, "base"], { cwd: kitDir });
      assert.equal(once.code, 0, once.stderr);
      const ended = await d.waitState("base", "stopped");
      assert.equal(ended.lastExit, "guest wrote 16 to the exit port");
      // ... and its own kernel (echo, which keeps running) next time
      assert.equal((await d.vmctl(["start", "base"])).code, 0);
      await d.waitState("base", "running");
      const waiting = d.vmctl(["wait", "base"]);
      await new Promise((res) => setTimeout(res, 300));
      assert.equal((await d.vmctl(["stop", "-f", "base"])).code, 0);
      const waited = await waiting;
      assert.equal(waited.code, 0, waited.stderr);
      assert.match(waited.stderr, /^vmctl: vm base stopped: /);

      // an ad hoc VM from a relative -b: it runs, ends, stays listed with how it ended; its name can be reused
      const first = await d.vmctl(["start", "-b", helloName, "-m", "16M", "short"], { cwd: kitDir });
      assert.equal(first.code, 0, first.stderr);
      assert.equal((await d.waitState("short", "stopped")).lastExit, "guest wrote 16 to the exit port");
      const second = await d.vmctl(["start", "-b", hello, "-m", "20M", "short"]);
      assert.equal(second.code, 0, second.stderr);
      assert.equal((await d.waitState("short", "stopped")).maxmem, 20 << 20);
      // a relative path the daemon would have resolved in its own folder is not found from vmctl's
      const rel = await d.vmctl(["start", "-b", helloName, "elsewhere"], { cwd: "/" });
      assert.equal(rel.code, 1);
      assert.match(rel.stderr, new RegExp(`/${helloName.replace(".", "\\.")}`));
      assert.doesNotMatch(rel.stderr, /os error|readfile/i, "no raw runtime error text");

      // reload drops every stopped ad hoc VM; log and reset words in any case
      assert.equal((await d.vmctl(["reload"])).code, 0);
      assert.deepEqual((await d.status()).map((v) => v.name), ["base"]);
      assert.equal((await d.vmctl(["log", "VERBOSE"])).code, 0);
      assert.equal((await d.vmctl(["reset", "Switches"])).code, 0);
    });
  },
);

kvmTest(
  "vmd conform: unstartable VMs are listed with the reason; undefined switches are left out; default stagger",
  async () => {
    const { echo } = await kitPaths();
    const d = await TestDaemon.start(
      `vm "ghost" {\n  owner "no-such-user-vmd"\n  boot "${echo}"\n  memory 16M\n}\n` +
        `vm "wired" {\n  boot "${echo}"\n  memory 16M\n  interface { switch "nowhere" }\n}\n` +
        `vm "plain" {\n  boot "${echo}"\n  memory 16M\n}\n`,
    );
    await d.run(async () => {
      // vm.conf(5): an interface on an undefined switch is not attached; the VM starts without it
      await d.waitState("wired", "running");
      const plain = await d.waitState("plain", "running");
      // CURMEM: resident guest RAM, at most MAXMEM, far below the VM process's RSS (a whole Deno runtime)
      assert.ok(plain.pid !== null && plain.curmem !== null, JSON.stringify(plain));
      assert.ok(plain.curmem > 0 && plain.curmem <= plain.maxmem, `curmem ${plain.curmem}`);
      const rss = processRss(plain.pid) ?? 0;
      assert.ok(rss > plain.maxmem && plain.curmem < rss / 2, `curmem ${plain.curmem}, process rss ${rss}`);
      assert.match(
        d.log,
        /vm wired: interface 0: switch nowhere is not defined; the interface is not attached/,
      );
      // the VM whose owner does not exist is listed, stopped, with the reason; starting it says it again
      const ghost = await d.vm("ghost");
      assert.equal(ghost.state, "stopped");
      assert.match(ghost.lastExit ?? "", /^not started: .*no-such-user-vmd/);
      const start = await d.vmctl(["start", "ghost"]);
      assert.equal(start.code, 1);
      assert.match(start.stderr, /no-such-user-vmd.*fix vm\.conf and reload/);
      // no `staggered start`: as vmd(8), batches of as many VMs as the host has CPUs
      assert.match(
        d.log,
        new RegExp(`starting 2 vm\\(s\\), ${navigator.hardwareConcurrency} at a time, 30 s apart`),
      );
    });
  },
);
