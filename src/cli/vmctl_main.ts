/**
 * `vmctl`: the client. Each command lives in its own module under `src/vmctl/`; this file only dispatches.
 *
 * @module
 */

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

/** Prints vmctl's usage line to stderr. */
export function vmctlUsage(): void {
  console.error(`usage: vmctl [-v] command [arg ...]\ncommands: ${VMCTL_COMMANDS.join(", ")}`);
}

/** Runs `vmctl args...` and resolves to the exit status. */
export async function vmctlMain(args: string[]): Promise<number> {
  const [command] = args;
  if (command === undefined) {
    vmctlUsage();
    return 1;
  }
  const matches = VMCTL_COMMANDS.filter((c) => c.startsWith(command));
  if (matches.length === 0) {
    console.error(`vmctl: unknown command: ${command}`);
    vmctlUsage();
    return 1;
  }
  if (matches.length > 1 && !matches.includes(command as typeof VMCTL_COMMANDS[number])) {
    console.error(`vmctl: ambiguous command: ${command} (${matches.join(", ")})`);
    return 1;
  }
  const resolved = matches.includes(command as typeof VMCTL_COMMANDS[number]) ? command : matches[0];
  // commands are imported when used (see main.ts): `create` needs the disk code, the rest the client
  if (resolved === "create") return await (await import("../vmctl/create.ts")).vmctlCreate(args.slice(1));
  if (resolved === "send" || resolved === "receive") {
    console.error(`vmctl: ${resolved}: not available in this build (VM snapshots are not implemented)`);
    return 1;
  }
  return await (await import("../vmctl/commands.ts")).runDaemonCommand(resolved, args.slice(1));
}
