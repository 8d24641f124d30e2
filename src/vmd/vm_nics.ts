/**
 * The daemon's (privileged) side of a VM's NICs. It opens each tap, `vm<id>-if<n>` or the name vm.conf gives
 * (`interface "tap3"`), with every name checked before any call; sets up its host side with iproute2 (a local
 * interface's /31 from the `local prefix` and, with `local inet6`, its /96; or the switch's Linux bridge,
 * created when missing; link states as configured); and hands the open fds to the VM process as it hands the
 * console pty. The VM process closes its copies when it ends, which removes the taps and their addresses; a
 * bridge vmd created is removed when the last VM on it has stopped, or when vmd exits.
 *
 * @module
 */
import { closeFd } from "../../ffi/fd.ts";
import { openTap, validateInterfaceName } from "../../ffi/tap.ts";
import {
  addLocalInet6,
  attachToSwitch,
  bringUpLocal,
  parseLladdr,
  randomLladdr,
  removeBridge,
  setLinkState,
} from "../net/host_link.ts";
import { localInet6Addresses } from "../net/local_inet6.ts";
import { localAddresses } from "../net/local_prefix.ts";
import type { SpecNic } from "./vm_messages.ts";

/** One NIC as a VM's definition asks for it. */
export interface NicDefinition {
  /** A `local interface`: a /31 from the local prefix, DHCP answered by the device. */
  readonly local: boolean;
  /** The Linux bridge it joins (a switch's `interface`), or null. */
  readonly bridge: string | null;
  /** A fixed guest MAC (`xx:xx:xx:xx:xx:xx`), or null for a random one. */
  readonly lladdr: string | null;
  /** `locked lladdr` (the NIC's own or its switch's). */
  readonly locked: boolean;
  /** The tap's link state: the interface's `up` (default) or `down`. */
  readonly up: boolean;
  /** Its vm.conf switch's `up` / `down`, applied to the bridge; null for none (a new bridge is brought up). */
  readonly bridgeUp: boolean | null;
  /** The tap's name from vm.conf (`interface "tap3"`), or null for `vm<id>-if<n>`. */
  readonly tap: string | null;
}

/** A NIC the daemon cannot set up (bad name or lladdr, a failed `ip` or tap open). */
export class VmNicError extends Error {
  /** Builds the error. */
  constructor(message: string) {
    super(message);
    this.name = "VmNicError";
  }
}

/** The bridges vmd created, with how many of vmd's taps are on each. */
const createdBridges = new Map<string, number>();
/** Bridges vmd found already there, with how many of vmd's taps are on each. */
const foundBridges = new Map<string, number>();

/** A VM's NICs while it runs: the specs for its process and what to undo. */
export interface OpenNics {
  /** What the VM process is told (fds it inherits). */
  readonly specs: SpecNic[];
  /** The bridges its NICs joined (released when it stops). */
  readonly bridges: string[];
  /** Whether vmd's copies of the fds are closed. */
  fdsClosed: boolean;
}

/**
 * Opens and sets up the taps of VM `id`. On failure everything done so far is undone and a
 * {@link VmNicError} is thrown.
 */
export async function openNics(
  id: number,
  nics: readonly NicDefinition[],
  localPrefix: string,
  localInet6: string | null = null,
): Promise<OpenNics> {
  const plans = nics.map((n, i) => {
    const tap = n.tap ?? `vm${id}-if${i}`;
    try {
      validateInterfaceName(tap);
      if (nics.some((o, j) => j < i && (o.tap ?? `vm${id}-if${j}`) === tap)) {
        throw new VmNicError("the vm names this interface twice");
      }
      if (n.bridge !== null) validateInterfaceName(n.bridge);
      return {
        tap,
        def: n,
        mac: n.lladdr === null ? randomLladdr(i) : parseLladdr(n.lladdr),
        local: n.local ? localAddresses(id, i, localPrefix) : null,
        inet6: n.local && localInet6 !== null ? localInet6Addresses(id, i, localPrefix, localInet6) : null,
      };
    } catch (e) {
      throw new VmNicError(`${tap}: ${(e as Error).message}`);
    }
  });
  const specs: SpecNic[] = [];
  const bridges: string[] = [];
  try {
    for (const p of plans) {
      let opened;
      try {
        opened = openTap(p.tap);
      } catch (e) {
        throw new VmNicError(`${p.tap}: ${(e as Error).message}`);
      }
      specs.push({
        tap: p.tap,
        fd: opened.fd,
        mac: [...p.mac],
        hostMac: [...opened.hostMac],
        lockedLladdr: p.def.locked,
        local: p.local === null ? null : { host: p.local.host, guest: p.local.guest },
      });
      try {
        if (p.local !== null) {
          if (p.inet6 !== null) await addLocalInet6(p.tap, p.inet6.host);
          await bringUpLocal(p.tap, p.local.host, p.def.up);
        } else if (p.def.bridge !== null) {
          const bridge = p.def.bridge;
          const created = await attachToSwitch(p.tap, bridge, {
            tapUp: p.def.up,
            bridgeUp: p.def.bridgeUp ?? undefined,
          });
          const table = created || createdBridges.has(bridge) ? createdBridges : foundBridges;
          table.set(bridge, (created ? 0 : table.get(bridge) ?? 0) + 1);
          bridges.push(bridge);
        } else await setLinkState(p.tap, p.def.up);
      } catch (e) {
        throw new VmNicError(`${p.tap}: ${(e as Error).message}`);
      }
    }
    return { specs, bridges, fdsClosed: false };
  } catch (e) {
    const undo = { specs, bridges, fdsClosed: false };
    closeTapFds(undo);
    await releaseBridges(undo);
    throw e;
  }
}

/** Closes vmd's copies of the tap fds (after the VM process has inherited them, or on failure). */
export function closeTapFds(nics: OpenNics): void {
  if (nics.fdsClosed) return;
  nics.fdsClosed = true;
  for (const s of nics.specs) {
    try {
      closeFd(s.fd);
    } catch { /* already closed */ }
  }
}

/** Releases a stopped VM's bridges: one vmd created is removed once no VM of vmd's is on it. */
export async function releaseBridges(nics: OpenNics): Promise<void> {
  for (const b of nics.bridges.splice(0)) {
    const found = foundBridges.get(b);
    if (found !== undefined) {
      if (found <= 1) foundBridges.delete(b);
      else foundBridges.set(b, found - 1);
      continue;
    }
    const users = (createdBridges.get(b) ?? 1) - 1;
    if (users > 0) {
      createdBridges.set(b, users);
      continue;
    }
    createdBridges.delete(b);
    await removeBridge(b).catch(() => {});
  }
}

/** Removes every bridge vmd created (when vmd exits). */
export async function removeCreatedBridges(): Promise<void> {
  for (const b of [...createdBridges.keys()]) {
    createdBridges.delete(b);
    await removeBridge(b).catch(() => {});
  }
  foundBridges.clear();
}
