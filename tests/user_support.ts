/**
 * Test support for real users: groups and users created with groupadd/useradd (as root) for one test and
 * removed after it, and their ids for running programs as them through setpriv(1).
 *
 * @module
 */
import type { AsUser } from "./vmd_support.ts";

/** Runs a command; its exit status and its output (stdout, then stderr). */
export async function run(cmd: string, args: string[]): Promise<{ code: number; out: string }> {
  const o = await new Deno.Command(cmd, { args, stdout: "piped", stderr: "piped" }).output();
  return { code: o.code, out: new TextDecoder().decode(o.stdout) + new TextDecoder().decode(o.stderr) };
}

/** Why users cannot be created here (not root, a tool missing), or null when they can. */
export async function cannotCreateUsers(): Promise<string | null> {
  if (Deno.uid() !== 0) return "not root";
  for (const tool of ["useradd", "groupadd", "setpriv"]) {
    if ((await run("sh", ["-c", `command -v ${tool}`])).code !== 0) return `${tool} is missing`;
  }
  return null;
}

/** Removes `users` and `group` (missing ones are fine). */
export async function removeUsers(group: string, users: readonly string[]): Promise<void> {
  for (const u of users) await run("userdel", [u]);
  await run("groupdel", [group]);
}

/**
 * Creates `group` and each user (members of `group` unless listed in `outside`), after removing leftovers of
 * an earlier run; returns how to run programs as each (with `denoDir` as their DENO_DIR and HOME).
 */
export async function createUsers(
  group: string,
  users: readonly string[],
  denoDir: string,
  outside: readonly string[] = [],
): Promise<Record<string, AsUser>> {
  await removeUsers(group, users);
  const g = await run("groupadd", [group]);
  if (g.code !== 0) throw new Error(`groupadd ${group}: ${g.out}`);
  const as: Record<string, AsUser> = {};
  for (const u of users) {
    const groups = outside.includes(u) ? [] : ["-G", group];
    const r = await run("useradd", ["-M", "-N", ...groups, u]);
    if (r.code !== 0) throw new Error(`useradd ${u}: ${r.out}`);
    const uid = Number((await run("id", ["-u", u])).out.trim());
    const gid = Number((await run("id", ["-g", u])).out.trim());
    as[u] = { uid, gid, denoDir };
  }
  return as;
}

/**
 * Runs `body` with test users: `group` and `users` created as {@link createUsers} does (those in `outside`
 * not in `group`), sharing a new DENO_DIR (world-writable, sticky). The users, the group and the DENO_DIR
 * are removed after it, whatever happened.
 */
export async function withUsers(
  group: string,
  users: readonly string[],
  body: (as: Record<string, AsUser>) => Promise<void>,
  outside: readonly string[] = [],
): Promise<void> {
  const denoDir = await Deno.makeTempDir({ prefix: "vmd-test-deno-" });
  try {
    await Deno.chmod(denoDir, 0o1777);
    await body(await createUsers(group, users, denoDir, outside));
  } finally {
    await removeUsers(group, users);
    await Deno.remove(denoDir, { recursive: true }).catch(() => {});
  }
}
