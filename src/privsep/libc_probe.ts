/**
 * The confinement probe with the power the code really has: libc through FFI (where the thread holds it) as
 * well as Deno's APIs. Each attempt does one thing a locked VM process must not do, and the outcome names
 * what stopped it: seccomp (EPERM), Landlock (EACCES on a file anyone may read), the dropped identity (EACCES
 * on a root-only file), or Deno's flags (NotCapable). Run on request by the VM process's main thread, each
 * vCPU worker and each device worker.
 *
 * @module
 */
import { LIBC_CANDIDATES } from "../../ffi/libc.ts";
import { type CallOutcome, ProbeLibc } from "../../ffi/probe_libc.ts";

/** How one attempt ended: allowed, or refused, and by which wall. */
export interface ProbeOutcome {
  /**
   * `allowed`, `seccomp` (EPERM), `landlock` (EACCES on a file anyone may read), `identity` (EACCES on the
   * root-only file: its permissions against the dropped uid), `deno` (NotCapable), `other`.
   */
  readonly by: "allowed" | "seccomp" | "landlock" | "identity" | "deno" | "other";
  /** The errno, error name or result, for a failure message. */
  readonly detail: string;
}

/** What the probe aims at. */
export interface ProbeTargets {
  /** A root-only (0600) file, e.g. another VM's disk. */
  readonly secret: string;
  /** A module anyone may read, for dynamic `import()`. */
  readonly module: string;
  /** A library this process has not loaded. */
  readonly otherLibrary: string;
}

/** Checks a value received in a message is a {@link ProbeTargets}. */
export function isProbeTargets(v: unknown): v is ProbeTargets {
  if (typeof v !== "object" || v === null) return false;
  const t = v as Record<string, unknown>;
  return typeof t.secret === "string" && typeof t.module === "string" && typeof t.otherLibrary === "string";
}

function fromCall(c: CallOutcome, rootOnly = false): ProbeOutcome {
  if (c.ok) return { by: "allowed", detail: c.detail };
  const text = c.message ?? `errno ${c.errno}`;
  if (c.errno === 1 || /Operation not permitted/.test(text)) return { by: "seccomp", detail: text };
  if (c.errno === 13 || /Permission denied/.test(text)) {
    return { by: rootOnly ? "identity" : "landlock", detail: text };
  }
  return { by: "other", detail: text };
}

function fromError(e: unknown, rootOnly = false): ProbeOutcome {
  if (e instanceof Deno.errors.NotCapable) return { by: "deno", detail: `NotCapable: ${e.message}` };
  const text = e instanceof Error ? `${e.name}: ${e.message}` : String(e);
  // a module load Deno's permissions refuse surfaces as a TypeError naming the permission
  if (/Requires (read|import|ffi) access/.test(text)) return { by: "deno", detail: text };
  if (/os error 1\)|Operation not permitted/.test(text)) return { by: "seccomp", detail: text };
  if (/os error 13\)|Permission denied/.test(text)) {
    return { by: rootOnly ? "identity" : "landlock", detail: text };
  }
  return { by: "other", detail: text };
}

async function attempt(f: () => unknown, rootOnly = false): Promise<ProbeOutcome> {
  try {
    await f();
    return { by: "allowed", detail: "succeeded" };
  } catch (e) {
    return fromError(e, rootOnly);
  }
}

/**
 * Runs every attempt in the calling thread. With `libcPath` (a thread that holds libc) the libc attempts run
 * through that very path string; without, the thread's only way to libc is `Deno.dlopen`, which is tried.
 */
export async function runLibcProbes(
  t: ProbeTargets,
  libcPath: string | undefined,
): Promise<Record<string, ProbeOutcome>> {
  const out: Record<string, ProbeOutcome> = {};
  if (libcPath !== undefined) {
    const p = new ProbeLibc(libcPath);
    out["libc open /etc/passwd"] = fromCall(p.open("/etc/passwd"));
    out["libc open root-only file"] = fromCall(p.open(t.secret), true);
    out["libc execve"] = fromCall(p.execveMissing());
    out["libc system()"] = fromCall(p.system());
    out["libc socket(AF_INET)"] = fromCall(p.socket(2));
    out["libc socket(AF_UNIX)"] = fromCall(p.socket(1));
    out["libc dlopen other library"] = fromCall(p.dlopen(t.otherLibrary));
  } else {
    out["Deno.dlopen libc"] = await attempt(() => Deno.dlopen(LIBC_CANDIDATES[0], {}).close());
  }
  out["Deno.dlopen other library"] = await attempt(() => Deno.dlopen(t.otherLibrary, {}).close());
  out["Deno.readTextFileSync /etc/passwd"] = await attempt(() => Deno.readTextFileSync("/etc/passwd"));
  out["Deno.readTextFile root-only file"] = await attempt(() => Deno.readTextFile(t.secret), true);
  // async file reads run on Deno's blocking-pool threads, not on the calling thread
  out["Deno.readTextFile /etc/passwd (pool thread)"] = await attempt(() => Deno.readTextFile("/etc/passwd"));
  out["dynamic import()"] = await attempt(() => import(t.module));
  return out;
}
