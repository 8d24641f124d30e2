/**
 * The parser of `vm` blocks: every vm.conf(5) option plus the Linux extensions `cpus N` and
 * `boot "path" { initrd "path" cmdline "text" }`.
 *
 * @module
 */
import type { BootDevice, BootOption, InstanceFlag, InterfaceOption, Located, VmOption } from "./ast.ts";
import { describe, isPunct, isStringToken, isWord, type ParserCore } from "./parser_core.ts";

/** Words that start a top-level statement: seen at the start of a vm option, they mean a `}` is missing. */
export const VM_STOP_WORDS: ReadonlySet<string> = new Set([
  "vm",
  "switch",
  "include",
  "socket",
  "staggered",
  "agentx",
]);

const NESTED_STOP_WORDS: ReadonlySet<string> = new Set(["vm", "include", "socket", "staggered", "agentx"]);

const VM_OPTIONS = [
  "allow",
  "boot",
  "cdrom",
  "cpus",
  "disable",
  "disk",
  "enable",
  "interface",
  "interfaces",
  "local",
  "memory",
  "owner",
  "sev",
  "seves",
] as const;

const BOOT_WORDS: ReadonlySet<string> = new Set(["initrd", "cmdline"]);

const INTERFACE_OPTIONS = ["switch", "group", "locked", "lladdr", "rdomain", "up", "down"] as const;
const INSTANCE_FLAGS = ["boot", "memory", "interface", "disk", "cdrom", "instance", "owner"] as const;

/** Parses the `{ ... }` of `vm "label"`, returning its options. */
export function parseVmBlock(p: ParserCore, label: string): VmOption[] {
  return p.block(label, "lines", VM_STOP_WORDS, () => vmOption(p, label));
}

function vmOption(p: ParserCore, label: string): VmOption {
  const t = p.peek();
  const pos = t.pos;
  const word = t.kind === "word" ? t.text : "";
  switch (word) {
    case "enable":
    case "disable":
      p.next();
      return { kind: "enable", enabled: word === "enable", pos };
    case "sev":
    case "seves":
      p.next();
      return { kind: "sev", es: word === "seves", pos };
    case "disk": {
      p.next();
      const path = p.string("disk");
      let format: Located<string> | null = null;
      if (isWord(p.peek(), "format")) {
        p.next();
        format = p.string("disk format");
      }
      return { kind: "disk", path, format, pos };
    }
    case "local":
      p.next();
      if (!isWord(p.peek(), "interface")) {
        p.fail(p.peek(), `local: expected "interface" (local interface ...), got ${describe(p.peek())}`);
      }
      return iface(p, true, pos);
    case "interface":
      return iface(p, false, pos);
    case "boot":
      return boot(p, pos);
    case "cdrom":
      p.next();
      return { kind: "cdrom", path: p.string("cdrom"), pos };
    case "interfaces":
      p.next();
      return { kind: "interfaces", count: p.number("interfaces", "a count of interfaces"), pos };
    case "memory": {
      p.next();
      const v = p.peek();
      if (v.kind === "number") {
        p.next();
        return { kind: "memory", size: { value: v.value, pos: v.pos }, pos };
      }
      if (!isStringToken(v)) p.fail(v, `memory: expected a size such as 512M or 2G, got ${describe(v)}`);
      p.next();
      return { kind: "memory", size: { value: v.text, pos: v.pos }, pos };
    }
    case "owner":
      p.next();
      return { kind: "owner", owner: p.owner("owner"), pos };
    case "allow":
      return allowInstance(p, pos);
    case "cpus":
      p.next();
      return { kind: "cpus", count: p.number("cpus", "a number of vCPUs"), pos };
    default:
      return p.unknown(t, "vm option", VM_OPTIONS, label);
  }
}

