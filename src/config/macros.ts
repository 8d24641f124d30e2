/**
 * The macro table: `name = "value"` definitions from the file, `-D name=value` definitions from the command
 * line (which win over the file), and the record of which macros were used.
 *
 * @module
 */
import type { Pos } from "./diagnostic.ts";

interface Macro {
  value: string;
  used: boolean;
  persistent: boolean;
  pos: Pos | null;
}

/** An unused macro: its name and where it was defined (null for `-D`). */
export interface UnusedMacro {
  /** The macro's name. */
  readonly name: string;
  /** Where it was defined, or null when it came from `-D`. */
  readonly pos: Pos | null;
}

/** True for a valid macro name: letters, digits and underscores only. */
export function isMacroName(name: string): boolean {
  return /^[A-Za-z0-9_]+$/.test(name);
}

/** Macros in definition order. */
export class MacroTable {
  private readonly macros = new Map<string, Macro>();

  /** Defines a macro from the command line (`-D`); file definitions of the same name are then ignored. */
  defineFromCommandLine(name: string, value: string): void {
    this.macros.set(name, { value, used: false, persistent: true, pos: null });
  }

  /** Defines (or redefines) a macro from the file, unless `-D` already defined it. */
  define(name: string, value: string, pos: Pos): void {
    if (this.macros.get(name)?.persistent) return;
    this.macros.delete(name);
    this.macros.set(name, { value, used: false, persistent: false, pos });
  }

  /** The value of macro `name` (marking it used), or undefined when it is not defined. */
  use(name: string): string | undefined {
    const m = this.macros.get(name);
    if (m === undefined) return undefined;
    m.used = true;
    return m.value;
  }

  /** The current value of every macro, in definition order. */
  entries(): [string, string][] {
    return [...this.macros].map(([name, m]) => [name, m.value]);
  }

  /** Macros that were defined but never used. */
  unused(): UnusedMacro[] {
    return [...this.macros].filter(([, m]) => !m.used).map(([name, m]) => ({ name, pos: m.pos }));
  }
}
