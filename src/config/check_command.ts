/**
 * `vmd -n`: check the configuration file, print every diagnostic, and (with `-v`) the resolved configuration.
 *
 * @module
 */
import { formatDiagnostic } from "./diagnostic.ts";
import { fileReader } from "./file_reader.ts";
import { checkHost, type HostView, realHost } from "./host_check.ts";
import { DEFAULT_CONFIG_PATH } from "./limits.ts";
import { checkConfig, parseDefine } from "./load.ts";
import type { ConfigReader } from "./parser.ts";
import { printConfig } from "./printer.ts";

/** Options of `vmd -n`. */
export interface CheckCommandOptions {
  /** `-f file`, or undefined for the default /etc/vm.conf. */
  readonly file?: string;
  /** `-D name=value` arguments, in order. */
  readonly defines?: readonly string[];
  /** `-v`: print the resolved configuration. */
  readonly verbose?: boolean;
  /** The reader (defaults to the real file system). */
  readonly reader?: ConfigReader;
  /** The files and users the configuration names are checked against (defaults to this host). */
  readonly host?: HostView;
  /** Where normal output goes (defaults to stdout). */
  readonly out?: (line: string) => void;
  /** Where diagnostics go (defaults to stderr). */
  readonly err?: (line: string) => void;
}

/**
 * Runs the check and returns the exit status: 0 when the configuration is usable (`configuration OK`), 1
 * otherwise. A missing default file is an empty configuration, as in vmd; a missing `-f` file is an error.
 * As vmd -n does, a kernel, initrd, disk or cdrom that is not a readable regular file, and an owner that is
 * not a user or group of this host, are errors. With `-v` the resolved configuration is printed once the
 * file itself is valid, even when the host lacks what it names.
 */
export function runConfigCheck(options: CheckCommandOptions): number {
  const out = options.out ?? ((s: string) => console.log(s));
  const err = options.err ?? ((s: string) => console.error(s));
  const reader = options.reader ?? fileReader;
  const defines: Record<string, string> = {};
  for (const d of options.defines ?? []) {
    const parsed = parseDefine(d);
    if (parsed === null) {
      err(`vmd: invalid -D "${d}": expected name=value, the name made of letters, digits and underscores`);
      return 1;
    }
    defines[parsed[0]] = parsed[1];
  }
  const path = options.file ?? DEFAULT_CONFIG_PATH;
  const read = reader(path);
  let text = "";
  if (read.ok) {
    text = read.text;
  } else if (options.file === undefined) {
    err(`vmd: ${path}: ${read.reason}; using an empty configuration`);
  } else {
    err(`vmd: cannot read ${path}: ${read.reason}`);
    return 1;
  }
  const result = checkConfig(path, text, { reader, defines });
  for (const d of result.diagnostics) err(formatDiagnostic(d));
  if (!result.ok) return 1;
  if (options.verbose) out(printConfig(result.config).trimEnd());
  const missing = checkHost(result.ast, options.host ?? realHost());
  for (const d of missing) err(formatDiagnostic(d));
  if (missing.length > 0) return 1;
  err("configuration OK");
  return 0;
}
