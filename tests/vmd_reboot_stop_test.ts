/**
 * The daemon's two clocks, with real guests on real KVM, in one daemon so their waits overlap:
 *
 * - the reboot limit (vmd(8)'s VM_START_RATE_SEC / VM_START_RATE_LIMIT): a reboot less than 6 s after the VM
 *   started is a fast one, and the 3rd fast reboot in a row leaves the VM stopped; a guest that reboots at
 *   once and one that reboots 1.5 s after starting are both stopped after their 3rd reboot, one that waits
 *   longer than 6 s before each reboot keeps being restarted;
 * - the stop timeout: `vmctl stop` types Ctrl-Alt-Del and kills a guest that has not ended 20 s later;
 *   `stop -w` waits for that, a plain `stop` does not.
 */
import assert from "node:assert/strict";
import { buildKitGuest } from "../examples/guests/kit/build.ts";
import { kvmTest } from "./kvm_support.ts";
import { ConsoleSession, TestDaemon, until } from "./vmd_support.ts";

/** The stop timeout (DEFAULT_TIMING), which the daemon under test is not told to shorten. */
const STOP_TIMEOUT_S = 20;

/** A vm.conf block. */
function vm(name: string, kernel: string, cmdline: string): string {
  const boot = cmdline === "" ? `"${kernel}"` : `"${kernel}" { cmdline "${cmdline}" }`;
  return `vm "${name}" {\n  boot ${boot}\n  memory 16M\n}\n`;
}

/** Whether process `pid` exists. */
function alive(pid: number): boolean {
  try {
    Deno.kill(pid, "SIGCONT");
    return true;
  } catch {
    return false;
  }
}

/** The seconds each "guest rebooted after N s" line of `name` in the log gives. */
function rebootDelays(log: string, name: string): number[] {
  return [...log.matchAll(new RegExp(`vm ${name}: guest rebooted after ([0-9.]+) s; restarting`, "g"))]
    .map((m) => Number(m[1]));
}

kvmTest(
  "vmd: the 3rd reboot in a row within 6 s of starting leaves a VM stopped, slower reboots restart it; " +
    "a guest that ignores Ctrl-Alt-Del is killed after 20 s",
  async () => {
    const [reboot, kbd] = await Promise.all([buildKitGuest("reboot"), buildKitGuest("kbd")]);
    const d = await TestDaemon.start(
      vm("looper", reboot.path, "") +
        vm("quick", reboot.path, "delay_ms=1500") +
        vm("slow", reboot.path, "delay_ms=6300") +
        vm("deaf", kbd.path, "kbd.deaf") +
        vm("deaf2", kbd.path, "kbd.deaf"),
    );
    await d.run(async () => {
      const fastLoop = async (name: string) => {
        const v = await until(`${name} left stopped`, 40_000, async () => {
          const s = await d.vm(name);
          return s.state === "stopped" && s.restarts > 0 ? s : undefined;
        });
        // started, restarted twice, and the 3rd fast reboot is refused (vmd(8): limit 3)
        assert.equal(v.restarts, 2, `${name}: ${JSON.stringify(v)}`);
        assert.match(
          v.lastExit ?? "",
          /^guest requested a reboot; rebooted 3 times in a row within 6 s of starting, left stopped$/,
        );
        assert.equal(rebootDelays(d.log, name).length, 2);
        assert.match(d.log, new RegExp(`vm ${name}: guest requested a reboot; rebooted 3 times in a row`));
        return v;
      };

      const slowLoop = async () => {
        // three reboots, each more than 6 s after its start: each one restarts the VM, past the limit of 3
        const v = await until("slow restarted 3 times", 60_000, async () => {
          const s = await d.vm("slow");
          return s.restarts >= 3 ? s : undefined;
        });
        assert.notEqual(v.state, "stopped", JSON.stringify(v));
        const delays = rebootDelays(d.log, "slow");
        assert.ok(delays.length >= 3 && delays.every((s) => s >= 6.3), `reboot delays ${delays}`);
        assert.match(d.log, /vm slow: .*fast reboots in a row: 0 of 3\)/);
        assert.doesNotMatch(d.log, /vm slow: guest requested a reboot; rebooted 3 times/);
        const stop = await d.vmctl(["stop", "-f", "slow"]);
        assert.equal(stop.code, 0, stop.stderr);
      };

      const deafStops = async () => {
        // both guests have set their keyboard up (so they can be asked) and then ignore it
        for (const name of ["deaf", "deaf2"]) {
          await d.waitState(name, "running", 20_000);
          const c = new ConsoleSession(d, name);
          await c.expect("kbd: deaf: ignoring every key", 20_000);
          assert.equal(await c.detach(), 0);
        }
        const pid = (await d.vm("deaf")).pid!;
        const pid2 = (await d.vm("deaf2")).pid!;
        // a plain stop asks and returns; stop -w asks and waits until the daemon has killed the VM
        const t0 = performance.now();
        const [waited, asked] = await Promise.all([
          d.vmctl(["stop", "-w", "deaf"], { timeoutMs: 60_000 }),
          d.vmctl(["stop", "deaf2"]).then((r) => ({ ...r, s: (performance.now() - t0) / 1000 })),
        ]);
        const s = (performance.now() - t0) / 1000;
        assert.equal(asked.code, 0, asked.stderr);
        assert.match(asked.stderr, /^stopping vm deaf2: requested to shutdown vm \d+\n$/);
        assert.ok(asked.s < 10, `a plain stop returned after ${asked.s} s`);
        assert.equal(waited.code, 0, waited.stderr);
        assert.match(waited.stderr, /^stopping vm deaf: terminated vm \d+\n$/);
        assert.ok(s >= STOP_TIMEOUT_S - 1 && s < STOP_TIMEOUT_S + 10, `stop -w took ${s} s`);
        assert.match(d.log, /vm deaf: sent Ctrl-Alt-Del; waiting up to 20000 ms for the guest/);
        assert.match(d.log, /vm deaf: did not stop within 20000 ms; killing it/);
        const v = await d.vm("deaf");
        assert.equal(v.state, "stopped");
        assert.equal(v.pid, null);
        assert.equal(v.lastExit, "killed: the guest did not shut down within 20 s of being asked");
        assert.ok(!alive(pid), `VM process ${pid} is gone`);
        assert.equal(v.restarts, 0, "a stop is not a reboot");
        // deaf2 was asked at the same moment, so it goes the same way
        const v2 = await d.waitState("deaf2", "stopped", 15_000);
        assert.equal(v2.lastExit, "killed: the guest did not shut down within 20 s of being asked");
        assert.ok(!alive(pid2), `VM process ${pid2} is gone`);
      };

      await Promise.all([fastLoop("looper"), fastLoop("quick"), slowLoop(), deafStops()]);
      const quick = rebootDelays(d.log, "quick");
      assert.ok(quick.every((s) => s >= 1.5 && s < 6), `quick's reboots came after ${quick} s`);
      assert.equal((await d.vm("looper")).state, "stopped", "a VM left stopped stays stopped");
    });
  },
);
