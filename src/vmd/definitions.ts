/**
 * From vm.conf's resolved VMs (and vmctl's ad hoc options) to what the daemon starts: absolute paths,
 * owners resolved to ids, and a reason when this build cannot start the VM at all.
 *
 * @module
 */
import { resolve } from "node:path";
import type { AllowInstance, VmConfig, VmdConfig } from "../config/types.ts";
import { MAX_NICS } from "../net/host_link.ts";
import { DEFAULT_LOCAL_INET6_PREFIX } from "../net/local_inet6.ts";
import { type ResolvedOwner, resolveOwner } from "./access.ts";
import type { StartOptions } from "./protocol.ts";
import type { UserDb } from "./user_db.ts";
import type { VmDefinition } from "./vm_entry.ts";
import type { NicDefinition } from "./vm_nics.ts";
import type { DefinitionDisk } from "./vm_files.ts";
import type { FileCredentials } from "../../ffi/open_file.ts";
import { parseDiskSpec } from "../disk/open.ts";
import { DEFAULT_BIOS_PATH } from "../firmware/bios_image.ts";

/** The command line a VM gets when vm.conf and vmctl give none. */
export const DEFAULT_CMDLINE = "console=ttyS0";

/** A definition the daemon cannot build (unknown owner, no kernel). */
export class DefinitionError extends Error {
  /** Builds the error. */
  constructor(message: string) {
    super(message);
    this.name = "DefinitionError";
  }
}

/** vm.conf's `local prefix` as text (`a.b.c.d/len`). */
export function localPrefixText(config: VmdConfig): string {
  const p = config.global.localPrefix;
  return `${p.address}/${p.length}`;
}

/**
 * vm.conf's `local inet6` as a prefix (`address/len`), or null when it is off. Without a prefix vmd uses
 * `fd00::/8`, as OpenBSD's vmd does.
 */
export function localInet6Text(config: VmdConfig): string | null {
  const l = config.global.localInet6;
  if (l.kind === "disabled") return null;
  if (l.kind === "auto") return DEFAULT_LOCAL_INET6_PREFIX;
  return `${l.prefix.address}/${l.prefix.length}`;
}

/**
 * The Linux bridge of switch `name`, which must be a switch of vm.conf, and enabled: as in vmctl(8), `-n`
 * names a configured switch, never a host bridge directly (that would bypass the switch's `locked lladdr`, or
 * create bridges outside the configuration).
 */
function bridgeOf(name: string, config: VmdConfig): { bridge: string; locked: boolean; up: boolean | null } {
  const sw = config.switches.find((s) => s.name === name);
  if (sw === undefined) {
    throw new DefinitionError(
      `switch ${JSON.stringify(name)} is not defined in vm.conf; define it there ` +
        `(switch "${name.replace(/["\\]/g, "")}" { interface bridge0 }) and reload, or pick a defined switch`,
    );
  }
  if (!sw.enabled) throw new DefinitionError(`switch ${name} is disabled in vm.conf; enable it and reload`);
  return { bridge: sw.interface, locked: sw.lockedLladdr, up: sw.up };
}

/**
 * The NICs of a vm.conf VM: `local interface`, `interface { switch ... lladdr ... }`, `interfaces N`. As
 * vm.conf(5) says, an interface on a switch that is not defined, or disabled, is not attached: it is left out
 * (with a line through `warn`) and the VM starts with the others.
 */
function nicsFromConfig(vm: VmConfig, config: VmdConfig, warn: (line: string) => void): NicDefinition[] {
  const nics: NicDefinition[] = [];
  vm.interfaces.forEach((i, n) => {
    const sw = i.switch === null ? undefined : config.switches.find((s) => s.name === i.switch);
    if (i.switch !== null && (sw === undefined || !sw.enabled)) {
      const why = sw === undefined ? "is not defined" : "is disabled";
      warn(`vm ${vm.name}: interface ${n}: switch ${i.switch} ${why}; the interface is not attached`);
      return;
    }
    nics.push({
      local: i.local,
      bridge: i.local ? null : sw?.interface ?? null,
      lladdr: i.lladdr.kind === "fixed" ? i.lladdr.address : null,
      locked: i.locked || (sw?.lockedLladdr ?? false),
      up: i.up,
      bridgeUp: i.local ? null : sw?.up ?? null,
      tap: i.name.kind === "named" ? i.name.name : null,
    });
  });
  return nics;
}

/**
 * The NICs `vmctl start -L... -n switch... -i count` asks for: one local interface per `-L`, one per switch,
 * then plain ones up to `-i count`; as in vmctl(8), the larger of `-i` and the `-L`/`-n` count wins.
 */
