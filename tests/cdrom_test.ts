/**
 * The CD-ROM on real KVM: an El Torito no-emulation ISO built at test time, booted by SeaBIOS from vmd's
 * virtio-scsi CD-ROM through `vmd run -r`, `vmctl start -r` and vm.conf's `cdrom`, and by QEMU `-M pc` from its
 * own virtio-scsi CD-ROM in the same test, with the same line; the CD-ROM worker's confinement; bad input.
 */
import assert from "node:assert/strict";
import {
  BOOT_EXIT_STATUS,
  buildBootDisk,
  buildBootIso,
  CDROM_BOOT_PREFIX,
  DISK_BOOT_LINE,
} from "../examples/guests/boot/build.ts";
import { DEFAULT_BIOS_PATH } from "../src/firmware/bios_image.ts";
import { Vm } from "../src/vm/vm.ts";
import { kvmTest, runCli } from "./kvm_support.ts";
import { runQemuBios } from "./qemu_support.ts";
import { DENIED } from "./virtio_support.ts";
import { TestDaemon } from "./vmd_support.ts";

const CD_LINE = new RegExp(`${CDROM_BOOT_PREFIX}[0-9a-f]+ read=CD001\\r?\\n`);
/** SeaBIOS's path of vmd's CD-ROM when it is the first PCI function (no disk before it). */
const CD_PATH_SLOT1 = "/pci@i0cf8/*@1/*@0/*@0,0";

kvmTest(
  "vmd run -r boots an El Torito ISO from the virtio-scsi CD-ROM as QEMU -M pc does, same line",
  async () => {
    const iso = await buildBootIso();
    const log = await Deno.makeTempFile({ suffix: ".log" });
    try {
      const vmd = await runCli(["run", "-m", "64M", "-r", iso, "-B", "cdrom", "--bios-log", log]);
      const firmware = await Deno.readTextFile(log);
      assert.equal(vmd.code, BOOT_EXIT_STATUS, `${vmd.stderr}\nSeaBIOS log:\n${firmware}`);
      assert.match(vmd.stdout, CD_LINE, vmd.stdout);
      assert.match(vmd.stdout, /Booting from DVD\/CD/);
      assert.match(firmware, /found virtio-scsi at 00:01\.0/);
      assert.match(
        firmware,
        /virtio-scsi vendor='VMD' product='Virtual CD-ROM' rev='1\.0' type=5 removable=1/,
      );
      assert.ok(firmware.includes(`Searching bootorder for: ${CD_PATH_SLOT1}`), firmware);
      const qemu = await runQemuBios([
        "-drive",
        `file=${iso},format=raw,if=none,id=cd0,media=cdrom,readonly=on`,
        "-device",
        "virtio-scsi-pci,id=scsi0",
        "-device",
        "scsi-cd,drive=cd0,bus=scsi0.0,bootindex=0",
      ]);
      assert.equal(qemu.exitValue, BOOT_EXIT_STATUS, qemu.stderr);
      assert.match(qemu.output, CD_LINE, qemu.output);
      assert.equal(vmd.stdout.match(CD_LINE)?.[0].trim(), qemu.output.match(CD_LINE)?.[0].trim());
    } finally {
      await Deno.remove(log);
    }
  },
);

