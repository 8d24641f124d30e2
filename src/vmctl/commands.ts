/**
 * vmctl's daemon commands: start, stop, status/show, console, pause, unpause, wait, load, reload, reset and
 * log, with vmctl(8)'s flags. Each prints what happened and returns 0, or prints `vmctl: reason` and returns
 * 1. Networking and disks are accepted by the parser and refused with a clear reason until this build has them.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { scanScaled } from "../config/size.ts";
import { vmNameProblem } from "../config/validate_vm.ts";
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

function parse(
  args: string[],
  options: NonNullable<Parameters<typeof parseArgs>[0]>["options"],
  positionals: [number, number],
) {
  let parsed;
  try {
    parsed = parseArgs({ args, options, allowPositionals: true, strict: true });
  } catch (e) {
    throw new VmctlUsageError((e as Error).message);
  }
  const n = parsed.positionals.length;
  if (n < positionals[0] || n > positionals[1]) throw new VmctlUsageError("wrong number of arguments");
  return parsed as { values: Record<string, string | boolean | string[] | undefined>; positionals: string[] };
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

function memoryArg(text: string): number {
  const r = scanScaled(text);
  if (!r.ok) throw new VmctlUsageError(`-m ${text}: ${r.reason}`);
  const bytes = Number(r.bytes / (1n << 20n)) * 2 ** 20;
  if (bytes < 2 ** 20) throw new VmctlUsageError(`-m ${text}: at least 1M`);
  return bytes;
}

async function start(args: string[]): Promise<number> {
  const { values: v, positionals } = parse(args, {
    console: { type: "boolean", short: "c" },
    local: { type: "boolean", short: "L" },
    bootdev: { type: "string", short: "B" },
    boot: { type: "string", short: "b" },
    disk: { type: "string", short: "d", multiple: true },
    interfaces: { type: "string", short: "i" },
    memory: { type: "string", short: "m" },
    switch: { type: "string", short: "n", multiple: true },
    cdrom: { type: "string", short: "r" },
    template: { type: "string", short: "t" },
    initrd: { type: "string" },
    cmdline: { type: "string" },
    cpus: { type: "string" },
  }, [1, 1]);
  if (v.cdrom !== undefined || v.bootdev !== undefined) {
    console.error("vmctl: -r and -B need the BIOS; this vmd boots kernels only (-b path)");
    return 1;
  }
  const cpus = v.cpus === undefined ? null : Number(v.cpus);
  if (cpus !== null && (!Number.isInteger(cpus) || cpus < 1 || cpus > 64)) {
    throw new VmctlUsageError(`--cpus ${v.cpus}: expected 1..64`);
  }
  const interfaces = v.interfaces === undefined ? null : Number(v.interfaces);
  if (interfaces !== null && (!Number.isInteger(interfaces) || interfaces < 0 || interfaces > 4)) {
    throw new VmctlUsageError(`-i ${v.interfaces}: expected 0..4`);
  }
  const options: StartOptions = {
    kernel: (v.boot as string | undefined) ?? null,
    initrd: (v.initrd as string | undefined) ?? null,
    cmdline: (v.cmdline as string | undefined) ?? null,
    cpus,
    memory: v.memory === undefined ? null : memoryArg(v.memory as string),
    template: (v.template as string | undefined) ?? null,
    disks: (v.disk as string[] | undefined) ?? null,
    local: v.local === true,
    interfaces: interfaces,
    switches: (v.switch as string[] | undefined) ?? null,
  };
  const any = Object.values(options).some((x) => x !== null && x !== false);
  if (options.kernel !== null || options.template !== null) {
    // a new VM: its name follows vm.conf's rule (the daemon checks again)
    const problem = vmNameProblem(positionals[0]);
    if (problem !== null) throw new VmctlUsageError(problem);
  }
  const reply = await ask({ v: 1, type: "start", target: positionals[0], options: any ? options : null });
  if (reply === null) return 1;
  if (reply.type === "ok") console.error(`vmctl: ${shown(reply.message)}`);
  if (v.console) return await consoleOf(positionals[0]);
  return 0;
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
    for (const line of reply.message.split("\n")) {
      console.error(`stopping ${printable(line)}`);
    }
  }
  return 0;
}

async function status(args: string[]): Promise<number> {
  const { values: v, positionals } = parse(args, { running: { type: "boolean", short: "r" } }, [0, 1]);
  let all: readonly VmStatus[];
  if (positionals.length === 0) {
    const r = await fetchAllStatus();
    if (!Array.isArray(r)) {
      console.error(`vmctl: ${shown(r.message)}`);
      return 1;
    }
    all = r;
  } else {
    const reply = await ask({ v: 1, type: "status", target: positionals[0] });
    if (reply === null || reply.type !== "status") return 1;
    all = reply.vms;
  }
  const vms = v.running ? all.filter((vm) => vm.state !== "stopped") : all;
  console.log(formatStatusTable(vms));
  return 0;
}

async function consoleOf(target: string): Promise<number> {
  const reply = await ask({ v: 1, type: "console", target });
  if (reply === null || reply.type !== "console") return 1;
  return await attachConsole(reply.tty);
}

async function simple(req: Request, quiet = false): Promise<number> {
  const reply = await ask(req);
  if (reply === null) return 1;
  if (!quiet && reply.type === "ok") console.error(`vmctl: ${shown(reply.message)}`);
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
        return await simple({ v: 1, type: "wait", target: parse(args, {}, [1, 1]).positionals[0] }, true);
      case "load":
        return await simple({ v: 1, type: "load", path: parse(args, {}, [1, 1]).positionals[0] });
      case "reload":
        parse(args, {}, [0, 0]);
        return await simple({ v: 1, type: "reload" });
      case "reset": {
        const what = parse(args, {}, [0, 1]).positionals[0] ?? "all";
        if (what !== "all" && what !== "switches" && what !== "vms") {
          throw new VmctlUsageError(`reset ${what}?`);
        }
        return await simple({ v: 1, type: "reset", what });
      }
      case "log": {
        const level = parse(args, {}, [1, 1]).positionals[0];
        if (level !== "brief" && level !== "verbose") throw new VmctlUsageError(`log ${level}?`);
        return await simple({ v: 1, type: "log", level });
      }
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
