/**
 * The daemon end to end through cli.ts: a real vmd on a private socket, real VM processes on real KVM,
 * vmctl as a subprocess, consoles through real ptys.
 */
import { bundleProblem, bundleUrl } from "../src/build/bundles.ts";
import assert from "node:assert/strict";
import { buildKitGuest } from "../examples/guests/kit/build.ts";
import { kvmTest } from "./kvm_support.ts";
import { patternImage } from "./virtio_support.ts";
import { ConsoleSession, kitPaths, TestDaemon } from "./vmd_support.ts";

function twoVmConfig(echo: string): string {
  return `
vm "one" {
  boot "${echo}" { cmdline "vm=one" }
  memory 32M
  allow instance { memory }
}
vm "two" {
  boot "${echo}" { cmdline "vm=two" }
  memory 48M
}
vm "three" {
  disable
  boot "${echo}" { cmdline "vm=three" }
  memory 32M
}
`;
}

function alive(pid: number): boolean {
  try {
    Deno.statSync(`/proc/${pid}`);
    return true;
  } catch {
    return false;
  }
}

kvmTest(
  "vmd: two VMs from vm.conf, status, consoles through ptys, pause/unpause, stop/start/wait, kill -9, reload, -t, SIGTERM",
  async () => {
    const { echo } = await kitPaths();
    const d = await TestDaemon.start(twoVmConfig(echo));
    const pids: number[] = [];
    await d.run(async () => {
      // both enabled VMs run, each in its own VM process with real memory; the disabled one does not
      const one = await d.waitState("one", "running");
      const two = await d.waitState("two", "running");
      assert.equal((await d.vm("three")).state, "stopped");
      for (const vm of [one, two]) {
        assert.ok(vm.pid !== null && alive(vm.pid));
        pids.push(vm.pid);
        const cmdline = Deno.readTextFileSync(`/proc/${vm.pid}/cmdline`).split("\0");
        // its bundle while the bundles are fresh (`deno task ok` builds them), else the sources
        if (bundleProblem() === null) {
          assert.ok(cmdline.includes(bundleUrl("vm-process").pathname), cmdline.join(" "));
        } else assert.ok(cmdline.includes("vm-process"), cmdline.join(" "));
        assert.ok(
          !cmdline.includes("-A") && !cmdline.includes("--allow-all"),
          "VM processes get narrow flags",
        );
        // CURMEM is resident guest RAM: some, never more than the guest has
        assert.ok(vm.curmem !== null && vm.curmem > 0 && vm.curmem <= vm.maxmem, `curmem ${vm.curmem}`);
        assert.match(vm.tty ?? "", /^\/dev\/pts\/\d+$/);
      }
      assert.notEqual(one.pid, two.pid);

      // a VM process holds its console's master (opened by vmd, inherited) and none of vmd's other fds
      const listenInode = Deno.readTextFileSync("/proc/net/unix").split("\n")
        .find((l) => l.endsWith(` ${d.socket}`))?.split(/\s+/)[6];
      assert.ok(listenInode !== undefined, "vmd's socket is in /proc/net/unix");
      for (const vm of [one, two]) {
        const links = [...Deno.readDirSync(`/proc/${vm.pid}/fd`)].map((e) => {
          try {
            return Deno.readLinkSync(`/proc/${vm.pid}/fd/${e.name}`);
          } catch {
            return "";
          }
        });
        assert.equal(links.filter((l) => l === "/dev/ptmx").length, 1, links.join(" "));
        assert.ok(!links.some((l) => l.startsWith("/dev/pts/")), "the slave stays with vmd");
        assert.ok(!links.includes(`socket:[${listenInode}]`), "the control socket is not inherited");
        assert.ok(!links.some((l) => l.endsWith("vm.conf")), "nor vm.conf");
      }
      assert.equal(one.maxmem, 32 << 20);
      assert.equal(two.maxmem, 48 << 20);

      const st = await d.vmctl(["status"]);
      assert.equal(st.code, 0, st.stderr);
      const lines = st.stdout.trimEnd().split("\n");
      assert.match(lines[0], /^\s+ID\s+PID\s+VCPUS\s+MAXMEM\s+CURMEM\s+TTY\s+OWNER\s+STATE\s+NAME$/);
      assert.match(
        lines[1],
        new RegExp(
          `^\\s+1\\s+${one.pid}\\s+1\\s+32\\.0M\\s+\\d+(\\.\\d)?[KM]\\s+pts/\\d+\\s+root\\s+running one$`,
        ),
      );
      assert.match(lines[3], /^\s+3\s+-\s+1\s+32\.0M\s+-\s+-\s+root\s+stopped three$/);
      const shown = await d.vmctl(["sho", "-r"]); // a prefix; -r lists running VMs only
      assert.equal(shown.stdout.trimEnd().split("\n").length, 3);

      // each console shows what its guest printed at boot, and the guest answers input
      for (const name of ["one", "two"]) {
        const c = new ConsoleSession(d, name);
        await c.expect(`echo: ready vm=${name}\n`);
        await c.send(`ping ${name}\r`);
        await c.expect(`PING ${name.toUpperCase()}\r\n`);
        assert.equal(await c.detach(), 0);
      }
      assert.equal((await d.vm("one")).state, "running", "detaching leaves the VM running");

      // pause: the guest does not answer until unpaused
      assert.equal((await d.vmctl(["pause", "one"])).code, 0);
      assert.equal((await d.vm("one")).state, "paused");
      const c = new ConsoleSession(d, "one");
      await c.send("zz\r");
      await new Promise((r) => setTimeout(r, 500));
      assert.ok(!c.output.includes("ZZ"), "a paused guest does not run");
      assert.equal((await d.vmctl(["unpause", "1"])).code, 0);
      await c.expect("ZZ\r\n");
      assert.equal(await c.detach(), 0);
      const again = await d.vmctl(["unpause", "one"]);
      assert.equal(again.code, 1);
      assert.match(again.stderr, /not paused/);

      // wait returns when the VM stops; stop -w waits too
      const waiting = d.vmctl(["wait", "one"]);
      await new Promise((r) => setTimeout(r, 300));
      const stopped = await d.vmctl(["stop", "-w", "one"]);
      assert.equal(stopped.code, 0, stopped.stderr);
      assert.equal((await waiting).code, 0);
      assert.equal((await d.vm("one")).state, "stopped");
      assert.ok(!alive(pids[0]), "the stopped VM's process is gone");
      assert.equal((await d.vmctl(["stop", "one"])).code, 1, "stopping a stopped VM fails");

      // start again: a new process and console
      const started = await d.vmctl(["start", "one"]);
      assert.equal(started.code, 0, started.stderr);
      assert.match(started.stderr, /started vm 1 successfully, tty \/dev\/pts\/\d+/);
      const restarted = await d.waitState("one", "running");
      assert.notEqual(restarted.pid, pids[0]);
      pids.push(restarted.pid!);

      // kill -9 of one VM process: noticed within a second; the other keeps running and answering
      Deno.kill(restarted.pid!, "SIGKILL");
      const t0 = Date.now();
      const dead = await d.waitState("one", "stopped", 1000);
      assert.ok(Date.now() - t0 <= 1000);
      assert.match(dead.lastExit ?? "", /vm process died \(signal SIGKILL\)/);
      const other = await d.vm("two");
      assert.equal(other.state, "running");
      assert.equal(other.pid, pids[1]);
      // a console reply names the tty and carries the row without CURMEM (not measured: it would slow every
      // `vmctl start -c` and `vmctl console`); a status request measures it
      const con = await d.request({ v: 1, type: "console", target: "two" });
      assert.ok(con.type === "console", JSON.stringify(con));
      assert.equal(con.tty, other.tty);
      assert.deepEqual({ ...con.vm, curmem: other.curmem }, other);
      assert.equal(con.vm.curmem, null);
      assert.ok(other.curmem !== null && other.curmem > 0);
      const c2 = new ConsoleSession(d, "two");
      await c2.send("still\r");
      await c2.expect("STILL\r\n");
      assert.equal(await c2.detach(), 0);

      // -t: an instance of "one" with more memory (allow instance { memory })
      const inst = await d.vmctl(["start", "-t", "one", "-m", "40M", "inst"]);
      assert.equal(inst.code, 0, inst.stderr);
      const iv = await d.waitState("inst", "running");
      assert.equal(iv.maxmem, 40 << 20);
      pids.push(iv.pid!);
      // root is not restricted by allow instance (vmd(8)): "two" does not allow memory, root changes it anyway
      const rootInst = await d.vmctl(["start", "-t", "two", "-m", "40M", "inst2"]);
      assert.equal(rootInst.code, 0, rootInst.stderr);
      const iv2 = await d.waitState("inst2", "running");
      assert.equal(iv2.maxmem, 40 << 20);
      pids.push(iv2.pid!);

      // reload: a changed definition applies to a stopped VM, and a newly enabled one starts
      await Deno.writeTextFile(
        `${d.dir}/vm.conf`,
        twoVmConfig(echo).replace("memory 32M\n  allow", "memory 24M\n  allow").replace("  disable\n", ""),
      );
      const rl = await d.vmctl(["reload"]);
      assert.equal(rl.code, 0, rl.stderr);
      assert.equal((await d.vm("one")).maxmem, 24 << 20);
      const three = await d.waitState("three", "running");
      pids.push(three.pid!);
      assert.equal((await d.vm("two")).pid, pids[1], "reload leaves running VMs alone");

      // SIGTERM stops every VM and exits, leaving no VM process behind
      assert.equal(await d.terminate(), 0);
      for (const pid of pids) assert.ok(!alive(pid), `VM process ${pid} is gone`);
      assert.ok(!(await Deno.stat(d.socket).then(() => true, () => false)), "the socket is removed");
    });
  },
);

