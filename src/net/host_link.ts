/**
 * The host side of a VM's NICs, set up with the kernel's own tools (`ip` from iproute2) after the tap
 * exists: a `local interface` gets its /31 address; a NIC on a switch is attached to the Linux bridge of that
 * name (created if missing); each tap and bridge is set up or down as configured (up by default). Names are checked before
 * any call. Addresses go away with the tap (closing its fd removes it); bridges this module created are
 * removed by {@link removeBridge} when the VM ends.
 *
 * @module
 */
import { validateInterfaceName } from "../../ffi/tap.ts";
import { parseIpv6 } from "../config/net.ts";
import { parseIpv4 } from "./local_prefix.ts";

/** Most NICs per VM (as vmd). */
export const MAX_NICS = 4;

/** An `ip` command that failed, or a malformed lladdr. */
export class HostLinkError extends Error {
  /** Builds the error. */
  constructor(message: string) {
    super(message);
    this.name = "HostLinkError";
  }
}

async function ip(...args: string[]): Promise<void> {
  let r: Deno.CommandOutput;
  try {
    r = await new Deno.Command("ip", { args, stdin: "null", stdout: "null", stderr: "piped" }).output();
  } catch (e) {
    throw new HostLinkError(`cannot run ip (iproute2): ${(e as Error).message}`);
  }
  if (!r.success) {
    throw new HostLinkError(`ip ${args.join(" ")}: ${new TextDecoder().decode(r.stderr).trim()}`);
  }
}

/** Gives `tap` the host address of its local link (`host`/31) and sets it up (or down, with `up` false). */
export async function bringUpLocal(tap: string, host: string, up = true): Promise<void> {
  validateInterfaceName(tap);
  parseIpv4(host);
  await ip("addr", "add", `${host}/31`, "dev", tap);
  await setLinkState(tap, up);
}

/** Sets an interface's link up or down (vm.conf's `up` / `down`). */
export async function setLinkState(name: string, up: boolean): Promise<void> {
  validateInterfaceName(name);
  await ip("link", "set", "dev", name, up ? "up" : "down");
}

/**
 * Gives `tap` the host's IPv6 address of its local link (`host`/96, `local inet6`), without duplicate address
 * detection (the address is the host's by construction). Like the IPv4 address it goes away with the tap.
 */
export async function addLocalInet6(tap: string, host: string): Promise<void> {
  validateInterfaceName(tap);
  if (parseIpv6(host) === null) throw new HostLinkError(`bad IPv6 address ${host}`);
  await ip("-6", "addr", "add", `${host}/96`, "dev", tap, "nodad");
}

/** Brings `tap` up without an address (a NIC on no switch, or before attaching). */
export async function bringUp(tap: string): Promise<void> {
  validateInterfaceName(tap);
  await ip("link", "set", "dev", tap, "up");
}

/** Whether an interface exists. */
export async function linkPresent(name: string): Promise<boolean> {
  validateInterfaceName(name);
  const r = await new Deno.Command("ip", {
    args: ["link", "show", "dev", name],
    stdout: "null",
    stderr: "null",
  })
    .output();
  return r.success;
}

/** Link states for {@link attachToSwitch} (vm.conf's interface and switch `up` / `down`). */
export interface SwitchLinkStates {
  /** The tap's state (default up). */
  readonly tapUp?: boolean;
  /**
   * The bridge's state: a vm.conf switch's `up` / `down`, applied whether the bridge was there or not; when
   * undefined a bridge this call creates is brought up and one already there is left as it is.
   */
  readonly bridgeUp?: boolean;
}

/**
 * Attaches `tap` to the bridge `bridge` (created when missing) and sets the links' states (`states`).
 * Returns true when this call created the bridge.
 */
export async function attachToSwitch(
  tap: string,
  bridge: string,
  states: SwitchLinkStates = {},
): Promise<boolean> {
  validateInterfaceName(tap);
  validateInterfaceName(bridge);
  let created = false;
  if (!(await linkPresent(bridge))) {
    await ip("link", "add", "name", bridge, "type", "bridge");
    created = true;
  }
  if (states.bridgeUp !== undefined || created) await setLinkState(bridge, states.bridgeUp ?? true);
  await ip("link", "set", "dev", tap, "master", bridge);
  await setLinkState(tap, states.tapUp ?? true);
  return created;
}

/** Removes a bridge this program created. */
export async function removeBridge(bridge: string): Promise<void> {
  validateInterfaceName(bridge);
  await ip("link", "del", "dev", bridge);
}

/** A random MAC in vmd's space for NIC `index`: fe:e1:bb:d<index+1>:xx:xx. */
export function randomLladdr(index: number): Uint8Array {
  const r = crypto.getRandomValues(new Uint8Array(2));
  return Uint8Array.from([0xfe, 0xe1, 0xbb, 0xd0 + ((index + 1) & 0xf), r[0], r[1]]);
}

/** Parses `xx:xx:xx:xx:xx:xx`; refuses multicast addresses (a NIC's own address is unicast). */
export function parseLladdr(text: string): Uint8Array {
  if (!/^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$/.test(text)) throw new HostLinkError(`bad lladdr ${text}`);
  const mac = Uint8Array.from(text.split(":").map((h) => parseInt(h, 16)));
  if ((mac[0] & 1) !== 0) throw new HostLinkError(`lladdr ${text} is a multicast address`);
  return mac;
}
