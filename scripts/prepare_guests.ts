/**
 * Prepares the real-Linux guests for tests, benchmarks and the demo, into `.cache/linux/` (or
 * `$VMD_CACHE/linux`): Debian's lz4-compressed cloud kernel (`linux-image-cloud-amd64`, resolved to its
 * versioned package) and optionally the generic one (`linux-image-amd64`), fetched with `apt-get download`
 * and unpacked with `dpkg -x` (nothing is installed, /boot is untouched); the bzImage; the ELF vmlinux
 * extracted from it (checked for its PVH entry note); and a busybox initramfs built from `busybox-static`
 * and that kernel's virtio modules (see `initramfs.ts`).
 *
 * Cached and idempotent: a manifest per kernel records the outputs and a hash of this script's sources; a
 * second run checks the files and returns at once, without apt. Concurrent runs serialise on a lock file.
 *
 * Usage: `deno run -A scripts/prepare_guests.ts [--generic] [--quiet]` prints the outputs as JSON.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { downloadDeb, resolveMetaPackage, unpackDeb } from "./apt.ts";
import { extractVmlinux, type PayloadFormat, readBzImageHeader } from "./bzimage_extract.ts";
import { readElf } from "./elf_pvh.ts";
import { buildInitramfs, INITRAMFS_MODULES, type InitramfsModule } from "./initramfs.ts";

/** One prepared kernel with its initramfs. */
export interface PreparedKernel {
  /** Kernel release, e.g. "6.1.0-56-cloud-amd64" (`uname -r`, the modules folder's name). */
  readonly kernelVersion: string;
  /** The Debian package it came from. */
  readonly package: string;
  /** The compressed kernel (`boot/vmlinuz-*`), a bzImage. */
  readonly bzImage: string;
  /** The ELF kernel extracted from the bzImage, with a PVH entry note. */
  readonly vmlinux: string;
  /** Its PVH entry point (physical). */
  readonly pvhEntry: number;
  /** How the bzImage's payload was compressed. */
  readonly payloadFormat: PayloadFormat;
  /** The gzip cpio initramfs for this kernel. */
  readonly initrd: string;
  /** Modules `/init` loads, in order. */
  readonly modules: readonly string[];
  /** Modules of the list that this kernel has built in. */
  readonly builtin: readonly string[];
  /** Modules of the list this kernel has neither as a module nor built in. */
  readonly missing: readonly string[];
}

/** What {@link prepareGuests} produced: the cloud kernel, and the generic one when asked for. */
export interface PreparedGuests extends PreparedKernel {
  /** The static busybox in the unpacked package. */
  readonly busybox: string;
  /** The generic `linux-image-amd64` kernel (xz), when prepared. */
  readonly generic?: PreparedKernel;
}

/** How to prepare. */
export interface PrepareOptions {
  /** Also prepare the generic kernel (a larger download). */
  readonly generic?: boolean;
  /** Progress lines (default: none). */
  readonly log?: (line: string) => void;
}

/** A preparation step that failed, with what to do. */
export class PrepareGuestsError extends Error {
  /** Builds the error. */
  constructor(message: string) {
    super(message);
    this.name = "PrepareGuestsError";
  }
}

const FLAVOURS = {
  cloud: { meta: "linux-image-cloud-amd64", pattern: /^linux-image-\S+-cloud-amd64$/ },
  generic: { meta: "linux-image-amd64", pattern: /^linux-image-[0-9]\S*-amd64$/ },
} as const;

type Flavour = keyof typeof FLAVOURS;

/** The cache folder for prepared kernels. */
export function linuxCacheDir(): string {
  return `${Deno.env.get("VMD_CACHE") ?? new URL("../.cache", import.meta.url).pathname}/linux`;
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch {
    return false;
  }
}

/** Writes a file atomically (temporary file in the same folder, then rename). */
async function writeAtomic(path: string, data: Uint8Array | string): Promise<void> {
  const dir = path.slice(0, path.lastIndexOf("/"));
  const tmp = await Deno.makeTempFile({ dir, prefix: ".tmp-" });
  try {
    if (typeof data === "string") await Deno.writeTextFile(tmp, data);
    else await Deno.writeFile(tmp, data);
    await Deno.chmod(tmp, 0o644);
    await Deno.rename(tmp, path);
  } catch (e) {
    await Deno.remove(tmp).catch(() => {});
    throw e;
  }
}

