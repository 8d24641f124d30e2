/**
 * The vm.conf lexer: comments, `\` line continuation, quoting, numbers, words and the single-character
 * tokens. It follows vmd's lexer rules (see docs/vm.conf.md) and reports problems through a callback; it never
 * throws on any input.
 *
 * @module
 */
import type { Pos } from "./diagnostic.ts";
import { MAX_TOKEN_LENGTH } from "./limits.ts";

/** One token. `word` is an unquoted string or keyword, `string` a quoted one. */
export type Token =
  | { readonly kind: "word"; readonly text: string; readonly pos: Pos }
  | { readonly kind: "string"; readonly text: string; readonly pos: Pos }
  | { readonly kind: "number"; readonly value: number; readonly text: string; readonly pos: Pos }
  | { readonly kind: "punct"; readonly text: string; readonly pos: Pos }
  | { readonly kind: "macro"; readonly name: string; readonly pos: Pos }
  | { readonly kind: "newline"; readonly pos: Pos }
  | { readonly kind: "error"; readonly pos: Pos }
  | { readonly kind: "eof"; readonly pos: Pos };

/** Receives the lexer's error messages. */
export type LexReport = (pos: Pos, message: string) => void;

const EOF = "";
const LLONG_MAX = (1n << 63n) - 1n;

function isDigit(c: string): boolean {
  return c >= "0" && c <= "9";
}

function isAlnum(c: string): boolean {
  return isDigit(c) || (c >= "a" && c <= "z") || (c >= "A" && c <= "Z");
}

function isPunct(c: string): boolean {
  return c.length === 1 && c > " " && c < "\x7f" && !isAlnum(c);
}

function isSpace(c: string): boolean {
  return c === " " || c === "\t" || c === "\n" || c === "\r" || c === "\v" || c === "\f";
}

function endsNumber(c: string): boolean {
  return c === EOF || isSpace(c) || c === ")" || c === "," || c === "/" || c === "}" || c === "=";
}

function inWord(c: string): boolean {
  return isAlnum(c) ||
    (isPunct(c) && c !== "(" && c !== ")" && c !== "{" && c !== "}" && c !== "!" && c !== "=" && c !== "#" &&
      c !== ",");
}

interface Cursor {
  i: number;
  line: number;
  col: number;
}

/** Splits one file (or one macro value) into tokens. */
export class Lexer {
  private cur: Cursor = { i: 0, line: 1, col: 1 };
  private lastWasNewline = true;
  private done = false;

  /**
   * `fixedPos`, when given, is the position of every token (used when re-lexing a macro's value at the place
   * it is used); `expanding` is true while lexing a macro value, where `$` is not expanded again.
   */
  constructor(
    private readonly text: string,
    private readonly file: string,
    private readonly report: LexReport,
    private readonly fixedPos: Pos | null = null,
    private readonly expanding = false,
  ) {}

  private pos(): Pos {
    return this.fixedPos ?? { file: this.file, line: this.cur.line, col: this.cur.col };
  }

  private raw(): string {
    const c = this.text[this.cur.i];
    if (c === undefined) return EOF;
    this.cur.i++;
    if (c === "\n") {
      this.cur.line++;
      this.cur.col = 1;
    } else {
      this.cur.col++;
    }
    return c;
  }

  private peekRaw(offset = 0): string {
    return this.text[this.cur.i + offset] ?? EOF;
  }

  /** Reads one character outside quotes: `\` + newline joins lines; `\` + any other character is that character. */
  private getc(): string {
    for (;;) {
      const c = this.peekRaw();
      if (c !== "\\") break;
      const n = this.peekRaw(1);
      if (n === "\n" || (n === "\r" && this.peekRaw(2) === "\n")) {
        this.raw();
        if (n === "\r") this.raw();
        this.raw();
        continue;
      }
      this.raw();
      return this.raw();
    }
    const c = this.raw();
    if (c === "\r" && this.peekRaw() === "\n") return this.raw();
    return c;
  }

  private save(): Cursor {
    return { ...this.cur };
  }

  private restore(c: Cursor): void {
    this.cur = { ...c };
  }

  /** The next token; after the end, `eof` forever. A file that does not end with a newline gets one. */
  next(): Token {
    const t = this.scan();
    if (t.kind === "eof" && !this.lastWasNewline) {
      this.lastWasNewline = true;
      return { kind: "newline", pos: t.pos };
    }
    this.lastWasNewline = t.kind === "newline";
    return t;
  }

