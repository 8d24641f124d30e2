/**
 * Reading a kernel or initrd into memory with its size checked first: the file's length comes from `fstat`
 * on the open file, and a file larger than the guest's RAM is refused before a byte is read (a sparse
 * multi-gigabyte initrd must not cost the host its size in memory).
 *
 * @module
 */
import { BootError } from "../boot/boot_error.ts";

/**
 * Reads the regular file reachable at `path` (a link to a descriptor opened and type-checked before), which
 * `name` names in messages, refusing it if it is larger than `limit` bytes.
 */
export function readBootFile(path: string, name: string, what: string, limit: number): Uint8Array {
  let file: Deno.FsFile;
  try {
    file = Deno.openSync(path, { read: true });
  } catch (e) {
    throw new BootError(name, `cannot read the ${what}: ${(e as Error).message}`);
  }
  try {
    // the length by seeking (Deno checks an fstat against the real path, which only the link is granted)
    const size = file.seekSync(0, Deno.SeekMode.End);
    if (size > limit) {
      throw new BootError(
        name,
        `the ${what} has ${size} bytes, more than the VM's ${limit} bytes of memory; give the VM more ` +
          "memory (-m) or a smaller file",
      );
    }
    file.seekSync(0, Deno.SeekMode.Start);
    const out = new Uint8Array(size);
    let done = 0;
    while (done < out.length) {
      const n = file.readSync(out.subarray(done));
      if (n === null || n === 0) break;
      done += n;
    }
    return done === out.length ? out : out.subarray(0, done);
  } finally {
    file.close();
  }
}
