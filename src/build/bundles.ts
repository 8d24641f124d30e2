/**
 * Bundled entry modules: the VM process, `vmd run` and each worker, every one a single JavaScript file under
 * `build/bundles/` (`deno task bundle` writes them with `deno bundle`). Deno loads one bundled file much
 * faster than a graph of TypeScript modules, where each module costs a file read, an emit-cache lookup and
 * a code-cache lookup: `vmd run` to its guest's exit took 94 ms instead of 123 (median of 30, farm-bench),
 * 0.12 s of CPU instead of 0.15 (docs/vmd.md, "Start latency").
 *
 * Bundles are used only while fresh. The manifest lists every source module they were built from with its
 * size and modification time; any difference (a module edited, added to the graph or removed), another Deno,
 * or a missing bundle makes them all stale, and vmd then runs the TypeScript sources, as it does when nothing
 * was bundled. A process running from a bundle starts its workers from the bundles built with it, never from
 * sources, so one process never mixes two builds.
 *
 * @module
 */

/** Each bundle and the source module it is built from, relative to the program root. */
export const BUNDLE_ENTRIES = {
  "vm-process": "src/vmd/vm_process_entry.ts",
  "run": "src/cli/run_entry.ts",
  "vcpu": "src/vcpu/vcpu_worker.ts",
  "virtio-blk": "src/virtio/blk_worker.ts",
  "virtio-rng": "src/virtio/rng_worker.ts",
  "virtio-net": "src/virtio/net_worker.ts",
  "virtio-scsi": "src/virtio/scsi_worker.ts",
} as const;

/** A bundle's name (a key of {@linkcode BUNDLE_ENTRIES}). */
export type BundleName = keyof typeof BUNDLE_ENTRIES;

/** True if `name` names a bundle. */
export function isBundleName(name: string): name is BundleName {
  return Object.hasOwn(BUNDLE_ENTRIES, name);
}

const here = new URL(import.meta.url);

/** Whether this code runs from a bundle (this module then sits in `build/bundles/*.js`). */
export const RUNNING_BUNDLED: boolean = here.pathname.endsWith(".js");

/** The program's root directory (where `cli.ts` is), from this module or from a bundle: both are two deep. */
export const PROGRAM_ROOT: URL = new URL("../../", here);

/** The bundles' directory, relative to the program root. */
export const BUNDLE_PATH = "build/bundles";

/** The bundles' directory. */
export const BUNDLE_DIR: URL = new URL(`${BUNDLE_PATH}/`, PROGRAM_ROOT);

/** The manifest's file name in {@linkcode BUNDLE_DIR}. */
export const MANIFEST_NAME = "manifest.json";

/** The file name of bundle `name`. */
export function bundleFile(name: BundleName): string {
  return `${name}.js`;
}

/** The URL of bundle `name`. */
export function bundleUrl(name: BundleName, dir: URL = BUNDLE_DIR): URL {
  return new URL(bundleFile(name), dir);
}

/** What `deno task bundle` records: the Deno that built the bundles and each source module's size and mtime. */
export interface BundleManifest {
  /** The manifest format. */
  readonly version: 1;
  /** `Deno.version.deno` of the build. */
  readonly deno: string;
  /** Source modules, relative to the program root: `[size in bytes, mtime in ms]`. */
  readonly inputs: Readonly<Record<string, readonly [number, number]>>;
}

/** The environment variable that turns bundles off (`VMD_BUNDLES=off`: run the TypeScript sources). */
export const BUNDLES_ENV = "VMD_BUNDLES";

/**
 * Why the bundles in `dir` must not be used, or null when they are fresh (see the module's notes), unless
 * `VMD_BUNDLES=off` turns them off. Reads the manifest and stats every module it lists: about 2 ms for
 * vmd's ~130 modules.
 */
export function bundleProblem(
  root: URL = PROGRAM_ROOT,
  dir: URL = new URL(`${BUNDLE_PATH}/`, root),
): string | null {
  if (Deno.env.get(BUNDLES_ENV) === "off") return `turned off (${BUNDLES_ENV}=off)`;
  let manifest: BundleManifest;
  try {
    manifest = JSON.parse(Deno.readTextFileSync(new URL(MANIFEST_NAME, dir)));
  } catch (e) {
    return e instanceof Deno.errors.NotFound ? "not built" : `unreadable manifest (${(e as Error).message})`;
  }
  if (manifest?.version !== 1 || typeof manifest.inputs !== "object" || manifest.inputs === null) {
    return "unknown manifest format";
  }
  if (manifest.deno !== Deno.version.deno) {
    return `built by Deno ${manifest.deno}, running ${Deno.version.deno}`;
  }
  for (const name of Object.keys(BUNDLE_ENTRIES) as BundleName[]) {
    try {
      Deno.statSync(bundleUrl(name, dir));
    } catch {
      return `${bundleFile(name)} is missing`;
    }
  }
  for (const [path, recorded] of Object.entries(manifest.inputs)) {
    let info: Deno.FileInfo;
    try {
      info = Deno.statSync(new URL(path, root));
    } catch {
      return `${path} is gone`;
    }
    if (!Array.isArray(recorded) || info.size !== recorded[0] || info.mtime?.getTime() !== recorded[1]) {
      return `${path} changed since the bundles were built`;
    }
  }
  return null;
}

/** Where vmd's VM processes and `vmd run` load their code from, in words, for logs and benchmarks. */
export function bundleSummary(problem: string | null = bundleProblem()): string {
  return problem === null
    ? `from the bundles in ${BUNDLE_PATH}`
    : `from the TypeScript sources: bundles ${problem} (\`deno task bundle\` builds them)`;
}
