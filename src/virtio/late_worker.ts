/**
 * Device workers started late: at the driver's DRIVER_OK rather than with the VM. A VM process is locked down
 * by then and cannot open a file, and Deno reads a worker's modules from files; so a late worker is started
 * from its bundle (src/build/bundles.ts) read into memory before lock-down, as a `blob:` module. Only a
 * process that runs from bundles starts workers late: from TypeScript sources, a `blob:` module would need
 * Deno to transpile it and write the result into its cache, which a locked-down process cannot (Deno then
 * retries for 150 ms), so such a process starts every worker with the VM, as before.
 *
 * virtio-rng is started late: it holds no descriptor, and a guest that never binds it (a firmware, a small
 * kernel) then never costs its isolate (~7 MiB, ~14 ms of CPU; docs/vmd.md).
 *
 * @module
 */
import { bundleUrl, RUNNING_BUNDLED } from "../build/bundles.ts";

/** The rows whose workers start late. */
export type LateRow = "virtio-rng";

const sources = new Map<LateRow, string>();

/**
 * The `blob:` URL of `row`'s bundle, read now (call it before lock-down; later calls return the same URL), or
 * undefined when this process does not run from bundles (its workers then start with the VM). `bundled`
 * overrides that for a test that runs from sources but has the bundles built.
 */
export function lateWorkerUrl(row: LateRow, bundled: boolean = RUNNING_BUNDLED): string | undefined {
  if (!bundled) return undefined;
  let url = sources.get(row);
  if (url === undefined) {
    const code = Deno.readTextFileSync(bundleUrl(row));
    url = URL.createObjectURL(new Blob([code], { type: "text/javascript" }));
    sources.set(row, url);
  }
  return url;
}
