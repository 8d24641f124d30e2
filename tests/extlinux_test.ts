/**
 * A real boot loader from a disk vmd attaches: Debian's EXTLINUX installed at test time on an ext2 disk with
 * Debian's kernel, booted by SeaBIOS from vmd's virtio-blk disk and from QEMU `-M pc`'s in the same test.
 * On PVM (this machine's /dev/kvm), EXTLINUX's 32-bit core stops with a KVM emulation failure under vmd and
 * QEMU alike, before it loads the kernel: the first test checks that both print the same banner and stop the
 * same way; the second, which needs hardware virtualisation, that the kernel the loader loads prints its
 * first lines under both.
 */
import assert from "node:assert/strict";
import { buildExtlinuxDisk, EXTLINUX_BANNER, extlinuxMissing } from "../examples/guests/boot/extlinux.ts";
import { prepareGuests } from "../scripts/prepare_guests.ts";
import { DEFAULT_BIOS_PATH } from "../src/firmware/bios_image.ts";
import { Vm } from "../src/vm/vm.ts";
import type { VcpuExit } from "../src/vcpu/vcpu_exit.ts";
import { hardwareKvm, hardwareKvmTest, kvmTest } from "./kvm_support.ts";
import { QemuTimeoutError, runQemuBios } from "./qemu_support.ts";

const CMDLINE = "console=ttyS0 earlyprintk=ttyS0 panic=-1";

/** Boots `disk` through SeaBIOS under vmd until the VM ends, `until` appears, or `ms` pass. */
async function vmdBoot(
  disk: string,
  ms: number,
  until?: RegExp,
): Promise<{ output: string; exit: VcpuExit }> {
  const vm = Vm.create({
    memory: 256 << 20,
    platform: "pc",
    disks: [{ path: disk, readOnly: true }],
    rng: true,
    bios: { image: await Deno.readFile(DEFAULT_BIOS_PATH), name: DEFAULT_BIOS_PATH },
    bootDevice: "disk",
  });
  try {
    await vm.spawn();
    vm.run();
    const timer = setTimeout(() => void vm.stop(), ms);
    let output = "";
    const decoder = new TextDecoder();
    await vm.pumpConsole((b) => {
      output += decoder.decode(b, { stream: true });
      if (until !== undefined && until.test(output)) void vm.stop();
    });
    clearTimeout(timer);
    return { output, exit: (await vm.wait()).exit };
  } finally {
    vm.close();
  }
}

/** Boots `disk` under QEMU -M pc; a run QEMU had to kill (a guest stopped by an internal error) still counts. */
async function qemuBoot(disk: string, ms: number): Promise<{ output: string; killed: boolean }> {
  try {
    const r = await runQemuBios(
      [
        "-drive",
        `file=${disk},format=raw,if=none,id=d0,readonly=on`,
        "-device",
        "virtio-blk-pci,drive=d0",
        "-no-reboot",
      ],
      { memory: "256M", timeoutMs: ms },
    );
    return { output: r.output, killed: false };
  } catch (e) {
    if (e instanceof QemuTimeoutError) return { output: e.output, killed: true };
    throw e;
  }
}

async function extlinuxDisk(): Promise<string> {
  const g = await prepareGuests({ log: () => {} });
  return await buildExtlinuxDisk(g.bzImage, CMDLINE);
}

const hw = hardwareKvm();

kvmTest(
  "EXTLINUX on an ext2 disk boots through SeaBIOS under vmd as under QEMU -M pc: the same banner, the same end",
  async () => {
    const disk = await extlinuxDisk();
    const vmd = await vmdBoot(disk, 60_000, hw.present ? /Linux version/ : undefined);
    assert.match(vmd.output, /Booting from Hard Disk/, vmd.output);
    assert.match(vmd.output, EXTLINUX_BANNER, vmd.output);
    const qemu = await qemuBoot(disk, hw.present ? 60_000 : 30_000);
    assert.match(qemu.output, EXTLINUX_BANNER, qemu.output);
    assert.equal(vmd.output.match(EXTLINUX_BANNER)?.[0], qemu.output.match(EXTLINUX_BANNER)?.[0]);
    if (!hw.present) {
      // PVM: the loader's protected-mode core hits an instruction KVM cannot emulate here, under both (QEMU
      // then pauses the VM and is killed at the timeout)
      assert.equal(vmd.exit.kind, "internal-error", JSON.stringify(vmd.exit));
      assert.ok(qemu.killed, qemu.output);
      assert.doesNotMatch(vmd.output + qemu.output, /Decompressing Linux/);
      console.error(`(PVM, ${hw.why}: EXTLINUX stops before loading the kernel under vmd and QEMU alike)`);
    }
  },
  extlinuxMissing() ?? null,
);

hardwareKvmTest(
  "EXTLINUX loads Debian's kernel from vmd's disk: the kernel's first lines, as under QEMU -M pc",
  async () => {
    const disk = await extlinuxDisk();
    const vmd = await vmdBoot(disk, 90_000, /Linux version/);
    assert.match(vmd.output, EXTLINUX_BANNER, vmd.output);
    assert.match(vmd.output, /Decompressing Linux/, vmd.output);
    assert.match(vmd.output, /Linux version 6\./, vmd.output);
    const qemu = await qemuBoot(disk, 90_000);
    assert.match(qemu.output, /Decompressing Linux/, qemu.output);
    assert.match(qemu.output, /Linux version 6\./, qemu.output);
  },
  extlinuxMissing(),
);
