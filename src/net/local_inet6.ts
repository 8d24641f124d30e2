/**
 * IPv6 addresses for `local interface` NICs under `local inet6`, derived as OpenBSD's vmd derives them
 * (vm_priv_addr6): the first 64 bits come from the `local inet6` prefix (default `fd00::/8`), the next 32 are
 * the guest's IPv4 address from the `local prefix` (so each NIC owns a /96), and the last byte is 1 for the
 * host side of the tap and 2 for the guest. VM 1, NIC 0 in the defaults: guest IPv4 `100.64.1.3`, host
 * `fd00::6440:103:0:1`, guest `fd00::6440:103:0:2`, prefix length 96. The device does not answer router
 * solicitations (neither does vmd), so the guest configures its address itself.
 *
 * @module
 */
import { formatIpv6, parseIpv6, parseIpv6Prefix } from "../config/net.ts";
import { DEFAULT_LOCAL_PREFIX, localAddresses, LocalPrefixError, parseIpv4 } from "./local_prefix.ts";

/** vmd's `local inet6` prefix when none is given. */
export const DEFAULT_LOCAL_INET6_PREFIX = "fd00::/8";

/** The IPv6 ends of one local interface. */
export interface LocalInet6Addresses {
  /** The host side of the tap. */
  readonly host: string;
  /** The guest's address (not configured by vmd; the guest sets it itself). */
  readonly guest: string;
  /** Prefix length of the link (always 96). */
  readonly prefixLength: 96;
}

/**
 * The IPv6 host and guest addresses of NIC `index` of VM `vmId`, from the IPv4 `local prefix` and the IPv6
 * `local inet6` prefix (length at most 64). Throws {@link LocalPrefixError} when either does not fit.
 */
export function localInet6Addresses(
  vmId: number,
  index: number,
  prefix = DEFAULT_LOCAL_PREFIX,
  inet6Prefix = DEFAULT_LOCAL_INET6_PREFIX,
): LocalInet6Addresses {
  const p6 = parseIpv6Prefix(inet6Prefix);
  if (!p6.ok) {
    throw new LocalPrefixError(`bad local inet6 prefix ${JSON.stringify(inet6Prefix)}: ${p6.reason}`);
  }
  const groups = parseIpv6(p6.value.address) ?? [0, 0, 0, 0];
  const v4 = parseIpv4(localAddresses(vmId, index, prefix).guest);
  const withVm = [...groups.slice(0, 4), v4 >>> 16, v4 & 0xffff, 0];
  return {
    host: formatIpv6([...withVm, 1]),
    guest: formatIpv6([...withVm, 2]),
    prefixLength: 96,
  };
}
