/**
 * Reaching an open descriptor from Deno code that can only open paths. A disk worker's file API takes a path
 * and cannot adopt a raw fd, and Deno refuses `/proc/self/fd/N` to anything less than `--allow-all`. So vmd
 * keeps, per VM, a private directory (root's, mode 0700) of links `N -> /proc/self/fd/N`: the kernel resolves
 * such a link in the context of whoever opens it, so in the VM process it reaches the very file vmd opened
 * as descriptor N (inherited under the same number), whatever has happened to the user's path since. No user
 * path is ever looked up again, and the worker's permission grant names only its links.
 *
 * @module
 */

/** A directory of descriptor links. */
export class FdLinks {
  /** The directory. */
  readonly dir: string;
  #removed = false;

  private constructor(dir: string) {
    this.dir = dir;
  }

  /** Makes a new private directory (mode 0700, under the system's temporary directory). */
  static create(): FdLinks {
    const dir = Deno.makeTempDirSync({ prefix: "vmd-fd-" });
    Deno.chmodSync(dir, 0o700);
    return new FdLinks(dir);
  }

  /** The link path for descriptor `fd` (which must be open in the process that will use the link). */
  pathOf(fd: number): string {
    return `${this.dir}/${fd}`;
  }

  /** Creates the link for `fd` (once) and returns its path. */
  link(fd: number): string {
    if (!Number.isInteger(fd) || fd < 0) throw new RangeError(`bad descriptor ${fd}`);
    const path = this.pathOf(fd);
    try {
      Deno.symlinkSync(`/proc/self/fd/${fd}`, path);
    } catch (e) {
      if (!(e instanceof Deno.errors.AlreadyExists)) throw e;
    }
    return path;
  }

  /** Removes the directory and its links (the descriptors stay open). */
  remove(): void {
    if (this.#removed) return;
    this.#removed = true;
    try {
      Deno.removeSync(this.dir, { recursive: true });
    } catch {
      // already gone
    }
  }
}
