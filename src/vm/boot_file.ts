/**
 * Reading a kernel or initrd from a descriptor opened and type-checked before (by vmd, or by `vmd run` with
 * the user's own rights), with its size checked first: the length comes from `fstat`, and a file larger than
 * the guest's RAM is refused before a byte is read (a sparse multi-gigabyte initrd must not cost the host
 * its size in memory).
 *
 * @module
 */
import { fstatFd, preadFd } from "../../ffi/open_file.ts";
import { BootError } from "../boot/boot_error.ts";

/** Reads the regular file open as `fd` (`name` in messages), refusing it if it is larger than `limit` bytes. */
export function readBootFile(fd: number, name: string, what: string, limit: number): Uint8Array {
  const size = fstatFd(fd).size;
  if (size > limit) {
    throw new BootError(
      name,
      `the ${what} has ${size} bytes, more than the VM's ${limit} bytes of memory; give the VM more memory ` +
        "(-m) or a smaller file",
    );
  }
  const out = new Uint8Array(size);
  return out.subarray(0, preadFd(fd, out, 0));
}
