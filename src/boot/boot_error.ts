/**
 * The boot loaders' error: a kernel or initrd that cannot be loaded, with the file and the reason.
 *
 * @module
 */

/** A kernel image, initrd or command line that cannot be booted. */
export class BootError extends Error {
  /** Builds the error; `what` names the file or item (e.g. the kernel's path). */
  constructor(what: string, message: string) {
    super(`${what}: ${message}`);
    this.name = "BootError";
  }
}
