/**
 * Messages between a VM's main thread and a virtio device worker, with one validator per direction: the
 * worker checks everything it is sent before using it.
 *
 * @module
 */
import type { GuestMemoryShare } from "../memory/guest_memory.ts";
import type { ProbeResult } from "../privsep/confinement_probe.ts";
import { TRANSPORT_STATE_SIZE } from "./transport_state.ts";

/** The disk a virtio-blk worker serves. */
export interface BlkDiskInit {
  /** The disk name as `openDisk` takes it (`raw:`/`qcow2:` prefix allowed). */
  readonly spec: string;
  /** Open without write access. */
  readonly readOnly: boolean;
  /** The GET_ID serial (at most 20 bytes). */
  readonly id: string;
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
}

/** Main → worker: try forbidden powers and report; `otherFile` is a file the worker must not read. */
export interface DeviceProbeMessage {
  readonly type: "probe";
  readonly otherFile: string;
}

/** Main → worker messages. */
export type ToDeviceMessage = DeviceInitMessage | DeviceProbeMessage;

/** What a device worker's probe found: the common probe plus dlopen and reading another file. */
export interface DeviceProbeResult extends ProbeResult {
  /** Opening a library. */
  readonly ffi: string;
  /** Reading the other file. */
  readonly otherFile: string;
}

/** Worker → main messages. */
export type FromDeviceMessage =
  | { readonly type: "ready" }
  | { readonly type: "probe-result"; readonly result: DeviceProbeResult }
  | { readonly type: "failed"; readonly message: string };

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null;

/** Validates a main → worker message; returns why it is malformed, or undefined. */
export function validateToDevice(v: unknown): string | undefined {
  if (!isObject(v)) return "message is not an object";
  switch (v.type) {
    case "probe":
      return typeof v.otherFile === "string" ? undefined : "probe: otherFile must be a path";
    case "init": {
      const m = v.memory;
      if (!isObject(m) || !(m.sab instanceof SharedArrayBuffer) || typeof m.offset !== "number") {
        return "init: memory must carry the guest RAM buffer";
      }
      if (!Array.isArray(m.regions)) return "init: memory.regions must be an array";
      if (!(v.state instanceof SharedArrayBuffer) || v.state.byteLength < TRANSPORT_STATE_SIZE) {
        return "init: state must be the transport's shared buffer";
      }
      if (v.disk !== undefined) {
        const d = v.disk;
        if (!isObject(d) || typeof d.spec !== "string" || typeof d.readOnly !== "boolean") {
          return "init: disk must have a spec and readOnly";
        }
        if (typeof d.id !== "string" || new TextEncoder().encode(d.id).length > 20) {
          return "init: disk.id must be a string of at most 20 bytes";
        }
      }
      return undefined;
    }
    default:
      return `unknown message type ${String(v.type)}`;
  }
}

/** Validates a worker → main message; returns why it is malformed, or undefined. */
export function validateFromDevice(v: unknown): string | undefined {
  if (!isObject(v)) return "message is not an object";
  switch (v.type) {
    case "ready":
      return undefined;
    case "probe-result":
      return isObject(v.result) ? undefined : "probe-result: result is malformed";
    case "failed":
      return typeof v.message === "string" ? undefined : "failed: message must be a string";
    default:
      return `unknown message type ${String(v.type)}`;
  }
}
