/**
 * A device worker started late (virtio-rng at its driver's DRIVER_OK, src/virtio/late_worker.ts) is started
 * after the VM process's lock-down, so it must be born confined: its thread shows the VM's uid, Seccomp 2 and
 * NoNewPrivs like every other, and it works. A control run without the lock-down shows the same thread
 * unconfined, so the assertions can fail. Before DRIVER_OK no worker runs, and a reset completes without one.
 */
import assert from "node:assert/strict";
import { bundleProblem } from "../src/build/bundles.ts";
import { vmIdentity } from "../src/privsep/lockdown.ts";
import { probeTargets, spawnLikeVmProcess, threadStatuses } from "./vm_process_fixture.ts";

const FIXTURE = new URL("./fixtures/lockdown/late_worker.ts", import.meta.url).pathname;
const VM_ID = 4244;
const IS_ROOT = Deno.uid() === 0;
const stale = bundleProblem();
const why = !IS_ROOT
  ? "lock-down needs root"
  : stale !== null
  ? `bundles ${stale}; run deno task bundle`
  : null;
if (why !== null) console.error(`(late worker test not run: ${why})`);

async function runFixture(mode: "lock" | "control") {
  const dir = await Deno.makeTempDir();
  try {
    const targets = await probeTargets(dir);
    const child = spawnLikeVmProcess(FIXTURE, [String(VM_ID), JSON.stringify(targets), mode]);
    const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
    let text = "";
    const line = async () => {
      while (!text.includes("\n")) {
        const { value, done } = await reader.read();
        if (done) throw new Error(`the fixture ended: ${text}`);
        text += value;
      }
      const l = text.slice(0, text.indexOf("\n"));
      text = text.slice(l.length + 1);
      return JSON.parse(l);
    };
    const writer = child.stdin.getWriter();
    try {
      const locked = await line();
      const before = threadStatuses(locked.pid);
      await writer.write(new TextEncoder().encode("go\n"));
      const started = await line();
      const after = threadStatuses(locked.pid);
      return { locked, started, before, after };
    } finally {
      await writer.close().catch(() => {});
      await reader.cancel().catch(() => {});
      const status = await child.status;
      const stderr = new TextDecoder().decode(
        (await new Response(child.stderr).arrayBuffer()) as ArrayBuffer,
      );
      assert.equal(status.code, 0, stderr);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test({
  name: "a late device worker: none before DRIVER_OK (a reset completes without it); started after the " +
    "lock-down, its thread has the VM's uid, Seccomp 2 and NoNewPrivs, and it serves",
  ignore: why !== null && Deno.env.get("CI") !== "true", // under CI, a test that cannot run fails
  fn: async () => {
    if (why !== null) throw new Error(`cannot run: ${why}`);
    const control = await runFixture("control");
    const r = await runFixture("lock");
    const uid = String(vmIdentity(VM_ID).uid);
    for (const run of [control, r]) {
      assert.equal(run.locked.started, false, "no worker before DRIVER_OK");
      assert.equal(run.locked.features[1] & 1, 1, "VERSION_1 published by the main thread");
      assert.equal(run.started.resetDone, true, "a reset before DRIVER_OK completes");
      assert.equal(run.started.startedAfterReset, false, "a reset does not start the worker");
      assert.equal(run.started.started, true, "DRIVER_OK started it");
      assert.equal(run.started.failure, null);
      assert.equal(run.started.stats.served, 0, "it answers: nothing served yet");
      for (const p of ["read", "write", "env", "net", "run", "sys", "ffi", "otherFile"]) {
        assert.notEqual(run.started.probe[p], "allowed", `${p}: the worker's Deno permissions are none`);
      }
    }
    const born = (run: typeof r) => [...run.after].filter(([tid]) => !run.before.has(tid));
    assert.ok(born(control).length >= 1, "DRIVER_OK started a thread");
    for (const [tid, s] of born(control)) {
      assert.equal(s.Seccomp, "0", `control: thread ${tid} (${s.Name}) is not confined: the test can fail`);
    }
    assert.ok(born(r).length >= 1, "DRIVER_OK started a thread");
    assert.equal(r.locked.uid, Number(uid));
    for (const [tid, s] of r.after) {
      assert.equal(s.Seccomp, "2", `thread ${tid} (${s.Name}): Seccomp`);
      assert.equal(s.NoNewPrivs, "1", `thread ${tid} (${s.Name}): NoNewPrivs`);
      assert.deepEqual(s.Uid.split(/\s+/), [uid, uid, uid, uid], `thread ${tid} (${s.Name}): Uid`);
    }
  },
});
