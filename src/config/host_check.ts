/**
 * The checks of `vmd -n` that need the host, as OpenBSD's vmd -n makes them while it parses: every kernel,
 * initrd, disk and cdrom vm.conf names is a readable regular file, and every user and group named as an owner
 * exists. The parser itself never touches the file system or the user database; this runs after it, over the
 * syntax tree, so each message carries the position of the value it is about.
 *
 * @module
 */
import type { ConfigAst, Located, OwnerSpec, Statement } from "./ast.ts";
import { DiagnosticSink } from "./diagnostic.ts";
import type { Diagnostic } from "./diagnostic.ts";
import { dirname, resolveFrom } from "./path.ts";
import type { Principal } from "./types.ts";
import { resolveOwner } from "./validate_common.ts";
import { UserDb } from "../vmd/user_db.ts";

/** What the host check consults: the file system (through `probe`) and the user database. */
export interface HostView {
  /** Why `path` is not a readable regular file, or null when it is. */
  readonly probe: (path: string) => string | null;
  /** The local users and groups. */
  readonly users: UserDb;
}

/** Why `path` is not a readable regular file (following symlinks, as realpath(3) does), or null. */
export function probeFile(path: string): string | null {
  let file: Deno.FsFile;
  try {
    file = Deno.openSync(path, { read: true });
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return "does not exist";
    if (e instanceof Deno.errors.PermissionDenied) return "cannot be read (permission denied)";
    return `cannot be opened (${e instanceof Error ? e.message : String(e)})`;
  }
  try {
    const st = file.statSync();
    if (st.isFile) return null;
    return st.isDirectory ? "is a directory, not a file" : "is not a regular file";
  } finally {
    file.close();
  }
}

/** The real host: this machine's files and /etc/passwd, /etc/group (unreadable ones count as empty). */
export function realHost(): HostView {
  const read = (p: string) => {
    try {
      return Deno.readTextFileSync(p);
    } catch {
      return "";
    }
  };
  return { probe: probeFile, users: new UserDb(read("/etc/passwd"), read("/etc/group")) };
}

function checkPath(
  path: Located<string>,
  what: string,
  vm: string,
  host: HostView,
  sink: DiagnosticSink,
): void {
  if (path.value === "") return; // the parser reported it
  const resolved = resolveFrom(dirname(path.pos.file), path.value);
  const problem = host.probe(resolved);
  if (problem !== null) {
    sink.error(
      path.pos,
      `${what} ${resolved} of vm "${vm}" ${problem}; fix the path in vm.conf or put the file there`,
    );
  }
}

function checkOwner(owner: Located<OwnerSpec>, whose: string, host: HostView, sink: DiagnosticSink): void {
  const resolved = resolveOwner(owner, new DiagnosticSink()); // the parser reported invalid owners
  if (resolved === null) return;
  const missing = (p: Principal | null, kind: "user" | "group") => {
    if (p === null || p.kind === "id") return; // numeric ids are taken as they are, as in vmd
    const found = kind === "user" ? host.users.user(p.name) : host.users.group(p.name);
    if (found === undefined) {
      sink.error(
        owner.pos,
        `${kind} "${p.name}" (${whose}) does not exist on this host; create it or fix vm.conf`,
      );
    }
  };
  missing(resolved.user, "user");
  missing(resolved.group, "group");
}

function checkStatement(s: Statement, host: HostView, sink: DiagnosticSink): void {
  if (s.kind === "socket_owner") checkOwner(s.owner, "socket owner", host, sink);
  if (s.kind !== "vm") return;
  const vm = s.name.value;
  for (const o of s.options) {
    switch (o.kind) {
      case "boot":
        checkPath(o.path, "kernel", vm, host, sink);
        for (const b of o.options) if (b.kind === "initrd") checkPath(b.path, "initrd", vm, host, sink);
        break;
      case "disk":
        checkPath(o.path, "disk", vm, host, sink);
        break;
      case "cdrom":
        checkPath(o.path, "cdrom", vm, host, sink);
        break;
      case "owner":
        checkOwner(o.owner, `owner of vm "${vm}"`, host, sink);
        break;
      case "allow_instance":
        for (const f of o.flags) {
          if (f.kind === "owner") checkOwner(f.owner, `allow instance owner of vm "${vm}"`, host, sink);
        }
        break;
    }
  }
}

/** Checks every file and owner of `ast` against `host`; returns the errors, in file order. */
export function checkHost(ast: ConfigAst, host: HostView): readonly Diagnostic[] {
  const sink = new DiagnosticSink();
  for (const s of ast.statements) checkStatement(s, host, sink);
  return sink.items;
}
