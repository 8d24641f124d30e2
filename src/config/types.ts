/**
 * The resolved configuration: typed data for the daemon, with macros expanded, includes inlined, instances
 * merged with their parents and every default filled in. Alternatives are discriminated unions.
 *
 * @module
 */
import type { BootDevice } from "./ast.ts";
import type { Pos } from "./diagnostic.ts";
import type { Ipv4Prefix, Ipv6Prefix } from "./net.ts";

/** A user or group: by name (looked up in the user database at start-up) or by numeric id. */
export type Principal = { readonly kind: "name"; readonly name: string } | {
  readonly kind: "id";
  readonly id: number;
};

/** An owner: a user and/or a group (null: not set). */
export interface Owner {
  /** The owning user, or null. */
  readonly user: Principal | null;
  /** The owning group, or null. */
  readonly group: Principal | null;
}

/** `local inet6`: off, on with vmd's default prefix (fd00::/8), or on with the given prefix. */
export type LocalInet6 =
  | { readonly kind: "disabled" }
  | { readonly kind: "auto" }
  | { readonly kind: "prefix"; readonly prefix: Ipv6Prefix };

/** `staggered start`: off (start everything at once) or on. */
export type StaggeredStart =
  | { readonly kind: "off" }
  | { readonly kind: "on"; readonly parallel: number; readonly delaySeconds: number };

/** `agentx`: off, or on (parsed; not supported by this vmd, which warns at start-up). */
export type AgentX =
  | { readonly kind: "off" }
  | { readonly kind: "on"; readonly context: string | null; readonly path: string };

/** Global settings. */
export interface GlobalConfig {
  /** `local prefix`: default 100.64.0.0/10. */
  readonly localPrefix: Ipv4Prefix;
  /** `local inet6`. */
  readonly localInet6: LocalInet6;
  /** `socket owner`: default root (uid 0, gid 0). */
  readonly socketOwner: Owner;
  /** `staggered start`. */
  readonly staggeredStart: StaggeredStart;
  /** `agentx`. */
  readonly agentx: AgentX;
  /** `pool size N` (a Linux extension): VM processes the daemon keeps started ahead; 0 for none. */
  readonly poolSize: number;
}

/** A virtual switch. */
export interface SwitchConfig {
  /** The switch's name (what `interface { switch "name" }` refers to). */
  readonly name: string;
  /** False after `disable`. */
  readonly enabled: boolean;
  /** The host bridge interface. */
  readonly interface: string;
  /** Interface group for each member, or null. */
  readonly group: string | null;
  /** `locked lladdr`. */
  readonly lockedLladdr: boolean;
  /** Routing domain, or null. */
  readonly rdomain: number | null;
  /** `up` (default) or `down`. */
  readonly up: boolean;
  /** Where the switch is defined. */
  readonly pos: Pos;
}

/** What the VM boots: the default firmware, or a kernel (with our Linux extensions). */
export type BootConfig =
  | { readonly kind: "bios" }
  | {
    readonly kind: "kernel";
    readonly path: string;
    readonly initrd: string | null;
    readonly cmdline: string | null;
  };

/** A disk image. `auto` means: qcow2 if the file has the qcow2 magic, else raw (decided when it is opened). */
export interface DiskConfig {
  /** Path of the image (a relative path in the file is resolved against that file's directory). */
  readonly path: string;
  /** The image format. */
  readonly format: "raw" | "qcow2" | "auto";
}

/** A guest network interface. */
export interface InterfaceConfig {
  /** `local interface`: vmd gives it an address and runs DHCP for it. */
  readonly local: boolean;
  /** Host tap device: the next free one, or a named one. */
  readonly name: { readonly kind: "auto" } | { readonly kind: "named"; readonly name: string };
  /** Switch to attach to, or null. */
  readonly switch: string | null;
  /** Interface group, or null. */
  readonly group: string | null;
  /** Guest MAC address: random or fixed. */
  readonly lladdr: { readonly kind: "random" } | { readonly kind: "fixed"; readonly address: string };
  /** `locked lladdr`: drop guest packets with other source addresses. */
  readonly locked: boolean;
  /** Routing domain, or null. */
  readonly rdomain: number | null;
  /** `up` (default) or `down`. */
  readonly up: boolean;
}

/** What users may change when creating instances of a VM (`allow instance`). */
export interface AllowInstance {
  /** May set the kernel. */
  readonly boot: boolean;
  /** May set the memory size. */
  readonly memory: boolean;
  /** May change interfaces. */
  readonly interface: boolean;
  /** May set disks. */
  readonly disk: boolean;
  /** May set the cdrom. */
  readonly cdrom: boolean;
  /** May create instances of instances. */
  readonly instance: boolean;
  /** Who may create instances, or null (only root). */
  readonly owner: Owner | null;
}

/** A virtual machine. */
export interface VmConfig {
  /** The VM's name. */
  readonly name: string;
  /** The parent VM for `vm "parent" instance "name"`, or null. */
  readonly instanceOf: string | null;
  /** False after `disable`: the VM is known but not started. */
  readonly enabled: boolean;
  /** Memory in bytes, a multiple of 1 MiB. */
  readonly memoryBytes: number;
  /** vCPU count (extension `cpus`). */
  readonly cpus: number;
  /** What to boot. */
  readonly boot: BootConfig;
  /** `boot device`, or `default`. */
  readonly bootDevice: BootDevice | "default";
  /** ISO image, or null. */
  readonly cdrom: string | null;
  /** Disks in order (at most 4). */
  readonly disks: readonly DiskConfig[];
  /** Interfaces in order (at most 4), including those added by `interfaces N`. */
  readonly interfaces: readonly InterfaceConfig[];
  /** The VM's owner, or null (root only). */
  readonly owner: Owner | null;
  /** `allow instance` settings. */
  readonly allowInstance: AllowInstance;
  /** Where the VM is defined. */
  readonly pos: Pos;
}

/** The whole resolved configuration. */
export interface VmdConfig {
  /** Global settings. */
  readonly global: GlobalConfig;
  /** Switches, in file order (disabled ones included, with `enabled: false`). */
  readonly switches: readonly SwitchConfig[];
  /** VMs, in file order. */
  readonly vms: readonly VmConfig[];
}
