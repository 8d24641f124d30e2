import assert from "node:assert/strict";
import { buildFlatGuest } from "../examples/guests/build.ts";
import { loadFlatGuest } from "../src/vm/flat_guest.ts";
import { Vm } from "../src/vm/vm.ts";
import { VcpuState } from "../src/vcpu/vcpu_state.ts";
import { validateToVcpu } from "../src/vcpu/vcpu_messages.ts";
import { kvmTest } from "./kvm_support.ts";

/** The scheduler state letter of thread `tid` of this process (R running, S sleeping, ...), or undefined. */
function threadState(tid: number): string | undefined {
  try {
    const stat = Deno.readTextFileSync(`/proc/self/task/${tid}/stat`);
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ")[0];
  } catch {
    return undefined;
  }
}

/** CPU time (user + system ticks) consumed by thread `tid` so far. */
function threadTicks(tid: number): number {
  const stat = Deno.readTextFileSync(`/proc/self/task/${tid}/stat`);
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return Number(f[11]) + Number(f[12]);
}

async function spinningVm(): Promise<{ vm: Vm; tid: number }> {
  const vm = Vm.create({ memory: 16 << 20 });
  loadFlatGuest(vm, await buildFlatGuest("spin"));
  await vm.start();
  // wait for the guest's banner: it is past its I/O and spinning in guest mode
  let out = "";
  const deadline = Date.now() + 5000;
  while (!out.includes("spinning\n") && Date.now() < deadline) {
    await vm.consoleOut.waitForData(50);
    out += new TextDecoder().decode(vm.consoleOut.drain());
  }
  assert.equal(out, "spinning\n");
  const tid = vm.vcpus[0].tid;
  assert.ok(threadState(tid) !== undefined, `vCPU thread ${tid} is one of this process's threads`);
  return { vm, tid };
}

kvmTest(
  "pause and resume a guest in an endless loop, each within 1 s; the paused thread sleeps",
  async () => {
    const { vm, tid } = await spinningVm();
    try {
      const h = vm.vcpus[0];
      assert.equal(threadState(tid), "R");
      let t0 = performance.now();
      await vm.pause();
      const pauseMs = performance.now() - t0;
      assert.ok(pauseMs < 1000, `pause took ${pauseMs} ms`);
      assert.equal(h.state, VcpuState.Paused);
      assert.equal(h.workerState, VcpuState.Paused);
      // paused means asleep: no CPU time accrues over 300 ms
      const before = threadTicks(tid);
      await new Promise((r) => setTimeout(r, 300));
      assert.equal(threadState(tid), "S");
      assert.ok(threadTicks(tid) - before <= 1, "a paused vCPU thread must not spin");

      t0 = performance.now();
      await vm.resume();
      assert.ok(performance.now() - t0 < 1000);
      assert.equal(h.workerState, VcpuState.Running);
      // running again: the thread accrues CPU time (polled, since the suite shares two cores)
      const resumedTicks = threadTicks(tid);
      const deadline = Date.now() + 3000;
      while (threadTicks(tid) - resumedTicks < 5 && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 50));
      }
      assert.ok(threadTicks(tid) - resumedTicks >= 5, "a resumed vCPU runs its guest again");
    } finally {
      await vm.stop();
      vm.close();
    }
  },
);

kvmTest("stop a spinning guest within 1 s and leave no vCPU thread behind", async () => {
  const { vm, tid } = await spinningVm();
  const t0 = performance.now();
  const result = await vm.stop();
  const stopMs = performance.now() - t0;
  vm.close();
  assert.ok(stopMs < 1000, `stop took ${stopMs} ms`);
  assert.deepEqual(result.exit, { kind: "stopped" });
  assert.equal(vm.vcpus[0].state, VcpuState.Stopped);
  // the worker's thread exits once terminated
  const deadline = Date.now() + 1000;
  while (threadState(tid) !== undefined && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  assert.equal(threadState(tid), undefined, "the vCPU thread is gone");
});

kvmTest("stop a paused guest; a stopped vCPU refuses to resume", async () => {
  const { vm } = await spinningVm();
  await vm.pause();
  const result = await vm.stop();
  vm.close();
  assert.deepEqual(result.exit, { kind: "stopped" });
  assert.ok(vm.vcpus[0].exits > 0);
  await assert.rejects(() => vm.vcpus[0].resume(), { name: "VcpuStateError" });
});

kvmTest("stop a vCPU that was spawned but never started: it ends at once with reason stopped", async () => {
  const vm = Vm.create({ memory: 16 << 20 });
  try {
    loadFlatGuest(vm, await buildFlatGuest("spin"));
    await vm.spawn();
    const t0 = performance.now();
    const exit = await vm.vcpus[0].stop();
    assert.ok(performance.now() - t0 < 1000);
    assert.deepEqual(exit, { kind: "stopped" });
    assert.equal(vm.vcpus[0].exits, 0, "it never entered KVM_RUN");
  } finally {
    vm.close();
  }
});

Deno.test("a pre-warmed vCPU worker's warm message must name libc by an absolute path", () => {
  assert.equal(validateToVcpu({ type: "warm", libcPath: "/lib/x86_64-linux-gnu/libc.so.6" }), undefined);
  assert.equal(validateToVcpu({ type: "warm", libcPath: "libc.so.6" }), "warm: libcPath must be absolute");
  assert.equal(validateToVcpu({ type: "warm" }), "warm: libcPath must be absolute");
});
