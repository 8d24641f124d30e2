/**
 * The V8 flags vmd's long-lived processes run with: the daemon (its `deno task vmd` and installed `vmd`
 * command) and every VM process (they apply to each isolate in it: its vCPU and device workers too).
 *
 * - `--max-semi-space-size=1`: a 1 MiB young generation. Measured with `bench/soak.ts` (200 cycles of VM,
 *   client and console churn, a loaded host): the daemon's PSS grew by 84.7 MiB without it and by 5.0 MiB
 *   with it (then fell back between the middle and the end); V8 otherwise grows the young generation under
 *   churn and keeps it. For a VM process: PSS per VM 37.9–38.0 MiB without, 37.1–37.3 MiB with (10 echo
 *   guests, alternated runs). Isolates whose hot paths do not allocate need no more.
 * - `--single-threaded-gc`: one GC thread is enough for heaps of a few MiB.
 *
 * (`--lite-mode` saved ~2 MiB more per VM process but turns the optimising compiler off, which the vCPU
 * loop needs.)
 *
 * @module
 */

/** The flags, as V8 names them. */
export const V8_FLAGS: readonly string[] = ["--max-semi-space-size=1", "--single-threaded-gc"];

/** The one `deno run` argument that passes {@link V8_FLAGS}. */
export function v8FlagsArg(): string {
  return `--v8-flags=${V8_FLAGS.join(",")}`;
}
