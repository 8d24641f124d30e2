/**
 * The vm.conf parser: top-level statements, macro definitions, includes and switch blocks (vm blocks are in
 * parse_vm.ts). It reads files only through the injected reader, collects every error, and never throws
 * anything but its own internal abort, which it catches.
 *
 * @module
 */
import type { Located, Statement, SwitchOption } from "./ast.ts";
import type { DiagnosticSink, Pos } from "./diagnostic.ts";
import { isKeyword, suggest } from "./keywords.ts";
import { Lexer, type Token } from "./lexer.ts";
import { MAX_INCLUDE_DEPTH } from "./limits.ts";
import { isMacroName, type MacroTable } from "./macros.ts";
import { parseVmBlock, VM_STOP_WORDS } from "./parse_vm.ts";
import { Abort, describe, isPunct, isStringToken, isWord, ParserCore } from "./parser_core.ts";
import { dirname, resolveFrom } from "./path.ts";
import { TokenStream } from "./token_stream.ts";

/** What a reader returns: the file's text, or why it cannot be read. */
export type ReadResult = { readonly ok: true; readonly text: string } | {
  readonly ok: false;
  readonly reason: string;
};

/** Reads a configuration file by path. The parser's only way to reach files (for `include`). */
export type ConfigReader = (path: string) => ReadResult;

/** The shared state of one parse run, across included files. */
export interface ParseContext {
  /** Reads included files. */
  readonly reader: ConfigReader;
  /** The macro table (with `-D` definitions already in it). */
  readonly macros: MacroTable;
  /** Where diagnostics go. */
  readonly sink: DiagnosticSink;
  /** Statements collected so far, in order. */
  readonly statements: Statement[];
}

const GLOBAL_WORDS = [
  "agentx",
  "include",
  "local",
  "pool",
  "socket",
  "staggered",
  "switch",
  "vm",
] as const;

/** Parses `text`, the contents of `file`, appending its statements to `ctx.statements`. */
export function parseFile(
  ctx: ParseContext,
  file: string,
  text: string,
  includeChain: readonly string[] = [],
): void {
  const lexer = new Lexer(text, file, (pos, m) => ctx.sink.error(pos, m));
  const p = new ParserCore(new TokenStream(lexer, ctx.macros, ctx.sink), ctx.sink);
  const chain = [...includeChain, file];
  for (;;) {
    const t = p.peek();
    if (t.kind === "eof") return;
    if (t.kind === "newline") {
      p.next();
      continue;
    }
    try {
      statement(ctx, p, chain);
    } catch (e) {
      if (!(e instanceof Abort)) throw e;
      p.recover(false);
    }
  }
}

function statement(ctx: ParseContext, p: ParserCore, chain: readonly string[]): void {
  const t = p.peek();
  if (isStringToken(t) && isPunct(p.peek(1), "=")) return macroDefinition(ctx, p, t);
  if (t.kind === "word" && t.text === "pool" && !isPunct(p.peek(1), "=")) {
    // `pool size N`, a Linux extension: like `cpus`, not a reserved word (a file vmd accepts still parses)
    p.next();
    p.keyword("size", "pool");
    ctx.statements.push({
      kind: "pool_size",
      size: p.number("pool size", "the number of VM processes to keep started ahead"),
      pos: t.pos,
    });
    return p.expectEnd("pool size", false);
  }
  if (t.kind !== "word" || !isKeyword(t.text)) {
    if (isPunct(t, "}")) p.fail(t, `unexpected "}": no block is open here`);
    if (t.kind === "word" || t.kind === "string") {
      const hint = suggest(t.text, GLOBAL_WORDS);
      p.fail(
        t,
        `unknown statement "${t.text}"` +
          (hint !== null ? `; did you mean "${hint}"?` : "; expected vm, switch, " +
            `include, local, socket, staggered, agentx, pool or a macro definition (name = "value")`),
      );
    }
    p.fail(
      t,
      `unexpected ${describe(t)}; expected a statement (vm, switch, include, a global option or a macro)`,
    );
  }
  if (isPunct(p.peek(1), "=")) {
    p.fail(t, `"${t.text}" is a reserved word and cannot be a macro name; pick another name`);
  }
  const pos = t.pos;
  switch (t.text) {
    case "include":
      p.next();
      return include(ctx, p, chain);
    case "local":
      p.next();
      return local(ctx, p, pos);
    case "socket":
      p.next();
      p.keyword("owner", "socket");
      ctx.statements.push({ kind: "socket_owner", owner: p.owner("socket owner"), pos });
      return p.expectEnd("socket owner", false);
    case "staggered": {
      p.next();
      p.keyword("start", "staggered");
      p.keyword("parallel", "staggered start");
      const parallel = p.number("staggered start parallel", "the number of VMs to start in parallel");
      p.keyword("delay", "staggered start");
      const delay = p.number("staggered start delay", "a delay in seconds");
      ctx.statements.push({ kind: "staggered_start", parallel, delay, pos });
      return p.expectEnd("staggered start", false);
    }
    case "agentx":
      p.next();
      return agentx(ctx, p, pos);
    case "switch":
      p.next();
      return switchStatement(ctx, p, pos);
    case "vm":
      p.next();
      return vmStatement(ctx, p, pos);
    default:
      p.fail(t, `keyword "${t.text}" cannot start a statement; expected one of: ${GLOBAL_WORDS.join(", ")}`);
  }
}

