/**
 * Network values of vm.conf: link-layer addresses (ether_aton(3) syntax), IPv4/IPv6 prefixes for `local
 * prefix` and `local inet6 prefix` (with vmd's constraints), interface and group names (IF_NAMESIZE).
 *
 * @module
 */
import { MAX_IFNAME_LENGTH } from "./limits.ts";

/** A value, or why it is invalid. */
export type Checked<T> = { readonly ok: true; readonly value: T } | {
  readonly ok: false;
  readonly reason: string;
};

/** An IPv4 prefix: dotted-quad address and length. */
export interface Ipv4Prefix {
  /** The address, dotted quad. */
  readonly address: string;
  /** The prefix length in bits. */
  readonly length: number;
}

/** An IPv6 prefix: canonical (RFC 5952) address and length. */
export interface Ipv6Prefix {
  /** The address, canonical text form. */
  readonly address: string;
  /** The prefix length in bits. */
  readonly length: number;
}

/**
 * Reads an Ethernet address as ether_aton(3): six groups of one or two hex digits separated by `:`. Returns it
 * in canonical form (`fe:e1:ba:d0:00:01`). Multicast addresses cannot belong to a NIC and are refused.
 */
export function parseLladdr(text: string): Checked<string> {
  const parts = text.split(":");
  if (parts.length !== 6 || !parts.every((p) => /^[0-9a-fA-F]{1,2}$/.test(p))) {
    return { ok: false, reason: "expected six hex bytes separated by colons, e.g. fe:e1:ba:d0:00:01" };
  }
  const bytes = parts.map((p) => parseInt(p, 16));
  if ((bytes[0] & 1) !== 0) {
    return {
      ok: false,
      reason: "it is a multicast address (the first byte is odd); use e.g. fe:e1:ba:d0:00:01",
    };
  }
  return { ok: true, value: bytes.map((b) => b.toString(16).padStart(2, "0")).join(":") };
}

function parseIpv4(text: string): number[] | null {
  const parts = text.split(".");
  if (parts.length !== 4) return null;
  const bytes = parts.map((p) => (/^[0-9]{1,3}$/.test(p) ? Number(p) : NaN));
  return bytes.every((b) => b >= 0 && b <= 255) ? bytes : null;
}

function splitPrefix(
  text: string,
  defaultLength: number,
  min: number,
  max: number,
): Checked<[string, number]> {
  const slash = text.lastIndexOf("/");
  if (slash === -1) return { ok: true, value: [text, defaultLength] };
  const lenText = text.slice(slash + 1);
  const len = /^[0-9]{1,3}$/.test(lenText) ? Number(lenText) : NaN;
  if (!(len >= min && len <= max)) {
    return { ok: false, reason: `the prefix length must be a number from ${min} to ${max}` };
  }
  return { ok: true, value: [text.slice(0, slash), len] };
}

function maskOk(bytes: number[], length: number): boolean {
  return bytes.every((b, i) => {
    const bits = Math.max(0, Math.min(8, length - i * 8));
    const mask = bits === 0 ? 0 : (0xff << (8 - bits)) & 0xff;
    return (b & ~mask & 0xff) === 0;
  });
}

/**
 * Reads `local prefix`: an IPv4 address with a length from 1 to 16 (vmd keeps the low 16 bits for the VM and
 * interface ids; default 16). Host bits must be zero.
 */
export function parseIpv4Prefix(text: string): Checked<Ipv4Prefix> {
  const split = splitPrefix(text, 16, 1, 16);
  if (!split.ok) return split;
  const [addr, length] = split.value;
  const bytes = parseIpv4(addr);
  if (bytes === null) return { ok: false, reason: "expected an IPv4 address like 100.64.0.0/10" };
  if (!maskOk(bytes, length)) return { ok: false, reason: `host bits are set outside the /${length} mask` };
  return { ok: true, value: { address: bytes.join("."), length } };
}

/** Parses IPv6 text (`::` and a trailing dotted quad allowed) into eight 16-bit groups, or null. */
export function parseIpv6(text: string): number[] | null {
  if (!/^[0-9a-fA-F:.]+$/.test(text)) return null;
  const halves = text.split("::");
  if (halves.length > 2) return null;
  const groups = (s: string): number[] | null => {
    if (s === "") return [];
    const out: number[] = [];
    const parts = s.split(":");
    for (let i = 0; i < parts.length; i++) {
      const p = parts[i];
      if (i === parts.length - 1 && p.includes(".")) {
        const v4 = parseIpv4(p);
        if (v4 === null) return null;
        out.push((v4[0] << 8) | v4[1], (v4[2] << 8) | v4[3]);
      } else if (/^[0-9a-fA-F]{1,4}$/.test(p)) {
        out.push(parseInt(p, 16));
      } else {
        return null;
      }
    }
    return out;
  };
  const head = groups(halves[0]);
  const tail = halves.length === 2 ? groups(halves[1]) : [];
  if (head === null || tail === null) return null;
  if (halves.length === 1) return head.length === 8 ? head : null;
  if (head.length + tail.length > 7) return null;
  return [...head, ...Array(8 - head.length - tail.length).fill(0), ...tail];
}

/** Formats eight 16-bit groups as RFC 5952 text (lower case, the longest zero run as `::`). */
export function formatIpv6(groups: number[]): string {
  let bestStart = -1;
  let bestLen = 1;
  for (let i = 0; i < 8;) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) [bestStart, bestLen] = [i, j - i];
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestStart === -1) return hex.join(":");
  return `${hex.slice(0, bestStart).join(":")}::${hex.slice(bestStart + bestLen).join(":")}`;
}

/**
 * Reads `local inet6 prefix`: an IPv6 address with a length of at most 64 (default 64). Host bits must be zero.
 */
export function parseIpv6Prefix(text: string): Checked<Ipv6Prefix> {
  const split = splitPrefix(text, 64, 0, 64);
  if (!split.ok) return split;
  const [addr, length] = split.value;
  const groups = parseIpv6(addr);
  if (groups === null) return { ok: false, reason: "expected an IPv6 address like fd00::/64" };
  const bytes = groups.flatMap((g) => [g >> 8, g & 0xff]);
  if (!maskOk(bytes, length)) return { ok: false, reason: `host bits are set outside the /${length} mask` };
  return { ok: true, value: { address: formatIpv6(groups), length } };
}

/** Checks a Linux interface name: 1 to 15 characters, no `/`, `:` or white space, not `.` or `..`. */
export function checkIfname(name: string): Checked<string> {
  if (name.length === 0 || name.length > MAX_IFNAME_LENGTH) {
    return { ok: false, reason: `it must have 1 to ${MAX_IFNAME_LENGTH} characters` };
  }
  if (/[\s/:]/.test(name) || name === "." || name === "..") {
    return { ok: false, reason: "it must not contain '/', ':' or white space" };
  }
  return { ok: true, value: name };
}

/** Checks an interface group name as ifconfig(8) does: at most 15 characters, not ending with a digit. */
export function checkGroupName(name: string): Checked<string> {
  if (name.length === 0 || name.length > MAX_IFNAME_LENGTH) {
    return { ok: false, reason: `it must have 1 to ${MAX_IFNAME_LENGTH} characters` };
  }
  if (/[0-9]$/.test(name)) return { ok: false, reason: "it must not end with a digit" };
  if (/[\s/:]/.test(name)) return { ok: false, reason: "it must not contain '/', ':' or white space" };
  return { ok: true, value: name };
}
