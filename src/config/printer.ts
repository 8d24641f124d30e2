/**
 * Prints a resolved configuration as vm.conf text: macros expanded, instances merged, every default written
 * out. The output parses back to the same configuration (strings ending in a backslash excepted, which the
 * vm.conf syntax cannot express).
 *
 * @module
 */
import type { Owner, Principal, SwitchConfig, VmConfig, VmdConfig } from "./types.ts";
import { formatScaled } from "./size.ts";
import { DEFAULT_POOL_SIZE } from "./limits.ts";

/**
 * Quotes a string for vm.conf so that the lexer reads back exactly `s`: `"` becomes `\"`, and a space or tab
 * that follows a backslash is escaped too (the lexer would otherwise read `\ ` as a plain space). Strings that
 * end with a backslash or contain a line break cannot be written in vm.conf at all.
 */
export function quote(s: string): string {
  let out = "";
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (c === '"' || ((c === " " || c === "\t") && s[i - 1] === "\\")) out += "\\";
    out += c;
  }
  return `"${out}"`;
}

function principal(p: Principal): string {
  return p.kind === "id" ? String(p.id) : p.name;
}

function owner(o: Owner): string {
  if (o.user !== null && o.user.kind === "id" && o.group === null) return String(o.user.id);
  return quote(
    `${o.user === null ? "" : principal(o.user)}${o.group === null ? "" : `:${principal(o.group)}`}`,
  );
}

function printSwitch(sw: SwitchConfig): string[] {
  const lines = [`switch ${quote(sw.name)} {`, `\t${sw.enabled ? "enable" : "disable"}`];
  lines.push(`\tinterface ${quote(sw.interface)}`);
  if (sw.group !== null) lines.push(`\tgroup ${quote(sw.group)}`);
  if (sw.lockedLladdr) lines.push("\tlocked lladdr");
  if (sw.rdomain !== null) lines.push(`\trdomain ${sw.rdomain}`);
  lines.push(`\t${sw.up ? "up" : "down"}`, "}");
  return lines;
}

function printVm(vm: VmConfig): string[] {
  const head = vm.instanceOf === null
    ? `vm ${quote(vm.name)}`
    : `vm ${quote(vm.instanceOf)} instance ${quote(vm.name)}`;
  const lines = [`${head} {`, `\t${vm.enabled ? "enable" : "disable"}`];
  lines.push(`\tmemory ${formatScaled(vm.memoryBytes)}`, `\tcpus ${vm.cpus}`);
  if (vm.boot.kind === "bios") {
    lines.push("\t# boot: the default BIOS image");
  } else {
    const extra = [
      ...(vm.boot.initrd === null ? [] : [`\t\tinitrd ${quote(vm.boot.initrd)}`]),
      ...(vm.boot.cmdline === null ? [] : [`\t\tcmdline ${quote(vm.boot.cmdline)}`]),
    ];
    if (extra.length === 0) lines.push(`\tboot ${quote(vm.boot.path)}`);
    else lines.push(`\tboot ${quote(vm.boot.path)} {`, ...extra, "\t}");
  }
  if (vm.bootDevice !== "default") lines.push(`\tboot device ${vm.bootDevice}`);
  if (vm.cdrom !== null) lines.push(`\tcdrom ${quote(vm.cdrom)}`);
  for (const d of vm.disks) {
    lines.push(
      d.format === "auto" ? `\tdisk ${quote(d.path)}` : `\tdisk ${quote(d.path)} format ${d.format}`,
    );
  }
  for (const i of vm.interfaces) {
    const name = i.name.kind === "auto" ? "" : ` ${quote(i.name.name)}`;
    lines.push(`\t${i.local ? "local " : ""}interface${name} {`);
    if (i.switch !== null) lines.push(`\t\tswitch ${quote(i.switch)}`);
    if (i.group !== null) lines.push(`\t\tgroup ${quote(i.group)}`);
    if (i.lladdr.kind === "fixed") lines.push(`\t\t${i.locked ? "locked " : ""}lladdr ${i.lladdr.address}`);
    else if (i.locked) lines.push("\t\tlocked lladdr");
    if (i.rdomain !== null) lines.push(`\t\trdomain ${i.rdomain}`);
    lines.push(`\t\t${i.up ? "up" : "down"}`, "\t}");
  }
  if (vm.owner !== null) lines.push(`\towner ${owner(vm.owner)}`);
  const a = vm.allowInstance;
  const flags = (["boot", "memory", "interface", "disk", "cdrom", "instance"] as const).filter((f) => a[f]);
  const all = [...flags, ...(a.owner === null ? [] : [`owner ${owner(a.owner)}`])];
  if (all.length > 0) lines.push(`\tallow instance { ${all.join(", ")} }`);
  lines.push("}");
  return lines;
}

/** Prints `config` as vm.conf text, ending with a newline. */
export function printConfig(config: VmdConfig): string {
  const g = config.global;
  const lines = [
    "# vmd: resolved configuration (macros expanded, includes inlined, defaults filled in)",
    `local prefix ${g.localPrefix.address}/${g.localPrefix.length}`,
  ];
  if (g.localInet6.kind === "auto") lines.push("local inet6");
  if (g.localInet6.kind === "prefix") {
    lines.push(`local inet6 prefix ${g.localInet6.prefix.address}/${g.localInet6.prefix.length}`);
  }
  lines.push(`socket owner ${owner(g.socketOwner)}`);
  if (g.staggeredStart.kind === "on") {
    lines.push(
      `staggered start parallel ${g.staggeredStart.parallel} delay ${g.staggeredStart.delaySeconds}`,
    );
  }
  if (g.poolSize !== DEFAULT_POOL_SIZE) lines.push(`pool size ${g.poolSize}`);
  if (g.agentx.kind === "on") {
    const ctx = g.agentx.context === null ? "" : ` context ${quote(g.agentx.context)}`;
    lines.push(`agentx${ctx} path ${quote(g.agentx.path)}`);
  }
  for (const sw of config.switches) lines.push("", ...printSwitch(sw));
  for (const vm of config.vms) lines.push("", ...printVm(vm));
  return lines.join("\n") + "\n";
}
