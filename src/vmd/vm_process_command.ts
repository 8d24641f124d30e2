/**
 * The name of the internal subcommand that runs the VM-process role (`cli.ts vm-process`), in a module of its
 * own so that the command line can recognise it without loading the daemon.
 *
 * @module
 */

/** The internal subcommand that runs the VM-process role. */
export const VM_PROCESS_COMMAND = "vm-process";
