/**
 * Command-line options as getopt_long(3) reads them, for vmd and vmctl: short options in clusters (`-cL`),
 * a short option's value attached or next (`-m1G`, `-m 1G`), long options with `=` or a space
 * (`--memory=1G`, `--memory 1G`), operands anywhere before `--` and everything after it. Mistakes are
 * reported in one line naming the option, as getopt-based tools do.
 *
 * vmd used `node:util`'s `parseArgs` here. Loading any `node:` module starts Deno's Node compatibility,
 * which costs every vmctl command and `vmd run` ~6 ms before it does anything (docs/vmd.md, "Start
 * latency"); these few rules do not need it.
 *
 * @module
 */

/** One option: a flag (`boolean`) or an option with a value (`string`), given once or repeatedly. */
export interface OptionSpec {
  /** A flag, or an option that takes a value. */
  readonly type: "boolean" | "string";
  /** Its one-letter spelling, without the dash. */
  readonly short?: string;
  /** Whether each occurrence is kept (values in order) rather than the last. */
  readonly multiple?: boolean;
  /**
   * May be given only once, and is named so in the error: vmctl(8) refuses `-m 1G -m 2G` ("memory specified
   * multiple times") rather than take the last.
   */
  readonly once?: string;
}

/** Options by their long name (spelled `--name`). */
export type OptionSpecs = Readonly<Record<string, OptionSpec>>;

type ValueOf<S extends OptionSpec> = S["type"] extends "boolean"
  ? S["multiple"] extends true ? boolean[] : boolean
  : S["multiple"] extends true ? string[]
  : string;

/** The options given, by long name; an option not given is absent. */
export type OptionValues<T extends OptionSpecs> = { -readonly [K in keyof T]?: ValueOf<T[K]> };

/** What {@linkcode getopt} found: the options' values and the operands, in order. */
export interface ParsedArgs<T extends OptionSpecs> {
  /** The options given, by long name. */
  values: OptionValues<T>;
  /** The operands (arguments that are not options), in order. */
  positionals: string[];
}

/** A command-line mistake, worded for the user: `unknown option -x`, `option -m needs a value`. */
export class ArgError extends Error {
  override name = "ArgError";
}

/**
 * Reads `args` against `options`. Operands are refused unless `allowPositionals`. Throws {@linkcode ArgError}
 * for an unknown option, a missing value, a value given to a flag (`--flag=x`), an unexpected operand or an
 * option marked `once` given again.
 */
export function getopt<const T extends OptionSpecs>(
  args: readonly string[],
  options: T,
  allowPositionals = false,
): ParsedArgs<T> {
  const values: Record<string, string | boolean | (string | boolean)[]> = {};
  const positionals: string[] = [];
  const byShort = new Map<string, string>();
  for (const [name, spec] of Object.entries(options)) {
    if (spec.short !== undefined) byShort.set(spec.short, name);
  }
  const set = (name: string, value: string | boolean) => {
    const once = options[name].once;
    if (once !== undefined && Object.hasOwn(values, name)) {
      throw new ArgError(`${once} specified multiple times`);
    }
    if (options[name].multiple) {
      const list = values[name];
      values[name] = Array.isArray(list) ? [...list, value] : [value];
    } else values[name] = value;
  };
  const operand = (a: string) => {
    if (!allowPositionals) throw new ArgError(`unexpected argument ${a}`);
    positionals.push(a);
  };
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === "--") {
      for (const rest of args.slice(i + 1)) operand(rest);
      break;
    }
    if (a.startsWith("--")) {
      const eq = a.indexOf("=");
      const name = a.slice(2, eq < 0 ? undefined : eq);
      const spec = Object.hasOwn(options, name) ? options[name] : undefined;
      if (spec === undefined) throw new ArgError(`unknown option --${name}`);
      if (spec.type === "boolean") {
        if (eq >= 0) throw new ArgError(`option --${name} takes no value`);
        set(name, true);
      } else if (eq >= 0) set(name, a.slice(eq + 1));
      else if (i + 1 < args.length) set(name, args[++i]);
      else throw new ArgError(`option --${name} needs a value`);
      continue;
    }
    if (!a.startsWith("-") || a === "-") {
      operand(a);
      continue;
    }
    // a cluster of short options; the first that takes a value takes the rest of the word, or the next word
    for (let j = 1; j < a.length; j++) {
      const name = byShort.get(a[j]);
      if (name === undefined) throw new ArgError(`unknown option -${a[j]}`);
      if (options[name].type === "boolean") {
        set(name, true);
        continue;
      }
      if (j + 1 < a.length) set(name, a.slice(j + 1));
      else if (i + 1 < args.length) set(name, args[++i]);
      else throw new ArgError(`option -${a[j]} needs a value`);
      break;
    }
  }
  return { values: values as OptionValues<T>, positionals };
}