/** A hash of the sources that decide what gets built; a change rebuilds the outputs (not the downloads). */
async function recipeHash(): Promise<string> {
  const names = ["prepare_guests.ts", "initramfs.ts", "cpio_newc.ts", "bzimage_extract.ts"];
  const texts = await Promise.all(names.map((n) => Deno.readTextFile(new URL(n, import.meta.url))));
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(texts.join("\0")));
  return Array.from(new Uint8Array(digest).slice(0, 8), (b) => b.toString(16).padStart(2, "0")).join("");
}

interface Manifest<T> {
  readonly recipe: string;
  readonly result: T;
}

async function readManifest<T>(
  path: string,
  recipe: string,
  files: (r: T) => string[],
): Promise<T | undefined> {
  let m: Manifest<T>;
  try {
    m = JSON.parse(await Deno.readTextFile(path));
  } catch {
    return undefined;
  }
  if (m.recipe !== recipe) return undefined;
  for (const f of files(m.result)) if (!(await exists(f))) return undefined;
  return m.result;
}

/** Finds the listed modules in an unpacked kernel package; names match with '-' and '_' alike. */
async function findModules(modulesDir: string): Promise<{
  files: Map<string, string>;
  builtin: Set<string>;
}> {
  const norm = (s: string): string => s.replaceAll("-", "_");
  const files = new Map<string, string>();
  const walk = async (dir: string): Promise<void> => {
    for await (const e of Deno.readDir(dir)) {
      if (e.isDirectory) await walk(`${dir}/${e.name}`);
      else if (e.name.endsWith(".ko")) files.set(norm(e.name.slice(0, -3)), `${dir}/${e.name}`);
    }
  };
  await walk(`${modulesDir}/kernel`);
  const builtin = new Set<string>();
  const list = await Deno.readTextFile(`${modulesDir}/modules.builtin`).catch(() => "");
  for (const line of list.split("\n")) {
    const m = /([^/]+)\.ko$/.exec(line.trim());
    if (m !== null) builtin.add(norm(m[1]));
  }
  return { files, builtin };
}

async function prepareBusybox(dir: string, log: (l: string) => void): Promise<string> {
  const root = `${dir}/root/busybox-static`;
  const path = `${root}/bin/busybox`;
  if (await exists(path)) return path;
  const deb = await downloadDeb("busybox-static", `${dir}/debs`);
  log(`unpacking ${deb}`);
  await unpackDeb(deb, root);
  if (!(await exists(path))) {
    throw new PrepareGuestsError(`busybox-static has no bin/busybox (looked in ${root})`);
  }
  return path;
}

