/**
 * `deno task install [--root DIR]`: writes `vmd` and `vmctl` commands into DIR/bin (default: $DENO_INSTALL_ROOT,
 * else ~/.deno, as `deno install -g` does). Each is a small shell script that runs this checkout's pinned Deno
 * binary by its absolute path, with the permission table's flags for that command, so it works with no
 * `deno` on PATH. The checkout must stay where it is (the commands run its files).
 *
 * @module
 */
import { parseArgs } from "node:util";
import { v8FlagsArg } from "../src/vmd/v8_flags.ts";

const root = new URL("..", import.meta.url).pathname.replace(/\/$/, "");

/** The pinned Deno binary of this checkout (what scripts/deno runs). */
function pinnedDeno(): string {
  for (const candidate of [`${root}/node_modules/deno/deno`]) {
    try {
      if (Deno.statSync(candidate).isFile) return candidate;
    } catch { /* next */ }
  }
  throw new Error(`no pinned Deno under ${root}/node_modules; run: npm ci`);
}

/** Quotes `s` for a POSIX shell. */
function sh(s: string): string {
  return `'${s.replaceAll("'", `'\\''`)}'`;
}

/** The shell script of one command. */
export function shim(deno: string, flags: readonly string[], lead: readonly string[]): string {
  const args = ["run", "--no-prompt", "--config", `${root}/deno.json`, ...flags, `${root}/cli.ts`, ...lead];
  return `#!/bin/sh\n# written by vmd's \`deno task install\`\nexec ${
    [deno, ...args].map(sh).join(" ")
  } "$@"\n`;
}

if (import.meta.main) {
  const { values } = parseArgs({ args: Deno.args, options: { root: { type: "string" } } });
  const base = values.root ?? Deno.env.get("DENO_INSTALL_ROOT") ?? `${Deno.env.get("HOME")}/.deno`;
  const bin = `${base}/bin`;
  await Deno.mkdir(bin, { recursive: true });
  const deno = pinnedDeno();
  // vmd: the daemon is root's and needs every power (unscoped ffi is all power anyway; see `vmd policy`);
  // vmctl: the client reads and writes the user's files, connects to the socket, and nothing else.
  const commands: [string, string[], string[]][] = [
    ["vmd", ["--allow-all", v8FlagsArg()], []],
    ["vmctl", ["--allow-read", "--allow-write", "--allow-env", "--allow-net", "--allow-sys"], ["vmctl"]],
  ];
  for (const [name, flags, lead] of commands) {
    await Deno.writeTextFile(`${bin}/${name}`, shim(deno, flags, lead), { mode: 0o755 });
    await Deno.chmod(`${bin}/${name}`, 0o755);
    console.log(`installed ${bin}/${name}`);
  }
}
