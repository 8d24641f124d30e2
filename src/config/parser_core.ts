/**
 * The machinery shared by the vm.conf statement parsers: look-ahead, typed expectations with messages that
 * say what was expected and what was found, block parsing, and recovery to the next statement so that one run
 * reports every error.
 *
 * @module
 */
import type { Located, OwnerSpec } from "./ast.ts";
import type { DiagnosticSink, Pos } from "./diagnostic.ts";
import { isKeyword, suggest } from "./keywords.ts";
import type { Token } from "./lexer.ts";
import type { TokenStream } from "./token_stream.ts";

/** Thrown inside the parser to abandon the current statement; always caught by the parser itself. */
export class Abort {
  private readonly abort = true;
}

/** How items inside a block are separated: by line breaks (vm, switch), or loosely by commas and/or lines. */
export type Separators = "lines" | "loose";

const NO_WORDS: ReadonlySet<string> = new Set();

/** True when `t` is the punctuation `text`. */
export function isPunct(t: Token, text: string): boolean {
  return t.kind === "punct" && t.text === text;
}

/** True when `t` is the unquoted word `word` (a keyword or a contextual word). */
export function isWord(t: Token, word: string): boolean {
  return t.kind === "word" && t.text === word;
}

/** True when `t` is a string in vmd's sense: a quoted string or an unquoted word that is not a keyword. */
export function isStringToken(t: Token): t is Extract<Token, { kind: "word" | "string" }> {
  return t.kind === "string" || (t.kind === "word" && !isKeyword(t.text));
}

/** Describes a token for a message: `end of line`, `keyword "disk"`, `number 5`, `"text"`. */
export function describe(t: Token): string {
  switch (t.kind) {
    case "newline":
      return "end of line";
    case "eof":
      return "end of file";
    case "number":
      return `number ${t.text}`;
    case "word":
      return isKeyword(t.text) ? `keyword "${t.text}"` : `"${t.text}"`;
    case "string":
      return `"${t.text}"`;
    case "punct":
      return `"${t.text}"`;
    case "macro":
      return `$${t.name}`;
    case "error":
      return "an invalid token";
  }
}

/** The shared state and helpers of one file's parser. */
export class ParserCore {
  /** False right after a block that ended without its `}` (already reported): its statement ends there. */
  lastBlockClosed = true;

  /** `tokens`: this file's token stream; `sink`: where diagnostics go. */
  constructor(readonly tokens: TokenStream, readonly sink: DiagnosticSink) {}

  /** The next token, not consumed. */
  peek(n = 0): Token {
    return this.tokens.peek(n);
  }

  /** Consumes the next token. */
  next(): Token {
    return this.tokens.next();
  }

  /** Reports `message` at `t` (unless `t` is a lexical error, already reported) and abandons the statement. */
  fail(t: Token, message: string): never {
    if (t.kind !== "error") this.sink.error(t.pos, message);
    throw new Abort();
  }

  /** True at the end of a line (or of the file). */
  atEol(): boolean {
    const t = this.peek();
    return t.kind === "newline" || t.kind === "eof";
  }

  /** Consumes any number of line breaks; returns how many. */
  skipNewlines(): number {
    let n = 0;
    for (; this.peek().kind === "newline"; n++) this.next();
    return n;
  }

  /** Requires the end of the statement: a line break, the end of file, or (in a block) the closing brace. */
  expectEnd(context: string, inBlock: boolean): void {
    const t = this.peek();
    if (t.kind === "newline" || t.kind === "eof" || (inBlock && isPunct(t, "}"))) return;
    this.fail(t, `${context}: unexpected ${describe(t)}; expected the end of the line`);
  }

  /**
   * Reads vmd's `string`: one or more adjacent strings or non-keyword words, concatenated. Unquoted words in
   * `stop` (contextual words of our extensions) end the string instead of joining it.
   */
  string(context: string, stop: ReadonlySet<string> = NO_WORDS): Located<string> {
    const first = this.peek();
    if (!isStringToken(first)) this.fail(first, `${context}: expected ${this.wanted(first)}`);
    this.next();
    let value = first.text;
    for (let t = this.peek(); isStringToken(t) && !(t.kind === "word" && stop.has(t.text)); t = this.peek()) {
      value += t.text;
      this.next();
    }
    return { value, pos: first.pos };
  }

  /** Reads a single string token (no concatenation), as vmd's `STRING`. */
  singleString(context: string): Located<string> {
    const t = this.peek();
    if (!isStringToken(t)) this.fail(t, `${context}: expected ${this.wanted(t)}`);
    this.next();
    return { value: t.text, pos: t.pos };
  }

  private wanted(t: Token): string {
    const hint = t.kind === "number"
      ? ` (quote it: "${t.text}")`
      : t.kind === "word"
      ? ` (it is a keyword; quote it to use it as a name: "${t.text}")`
      : "";
    return `a name or path in quotes, got ${describe(t)}${hint}`;
  }

