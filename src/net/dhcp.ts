/**
 * The stateless DHCP/BOOTP server a `local interface` NIC answers with, inside its device worker: the guest's
 * address is fixed by its VM id and NIC index (see `local_prefix.ts`), so each request is answered from the
 * request alone — DISCOVER gets an OFFER, REQUEST an ACK (or a NAK when it asks for another address), a
 * plain BOOTP request a BOOTREPLY — with a /31 mask and the host side as router and DNS server. Frames that
 * are not DHCP requests from the guest's own MAC are not ours ({@link isDhcpRequest}); malformed requests
 * get no answer.
 *
 * @module
 */
import { parseIpv4 } from "./local_prefix.ts";

const ETH = 14;
const BOOTP_MIN = 300;
const COOKIE = 0x63825363;
/** DHCP message types. */
export const DHCP = { DISCOVER: 1, OFFER: 2, REQUEST: 3, DECLINE: 4, ACK: 5, NAK: 6, RELEASE: 7, INFORM: 8 };

/** What the server knows: the guest's MAC and the two ends of its link. */
export interface DhcpLink {
  /** The guest NIC's MAC. */
  readonly guestMac: Uint8Array;
  /** The MAC replies come from (the host side). */
  readonly hostMac: Uint8Array;
  /** The host side's address (server, router, DNS). */
  readonly host: string;
  /** The guest's address. */
  readonly guest: string;
}

/** True when `frame` is IPv4/UDP to port 67 (whatever its content: the caller keeps it off the wire). */
export function isDhcpRequest(frame: Uint8Array): boolean {
  if (frame.length < ETH + 20 + 8 || frame[12] !== 0x08 || frame[13] !== 0x00) return false;
  const ihl = (frame[ETH] & 0x0f) * 4;
  if ((frame[ETH] >> 4) !== 4 || ihl < 20 || frame.length < ETH + ihl + 8 || frame[ETH + 9] !== 17) {
    return false;
  }
  const udp = ETH + ihl;
  return ((frame[udp + 2] << 8) | frame[udp + 3]) === 67;
}

/** The Internet checksum of `b`. */
export function inetChecksum(b: Uint8Array): number {
  let sum = 0;
  for (let i = 0; i + 1 < b.length; i += 2) sum += (b[i] << 8) | b[i + 1];
  if (b.length % 2 === 1) sum += b[b.length - 1] << 8;
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

/** Options of a DHCP message, or undefined when they overrun the packet or lack an end. */
function parseOptions(b: Uint8Array, from: number, to: number): Map<number, Uint8Array> | undefined {
  const opts = new Map<number, Uint8Array>();
  let i = from;
  while (i < to) {
    const code = b[i++];
    if (code === 0) continue;
    if (code === 255) return opts;
    if (i >= to) return undefined;
    const len = b[i++];
    if (i + len > to) return undefined;
    opts.set(code, b.subarray(i, i + len));
    i += len;
  }
  return undefined;
}

/**
 * The answer to a DHCP/BOOTP request in `frame`, as an Ethernet frame for the guest, or undefined when there
 * is nothing to answer (not a BOOTREQUEST from the guest's MAC, a malformed one, or a type that needs none).
 */
export function dhcpReply(frame: Uint8Array, link: DhcpLink): Uint8Array | undefined {
  if (!isDhcpRequest(frame)) return undefined;
  const ihl = (frame[ETH] & 0x0f) * 4;
  const bootp = ETH + ihl + 8;
  const ipLength = (frame[ETH + 2] << 8) | frame[ETH + 3];
  const end = Math.min(frame.length, ETH + ipLength);
  if (end < bootp + 236 || ipLength < ihl + 8 + 236) return undefined;
  const v = new DataView(frame.buffer, frame.byteOffset, frame.byteLength);
  if (frame[bootp] !== 1 || frame[bootp + 1] !== 1 || frame[bootp + 2] !== 6) return undefined;
  const chaddr = frame.subarray(bootp + 28, bootp + 34);
  if (!chaddr.every((x, i) => x === link.guestMac[i])) return undefined;
  let type = 0; // plain BOOTP
  let requested: number | undefined;
  if (end >= bootp + 240 && v.getUint32(bootp + 236) === COOKIE) {
    const opts = parseOptions(frame, bootp + 240, end);
    if (opts === undefined) return undefined;
    const t = opts.get(53);
    if (t !== undefined) {
      if (t.length !== 1) return undefined;
      type = t[0];
    }
    const r = opts.get(50);
    if (r !== undefined) {
      if (r.length !== 4) return undefined;
      requested = new DataView(r.buffer, r.byteOffset, 4).getUint32(0);
    }
  }
  const guest = parseIpv4(link.guest);
  const host = parseIpv4(link.host);
  let answer: number;
  if (type === 0) answer = 0;
  else if (type === DHCP.DISCOVER) answer = DHCP.OFFER;
  else if (type === DHCP.REQUEST) {
    const ciaddr = v.getUint32(bootp + 12);
    const asked = requested ?? (ciaddr !== 0 ? ciaddr : guest);
    answer = asked === guest ? DHCP.ACK : DHCP.NAK;
  } else return undefined;
  return buildReply(frame.subarray(bootp, bootp + 236), answer, guest, host, link);
}

function buildReply(req: Uint8Array, type: number, guest: number, host: number, link: DhcpLink): Uint8Array {
  const opts: number[] = [];
  const u32 = (n: number) => [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255];
  if (type !== 0) opts.push(53, 1, type, 54, 4, ...u32(host));
  if (type !== DHCP.NAK) {
    opts.push(1, 4, 255, 255, 255, 254, 3, 4, ...u32(host), 6, 4, ...u32(host));
    if (type !== 0) opts.push(51, 4, 255, 255, 255, 255);
  }
  opts.push(255);
  const bootpLen = Math.max(BOOTP_MIN, 240 + opts.length);
  const out = new Uint8Array(ETH + 20 + 8 + bootpLen);
  const v = new DataView(out.buffer);
  const broadcast = type === DHCP.NAK || (req[10] & 0x80) !== 0;
  out.set(broadcast ? [255, 255, 255, 255, 255, 255] : link.guestMac, 0);
  out.set(link.hostMac, 6);
  v.setUint16(12, 0x0800);
  // IPv4 header
  out[ETH] = 0x45;
  v.setUint16(ETH + 2, 20 + 8 + bootpLen);
  out[ETH + 8] = 64;
  out[ETH + 9] = 17;
  v.setUint32(ETH + 12, host);
  v.setUint32(ETH + 16, broadcast ? 0xffffffff : guest);
  v.setUint16(ETH + 10, inetChecksum(out.subarray(ETH, ETH + 20)));
  // UDP header (checksum 0: none)
  const udp = ETH + 20;
  v.setUint16(udp, 67);
  v.setUint16(udp + 2, 68);
  v.setUint16(udp + 4, 8 + bootpLen);
  // BOOTP
  const b = udp + 8;
  out.set(req.subarray(0, 236), b);
  out[b] = 2; // BOOTREPLY
  out[b + 3] = 0; // hops
  v.setUint32(b + 12, 0); // ciaddr
  v.setUint32(b + 16, type === DHCP.NAK ? 0 : guest); // yiaddr
  v.setUint32(b + 20, type === DHCP.NAK ? 0 : host); // siaddr
  out.fill(0, b + 44, b + 236); // sname, file
  v.setUint32(b + 236, COOKIE);
  out.set(opts, b + 240);
  return out;
}
