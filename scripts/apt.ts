/**
 * The few Debian package operations the guest preparation script needs: resolve a meta package to the
 * versioned package it depends on, download `.deb` files without installing them, unpack them with
 * `dpkg -x`, and install a missing command-line tool. `apt-get update` runs only after a lookup or download
 * fails (stale or missing package lists).
 *
 * @module
 */

/** An apt/dpkg step that failed, with what to do about it. */
export class AptError extends Error {
  /** Builds the error. */
  constructor(message: string) {
    super(message);
    this.name = "AptError";
  }
}

/** What a finished command printed. */
interface Ran {
  readonly ok: boolean;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs a command to completion; throws AptError when the program is not installed. */
export async function runCommand(cmd: string, args: readonly string[], cwd?: string): Promise<Ran> {
  let out;
  try {
    out = await new Deno.Command(cmd, {
      args: [...args],
      cwd,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
      env: { DEBIAN_FRONTEND: "noninteractive" },
    }).output();
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new AptError(`${cmd} is not installed: this script needs a Debian system with apt and dpkg`);
    }
    throw e;
  }
  const dec = new TextDecoder();
  return { ok: out.success, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

let updated = false;

/** Runs `apt-get update` once per process. */
async function aptUpdate(): Promise<void> {
  if (updated) return;
  const r = await runCommand("apt-get", ["update", "-qq"]);
  if (!r.ok) {
    throw new AptError(
      `apt-get update failed (run as root, with a Debian mirror reachable):\n${r.stderr.trim()}`,
    );
  }
  updated = true;
}

/** Runs an apt command; when it fails, runs `apt-get update` and tries once more. */
async function withUpdate(cmd: string, args: readonly string[], cwd?: string): Promise<Ran> {
  const first = await runCommand(cmd, args, cwd);
  if (first.ok) return first;
  await aptUpdate();
  const second = await runCommand(cmd, args, cwd);
  if (!second.ok) throw new AptError(`${cmd} ${args.join(" ")} failed:\n${second.stderr.trim()}`);
  return second;
}

/**
 * The package a meta package (e.g. `linux-image-cloud-amd64`) depends on for its candidate version, the
 * first dependency whose name matches `pattern` (e.g. `/^linux-image-\S+-cloud-amd64$/`).
 */
export async function resolveMetaPackage(meta: string, pattern: RegExp): Promise<string> {
  const r = await withUpdate("apt-cache", ["show", "--no-all-versions", meta]);
  const depends = /^Depends: (.*)$/m.exec(r.stdout)?.[1] ?? "";
  for (const alt of depends.split(/[,|]/)) {
    const name = alt.trim().split(/\s/)[0];
    if (pattern.test(name)) return name;
  }
  throw new AptError(`${meta} does not depend on a package matching ${pattern} (Depends: ${depends})`);
}

/** The candidate version of a package, from the package lists. */
export async function candidateVersion(pkg: string): Promise<string> {
  const r = await withUpdate("apt-cache", ["show", "--no-all-versions", pkg]);
  const v = /^Version: (\S+)$/m.exec(r.stdout)?.[1];
  if (v === undefined) throw new AptError(`apt-cache show ${pkg} gave no Version`);
  return v;
}

/** Downloads `pkg` (its candidate version) into `dir` unless that `.deb` is already there; returns its path. */
export async function downloadDeb(pkg: string, dir: string): Promise<string> {
  const find = async (): Promise<string | undefined> => {
    for await (const e of Deno.readDir(dir)) {
      if (e.isFile && e.name.startsWith(`${pkg}_`) && e.name.endsWith(".deb")) return `${dir}/${e.name}`;
    }
    return undefined;
  };
  await Deno.mkdir(dir, { recursive: true });
  const have = await find();
  if (have !== undefined) return have;
  await withUpdate("apt-get", ["download", "-qq", pkg], dir);
  const got = await find();
  if (got === undefined) throw new AptError(`apt-get download ${pkg} left no ${pkg}_*.deb in ${dir}`);
  return got;
}

/** Unpacks a `.deb` into `dir` with `dpkg -x` (nothing is installed). */
export async function unpackDeb(deb: string, dir: string): Promise<void> {
  await Deno.mkdir(dir, { recursive: true });
  const r = await runCommand("dpkg", ["-x", deb, dir]);
  if (!r.ok) throw new AptError(`dpkg -x ${deb} ${dir} failed:\n${r.stderr.trim()}`);
}

/** True when `cmd` can be run (found on PATH). */
export async function hasCommand(cmd: string): Promise<boolean> {
  try {
    await new Deno.Command(cmd, { args: ["--version"], stdout: "null", stderr: "null", stdin: "null" })
      .output();
    return true;
  } catch {
    return false;
  }
}

/** Makes sure `cmd` is installed, installing Debian package `pkg` with apt-get when it is not. */
export async function ensureCommand(cmd: string, pkg: string): Promise<void> {
  if (await hasCommand(cmd)) return;
  const r = await runCommand("apt-get", ["install", "-y", "-qq", "--no-install-recommends", pkg]);
  if (!r.ok) {
    await aptUpdate();
    const again = await runCommand("apt-get", ["install", "-y", "-qq", "--no-install-recommends", pkg]);
    if (!again.ok) {
      throw new AptError(
        `${cmd} is missing and apt-get install ${pkg} failed (run as root):\n${again.stderr.trim()}`,
      );
    }
  }
  if (!(await hasCommand(cmd))) throw new AptError(`apt-get install ${pkg} did not provide ${cmd}`);
}
