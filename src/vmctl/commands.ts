/**
 * vmctl's daemon commands: start, stop, status/show, console, pause, unpause, wait, load, reload, reset and
 * log, with vmctl(8)'s flags. Each prints what happened and returns 0, or prints `vmctl: reason` and returns
 * 1. Everything vmctl can check itself (option values, counts, lengths) it checks before asking vmd, so a
 * mistake is reported in the words of the command line.
 *
 * @module
 */
import { resolveFrom } from "../config/path.ts";
import { ArgError, getopt, type OptionSpecs } from "../cli/getopt.ts";
import { MAX_MEMORY_BYTES } from "../config/limits.ts";
import { scanScaled } from "../config/size.ts";
import { parseDiskSpec } from "../disk/disk_spec.ts";
import { vmNameProblem } from "../config/vm_name.ts";
import { printable } from "../vmd/printable.ts";
import type { Reply, Request, StartOptions, VmStatus } from "../vmd/protocol.ts";
import { ControlError, fetchAllStatus, sendRequest } from "./client.ts";
import { attachConsole } from "./console.ts";
import { formatStatusTable } from "./status_table.ts";

/** A command-line mistake. */
export class VmctlUsageError extends Error {
  /** Builds the error. */
  constructor(message: string) {
    super(message);
    this.name = "VmctlUsageError";
  }
}

/** Usage lines of the daemon commands. */
export const COMMAND_USAGE: Readonly<Record<string, string>> = {
  console: "console id",
  load: "load filename",
  log: "log [brief | verbose]",
  pause: "pause id",
  reload: "reload",
  reset: "reset [all | switches | vms]",
  show: "show [-r] [id]",
  start: "start [-cL] [-B device] [-b path] [-d disk] [-i count] [-m size] [-n switch] [-r path] " +
    "[-t name] [--initrd path] [--cmdline text] [--cpus n] id | name",
  status: "status [-r] [id]",
  stop: "stop [-fw] [-a | id]",
  unpause: "unpause id",
  wait: "wait id",
};

function parse<const T extends OptionSpecs>(args: string[], options: T, positionals: [number, number]) {
  let parsed;
  try {
    parsed = getopt(args, options, true);
  } catch (e) {
    throw e instanceof ArgError ? new VmctlUsageError(e.message) : e;
  }
  const n = parsed.positionals.length;
  if (n < positionals[0] || n > positionals[1]) throw new VmctlUsageError("wrong number of arguments");
  return parsed;
}

/** Sends a request; on an error reply prints it and returns null. */
async function ask(req: Request): Promise<Reply | null> {
  const reply = await sendRequest(req);
  if (reply.type === "error") {
    console.error(`vmctl: ${shown(reply.message)}`);
    return null;
  }
  return reply;
}

/** A message from vmd as printed: its lines, each with its control characters escaped. */
function shown(message: string): string {
  return message.split("\n").map(printable).join("\n");
}

/** The longest path or command line vmctl sends (PATH_MAX; the daemon refuses longer ones). */
const MAX_TEXT = 4096;
/** Disks and interfaces a VM may have (VM_MAX_DISKS_PER_VM, VM_MAX_NICS_PER_VM). */
const MAX_DISKS = 4;
const MAX_NICS = 4;

/** `-m size` as vmctl(8) reads it: at least 1 MB, at most 128 GB, rounded down to whole megabytes. */
export function memoryArg(text: string, warn: (line: string) => void = (l) => console.error(l)): number {
  const r = scanScaled(text);
  if (!r.ok) throw new VmctlUsageError(`invalid memory size: ${text} (${r.reason})`);
  if (r.bytes < 1n << 20n) throw new VmctlUsageError(`memory size must be at least 1MB (got ${text})`);
  if (r.bytes > BigInt(MAX_MEMORY_BYTES)) {
    throw new VmctlUsageError(`memory size too large: ${text} (limit is ${MAX_MEMORY_BYTES / 2 ** 30}G)`);
  }
  const mb = Number(r.bytes >> 20n);
  if (BigInt(mb) << 20n !== r.bytes) warn(`vmctl: memory size rounded to ${mb}M`);
  return mb * 2 ** 20;
}

/**
 * A path the user typed, made absolute in vmctl's working directory (vmctl(8) resolves `-b`, `-d`, `-r`
 * before it asks vmd; the daemon's working directory means nothing to the user). A `raw:`/`qcow2:` prefix is
 * kept. The file is not opened here: vmd opens it with the user's rights, and refuses a final symlink.
 */
export function absolutePath(text: string, what: string, cwd: string = Deno.cwd()): string {
  if (text === "") throw new VmctlUsageError(`${what}: empty path`);
  const spec = parseDiskSpec(text);
  const abs = resolveFrom(cwd, spec.path);
  if (abs.length > MAX_TEXT) throw new VmctlUsageError(`${what} ${text}: path too long`);
  return spec.format === undefined ? abs : `${spec.format}:${abs}`;
}

