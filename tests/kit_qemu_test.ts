/**
 * The test-guest kit, built with gcc and booted by QEMU with KVM (`-kernel guest.elf`, PVH entry): exact
 * console output and exit status on the `pc` and `microvm` machines. vmd runs the same files in its own tests.
 */
import assert from "node:assert/strict";
import { buildKitGuest, GuestBuildError, KIT_GUESTS } from "../examples/guests/kit/build.ts";
import { readElf, XEN_ELFNOTE_PHYS32_ENTRY } from "../scripts/elf_pvh.ts";
import { kvmTest } from "./kvm_support.ts";
import { type QemuOptions, runUnderQemu } from "./qemu_support.ts";

const MACHINES = ["pc", "microvm"] as const;

/** The status QEMU's isa-debug-exit gives for a guest value, as a process exit code. */
const qemuStatus = (v: number): number => ((v << 1) | 1) & 0xff;

async function run(name: string, opts: QemuOptions): Promise<{ output: string; status: number }> {
  const guest = await buildKitGuest(name);
  const r = await runUnderQemu(guest.path, { timeoutMs: 30_000, ...opts });
  return { output: r.output, status: r.status };
}

Deno.test("kit guests build as 32-bit ELF at 1 MiB with a PVH entry note, and come from the cache the second time", async () => {
  for (const name of Object.keys(KIT_GUESTS)) {
    const g = await buildKitGuest(name);
    const elf = readElf(g.bytes);
    assert.equal(elf.bits, 32, name);
    assert.equal(elf.machine, 3, `${name}: e_machine should be EM_386`);
    assert.equal(elf.entry, 0x100000, name);
    assert.equal(
      elf.pvhEntry,
      0x100000,
      `${name}: note type ${XEN_ELFNOTE_PHYS32_ENTRY} should name the entry`,
    );
    const again = await buildKitGuest(name);
    assert.equal(again.path, g.path);
    assert.deepEqual(again.bytes, g.bytes);
  }
  await assert.rejects(buildKitGuest("no_such_guest"), GuestBuildError);
});

const HELLO = "kit hello: ok\n" +
  "printf: -42 4000000000 beef 123456789abcdef0 18446744073709551615 Z str 002a|    7|\n";

for (const machine of MACHINES) {
  kvmTest(`kit hello under QEMU ${machine}: exact banner, printf line and exit status`, async () => {
    const { output, status } = await run("hello", { machine });
    assert.equal(output, HELLO);
    assert.equal(status, qemuStatus(0x10));
  });

  kvmTest(`kit pvh_info under QEMU ${machine}: start info, cmdline, memory map and module`, async () => {
    const initrd = await Deno.makeTempFile({ prefix: "kit-initrd-" });
    const payload = new TextEncoder().encode("kit module: 0123456789abcdef, and some more bytes\n");
    await Deno.writeFile(initrd, payload);
    const cmdline = 'console=ttyS0 kit.test=1 "quoted words" end';
    try {
      const { output, status } = await run("pvh_info", { machine, append: cmdline, initrd });
      assert.equal(status, qemuStatus(0x11), output);
      const lines = output.trimEnd().split("\n");
      assert.match(lines[0], /^start_info at 0x[0-9a-f]+$/);
      assert.equal(lines[1], "magic 0x336ec578 version 1 flags 0x0");
      assert.equal(lines[2], "nr_modules 1");
      assert.equal(lines[3], `cmdline: ${cmdline}`);
      assert.match(lines[4], /^rsdp 0x[0-9a-f]+$/);
      const count = Number(/^memmap entries (\d+)$/.exec(lines[5])?.[1]);
      const memmap = lines.slice(6, 6 + count).map((l) => {
        const m = /^memmap: 0x([0-9a-f]+) 0x([0-9a-f]+) (\d+)$/.exec(l);
        assert.ok(m, `memmap line: ${l}`);
        return { addr: parseInt(m[1], 16), size: parseInt(m[2], 16), type: Number(m[3]) };
      });
      const ram = memmap.filter((e) => e.type === 1);
      const ramBytes = ram.reduce((n, e) => n + e.size, 0);
      assert.ok(ramBytes > 62 * 2 ** 20 && ramBytes <= 64 * 2 ** 20, `RAM ${ramBytes} bytes of 64 MiB`);
      assert.ok(ram.some((e) => e.addr === 0 && e.size >= 0x9f000), "low memory from 0");
      const high = ram.find((e) => e.addr === 0x100000);
      assert.ok(high !== undefined, "RAM from 1 MiB");
      const rest = lines.slice(6 + count);
      assert.equal(rest[0], `ram ${ramBytes / 1024} KiB`);
      const mod = /^module 0: addr 0x([0-9a-f]+) size (\d+)$/.exec(rest[1]);
      assert.ok(mod, rest[1]);
      const modAddr = parseInt(mod[1], 16);
      assert.equal(Number(mod[2]), payload.length);
      assert.ok(modAddr >= high.addr && modAddr + payload.length <= high.addr + high.size, "module in RAM");
      const hex = Array.from(payload.slice(0, 16), (b) => b.toString(16).padStart(2, "0")).join(" ");
      assert.equal(rest[2], `module 0 bytes: ${hex}`);
      assert.equal(rest.at(-1), "pvh_info: ok");
    } finally {
      await Deno.remove(initrd);
    }
  });
}

kvmTest("kit pvh_info under QEMU pc without -append or -initrd: empty cmdline, no module", async () => {
  const { output, status } = await run("pvh_info", { machine: "pc" });
  assert.equal(status, qemuStatus(0x11), output);
  const lines = output.trimEnd().split("\n");
  assert.equal(lines[2], "nr_modules 0");
  assert.equal(lines[3], "cmdline: ");
  assert.ok(!output.includes("module 0"));
  assert.equal(lines.at(-1), "pvh_info: ok");
});

kvmTest("kit pci_scan under QEMU pc lists the i440FX/PIIX3 functions on bus 0", async () => {
  const { output, status } = await run("pci_scan", { machine: "pc" });
  assert.equal(
    output,
    [
      "pci 00:00.0 8086:1237 class 06",
      "pci 00:01.0 8086:7000 class 06",
      "pci 00:01.1 8086:7010 class 01",
      "pci 00:01.3 8086:7113 class 06",
      "pci_scan: 4 functions",
      "",
    ].join("\n"),
  );
  assert.equal(status, qemuStatus(0x13));
});

kvmTest("kit pci_scan under QEMU microvm (no PCI host bridge) finds nothing", async () => {
  const { output, status } = await run("pci_scan", { machine: "microvm" });
  assert.equal(output, "pci_scan: 0 functions\n");
  assert.equal(status, qemuStatus(0x13));
});
