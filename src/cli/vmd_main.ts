/**
 * `vmd`: the daemon's command line, `vmd [-dnv] [-D macro=value] [-f file]`, plus the utility commands that
 * run without a daemon (`vmd demo`, `vmd policy`).
 *
 * @module
 */
import { ArgError, getopt } from "./getopt.ts";
import { VM_PROCESS_COMMAND } from "../vmd/vm_process_command.ts";
import { lazyImport } from "./lazy_import.ts";

// Each imported when used, not read by Deno before the program starts (lazy_import.ts).
const demo = () => lazyImport<typeof import("./demo.ts")>("./demo.ts", import.meta.url);
const policy = () => lazyImport<typeof import("./policy.ts")>("./policy.ts", import.meta.url);
const vmProcess = () =>
  lazyImport<typeof import("../vmd/vm_process.ts")>("../vmd/vm_process.ts", import.meta.url);
const checkCommand = () =>
  lazyImport<typeof import("../config/check_command.ts")>("../config/check_command.ts", import.meta.url);
const configLoad = () => lazyImport<typeof import("../config/load.ts")>("../config/load.ts", import.meta.url);
const configLimits = () =>
  lazyImport<typeof import("../config/limits.ts")>("../config/limits.ts", import.meta.url);
const daemon = () =>
  lazyImport<typeof import("../vmd/daemon_main.ts")>("../vmd/daemon_main.ts", import.meta.url);
const bundles = () =>
  lazyImport<typeof import("../build/bundles.ts")>("../build/bundles.ts", import.meta.url);
const runSources = () => lazyImport<typeof import("./run_entry.ts")>("./run_entry.ts", import.meta.url);

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
  if (sub === "demo") return await (await demo()).demoMain(rest);
  if (sub === "policy") return await (await policy()).policyMain(rest);
  if (sub === "run") return await (await runModule()).runMain(rest);
  if (sub === VM_PROCESS_COMMAND) return await (await vmProcess()).vmProcessMain(rest);
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
    const { runConfigCheck } = await checkCommand();
    return runConfigCheck({
      file: parsed.values.file,
      defines: parsed.values.define ?? [],
      verbose: (parsed.values.verbose ?? []).length > 0,
    });
  }
  const { parseDefine } = await configLoad();
  const { DEFAULT_CONFIG_PATH } = await configLimits();
  const { daemonMain } = await daemon();
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

/** `vmd run`'s module: its bundle while the bundles are fresh (src/build/bundles.ts), else the sources. */
async function runModule(): Promise<typeof import("./run_entry.ts")> {
  const { bundleProblem, bundleUrl } = await bundles();
  if (bundleProblem() === null) return await import(bundleUrl("run").href);
  return await runSources();
}
