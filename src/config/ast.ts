/**
 * The syntax tree of vm.conf: what the parser read, with the position of every value, before validation.
 * Macros are already expanded and includes already inlined (each statement keeps the position in its own
 * file).
 *
 * @module
 */
import type { Pos } from "./diagnostic.ts";

/** A value and where it was written. */
export interface Located<T> {
  /** The value. */
  readonly value: T;
  /** Where it was written. */
  readonly pos: Pos;
}

/** An owner as written: a number (uid), or `user`, `user:group` or `:group`. */
export type OwnerSpec =
  | { readonly kind: "uid"; readonly uid: number }
  | { readonly kind: "names"; readonly text: string };

/** Options of an `interface` inside a vm block. */
export type InterfaceOption =
  | { readonly kind: "switch"; readonly name: Located<string>; readonly pos: Pos }
  | { readonly kind: "group"; readonly name: Located<string>; readonly pos: Pos }
  | {
    readonly kind: "lladdr";
    readonly locked: boolean;
    readonly address: Located<string> | null;
    readonly pos: Pos;
  }
  | { readonly kind: "rdomain"; readonly id: Located<number>; readonly pos: Pos }
  | { readonly kind: "updown"; readonly up: boolean; readonly pos: Pos };

/** Extension options inside `boot "path" { ... }`. */
export type BootOption =
  | { readonly kind: "initrd"; readonly path: Located<string>; readonly pos: Pos }
  | { readonly kind: "cmdline"; readonly text: Located<string>; readonly pos: Pos };

/** One flag of `allow instance`. */
export type InstanceFlag =
  | { readonly kind: "boot" | "memory" | "interface" | "disk" | "cdrom" | "instance"; readonly pos: Pos }
  | { readonly kind: "owner"; readonly owner: Located<OwnerSpec>; readonly pos: Pos };

/** The boot devices of `boot device`. */
export type BootDevice = "cdrom" | "disk" | "net";

/** One option inside a `vm` block. */
export type VmOption =
  | { readonly kind: "enable"; readonly enabled: boolean; readonly pos: Pos }
  | { readonly kind: "sev"; readonly es: boolean; readonly pos: Pos }
  | {
    readonly kind: "disk";
    readonly path: Located<string>;
    readonly format: Located<string> | null;
    readonly pos: Pos;
  }
  | {
    readonly kind: "interface";
    readonly local: boolean;
    readonly name: Located<string> | null;
    readonly options: readonly InterfaceOption[];
    readonly pos: Pos;
  }
  | {
    readonly kind: "boot";
    readonly path: Located<string>;
    readonly options: readonly BootOption[];
    readonly pos: Pos;
  }
  | { readonly kind: "boot_device"; readonly device: BootDevice; readonly pos: Pos }
  | { readonly kind: "cdrom"; readonly path: Located<string>; readonly pos: Pos }
  | { readonly kind: "interfaces"; readonly count: Located<number>; readonly pos: Pos }
  | { readonly kind: "memory"; readonly size: Located<number | string>; readonly pos: Pos }
  | { readonly kind: "owner"; readonly owner: Located<OwnerSpec>; readonly pos: Pos }
  | { readonly kind: "allow_instance"; readonly flags: readonly InstanceFlag[]; readonly pos: Pos }
  | { readonly kind: "cpus"; readonly count: Located<number>; readonly pos: Pos };

/** One option inside a `switch` block. */
export type SwitchOption =
  | { readonly kind: "enable"; readonly enabled: boolean; readonly pos: Pos }
  | { readonly kind: "group"; readonly name: Located<string>; readonly pos: Pos }
  | { readonly kind: "interface"; readonly name: Located<string>; readonly pos: Pos }
  | { readonly kind: "locked_lladdr"; readonly pos: Pos }
  | { readonly kind: "rdomain"; readonly id: Located<number>; readonly pos: Pos }
  | { readonly kind: "updown"; readonly up: boolean; readonly pos: Pos };

/** One top-level statement (macro definitions and includes are resolved by the parser and do not appear). */
export type Statement =
  | { readonly kind: "local_prefix"; readonly prefix: Located<string>; readonly pos: Pos }
  | { readonly kind: "local_inet6"; readonly prefix: Located<string> | null; readonly pos: Pos }
  | { readonly kind: "socket_owner"; readonly owner: Located<OwnerSpec>; readonly pos: Pos }
  | {
    readonly kind: "staggered_start";
    readonly parallel: Located<number>;
    readonly delay: Located<number>;
    readonly pos: Pos;
  }
  | { readonly kind: "pool_size"; readonly size: Located<number>; readonly pos: Pos }
  | {
    readonly kind: "agentx";
    readonly context: Located<string> | null;
    readonly path: Located<string> | null;
    readonly pos: Pos;
  }
  | {
    readonly kind: "switch";
    readonly name: Located<string>;
    readonly options: readonly SwitchOption[];
    readonly pos: Pos;
  }
  | {
    readonly kind: "vm";
    readonly name: Located<string>;
    readonly parent: Located<string> | null;
    readonly options: readonly VmOption[];
    readonly pos: Pos;
  };

/** A parsed configuration: its statements in file order, includes inlined. */
export interface ConfigAst {
  /** The statements. */
  readonly statements: readonly Statement[];
}
