/**
 * `deno task bundle`: writes each bundle of src/build/bundles.ts (`deno bundle` of its entry module) into
 * build/bundles/, then the manifest that lists the source modules they came from. The manifest is removed
 * first and written last, so an interrupted build leaves bundles that are not used; each bundle is renamed
 * into place whole. vmd runs without them (from the TypeScript sources); with them, VM processes and
 * `vmd run` start faster.
 *
 * @module
 */
import {
  BUNDLE_DIR,
  BUNDLE_ENTRIES,
  type BundleManifest,
  type BundleName,
  bundleUrl,
  MANIFEST_NAME,
  PROGRAM_ROOT,
} from "../src/build/bundles.ts";

/** Runs `deno args...` and returns its stdout; throws with its stderr when it fails. */
async function deno(args: string[]): Promise<string> {
  const out = await new Deno.Command(Deno.execPath(), { args, stdout: "piped", stderr: "piped" }).output();
  if (!out.success) {
    throw new Error(`deno ${args.join(" ")} failed:\n${new TextDecoder().decode(out.stderr)}`);
  }
  return new TextDecoder().decode(out.stdout);
}

/** The local modules (relative to the program root) that `entry`'s graph holds, types included. */
async function sourcesOf(entry: string): Promise<string[]> {
  const info = JSON.parse(await deno(["info", "--json", new URL(entry, PROGRAM_ROOT).pathname]));
  const root = PROGRAM_ROOT.href;
  return (info.modules as { specifier: string }[])
    .map((m) => m.specifier)
    .filter((s) => s.startsWith(root))
    .map((s) => s.slice(root.length));
}

/** Builds every bundle and the manifest; resolves to the manifest. */
export async function buildBundles(log: (line: string) => void = console.log): Promise<BundleManifest> {
  await Deno.mkdir(BUNDLE_DIR, { recursive: true });
  await Deno.remove(new URL(MANIFEST_NAME, BUNDLE_DIR)).catch(() => {});
  const inputs: Record<string, [number, number]> = {};
  for (const [name, entry] of Object.entries(BUNDLE_ENTRIES) as [BundleName, string][]) {
    const out = bundleUrl(name).pathname;
    // written beside and renamed into place: a process starting a worker meanwhile reads a whole file
    const tmp = `${out}.tmp`;
    await deno(["bundle", "--quiet", "--platform", "deno", "-o", tmp, new URL(entry, PROGRAM_ROOT).pathname]);
    await Deno.rename(tmp, out);
    for (const path of await sourcesOf(entry)) {
      const info = await Deno.stat(new URL(path, PROGRAM_ROOT));
      inputs[path] = [info.size, info.mtime?.getTime() ?? 0];
    }
    log(`bundle: ${out} (${(await Deno.stat(out)).size} bytes, from ${entry})`);
  }
  const manifest: BundleManifest = { version: 1, deno: Deno.version.deno, inputs };
  await Deno.writeTextFile(new URL(MANIFEST_NAME, BUNDLE_DIR), JSON.stringify(manifest, null, 1) + "\n");
  log(`bundle: ${Object.keys(inputs).length} source modules recorded in ${MANIFEST_NAME}`);
  return manifest;
}

if (import.meta.main) await buildBundles();
