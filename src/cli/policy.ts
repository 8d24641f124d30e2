/**
 * `vmd policy`: prints the permission table — every process and worker, what it may do and why — and its
 * kernel columns (identity, seccomp, Landlock, with what this kernel offers). `vmd policy --check` reads every
 * running VM process back from /proc (Seccomp, NoNewPrivs, CapEff, uid of each thread) and exits 1 if a
 * thread is not locked down.
 *
 * @module
 */
import { landlockAbi } from "../../ffi/landlock.ts";
import { resolveLibcPath } from "../../ffi/libc.ts";
import { formatKernelPolicy, formatLiveCheck, liveVmProcesses } from "../privsep/kernel_policy.ts";
import { formatPolicy } from "../privsep/permission_table.ts";

/** Prints the table (or the live check); resolves to the exit status. */
export function policyMain(args: string[]): Promise<number> {
  if (args.length === 1 && args[0] === "--check") {
    const vms = liveVmProcesses();
    console.log(formatLiveCheck(vms));
    const bad = vms.some((vm) => vm.threads.some((t) => !t.locked));
    return Promise.resolve(bad ? 1 : 0);
  }
  if (args.length > 0) {
    console.error("usage: vmd policy [--check]");
    return Promise.resolve(1);
  }
  const programRoot = new URL("../..", import.meta.url).pathname.replace(/\/$/, "");
  const libcPath = resolveLibcPath();
  console.log(formatPolicy({ libcPath, programRoot }));
  const abi = landlockAbi();
  console.log("");
  console.log(formatKernelPolicy(
    abi.abi === null
      ? `Landlock: NOT available on this kernel (${abi.why}); seccomp alone refuses file access`
      : `Landlock: ABI ${abi.abi} on this kernel`,
  ));
  return Promise.resolve(0);
}
