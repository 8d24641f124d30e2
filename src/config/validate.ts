/**
 * Validation: from the syntax tree to the resolved configuration. Checks every value against vmd's rules and
 * limits, reports every problem with its position, and fills in the defaults.
 *
 * @module
 */
import type { ConfigAst, Statement } from "./ast.ts";
import { type DiagnosticSink, formatPos, type Pos } from "./diagnostic.ts";
import { DEFAULT_AGENTX_PATH } from "./limits.ts";
import { DEFAULT_POOL_SIZE, MAX_POOL_SIZE } from "./limits.ts";
import { checkIfname, parseIpv4Prefix, parseIpv6Prefix } from "./net.ts";
import type { GlobalConfig, SwitchConfig, VmConfig, VmdConfig } from "./types.ts";
import { checkGroup, checkRdomain, resolveOwner } from "./validate_common.ts";
import { checkVmName, resolveVm } from "./validate_vm.ts";

/** The defaults of the global options. */
export const DEFAULT_GLOBAL: GlobalConfig = {
  localPrefix: { address: "100.64.0.0", length: 10 },
  localInet6: { kind: "disabled" },
  socketOwner: { user: { kind: "id", id: 0 }, group: { kind: "id", id: 0 } },
  staggeredStart: { kind: "off" },
  agentx: { kind: "off" },
  poolSize: DEFAULT_POOL_SIZE,
};

function globalOption(g: GlobalConfig, s: Statement, sink: DiagnosticSink): GlobalConfig {
  switch (s.kind) {
    case "local_prefix": {
      const r = parseIpv4Prefix(s.prefix.value);
      if (!r.ok) sink.error(s.prefix.pos, `invalid local prefix "${s.prefix.value}": ${r.reason}`);
      return r.ok ? { ...g, localPrefix: r.value } : g;
    }
    case "local_inet6": {
      if (s.prefix === null) return { ...g, localInet6: { kind: "auto" } };
      const r = parseIpv6Prefix(s.prefix.value);
      if (!r.ok) sink.error(s.prefix.pos, `invalid local inet6 prefix "${s.prefix.value}": ${r.reason}`);
      return r.ok ? { ...g, localInet6: { kind: "prefix", prefix: r.value } } : g;
    }
    case "socket_owner": {
      const o = resolveOwner(s.owner, sink);
      if (o === null) return g;
      return {
        ...g,
        socketOwner: { user: o.user ?? { kind: "id", id: 0 }, group: o.group ?? { kind: "id", id: 0 } },
      };
    }
    case "staggered_start": {
      let ok = true;
      if (s.parallel.value < 1) {
        sink.error(s.parallel.pos, `staggered start parallel must be at least 1, not ${s.parallel.value}`);
        ok = false;
      }
      if (s.delay.value < 0) {
        sink.error(s.delay.pos, `staggered start delay must not be negative (${s.delay.value})`);
        ok = false;
      }
      return ok
        ? { ...g, staggeredStart: { kind: "on", parallel: s.parallel.value, delaySeconds: s.delay.value } }
        : g;
    }
    case "pool_size": {
      if (s.size.value < 0 || s.size.value > MAX_POOL_SIZE) {
        sink.error(s.size.pos, `pool size must be 0 to ${MAX_POOL_SIZE}, not ${s.size.value}`);
        return g;
      }
      return { ...g, poolSize: s.size.value };
    }
    case "agentx": {
      if (s.path !== null && !s.path.value.startsWith("/")) {
        sink.error(s.path.pos, `agentx path "${s.path.value}" is not absolute`);
        return g;
      }
      sink.warning(s.pos, "agentx is not supported by this vmd: the setting is accepted and ignored");
      return {
        ...g,
        agentx: { kind: "on", context: s.context?.value ?? null, path: s.path?.value ?? DEFAULT_AGENTX_PATH },
      };
    }
    default:
      return g;
  }
}

