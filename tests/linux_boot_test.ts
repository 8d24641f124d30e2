/**
 * Real Linux (Debian's kernel, prepared by scripts/prepare_guests.ts): our loaders, zero page / start info,
 * command line and UART up to the kernel's first lines, through the PVH and the bzImage path. On a PVM host
 * vmd appends its PVM switches to the command line and decompresses the bzImage itself (docs/pvm.md); a boot
 * to the shell there takes more than 30 minutes. Where hardware KVM is present, the initramfs also boots to
 * its marker here, answers on the console, and reboots (tests/linux_shell_test.ts does more in one boot).
 */
import assert from "node:assert/strict";
import { prepareGuests } from "../scripts/prepare_guests.ts";
import { withPvmSwitches } from "../src/vm/pvm.ts";
import { inflateInitrd } from "../src/boot/initrd_gunzip.ts";
import { hardwareKvm, hardwareKvmTest, kvmTest, runKernel } from "./kvm_support.ts";

const hw = hardwareKvm();

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
  const cmdline = hw.present
    ? "console=ttyS0 earlyprintk=serial"
    : withPvmSwitches("console=ttyS0 earlyprintk=serial");
  assert.ok(out.includes(`Command line: ${cmdline}\r\n`) || out.includes(`Command line: ${cmdline}\n`), out);
  assert.match(out, /BIOS-e820: \[mem 0x0000000000000000-0x000000000009fbff\] usable/);
  assert.match(out, /BIOS-e820: \[mem 0x000000000009fc00-0x00000000000fffff\] reserved/);
  assert.match(out, /BIOS-e820: \[mem 0x0000000000100000-0x000000000fffffff\] usable/);
  // on PVM vmd hands the kernel the initramfs inflated (docs/pvm.md)
  const initrd = await Deno.readFile(g.initrd);
  const size = hw.present ? initrd.length : (await inflateInitrd(initrd, 256 << 20)).length;
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
  "Linux (Debian lz4 bzImage: 64-bit boot protocol; on PVM decompressed by vmd, PVH entry) prints the same lines",
  async () => {
    const g = await prepareGuests({ log: () => {} });
    await bootToFirstLines(g.bzImage, 240_000);
  },
);

hardwareKvmTest(
  "Linux boots the initramfs to its marker, answers a command on the console, and reboots (hardware KVM)",
  async () => {
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
);

hardwareKvmTest(
  "Linux finds 4 vCPUs through ACPI (nproc says 4) and `poweroff -f` ends the VM powered off through S5 " +
    "(hardware KVM)",
  async () => {
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
);
