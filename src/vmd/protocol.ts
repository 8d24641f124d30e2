/**
 * The control protocol between vmctl and vmd: one request per frame (see `framing.ts`), one reply each.
 * Requests and replies are discriminated unions on `type`, carry the protocol version `v`, and each type has
 * its own validator that accepts exactly its fields. Who is asking is never part of a message: the daemon
 * learns it from the kernel (SO_PEERCRED).
 *
 * @module
 */
import { bool, int, intOrNull, MessageError, oneOf, record, str, strOrNull } from "./validate_fields.ts";

/** The protocol version both sides must speak. */
export const PROTOCOL_VERSION = 1;

/** Most vCPUs and memory a request may ask for (the config limits are checked again by the daemon). */
const MAX_CPUS = 64;
const MAX_MEMORY = 128 * 2 ** 30;

/** What `vmctl start` may add for an ad hoc VM or an instance (`-t`). */
export interface StartOptions {
  /** Kernel or BIOS image to boot (`-b`); none: the default BIOS. */
  readonly kernel: string | null;
  /** What the BIOS boots (`-B disk|cdrom|net`). */
  readonly bootDevice: "disk" | "cdrom" | "net" | null;
  /** ISO image for the CD-ROM (`-r`). */
  readonly cdrom: string | null;
  /** Initrd (`--initrd`). */
  readonly initrd: string | null;
  /** Kernel command line (`--cmdline`). */
  readonly cmdline: string | null;
  /** vCPUs (`--cpus`). */
  readonly cpus: number | null;
  /** Memory in bytes (`-m`). */
  readonly memory: number | null;
  /** Template VM for an instance (`-t`). */
  readonly template: string | null;
  /** Disk images (`-d`), or null. */
  readonly disks: readonly string[] | null;
  /** Local interfaces, first (one per `-L`). */
  readonly local: number;
  /** NICs in all (`-i count`), or null. */
  readonly interfaces: number | null;
  /** One NIC on each of these switches (`-n`), or null. */
  readonly switches: readonly string[] | null;
}

/** A start that adds nothing (every option unset); spread it and set what a start asks for. */
export const NO_START_OPTIONS: StartOptions = {
  kernel: null,
  bootDevice: null,
  cdrom: null,
  initrd: null,
  cmdline: null,
  cpus: null,
  memory: null,
  template: null,
  disks: null,
  local: 0,
  interfaces: null,
  switches: null,
};

/** A request from vmctl. `target` is a VM id (decimal) or name. */
export type Request =
  | {
    readonly v: 1;
    readonly type: "status";
    readonly target: string | null;
    /** With no target: list the VMs whose id is above this (the `next` of the previous page); default 0. */
    readonly after?: number;
  }
  | { readonly v: 1; readonly type: "start"; readonly target: string; readonly options: StartOptions | null }
  | {
    readonly v: 1;
    readonly type: "stop";
    readonly target: string | null;
    readonly force: boolean;
    readonly wait: boolean;
  }
  | { readonly v: 1; readonly type: "pause"; readonly target: string }
  | { readonly v: 1; readonly type: "unpause"; readonly target: string }
  | { readonly v: 1; readonly type: "console"; readonly target: string }
  | { readonly v: 1; readonly type: "wait"; readonly target: string }
  | { readonly v: 1; readonly type: "load"; readonly path: string }
  | { readonly v: 1; readonly type: "reload" }
  | { readonly v: 1; readonly type: "reset"; readonly what: "all" | "switches" | "vms" }
  | { readonly v: 1; readonly type: "log"; readonly level: "brief" | "verbose" };

/** A VM's state as reported. */
export type VmState = "stopped" | "starting" | "running" | "paused" | "stopping";

/** One row of `vmctl status`. */
export interface VmStatus {
  /** The VM's id (1, 2, ...). */
  readonly id: number;
  /** Its name. */
  readonly name: string;
  /** The VM process's pid, or null when stopped. */
  readonly pid: number | null;
  /** vCPUs. */
  readonly vcpus: number;
  /** Guest memory in bytes. */
  readonly maxmem: number;
  /**
   * Resident guest RAM in bytes (what the guest has touched, at most `maxmem`), or null when stopped. Null
   * also in the row of a start or console reply, which does not measure it (a status request does).
   */
  readonly curmem: number | null;
  /** The console's pty, or null. */
  readonly tty: string | null;
  /** The owner as text (`root`, `alice`, `alice:staff`, `:staff`). */
  readonly owner: string;
  /** The state. */
  readonly state: VmState;
  /** Restarts after guest reboots since the last start by a user. */
  readonly restarts: number;
  /** How the last run ended, or null. */
  readonly lastExit: string | null;
}