export function nicsFromStart(o: StartOptions, config: VmdConfig): NicDefinition[] {
  const nics: NicDefinition[] = [];
  for (let i = 0; i < o.local; i++) {
    nics.push({
      local: true,
      bridge: null,
      lladdr: null,
      locked: false,
      up: true,
      bridgeUp: null,
      tap: null,
    });
  }
  for (const name of o.switches ?? []) {
    const sw = bridgeOf(name, config);
    nics.push({
      local: false,
      bridge: sw.bridge,
      lladdr: null,
      locked: sw.locked,
      up: true,
      bridgeUp: sw.up,
      tap: null,
    });
  }
  if (o.interfaces !== null) {
    while (nics.length < o.interfaces) {
      nics.push({
        local: false,
        bridge: null,
        lladdr: null,
        locked: false,
        up: true,
        bridgeUp: null,
        tap: null,
      });
    }
  }
  if (nics.length > MAX_NICS) throw new DefinitionError(`at most ${MAX_NICS} interfaces`);
  return nics;
}

/**
 * The definition of a VM from vm.conf; `warn` hears about what is left out (an interface on an undefined or
 * disabled switch). Throws {@link DefinitionError} when the VM cannot be started at all.
 */
export function definitionFromConfig(
  vm: VmConfig,
  db: UserDb,
  config: VmdConfig,
  warn: (line: string) => void = () => {},
): VmDefinition {
  let owner: ResolvedOwner;
  try {
    owner = resolveOwner(vm.owner, db);
  } catch (e) {
    throw new DefinitionError(`vm ${vm.name}: ${(e as Error).message}`);
  }
  return {
    name: vm.name,
    // `boot "file"` is a kernel or a BIOS image (the VM process tells them apart); no `boot`: the default BIOS
    kernel: vm.boot.kind === "kernel" ? resolve(vm.boot.path) : DEFAULT_BIOS_PATH,
    bootDevice: vm.bootDevice === "default" ? null : vm.bootDevice,
    initrd: vm.boot.kind === "kernel" && vm.boot.initrd !== null ? resolve(vm.boot.initrd) : null,
    cmdline: (vm.boot.kind === "kernel" ? vm.boot.cmdline : null) ?? DEFAULT_CMDLINE,
    cpus: vm.cpus,
    memory: vm.memoryBytes,
    owner,
    disks: vm.disks.map((d) => ({
      path: resolve(d.path),
      readOnly: false,
      format: d.format === "auto" ? undefined : d.format,
    })),
    cdrom: vm.cdrom === null ? null : resolve(vm.cdrom),
    namedBy: null,
    userPaths: [],
    nics: nicsFromConfig(vm, config, warn),
    localPrefix: localPrefixText(config),
    localInet6: localInet6Text(config),
    fromConfig: true,
    enabled: vm.enabled,
    allowInstance: vm.allowInstance,
  };
}

/**
 * The stand-in definition of a vm.conf VM the daemon cannot start (see {@link definitionFromConfig}): it is
 * listed (stopped, with the reason) so that `vmctl status` shows it, owned by root, never started.
 */
export function unusableDefinition(vm: VmConfig): VmDefinition {
  return {
    name: vm.name,
    kernel: vm.boot.kind === "kernel" ? resolve(vm.boot.path) : DEFAULT_BIOS_PATH,
    bootDevice: null,
    initrd: null,
    cmdline: DEFAULT_CMDLINE,
    cpus: vm.cpus,
    memory: vm.memoryBytes,
    owner: { uid: null, gid: null, text: "root" },
    disks: [],
    cdrom: null,
    namedBy: null,
    userPaths: [],
    nics: [],
    localPrefix: "",
    localInet6: null,
    fromConfig: true,
    enabled: false,
    allowInstance: null,
  };
}

/** An ad hoc VM from `vmctl start -b kernel ... name`, owned by the user who created it. */
export function adHocDefinition(
  name: string,
  o: StartOptions,
  owner: ResolvedOwner,
  config: VmdConfig,
): VmDefinition {
  return {
    name,
    // as vmd(8): without -b the VM boots through the default BIOS, from its disks
    kernel: o.kernel === null ? DEFAULT_BIOS_PATH : resolve(o.kernel),
    bootDevice: o.bootDevice,
    initrd: o.initrd === null ? null : resolve(o.initrd),
    cmdline: o.cmdline ?? DEFAULT_CMDLINE,
    cpus: o.cpus ?? 1,
    memory: o.memory ?? 512 * 2 ** 20,
    owner,
    disks: startDisks(o),
    cdrom: o.cdrom === null ? null : resolve(o.cdrom),
    namedBy: null,
    userPaths: [],
    nics: nicsFromStart(o, config),
    localPrefix: localPrefixText(config),
    localInet6: localInet6Text(config),
    fromConfig: false,
    enabled: false,
    allowInstance: null,
  };
}

