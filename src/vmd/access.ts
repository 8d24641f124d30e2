/**
 * Who may do what, as vmd decides it: root may do everything; a VM's owner (its user, or any member of its
 * group) may start, stop, pause, unpause, wait for and attach to it; everyone who can connect may read the
 * status. Identities are the peer credentials the kernel gave the socket, never anything a client says.
 *
 * @module
 */
import type { PeerCredentials } from "../../ffi/unix_socket.ts";
import type { Owner, Principal } from "../config/types.ts";
import type { UserDb } from "./user_db.ts";

/** An owner whose names could not be resolved (an unknown user or group). */
export class OwnerError extends Error {
  /** Builds the error. */
  constructor(message: string) {
    super(message);
    this.name = "OwnerError";
  }
}

/** An owner with ids resolved. */
export interface ResolvedOwner {
  /** Owning uid, or null. */
  readonly uid: number | null;
  /** Owning gid, or null. */
  readonly gid: number | null;
  /** As text: `user`, `user:group`, `:group`, or `root` when unset. */
  readonly text: string;
}

function resolvePrincipal(p: Principal | null, kind: "user" | "group", db: UserDb): number | null {
  if (p === null) return null;
  if (p.kind === "id") return p.id;
  const id = kind === "user" ? db.user(p.name)?.uid : db.group(p.name)?.gid;
  if (id === undefined) {
    throw new OwnerError(`owner ${kind} "${p.name}" does not exist on this host; create it or fix vm.conf`);
  }
  return id;
}

function principalText(p: Principal | null): string {
  if (p === null) return "";
  return p.kind === "id" ? String(p.id) : p.name;
}

/** Resolves an owner's names to ids (null owner: root only). */
export function resolveOwner(owner: Owner | null, db: UserDb): ResolvedOwner {
  if (owner === null || (owner.user === null && owner.group === null)) {
    return { uid: null, gid: null, text: "root" };
  }
  const uid = resolvePrincipal(owner.user, "user", db);
  const gid = resolvePrincipal(owner.group, "group", db);
  const text = owner.group === null
    ? principalText(owner.user)
    : `${principalText(owner.user)}:${principalText(owner.group)}`;
  return { uid, gid, text };
}

/** True when `peer` may control (start, stop, pause, unpause, console, wait) a VM owned by `owner`. */
export function mayControl(peer: PeerCredentials, owner: ResolvedOwner, db: UserDb): boolean {
  if (peer.uid === 0) return true;
  if (owner.uid !== null && owner.uid === peer.uid) return true;
  if (owner.gid !== null && db.groupIdsOf(peer.uid, peer.gid).has(owner.gid)) return true;
  return false;
}

/** True when `peer` may change the daemon itself (load, reload, reset, log, ad hoc VMs). */
export function mayAdminister(peer: PeerCredentials): boolean {
  return peer.uid === 0;
}
