/**
 * Options given more than once where vmctl(8) takes each once. The other mistakes (unknown option, missing
 * value) are found by `getopt.ts` while it reads the command line.
 *
 * @module
 */

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
