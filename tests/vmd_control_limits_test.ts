/**
 * The control server's limits on real Unix sockets, with short timeouts: a half-written message trickled a
 * byte at a time is still dropped (its time runs from its first byte), an idle connection is closed, a client
 * that never reads its replies is dropped, and past the connection limit new clients get an error.
 */
import assert from "node:assert/strict";
import { ControlServer, type ServerLimits } from "../src/vmd/control_server.ts";
import { encodeFrame, FrameDecoder } from "../src/vmd/framing.ts";
import type { Reply } from "../src/vmd/protocol.ts";
import { until } from "./vmd_support.ts";

const LIMITS: ServerLimits = {
  maxConnections: 6,
  rootReserve: 2,
  perUserConnections: 3,
  partialTimeoutMs: 600,
  idleTimeoutMs: 900,
};

/** A server answering every request with `reply`, on a socket in a new folder; `body` runs against it. */
async function withServer(reply: Reply, body: (path: string, server: ControlServer) => Promise<void>) {
  const dir = await Deno.makeTempDir({ prefix: "vmd-ctl-limits-" });
  const path = `${dir}/s.sock`;
  const server = ControlServer.listen(path, () => Promise.resolve(reply), () => {}, LIMITS);
  try {
    await body(path, server);
  } finally {
    await server.close();
    await Deno.remove(dir, { recursive: true });
  }
}

/** Reads from `conn` until it is closed; the frames received, and when it was closed (ms after `t0`). */
async function readUntilClosed(conn: Deno.UnixConn, t0: number): Promise<{ frames: unknown[]; ms: number }> {
  const decoder = new FrameDecoder();
  const frames: unknown[] = [];
  const buf = new Uint8Array(1 << 16);
  const deadline = setTimeout(() => conn.close(), 10_000);
  for (;;) {
    const n = await conn.read(buf).catch(() => null);
    if (n === null) break;
    for (const ev of decoder.push(buf.subarray(0, n))) if (ev.kind === "frame") frames.push(ev.value);
  }
  clearTimeout(deadline);
  return { frames, ms: Date.now() - t0 };
}

const OK: Reply = { v: 1, type: "ok", message: "fine", vm: null };

Deno.test("control server: a message trickled a byte at a time is dropped once its time is up", async () => {
  await withServer(OK, async (path) => {
    const conn = await Deno.connect({ transport: "unix", path });
    const t0 = Date.now();
    const header = new Uint8Array(4);
    new DataView(header.buffer).setUint32(0, 1000);
    await conn.write(header);
    // one byte every 100 ms for up to 5 s: always active, never complete
    let trickling = true;
    const trickle = (async () => {
      for (let i = 0; i < 50 && trickling; i++) {
        await new Promise((r) => setTimeout(r, 100));
        if (!trickling) break;
        await conn.write(new Uint8Array([0x20])).catch(() => trickling = false);
      }
    })();
    const { frames, ms } = await readUntilClosed(conn, t0);
    trickling = false;
    await trickle;
    assert.deepEqual(frames, [{
      v: 1,
      type: "error",
      code: "bad-message",
      message: "incomplete message; closing the connection",
    }]);
    assert.ok(ms < 3000, `closed after ${ms} ms, while bytes kept coming`);
  });
});

Deno.test("control server: an idle connection is closed after the idle timeout", async () => {
  await withServer(OK, async (path, server) => {
    const conn = await Deno.connect({ transport: "unix", path });
    const t0 = Date.now();
    await until("the server to count the connection", 5000, () => server.connections === 1 || undefined);
    const { frames, ms } = await readUntilClosed(conn, t0);
    assert.deepEqual(frames, []);
    assert.ok(ms >= LIMITS.idleTimeoutMs && ms < 4000, `closed after ${ms} ms`);
    await until("the server to forget it", 3000, () => server.connections === 0 || undefined);
  });
});

Deno.test("control server: a client that never reads its replies is dropped after the idle timeout", async () => {
  const big: Reply = { v: 1, type: "ok", message: "x".repeat(60_000), vm: null };
  await withServer(big, async (path, server) => {
    const conn = await Deno.connect({ transport: "unix", path });
    // 20 replies of 60 kB: far more than the socket buffers hold, so the server's queue stays full
    const frame = encodeFrame({ v: 1, type: "reload" });
    for (let i = 0; i < 20; i++) await conn.write(frame);
    await until("the server to hold the connection", 5000, () => server.connections === 1 || undefined);
    await until("the server to drop the stalled reader", 5000, () => server.connections === 0 || undefined);
    conn.close();
  });
});

Deno.test("control server: past the connection limit a new client gets an error and is closed", async () => {
  await withServer(OK, async (path, server) => {
    const held: Deno.UnixConn[] = [];
    try {
      for (let i = 0; i < LIMITS.maxConnections; i++) {
        held.push(await Deno.connect({ transport: "unix", path }));
      }
      await until("every connection counted", 5000, () => server.connections === 6 || undefined);
      const extra = await Deno.connect({ transport: "unix", path });
      const { frames } = await readUntilClosed(extra, Date.now());
      assert.deepEqual(frames, [{
        v: 1,
        type: "error",
        code: "failed",
        message: "vmd has too many control connections; try again later",
      }]);
      assert.equal(server.connections, LIMITS.maxConnections, "the held ones stay");
    } finally {
      for (const c of held) c.close();
    }
  });
});
