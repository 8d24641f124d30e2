/**
 * Tokens with macros expanded: a `$name` outside quotes is replaced by the tokens of the macro's value, all at
 * the position of the `$name`. Expansion is lazy, so a macro is visible from the line after its definition.
 *
 * @module
 */
import type { DiagnosticSink } from "./diagnostic.ts";
import { Lexer, type Token } from "./lexer.ts";
import type { MacroTable } from "./macros.ts";

/** A token source with look-ahead, over one file. */
export class TokenStream {
  private readonly buffer: Token[] = [];

  /** Reads `lexer`'s tokens, expanding macros from `macros` and reporting problems to `sink`. */
  constructor(
    private readonly lexer: Lexer,
    private readonly macros: MacroTable,
    private readonly sink: DiagnosticSink,
  ) {}

  /** The token `n` places ahead (0: the next one) without consuming it. */
  peek(n = 0): Token {
    while (this.buffer.length <= n) this.fill();
    return this.buffer[n];
  }

  /** Consumes and returns the next token. */
  next(): Token {
    const t = this.peek();
    this.buffer.shift();
    return t;
  }

  private fill(): void {
    for (;;) {
      const t = this.lexer.next();
      if (t.kind !== "macro") {
        this.buffer.push(t);
        return;
      }
      const value = this.macros.use(t.name);
      if (value === undefined) {
        this.sink.error(
          t.pos,
          `macro "${t.name}" is not defined: define it before this line (${t.name} = "value") or with -D ${t.name}=value`,
        );
        this.buffer.push({ kind: "error", pos: t.pos });
        return;
      }
      const inner = new Lexer(value, t.pos.file, (pos, m) => this.sink.error(pos, m), t.pos, true);
      let added = false;
      for (let u = inner.next(); u.kind !== "eof"; u = inner.next()) {
        // A macro's value is part of the line that uses it: line breaks in it (possible with -D) do not count.
        if (u.kind === "newline") continue;
        this.buffer.push(u);
        added = true;
      }
      if (added) return;
    }
  }
}