kvmTest(
  "vmd: ad hoc start -b and start -c, load, log, stop -a, reset; unsupported flags say so",
  async () => {
    const { echo, hello } = await kitPaths();
    const d = await TestDaemon.start(`vm "base" {\n  disable\n  boot "${echo}"\n  memory 16M\n}\n`);
    await d.run(async () => {
      // an ad hoc VM with our Linux extensions, attached at once with -c; it keeps running after ~.
      const c = new ConsoleSession(d, [
        "start",
        "-c",
        "-b",
        echo,
        "--cmdline",
        "adhoc=1",
        "--cpus",
        "1",
        "-m",
        "24M",
        "adhoc",
      ]);
      await c.expect("echo: ready adhoc=1\n");
      await c.send("hi\r");
      await c.expect("HI\r\n");
      assert.equal(await c.detach(), 0);
      const adhoc = await d.waitState("adhoc", "running");
      assert.equal(adhoc.maxmem, 24 << 20);

      // a kernel that cannot be read: the start fails with the reason
      const missing = await d.vmctl(["start", "-b", `${d.dir}/no-such-kernel`, "nokernel"]);
      assert.equal(missing.code, 1);
      assert.match(missing.stderr, /failed to start: .*no-such-kernel/);

      // a guest that ends by itself: status says how
      assert.equal((await d.vmctl(["start", "-b", hello, "-m", "16M", "short"])).code, 0);
      const short = await d.waitState("short", "stopped");
      assert.equal(short.lastExit, "guest wrote 16 to the exit port");

      // load adds the VMs of another file and starts the enabled ones
      await Deno.writeTextFile(`${d.dir}/more.conf`, `vm "loaded" {\n  boot "${echo}"\n  memory 16M\n}\n`);
      assert.equal((await d.vmctl(["load", `${d.dir}/more.conf`])).code, 0);
      await d.waitState("loaded", "running");

      assert.equal((await d.vmctl(["log", "brief"])).code, 0);
      assert.equal((await d.vmctl(["log", "loud"])).code, 1);

      // a defined vm keeps its own CD-ROM and NICs (-r, -L are for new vms); a missing ISO is named
      for (
        const [args, why] of [
          [["start", "-L", "base"], /only -b and -B apply to it/],
          [["start", "-r", "/tmp/x.iso", "base"], /only -b and -B apply to it/],
          [
            ["start", "-r", "/nonexistent/x.iso", "-m", "64M", "newvm"],
            /\/nonexistent\/x\.iso: no such CD-ROM image/,
          ],
        ] as const
      ) {
        const r = await d.vmctl([...args]);
        assert.equal(r.code, 1);
        assert.match(r.stderr, why);
      }
      assert.match((await d.vmctl(["st"])).stderr, /ambiguous/);

      // stop -a stops every running VM
      const all = await d.vmctl(["stop", "-a", "-w"]);
      assert.equal(all.code, 0, all.stderr);
      assert.ok((await d.status()).every((v) => v.state === "stopped"));

      // SIGHUP re-reads vm.conf: a VM added to the file starts
      await Deno.writeTextFile(
        `${d.dir}/vm.conf`,
        `vm "base" {\n  disable\n  boot "${echo}"\n  memory 16M\n}\nvm "hup" {\n  boot "${echo}"\n  memory 16M\n}\n`,
      );
      d.proc.kill("SIGHUP");
      await d.waitState("hup", "running");

      // reset stops and forgets every VM without reading vm.conf (as vmd(8)); reload reads it, ids from 1
      await d.vmctl(["start", "adhoc"]);
      assert.equal((await d.vmctl(["reset"])).code, 0);
      assert.deepEqual(await d.status(), []);
      assert.equal((await d.vmctl(["reload"])).code, 0);
      assert.deepEqual((await d.status()).map((v) => [v.id, v.name]), [[1, "base"], [2, "hup"]]);
    });
  },
);

