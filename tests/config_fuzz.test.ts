import assert from "node:assert/strict";
import { ConfigError } from "../src/config/config_error.ts";
import { mapReader } from "../src/config/file_reader.ts";
import { checkConfig, loadConfig } from "../src/config/load.ts";
import { printConfig } from "../src/config/printer.ts";
import type { VmdConfig } from "../src/config/types.ts";
import { FIXTURES } from "./config_fixtures.ts";

/** mulberry32: a small seeded PRNG, so every failure is reproducible from its seed. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const CORPUS = ["manpage", "openbsd_style", "linux", "linux_switches", "globals"].map((n) =>
  Deno.readTextFileSync(`${FIXTURES}/valid/${n}.conf`)
);
const READER = mapReader({
  "linux_switches.conf": CORPUS[3],
  "inc.conf": 'vm "inc" { memory 1G }\n',
  "loop.conf": 'include "loop.conf"\n',
});
const ALPHABET = [
  '"',
  "'",
  "{",
  "}",
  "\\",
  "$",
  "#",
  "=",
  ",",
  "\n",
  "\t",
  " ",
  "-",
  "/",
  ":",
  ".",
  "0",
  "9",
  "a",
  "Z",
  "\0",
  "é",
];
const WORDS = [
  "vm",
  "switch",
  "include",
  "disk",
  "memory",
  "interface",
  "boot",
  "{",
  "}",
  "$x",
  '"',
  "lladdr",
  "cpus",
  "\\\n",
];

function mutate(text: string, r: () => number): string {
  let s = text;
  const steps = 1 + Math.floor(r() * 4);
  for (let k = 0; k < steps; k++) {
    const i = Math.floor(r() * (s.length + 1));
    const j = Math.min(s.length, i + Math.floor(r() * 12));
    switch (Math.floor(r() * 6)) {
      case 0:
        s = s.slice(0, i) + s.slice(j);
        break;
      case 1:
        s = s.slice(0, i) + ALPHABET[Math.floor(r() * ALPHABET.length)] + s.slice(i);
        break;
      case 2:
        s = s.slice(0, i) + WORDS[Math.floor(r() * WORDS.length)] + " " + s.slice(i);
        break;
      case 3:
        s = s.slice(0, j) + s.slice(i, j) + s.slice(j);
        break;
      case 4:
        s = s.slice(0, i);
        break;
      default:
        s = s.slice(0, i) + 'include "' + ["inc.conf", "loop.conf", "none.conf"][Math.floor(r() * 3)] +
          '"\n' +
          s.slice(i);
    }
  }
  return s;
}

/** The configuration without positions, for comparing a configuration with its printed-and-reparsed self. */
function strip(c: VmdConfig): unknown {
  return JSON.parse(JSON.stringify(c, (k, v) => (k === "pos" ? undefined : v)));
}

Deno.test("fuzz: random mutations of valid files never throw anything but ConfigError", () => {
  const r = rng(0x5eed);
  let failing = 0;
  const deadline = Date.now() + 4000;
  let n = 0;
  for (; n < 4000 && Date.now() < deadline; n++) {
    const text = mutate(CORPUS[Math.floor(r() * CORPUS.length)], r);
    const result = checkConfig("fuzz.conf", text, { reader: READER, defines: r() < 0.2 ? { x: "1G" } : {} });
    for (const d of result.diagnostics) {
      if (d.pos !== null) assert.ok(d.pos.line >= 1 && d.pos.col >= 1, JSON.stringify(d));
      assert.ok(d.message.length > 0);
    }
    assert.equal(result.ok, !result.diagnostics.some((d) => d.severity === "error"));
    try {
      loadConfig("fuzz.conf", text, { reader: READER });
    } catch (e) {
      assert.ok(e instanceof ConfigError, `seed 0x5eed, case ${n}: ${e}\n---\n${text}`);
      failing++;
    }
  }
  assert.ok(n >= 500, `only ${n} cases ran`);
  assert.ok(failing > n / 10, "the mutations should break most files");
});

Deno.test("fuzz: random token soup never throws; every diagnostic has a valid position", () => {
  const r = rng(7);
  const pieces = [
    ...ALPHABET,
    ...WORDS,
    "instance",
    "allow",
    "owner",
    "sev",
    "agentx",
    "local",
    "x = ",
    "1G",
    "4",
  ];
  for (let n = 0; n < 1500; n++) {
    let text = "";
    for (let k = Math.floor(r() * 40); k > 0; k--) text += pick(r, pieces) + (r() < 0.5 ? " " : "");
    const result = checkConfig("soup.conf", text, { reader: READER });
    for (const d of result.diagnostics) assert.ok(d.pos === null || (d.pos.line >= 1 && d.pos.col >= 1));
  }
});

