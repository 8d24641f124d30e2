/**
 * Validation of one `vm` block: vmd's limits and duplicate checks, defaults, the Linux extensions, and the
 * merge of an instance with its parent.
 *
 * @module
 */
import { match } from "ts-pattern";
import type { InterfaceOption, Located, Statement, VmOption } from "./ast.ts";
import { type DiagnosticSink, formatPos, type Pos } from "./diagnostic.ts";
import {
  DEFAULT_CPUS,
  DEFAULT_MEMORY_BYTES,
  MAX_CPUS_PER_VM,
  MAX_DISKS_PER_VM,
  MAX_MEMORY_BYTES,
  MAX_NICS_PER_VM,
  MAX_VM_NAME_LENGTH,
  MIN_MEMORY_BYTES,
} from "./limits.ts";
import { checkIfname, parseLladdr } from "./net.ts";
import { formatScaled, scanScaled } from "./size.ts";
import type { AllowInstance, BootConfig, DiskConfig, InterfaceConfig, Owner, VmConfig } from "./types.ts";
import { checkGroup, checkRdomain, resolveOwner, resolvePath } from "./validate_common.ts";

type VmStatement = Extract<Statement, { kind: "vm" }>;

const MIB = 1024 * 1024;

import { vmNameProblem } from "./vm_name.ts";

export { vmNameProblem };

/** Checks a VM name with {@link vmNameProblem}; reports the problem at the name. */
export function checkVmName(name: Located<string>, sink: DiagnosticSink): boolean {
  const problem = vmNameProblem(name.value);
  if (problem !== null) sink.error(name.pos, problem);
  return problem === null;
}

/** A default interface: next free tap, random MAC, up. */
export function defaultInterface(): InterfaceConfig {
  return {
    local: false,
    name: { kind: "auto" },
    switch: null,
    group: null,
    lladdr: { kind: "random" },
    locked: false,
    rdomain: null,
    up: true,
  };
}

const NO_INSTANCES: AllowInstance = {
  boot: false,
  memory: false,
  interface: false,
  disk: false,
  cdrom: false,
  instance: false,
  owner: null,
};

/** Reads `memory`: bytes or a scan_scaled size, from 1M to 128G, rounded down to whole megabytes. */
export function memoryBytes(size: Located<number | string>, sink: DiagnosticSink): number | null {
  let bytes: number;
  if (typeof size.value === "number") {
    bytes = size.value;
  } else {
    const r = scanScaled(size.value);
    if (!r.ok) {
      sink.error(size.pos, `invalid memory size "${size.value}": ${r.reason}`);
      return null;
    }
    bytes = r.bytes > BigInt(MAX_MEMORY_BYTES) ? Infinity : Number(r.bytes);
  }
  if (bytes < MIN_MEMORY_BYTES) {
    sink.error(
      size.pos,
      typeof size.value === "number"
        ? `memory size must be at least 1M: a plain number is bytes; add a unit, e.g. ${size.value}M`
        : `memory size must be at least 1M ("${size.value}" is ${bytes} bytes)`,
    );
    return null;
  }
  if (bytes > MAX_MEMORY_BYTES) {
    sink.error(size.pos, `memory size too large (limit is ${formatScaled(MAX_MEMORY_BYTES)})`);
    return null;
  }
  return Math.floor(bytes / MIB) * MIB;
}

/** Already-set tracking for options vmd allows only once per VM. */
class Once {
  private readonly seen = new Map<string, Pos>();
  constructor(private readonly sink: DiagnosticSink) {}
  /** Returns true the first time `what` is set; reports later ones. */
  first(what: string, pos: Pos): boolean {
    const prev = this.seen.get(what);
    if (prev !== undefined) {
      this.sink.error(pos, `${what} specified more than once (first at ${formatPos(prev)}); remove one`);
      return false;
    }
    this.seen.set(what, pos);
    return true;
  }
}

function resolveInterface(
  opt: Extract<VmOption, { kind: "interface" }>,
  sink: DiagnosticSink,
): InterfaceConfig {
  let iface: InterfaceConfig = { ...defaultInterface(), local: opt.local };
  if (opt.name !== null && opt.name.value !== "tap") {
    const r = checkIfname(opt.name.value);
    if (r.ok) iface = { ...iface, name: { kind: "named", name: r.value } };
    else sink.error(opt.name.pos, `invalid interface name "${opt.name.value}": ${r.reason}`);
  }
  for (const o of opt.options) iface = applyInterfaceOption(iface, o, sink);
  return iface;
}

function applyInterfaceOption(
  iface: InterfaceConfig,
  o: InterfaceOption,
  sink: DiagnosticSink,
): InterfaceConfig {
  return match(o)
    .with({ kind: "switch" }, (s) => {
      if (s.name.value.length === 0 || s.name.value.length > MAX_VM_NAME_LENGTH) {
        sink.error(
          s.name.pos,
          `switch name "${s.name.value}" must have 1 to ${MAX_VM_NAME_LENGTH} characters`,
        );
        return iface;
      }
      return { ...iface, switch: s.name.value };
    })
    .with({ kind: "group" }, (g) => ({ ...iface, group: checkGroup(g.name, sink) ?? iface.group }))
    .with({ kind: "lladdr" }, (l) => {
      if (l.address === null) return { ...iface, locked: l.locked, lladdr: { kind: "random" as const } };
      const r = parseLladdr(l.address.value);
      if (!r.ok) {
        sink.error(l.address.pos, `invalid lladdr "${l.address.value}": ${r.reason}`);
        return iface;
      }
      return { ...iface, locked: l.locked, lladdr: { kind: "fixed" as const, address: r.value } };
    })
    .with({ kind: "rdomain" }, (r) => ({ ...iface, rdomain: checkRdomain(r.id, sink) ?? iface.rdomain }))
    .with({ kind: "updown" }, (u) => ({ ...iface, up: u.up }))
    .exhaustive();
}