  private scan(): Token {
    if (this.done) return { kind: "eof", pos: this.pos() };
    let start = this.save();
    let c = this.getc();
    while (c === " " || c === "\t" || (c === "\r")) {
      start = this.save();
      c = this.getc();
    }
    const startPos = this.posAt(start);
    if (c === "#") {
      for (;;) {
        const before = this.save();
        const d = this.getc();
        if (d === "\n" || d === EOF) {
          this.restore(before);
          break;
        }
      }
      return this.scan();
    }
    if (c === EOF) {
      this.done = true;
      return { kind: "eof", pos: startPos };
    }
    if (c === "\n") return { kind: "newline", pos: startPos };
    if (c === "$") return this.macro(startPos);
    if (c === '"' || c === "'") return this.quoted(c, startPos);
    if (c === "-" || isDigit(c)) {
      const t = this.number(c, start, startPos);
      if (t !== null) return t;
      c = this.getc();
    }
    if (isAlnum(c) || c === ":" || c === "_" || c === "/") return this.word(c, startPos);
    return { kind: "punct", text: c, pos: startPos };
  }

  private posAt(c: Cursor): Pos {
    return this.fixedPos ?? { file: this.file, line: c.line, col: c.col };
  }

  private macro(pos: Pos): Token {
    if (this.expanding) {
      this.report(pos, "a macro's value cannot use another macro ($ is not expanded inside a macro value)");
      return { kind: "error", pos };
    }
    let name = "";
    for (;;) {
      const before = this.save();
      const c = this.getc();
      if (isAlnum(c) || c === "_") {
        name += c;
        continue;
      }
      this.restore(before);
      break;
    }
    if (name === "") {
      this.report(
        pos,
        "'$' must be followed by a macro name (letters, digits, underscores); quote a literal $",
      );
      return { kind: "error", pos };
    }
    return { kind: "macro", name, pos };
  }

  private quoted(q: string, pos: Pos): Token {
    let text = "";
    for (;;) {
      let c = this.raw();
      if (c === EOF) {
        this.report(pos, `unterminated quoted string: add the closing ${q}`);
        this.done = true;
        return { kind: "error", pos };
      }
      if (c === "\n") continue;
      if (c === "\r" && this.peekRaw() === "\n") continue;
      if (c === "\\") {
        const n = this.peekRaw();
        if (n === q || n === " " || n === "\t") {
          c = this.raw();
        } else if (n === "\n") {
          this.raw();
          continue;
        }
      } else if (c === q) {
        return { kind: "string", text, pos };
      } else if (c === "\0") {
        this.report(pos, "NUL character in a quoted string");
        this.skipLine();
        return { kind: "error", pos };
      }
      text += c;
      if (text.length > MAX_TOKEN_LENGTH) {
        this.report(pos, `string too long (more than ${MAX_TOKEN_LENGTH} characters)`);
        this.skipQuoted(q);
        return { kind: "error", pos };
      }
    }
  }

  private skipQuoted(q: string): void {
    for (;;) {
      const c = this.raw();
      if (c === EOF || c === q) return;
      if (c === "\\") this.raw();
    }
  }

  private skipLine(): void {
    for (;;) {
      const before = this.save();
      const c = this.getc();
      if (c === EOF || c === "\n") {
        this.restore(before);
        return;
      }
    }
  }

  /** Reads a number, or returns null after rewinding to just past `first` when the text is not one. */
  private number(first: string, start: Cursor, pos: Pos): Token | null {
    let text = first;
    let before = this.save();
    let c = this.getc();
    while (isDigit(c)) {
      text += c;
      before = this.save();
      c = this.getc();
    }
    this.restore(before);
    if (text !== "-" && endsNumber(c)) {
      const big = BigInt(text);
      if (big > LLONG_MAX || big < -LLONG_MAX - 1n) {
        this.report(pos, `"${text}" is not a valid number: too large`);
        return { kind: "error", pos };
      }
      return { kind: "number", value: Number(big), text, pos };
    }
    this.restore(start);
    return null;
  }

  private word(first: string, pos: Pos): Token {
    let text = first;
    for (;;) {
      const before = this.save();
      const c = this.getc();
      if (c !== EOF && inWord(c)) {
        text += c;
        if (text.length > MAX_TOKEN_LENGTH) {
          this.report(pos, `word too long (more than ${MAX_TOKEN_LENGTH} characters)`);
          this.skipLine();
          return { kind: "error", pos };
        }
        continue;
      }
      this.restore(before);
      return { kind: "word", text, pos };
    }
  }
}
