/**
 * Hostile control-socket clients against a real vmd: garbage, a 100 MB message, a half-written message,
 * unknown types, wrong versions, fields claiming an identity, and 200 concurrent clients. The daemon answers
 * or rejects each, keeps serving, and its VM is not affected.
 */
import assert from "node:assert/strict";
import { encodeFrame, FrameDecoder } from "../src/vmd/framing.ts";
import { kvmTest } from "./kvm_support.ts";
import { ConsoleSession, kitPaths, TestDaemon } from "./vmd_support.ts";

/** Connects, writes `bytes`, and resolves to the first reply frame (or null if the daemon closed). */
async function raw(path: string, chunks: Uint8Array[], o: { close?: boolean } = {}): Promise<unknown> {
  const conn = await Deno.connect({ transport: "unix", path });
  try {
    for (const c of chunks) await conn.write(c);
    if (o.close) return null;
    const decoder = new FrameDecoder();
    const buf = new Uint8Array(65536);
    const deadline = setTimeout(() => conn.close(), 15_000);
    try {
      for (;;) {
        const n = await conn.read(buf);
        if (n === null) return null;
        const ev = decoder.push(buf.subarray(0, n))[0];
        if (ev?.kind === "frame") return ev.value;
      }
    } finally {
      clearTimeout(deadline);
    }
  } finally {
    try {
      conn.close();
    } catch { /* closed by the deadline */ }
  }
}

const enc = (s: string) => new TextEncoder().encode(s);

function header(len: number): Uint8Array {
  const h = new Uint8Array(4);
  new DataView(h.buffer).setUint32(0, len);
  return h;
}

kvmTest(
  "vmd: garbage, 100 MB, half-written, unknown and forged messages are refused; 200 clients served",
  async () => {
    const { echo } = await kitPaths();
    const d = await TestDaemon.start(
      `vm "calm" {\n  boot "${echo}" { cmdline "vm=calm" }\n  memory 16M\n}\n`,
    );
    await d.run(async () => {
      const before = await d.waitState("calm", "running");

      // garbage: its first four bytes read as a length far over the limit
      assert.deepEqual(await raw(d.socket, [enc("GARBAGE\x00\x01\x02 not a frame")]), {
        v: 1,
        type: "error",
        code: "too-large",
        message: "message of 1195463234 bytes exceeds the 65536-byte limit",
      });

      // a frame that is not JSON, then a good request on the same connection: both answered
      const conn = await Deno.connect({ transport: "unix", path: d.socket });
      const bad = enc("{not json");
      await conn.write(new Uint8Array([...header(bad.length), ...bad]));
      await conn.write(encodeFrame({ v: 1, type: "status", target: "calm" }));
      const decoder = new FrameDecoder();
      const replies: unknown[] = [];
      const buf = new Uint8Array(65536);
      while (replies.length < 2) {
        const n = await conn.read(buf);
        assert.ok(n !== null);
        for (const ev of decoder.push(buf.subarray(0, n))) if (ev.kind === "frame") replies.push(ev.value);
      }
      conn.close();
      assert.equal((replies[0] as { code: string }).code, "bad-message");
      assert.equal((replies[1] as { type: string }).type, "status");

      // a 100 MB message: refused from its header; the sender is cut off
      const big = new Uint8Array(1 << 20);
      const hundred = Deno.connect({ transport: "unix", path: d.socket }).then(async (c) => {
        const reading = (async () => {
          const dec = new FrameDecoder();
          const b = new Uint8Array(4096);
          for (;;) {
            const n = await c.read(b).catch(() => null);
            if (n === null) return null;
            const ev = dec.push(b.subarray(0, n))[0];
            if (ev?.kind === "frame") return ev.value;
          }
        })();
        try {
          await c.write(header(100 << 20));
          for (let i = 0; i < 100; i++) await c.write(big);
        } catch { /* the daemon closed the connection: expected */ }
        const reply = await reading;
        c.close();
        return reply;
      });
      assert.equal(((await hundred) as { code: string }).code, "too-large");

      // half a message, then gone
      await raw(d.socket, [header(100), enc('{"v":1,')], { close: true });

      // unknown type, wrong version, an identity field, a request that is not an object
      const cases: [unknown, string][] = [
        [{ v: 1, type: "format-disk" }, "unknown-type"],
        [{ v: 2, type: "status", target: null }, "version"],
        [{ v: 1, type: "stop", target: "calm", force: true, wait: false, uid: 0 }, "bad-message"],
        [{ v: 1, type: "status", target: 42 }, "bad-message"],
        [[1, 2, 3], "bad-message"],
      ];
      for (const [msg, code] of cases) {
        const reply = await raw(d.socket, [encodeFrame(msg)]) as {
          type: string;
          code: string;
          message: string;
        };
        assert.equal(reply.type, "error", JSON.stringify(msg));
        assert.equal(reply.code, code, `${JSON.stringify(msg)}: ${reply.message}`);
      }

      // 200 concurrent clients asking for the status: every one answered
      const all = await Promise.all(
        Array.from({ length: 200 }, () => d.request({ v: 1, type: "status", target: null })),
      );
      for (const r of all) {
        assert.equal(r.type, "status");
        if (r.type === "status") assert.equal(r.vms[0].pid, before.pid);
      }

      // the VM was not affected: same process, still answering on its console
      const after = await d.vm("calm");
      assert.equal(after.state, "running");
      assert.equal(after.pid, before.pid);
      const c = new ConsoleSession(d, "calm");
      await c.expect("echo: ready vm=calm\n");
      await c.send("fine\r");
      await c.expect("FINE\r\n");
      assert.equal(await c.detach(), 0);
    });
  },
);