/** Error codes of an error reply. */
export const ERROR_CODES = [
  "bad-message",
  "too-large",
  "version",
  "unknown-type",
  "denied",
  "no-such-vm",
  "state",
  "failed",
  "unsupported",
] as const;

/** An error code. */
export type ErrorCode = typeof ERROR_CODES[number];

/** A reply from vmd. */
export type Reply =
  | { readonly v: 1; readonly type: "error"; readonly code: ErrorCode; readonly message: string }
  | {
    readonly v: 1;
    readonly type: "status";
    readonly vms: readonly VmStatus[];
    /** More VMs follow: ask again with `after` set to this id. Absent or null on the last page. */
    readonly next?: number | null;
  }
  | { readonly v: 1; readonly type: "ok"; readonly message: string; readonly vm: VmStatus | null }
  | { readonly v: 1; readonly type: "console"; readonly tty: string; readonly vm: VmStatus };

/** The request types. */
export const REQUEST_TYPES = [
  "status",
  "start",
  "stop",
  "pause",
  "unpause",
  "console",
  "wait",
  "load",
  "reload",
  "reset",
  "log",
] as const;

/** A request that failed validation, with the error code to reply with. */
export class RequestError extends Error {
  /** The reply's error code. */
  readonly code: ErrorCode;
  /** Builds the error. */
  constructor(code: ErrorCode, message: string) {
    super(message);
    this.name = "RequestError";
    this.code = code;
  }
}

const TARGET_MAX = 256;

function validateDiskList(value: unknown): string[] | null {
  if (value === null) return null;
  if (
    !Array.isArray(value) || value.length > 4 ||
    !value.every((p) => typeof p === "string" && p.length <= 4096)
  ) {
    throw new MessageError('field "disks" must be null or at most 4 paths');
  }
  return value;
}

function validateStartOptions(value: unknown): StartOptions | null {
  if (value === null) return null;
  const o = record(
    value,
    [
      "kernel",
      "bootDevice",
      "cdrom",
      "initrd",
      "cmdline",
      "cpus",
      "memory",
      "template",
      "disks",
      "local",
      "interfaces",
      "switches",
    ],
    "start options",
  );
  const sw = o.switches;
  if (
    sw !== null &&
    (!Array.isArray(sw) || sw.length > 4 || !sw.every((n) => typeof n === "string" && n.length <= TARGET_MAX))
  ) {
    throw new MessageError('field "switches" must be null or at most 4 names');
  }
  return {
    kernel: strOrNull(o, "kernel"),
    bootDevice: o.bootDevice === null ? null : oneOf(o, "bootDevice", ["disk", "cdrom", "net"] as const),
    cdrom: strOrNull(o, "cdrom"),
    initrd: strOrNull(o, "initrd"),
    cmdline: strOrNull(o, "cmdline"),
    cpus: intOrNull(o, "cpus", 1, MAX_CPUS),
    memory: intOrNull(o, "memory", 2 ** 20, MAX_MEMORY),
    template: strOrNull(o, "template", TARGET_MAX),
    disks: validateDiskList(o.disks),
    local: int(o, "local", 0, 4),
    interfaces: intOrNull(o, "interfaces", 1, 4),
    switches: sw as string[] | null,
  };
}

/** One validator per request type: each accepts exactly that type's fields. */
const REQUEST_VALIDATORS: { readonly [K in Request["type"]]: (value: unknown) => Request } = {
  status: (x) => {
    const o = record(x, ["v", "type", "target", "after"], "status");
    const target = strOrNull(o, "target", TARGET_MAX);
    if (o.after === undefined) return { v: 1, type: "status", target };
    return { v: 1, type: "status", target, after: int(o, "after", 0, 2 ** 31) };
  },
  start: (x) => {
    const o = record(x, ["v", "type", "target", "options"], "start");
    return {
      v: 1,
      type: "start",
      target: str(o, "target", TARGET_MAX),
      options: validateStartOptions(o.options),
    };
  },
  stop: (x) => {
    const o = record(x, ["v", "type", "target", "force", "wait"], "stop");
    return {
      v: 1,
      type: "stop",
      target: strOrNull(o, "target", TARGET_MAX),
      force: bool(o, "force"),
      wait: bool(o, "wait"),
    };
  },
  pause: (x) => ({
    v: 1,
    type: "pause",
    target: str(record(x, ["v", "type", "target"], "pause"), "target", TARGET_MAX),
  }),
  unpause: (x) => ({
    v: 1,
    type: "unpause",
    target: str(record(x, ["v", "type", "target"], "unpause"), "target", TARGET_MAX),
  }),
  console: (x) => ({
    v: 1,
    type: "console",
    target: str(record(x, ["v", "type", "target"], "console"), "target", TARGET_MAX),
  }),
  wait: (x) => ({
    v: 1,
    type: "wait",
    target: str(record(x, ["v", "type", "target"], "wait"), "target", TARGET_MAX),
  }),
  load: (x) => ({ v: 1, type: "load", path: str(record(x, ["v", "type", "path"], "load"), "path") }),
  reload: (x) => (record(x, ["v", "type"], "reload"), { v: 1, type: "reload" }),
  reset: (x) => ({
    v: 1,
    type: "reset",
    what: oneOf(record(x, ["v", "type", "what"], "reset"), "what", ["all", "switches", "vms"]),
  }),
  log: (x) => ({
    v: 1,
    type: "log",
    level: oneOf(record(x, ["v", "type", "level"], "log"), "level", ["brief", "verbose"]),
  }),
};