  /** Reads a number token. */
  number(context: string, what: string): Located<number> {
    const t = this.peek();
    if (t.kind !== "number") this.fail(t, `${context}: expected ${what}, got ${describe(t)}`);
    this.next();
    return { value: t.value, pos: t.pos };
  }

  /** Consumes the keyword `word` or fails with a message naming it. */
  keyword(word: string, context: string): Pos {
    const t = this.peek();
    if (!isWord(t, word)) this.fail(t, `${context}: expected "${word}", got ${describe(t)}`);
    this.next();
    return t.pos;
  }

  /** Reads an owner: a number (uid) or a single string `user`, `user:group` or `:group`. */
  owner(context: string): Located<OwnerSpec> {
    const t = this.peek();
    if (t.kind === "number") {
      this.next();
      return { value: { kind: "uid", uid: t.value }, pos: t.pos };
    }
    if (!isStringToken(t)) {
      this.fail(t, `${context}: expected user, user:group, :group or a uid, got ${describe(t)}`);
    }
    this.next();
    return { value: { kind: "names", text: t.text }, pos: t.pos };
  }

  /** Fails on an unknown option word (in block `where`, if given), suggesting the closest valid one. */
  unknown(t: Token, what: string, valid: readonly string[], where = ""): never {
    const inWhere = where === "" ? "" : ` in ${where}`;
    if (t.kind === "word" || t.kind === "string") {
      const hint = suggest(t.text, valid);
      this.fail(
        t,
        `unknown ${what} "${t.text}"${inWhere}` +
          (hint === null ? `; expected one of: ${valid.join(", ")}` : `; did you mean "${hint}"?`),
      );
    }
    this.fail(t, `expected a ${what}${inWhere} (${valid.join(", ")}), got ${describe(t)}`);
  }

  /**
   * Skips the rest of a broken statement: up to and including the end of the line, or, inside a block, up to
   * (not including) the block's closing brace. A `{` skipped on the way is skipped up to its matching `}`.
   */
  recover(inBlock: boolean): void {
    let depth = 0;
    for (;;) {
      const t = this.peek();
      if (t.kind === "eof") return;
      if (depth === 0 && t.kind === "newline") {
        this.next();
        return;
      }
      if (isPunct(t, "}")) {
        if (depth === 0) {
          if (inBlock) return;
        } else {
          depth--;
        }
      } else if (isPunct(t, "{")) {
        depth++;
      }
      this.next();
    }
  }

  /**
   * Parses `{ item ... }`. `label` names the block in messages (`vm "web"`); `stopWords` are words that cannot
   * start an item here but start a top-level statement: seeing one at the start of an item means the block's
   * `}` is missing, which is reported at the opening brace. Every item is parsed with recovery.
   */
  block<T>(label: string, separators: Separators, stopWords: ReadonlySet<string>, item: () => T | null): T[] {
    const open = this.peek();
    if (!isPunct(open, "{")) this.fail(open, `${label}: expected "{", got ${describe(open)}`);
    this.next();
    const items: T[] = [];
    let lineStart = this.skipNewlines() > 0;
    for (;;) {
      const t = this.peek();
      if (isPunct(t, "}")) {
        this.next();
        this.lastBlockClosed = true;
        return items;
      }
      if (t.kind === "eof") {
        this.sink.error(open.pos, `${label}: this "{" is never closed; add "}" at the end of the block`);
        this.lastBlockClosed = false;
        return items;
      }
      if (t.kind === "newline") {
        lineStart = this.skipNewlines() > 0;
        continue;
      }
      if (lineStart && t.kind === "word" && stopWords.has(t.text)) {
        this.sink.error(open.pos, `${label}: this "{" is not closed before line ${t.pos.line}; add "}"`);
        this.lastBlockClosed = false;
        return items;
      }
      if (separators === "loose" && isPunct(t, ",")) {
        this.next();
        lineStart = this.skipNewlines() > 0;
        continue;
      }
      lineStart = false;
      try {
        this.lastBlockClosed = true;
        const value = item();
        if (value !== null) items.push(value);
        if (!this.lastBlockClosed) {
          lineStart = true; // an inner block stopped at a statement word that starts a line
          continue;
        }
        const after = this.peek();
        if (after.kind === "newline") {
          lineStart = this.skipNewlines() > 0;
        } else if (!isPunct(after, "}") && after.kind !== "eof" && separators === "lines") {
          this.fail(after, `${label}: unexpected ${describe(after)}; put each option on its own line`);
        }
      } catch (e) {
        if (!(e instanceof Abort)) throw e;
        this.recover(true);
        lineStart = true; // recover() stopped after a line break, before "}", or at the end of the file
      }
    }
  }
}
