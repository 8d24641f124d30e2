/**
 * A confinement probe: a worker runs it on request to show, from the inside, which powers it lacks. Each
 * attempt is real (read a file, read the environment, open a socket, run a program, open a library); the
 * result names the error each one met.
 *
 * @module
 */

/** The outcome of each attempt: `"allowed"` or the error's name (e.g. `NotCapable`). */
export type ProbeResult = Record<ProbeAttempt, string>;

/** The attempts a probe makes. */
export type ProbeAttempt = "read" | "write" | "env" | "net" | "run" | "sys";

async function attempt(f: () => unknown): Promise<string> {
  try {
    await f();
    return "allowed";
  } catch (e) {
    return e instanceof Error ? e.name : String(e);
  }
}

/** Tries each power once and reports what happened. */
export async function probeConfinement(): Promise<ProbeResult> {
  return {
    read: await attempt(() => Deno.readFileSync("/etc/hostname")),
    write: await attempt(() => Deno.writeTextFileSync("/tmp/vmd-probe", "x")),
    env: await attempt(() => Deno.env.get("HOME")),
    net: await attempt(async () => (await Deno.connect({ hostname: "127.0.0.1", port: 9 })).close()),
    run: await attempt(() => new Deno.Command("true").outputSync()),
    sys: await attempt(() => Deno.hostname()),
  };
}