async function start(args: string[]): Promise<number> {
  // `once`: vmctl(8) refuses these given twice ("memory specified multiple times")
  const { values: v, positionals } = parse(args, {
    console: { type: "boolean", short: "c" },
    local: { type: "boolean", short: "L", multiple: true },
    bootdev: { type: "string", short: "B", once: "boot device" },
    boot: { type: "string", short: "b", once: "boot image" },
    disk: { type: "string", short: "d", multiple: true },
    interfaces: { type: "string", short: "i", once: "interfaces" },
    memory: { type: "string", short: "m", once: "memory" },
    switch: { type: "string", short: "n", multiple: true },
    cdrom: { type: "string", short: "r", once: "iso image" },
    template: { type: "string", short: "t", once: "template" },
    initrd: { type: "string", once: "initrd" },
    cmdline: { type: "string", once: "kernel command line" },
    cpus: { type: "string", once: "cpus" },
  }, [1, 1]);
  const bootDevice = v.bootdev === undefined ? null : v.bootdev as string;
  if (bootDevice !== null && bootDevice !== "disk" && bootDevice !== "cdrom" && bootDevice !== "net") {
    throw new VmctlUsageError(`unknown boot device ${bootDevice} (disk, cdrom or net)`);
  }
  const cpus = v.cpus === undefined ? null : Number(v.cpus);
  if (cpus !== null && (!/^\d+$/.test(v.cpus as string) || cpus < 1 || cpus > 64)) {
    throw new VmctlUsageError(`invalid cpu count: ${v.cpus} (1 to 64)`);
  }
  const interfaces = v.interfaces === undefined ? null : Number(v.interfaces);
  if (interfaces !== null && (!/^\d+$/.test(v.interfaces as string) || interfaces < 1)) {
    throw new VmctlUsageError(`invalid interface count: ${v.interfaces} (at least 1)`);
  }
  const local = (v.local as boolean[] | undefined)?.length ?? 0;
  const switches = (v.switch as string[] | undefined) ?? null;
  if (Math.max(local + (switches?.length ?? 0), interfaces ?? 0) > MAX_NICS) {
    throw new VmctlUsageError(`too many network interfaces (a vm has at most ${MAX_NICS})`);
  }
  for (const sw of switches ?? []) {
    if (sw === "" || sw.length > 256) throw new VmctlUsageError(`invalid switch name: ${JSON.stringify(sw)}`);
  }
  const disks = (v.disk as string[] | undefined)?.map((d) => absolutePath(d, "-d")) ?? null;
  if (disks !== null && disks.length > MAX_DISKS) {
    throw new VmctlUsageError(`too many disks (a vm has at most ${MAX_DISKS})`);
  }
  const cmdline = (v.cmdline as string | undefined) ?? null;
  if (cmdline !== null && cmdline.length > MAX_TEXT) {
    throw new VmctlUsageError(`--cmdline is longer than ${MAX_TEXT} characters`);
  }
  const template = (v.template as string | undefined) ?? null;
  if (template !== null && template.length > 256) throw new VmctlUsageError("instance vm name too long");
  const options: StartOptions = {
    kernel: v.boot === undefined ? null : absolutePath(v.boot as string, "-b"),
    bootDevice,
    cdrom: v.cdrom === undefined ? null : absolutePath(v.cdrom as string, "-r"),
    initrd: v.initrd === undefined ? null : absolutePath(v.initrd as string, "--initrd"),
    cmdline,
    cpus,
    memory: v.memory === undefined ? null : memoryArg(v.memory as string),
    template,
    disks,
    local,
    interfaces,
    switches,
  };
  const target = positionals[0];
  if (target.length > 256) throw new VmctlUsageError("name too long");
  const any = Object.values(options).some((x) => x !== null && x !== false && x !== 0);
  if (options.kernel !== null || options.template !== null) {
    // a new VM: its name follows vm.conf's rule (the daemon checks again)
    const problem = vmNameProblem(target);
    if (problem !== null && !/^\d+$/.test(target)) throw new VmctlUsageError(problem);
  }
  const reply = await ask({ v: 1, type: "start", target, options: any ? options : null });
  if (reply === null) return 1;
  if (reply.type === "ok") console.error(`vmctl: ${shown(reply.message)}`);
  if (!v.console) return 0;
  // the reply names the running VM's tty (the same answer a console request would give, one round trip
  // sooner); a reply without one (the VM already ended) falls back to asking
  const tty = reply.type === "ok" ? reply.vm?.tty ?? null : null;
  return tty !== null ? await attachConsole(tty) : await consoleOf(target);
}

