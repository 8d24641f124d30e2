/**
 * The control protocol's pieces without a daemon: framing limits, one validator per message type, the
 * status table, owners and the user database, the VM process's permission flags, and SO_PEERCRED on a
 * real socket pair.
 */
import assert from "node:assert/strict";
import { LIBC_CANDIDATES, resolveLibcPath } from "../ffi/libc.ts";
import { peerCredentials } from "../ffi/unix_socket.ts";
import { processFlags } from "../src/privsep/permission_table.ts";
import { formatScaled, formatStatusTable } from "../src/vmctl/status_table.ts";
import { mayControl, resolveOwner } from "../src/vmd/access.ts";
import { ControlServer } from "../src/vmd/control_server.ts";
import { encodeFrame, FrameDecoder, FrameTooLargeError, MAX_FRAME_BYTES } from "../src/vmd/framing.ts";
import { RequestError, validateReply, validateRequest, type VmStatus } from "../src/vmd/protocol.ts";
import { UserDb } from "../src/vmd/user_db.ts";
import { validateFromVm, validateToVm } from "../src/vmd/vm_messages.ts";
import { MessageError } from "../src/vmd/validate_fields.ts";
import { sendRequest } from "../src/vmctl/client.ts";

Deno.test("framing: frames split anywhere reassemble; oversized lengths are refused before buffering", () => {
  const bytes = new Uint8Array([...encodeFrame({ a: 1 }), ...encodeFrame("two")]);
  const d = new FrameDecoder();
  const events = [...bytes].flatMap((b) => d.push(new Uint8Array([b])));
  assert.deepEqual(events, [{ kind: "frame", value: { a: 1 } }, { kind: "frame", value: "two" }]);
  const big = new FrameDecoder();
  const h = new Uint8Array(4);
  new DataView(h.buffer).setUint32(0, MAX_FRAME_BYTES + 1);
  assert.deepEqual(big.push(h), [{ kind: "too-large", bytes: MAX_FRAME_BYTES + 1 }]);
  assert.deepEqual(big.push(encodeFrame(1)), [], "nothing after a fatal error");
  assert.throws(() => encodeFrame("x".repeat(MAX_FRAME_BYTES)), FrameTooLargeError);
  const bad = new FrameDecoder().push(new Uint8Array([0, 0, 0, 2, 0x7b, 0xff]));
  assert.equal(bad[0].kind, "bad-json");
});

Deno.test("requests: each type accepts exactly its fields; version, type and identity claims are refused", () => {
  assert.deepEqual(validateRequest({ v: 1, type: "status", target: null }), {
    v: 1,
    type: "status",
    target: null,
  });
  assert.deepEqual(validateRequest({ v: 1, type: "stop", target: "web", force: false, wait: true }), {
    v: 1,
    type: "stop",
    target: "web",
    force: false,
    wait: true,
  });
  const code = (x: unknown) => {
    try {
      validateRequest(x);
      return "accepted";
    } catch (e) {
      assert.ok(e instanceof RequestError);
      return e.code;
    }
  };
  assert.equal(code({ v: 1, type: "status", target: null, uid: 0 }), "bad-message");
  assert.equal(code({ v: 1, type: "start", target: "x", options: { kernel: "/k", uid: 0 } }), "bad-message");
  assert.equal(code({ v: 2, type: "status", target: null }), "version");
  assert.equal(code({ type: "status", target: null }), "version");
  assert.equal(code({ v: 1, type: "shutdown-host" }), "unknown-type");
  assert.equal(code({ v: 1, type: "__proto__" }), "unknown-type");
  assert.equal(code({ v: 1, type: "reset", what: "everything" }), "bad-message");
  assert.equal(code({ v: 1, type: "pause", target: "x".repeat(300) }), "bad-message");
  assert.equal(
    code({
      v: 1,
      type: "start",
      target: "x",
      options: { kernel: null, initrd: null, cmdline: null, cpus: 0, memory: null, template: null },
    }),
    "bad-message",
  );
  assert.equal(code(null), "bad-message");
  assert.equal(code("status"), "bad-message");
});

