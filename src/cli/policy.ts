/**
 * `vmd policy`: prints the permission table — every process and worker, what it may do and why.
 *
 * @module
 */
import { resolveLibcPath } from "../../ffi/libc.ts";
import { formatPolicy } from "../privsep/permission_table.ts";

/** Prints the table; resolves to the exit status. */
export function policyMain(args: string[]): Promise<number> {
  if (args.length > 0) {
    console.error("usage: vmd policy");
    return Promise.resolve(1);
  }
  // the per-VM and per-disk rows' files differ: shown as placeholders
  const programRoot = new URL("../..", import.meta.url).pathname.replace(/\/$/, "");
  const vmFiles = { boot: ["<its kernel>", "<its initrd>"], disks: ["<its disks>"] };
  console.log(formatPolicy({
    libcPath: resolveLibcPath(),
    programRoot,
    vmFiles,
    disk: { paths: ["<disk image>", "<its backing images>"], readOnly: false },
  }));
  return Promise.resolve(0);
}
