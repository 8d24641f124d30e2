/**
 * Starts a VM process: the same program re-executed (`deno run <flags> cli.ts vm-process`) with the
 * permission flags of the table's `vm` row for exactly this VM's files (kernel, initrd, disks and their
 * backing images), its stdin/stdout as the message pipe, its stderr passed through to the daemon's log, and
 * the console pty's master and the VM's tap fds (opened by the daemon) inherited.
 *
 * @module
 */
import { spawnInheriting } from "../../ffi/fd_inherit.ts";
import { resolveLibcPath } from "../../ffi/libc.ts";
import { processFlags, type VmFiles } from "../privsep/permission_table.ts";
import { diskChainPaths } from "../vm/pci_devices.ts";
import type { SpecDisk, VmSpec } from "./vm_messages.ts";
import { VM_PROCESS_COMMAND } from "./vm_process_command.ts";

const root = new URL("../../", import.meta.url);

/** The `deno` arguments that start a VM process with access to `files`. */
export function vmProcessArgs(files: VmFiles): string[] {
  const flags = processFlags("vm", {
    libcPath: resolveLibcPath(),
    vmFiles: files,
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

/**
 * The files a VM process for these boot files and disks may open: each disk image read-write (read-only when
 * so attached), every backing image read-only. Opens each image read-only to find its backing chain; throws
 * the disk layer's error for an image that cannot be opened.
 */
export async function vmFiles(boot: readonly string[], disks: readonly SpecDisk[]): Promise<VmFiles> {
  const readWrite: string[] = [];
  const readOnly: string[] = [];
  for (const d of disks) {
    const [image, ...backing] = await diskChainPaths(d.path);
    (d.readOnly ? readOnly : readWrite).push(image);
    readOnly.push(...backing);
  }
  return { boot, disks: readWrite, readOnlyDisks: readOnly };
}

/** The command that starts a VM process for `spec` (its files' permissions resolved; not yet spawned). */
export async function vmProcessCommand(
  spec: Omit<VmSpec, "consoleFd" | "nics" | "vmId">,
): Promise<Deno.Command> {
  const boot = spec.initrd === null ? [spec.kernel] : [spec.kernel, spec.initrd];
  return new Deno.Command(Deno.execPath(), {
    args: vmProcessArgs(await vmFiles(boot, spec.disks)),
    stdin: "piped",
    stdout: "piped",
    stderr: "inherit",
  });
}

/**
 * Spawns a prepared VM process; it inherits the console fd `consoleFd` and its tap fds `tapFds`, and no other
 * fd of vmd's.
 */
export function spawnVmProcess(
  command: Deno.Command,
  consoleFd: number,
  tapFds: readonly number[] = [],
): Deno.ChildProcess {
  return spawnInheriting([consoleFd, ...tapFds], () => command.spawn());
}
