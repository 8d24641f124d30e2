/**
 * The virtio-net device against a hostile guest, driven directly (no VM: the guest is a buffer of guest
 * memory and the chains the test hands the device), over real taps in a network namespace the test makes:
 *
 * - `locked lladdr` cannot be raced: a worker (a second "vCPU") flips the source MAC of the frame in guest
 *   memory while the device sends it thousands of times; a second tap on a bridge with the first hears every
 *   frame the device sent, and none has a foreign source MAC.
 * - A DHCP flood without receive buffers queues at most {@link LOCAL_QUEUE_MAX} answers; the rest are
 *   dropped and counted, and the queue serves again once drained.
 *
 * @module
 */
import assert from "node:assert/strict";
import { closeFd } from "../ffi/fd.ts";
import { resolveLibcPath } from "../ffi/libc.ts";
import { openTap, TapIo } from "../ffi/tap.ts";
import { GuestMemory } from "../src/memory/guest_memory.ts";
import { DHCP } from "../src/net/dhcp.ts";
import { LOCAL_QUEUE_MAX, NET_HDR_LEN, NetBackend } from "../src/virtio/net.ts";
import { Chain } from "../src/virtio/virtqueue.ts";
import type { FlipOrder } from "./mac_flipper_worker.ts";
import { sh, withNetns } from "./net_support.ts";

const MAC = Uint8Array.from([0xfe, 0xe1, 0xbb, 0xd1, 0x00, 0x01]);
/** A local experimental ethertype: the test's frames, and nothing the kernel sends. */
const ETHERTYPE = 0x88b5;
/** Where the transmitted frame (with its virtio-net header) sits in guest memory. */
const TX_AT = 0x1000;
/** Where the receive buffer sits. */
const RX_AT = 0x2000;
const FRAMES = 20_000;
const BATCH = 100;

/** 64 KiB of guest memory at guest address 0. */
function guestMemory(): GuestMemory {
  return new GuestMemory({
    sab: new SharedArrayBuffer(1 << 16),
    offset: 0,
    regions: [{ gpa: 0, size: 1 << 16 }],
  });
}

/** A chain of one buffer of `len` bytes at `at`: device-readable (a frame to send) or writable (for one). */
function oneBuffer(at: number, len: number, readable: boolean): Chain {
  const c = new Chain(1);
  c.count = 1;
  c.at[0] = at;
  c.len[0] = len;
  c.readable = readable ? 1 : 0;
  c.readBytes = readable ? len : 0;
  c.writeBytes = readable ? 0 : len;
  return c;
}

/** A tap named `name` moved into `ns` (and up, unless `down`); returns its fd and host MAC. */
async function tapInNetns(
  ns: string,
  name: string,
  down = false,
): Promise<{ fd: number; hostMac: Uint8Array }> {
  const tap = openTap(name);
  try {
    await sh("ip", "link", "set", name, "netns", ns);
    if (!down) await sh("ip", "-n", ns, "link", "set", name, "up");
  } catch (e) {
    closeFd(tap.fd);
    throw e;
  }
  return tap;
}

/** A device for the NIC {@link MAC} (locked) on `io`, with its own transport state. */
function device(io: TapIo, dhcp?: { hostMac: Uint8Array }): NetBackend {
  const link = dhcp === undefined
    ? undefined
    : { guestMac: MAC, hostMac: dhcp.hostMac, host: "100.64.1.2", guest: "100.64.1.3" };
  return new NetBackend(io, { mac: MAC, lockedLladdr: true, dhcp: link }, new SharedArrayBuffer(256));
}

/** Frame I/O on a real tap whose `write` first runs {@link beforeSend}: a second vCPU at the worst moment. */
class HookedTapIo extends TapIo {
  /** Runs after the device's checks, right before the frame goes to the tap. */
  beforeSend: () => void = () => {};

  /** Runs the hook, then writes `frame` to the tap. */
  override write(frame: Uint8Array): number {
    this.beforeSend();
    return super.write(frame);
  }
}

/** Reads every frame waiting on `io`; returns [test frames with our source MAC, test frames with another]. */
function drain(io: TapIo, buf: Uint8Array<ArrayBuffer>): [number, number] {
  let honest = 0;
  let spoofed = 0;
  for (let n = io.read(buf); n >= 0; n = io.read(buf)) {
    if (n < 14 || ((buf[12] << 8) | buf[13]) !== ETHERTYPE) continue;
    if (MAC.every((b, i) => buf[6 + i] === b)) honest++;
    else spoofed++;
  }
  return [honest, spoofed];
}

/** What {@link withBridgedTaps} gives its body. */
interface Wire {
  /** I/O on the talker tap, for the device. */
  readonly talker: HookedTapIo;
  /** I/O on the listener tap: hears every broadcast frame written to the talker. */
  readonly listener: TapIo;
  /** Guest memory holding a broadcast test frame from {@link MAC} at {@link TX_AT} (after its header). */
  readonly mem: GuestMemory;
}

