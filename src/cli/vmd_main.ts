/**
 * `vmd`: the daemon's command line, `vmd [-dnv] [-D macro=value] [-f file]`, plus the utility commands that
 * run without a daemon (`vmd demo`, `vmd policy`).
 *
 * @module
 */
import { ArgError, getopt } from "./getopt.ts";
import { VM_PROCESS_COMMAND } from "../vmd/vm_process_command.ts";

/** Prints vmd's usage to stderr. */
export function vmdUsage(): void {
  console.error(
    "usage: vmd [-dnv] [-D macro=value] [-f file]\n" +
      "       vmd run [-m size] [-b kernel|bios] [-B disk|cdrom|net] [--initrd file] [--cmdline text]\n" +
      "                                boot one VM in the foreground\n" +
      "       vmd demo                 boot the embedded demo guest\n" +
      "       vmd policy               print the permission table (who may do what)\n" +
      "       vmd vmctl command ...    the vmctl client",
  );
}

/** Runs `vmd args...` and resolves to the exit status. */
export async function vmdMain(args: string[]): Promise<number> {
  const [sub, ...rest] = args;
  // subcommands are imported when used (see main.ts)
  if (sub === "demo") return await (await import("./demo.ts")).demoMain(rest);
  if (sub === "policy") return await (await import("./policy.ts")).policyMain(rest);
  if (sub === "run") return await (await import("./run.ts")).runMain(rest);
  if (sub === VM_PROCESS_COMMAND) return await (await import("../vmd/vm_process.ts")).vmProcessMain(rest);
  let parsed;
  try {
    parsed = getopt(args, {
      debug: { type: "boolean", short: "d" },
      noaction: { type: "boolean", short: "n" },
      verbose: { type: "boolean", short: "v", multiple: true },
      define: { type: "string", short: "D", multiple: true },
      file: { type: "string", short: "f" },
      help: { type: "boolean", short: "h" },
    });
  } catch (e) {
    if (!(e instanceof ArgError)) throw e;
    console.error(`vmd: ${e.message}`);
    vmdUsage();
    return 1;
  }
  if (parsed.values.help) {
    vmdUsage();
    return 0;
  }
  if (parsed.values.noaction) {
    const { runConfigCheck } = await import("../config/check_command.ts");
    return runConfigCheck({
      file: parsed.values.file,
      defines: parsed.values.define ?? [],
      verbose: (parsed.values.verbose ?? []).length > 0,
    });
  }
  const { parseDefine } = await import("../config/load.ts");
  const { DEFAULT_CONFIG_PATH } = await import("../config/limits.ts");
  const { daemonMain } = await import("../vmd/daemon_main.ts");
  const defines: Record<string, string> = {};
  for (const d of parsed.values.define ?? []) {
    const kv = parseDefine(d);
    if (kv === null) {
      console.error(`vmd: invalid -D "${d}": expected name=value`);
      return 1;
    }
    defines[kv[0]] = kv[1];
  }
  return await daemonMain({
    configPath: parsed.values.file ?? DEFAULT_CONFIG_PATH,
    defines,
    verbose: (parsed.values.verbose ?? []).length > 0,
  });
}