kvmTest("vmd: staggered start starts one VM after the other", async () => {
  const { echo } = await kitPaths();
  const vm = (name: string) => `vm "${name}" {\n  boot "${echo}"\n  memory 16M\n}\n`;
  const d = await TestDaemon.start(`staggered start parallel 1 delay 30\n${vm("s1")}${vm("s2")}`);
  try {
    await d.waitState("s1", "running");
    await d.waitState("s2", "running");
    const log = d.log;
    assert.ok(log.indexOf("vm s1: running") >= 0);
    assert.ok(log.indexOf("vm s1: running") < log.indexOf("vm s2: started process"), log);
  } finally {
    await d.cleanup();
  }
});

kvmTest("vmd: a VM's disk from vm.conf is its virtio-blk disk; the guest reads and writes it", async () => {
  const guest = (await buildKitGuest("virtio_blk")).path;
  const d = await TestDaemon.start("");
  try {
    const disk = `${d.dir}/disk.img`;
    await patternImage(disk);
    await Deno.writeTextFile(
      `${d.dir}/vm.conf`,
      `vm "disky" {\n  boot "${guest}"\n  memory 32M\n  disk "${disk}"\n}\n`,
    );
    assert.equal((await d.vmctl(["reload"])).code, 0);
    const vm = await d.waitState("disky", "stopped", 60_000).catch(async (e) => {
      throw new Error(`${(e as Error).message}: ${JSON.stringify(await d.status())}`);
    });
    assert.equal(vm.lastExit, "guest wrote 32 to the exit port", d.log);
    const img = await Deno.readFile(disk);
    for (let j = 0; j < 8 * 512; j++) {
      assert.equal(img[100 * 512 + j], (0xa5 ^ j) & 0xff, `byte ${j} of sectors 100..107`);
    }
    assert.equal(img[99 * 512 + 5], (99 ^ 5) & 0xff, "sector 99 untouched");

    // an ad hoc VM on a qcow2 overlay: its process may read the backing image and write only the overlay
    const base = `${d.dir}/base.img`;
    await patternImage(base);
    const overlay = `${d.dir}/overlay.qcow2`;
    assert.equal((await d.vmctl(["create", "-b", base, overlay])).code, 0);
    const started = await d.vmctl(["start", "-b", guest, "-m", "32M", "-d", overlay, "ovl"]);
    assert.equal(started.code, 0, started.stderr);
    const ovl = await d.waitState("ovl", "stopped", 60_000);
    assert.equal(ovl.lastExit, "guest wrote 32 to the exit port", d.log);
    const untouched = await Deno.readFile(base);
    assert.deepEqual(
      untouched,
      await (async () => {
        const p = `${d.dir}/fresh.img`;
        await patternImage(p);
        return await Deno.readFile(p);
      })(),
      "the backing image is untouched",
    );
  } finally {
    await d.cleanup();
  }
});

