/**
 * Text from users (VM names, paths, owners, error messages that quote them) made safe to print on a terminal
 * or in a log line: control characters are shown as escapes, so a name cannot forge a row of `vmctl status`,
 * a line of vmd's log, or send a terminal escape sequence to whoever reads them.
 *
 * @module
 */

// C0 controls (newline and tab included), DEL, C1 controls, and the Unicode line/paragraph separators and
// bidirectional overrides, which reorder or split what a terminal shows
// deno-lint-ignore no-control-regex
const UNPRINTABLE = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;

/** `text` with every control character replaced by `\xNN` (or `\u{NNNN}` above 0xff). */
export function printable(text: string): string {
  return text.replace(UNPRINTABLE, (c) => {
    const code = c.codePointAt(0)!;
    return code <= 0xff ? `\\x${code.toString(16).padStart(2, "0")}` : `\\u{${code.toString(16)}}`;
  });
}