/**
 * Two taps on a bridge in a fresh namespace, and guest memory holding a 60-byte broadcast test frame; waits
 * until the bridge forwards from one tap to the other before running `body`.
 */
async function withBridgedTaps(body: (w: Wire) => Promise<void>): Promise<void> {
  await withNetns(async (ns) => {
    const id = Deno.pid % 100000;
    await sh("ip", "-n", ns, "link", "add", "br0", "type", "bridge");
    await sh("ip", "-n", ns, "link", "set", "br0", "up");
    const a = await tapInNetns(ns, `rca-${id}`);
    const b = await tapInNetns(ns, `rcb-${id}`).catch((e) => {
      closeFd(a.fd);
      throw e;
    });
    const talker = new HookedTapIo(a.fd, resolveLibcPath());
    const listener = new TapIo(b.fd, resolveLibcPath());
    try {
      await sh("ip", "-n", ns, "link", "set", `rca-${id}`, "master", "br0");
      await sh("ip", "-n", ns, "link", "set", `rcb-${id}`, "master", "br0");
      const mem = guestMemory();
      const frame = mem.bytes.subarray(TX_AT + NET_HDR_LEN, TX_AT + NET_HDR_LEN + 60);
      frame.fill(0xff, 0, 6); // broadcast: the bridge floods it to the listener
      frame.set(MAC, 6);
      frame[12] = ETHERTYPE >> 8;
      frame[13] = ETHERTYPE & 0xff;
      const buf = new Uint8Array(2048);
      let heard = 0;
      for (let i = 0; i < 100 && heard === 0; i++) {
        talker.write(frame);
        await new Promise((r) => setTimeout(r, 20));
        heard = drain(listener, buf)[0];
      }
      assert.ok(heard > 0, "the bridge never forwarded a frame from one tap to the other");
      await body({ talker, listener, mem });
    } finally {
      talker.close();
      listener.close();
      closeFd(a.fd);
      closeFd(b.fd);
    }
  });
}

Deno.test("locked lladdr: guest memory rewritten after the check, before the send: only the checked bytes go out", async () => {
  await withBridgedTaps(async ({ talker, listener, mem }) => {
    const net = device(talker);
    const srcLast = TX_AT + NET_HDR_LEN + 11;
    let hooked = 0;
    talker.beforeSend = () => {
      mem.bytes[srcLast] = 0x66; // another vCPU spoofs the source MAC the device has just checked
      hooked++;
    };
    const whole = oneBuffer(TX_AT, NET_HDR_LEN + 60, true);
    const split = new Chain(2); // header and frame in separate buffers
    split.count = split.readable = 2;
    split.at[0] = TX_AT;
    split.len[0] = NET_HDR_LEN;
    split.at[1] = TX_AT + NET_HDR_LEN;
    split.len[1] = 60;
    split.readBytes = NET_HDR_LEN + 60;
    const rounds = 50;
    for (let i = 0; i < rounds; i++) {
      mem.bytes[srcLast] = MAC[5];
      net.handle(1, i % 2 === 0 ? whole : split, mem);
    }
    assert.equal(hooked, rounds, "every frame passed the check and reached the send");
    await new Promise((r) => setTimeout(r, 50));
    const [honest, spoofed] = drain(listener, new Uint8Array(2048));
    assert.equal(spoofed, 0, `${spoofed} of ${rounds} frames went out with the spoofed source MAC`);
    assert.equal(honest, rounds);
    assert.equal(net.counters.tx, rounds);
    assert.equal(net.counters.spoofed, 0);
  });
});

