/**
 * Value checks shared by the validation of global options, switches and VMs: owners, routing domains,
 * interface groups and paths.
 *
 * @module
 */
import type { Located, OwnerSpec } from "./ast.ts";
import type { DiagnosticSink } from "./diagnostic.ts";
import { MAX_RDOMAIN } from "./limits.ts";
import { checkGroupName } from "./net.ts";
import { dirname, resolveFrom } from "./path.ts";
import type { Owner, Principal } from "./types.ts";

const MAX_ID = 0xfffffffe;

function principal(
  text: string,
  what: string,
  owner: Located<OwnerSpec>,
  sink: DiagnosticSink,
): Principal | null {
  if (/^[0-9]+$/.test(text)) {
    const id = Number(text);
    if (id > MAX_ID) {
      sink.error(owner.pos, `invalid ${what} id ${text}: it must be at most ${MAX_ID}`);
      return null;
    }
    return { kind: "id", id };
  }
  if (!/^[A-Za-z_][A-Za-z0-9_.-]{0,31}\$?$/.test(text)) {
    sink.error(
      owner.pos,
      `invalid ${what} name "${text}": use letters, digits, '_', '.' and '-' (at most 32)`,
    );
    return null;
  }
  return { kind: "name", name: text };
}

/** Resolves `owner user`, `owner user:group`, `owner :group` or `owner 1000`; null (reported) when invalid. */
export function resolveOwner(owner: Located<OwnerSpec>, sink: DiagnosticSink): Owner | null {
  const spec = owner.value;
  if (spec.kind === "uid") {
    if (spec.uid < 0 || spec.uid > MAX_ID) {
      sink.error(owner.pos, `invalid user id ${spec.uid}: it must be from 0 to ${MAX_ID}`);
      return null;
    }
    return { user: { kind: "id", id: spec.uid }, group: null };
  }
  const colon = spec.text.indexOf(":");
  const userText = colon === -1 ? spec.text : spec.text.slice(0, colon);
  const groupText = colon === -1 ? "" : spec.text.slice(colon + 1);
  if (userText === "" && groupText === "") {
    sink.error(owner.pos, `empty owner "${spec.text}": give user, user:group or :group`);
    return null;
  }
  const user = userText === "" ? null : principal(userText, "user", owner, sink);
  const group = groupText === "" ? null : principal(groupText, "group", owner, sink);
  if ((userText !== "" && user === null) || (groupText !== "" && group === null)) return null;
  return { user, group };
}

/** Checks a routing domain id (0 to RT_TABLEID_MAX). */
export function checkRdomain(id: Located<number>, sink: DiagnosticSink): number | null {
  if (id.value < 0 || id.value > MAX_RDOMAIN) {
    sink.error(id.pos, `invalid rdomain ${id.value}: it must be from 0 to ${MAX_RDOMAIN}`);
    return null;
  }
  return id.value;
}

/** Checks an interface group name. */
export function checkGroup(name: Located<string>, sink: DiagnosticSink): string | null {
  const r = checkGroupName(name.value);
  if (!r.ok) {
    sink.error(name.pos, `invalid group name "${name.value}": ${r.reason}`);
    return null;
  }
  return r.value;
}

/** Resolves an image or kernel path: a relative path is taken from the directory of the file naming it. */
export function resolvePath(path: Located<string>, what: string, sink: DiagnosticSink): string | null {
  if (path.value === "") {
    sink.error(path.pos, `empty ${what} path`);
    return null;
  }
  return resolveFrom(dirname(path.pos.file), path.value);
}
