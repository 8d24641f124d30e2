import assert from "node:assert/strict";
import { Lexer, type Token } from "../src/config/lexer.ts";

function lex(text: string): { tokens: string[]; errors: string[] } {
  const errors: string[] = [];
  const lexer = new Lexer(text, "f", (pos, m) => errors.push(`${pos.line}:${pos.col}: ${m}`));
  const tokens: string[] = [];
  for (let t: Token = lexer.next(); t.kind !== "eof"; t = lexer.next()) {
    const at = `@${t.pos.line}:${t.pos.col}`;
    switch (t.kind) {
      case "word":
      case "string":
      case "punct":
      case "number":
        tokens.push(`${t.kind}(${t.text})${at}`);
        break;
      case "macro":
        tokens.push(`macro(${t.name})${at}`);
        break;
      default:
        tokens.push(`${t.kind}${at}`);
    }
  }
  return { tokens, errors };
}

Deno.test("lexer: words, numbers, quoted strings, punctuation and positions", () => {
  assert.deepEqual(lex('vm "a b" {\n\tmemory 512M  disk 42\n}').tokens, [
    "word(vm)@1:1",
    "string(a b)@1:4",
    "punct({)@1:10",
    "newline@1:11",
    "word(memory)@2:2",
    "word(512M)@2:9",
    "word(disk)@2:15",
    "number(42)@2:20",
    "newline@2:22",
    "punct(})@3:1",
    "newline@3:2",
  ]);
});

Deno.test("lexer: a number ends only before space , / } = ) or the end; otherwise it is a word", () => {
  assert.deepEqual(lex("4,5}6=7/8 00:11:22:aa:bb:cc -3 -x").tokens, [
    "number(4)@1:1",
    "punct(,)@1:2",
    "number(5)@1:3",
    "punct(})@1:4",
    "number(6)@1:5",
    "punct(=)@1:6",
    "number(7)@1:7",
    "word(/8)@1:8",
    "word(00:11:22:aa:bb:cc)@1:11",
    "number(-3)@1:29",
    "punct(-)@1:32",
    "word(x)@1:33",
    "newline@1:34",
  ]);
});

Deno.test("lexer: comments, line continuation (also inside comments and words), escapes", () => {
  assert.deepEqual(lex('a # comment \\\nstill comment\nb\\\nc \'x\\\'y\' "p\\ q" "r\\s"').tokens, [
    "word(a)@1:1",
    "newline@2:14",
    "word(bc)@3:1",
    "string(x'y)@4:3",
    "string(p q)@4:10",
    "string(r\\s)@4:17",
    "newline@4:22",
  ]);
});

Deno.test("lexer: newlines inside quotes are dropped; macros only outside quotes", () => {
  assert.deepEqual(lex('"ab\ncd" $mac_1 "$not"').tokens, [
    "string(abcd)@1:1",
    "macro(mac_1)@2:5",
    "string($not)@2:12",
    "newline@2:18",
  ]);
});

Deno.test("lexer: errors are reported with positions, and lexing goes on", () => {
  const r = lex('x 99999999999999999999 y\n"open');
  assert.deepEqual(r.errors, [
    '1:3: "99999999999999999999" is not a valid number: too large',
    '2:1: unterminated quoted string: add the closing "',
  ]);
  assert.deepEqual(r.tokens, [
    "word(x)@1:1",
    "error@1:3",
    "word(y)@1:24",
    "newline@1:25",
    "error@2:1",
    "newline@2:6",
  ]);
});