async function stop(args: string[]): Promise<number> {
  const { values: v, positionals } = parse(args, {
    force: { type: "boolean", short: "f" },
    wait: { type: "boolean", short: "w" },
    all: { type: "boolean", short: "a" },
  }, [0, 1]);
  if ((v.all === true) === (positionals.length === 1)) throw new VmctlUsageError("give either -a or one id");
  const target = v.all ? null : positionals[0];
  const reply = await ask({ v: 1, type: "stop", target, force: v.force === true, wait: v.wait === true });
  if (reply === null) return 1;
  if (reply.type === "ok") {
    const lines = reply.message.split("\n").filter((l) => l !== "");
    if (lines.length === 0) console.error("vmctl: no running vm to stop");
    for (const line of lines) console.error(`stopping ${printable(line)}`);
  }
  return 0;
}

/** True when `vm` is the one `target` (an id or a name) names. */
function names(target: string, vm: VmStatus): boolean {
  return /^\d+$/.test(target) ? vm.id === Number(target) : vm.name === target;
}

/**
 * `status [-r] [id]`, as vmctl(8): the header, then the rows (`-r`: running VMs only; with an id, only that
 * VM's row). The exit status is 1 when no VM is listed at all (none defined, or with `-r` none running) and
 * 0 otherwise, also for an id that matches no VM (its row is simply absent).
 */
async function status(args: string[]): Promise<number> {
  const { values: v, positionals } = parse(args, { running: { type: "boolean", short: "r" } }, [0, 1]);
  const r = await fetchAllStatus();
  if (!Array.isArray(r)) {
    console.error(`vmctl: ${shown(r.message)}`);
    return 1;
  }
  const listed = v.running ? r.filter((vm) => vm.state !== "stopped") : r;
  const target = positionals[0];
  console.log(formatStatusTable(target === undefined ? listed : listed.filter((vm) => names(target, vm))));
  return listed.length === 0 ? 1 : 0;
}

/** `log brief|verbose`, any case, and any prefix of either word (vmctl(8) compares with strncasecmp). */
export function logLevel(word: string): "brief" | "verbose" {
  const w = word.toLowerCase();
  if (w !== "" && "brief".startsWith(w)) return "brief";
  if (w !== "" && "verbose".startsWith(w)) return "verbose";
  throw new VmctlUsageError(`unknown log level: ${word} (brief or verbose)`);
}

/** `reset [all|switches|vms]`, any case. */
export function resetWhat(word: string | undefined): "all" | "switches" | "vms" {
  const w = (word ?? "all").toLowerCase();
  if (w === "all" || w === "switches" || w === "vms") return w;
  throw new VmctlUsageError(`unknown reset mode: ${word} (all, switches or vms)`);
}

async function consoleOf(target: string): Promise<number> {
  const reply = await ask({ v: 1, type: "console", target });
  if (reply === null || reply.type !== "console") return 1;
  return await attachConsole(reply.tty);
}

async function simple(req: Request): Promise<number> {
  const reply = await ask(req);
  if (reply === null) return 1;
  if (reply.type === "ok") console.error(`vmctl: ${shown(reply.message)}`);
  return 0;
}

/** Runs the daemon command `command` (already resolved from a prefix) with `args`; the exit status. */
export async function runDaemonCommand(command: string, args: string[]): Promise<number> {
  try {
    switch (command) {
      case "start":
        return await start(args);
      case "stop":
        return await stop(args);
      case "status":
      case "show":
        return await status(args);
      case "console":
        return await consoleOf(parse(args, {}, [1, 1]).positionals[0]);
      case "pause":
      case "unpause":
        return await simple({ v: 1, type: command, target: parse(args, {}, [1, 1]).positionals[0] });
      case "wait":
        return await simple({ v: 1, type: "wait", target: parse(args, {}, [1, 1]).positionals[0] });
      case "load": {
        const path = parse(args, {}, [1, 1]).positionals[0];
        return await simple({ v: 1, type: "load", path: absolutePath(path, "load") });
      }
      case "reload":
        parse(args, {}, [0, 0]);
        return await simple({ v: 1, type: "reload" });
      case "reset":
        return await simple({ v: 1, type: "reset", what: resetWhat(parse(args, {}, [0, 1]).positionals[0]) });
      case "log":
        return await simple({ v: 1, type: "log", level: logLevel(parse(args, {}, [1, 1]).positionals[0]) });
    }
    console.error(`vmctl: ${command}: not available in this build`);
    return 1;
  } catch (e) {
    if (e instanceof VmctlUsageError) {
      console.error(`vmctl: ${e.message}\nusage: vmctl ${COMMAND_USAGE[command] ?? command}`);
      return 1;
    }
    if (e instanceof ControlError) {
      console.error(`vmctl: ${e.message}`);
      return 1;
    }
    throw e;
  }
}