/** Resolves one `vm` statement; `parent` is the resolved parent of an instance (or null). */
export function resolveVm(stmt: VmStatement, parent: VmConfig | null, sink: DiagnosticSink): VmConfig {
  const once = new Once(sink);
  let enabled = true;
  let memory = parent?.memoryBytes ?? DEFAULT_MEMORY_BYTES;
  let cpus = parent?.cpus ?? DEFAULT_CPUS;
  let boot: BootConfig = parent?.boot ?? { kind: "bios" };
  let bootDevice: VmConfig["bootDevice"] = parent?.bootDevice ?? "default";
  let cdrom = parent?.cdrom ?? null;
  let owner: Owner | null = parent?.owner ?? null;
  let allow: AllowInstance = NO_INSTANCES;
  let count: number | null = null;
  const disks: DiskConfig[] = [];
  const interfaces: InterfaceConfig[] = [];
  const vm = `vm "${stmt.name.value}"`;
  for (const opt of stmt.options) {
    match(opt)
      .with({ kind: "enable" }, (o) => void (enabled = o.enabled))
      .with({ kind: "sev" }, (o) => {
        sink.error(
          o.pos,
          `${
            o.es ? "seves" : "sev"
          } is not supported on this platform (AMD SEV guests need KVM_SEV, which vmd ` +
            `does not implement); remove this line`,
        );
      })
      .with({ kind: "disk" }, (o) => {
        if (disks.length >= MAX_DISKS_PER_VM) {
          sink.error(o.pos, `too many disks: ${vm} already has ${MAX_DISKS_PER_VM}, the maximum`);
          return;
        }
        let format: DiskConfig["format"] = "auto";
        if (o.format !== null) {
          const f = o.format.value.toLowerCase();
          if (f !== "raw" && f !== "qcow2") {
            sink.error(o.format.pos, `unrecognized disk format "${o.format.value}": use raw or qcow2`);
            return;
          }
          format = f;
        }
        const path = resolvePath(o.path, "disk", sink);
        if (path === null) return;
        if (parent !== null && parent.disks.some((d) => d.path === path)) {
          sink.error(
            o.path.pos,
            `disk "${path}" belongs to the parent vm "${parent.name}"; an instance needs its own`,
          );
          return;
        }
        disks.push({ path, format });
      })
      .with({ kind: "interface" }, (o) => {
        if (interfaces.length >= MAX_NICS_PER_VM) {
          sink.error(o.pos, `too many interfaces: ${vm} already has ${MAX_NICS_PER_VM}, the maximum`);
          return;
        }
        interfaces.push(resolveInterface(o, sink));
      })
      .with({ kind: "boot" }, (o) => {
        if (!once.first("boot kernel", o.pos)) return;
        const path = resolvePath(o.path, "boot", sink);
        let initrd: string | null = null;
        let cmdline: string | null = null;
        const bootOnce = new Once(sink);
        for (const b of o.options) {
          if (b.kind === "initrd" && bootOnce.first("initrd", b.pos)) {
            initrd = resolvePath(b.path, "initrd", sink);
          }
          if (b.kind === "cmdline" && bootOnce.first("cmdline", b.pos)) cmdline = b.text.value;
        }
        if (path !== null) boot = { kind: "kernel", path, initrd, cmdline };
      })
      .with({ kind: "boot_device" }, (o) => void (bootDevice = o.device))
      .with({ kind: "cdrom" }, (o) => {
        if (once.first("cdrom", o.pos)) cdrom = resolvePath(o.path, "cdrom", sink) ?? cdrom;
      })
      .with({ kind: "interfaces" }, (o) => {
        if (!once.first("interfaces", o.pos)) return;
        if (o.count.value < 0 || o.count.value > MAX_NICS_PER_VM) {
          sink.error(
            o.count.pos,
            `too many interfaces: ${o.count.value} (a vm has at most ${MAX_NICS_PER_VM})`,
          );
          return;
        }
        count = o.count.value;
      })
      .with({ kind: "memory" }, (o) => {
        if (once.first("memory", o.pos)) memory = memoryBytes(o.size, sink) ?? memory;
      })
      .with({ kind: "owner" }, (o) => void (owner = resolveOwner(o.owner, sink) ?? owner))
      .with({ kind: "allow_instance" }, (o) => {
        for (const f of o.flags) {
          allow = f.kind === "owner"
            ? { ...allow, owner: resolveOwner(f.owner, sink) ?? allow.owner }
            : { ...allow, [f.kind]: true };
        }
      })
      .with({ kind: "cpus" }, (o) => {
        if (!once.first("cpus", o.pos)) return;
        if (o.count.value < 1 || o.count.value > MAX_CPUS_PER_VM) {
          sink.error(o.count.pos, `invalid cpus ${o.count.value}: it must be from 1 to ${MAX_CPUS_PER_VM}`);
          return;
        }
        cpus = o.count.value;
      })
      .exhaustive();
  }
  if (interfaces.length === 0 && parent !== null) {
    for (const i of parent.interfaces) {
      interfaces.push({ ...i, name: { kind: "auto" }, lladdr: { kind: "random" } });
    }
  }
  while (count !== null && interfaces.length < count) interfaces.push(defaultInterface());
  return {
    name: stmt.name.value,
    instanceOf: parent?.name ?? null,
    enabled,
    memoryBytes: memory,
    cpus,
    boot,
    bootDevice,
    cdrom,
    disks,
    interfaces,
    owner,
    allowInstance: allow,
    pos: stmt.pos,
  };
}
