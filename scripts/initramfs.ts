/**
 * The test initramfs: busybox (static), an `/init` shell script, the virtio modules of one kernel, and the
 * device nodes the kernel needs before devtmpfs is mounted. `/init` mounts proc, sys and dev, loads the
 * modules in dependency order, prints {@link INITRAMFS_MARKER}, then runs a shell on the console when the
 * kernel command line has {@link SHELL_SWITCH} and otherwise (or when the shell exits) reboots with
 * `reboot -f` (with `reboot=k` on the command line, that is a write of 0xFE to port 0x64).
 *
 * @module
 */
import { gzipSync } from "node:zlib";
import { type CpioEntry, writeCpio } from "./cpio_newc.ts";

/** The line `/init` prints once the modules are loaded. */
export const INITRAMFS_MARKER = "VMD-INITRAMFS-READY";

/** The kernel command-line word that makes `/init` run a shell instead of rebooting. */
export const SHELL_SWITCH = "vmd.shell";

/**
 * The modules `/init` loads, in dependency order (Debian 12's 6.1 kernels build these as modules, or some
 * of them in): virtio-PCI transport, virtio-blk, virtio-net, virtio-rng, and ext4 with what it needs.
 */
export const INITRAMFS_MODULES: readonly string[] = [
  "virtio_pci_legacy_dev",
  "virtio_pci_modern_dev",
  "virtio_ring",
  "virtio",
  "virtio_pci",
  "virtio_blk",
  "failover",
  "net_failover",
  "virtio_net",
  "virtio-rng",
  "crc32c_generic",
  "crc16",
  "mbcache",
  "jbd2",
  "ext4",
];

/** A module to put in the initramfs: its name (as in the list) and its `.ko` contents. */
export interface InitramfsModule {
  /** Module file stem, e.g. "virtio-rng". */
  readonly name: string;
  /** The uncompressed `.ko` file. */
  readonly data: Uint8Array;
}

/** What goes into the initramfs. */
export interface InitramfsSpec {
  /** The static busybox binary. */
  readonly busybox: Uint8Array;
  /** Modules to load, in order. */
  readonly modules: readonly InitramfsModule[];
  /** Modules of the list that the kernel has built in (named in a comment of `/init`). */
  readonly builtin: readonly string[];
  /** The kernel release they belong to (recorded in `/etc/vmd-initramfs`). */
  readonly kernelVersion: string;
}

/** The text of `/init` for these modules. */
export function initScript(modules: readonly string[], builtin: readonly string[]): string {
  return `#!/bin/busybox sh
# /init of vmd's test initramfs (written by scripts/prepare_guests.ts).
# Built into this kernel, so not loaded here: ${builtin.length > 0 ? builtin.join(" ") : "(none)"}
/bin/busybox mkdir -p /proc /sys /dev /tmp /run /root
/bin/busybox --install -s /bin
export PATH=/bin HOME=/root
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
for m in ${modules.join(" ")}; do
  insmod /lib/modules/$m.ko || echo "vmd-init: insmod $m failed"
done
echo ${INITRAMFS_MARKER}
shell=0
for word in $(cat /proc/cmdline); do
  case "$word" in
  ${SHELL_SWITCH} | ${SHELL_SWITCH}=*) shell=1 ;;
  esac
done
if [ "$shell" = 1 ]; then
  setsid cttyhack sh
fi
reboot -f
`;
}

/** The initramfs as an uncompressed newc cpio archive. */
export function initramfsCpio(spec: InitramfsSpec): Uint8Array {
  const enc = new TextEncoder();
  const names = spec.modules.map((m) => m.name);
  const entries: CpioEntry[] = [
    ...["bin", "dev", "etc", "lib", "lib/modules", "proc", "root", "run", "sys", "tmp"].map((
      path,
    ): CpioEntry => ({ kind: "dir", path })),
    { kind: "char", path: "dev/console", major: 5, minor: 1, mode: 0o600 },
    { kind: "char", path: "dev/null", major: 1, minor: 3, mode: 0o666 },
    { kind: "file", path: "bin/busybox", data: spec.busybox, mode: 0o755 },
    { kind: "symlink", path: "bin/sh", target: "busybox" },
    { kind: "file", path: "init", data: enc.encode(initScript(names, spec.builtin)), mode: 0o755 },
    {
      kind: "file",
      path: "etc/vmd-initramfs",
      data: enc.encode(`kernel ${spec.kernelVersion}\nmodules ${names.join(" ")}\n`),
    },
    ...spec.modules.map((m): CpioEntry => ({ kind: "file", path: `lib/modules/${m.name}.ko`, data: m.data })),
  ];
  return writeCpio(entries);
}

/** The initramfs as the kernel takes it: a gzip-compressed newc cpio archive. */
export function buildInitramfs(spec: InitramfsSpec): Uint8Array {
  return new Uint8Array(gzipSync(initramfsCpio(spec), { level: 9 }));
}
