/**
 * Positions and diagnostics of the vm.conf front end: every message says where (`file:line:col`) and what to
 * do about it.
 *
 * @module
 */

/** A place in a configuration file. Lines and columns start at 1; a tab counts as one column. */
export interface Pos {
  /** The file name as given to the parser (the main file) or as resolved for an include. */
  readonly file: string;
  /** 1-based line number. */
  readonly line: number;
  /** 1-based column (in UTF-16 code units). */
  readonly col: number;
}

/** How bad a diagnostic is: errors make the configuration unusable, warnings do not. */
export type Severity = "error" | "warning";

/** One message about the configuration. `pos` is null for messages about the command line (`-D`). */
export interface Diagnostic {
  /** Error or warning. */
  readonly severity: Severity;
  /** Where, or null when the message is not about a file (e.g. an unused `-D` macro). */
  readonly pos: Pos | null;
  /** What is wrong, and what to do about it. */
  readonly message: string;
}

/** Formats a position as `file:line:col`. */
export function formatPos(pos: Pos): string {
  return `${pos.file}:${pos.line}:${pos.col}`;
}

/** Formats a diagnostic as `file:line:col: message` (errors) or `file:line:col: warning: message`. */
export function formatDiagnostic(d: Diagnostic): string {
  const where = d.pos === null ? "vmd" : formatPos(d.pos);
  return d.severity === "warning" ? `${where}: warning: ${d.message}` : `${where}: ${d.message}`;
}

/** Collects diagnostics in the order they are found. */
export class DiagnosticSink {
  /** Everything reported so far. */
  readonly items: Diagnostic[] = [];

  /** Reports an error at `pos`. */
  error(pos: Pos | null, message: string): void {
    this.items.push({ severity: "error", pos, message });
  }

  /** Reports a warning at `pos`. */
  warning(pos: Pos | null, message: string): void {
    this.items.push({ severity: "warning", pos, message });
  }

  /** The number of errors (not warnings) reported so far. */
  get errorCount(): number {
    return this.items.filter((d) => d.severity === "error").length;
  }
}
