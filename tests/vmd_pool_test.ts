/**
 * The warm pool is invisible to users: a VM started from a pooled process boots, behaves, is confined (its
 * own uid, no_new_privs, seccomp, only its own VM's descriptors) and is accounted for (`vmctl status`) like
 * one started with `pool size 0`; a pool process that dies is replaced; `pool size 0` keeps none; vmd's exit
 * leaves none behind. Real daemon, real VM processes on /dev/kvm, vmctl as a subprocess.
 *
 * @module
 */
import assert from "node:assert/strict";
import { kvmTest } from "./kvm_support.ts";
import { childrenOf, fdKinds } from "./soak_support.ts";
import { patternImage } from "./virtio_support.ts";
import { ConsoleSession, kitPaths, TestDaemon, until } from "./vmd_support.ts";
import { VM_UID_BASE } from "../src/privsep/lockdown.ts";

/** `/proc/<pid>/status` as a map of its fields. */
function procStatus(pid: number): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of Deno.readTextFileSync(`/proc/${pid}/status`).split("\n")) {
    const at = line.indexOf(":");
    if (at > 0) out[line.slice(0, at)] = line.slice(at + 1).trim();
  }
  return out;
}

/** Where each of `pid`'s descriptors points, with pipe/socket inode numbers and pty numbers dropped. */
function fdTargets(pid: number): string[] {
  const out: string[] = [];
  for (const e of Deno.readDirSync(`/proc/${pid}/fd`)) {
    try {
      out.push(
        Deno.readLinkSync(`/proc/${pid}/fd/${e.name}`).replace(/:\[\d+\]$/, "").replace(
          /^\/dev\/pts\/\d+$/,
          "pts",
        ),
      );
    } catch { /* closed while listing */ }
  }
  return out.sort();
}

function alive(pid: number): boolean {
  try {
    return !/^State:\s+Z/m.test(Deno.readTextFileSync(`/proc/${pid}/status`));
  } catch {
    return false;
  }
}

/** The daemon's children that are not VM processes: its pool. */
async function poolPids(d: TestDaemon): Promise<number[]> {
  const vms = new Set((await d.status()).map((v) => v.pid));
  return childrenOf(d.proc.pid).filter((p) => !vms.has(p) && alive(p));
}

function vmConfig(pool: number, echo: string, disk: string): string {
  const vm = (name: string, image: string) =>
    `vm "${name}" {\n  disable\n  boot "${echo}"\n  memory 32M\n  disk "${image}"\n}\n`;
  return `pool size ${pool}\n${vm("pooled", disk)}${vm("fresh", `${disk}.2`)}`;
}

