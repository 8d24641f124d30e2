/**
 * Starts a VM process: the same program re-executed (`deno run <flags> cli.ts vm-process <fd>`) with the
 * permission flags of the table's `vm` row (no user file among them), its stdin/stdout as the message pipe,
 * its stderr passed through to the daemon's log, and one end of a `SOCK_SEQPACKET` socket pair (its
 * descriptor channel, fd `<fd>`) as the only descriptor it inherits. It is started before it has a VM (the
 * daemon's warm pool, or on demand): the daemon sends the VM's descriptors (console pty master, taps, kernel,
 * initrd, disks and backing images, all opened by the daemon) over the channel when it hands the process a
 * VM, then the boot message over the pipe.
 *
 * @module
 */
import { seqpacketPair } from "../../ffi/fd_passing.ts";
import { closeFd } from "../../ffi/fd.ts";
import { spawnInheriting } from "../../ffi/fd_inherit.ts";
import { resolveLibcPath } from "../../ffi/libc.ts";
import { LAZILY_READ_ENV } from "../privsep/lockdown.ts";
import { processFlags } from "../privsep/permission_table.ts";
import { v8FlagsArg } from "./v8_flags.ts";
import { VM_PROCESS_COMMAND } from "./vm_process_command.ts";
import { bundleProblem, bundleUrl, PROGRAM_ROOT } from "../build/bundles.ts";

/**
 * The `deno` arguments that start a VM process whose descriptor channel is fd `channelFd`: its bundle while
 * the bundles are fresh (src/build/bundles.ts), else `cli.ts vm-process`.
 */
export function vmProcessArgs(channelFd: number, bundled: boolean = bundleProblem() === null): string[] {
  const flags = processFlags("vm", {
    libcPath: resolveLibcPath(),
    programRoot: PROGRAM_ROOT.pathname.replace(/\/$/, ""),
  });
  return [
    "run",
    "--no-prompt",
    "--config",
    new URL("deno.json", PROGRAM_ROOT).pathname,
    ...flags,
    v8FlagsArg(), // see v8_flags.ts
    ...(bundled
      ? [bundleUrl("vm-process").pathname]
      : [new URL("cli.ts", PROGRAM_ROOT).pathname, VM_PROCESS_COMMAND]),
    String(channelFd),
  ];
}

/**
 * The environment a VM process (or a test's stand-in for one) is started with: vmd's, minus the variables
 * Deno reads lazily ({@link LAZILY_READ_ENV}; a VM process has no env permission to forget them itself).
 */
export function vmProcessEnv(): Record<string, string> {
  return Object.fromEntries(
    Object.entries(Deno.env.toObject()).filter(([k]) => !LAZILY_READ_ENV.includes(k)),
  );
}

/** A started VM process without a VM yet: the child and the daemon's end of its descriptor channel. */
export interface VmProcess {
  /** The child (stdin/stdout piped: the message channel). */
  readonly proc: Deno.ChildProcess;
  /** The daemon's end of the descriptor channel (close-on-exec; the daemon closes it once it has sent). */
  readonly channel: number;
}

/** Spawns a VM process; it inherits its end of a new descriptor channel and no other fd of vmd's. */
export function spawnVmProcess(): VmProcess {
  const env = vmProcessEnv();
  const [mine, theirs] = seqpacketPair();
  try {
    const command = new Deno.Command(Deno.execPath(), {
      args: vmProcessArgs(theirs),
      clearEnv: true,
      env,
      stdin: "piped",
      stdout: "piped",
      stderr: "inherit",
    });
    const proc = spawnInheriting([theirs], () => command.spawn());
    return { proc, channel: mine };
  } catch (e) {
    closeFd(mine);
    throw e;
  } finally {
    closeFd(theirs);
  }
}
