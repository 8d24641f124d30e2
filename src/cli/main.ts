/**
 * Top-level dispatch between the `vmd` and `vmctl` personalities of the one program.
 *
 * @module
 */
// Each personality (and each subcommand below it) is imported when used, so that `vmd run` does not load
// the config parser, the disk code or the client: start-up time and memory are part of what vmd is judged on.
// Through lazyImport, so that Deno does not read them all before starting either (lazy_import.ts).
import { lazyImport } from "./lazy_import.ts";

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
  if (name === "vmctl" || args[0] === "vmctl") {
    const { vmctlMain } = await lazyImport<typeof import("./vmctl_main.ts")>(
      "./vmctl_main.ts",
      import.meta.url,
    );
    return await vmctlMain(name === "vmctl" ? args : args.slice(1));
  }
  const { vmdMain } = await lazyImport<typeof import("./vmd_main.ts")>("./vmd_main.ts", import.meta.url);
  return await vmdMain(args);
}
