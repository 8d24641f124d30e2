/**
 * Starts a VM process: the same program re-executed (`deno run <flags> cli.ts vm-process`) with the
 * permission flags of the table's `vm` row for exactly this VM's files, its stdin/stdout as the message pipe
 * and its stderr passed through to the daemon's log.
 *
 * @module
 */
import { spawnInheriting } from "../../ffi/fd_inherit.ts";
import { resolveLibcPath } from "../../ffi/libc.ts";
import { processFlags } from "../privsep/permission_table.ts";
import type { VmSpec } from "./vm_messages.ts";
import { VM_PROCESS_COMMAND } from "./vm_process_command.ts";

const root = new URL("../../", import.meta.url);

/** The `deno` arguments that start a VM process for `spec`. */
export function vmProcessArgs(spec: VmSpec, disks: readonly string[] = []): string[] {
  const boot = spec.initrd === null ? [spec.kernel] : [spec.kernel, spec.initrd];
  const flags = processFlags("vm", {
    libcPath: resolveLibcPath(),
    vmFiles: { boot, disks },
    programRoot: root.pathname.replace(/\/$/, ""),
  });
  return [
    "run",
    "--no-prompt",
    "--config",
    new URL("deno.json", root).pathname,
    ...flags,
    new URL("cli.ts", root).pathname,
    VM_PROCESS_COMMAND,
  ];
}

/** Spawns the VM process for `spec` (not yet told to boot); it inherits the console fd and nothing else. */
export function spawnVmProcess(spec: VmSpec): Deno.ChildProcess {
  const command = new Deno.Command(Deno.execPath(), {
    args: vmProcessArgs(spec),
    stdin: "piped",
    stdout: "piped",
    stderr: "inherit",
  });
  return spawnInheriting([spec.consoleFd], () => command.spawn());
}