function pick<T>(r: () => number, xs: readonly T[]): T {
  return xs[Math.floor(r() * xs.length)];
}

/** Writes a random valid configuration using most of the grammar. */
function randomConfig(r: () => number): string {
  const lines: string[] = ['sw = "uplink"', "switch $sw {", "\tinterface br0", "}"];
  if (r() < 0.5) lines.push("local prefix 10.1.0.0/16");
  if (r() < 0.5) lines.push(pick(r, ["local inet6", "local inet6 prefix fd00:1::/64"]));
  if (r() < 0.5) {
    lines.push(`staggered start parallel ${1 + Math.floor(r() * 8)} delay ${Math.floor(r() * 60)}`);
  }
  const vms = 1 + Math.floor(r() * 4);
  for (let v = 0; v < vms; v++) {
    lines.push(`vm "vm${v}.example-${Math.floor(r() * 99)}" {`);
    if (r() < 0.5) lines.push(`\tmemory ${pick(r, ["64M", "1G", "1.5G", "2048m", "1073741824"])}`);
    if (r() < 0.3) lines.push(`\tcpus ${1 + Math.floor(r() * 8)}`);
    if (r() < 0.3) lines.push("\tdisable");
    if (r() < 0.5) lines.push('\tboot "/k" {', '\t\tinitrd "/i"', `\t\tcmdline "console=ttyS0 q${v}"`, "\t}");
    for (let d = Math.floor(r() * 5); d > 0; d--) {
      lines.push(`\tdisk "/vm/${v}-${d}.img"${pick(r, ["", " format qcow2", " format raw"])}`);
    }
    for (let i = Math.floor(r() * 4); i > 0; i--) {
      lines.push(
        `\t${pick(r, ["", "local "])}interface ${pick(r, ["", "tap" + i + " "])}{ switch $sw, ${
          pick(r, ["up", "down"])
        } }`,
      );
    }
    if (r() < 0.3) lines.push(`\tinterfaces ${Math.floor(r() * 5)}`);
    if (r() < 0.3) lines.push(`\towner ${pick(r, ["joe", "joe:staff", ":staff", "1000"])}`);
    if (r() < 0.3) lines.push("\tallow instance { boot, memory, owner :staff }");
    if (r() < 0.2) lines.push(`\tcdrom "/iso/${v}.iso"`, "\tboot device cdrom");
    lines.push("}");
  }
  return lines.join("\n") + "\n";
}

Deno.test("property: printing a resolved configuration and parsing it again gives the same configuration", () => {
  const r = rng(42);
  for (let n = 0; n < 300; n++) {
    const text = randomConfig(r);
    const first = checkConfig("gen.conf", text, { reader: READER });
    assert.equal(first.ok, true, `case ${n}:\n${text}\n${JSON.stringify(first.diagnostics)}`);
    const printed = printConfig(first.config);
    const second = checkConfig("printed.conf", printed, { reader: READER });
    assert.equal(second.ok, true, printed);
    assert.deepEqual(strip(second.config), strip(first.config), `case ${n}:\n${text}\n---\n${printed}`);
  }
  for (const text of CORPUS) {
    const first = checkConfig("corpus.conf", text, { reader: READER });
    const second = checkConfig("printed.conf", printConfig(first.config), { reader: READER });
    assert.deepEqual(strip(second.config), strip(first.config));
  }
});

Deno.test("property: any quotable string survives print and reparse (quotes, backslashes, $, #, braces)", () => {
  const r = rng(99);
  const chars = ['"', "'", "\\", "$", "#", "{", "}", ",", "=", " ", "\t", "a", "Z", "0", "/", "é", "-"];
  const base = checkConfig("q.conf", 'vm "q" {\n\tboot "/k"\n}\n', { reader: READER }).config;
  for (let n = 0; n < 1000; n++) {
    let s = "";
    for (let k = Math.floor(r() * 12); k > 0; k--) s += pick(r, chars);
    if (s.endsWith("\\")) s += "x";
    const boot = { kind: "kernel" as const, path: "/k", initrd: null, cmdline: s };
    const withCmdline: VmdConfig = { ...base, vms: [{ ...base.vms[0], boot }] };
    const printed = printConfig(withCmdline);
    const again = checkConfig("p.conf", printed, { reader: READER });
    assert.deepEqual(again.diagnostics, [], printed);
    assert.deepEqual(again.config.vms[0].boot, boot, printed);
  }
});
