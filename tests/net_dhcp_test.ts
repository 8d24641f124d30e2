import assert from "node:assert/strict";
import { DHCP, dhcpReply, inetChecksum, isDhcpRequest } from "../src/net/dhcp.ts";
import { DEFAULT_LOCAL_PREFIX, localAddresses, LocalPrefixError } from "../src/net/local_prefix.ts";

const GUEST_MAC = Uint8Array.from([0xfe, 0xe1, 0xbb, 0xd1, 0, 1]);
const HOST_MAC = Uint8Array.from([0x02, 0, 0, 0, 0, 9]);
const LINK = { guestMac: GUEST_MAC, hostMac: HOST_MAC, host: "100.64.1.2", guest: "100.64.1.3" };

/** A DHCP request frame from `mac` with the given options (no end option added when `raw`). */
function request(opts: number[], o: { mac?: Uint8Array; flags?: number; cookie?: boolean } = {}): Uint8Array {
  const bootpLen = 240 + opts.length;
  const f = new Uint8Array(14 + 20 + 8 + Math.max(bootpLen, 300));
  const v = new DataView(f.buffer);
  f.fill(0xff, 0, 6);
  f.set(o.mac ?? GUEST_MAC, 6);
  v.setUint16(12, 0x0800);
  f[14] = 0x45;
  v.setUint16(16, f.length - 14);
  f[23] = 17;
  v.setUint32(30, 0xffffffff);
  v.setUint16(34, 68);
  v.setUint16(36, 67);
  v.setUint16(38, f.length - 34);
  const b = 42;
  f[b] = 1;
  f[b + 1] = 1;
  f[b + 2] = 6;
  v.setUint32(b + 4, 0x1234);
  v.setUint16(b + 10, o.flags ?? 0);
  f.set(o.mac ?? GUEST_MAC, b + 28);
  if (o.cookie !== false) v.setUint32(b + 236, 0x63825363);
  f.set(opts, b + 240);
  return f;
}

function parse(reply: Uint8Array) {
  const v = new DataView(reply.buffer);
  const b = 42;
  const opts = new Map<number, number[]>();
  for (let i = b + 240; reply[i] !== 255;) {
    opts.set(reply[i], [...reply.subarray(i + 2, i + 2 + reply[i + 1])]);
    i += 2 + reply[i + 1];
  }
  return {
    dst: [...reply.subarray(0, 6)],
    ipDst: v.getUint32(30),
    ipChecksumOk: inetChecksum(reply.subarray(14, 34)) === 0,
    op: reply[b],
    xid: v.getUint32(b + 4),
    yiaddr: [...reply.subarray(b + 16, b + 20)],
    opts,
  };
}

Deno.test("local prefix: VM id N, NIC i gets 100.64.N.(2i+2)/31 for the host and .(2i+3) for the guest", () => {
  assert.equal(DEFAULT_LOCAL_PREFIX, "100.64.0.0/10");
  assert.deepEqual(localAddresses(1, 0), { host: "100.64.1.2", guest: "100.64.1.3", prefixLength: 31 });
  assert.deepEqual(localAddresses(3, 2), { host: "100.64.3.6", guest: "100.64.3.7", prefixLength: 31 });
  assert.deepEqual(localAddresses(300, 0), { host: "100.65.44.2", guest: "100.65.44.3", prefixLength: 31 });
  assert.deepEqual(localAddresses(1, 0, "10.0.0.0/16"), {
    host: "10.0.1.2",
    guest: "10.0.1.3",
    prefixLength: 31,
  });
  assert.throws(() => localAddresses(256, 0, "10.0.0.0/16"), LocalPrefixError);
  assert.throws(() => localAddresses(1, 127), LocalPrefixError);
  assert.throws(() => localAddresses(1, 0, "10.0.0/8"), LocalPrefixError);
});

Deno.test("DHCP: DISCOVER gets an OFFER, REQUEST an ACK, with a /31, router and DNS = host side", () => {
  const offer = dhcpReply(request([53, 1, DHCP.DISCOVER, 255]), LINK);
  assert.ok(offer !== undefined);
  const o = parse(offer);
  assert.equal(o.op, 2);
  assert.equal(o.xid, 0x1234);
  assert.deepEqual(o.dst, [...GUEST_MAC]);
  assert.ok(o.ipChecksumOk);
  assert.deepEqual(o.yiaddr, [100, 64, 1, 3]);
  assert.deepEqual(o.opts.get(53), [DHCP.OFFER]);
  assert.deepEqual(o.opts.get(1), [255, 255, 255, 254]);
  assert.deepEqual(o.opts.get(3), [100, 64, 1, 2]);
  assert.deepEqual(o.opts.get(6), [100, 64, 1, 2]);
  assert.deepEqual(o.opts.get(54), [100, 64, 1, 2]);
  const ack = parse(dhcpReply(request([53, 1, DHCP.REQUEST, 50, 4, 100, 64, 1, 3, 255]), LINK)!);
  assert.deepEqual(ack.opts.get(53), [DHCP.ACK]);
  assert.deepEqual(ack.yiaddr, [100, 64, 1, 3]);
});

Deno.test("DHCP: a REQUEST for another address gets a broadcast NAK; the broadcast flag is honoured", () => {
  const nak = parse(dhcpReply(request([53, 1, DHCP.REQUEST, 50, 4, 10, 0, 0, 9, 255]), LINK)!);
  assert.deepEqual(nak.opts.get(53), [DHCP.NAK]);
  assert.deepEqual(nak.yiaddr, [0, 0, 0, 0]);
  assert.deepEqual(nak.dst, [255, 255, 255, 255, 255, 255]);
  assert.equal(nak.opts.get(3), undefined);
  const b = parse(dhcpReply(request([53, 1, DHCP.DISCOVER, 255], { flags: 0x8000 }), LINK)!);
  assert.equal(b.ipDst, 0xffffffff);
});

Deno.test("BOOTP: a request without DHCP options gets a BOOTREPLY with the address", () => {
  const r = parse(dhcpReply(request([], { cookie: false }), LINK)!);
  assert.equal(r.op, 2);
  assert.deepEqual(r.yiaddr, [100, 64, 1, 3]);
  assert.equal(r.opts.get(53), undefined);
});

Deno.test("DHCP: no answer to another MAC, overrunning options, a missing end, RELEASE, or non-DHCP frames", () => {
  const other = Uint8Array.from([2, 2, 2, 2, 2, 2]);
  assert.equal(dhcpReply(request([53, 1, 1, 255], { mac: other }), LINK), undefined);
  assert.equal(dhcpReply(request([53, 200, 1]), LINK), undefined);
  assert.equal(dhcpReply(request([53, 1, 1]), LINK), undefined);
  assert.equal(dhcpReply(request([53, 2, 1, 1, 255]), LINK), undefined);
  assert.equal(dhcpReply(request([53, 1, DHCP.RELEASE, 255]), LINK), undefined);
  assert.equal(dhcpReply(request([53, 1, 1, 255]).subarray(0, 100), LINK), undefined);
  assert.equal(isDhcpRequest(new Uint8Array(14)), false);
  const arp = new Uint8Array(60);
  arp[12] = 0x08;
  arp[13] = 0x06;
  assert.equal(isDhcpRequest(arp), false);
  for (let n = 0; n < 2000; n++) {
    // random garbage after a valid UDP/67 header never throws
    const f = request([53, 1, 1, 255]);
    for (let i = 42; i < f.length; i++) f[i] = Math.floor(Math.random() * 256);
    dhcpReply(f, LINK);
  }
});
