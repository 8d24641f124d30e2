/**
 * Builds the tiny guests in this folder with the machine's gcc and ld into flat binaries, cached by source
 * hash under `.cache/guests/` (or `$VMD_CACHE/guests`). Needs read/write on the cache, and run for gcc/ld.
 *
 * @module
 */

/** How a flat guest is entered. */
export type GuestMode = "real" | "long";

/** A built flat guest. */
export interface FlatGuest {
  /** Its name (the source file's stem). */
  readonly name: string;
  /** How the VMM enters it. */
  readonly mode: GuestMode;
  /** Guest physical load (and entry) address. */
  readonly loadAddress: number;
  /** The image. */
  readonly image: Uint8Array;
}

/** The guests and how each is entered. */
export const FLAT_GUESTS: Readonly<Record<string, GuestMode>> = {
  real_hello: "real",
  long_hello: "long",
  demo: "long",
  spin: "long",
  triple_fault: "long",
  halt: "long",
  exits_bench: "real",
  memory_rw: "long",
  kbd_reset: "long",
  emul_reject: "long",
  int3_trap: "long",
  ac_flag: "long",
};

/** Where real-mode guests load (segment 0x100) and long-mode guests load. */
export const LOAD_ADDRESS: Readonly<Record<GuestMode, number>> = { real: 0x1000, long: 0x100000 };

/** A failed guest build. */
export class GuestBuildError extends Error {
  /** Builds the error. */
  constructor(message: string) {
    super(message);
    this.name = "GuestBuildError";
  }
}

const here = new URL(".", import.meta.url).pathname;

/** The cache folder. */
export function cacheDir(): string {
  return `${Deno.env.get("VMD_CACHE") ?? new URL("../../.cache", import.meta.url).pathname}/guests`;
}

/**
 * Runs a build tool; a tool that cannot be started is a {@link GuestBuildError} naming `packages` (what to
 * install), a failed one carries its stderr.
 */
export async function runBuildTool(cmd: string, args: string[], packages: string): Promise<void> {
  let out;
  try {
    out = await new Deno.Command(cmd, { args, stdout: "piped", stderr: "piped" }).output();
  } catch (e) {
    throw new GuestBuildError(`cannot run ${cmd} (install ${packages}): ${(e as Error).message}`);
  }
  if (!out.success) {
    throw new GuestBuildError(`${cmd} ${args.join(" ")} failed:\n${new TextDecoder().decode(out.stderr)}`);
  }
}

function run(cmd: string, args: string[]): Promise<void> {
  return runBuildTool(cmd, args, "gcc and binutils");
}

/** The first 8 bytes of the SHA-256 of `parts` concatenated, as hex: the cache key of a guest build. */
export async function shortHash(parts: readonly Uint8Array[]): Promise<string> {
  const all = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    all.set(p, at);
    at += p.length;
  }
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", all));
  return Array.from(digest.slice(0, 8), (b) => b.toString(16).padStart(2, "0")).join("");
}

async function sourceHash(name: string): Promise<string> {
  return await shortHash([await Deno.readFile(`${here}${name}.S`), await Deno.readFile(`${here}uart.inc`)]);
}

/** Builds (or takes from the cache) the flat guest `name`. */
export async function buildFlatGuest(name: string): Promise<FlatGuest> {
  const mode = FLAT_GUESTS[name];
  if (mode === undefined) throw new GuestBuildError(`no guest named ${name}`);
  const loadAddress = LOAD_ADDRESS[mode];
  const dir = cacheDir();
  const out = `${dir}/${name}-${await sourceHash(name)}.bin`;
  try {
    return { name, mode, loadAddress, image: await Deno.readFile(out) };
  } catch {
    // not cached yet
  }
  await Deno.mkdir(dir, { recursive: true });
  const tmp = await Deno.makeTempDir({ dir, prefix: `${name}-` });
  try {
    const linkAt = mode === "real" ? 0 : loadAddress;
    await run("gcc", ["-c", "-nostdinc", "-I", here, "-o", `${tmp}/g.o`, `${here}${name}.S`]);
    await run("ld", [
      "-m",
      "elf_x86_64",
      "-nostdlib",
      `-Ttext=0x${linkAt.toString(16)}`,
      "-e",
      "_start",
      "-o",
      `${tmp}/g.elf`,
      `${tmp}/g.o`,
    ]);
    await run("objcopy", ["-O", "binary", "-j", ".text", `${tmp}/g.elf`, `${tmp}/g.bin`]);
    await Deno.rename(`${tmp}/g.bin`, out);
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
  return { name, mode, loadAddress, image: await Deno.readFile(out) };
}
