/**
 * Imports one of this program's modules when called, not before. Deno reads and analyses every module that a
 * dynamic `import()` with a literal specifier names (and all they import) before the program starts: through
 * cli.ts that was the daemon, vmctl, `vmd run` and the disk code, ~150 modules, for every command (7–8 ms of
 * each vmctl command, measured). A specifier computed at run time is resolved when used instead.
 *
 * @module
 */

/**
 * The module at `path` relative to `base` (the caller's `import.meta.url`). `T` is its type, as
 * `typeof import("./x.ts")` (a type, which Deno's loader does not follow).
 */
export function lazyImport<T>(path: string, base: string): Promise<T> {
  return import(new URL(path, base).href);
}
