/**
 * Addresses for `local interface` NICs, assigned from the `local prefix` (default 100.64.0.0/10) as vmd
 * assigns them: VM id N owns 100.64.N.0/24 (the id shifted left 8 bits, added to the prefix), NIC i of that VM
 * owns the /31 at (i + 1) × 2 — the first /31 is skipped so no gateway address ends in .0 — and the host side
 * of the tap takes the even address, the guest the odd one.
 *
 * @module
 */

/** The default `local prefix`. */
export const DEFAULT_LOCAL_PREFIX = "100.64.0.0/10";

/** A prefix too small for the VM id or NIC index, or a malformed prefix. */
export class LocalPrefixError extends Error {
  /** Builds the error. */
  constructor(message: string) {
    super(message);
    this.name = "LocalPrefixError";
  }
}

/** The two ends of one local interface. */
export interface LocalAddresses {
  /** The host side of the tap (the guest's router and DNS server). */
  readonly host: string;
  /** The guest's address (offered by the device's DHCP server). */
  readonly guest: string;
  /** Prefix length of the link (always 31). */
  readonly prefixLength: 31;
}

/** Parses dotted-quad IPv4 into a 32-bit unsigned number. */
export function parseIpv4(text: string): number {
  const parts = text.split(".");
  if (parts.length !== 4 || parts.some((p) => !/^\d{1,3}$/.test(p) || Number(p) > 255)) {
    throw new LocalPrefixError(`bad IPv4 address ${JSON.stringify(text)}`);
  }
  return parts.reduce((a, p) => a * 256 + Number(p), 0);
}

/** Formats a 32-bit unsigned number as dotted-quad IPv4. */
export function formatIpv4(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join(".");
}

/** The host and guest addresses of NIC `index` (from 0) of VM `vmId` (from 1) in `prefix`. */
export function localAddresses(vmId: number, index: number, prefix = DEFAULT_LOCAL_PREFIX): LocalAddresses {
  const m = /^([\d.]+)\/(\d{1,2})$/.exec(prefix);
  if (m === null || Number(m[2]) > 30) {
    throw new LocalPrefixError(`bad local prefix ${JSON.stringify(prefix)}`);
  }
  const length = Number(m[2]);
  const mask = length === 0 ? 0 : (0xffffffff << (32 - length)) >>> 0;
  const base = (parseIpv4(m[1]) & mask) >>> 0;
  if (!Number.isInteger(vmId) || vmId < 0 || !Number.isInteger(index) || index < 0 || index >= 0x7f) {
    throw new LocalPrefixError(`vm id ${vmId} / interface ${index}: out of range (at most 126 interfaces)`);
  }
  const offset = vmId * 256 + (index + 1) * 2;
  if (offset + 1 > (~mask >>> 0)) {
    throw new LocalPrefixError(`vm id ${vmId} interface ${index} does not fit in local prefix ${prefix}`);
  }
  return { host: formatIpv4(base + offset), guest: formatIpv4(base + offset + 1), prefixLength: 31 };
}