async function prepareKernel(
  flavour: Flavour,
  dir: string,
  busybox: string,
  log: (l: string) => void,
): Promise<PreparedKernel> {
  const { meta, pattern } = FLAVOURS[flavour];
  const pkg = await resolveMetaPackage(meta, pattern);
  const kernelVersion = pkg.slice("linux-image-".length);
  log(`${meta} is ${pkg}`);
  // Unpacked afresh each time (a second of dpkg) and removed once the outputs are written: the unpacked
  // generic kernel is ~400 MB of modules; the .deb stays in the cache.
  const root = `${dir}/root/${pkg}`;
  const deb = await downloadDeb(pkg, `${dir}/debs`);
  await Deno.remove(root, { recursive: true }).catch(() => {});
  log(`unpacking ${deb}`);
  await unpackDeb(deb, root);
  try {
    return await buildOutputs(pkg, kernelVersion, root, dir, busybox, log);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
}

async function buildOutputs(
  pkg: string,
  kernelVersion: string,
  root: string,
  dir: string,
  busybox: string,
  log: (l: string) => void,
): Promise<PreparedKernel> {
  const vmlinuz = `${root}/boot/vmlinuz-${kernelVersion}`;
  if (!(await exists(vmlinuz))) throw new PrepareGuestsError(`${pkg} has no boot/vmlinuz-${kernelVersion}`);
  const out = `${dir}/${kernelVersion}`;
  await Deno.mkdir(out, { recursive: true });

  const bzBytes = await Deno.readFile(vmlinuz);
  const header = readBzImageHeader(bzBytes);
  log(`bzImage: boot protocol ${header.version.toString(16)}, ${bzBytes.length} bytes`);
  const bzImage = `${out}/bzImage`;
  await writeAtomic(bzImage, bzBytes);

  const extracted = await extractVmlinux(bzBytes);
  const elf = readElf(extracted.elf);
  if (elf.pvhEntry === undefined) {
    throw new PrepareGuestsError(
      `${pkg}: the extracted vmlinux has no PVH entry note (kernel built without PVH)`,
    );
  }
  const vmlinux = `${out}/vmlinux`;
  await writeAtomic(vmlinux, extracted.elf);
  log(
    `vmlinux: ${extracted.format} payload, ${extracted.elf.length} bytes, PVH entry 0x${
      elf.pvhEntry.toString(16)
    }`,
  );

  const { files, builtin } = await findModules(`${root}/lib/modules/${kernelVersion}`);
  const modules: InitramfsModule[] = [];
  const builtinNames: string[] = [];
  const missing: string[] = [];
  for (const name of INITRAMFS_MODULES) {
    const key = name.replaceAll("-", "_");
    const file = files.get(key);
    if (builtin.has(key)) builtinNames.push(name);
    else if (file !== undefined) modules.push({ name, data: await Deno.readFile(file) });
    else missing.push(name);
  }
  if (missing.length > 0) log(`${kernelVersion} has neither as module nor built in: ${missing.join(" ")}`);
  const initrd = `${out}/initrd.cpio.gz`;
  const cpio = buildInitramfs({
    busybox: await Deno.readFile(busybox),
    modules,
    builtin: builtinNames,
    kernelVersion,
  });
  await writeAtomic(initrd, cpio);
  log(`initrd: ${cpio.length} bytes, modules ${modules.map((m) => m.name).join(" ")}`);
  return {
    kernelVersion,
    package: pkg,
    bzImage,
    vmlinux,
    pvhEntry: elf.pvhEntry,
    payloadFormat: extracted.format,
    initrd,
    modules: modules.map((m) => m.name),
    builtin: builtinNames,
    missing,
  };
}

const kernelFiles = (k: PreparedKernel): string[] => [k.bzImage, k.vmlinux, k.initrd];

async function cachedKernel(
  flavour: Flavour,
  dir: string,
  recipe: string,
  busybox: string,
  log: (l: string) => void,
): Promise<PreparedKernel> {
  const manifest = `${dir}/prepared-${flavour}.json`;
  const cached = await readManifest<PreparedKernel>(manifest, recipe, kernelFiles);
  if (cached !== undefined) return cached;
  const k = await prepareKernel(flavour, dir, busybox, log);
  await writeAtomic(manifest, JSON.stringify({ recipe, result: k }, null, 2) + "\n");
  return k;
}

/**
 * Prepares (or finds in the cache) the cloud kernel, its vmlinux and initramfs, and with `generic` the
 * generic kernel too. Needs apt-get/dpkg (root for `apt-get update`) and a Debian mirror on the first run.
 */
export async function prepareGuests(opts: PrepareOptions = {}): Promise<PreparedGuests> {
  const log = opts.log ?? (() => {});
  const dir = linuxCacheDir();
  await Deno.mkdir(dir, { recursive: true });
  const lock = await Deno.open(`${dir}/.lock`, { create: true, write: true });
  try {
    await lock.lock(true);
    const recipe = await recipeHash();
    const busybox = await prepareBusybox(dir, log);
    const cloud = await cachedKernel("cloud", dir, recipe, busybox, log);
    const generic = opts.generic ? await cachedKernel("generic", dir, recipe, busybox, log) : undefined;
    return generic === undefined ? { ...cloud, busybox } : { ...cloud, busybox, generic };
  } finally {
    lock.close();
  }
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: { generic: { type: "boolean", default: false }, quiet: { type: "boolean", default: false } },
  });
  const log = values.quiet ? undefined : (line: string) => console.error(`prepare_guests: ${line}`);
  try {
    console.log(JSON.stringify(await prepareGuests({ generic: values.generic, log }), null, 2));
  } catch (e) {
    console.error(`prepare_guests: ${(e as Error).message}`);
    Deno.exit(1);
  }
}
