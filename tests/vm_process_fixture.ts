/**
 * For tests that run a fixture as vmd starts a VM process (narrow flags, vmd's environment without what Deno
 * reads lazily): the spawn, the files its probes aim at, and every thread's /proc status.
 */
import { resolveLibcPath } from "../ffi/libc.ts";
import type { ProbeTargets } from "../src/privsep/libc_probe.ts";
import { vmProcessEnv } from "../src/vmd/vm_launcher.ts";

/** Starts `fixture` with `args` as a VM process is started (stdin, stdout and stderr piped). */
export function spawnLikeVmProcess(fixture: string, args: readonly string[]): Deno.ChildProcess {
  return new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-ffi", "--allow-read", fixture, ...args],
    clearEnv: true,
    env: vmProcessEnv(), // as vmd starts a VM process: no certificate bundle for Deno to load lazily
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
}

/** Probe targets in `dir`: a root-only secret, a module anyone may read, another library. */
export async function probeTargets(dir: string): Promise<ProbeTargets> {
  await Deno.chmod(dir, 0o755);
  const secret = `${dir}/secret.json`;
  await Deno.writeTextFile(secret, '{"secret": 1}\n', { mode: 0o600 });
  await Deno.chmod(secret, 0o600);
  const module = `${dir}/module.js`;
  await Deno.writeTextFile(module, "export const x = 1;\n");
  await Deno.chmod(module, 0o644);
  const libDir = resolveLibcPath().replace(/\/[^/]+$/, "");
  return { secret, module: `file://${module}`, otherLibrary: `${libDir}/libz.so.1` };
}

/** Every thread of `pid`: its /proc status fields, by thread id. */
export function threadStatuses(pid: number): Map<string, Record<string, string>> {
  const out = new Map<string, Record<string, string>>();
  for (const e of Deno.readDirSync(`/proc/${pid}/task`)) {
    const status: Record<string, string> = {};
    for (const line of Deno.readTextFileSync(`/proc/${pid}/task/${e.name}/status`).split("\n")) {
      const i = line.indexOf(":");
      if (i > 0) status[line.slice(0, i)] = line.slice(i + 1).trim();
    }
    out.set(e.name, status);
  }
  return out;
}
