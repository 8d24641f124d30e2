/**
 * `vmctl status` in pages: a status reply never outgrows the 64 KiB frame, however many VMs there are. The
 * daemon fills a reply with rows (in id order) while it fits and says which id the next page starts after;
 * vmctl asks until there is no next page. Each row is bounded, so every page holds at least one.
 *
 * @module
 */
import { MAX_FRAME_BYTES } from "./framing.ts";
import type { Reply, VmStatus } from "./protocol.ts";

/** Bytes of rows per page: the frame limit less room for the reply's other fields. */
export const STATUS_PAGE_BYTES = MAX_FRAME_BYTES - 1024;
/** The longest `lastExit` a row carries; longer ones are cut (the daemon's log has the whole reason). */
export const MAX_LAST_EXIT = 1024;
/** The longest owner text a row carries (user:group names are at most 32 characters each). */
const MAX_OWNER = 256;

const encoder = new TextEncoder();

function cut(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max - 3)}...`;
}

/** A row with its free-text fields bounded (names are bounded by the name rule, ttys by the system). */
export function boundedRow(vm: VmStatus): VmStatus {
  return {
    ...vm,
    name: cut(vm.name, 256),
    tty: vm.tty === null ? null : cut(vm.tty, 256),
    owner: cut(vm.owner, MAX_OWNER),
    lastExit: vm.lastExit === null ? null : cut(vm.lastExit, MAX_LAST_EXIT),
  };
}

/** What a page is made of: a VM's id and its status row (computed only when the row is needed). */
export interface StatusSource {
  /** The VM's id. */
  readonly id: number;
  /** Its status row. */
  status(): VmStatus;
}

/**
 * The page of `entries` (in ascending id order) that starts after id `after`: as many rows as fit in
 * {@link STATUS_PAGE_BYTES}, and the id to continue after when some are left.
 */
export function statusPage(entries: readonly StatusSource[], after: number): Reply {
  const vms: VmStatus[] = [];
  let bytes = 0;
  for (const e of entries) {
    if (e.id <= after) continue;
    const vm = boundedRow(e.status());
    const size = encoder.encode(JSON.stringify(vm)).length + 1;
    if (vms.length > 0 && bytes + size > STATUS_PAGE_BYTES) {
      return { v: 1, type: "status", vms, next: vms[vms.length - 1].id };
    }
    vms.push(vm);
    bytes += size;
  }
  return { v: 1, type: "status", vms, next: null };
}
