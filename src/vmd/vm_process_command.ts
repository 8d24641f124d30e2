/**
 * The name of the internal subcommand that runs the VM-process role (`cli.ts vm-process`), and how to tell a
 * VM process's command line, in a module of its own so that the command line can recognise it without
 * loading the daemon.
 *
 * @module
 */
import { BUNDLE_PATH, bundleFile } from "../build/bundles.ts";

/** The internal subcommand that runs the VM-process role. */
export const VM_PROCESS_COMMAND = "vm-process";

/**
 * True if `argv` (a process's command line) is a VM process's: `cli.ts vm-process <fd>` or its bundle
 * (`build/bundles/vm-process.js <fd>`).
 */
export function isVmProcessArgv(argv: readonly string[]): boolean {
  const bundle = `/${BUNDLE_PATH}/${bundleFile("vm-process")}`;
  return argv.includes(VM_PROCESS_COMMAND) || argv.some((a) => a.endsWith(bundle));
}