const VM: VmStatus = {
  id: 1,
  name: "web",
  pid: 4242,
  vcpus: 2,
  maxmem: 512 << 20,
  curmem: 70 * 1024 * 1024 + 512 * 1024,
  tty: "/dev/pts/3",
  owner: "alice",
  state: "running",
  restarts: 0,
  lastExit: null,
};

Deno.test("replies and VM-process messages are validated too", () => {
  assert.deepEqual(validateReply({ v: 1, type: "status", vms: [VM] }), {
    v: 1,
    type: "status",
    vms: [VM],
    next: null,
  });
  assert.deepEqual(validateReply({ v: 1, type: "status", vms: [VM], next: 7 }).type, "status");
  assert.throws(() => validateReply({ v: 1, type: "status", vms: [], next: 0 }), MessageError);
  assert.throws(
    () => validateReply({ v: 1, type: "status", vms: [{ ...VM, state: "exploded" }] }),
    MessageError,
  );
  assert.throws(() => validateReply({ v: 1, type: "ok", message: "x" }), MessageError);
  assert.deepEqual(validateFromVm({ type: "ready" }), { type: "ready" });
  assert.throws(
    () => validateFromVm({ type: "ready", tty: "/etc/shadow" }),
    MessageError,
    "vmd names the tty",
  );
  assert.throws(() => validateFromVm({ type: "ended", kind: "exploded", reason: "" }), MessageError);
  assert.throws(() => validateToVm({ type: "boot", spec: { name: "x" } }), MessageError);
  assert.throws(() => validateToVm({ type: "constructor" }), MessageError);
  assert.deepEqual(validateToVm({ type: "shutdown" }), { type: "shutdown" });
  assert.throws(() => validateToVm({ type: "stop" }), MessageError, "a graceful stop is a shutdown request");
  assert.deepEqual(validateFromVm({ type: "shutting-down", asked: true, by: "power-button" }), {
    type: "shutting-down",
    asked: true,
    by: "power-button",
  });
  assert.throws(() => validateFromVm({ type: "shutting-down", asked: "yes", by: "none" }), MessageError);
  assert.throws(() => validateFromVm({ type: "shutting-down", asked: true, by: "nmi" }), MessageError);
});

Deno.test("status table: vmctl's columns, scaled sizes, dashes for a stopped VM", () => {
  assert.equal(formatScaled(512 << 20), "512M");
  assert.equal(formatScaled(2 ** 30), "1.0G");
  assert.equal(formatScaled(70.5 * 2 ** 20), "70.5M");
  const text = formatStatusTable([VM, {
    ...VM,
    id: 2,
    name: "db",
    pid: null,
    curmem: null,
    tty: null,
    state: "stopped",
  }]);
  assert.equal(
    text,
    "   ID   PID VCPUS  MAXMEM  CURMEM     TTY        OWNER    STATE NAME\n" +
      "    1  4242     2    512M   70.5M   pts/3        alice  running web\n" +
      "    2     -     2    512M       -       -        alice  stopped db",
  );
});

Deno.test("owners: names resolve through the user database; group members and root may control", () => {
  const db = new UserDb(
    "root:x:0:0::/root:/bin/sh\nalice:x:1000:1000::/home/alice:/bin/sh\nbob:x:1001:1001::/:/bin/sh\n",
    "root:x:0:\nalice:x:1000:\nbob:x:1001:\nops:x:2000:bob,carol\n",
  );
  const alice = resolveOwner({ user: { kind: "name", name: "alice" }, group: null }, db);
  assert.deepEqual(alice, { uid: 1000, gid: null, text: "alice" });
  const ops = resolveOwner({ user: null, group: { kind: "name", name: "ops" } }, db);
  assert.equal(ops.text, ":ops");
  assert.ok(mayControl({ pid: 1, uid: 1000, gid: 1000 }, alice, db));
  assert.ok(!mayControl({ pid: 1, uid: 1001, gid: 1001 }, alice, db));
  assert.ok(mayControl({ pid: 1, uid: 0, gid: 0 }, alice, db));
  assert.ok(mayControl({ pid: 1, uid: 1001, gid: 1001 }, ops, db), "bob is listed in ops");
  assert.ok(!mayControl({ pid: 1, uid: 1000, gid: 1000 }, ops, db));
  const rootOnly = resolveOwner(null, db);
  assert.ok(!mayControl({ pid: 1, uid: 1000, gid: 1000 }, rootOnly, db));
  assert.throws(
    () => resolveOwner({ user: { kind: "name", name: "nobody-here" }, group: null }, db),
    /does not exist/,
  );
});

