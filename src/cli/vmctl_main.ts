/**
 * `vmctl`: the client. Each command lives in its own module under `src/vmctl/`; this file only dispatches.
 *
 * @module
 */
import { lazyImport } from "./lazy_import.ts";

// imported when used, not read by Deno before the program starts (lazy_import.ts)
const commands = () =>
  lazyImport<typeof import("../vmctl/commands.ts")>("../vmctl/commands.ts", import.meta.url);
const create = () => lazyImport<typeof import("../vmctl/create.ts")>("../vmctl/create.ts", import.meta.url);

/** The commands of vmctl(8), in the order its manual lists them. */
export const VMCTL_COMMANDS = [
  "console",
  "create",
  "load",
  "log",
  "pause",
  "receive",
  "reload",
  "reset",
  "send",
  "show",
  "start",
  "status",
  "stop",
  "unpause",
  "wait",
] as const;

/** Prints vmctl's usage (every command with its arguments) to stderr. */
export async function vmctlUsage(): Promise<void> {
  const { COMMAND_USAGE } = await commands();
  const { CREATE_USAGE } = await create();
  const lines = VMCTL_COMMANDS.map((c) =>
    c === "create"
      ? CREATE_USAGE.replace("usage: vmctl ", "")
      : COMMAND_USAGE[c] ?? `${c} (not in this build)`
  );
  console.error(`usage: vmctl [-v] command [arg ...]\n${lines.map((l) => `       vmctl ${l}`).join("\n")}`);
}

/**
 * Runs `vmctl args...` and resolves to the exit status. `-v` (verbose, as in vmctl(8)) is accepted before the
 * command; `help`, `-h` and `--help` print the usage and exit 0.
 */
export async function vmctlMain(args: string[]): Promise<number> {
  while (args[0] !== undefined && /^-v+$/.test(args[0])) args = args.slice(1);
  const [command] = args;
  if (command === "help" || command === "-h" || command === "--help") {
    await vmctlUsage();
    return 0;
  }
  if (command === undefined) {
    await vmctlUsage();
    return 1;
  }
  const matches = VMCTL_COMMANDS.filter((c) => c.startsWith(command));
  if (matches.length === 0) {
    console.error(`vmctl: unknown command: ${command}`);
    await vmctlUsage();
    return 1;
  }
  if (matches.length > 1 && !matches.includes(command as typeof VMCTL_COMMANDS[number])) {
    console.error(`vmctl: ambiguous command: ${command} (${matches.join(", ")})`);
    return 1;
  }
  const resolved = matches.includes(command as typeof VMCTL_COMMANDS[number]) ? command : matches[0];
  // commands are imported when used (see main.ts): `create` needs the disk code, the rest the client
  if (resolved === "create") return await (await create()).vmctlCreate(args.slice(1));
  if (resolved === "send" || resolved === "receive") {
    console.error(`vmctl: ${resolved}: not available in this build (VM snapshots are not implemented)`);
    return 1;
  }
  return await (await commands()).runDaemonCommand(resolved, args.slice(1));
}
