/**
 * Claims of docs/vmd.md that had no test, each on a real daemon with real kit guests: a reload with errors
 * (vmctl reload and SIGHUP) keeps the configuration in force; `vmctl wait` prints how the VM ended; a second
 * vmd refuses a live socket and a path that is not a socket, and takes over a stale one; a VM process ends
 * when its vmd is killed with SIGKILL.
 */
import assert from "node:assert/strict";
import { sendRequest } from "../src/vmctl/client.ts";
import { kvmTest } from "./kvm_support.ts";
import { kitPaths, TestDaemon, until } from "./vmd_support.ts";

const cli = new URL("../cli.ts", import.meta.url).pathname;

/** A VM process's state letter from /proc (Z: a zombie, which no longer runs), or null when it is gone. */
function procState(pid: number): string | null {
  try {
    return /^State:\s+(\S)/m.exec(Deno.readTextFileSync(`/proc/${pid}/status`))?.[1] ?? null;
  } catch {
    return null;
  }
}

/** Runs a second vmd on `socket` with `config` and returns its exit status and log (it must exit). */
async function secondVmd(socket: string, config: string): Promise<{ code: number; log: string }> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", cli, "-d", "-f", config],
    env: { VMD_SOCKET: socket },
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const timer = setTimeout(() => child.kill("SIGKILL"), 20_000);
  const out = await child.output();
  clearTimeout(timer);
  return { code: out.code, log: new TextDecoder().decode(out.stderr) };
}

kvmTest(
  "vmd: a reload with errors keeps the configuration in force; vmctl wait prints how the vm ended",
  async () => {
    const { echo } = await kitPaths();
    const vm = (name: string, memory: string) => `vm "${name}" {\n  boot "${echo}"\n  memory ${memory}\n}\n`;
    const d = await TestDaemon.start(vm("keep", "16M"));
    await d.run(async () => {
      const conf = `${d.dir}/vm.conf`;
      const first = await d.waitState("keep", "running");
      // a broken file: a changed VM, a new one, and an error on line 4
      await Deno.writeTextFile(conf, vm("keep", "24M") + 'vm "added" {\n  memroy 16M\n}\n');
      const r = await d.vmctl(["reload"]);
      assert.equal(r.code, 1);
      assert.match(r.stderr, new RegExp(`vm\\.conf:6:3: unknown vm option "memroy" in vm "added"`));
      await Deno.writeTextFile(conf, vm("keep", "24M") + vm("added", "16M") + "vm {\n");
      d.proc.kill("SIGHUP");
      await until(
        "the log to say the reload failed",
        10_000,
        () => d.log.includes("reload failed; keeping the running configuration") ? true : undefined,
      );
      // nothing of either file was applied: the VM keeps running, no VM was added
      assert.deepEqual(
        (await d.status()).map((v) => v.name),
        ["keep"],
      );
      const now = await d.vm("keep");
      assert.equal(now.pid, first.pid);
      // and once stopped, it starts again with the old definition (16M, not 24M)
      const waiting = d.vmctl(["wait", "keep"]);
      await new Promise((res) => setTimeout(res, 300));
      const forced = await d.vmctl(["stop", "-f", "keep"]);
      assert.equal(forced.code, 0);
      assert.equal(forced.stderr, `stopping vm keep: forced to terminate vm ${now.id}\n`, "vmctl(8)'s words");
      const waited = await waiting;
      assert.equal(waited.code, 0, waited.stderr);
      const ended = await d.vm("keep");
      assert.ok(ended.lastExit !== null && ended.lastExit !== "", "a stopped vm says how it ended");
      assert.equal(waited.stdout, "");
      assert.equal(waited.stderr, `vmctl: vm keep stopped: ${ended.lastExit}\n`);
      assert.match(waited.stderr, /stopped: .*(kill|stop|forced)/i, "the reason is the forced stop");
      assert.equal((await d.vmctl(["start", "keep"])).code, 0);
      assert.equal((await d.waitState("keep", "running")).maxmem, 16 << 20);
      // a good file is taken
      await Deno.writeTextFile(conf, vm("keep", "24M") + vm("added", "16M"));
      const good = await d.vmctl(["reload"]);
      assert.equal(good.code, 0, good.stderr);
      assert.deepEqual((await d.status()).map((v) => v.name), ["keep", "added"]);
    });
  },
);

kvmTest(
  "vmd: a live socket is refused, a stale one taken over; the vm process ends when vmd is killed -9",
  async () => {
    const { echo } = await kitPaths();
    const d = await TestDaemon.start(`vm "orphan" {\n  boot "${echo}"\n  memory 16M\n}\n`);
    const other = await Deno.makeTempDir({ prefix: "vmd-test-" });
    let taker: Deno.ChildProcess | undefined;
    try {
      const conf2 = `${other}/vm.conf`;
      await Deno.writeTextFile(conf2, `vm "heir" {\n  disable\n  boot "${echo}"\n  memory 16M\n}\n`);
      const pid = (await d.waitState("orphan", "running")).pid!;
      // a second vmd on the live socket gives up, and leaves the first one serving
      const second = await secondVmd(d.socket, conf2);
      assert.equal(second.code, 1);
      assert.match(second.log, new RegExp(`another vmd is serving ${d.socket}; stop it first`));
      assert.deepEqual((await d.status()).map((v) => v.name), ["orphan"]);
      // a path that is not a socket is never removed
      const plain = `${other}/not-a-socket`;
      await Deno.writeTextFile(plain, "keep me");
      const refused = await secondVmd(plain, conf2);
      assert.equal(refused.code, 1);
      assert.match(refused.log, /not-a-socket exists and is not a socket; remove it yourself/);
      assert.equal(await Deno.readTextFile(plain), "keep me");

      // vmd dies without cleaning up: its VM process sees its pipe close and ends
      d.proc.kill("SIGKILL");
      await d.proc.status;
      const t0 = Date.now();
      await until(`vm process ${pid} to end`, 10_000, () => {
        const s = procState(pid);
        return s === null || s === "Z" ? true : undefined;
      });
      assert.ok(Date.now() - t0 < 10_000);
      assert.ok((await Deno.lstat(d.socket)).isSocket, "the dead vmd left its socket behind");

      // a new vmd takes the stale socket over
      taker = new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", cli, "-d", "-f", conf2],
        env: { VMD_SOCKET: d.socket },
        stdin: "null",
        stdout: "null",
        stderr: "null",
      }).spawn();
      const names = await until("the new vmd to answer on the old socket", 15_000, async () => {
        try {
          const r = await sendRequest({ v: 1, type: "status", target: null }, d.socket);
          return r.type === "status" ? r.vms.map((v) => v.name) : undefined;
        } catch {
          return undefined;
        }
      });
      assert.deepEqual(names, ["heir"]);
    } catch (e) {
      console.error(d.log);
      throw e;
    } finally {
      if (taker !== undefined) {
        taker.kill("SIGTERM");
        await taker.status;
      }
      await d.cleanup();
      await Deno.remove(other, { recursive: true }).catch(() => {});
    }
  },
);
