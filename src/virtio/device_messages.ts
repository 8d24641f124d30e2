/**
 * Messages between a VM's main thread and a virtio device worker, with one validator per direction: the
 * worker checks everything it is sent before using it.
 *
 * @module
 */
import type { DiskFile } from "../disk/open.ts";
import type { GuestMemoryShare } from "../memory/guest_memory.ts";
import type { ProbeResult } from "../privsep/confinement_probe.ts";
import { isProbeTargets, type ProbeOutcome, type ProbeTargets } from "../privsep/libc_probe.ts";
import { TRANSPORT_STATE_SIZE } from "./transport_state.ts";

/** The disk a virtio-blk worker serves. */
export interface BlkDiskInit {
  /** The image, then its backing chain, each opened before (the worker opens no path at all). */
  readonly files: readonly DiskFile[];
  /** libc's path (the worker's only grant: pread/pwrite on those descriptors). */
  readonly libcPath: string;
  /** Open without write access. */
  readonly readOnly: boolean;
  /** The GET_ID serial (at most 20 bytes). */
  readonly id: string;
}

/** The ISO image a virtio-scsi (CD-ROM) worker serves. */
export interface CdromInit {
  /** The image's descriptor, opened read-only before (the worker opens no path at all). */
  readonly fd: number;
  /** Its name (the path the user gave), for messages. */
  readonly name: string;
  /** libc's path (the worker's only grant: pread on that descriptor). */
  readonly libcPath: string;
  /** The unit serial number INQUIRY reports (at most 32 ASCII bytes). */
  readonly serial: string;
}

/** The tap a virtio-net worker serves, and how. */
export interface NetInit {
  /** The tap fd (opened by the main thread; fds are shared by every thread of the process). */
  readonly tapFd: number;
  /** libc's path (the worker's only ffi grant). */
  readonly libcPath: string;
  /** The NIC's MAC, 6 bytes. */
  readonly mac: readonly number[];
  /** Drop guest frames with another source MAC. */
  readonly lockedLladdr: boolean;
  /** A `local interface`: answer DHCP with these addresses. */
  readonly dhcp?: { readonly host: string; readonly guest: string; readonly hostMac: readonly number[] };
}

/** Main → worker: build the device over guest memory and the transport state. */
export interface DeviceInitMessage {
  readonly type: "init";
  /** Guest RAM. */
  readonly memory: GuestMemoryShare;
  /** The transport state shared with the vCPU workers. */
  readonly state: SharedArrayBuffer;
  /** virtio-blk only: its disk. */
  readonly disk?: BlkDiskInit;
  /** virtio-net only: its tap. */
  readonly net?: NetInit;
  /** virtio-scsi only: its CD-ROM image. */
  readonly cdrom?: CdromInit;
  /** The main thread published the transport; the worker starts late, maybe after DRIVER_OK. */
  readonly published?: boolean;
}

/** Main → worker: try forbidden powers and report; `otherFile` is a file the worker must not read. */
export interface DeviceProbeMessage {
  readonly type: "probe";
  readonly otherFile: string;
  /** Aim libc probes here too (see `libc_probe.ts`). */
  readonly targets?: ProbeTargets;
}

/** Main → worker: report the device's counters. */
export interface DeviceStatsMessage {
  readonly type: "stats";
}

/** Main → worker messages. */
export type ToDeviceMessage = DeviceInitMessage | DeviceProbeMessage | DeviceStatsMessage;

/** What a device worker's probe found: the common probe plus dlopen and reading another file. */
export interface DeviceProbeResult extends ProbeResult {
  /** Opening a library. */
  readonly ffi: string;
  /** Reading the other file. */
  readonly otherFile: string;
  /** The libc probes (through libc where the worker holds it), when targets were given. */
  readonly libc?: Record<string, ProbeOutcome>;
}

/** Worker → main messages. */
export type FromDeviceMessage =
  | { readonly type: "ready" }
  | { readonly type: "probe-result"; readonly result: DeviceProbeResult }
  | { readonly type: "stats"; readonly counters: Readonly<Record<string, number>> }
  | { readonly type: "failed"; readonly message: string };

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null;