Deno.test("locked lladdr: a second thread flipping the source MAC while thousands of frames go out: none spoofed", async () => {
  await withBridgedTaps(async ({ talker, listener, mem }) => {
    const net = device(talker);
    const chain = oneBuffer(TX_AT, NET_HDR_LEN + 60, true);
    const worker = new Worker(new URL("./mac_flipper_worker.ts", import.meta.url), { type: "module" });
    const ctl = new Int32Array(new SharedArrayBuffer(8));
    try {
      const flips = new Promise<number>((resolve) => worker.onmessage = (e) => resolve(e.data as number));
      const order: FlipOrder = {
        ram: mem.bytes.buffer as SharedArrayBuffer,
        at: TX_AT + NET_HDR_LEN + 11,
        good: MAC[5],
        bad: 0x66,
        ctl: ctl.buffer as SharedArrayBuffer,
      };
      worker.postMessage(order);
      while (Atomics.load(ctl, 1) === 0) await new Promise((r) => setTimeout(r, 1));
      const buf = new Uint8Array(2048);
      let honest = 0;
      let spoofed = 0;
      // at least FRAMES frames, and on until both outcomes are common (a loaded host may pause the flipper)
      const c = net.counters;
      const deadline = Date.now() + 15_000;
      for (
        let i = 0;
        i < FRAMES || (Date.now() < deadline && Math.min(c.tx, c.spoofed) < FRAMES / 10);
        i += BATCH
      ) {
        for (let j = 0; j < BATCH; j++) net.handle(1, chain, mem);
        const [h, s] = drain(listener, buf);
        honest += h;
        spoofed += s;
      }
      Atomics.store(ctl, 0, 1);
      const flipped = await flips;
      await new Promise((r) => setTimeout(r, 50));
      const [h, s] = drain(listener, buf);
      honest += h;
      spoofed += s;

      const detail = `sent ${c.tx}, refused ${c.spoofed}, heard ${honest} honest + ${spoofed} spoofed, ` +
        `${flipped} flips`;
      assert.ok(flipped > FRAMES, `the flipper ran all along (${detail})`);
      assert.ok(c.spoofed > 0, `the device saw the flipped MAC, so the flips reached it (${detail})`);
      assert.ok(c.tx > 0, `frames with the honest MAC still went out (${detail})`);
      assert.equal(spoofed, 0, `a spoofed source MAC reached the wire (${detail})`);
      assert.equal(honest, c.tx, `every frame the device sent, and nothing else, was heard (${detail})`);
      assert.equal(c.txErrors, 0, detail);
    } finally {
      Atomics.store(ctl, 0, 1);
      worker.terminate();
    }
  });
});

/** A DHCP DISCOVER from {@link MAC}, as the guest would send it. */
function discover(): Uint8Array {
  const f = new Uint8Array(14 + 20 + 8 + 300);
  const v = new DataView(f.buffer);
  f.fill(0xff, 0, 6);
  f.set(MAC, 6);
  v.setUint16(12, 0x0800);
  f[14] = 0x45;
  v.setUint16(16, f.length - 14);
  f[23] = 17; // UDP
  v.setUint32(30, 0xffffffff);
  v.setUint16(34, 68);
  v.setUint16(36, 67);
  v.setUint16(38, f.length - 34);
  const b = 42;
  f.set([1, 1, 6], b); // BOOTREQUEST, Ethernet, 6-byte address
  v.setUint32(b + 4, 0x1234);
  f.set(MAC, b + 28);
  v.setUint32(b + 236, 0x63825363);
  f.set([53, 1, DHCP.DISCOVER, 255], b + 240);
  return f;
}

Deno.test("DHCP flood without receive buffers: at most LOCAL_QUEUE_MAX answers wait, the rest are dropped and counted", async () => {
  await withNetns(async (ns) => {
    // down: the kernel sends nothing on it, so all the guest can receive is the device's own answers
    const tap = await tapInNetns(ns, `dfl-${Deno.pid % 100000}`, true);
    const io = new TapIo(tap.fd, resolveLibcPath());
    const net = device(io, { hostMac: tap.hostMac });
    try {
      const mem = guestMemory();
      const req = discover();
      mem.bytes.set(req, TX_AT + NET_HDR_LEN);
      const tx = oneBuffer(TX_AT, NET_HDR_LEN + req.length, true);
      const flood = 5000;
      for (let i = 0; i < flood; i++) net.handle(1, tx, mem);
      const c = net.counters;
      assert.equal(c.dhcpReplies, LOCAL_QUEUE_MAX, JSON.stringify(c));
      assert.equal(c.dhcpQueueFull, flood - LOCAL_QUEUE_MAX);
      assert.equal(c.tx, 0, "DHCP requests never reach the tap");

      // the guest posts receive buffers: exactly the queued answers come out, each an OFFER for it
      const rx = oneBuffer(RX_AT, 2048, false);
      let delivered = 0;
      while (net.ready(0) && delivered <= LOCAL_QUEUE_MAX) {
        mem.bytes.fill(0, RX_AT, RX_AT + 2048);
        assert.ok(net.handle(0, rx, mem) > NET_HDR_LEN + 300);
        const reply = mem.bytes.subarray(RX_AT + NET_HDR_LEN, RX_AT + 2048);
        assert.equal(reply[42], 2, "BOOTREPLY");
        assert.deepEqual([...reply.subarray(42 + 240, 42 + 243)], [53, 1, DHCP.OFFER]);
        delivered++;
      }
      assert.equal(delivered, LOCAL_QUEUE_MAX);
      assert.equal(c.rx, LOCAL_QUEUE_MAX);

      // drained, the queue answers again
      net.handle(1, tx, mem);
      assert.equal(c.dhcpReplies, LOCAL_QUEUE_MAX + 1);
      assert.equal(c.dhcpQueueFull, flood - LOCAL_QUEUE_MAX);
      assert.equal(net.ready(0), true);
    } finally {
      io.close();
      closeFd(tap.fd);
    }
  });
});