/** Validates a decoded frame as a request; throws {@link RequestError} with the code to reply with. */
export function validateRequest(value: unknown): Request {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new RequestError("bad-message", "a request must be a JSON object");
  }
  const obj = value as Record<string, unknown>;
  if (obj.v !== PROTOCOL_VERSION) {
    throw new RequestError(
      "version",
      `protocol version ${
        JSON.stringify(obj.v)
      } is not ${PROTOCOL_VERSION}; use a vmctl from the same release as vmd`,
    );
  }
  const type = obj.type;
  if (typeof type !== "string" || !(REQUEST_TYPES as readonly string[]).includes(type)) {
    throw new RequestError("unknown-type", `unknown request type ${JSON.stringify(type)}`);
  }
  try {
    return REQUEST_VALIDATORS[type as Request["type"]](value);
  } catch (e) {
    if (e instanceof MessageError) throw new RequestError("bad-message", e.message);
    throw e;
  }
}

const STATES: readonly VmState[] = ["stopped", "starting", "running", "paused", "stopping"];

function validateVmStatus(value: unknown): VmStatus {
  const o = record(value, [
    "id",
    "name",
    "pid",
    "vcpus",
    "maxmem",
    "curmem",
    "tty",
    "owner",
    "state",
    "restarts",
    "lastExit",
  ], "vm status");
  return {
    id: int(o, "id", 1, 2 ** 31),
    name: str(o, "name", TARGET_MAX),
    pid: intOrNull(o, "pid", 1, 2 ** 31),
    vcpus: int(o, "vcpus", 1, MAX_CPUS),
    maxmem: int(o, "maxmem", 0, MAX_MEMORY),
    curmem: intOrNull(o, "curmem", 0, Number.MAX_SAFE_INTEGER),
    tty: strOrNull(o, "tty"),
    owner: str(o, "owner"),
    state: oneOf(o, "state", STATES),
    restarts: int(o, "restarts", 0, 2 ** 31),
    lastExit: strOrNull(o, "lastExit"),
  };
}

/** One validator per reply type. */
const REPLY_VALIDATORS: { readonly [K in Reply["type"]]: (value: unknown) => Reply } = {
  error: (x) => {
    const o = record(x, ["v", "type", "code", "message"], "error reply");
    return { v: 1, type: "error", code: oneOf(o, "code", ERROR_CODES), message: str(o, "message", 65536) };
  },
  status: (x) => {
    const o = record(x, ["v", "type", "vms", "next"], "status reply");
    if (!Array.isArray(o.vms)) throw new MessageError('field "vms" must be an array');
    const next = o.next === undefined ? null : intOrNull(o, "next", 1, 2 ** 31);
    return { v: 1, type: "status", vms: o.vms.map(validateVmStatus), next };
  },
  ok: (x) => {
    const o = record(x, ["v", "type", "message", "vm"], "ok reply");
    return {
      v: 1,
      type: "ok",
      message: str(o, "message", 65536),
      vm: o.vm === null ? null : validateVmStatus(o.vm),
    };
  },
  console: (x) => {
    const o = record(x, ["v", "type", "tty", "vm"], "console reply");
    return { v: 1, type: "console", tty: str(o, "tty"), vm: validateVmStatus(o.vm) };
  },
};

/** Validates a decoded frame as a reply; throws {@link MessageError}. */
export function validateReply(value: unknown): Reply {
  const obj = record(value, ["v", "type", "code", "message", "vms", "next", "vm", "tty"], "reply");
  if (obj.v !== PROTOCOL_VERSION) {
    throw new MessageError(
      `reply has protocol version ${JSON.stringify(obj.v)}, expected ${PROTOCOL_VERSION}`,
    );
  }
  const type = obj.type;
  if (typeof type !== "string" || !Object.hasOwn(REPLY_VALIDATORS, type)) {
    throw new MessageError(`unknown reply type ${JSON.stringify(type)}`);
  }
  return REPLY_VALIDATORS[type as Reply["type"]](value);
}

/** An error reply. */
export function errorReply(code: ErrorCode, message: string): Reply {
  return { v: 1, type: "error", code, message };
}
