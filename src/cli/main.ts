/**
 * Top-level dispatch between the `vmd` and `vmctl` personalities of the one program.
 *
 * @module
 */
import { vmdMain } from "./vmd_main.ts";
import { vmctlMain } from "./vmctl_main.ts";

/** The name the program runs under: the last path component of the executable (`vmctl` when installed so). */
export function programName(): string {
  const path = Deno.execPath();
  return path.slice(path.lastIndexOf("/") + 1);
}

/**
 * Runs the program with `args` and resolves to its exit status. `vmd vmctl ...` and a program installed under
 * the name `vmctl` both reach the client.
 */
export async function main(args: string[], name: string = programName()): Promise<number> {
  if (name === "vmctl") return await vmctlMain(args);
  if (args[0] === "vmctl") return await vmctlMain(args.slice(1));
  return await vmdMain(args);
}