/** The disks of `vmctl start -d`: a `raw:`/`qcow2:` prefix declares the format (binding). */
function startDisks(o: StartOptions): DefinitionDisk[] {
  return (o.disks ?? []).map((name) => {
    const { path, format } = parseDiskSpec(name);
    return { path: resolve(path), readOnly: false, format };
  });
}

/** The rights a user's files are opened with: the user, the primary group, every group it is in. */
export function userCredentials(uid: number, gid: number, db: UserDb): FileCredentials {
  return { uid, gid, groups: [...db.groupIdsOf(uid, gid)] };
}

/** What root may change in an instance: everything (vmd(8): "root has no restrictions"). */
export const ROOT_MAY_CHANGE: AllowInstance = {
  boot: true,
  memory: true,
  interface: true,
  disk: true,
  cdrom: true,
  instance: true,
  owner: null,
};

/**
 * An instance of `template` (`vmctl start -t template name`), with the options `allow` permits (the
 * template's `allow instance` for users, {@link ROOT_MAY_CHANGE} for root). The instance inherits the
 * template's `allow instance` when that allows `instance`, so instances of it may be made in turn.
 */
export function instanceDefinition(
  name: string,
  template: VmDefinition,
  allow: AllowInstance | null,
  o: StartOptions,
  owner: ResolvedOwner,
  config: VmdConfig,
  opener?: FileCredentials,
): VmDefinition {
  const refuse = (what: string) => {
    throw new DefinitionError(`vm ${template.name} does not allow instances to change ${what}`);
  };
  // vm.conf(5): `boot` covers what is booted: the kernel and, with our extensions, its initrd and command line
  if (o.kernel !== null && !allow?.boot) refuse("the kernel (allow instance { boot })");
  if (o.bootDevice !== null && !allow?.boot) refuse("the boot device (allow instance { boot })");
  if (o.initrd !== null && !allow?.boot) refuse("the initrd (allow instance { boot })");
  if (o.cmdline !== null && !allow?.boot) refuse("the kernel command line (allow instance { boot })");
  // vm.conf(5) has no `allow instance` flag for vCPUs: a user's instance always has its template's (root has
  // no restrictions, as in vmd(8))
  if (o.cpus !== null && allow !== ROOT_MAY_CHANGE) {
    throw new DefinitionError(
      `an instance has the vCPUs of ${template.name} (allow instance has no cpus option); ` +
        `define a vm with the cpus you need in vm.conf`,
    );
  }
  if (o.memory !== null && !allow?.memory) refuse("memory (allow instance { memory })");
  if (o.disks !== null && !allow?.disk) refuse("disks (allow instance { disk })");
  if (o.cdrom !== null && !allow?.cdrom) refuse("the CD-ROM (allow instance { cdrom })");
  const netAsked = o.local > 0 || o.interfaces !== null || o.switches !== null;
  if (netAsked && !allow?.interface) refuse("interfaces (allow instance { interface })");
  // as vm.conf says: an instance never inherits its parent's disks, and may not use them
  const disks = startDisks(o);
  const shared = disks.find((d) => template.disks.some((t) => t.path === d.path));
  if (shared !== undefined) {
    throw new DefinitionError(`${shared.path} is a disk of ${template.name}; an instance needs its own disk`);
  }
  return {
    ...template,
    name,
    kernel: o.kernel === null ? template.kernel : resolve(o.kernel),
    bootDevice: o.bootDevice ?? template.bootDevice,
    initrd: o.initrd === null ? template.initrd : resolve(o.initrd),
    cmdline: o.cmdline ?? template.cmdline,
    cpus: o.cpus ?? template.cpus,
    memory: o.memory ?? template.memory,
    disks,
    cdrom: o.cdrom === null ? template.cdrom : resolve(o.cdrom),
    nics: netAsked ? nicsFromStart(o, config) : template.nics,
    owner,
    // what the user named is opened with the user's rights; the template's files stay vm.conf's
    namedBy: opener ?? null,
    userPaths: opener === undefined ? [] : [
      ...(o.kernel === null ? [] : [resolve(o.kernel)]),
      ...(o.initrd === null ? [] : [resolve(o.initrd)]),
      ...disks.map((d) => d.path),
      ...(o.cdrom === null ? [] : [resolve(o.cdrom)]),
    ],
    fromConfig: false,
    enabled: false,
    allowInstance: template.allowInstance?.instance ? template.allowInstance : null,
  };
}

/** The owner of something a peer creates: the peer's own user (by id, named when known). */
export function peerOwner(uid: number, db: UserDb): ResolvedOwner {
  return { uid, gid: null, text: db.userById(uid)?.name ?? String(uid) };
}
