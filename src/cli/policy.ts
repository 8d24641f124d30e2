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
  const programRoot = new URL("../..", import.meta.url).pathname.replace(/\/$/, "");
  console.log(formatPolicy({ libcPath: resolveLibcPath(), programRoot }));
  return Promise.resolve(0);
}