/** Validates a main → worker message; returns why it is malformed, or undefined. */
export function validateToDevice(v: unknown): string | undefined {
  if (!isObject(v)) return "message is not an object";
  switch (v.type) {
    case "probe":
      if (v.targets !== undefined && !isProbeTargets(v.targets)) return "probe: targets are malformed";
      return typeof v.otherFile === "string" ? undefined : "probe: otherFile must be a path";
    case "stats":
      return undefined;
    case "init": {
      const m = v.memory;
      if (!isObject(m) || !(m.sab instanceof SharedArrayBuffer) || typeof m.offset !== "number") {
        return "init: memory must carry the guest RAM buffer";
      }
      if (!Array.isArray(m.regions)) return "init: memory.regions must be an array";
      if (v.published !== undefined && typeof v.published !== "boolean") {
        return "init: published must be a boolean";
      }
      if (!(v.state instanceof SharedArrayBuffer) || v.state.byteLength < TRANSPORT_STATE_SIZE) {
        return "init: state must be the transport's shared buffer";
      }
      if (v.disk !== undefined) {
        const d = v.disk;
        if (
          !isObject(d) || !Array.isArray(d.files) || typeof d.readOnly !== "boolean" ||
          typeof d.libcPath !== "string"
        ) {
          return "init: disk must have files, readOnly and libcPath";
        }
        for (const f of d.files as unknown[]) {
          if (
            !isObject(f) || !Number.isInteger(f.fd) || typeof f.name !== "string" ||
            (f.format !== "raw" && f.format !== "qcow2") || typeof f.probed !== "boolean"
          ) {
            return "init: each disk file must have an fd, a name, a format and whether it was probed";
          }
        }
        if (typeof d.id !== "string" || new TextEncoder().encode(d.id).length > 20) {
          return "init: disk.id must be a string of at most 20 bytes";
        }
      }
      if (v.cdrom !== undefined) {
        const c = v.cdrom;
        if (
          !isObject(c) || !Number.isInteger(c.fd) || (c.fd as number) < 0 || typeof c.name !== "string" ||
          typeof c.libcPath !== "string" || typeof c.serial !== "string" ||
          !/^[\x20-\x7e]{0,32}$/.test(c.serial)
        ) {
          return "init: cdrom must have an fd, a name, libcPath and a serial of at most 32 ASCII bytes";
        }
      }
      return v.net === undefined ? undefined : validateNetInit(v.net);
    }
    default:
      return `unknown message type ${String(v.type)}`;
  }
}

const isMac = (v: unknown): boolean =>
  Array.isArray(v) && v.length === 6 && v.every((b) => Number.isInteger(b) && b >= 0 && b <= 255);
const isIpv4 = (v: unknown): boolean =>
  typeof v === "string" && /^\d{1,3}(\.\d{1,3}){3}$/.test(v) && v.split(".").every((p) => Number(p) <= 255);

function validateNetInit(n: unknown): string | undefined {
  if (!isObject(n)) return "init: net must be an object";
  if (!Number.isInteger(n.tapFd) || (n.tapFd as number) < 0) return "init: net.tapFd must be an fd";
  if (typeof n.libcPath !== "string") return "init: net.libcPath must be a path";
  if (!isMac(n.mac)) return "init: net.mac must be 6 bytes";
  if (typeof n.lockedLladdr !== "boolean") return "init: net.lockedLladdr must be a boolean";
  if (n.dhcp !== undefined) {
    const d = n.dhcp;
    if (!isObject(d) || !isIpv4(d.host) || !isIpv4(d.guest) || !isMac(d.hostMac)) {
      return "init: net.dhcp must have host and guest IPv4 addresses and a hostMac";
    }
  }
  return undefined;
}

/** Validates a worker → main message; returns why it is malformed, or undefined. */
export function validateFromDevice(v: unknown): string | undefined {
  if (!isObject(v)) return "message is not an object";
  switch (v.type) {
    case "ready":
      return undefined;
    case "probe-result":
      return isObject(v.result) ? undefined : "probe-result: result is malformed";
    case "stats":
      return isObject(v.counters) && Object.values(v.counters).every((n) => typeof n === "number")
        ? undefined
        : "stats: counters must be numbers";
    case "failed":
      return typeof v.message === "string" ? undefined : "failed: message must be a string";
    default:
      return `unknown message type ${String(v.type)}`;
  }
}
