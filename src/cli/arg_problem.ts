/**
 * Command-line mistakes in our own words. `node:util`'s `parseArgs` throws errors written for JavaScript
 * programmers (`Unknown option '-x'. To specify a positional argument starting with a '-', place it at the
 * end of the command after '--', as in '-- "-x"`); users of vmd and vmctl get one short line naming the
 * option and what is wrong with it, as getopt(3)-based tools print.
 *
 * @module
 */

/** The option a parseArgs message names (`-m`, `--cpus`), shown as the user typed it where possible. */
function optionIn(message: string): string | null {
  const m = /'(-[^',\s<]*)(?:, (--[^'\s<]*))?/.exec(message);
  if (m === null) return null;
  return m[1];
}

/**
 * What is wrong with a command line, from the error `parseArgs` threw: `unknown option -x`,
 * `option -m needs a value`, `option -c takes no value`, `unexpected argument foo`. Anything else (not a
 * parseArgs error) is returned as its message.
 */
export function argProblem(e: unknown): string {
  const err = e as { code?: unknown; message?: unknown };
  const message = typeof err?.message === "string" ? err.message : String(e);
  const option = optionIn(message);
  switch (err?.code) {
    case "ERR_PARSE_ARGS_UNKNOWN_OPTION":
      return option === null ? "unknown option" : `unknown option ${option}`;
    case "ERR_PARSE_ARGS_INVALID_OPTION_VALUE":
      if (option === null) return "an option has a value it does not take, or lacks one";
      return /argument missing/.test(message)
        ? `option ${option} needs a value`
        : `option ${option} takes no value`;
    case "ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL": {
      const m = /'([^']*)'/.exec(message);
      return m === null ? "unexpected argument" : `unexpected argument ${m[1]}`;
    }
  }
  return message;
}

/**
 * The options given more than once among `args`, where each must be given at most once: getopt-based tools
 * such as vmctl(8) refuse `-m 1G -m 2G` ("memory specified multiple times") rather than take the last.
 * `once` maps each option's short and long spellings (`-m`, `--memory`) to the word the message uses.
 */
export function repeatedOption(
  args: readonly string[],
  once: Readonly<Record<string, string>>,
  takesValue: (flag: string) => boolean,
): string | null {
  const seen = new Set<string>();
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === "--") break;
    if (!a.startsWith("-") || a === "-") continue;
    const flags: string[] = [];
    if (a.startsWith("--")) {
      const name = a.includes("=") ? a.slice(0, a.indexOf("=")) : a;
      flags.push(name);
      if (!a.includes("=") && takesValue(name)) i++;
    } else {
      // a cluster of short options (`-cL`); the first one that takes a value ends it
      for (let j = 1; j < a.length; j++) {
        const f = `-${a[j]}`;
        flags.push(f);
        if (takesValue(f)) {
          if (j === a.length - 1) i++;
          break;
        }
      }
    }
    for (const f of flags) {
      const word = once[f];
      if (word === undefined) continue;
      if (seen.has(word)) return `${word} specified multiple times`;
      seen.add(word);
    }
  }
  return null;
}