kvmTest(
  "vmd: stop without -f sends Ctrl-Alt-Del and the guest's reset ends it as stopped; stop -f kills at once",
  async () => {
    const kbd = (await buildKitGuest("kbd")).path;
    const d = await TestDaemon.start(`vm "kbd" {\n  boot "${kbd}"\n  memory 16M\n}\n`);
    await d.run(async () => {
      const first = await d.waitState("kbd", "running");
      const c = new ConsoleSession(d, "kbd");
      await c.expect("kbd: ready, id 0xab 0x41\n");
      // graceful: the guest reads the keys through IRQ 1 and resets; the VM is stopped, not restarted
      const t0 = Date.now();
      const stopped = await d.vmctl(["stop", "-w", "kbd"]);
      const took = Date.now() - t0;
      assert.equal(stopped.code, 0, stopped.stderr);
      assert.ok(took < 5_000, `a graceful stop took ${took} ms (the force timeout is 20 s)`);
      await c.expect("kbd: ctrl-alt-del, resetting\n");
      await c.ended(); // the console ends with the VM
      assert.match(c.output, /scancode 0x1d\r?\nscancode 0x38\r?\nscancode 0xe0\r?\nscancode 0x53\r?\n/);
      const vm = await d.vm("kbd");
      assert.equal(vm.state, "stopped");
      assert.equal(vm.restarts, 0);
      assert.match(vm.lastExit ?? "", /asked to shut down/);
      assert.ok(first.pid !== null && !alive(first.pid));
      assert.match(d.log, /vm kbd: sent Ctrl-Alt-Del/);
      assert.doesNotMatch(d.log, /guest rebooted after|killing it/);
      await new Promise((r) => setTimeout(r, 300));
      assert.equal((await d.vm("kbd")).state, "stopped", "it stays stopped");

      // forced: killed at once, whatever the guest would do
      assert.equal((await d.vmctl(["start", "kbd"])).code, 0);
      const again = await d.waitState("kbd", "running");
      const c2 = new ConsoleSession(d, "kbd");
      await c2.expect("kbd: ready");
      await c2.detach();
      const t1 = Date.now();
      const forced = await d.vmctl(["stop", "-f", "-w", "kbd"]);
      assert.equal(forced.code, 0, forced.stderr);
      assert.ok(Date.now() - t1 < 5_000);
      const killed = await d.vm("kbd");
      assert.equal(killed.state, "stopped");
      assert.match(killed.lastExit ?? "", /signal/);
      assert.ok(again.pid !== null && !alive(again.pid));
      assert.equal(d.log.match(/sent Ctrl-Alt-Del/g)?.length, 1);
    });
  },
);
