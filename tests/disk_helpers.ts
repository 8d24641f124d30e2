/**
 * Shared helpers of the disk tests: temporary folders, running `qemu-img`/`qemu-io`, deterministic data.
 *
 * @module
 */
import assert from "node:assert/strict";

/** Result of running a tool. */
export interface RunResult {
  /** Exit status. */
  code: number;
  /** Captured standard output. */
  stdout: string;
  /** Captured standard error. */
  stderr: string;
}

/** Runs `cmd args...` and captures its output. */
export async function run(cmd: string, args: string[], opts: { cwd?: string } = {}): Promise<RunResult> {
  const out = await new Deno.Command(cmd, { args, cwd: opts.cwd, stdout: "piped", stderr: "piped" }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

/** Runs `qemu-img args...` and fails the test unless it exits 0. Returns its standard output. */
export async function qemuImg(...args: string[]): Promise<string> {
  const r = await run("qemu-img", args);
  assert.equal(r.code, 0, `qemu-img ${args.join(" ")} failed:\n${r.stdout}${r.stderr}`);
  return r.stdout;
}

/** Runs `qemu-io` with the given commands on `image`, failing the test on error. */
export async function qemuIo(image: string, ...commands: string[]): Promise<void> {
  const r = await run("qemu-io", [...commands.flatMap((c) => ["-c", c]), image]);
  assert.equal(r.code, 0, `qemu-io failed:\n${r.stdout}${r.stderr}`);
  assert.doesNotMatch(r.stdout + r.stderr, /error|failed/i);
}

/** Asserts that `qemu-img check` finds neither errors nor leaks in `image`. */
export async function assertCheckClean(image: string): Promise<void> {
  const r = await run("qemu-img", ["check", "--output=json", image]);
  assert.equal(r.code, 0, `qemu-img check ${image}: status ${r.code}\n${r.stdout}${r.stderr}`);
  const report = JSON.parse(r.stdout);
  assert.equal(report["check-errors"], 0);
  assert.equal(report["corruptions"] ?? 0, 0);
  assert.equal(report["leaks"] ?? 0, 0);
}

/** Creates a temporary folder, runs `f` in it, and removes it afterwards. */
export async function withTempDir(f: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "vmd-disk-" });
  try {
    await f(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** A small deterministic pseudo-random generator (xorshift32). */
export class Rng {
  #s: number;

  /** Seeds the generator (0 is replaced by 1). */
  constructor(seed: number) {
    this.#s = seed >>> 0 || 1;
  }

  /** Next 32-bit value. */
  next(): number {
    let x = this.#s;
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    this.#s = x >>> 0;
    return this.#s;
  }

  /** An integer in [0, n). */
  int(n: number): number {
    return Math.floor((this.next() / 2 ** 32) * n);
  }

  /** `n` pseudo-random bytes. */
  bytes(n: number): Uint8Array {
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i++) out[i] = this.next() & 0xff;
    return out;
  }
}

/** Reads a whole file. */
export function readAll(path: string): Uint8Array {
  return Deno.readFileSync(path);
}