function resolveSwitch(s: Extract<Statement, { kind: "switch" }>, sink: DiagnosticSink): SwitchConfig | null {
  let sw: SwitchConfig = {
    name: s.name.value,
    enabled: true,
    interface: "",
    group: null,
    lockedLladdr: false,
    rdomain: null,
    up: true,
    pos: s.pos,
  };
  for (const o of s.options) {
    switch (o.kind) {
      case "enable":
        sw = { ...sw, enabled: o.enabled };
        break;
      case "group":
        sw = { ...sw, group: checkGroup(o.name, sink) ?? sw.group };
        break;
      case "interface": {
        const r = checkIfname(o.name.value);
        if (r.ok) sw = { ...sw, interface: r.value };
        else sink.error(o.name.pos, `invalid switch interface "${o.name.value}": ${r.reason}`);
        break;
      }
      case "locked_lladdr":
        sw = { ...sw, lockedLladdr: true };
        break;
      case "rdomain":
        sw = { ...sw, rdomain: checkRdomain(o.id, sink) ?? sw.rdomain };
        break;
      case "updown":
        sw = { ...sw, up: o.up };
        break;
    }
  }
  if (s.name.value === "") {
    sink.error(s.name.pos, "empty switch name");
    return null;
  }
  if (sw.interface === "" && !s.options.some((o) => o.kind === "interface")) {
    sink.error(
      s.pos,
      `switch "${sw.name}" is missing an interface: add "interface bridge0" (the host bridge to attach VMs to)`,
    );
    return null;
  }
  return sw;
}

/** Validates a parsed configuration, reporting to `sink`; returns the resolved configuration (best effort). */
export function validateConfig(ast: ConfigAst, sink: DiagnosticSink): VmdConfig {
  let global = DEFAULT_GLOBAL;
  const switches: SwitchConfig[] = [];
  const vms: VmConfig[] = [];
  const vmSeen = new Map<string, Pos>();
  const switchSeen = new Map<string, Pos>();
  for (const s of ast.statements) {
    if (s.kind === "switch") {
      const prev = switchSeen.get(s.name.value);
      if (prev !== undefined) {
        sink.error(s.name.pos, `switch "${s.name.value}" is already defined at ${formatPos(prev)}`);
        continue;
      }
      switchSeen.set(s.name.value, s.name.pos);
      const sw = resolveSwitch(s, sink);
      if (sw !== null) switches.push(sw);
    } else if (s.kind === "vm") {
      // A VM with a bad name, a duplicate or a missing parent is still checked, so its errors are reported too.
      let usable = checkVmName(s.name, sink);
      const prev = vmSeen.get(s.name.value);
      if (prev !== undefined) {
        sink.error(s.name.pos, `vm "${s.name.value}" is already defined at ${formatPos(prev)}`);
        usable = false;
      } else {
        vmSeen.set(s.name.value, s.name.pos);
      }
      let parent: VmConfig | null = null;
      if (s.parent !== null) {
        parent = vms.find((v) => v.name === s.parent?.value) ?? null;
        if (parent === null) {
          sink.error(
            s.parent.pos,
            `vm "${s.name.value}" is an instance of "${s.parent.value}", which is not defined before it`,
          );
          usable = false;
        }
      }
      const vm = resolveVm(s, parent, sink);
      if (usable) vms.push(vm);
    } else {
      global = globalOption(global, s, sink);
    }
  }
  for (const s of ast.statements) {
    if (s.kind !== "vm") continue;
    for (const o of s.options) {
      if (o.kind !== "interface") continue;
      for (const io of o.options) {
        if (io.kind === "switch" && !switchSeen.has(io.name.value)) {
          sink.warning(
            io.name.pos,
            `switch "${io.name.value}" is not defined; this interface will not be attached`,
          );
        }
      }
    }
  }
  warnSharedDisks(vms, sink);
  return { global, switches, vms };
}

/** Warns when two VMs (or one VM twice) name the same disk image: two writers corrupt an image. */
function warnSharedDisks(vms: readonly VmConfig[], sink: DiagnosticSink): void {
  const users = new Map<string, string>();
  for (const vm of vms) {
    for (const d of vm.disks) {
      const other = users.get(d.path);
      if (other !== undefined) {
        const who = other === vm.name ? "twice" : `and by vm "${other}"`;
        sink.warning(
          vm.pos,
          `disk "${d.path}" is used by vm "${vm.name}" ${who}; two writers corrupt an image`,
        );
      }
      users.set(d.path, vm.name);
    }
  }
}
