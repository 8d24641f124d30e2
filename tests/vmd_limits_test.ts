/**
 * One user of the socket against everyone else, with real users (useradd, setpriv): on a real vmd, 600 idle
 * connections do not lock root out, and that user's own extra connections are refused with a clear error; on
 * a control server with small limits, users together cannot take the connections kept for root.
 */
import assert from "node:assert/strict";
import { dirname } from "node:path";
import { ControlServer } from "../src/vmd/control_server.ts";
import { sendRequest } from "../src/vmctl/client.ts";
import { kvmTest } from "./kvm_support.ts";
import { cannotCreateUsers, withUsers } from "./user_support.ts";
import { type AsUser, kitPaths, stagedForOtherUsers, TestDaemon } from "./vmd_support.ts";

const GROUP = "vmdlimgrp";
const USERS = ["vmdlimusr", "vmdlimusr2"] as const;
const HELPER = new URL("./fixtures/hold_connections.ts", import.meta.url).pathname;

interface Held {
  readonly opened: number;
  readonly held: number;
  readonly refused: number;
  readonly messages: string[];
}

/** Starts the connection-holding helper as `as`; resolves once it reports what it holds. */
async function holdConnections(
  as: AsUser,
  socket: string,
  count: number,
): Promise<{ held: Held; release: () => Promise<void> }> {
  const staged = await stagedForOtherUsers();
  const script = `${dirname(staged.cli)}/hold_connections.ts`;
  await Deno.copyFile(HELPER, script);
  await Deno.chmod(script, 0o644);
  const child = new Deno.Command("setpriv", {
    args: [
      `--reuid=${as.uid}`,
      `--regid=${as.gid}`,
      "--init-groups",
      "env",
      `DENO_DIR=${as.denoDir}`,
      `HOME=${as.denoDir}`,
      staged.deno,
      "run",
      `--allow-net=unix:${socket}`,
      `--allow-read=${socket}`,
      `--allow-write=${socket}`,
      script,
      socket,
      String(count),
    ],
    stdin: "piped",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let line = "";
  const timer = setTimeout(() => child.kill("SIGKILL"), 60_000);
  while (!line.includes("\n")) {
    const r = await reader.read();
    if (r.done) break;
    line += r.value;
  }
  clearTimeout(timer);
  const release = async () => {
    await child.stdin.close().catch(() => {});
    reader.releaseLock();
    await child.stdout.cancel().catch(() => {});
    const kill = setTimeout(() => child.kill("SIGKILL"), 10_000);
    await child.status;
    clearTimeout(kill);
  };
  if (!line.includes("\n")) {
    await release();
    throw new Error(`the helper reported nothing (${JSON.stringify(line)})`);
  }
  return { held: JSON.parse(line) as Held, release };
}

kvmTest("vmd limits: 600 idle connections of one user leave root's vmctl status answering", async () => {
  const missing = await cannotCreateUsers();
  if (missing !== null && Deno.env.get("CI") === "true") throw new Error(`cannot run: ${missing}`);
  assert.equal(missing, null, `this test needs root and useradd/setpriv: ${missing}`);
  const { echo } = await kitPaths();
  await stagedForOtherUsers();
  await withUsers(GROUP, USERS, async (as) => {
    const u = as.vmdlimusr;
    const d = await TestDaemon.start(
      `socket owner :${GROUP}\nvm "limcalm" {\n  boot "${echo}"\n  memory 16M\n}\n`,
    );
    await d.run(async () => {
      await d.waitState("limcalm", "running");
      const hold = await holdConnections(u, d.socket, 600);
      try {
        assert.equal(hold.held.opened, 600, JSON.stringify(hold.held));
        assert.equal(hold.held.held, 32, "32 connections per user");
        assert.equal(hold.held.refused, 568);
        assert.deepEqual(hold.held.messages, [
          `too many control connections from uid ${u.uid} (at most 32 per user); close some and try again`,
        ]);
        // root is not locked out: vmctl status answers, as does a raw request
        for (let i = 0; i < 3; i++) {
          const st = await d.vmctl(["status"]);
          assert.equal(st.code, 0, st.stderr);
          assert.match(st.stdout, /running limcalm/);
        }
        // the user's own vmctl gets the clear error
        const mine = await d.vmctl(["status"], { as: u });
        assert.equal(mine.code, 1);
        assert.match(mine.stderr, /vmctl: too many control connections from uid \d+ \(at most 32 per user\)/);
      } finally {
        await hold.release();
      }
      // once the user lets go, it is served again
      const again = await d.vmctl(["status"], { as: u });
      assert.equal(again.code, 0, again.stderr);
    });
  });
});

Deno.test("control server: users together cannot take the connections kept for root", async () => {
  const missing = await cannotCreateUsers();
  if (missing !== null && Deno.env.get("CI") === "true") throw new Error(`cannot run: ${missing}`);
  assert.equal(missing, null, `this test needs root and useradd/setpriv: ${missing}`);
  await stagedForOtherUsers();
  await withUsers(GROUP, USERS, async (as) => {
    const dir = await Deno.makeTempDir({ prefix: "vmd-reserve-" });
    await Deno.chmod(dir, 0o755);
    const path = `${dir}/s.sock`;
    const limits = {
      maxConnections: 6,
      rootReserve: 2,
      perUserConnections: 3,
      partialTimeoutMs: 10_000,
      idleTimeoutMs: 60_000,
    };
    const server = ControlServer.listen(
      path,
      () => Promise.resolve({ v: 1, type: "ok", message: "served", vm: null }),
      () => {},
      limits,
    );
    await Deno.chmod(path, 0o666);
    const releases: (() => Promise<void>)[] = [];
    try {
      const a = await holdConnections(as.vmdlimusr, path, 10);
      releases.push(a.release);
      assert.equal(a.held.held, 3, JSON.stringify(a.held));
      assert.deepEqual(a.held.messages, [
        `too many control connections from uid ${as.vmdlimusr.uid} (at most 3 per user); close some and try again`,
      ]);
      const b = await holdConnections(as.vmdlimusr2, path, 10);
      releases.push(b.release);
      assert.equal(b.held.held, 1, "users together hold at most 6 - 2");
      assert.deepEqual(b.held.messages, ["vmd has too many control connections from users; try again later"]);
      // root still gets in, twice at once
      const held = await Deno.connect({ transport: "unix", path });
      try {
        const r = await sendRequest({ v: 1, type: "reload" }, path);
        assert.deepEqual(r, { v: 1, type: "ok", message: "served", vm: null });
      } finally {
        held.close();
      }
    } finally {
      for (const release of releases) await release();
      await server.close();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  });
});