function iface(p: ParserCore, local: boolean, pos: VmOption["pos"]): VmOption {
  p.next();
  const n = p.peek();
  const name = isStringToken(n) ? (p.next(), { value: n.text, pos: n.pos }) : null;
  let options: InterfaceOption[] = [];
  const t = p.peek();
  if (isPunct(t, "{")) {
    options = p.block("interface", "loose", NESTED_STOP_WORDS, () => interfaceOption(p));
  } else {
    for (let u = p.peek(); u.kind === "word" && isInterfaceOption(u.text); u = p.peek()) {
      options.push(interfaceOption(p));
      if (isPunct(p.peek(), ",")) p.next();
    }
  }
  return { kind: "interface", local, name, options, pos };
}

function isInterfaceOption(word: string): boolean {
  return (INTERFACE_OPTIONS as readonly string[]).includes(word);
}

function interfaceOption(p: ParserCore): InterfaceOption {
  const t = p.peek();
  const pos = t.pos;
  const word = t.kind === "word" ? t.text : "";
  switch (word) {
    case "switch":
      p.next();
      return { kind: "switch", name: p.string("interface switch"), pos };
    case "group":
      p.next();
      return { kind: "group", name: p.string("interface group"), pos };
    case "locked":
    case "lladdr": {
      p.next();
      if (word === "locked") p.keyword("lladdr", "locked");
      const a = p.peek();
      const address = isStringToken(a) ? (p.next(), { value: a.text, pos: a.pos }) : null;
      return { kind: "lladdr", locked: word === "locked", address, pos };
    }
    case "rdomain":
      p.next();
      return { kind: "rdomain", id: p.number("rdomain", "a routing domain id"), pos };
    case "up":
    case "down":
      p.next();
      return { kind: "updown", up: word === "up", pos };
    default:
      return p.unknown(t, "interface option", INTERFACE_OPTIONS);
  }
}

function boot(p: ParserCore, pos: VmOption["pos"]): VmOption {
  p.next();
  if (isWord(p.peek(), "device")) {
    p.next();
    const d = p.peek();
    if (d.kind === "word" && (d.text === "cdrom" || d.text === "disk" || d.text === "net")) {
      p.next();
      return { kind: "boot_device", device: d.text as BootDevice, pos };
    }
    p.fail(d, `boot device: expected cdrom, disk or net, got ${describe(d)}`);
  }
  const path = p.string("boot", BOOT_WORDS);
  let options: BootOption[] = [];
  if (isPunct(p.peek(), "{")) {
    options = p.block("boot", "loose", NESTED_STOP_WORDS, () => bootOption(p));
  }
  return { kind: "boot", path, options, pos };
}

function bootOption(p: ParserCore): BootOption {
  const t = p.peek();
  if (isWord(t, "initrd")) {
    p.next();
    return { kind: "initrd", path: p.string("initrd", BOOT_WORDS), pos: t.pos };
  }
  if (isWord(t, "cmdline")) {
    p.next();
    return { kind: "cmdline", text: p.string("cmdline", BOOT_WORDS), pos: t.pos };
  }
  return p.unknown(t, "boot option", ["initrd", "cmdline"]);
}

function allowInstance(p: ParserCore, pos: VmOption["pos"]): VmOption {
  p.next();
  p.keyword("instance", "allow");
  if (isPunct(p.peek(), "{")) {
    const flags = p.block("allow instance", "loose", NESTED_STOP_WORDS, () => instanceFlag(p));
    return { kind: "allow_instance", flags, pos };
  }
  return { kind: "allow_instance", flags: [instanceFlag(p)], pos };
}

function instanceFlag(p: ParserCore): InstanceFlag {
  const t = p.peek();
  const word = t.kind === "word" ? t.text : "";
  switch (word) {
    case "boot":
    case "memory":
    case "interface":
    case "disk":
    case "cdrom":
    case "instance":
      p.next();
      return { kind: word, pos: t.pos };
    case "owner":
      p.next();
      return { kind: "owner", owner: p.owner("allow instance owner"), pos: t.pos };
    default:
      return p.unknown(t, "allow instance option", INSTANCE_FLAGS);
  }
}
