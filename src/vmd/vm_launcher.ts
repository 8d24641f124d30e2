/**
 * Starts a VM process: the same program re-executed (`deno run <flags> cli.ts vm-process`) with the
 * permission flags of the table's `vm` row (no user file among them), its stdin/stdout as the message pipe,
 * its stderr passed through to the daemon's log, and the console pty's master, the VM's tap fds and the
 * descriptors of its kernel, initrd, disks and backing images (all opened by the daemon) inherited.
 *
 * @module
 */
import { spawnInheriting } from "../../ffi/fd_inherit.ts";
import { resolveLibcPath } from "../../ffi/libc.ts";
import { processFlags } from "../privsep/permission_table.ts";
import { VM_PROCESS_COMMAND } from "./vm_process_command.ts";

const root = new URL("../../", import.meta.url);

/** The `deno` arguments that start a VM process (the same for every VM: its files arrive as descriptors). */
export function vmProcessArgs(): string[] {
  const flags = processFlags("vm", {
    libcPath: resolveLibcPath(),
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
 * Environment variables a VM process must not inherit: certificate bundles Deno would load lazily (after the
 * lock-down, which refuses the open and prints a warning). A VM process makes no TLS connection.
 */
const NOT_INHERITED = ["NODE_EXTRA_CA_CERTS", "SSL_CERT_FILE", "SSL_CERT_DIR", "DENO_CERT"];

/** The command that starts a VM process (not yet spawned). */
export function vmProcessCommand(): Deno.Command {
  const env = Object.fromEntries(
    Object.entries(Deno.env.toObject()).filter(([k]) => !NOT_INHERITED.includes(k)),
  );
  return new Deno.Command(Deno.execPath(), {
    args: vmProcessArgs(),
    clearEnv: true,
    env,
    stdin: "piped",
    stdout: "piped",
    stderr: "inherit",
  });
}

/**
 * Spawns a prepared VM process; it inherits the console fd `consoleFd`, its tap fds `tapFds` and its file
 * fds `fileFds` (kernel, initrd, disks), and no other fd of vmd's.
 */
export function spawnVmProcess(
  command: Deno.Command,
  consoleFd: number,
  tapFds: readonly number[] = [],
  fileFds: readonly number[] = [],
): Deno.ChildProcess {
  return spawnInheriting([consoleFd, ...tapFds, ...fileFds], () => command.spawn());
}