function macroDefinition(
  ctx: ParseContext,
  p: ParserCore,
  name: Extract<Token, { kind: "word" | "string" }>,
): void {
  p.next();
  p.next();
  const v = p.peek();
  let value: string;
  if (isStringToken(v)) value = v.text;
  else if (v.kind === "number") value = v.text;
  else p.fail(v, `macro ${name.text}: expected a value in quotes, got ${describe(v)}`);
  p.next();
  p.expectEnd(`macro ${name.text}`, false);
  if (!isMacroName(name.text)) {
    p.fail(name, `invalid macro name "${name.text}": use only letters, digits and underscores`);
  }
  ctx.macros.define(name.text, value, name.pos);
}

function include(ctx: ParseContext, p: ParserCore, chain: readonly string[]): void {
  const name = p.string("include");
  p.expectEnd("include", false);
  const current = chain[chain.length - 1];
  const path = resolveFrom(dirname(current), name.value);
  if (chain.includes(path)) {
    ctx.sink.error(name.pos, `include loop: ${[...chain, path].join(" -> ")}; remove one of these includes`);
    return;
  }
  if (chain.length > MAX_INCLUDE_DEPTH) {
    ctx.sink.error(
      name.pos,
      `includes nested more than ${MAX_INCLUDE_DEPTH} deep (${chain[0]} -> ... -> ${current} -> ${path}); ` +
        "include these files from fewer levels (a loop through a link or another spelling of a path ends here)",
    );
    return;
  }
  const r = ctx.reader(path);
  if (!r.ok) {
    ctx.sink.error(name.pos, `cannot include "${path}": ${r.reason}`);
    return;
  }
  parseFile(ctx, path, r.text, chain);
}

function local(ctx: ParseContext, p: ParserCore, pos: Pos): void {
  const t = p.peek();
  if (isWord(t, "prefix")) {
    p.next();
    ctx.statements.push({ kind: "local_prefix", prefix: p.singleString("local prefix"), pos });
  } else if (isWord(t, "inet6")) {
    p.next();
    let prefix: Located<string> | null = null;
    if (isWord(p.peek(), "prefix")) {
      p.next();
      prefix = p.singleString("local inet6 prefix");
    }
    ctx.statements.push({ kind: "local_inet6", prefix, pos });
  } else {
    p.fail(
      t,
      `local: expected "prefix" or "inet6", got ${describe(t)} ("local interface" belongs in a vm block)`,
    );
  }
  p.expectEnd("local", false);
}

function agentx(ctx: ParseContext, p: ParserCore, pos: Pos): void {
  let context: Located<string> | null = null;
  let path: Located<string> | null = null;
  while (!p.atEol()) {
    const t = p.peek();
    if (isWord(t, "context")) {
      p.next();
      context = p.singleString("agentx context");
    } else if (isWord(t, "path")) {
      p.next();
      path = p.singleString("agentx path");
    } else {
      p.fail(t, `agentx: expected "context" or "path", got ${describe(t)}`);
    }
  }
  ctx.statements.push({ kind: "agentx", context, path, pos });
}

const SWITCH_OPTIONS = [
  "enable",
  "disable",
  "group",
  "interface",
  "locked",
  "rdomain",
  "up",
  "down",
] as const;

function switchStatement(ctx: ParseContext, p: ParserCore, pos: Pos): void {
  p.lastBlockClosed = true;
  const name = p.string("switch");
  const options = p.block(
    `switch "${name.value}"`,
    "lines",
    VM_STOP_WORDS,
    () => switchOption(p, name.value),
  );
  ctx.statements.push({ kind: "switch", name, options, pos });
  if (p.lastBlockClosed) p.expectEnd(`switch "${name.value}"`, false);
}

function switchOption(p: ParserCore, name: string): SwitchOption {
  const t = p.peek();
  const pos = t.pos;
  const word = t.kind === "word" ? t.text : "";
  switch (word) {
    case "enable":
    case "disable":
      p.next();
      return { kind: "enable", enabled: word === "enable", pos };
    case "group":
      p.next();
      return { kind: "group", name: p.string("group"), pos };
    case "interface":
      p.next();
      return { kind: "interface", name: p.string("interface"), pos };
    case "locked":
      p.next();
      p.keyword("lladdr", "locked");
      return { kind: "locked_lladdr", pos };
    case "rdomain":
      p.next();
      return { kind: "rdomain", id: p.number("rdomain", "a routing domain id"), pos };
    case "up":
    case "down":
      p.next();
      return { kind: "updown", up: word === "up", pos };
    default:
      return p.unknown(t, "switch option", SWITCH_OPTIONS, `switch "${name}"`);
  }
}

function vmStatement(ctx: ParseContext, p: ParserCore, pos: Pos): void {
  p.lastBlockClosed = true;
  const first = p.string("vm");
  let name = first;
  let parent: Located<string> | null = null;
  if (isWord(p.peek(), "instance")) {
    p.next();
    parent = first;
    name = p.string("vm instance");
  }
  const label = parent === null ? `vm "${name.value}"` : `vm "${parent.value}" instance "${name.value}"`;
  const options = parseVmBlock(p, label);
  ctx.statements.push({ kind: "vm", name, parent, options, pos });
  if (p.lastBlockClosed) p.expectEnd(label, false);
}