kvmTest("vmd pool: a pooled VM boots, is confined and accounted for exactly like a fresh one", async () => {
  const { echo } = await kitPaths();
  const d = await TestDaemon.start("pool size 1\n");
  try {
    const disk = `${d.dir}/disk.img`;
    await patternImage(disk);
    await patternImage(`${disk}.2`);
    await Deno.writeTextFile(`${d.dir}/vm.conf`, vmConfig(1, echo, disk));
    assert.equal((await d.vmctl(["reload"])).code, 0);
    const [waiting] = await until("one pool process", 15_000, async () => {
      const p = await poolPids(d);
      return p.length === 1 ? p : undefined;
    });
    const pooledConsole = new ConsoleSession(d, ["start", "-c", "pooled"]);
    await pooledConsole.expect("echo: ready", 15_000);
    const pooled = await d.waitState("pooled", "running");
    assert.equal(pooled.pid, waiting, "the VM took the waiting process");
    // a replacement waits again, and is not a VM: status lists only the VMs
    const [next] = await until("a replacement pool process", 15_000, async () => {
      const p = await poolPids(d);
      return p.length === 1 ? p : undefined;
    });
    assert.notEqual(next, waiting);
    assert.deepEqual((await d.status()).map((v) => v.name).sort(), ["fresh", "pooled"]);
    assert.ok(!(await d.status()).some((v) => v.pid === next), "a pool process has no status row");

    // the same VM from a process spawned for it (pool size 0)
    await Deno.writeTextFile(`${d.dir}/vm.conf`, vmConfig(0, echo, disk));
    assert.equal((await d.vmctl(["reload"])).code, 0);
    await until("the pool emptied", 10_000, async () => (await poolPids(d)).length === 0 ? true : undefined);
    const freshConsole = new ConsoleSession(d, ["start", "-c", "fresh"]);
    await freshConsole.expect("echo: ready", 15_000);
    const fresh = await d.waitState("fresh", "running");
    assert.ok(fresh.pid !== null && pooled.pid !== null);
    assert.ok(fresh.pid !== next, "pool size 0: the VM got a process of its own");

    for (const [vm, pid] of [[pooled, pooled.pid], [fresh, fresh.pid]] as const) {
      const s = procStatus(pid);
      assert.equal(s.Uid.split(/\s+/)[0], String(VM_UID_BASE + vm.id), `${vm.name}: Uid`);
      assert.equal(s.Seccomp, "2", `${vm.name}: Seccomp`);
      assert.equal(s.NoNewPrivs, "1", `${vm.name}: NoNewPrivs`);
      assert.equal(s.CapEff, "0000000000000000", `${vm.name}: CapEff`);
    }
    // only its own VM's descriptors: the same kinds and targets as the fresh one, no leftover channel
    assert.deepEqual(fdKinds(pooled.pid), fdKinds(fresh.pid));
    assert.deepEqual(fdTargets(pooled.pid), fdTargets(fresh.pid).map((t) => t === `${disk}.2` ? disk : t));
    assert.ok(!fdTargets(pooled.pid).includes(`${disk}.2`), "the pooled VM holds nothing of the fresh VM");
    assert.ok(fdTargets(pooled.pid).includes(disk));

    // it behaves: console echo, pause/unpause, accounted (CURMEM), stops
    await pooledConsole.send("hi pool\r");
    await pooledConsole.expect("HI POOL\r\n", 10_000);
    assert.ok((await d.vm("pooled")).curmem !== null);
    assert.equal((await d.vmctl(["pause", "pooled"])).code, 0);
    await d.waitState("pooled", "paused");
    assert.equal((await d.vmctl(["unpause", "pooled"])).code, 0);
    await d.waitState("pooled", "running");
    assert.equal((await d.vmctl(["stop", "-f", "pooled"])).code, 0);
    assert.equal((await d.vmctl(["stop", "-f", "fresh"])).code, 0);
    await pooledConsole.ended();
    await freshConsole.ended();
    await d.waitState("pooled", "stopped");
    await d.waitState("fresh", "stopped");
    assert.match(d.log, /vm pooled: started process \d+/);
  } finally {
    await d.cleanup();
  }
});

kvmTest(
  "vmd pool: a pool process that dies is replaced; vmd's exit leaves none; size 0 keeps none",
  async () => {
    const { echo } = await kitPaths();
    const d = await TestDaemon.start(`pool size 2\nvm "v" {\n  disable\n  boot "${echo}"\n  memory 16M\n}\n`);
    let all: number[] = [];
    try {
      const two = await until("two pool processes", 15_000, async () => {
        const p = await poolPids(d);
        return p.length === 2 ? p : undefined;
      });
      Deno.kill(two[0], "SIGKILL");
      const after = await until("a replacement for the killed one", 15_000, async () => {
        const p = await poolPids(d);
        return p.length === 2 && !p.includes(two[0]) ? p : undefined;
      });
      assert.ok(after.includes(two[1]));
      assert.match(d.log, new RegExp(`vm pool: process ${two[0]} died while waiting \\(signal SIGKILL\\)`));
      // a VM still starts
      assert.equal((await d.vmctl(["start", "v"])).code, 0);
      const v = await d.waitState("v", "running");
      assert.ok(v.pid !== null && after.includes(v.pid));
      all = [...await poolPids(d), v.pid];
    } finally {
      await d.cleanup();
    }
    await until(
      "every pool and VM process gone after vmd's exit",
      10_000,
      () => all.every((p) => !alive(p)) || undefined,
    );

    const none = await TestDaemon.start(
      `pool size 0\nvm "v" {\n  disable\n  boot "${echo}"\n  memory 16M\n}\n`,
    );
    try {
      await new Promise((r) => setTimeout(r, 1_000));
      assert.deepEqual(childrenOf(none.proc.pid), []);
      assert.equal((await none.vmctl(["start", "v"])).code, 0);
      const v = await none.waitState("v", "running");
      assert.deepEqual(childrenOf(none.proc.pid), [v.pid]);
      assert.equal((await none.vmctl(["stop", "-f", "v"])).code, 0);
      await none.waitState("v", "stopped");
      await until("no child", 10_000, () => childrenOf(none.proc.pid).every((p) => !alive(p)) || undefined);
    } finally {
      await none.cleanup();
    }
  },
);
