/**
 * Real Linux (Debian's kernel, prepared by scripts/prepare_guests.ts). This machine's /dev/kvm is PVM: a stock
 * kernel reaches its first console lines and then stops on an instruction PVM cannot emulate, so here the
 * tests check our loaders, zero page / start info, command line and UART up to the kernel's own output.
 * Where hardware KVM is present, the initramfs boots to its marker and answers on the console.
 */
import assert from "node:assert/strict";
import { prepareGuests } from "../scripts/prepare_guests.ts";
import { hardwareKvm, kvmTest, runKernel } from "./kvm_support.ts";

/** Boots `kernel` with the initrd until the kernel has reported its memory map and initrd, then stops it. */
async function bootToFirstLines(kernel: string, timeoutMs: number): Promise<void> {
  const g = await prepareGuests({ log: () => {} });
  const run = await runKernel(kernel, {
    cmdline: "console=ttyS0 earlyprintk=serial",
    initrd: g.initrd,
    memory: 256 << 20,
    until: "No NUMA configuration found",
    timeoutMs,
  });
  const out = run.output;
  assert.deepEqual(
    run.result.exit,
    { kind: "stopped" },
    `stopped by the test once the lines arrived:\n${out}`,
  );
  assert.ok(out.includes(`Linux version ${g.kernelVersion} `), out);
  assert.match(out, /Command line: console=ttyS0 earlyprintk=serial\r?\n/);
  assert.match(out, /BIOS-e820: \[mem 0x0000000000000000-0x000000000009fbff\] usable/);
  assert.match(out, /BIOS-e820: \[mem 0x000000000009fc00-0x00000000000fffff\] reserved/);
  assert.match(out, /BIOS-e820: \[mem 0x0000000000100000-0x000000000fffffff\] usable/);
  const size = (await Deno.stat(g.initrd)).size;
  const rd = /RAMDISK: \[mem 0x([0-9a-f]+)-0x([0-9a-f]+)\]/.exec(out);
  assert.ok(rd, "the kernel found the initrd");
  assert.equal(parseInt(rd[2], 16) - parseInt(rd[1], 16) + 1, Math.ceil(size / 4096) * 4096);
}

kvmTest(
  "Linux (Debian vmlinux, PVH entry) prints its first lines on our UART: version, cmdline, e820, initrd",
  async () => {
    const g = await prepareGuests({ log: () => {} });
    await bootToFirstLines(g.vmlinux, 90_000);
  },
);

kvmTest(
  "Linux (Debian lz4 bzImage, 64-bit boot protocol) decompresses itself and prints the same lines",
  async () => {
    const g = await prepareGuests({ log: () => {} });
    await bootToFirstLines(g.bzImage, 240_000);
  },
);

const hw = hardwareKvm();
if (!hw.present) console.log(`linux_boot_test: the boot-to-init test does not run here: ${hw.why}`);
Deno.test({
  name:
    "Linux boots the initramfs to its marker, answers a command on the console, and reboots (hardware KVM)",
  ignore: !hw.present,
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const g = await prepareGuests({ log: () => {} });
    let typed = false;
    let rebooting = false;
    const run = await runKernel(g.bzImage, {
      initrd: g.initrd,
      cmdline: "console=ttyS0 reboot=k panic=-1 vmd.shell",
      memory: 512 << 20,
      timeoutMs: 120_000,
      onOutput: (out, vm) => {
        if (!typed && out.includes("VMD-INITRAMFS-READY") && /# $/.test(out)) {
          typed = true;
          vm.consoleInput(new TextEncoder().encode("echo answer-$((6*7))\n"));
        }
        if (!rebooting && out.includes("answer-42")) {
          rebooting = true;
          vm.consoleInput(new TextEncoder().encode("reboot -f\n"));
        }
      },
    });
    assert.match(run.output, /VMD-INITRAMFS-READY/);
    assert.match(run.output, /\nanswer-42\r?\n/);
    assert.deepEqual(run.result.exit, { kind: "reboot" });
  },
});

Deno.test({
  name:
    "Linux finds 4 vCPUs through ACPI (nproc says 4) and `poweroff -f` ends the VM powered off through S5 " +
    "(hardware KVM)",
  ignore: !hw.present,
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const g = await prepareGuests({ log: () => {} });
    let typed = false;
    let off = false;
    const run = await runKernel(g.bzImage, {
      initrd: g.initrd,
      cmdline: "console=ttyS0 reboot=k panic=-1 vmd.shell",
      memory: 512 << 20,
      cpus: 4,
      timeoutMs: 120_000,
      onOutput: (out, vm) => {
        if (!typed && out.includes("VMD-INITRAMFS-READY") && /# $/.test(out)) {
          typed = true;
          vm.consoleInput(new TextEncoder().encode("echo cpus-$(nproc)\n"));
        }
        if (!off && /\ncpus-\d+\r?\n/.test(out)) {
          off = true;
          vm.consoleInput(new TextEncoder().encode("poweroff -f\n"));
        }
      },
    });
    assert.match(run.output, /ACPI: /, "the kernel found the ACPI tables");
    assert.match(run.output, /\ncpus-4\r?\n/, run.output);
    assert.deepEqual(run.result.exit, { kind: "shutdown" }, run.output);
  },
});