Deno.test("the VM process's flags: ffi, read on /dev/kvm and its modules, write on /dev/kvm; no user file", () => {
  const libcPath = resolveLibcPath();
  const flags = processFlags("vm", { libcPath, programRoot: "/opt/vmd" });
  assert.equal(flags[0], "--allow-ffi");
  const read = flags.find((f) => f.startsWith("--allow-read="))!.slice(13).split(",");
  const write = flags.find((f) => f.startsWith("--allow-write="))!.slice(14).split(",");
  for (
    const p of ["/dev/kvm", libcPath, "/opt/vmd/src", "/opt/vmd/ffi", "/opt/vmd/build/bundles"]
  ) {
    assert.ok(read.includes(p), p);
  }
  assert.equal(read.length, 4 + LIBC_CANDIDATES.length, "kernels, initrds and disks arrive as descriptors");
  assert.deepEqual(write, ["/dev/kvm"]);
  assert.ok(!read.includes("/dev/ptmx") && !read.includes("/dev/pts"), "vmd opens the console, not the VM");
  assert.equal(flags.length, 3, "no env, net, run or sys");
  assert.throws(() => processFlags("vm", { libcPath, programRoot: "/a,b" }), /comma/);
});

Deno.test("SO_PEERCRED: the server learns the connecting process's real pid and uid", async () => {
  const dir = await Deno.makeTempDir();
  let seen: { pid: number; uid: number } | undefined;
  const server = ControlServer.listen(`${dir}/s.sock`, (_req, peer) => {
    seen = peer;
    return Promise.resolve({ v: 1, type: "status", vms: [] });
  }, () => {});
  try {
    const reply = await sendRequest({ v: 1, type: "status", target: null }, `${dir}/s.sock`);
    assert.equal(reply.type, "status");
    assert.equal(seen?.pid, Deno.pid);
    assert.equal(seen?.uid, Deno.uid());
    assert.throws(() => peerCredentials(-1), /EBADF/);
  } finally {
    await server.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("control server: a client that pipelines requests without reading is cut off; others are served", async () => {
  const dir = await Deno.makeTempDir();
  const path = `${dir}/s.sock`;
  const server = ControlServer.listen(
    path,
    () => Promise.resolve({ v: 1, type: "ok", message: "x".repeat(60_000), vm: null }),
    () => {},
  );
  try {
    const greedy = await Deno.connect({ transport: "unix", path });
    const frame = encodeFrame({ v: 1, type: "reload" });
    const many = new Uint8Array(frame.length * 200);
    for (let i = 0; i < 200; i++) many.set(frame, i * frame.length);
    await greedy.write(many);
    // read everything the server sends until it closes the connection
    const decoder = new FrameDecoder();
    const codes: string[] = [];
    const buf = new Uint8Array(1 << 16);
    const deadline = setTimeout(() => greedy.close(), 10_000);
    for (;;) {
      const n = await greedy.read(buf).catch(() => null);
      if (n === null) break;
      for (const ev of decoder.push(buf.subarray(0, n))) {
        if (ev.kind === "frame") codes.push((ev.value as { type: string }).type);
      }
    }
    clearTimeout(deadline);
    assert.ok(codes.length < 200, `${codes.length} replies`);
    assert.equal(
      codes.filter((c) => c === "error").length,
      1,
      "one error reply, then the connection is closed",
    );
    assert.equal((await sendRequest({ v: 1, type: "reload" }, path)).type, "ok");
  } finally {
    await server.close();
    await Deno.remove(dir, { recursive: true });
  }
});