kvmTest(
  "-B cdrom boots the CD-ROM over a bootable disk; -B disk the disk; the CD-ROM worker is confined",
  async () => {
    const iso = await buildBootIso();
    const disk = await buildBootDisk();
    const dir = await Deno.makeTempDir();
    try {
      const secret = `${dir}/secret.txt`;
      await Deno.writeTextFile(secret, "not for device workers\n");
      await Deno.copyFile(disk, `${dir}/disk.img`);
      const bios = { image: await Deno.readFile(DEFAULT_BIOS_PATH), name: DEFAULT_BIOS_PATH };
      const boot = async (bootDevice: "cdrom" | "disk") => {
        const vm = Vm.create({
          memory: 64 << 20,
          platform: "pc",
          disks: [{ path: `${dir}/disk.img` }],
          cdrom: { path: iso },
          rng: true,
          bios,
          bootDevice,
        });
        try {
          await vm.spawn();
          const probes: Record<string, unknown> = {};
          for (const d of vm.virtioDevices) probes[d.label] = await d.probe(secret);
          vm.run();
          const timer = setTimeout(() => void vm.stop(), 60_000);
          let output = "";
          await vm.pumpConsole((b) => void (output += new TextDecoder().decode(b)));
          clearTimeout(timer);
          const scsi = vm.virtioDevices.find((d) => d.label === "virtio-scsi0");
          const counters = await scsi!.stats();
          return { output, exit: (await vm.wait()).exit, probes, counters };
        } finally {
          vm.close();
        }
      };
      const cd = await boot("cdrom");
      assert.deepEqual(cd.exit, { kind: "exit-port", status: BOOT_EXIT_STATUS }, cd.output);
      assert.match(cd.output, CD_LINE, cd.output);
      assert.deepEqual(cd.probes, { "virtio-blk0": DENIED, "virtio-scsi0": DENIED, "virtio-rng": DENIED });
      assert.ok(cd.counters.scsiReadBytes >= 2048 * 2, JSON.stringify(cd.counters));
      assert.equal(cd.counters.needsReset, 0);
      const hd = await boot("disk");
      assert.deepEqual(hd.exit, { kind: "exit-port", status: BOOT_EXIT_STATUS }, hd.output);
      assert.match(hd.output, new RegExp(DISK_BOOT_LINE), hd.output);
      assert.doesNotMatch(hd.output, CD_LINE);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
);

kvmTest(
  "vmd: vm.conf cdrom and vmctl start -r boot the ISO through the BIOS; a bad ISO is named",
  async () => {
    const iso = await buildBootIso();
    const d = await TestDaemon.start("");
    try {
      await Deno.copyFile(iso, `${d.dir}/conf.iso`);
      await Deno.writeTextFile(
        `${d.dir}/more.conf`,
        `vm "fromconf" {\n  memory 64M\n  cdrom "${d.dir}/conf.iso"\n  boot device cdrom\n}\n`,
      );
      assert.equal((await d.vmctl(["load", `${d.dir}/more.conf`])).code, 0);
      const conf = await d.waitState("fromconf", "stopped", 90_000).catch((e) => {
        throw new Error(`${e.message}\n${d.log}`);
      });
      assert.equal(conf.lastExit, `guest wrote ${BOOT_EXIT_STATUS} to the exit port`, d.log);
      await Deno.copyFile(iso, `${d.dir}/adhoc.iso`);
      const r = await d.vmctl(["start", "-m", "64M", "-r", `${d.dir}/adhoc.iso`, "-B", "cdrom", "adhoc"]);
      assert.equal(r.code, 0, r.stderr);
      const adhoc = await d.waitState("adhoc", "stopped", 90_000);
      assert.equal(adhoc.lastExit, `guest wrote ${BOOT_EXIT_STATUS} to the exit port`, d.log);
      await Deno.writeFile(`${d.dir}/tiny.iso`, new Uint8Array(100));
      const tiny = await d.vmctl(["start", "-m", "64M", "-r", `${d.dir}/tiny.iso`, "tiny"]);
      assert.equal(tiny.code, 1);
      assert.match(tiny.stderr, /tiny\.iso: a CD-ROM image of 100 bytes holds no 2048-byte block/);
      const dirIso = await d.vmctl(["start", "-m", "64M", "-r", d.dir, "diriso"]);
      assert.equal(dirIso.code, 1);
      assert.match(dirIso.stderr, /the CD-ROM image is a directory, not a regular file/);
    } finally {
      await d.cleanup();
    }
  },
);

kvmTest(
  "vmd run: a missing or too small ISO and -B cdrom without a CD-ROM are refused, naming the file",
  async () => {
    const missing = await runCli(["run", "-m", "64M", "-r", "/nonexistent/x.iso"]);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /\/nonexistent\/x\.iso: no such CD-ROM image: check the path/);
    const tiny = await Deno.makeTempFile({ suffix: ".iso" });
    try {
      await Deno.writeFile(tiny, new Uint8Array(2047));
      const r = await runCli(["run", "-m", "64M", "-r", tiny]);
      assert.equal(r.code, 1);
      assert.match(r.stderr, new RegExp(`${tiny}: a CD-ROM image of 2047 bytes holds no 2048-byte block`));
    } finally {
      await Deno.remove(tiny);
    }
    const none = await runCli(["run", "-m", "64M", "-B", "cdrom"]);
    assert.equal(none.code, 1);
    assert.match(none.stderr, /boot device cdrom: the VM has no CD-ROM; attach one \(-r\)/);
  },
);
