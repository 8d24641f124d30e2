/**
 * The front door of the configuration module: parse (with includes through the injected reader, macros and
 * `-D` overrides), validate, and report every diagnostic of the run, sorted by position.
 *
 * @module
 */
import type { ConfigAst, Statement } from "./ast.ts";
import { ConfigError } from "./config_error.ts";
import { type Diagnostic, DiagnosticSink } from "./diagnostic.ts";
import { isMacroName, MacroTable } from "./macros.ts";
import { type ConfigReader, parseFile } from "./parser.ts";
import type { VmdConfig } from "./types.ts";
import { validateConfig } from "./validate.ts";

/** Options of a configuration check. */
export interface CheckOptions {
  /** Reads included files (and, for `checkConfigFile`, the main file). */
  readonly reader: ConfigReader;
  /** `-D name=value` macros, which override definitions in the file. */
  readonly defines?: Readonly<Record<string, string>>;
}

/** The outcome of a check: the (best-effort) configuration and every diagnostic; `ok` when there are no errors. */
export interface CheckResult {
  /** True when no error was found (warnings may exist). */
  readonly ok: boolean;
  /** The resolved configuration; only trustworthy when `ok`. */
  readonly config: VmdConfig;
  /** The syntax tree. */
  readonly ast: ConfigAst;
  /** Errors and warnings, sorted by file (in order of first appearance), line and column. */
  readonly diagnostics: readonly Diagnostic[];
}

/** Splits a `-D` argument `name=value` at its first `=`; null when it has no `=` or an invalid name. */
export function parseDefine(arg: string): [string, string] | null {
  const i = arg.indexOf("=");
  if (i <= 0) return null;
  const name = arg.slice(0, i);
  return isMacroName(name) ? [name, arg.slice(i + 1)] : null;
}

function sortDiagnostics(items: readonly Diagnostic[]): Diagnostic[] {
  const files: string[] = [];
  for (const d of items) if (d.pos !== null && !files.includes(d.pos.file)) files.push(d.pos.file);
  const key = (d: Diagnostic): [number, number, number] =>
    d.pos === null ? [Infinity, 0, 0] : [files.indexOf(d.pos.file), d.pos.line, d.pos.col];
  return items
    .map((d, i) => ({ d, i }))
    .sort((a, b) => {
      const ka = key(a.d);
      const kb = key(b.d);
      return ka[0] - kb[0] || ka[1] - kb[1] || ka[2] - kb[2] || a.i - b.i;
    })
    .map((x) => x.d);
}

/** Checks the configuration `text` of file `path`. Never throws for any input. */
export function checkConfig(path: string, text: string, options: CheckOptions): CheckResult {
  const sink = new DiagnosticSink();
  const macros = new MacroTable();
  for (const [name, value] of Object.entries(options.defines ?? {})) {
    macros.defineFromCommandLine(name, value);
  }
  const statements: Statement[] = [];
  parseFile({ reader: options.reader, macros, sink, statements }, path, text);
  const ast: ConfigAst = { statements };
  const config = validateConfig(ast, sink);
  for (const m of macros.unused()) {
    if (m.pos === null) sink.warning(null, `macro "${m.name}" given with -D is not used`);
    else sink.warning(m.pos, `macro "${m.name}" is defined but not used`);
  }
  return { ok: sink.errorCount === 0, config, ast, diagnostics: sortDiagnostics(sink.items) };
}

/** Reads `path` through the reader and checks it; an unreadable main file is an error. */
export function checkConfigFile(path: string, options: CheckOptions): CheckResult {
  const r = options.reader(path);
  if (!r.ok) {
    const config = validateConfig({ statements: [] }, new DiagnosticSink());
    return {
      ok: false,
      config,
      ast: { statements: [] },
      diagnostics: [{ severity: "error", pos: null, message: `cannot read ${path}: ${r.reason}` }],
    };
  }
  return checkConfig(path, r.text, options);
}

/** Checks `text` and returns the resolved configuration, or throws a ConfigError with every diagnostic. */
export function loadConfig(path: string, text: string, options: CheckOptions): VmdConfig {
  const r = checkConfig(path, text, options);
  if (!r.ok) throw new ConfigError(r.diagnostics);
  return r.config;
}
