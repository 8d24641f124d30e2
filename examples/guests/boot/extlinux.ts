/**
 * Builds a disk a real boot loader boots: an unpartitioned ext2 volume with Debian's EXTLINUX installed in its
 * boot sector, a Linux bzImage and an `extlinux.conf` that boots it at once with a command line; cached by the
 * kernel's and the command line's hash under the guest cache. Installing EXTLINUX needs a mounted file system:
 * this runs mkfs.ext2, mount (a loop device: root) and extlinux (Debian's `extlinux` and `syslinux-common`).
 *
 * @module
 */
import { cacheDir, runBuildTool, shortHash } from "../build.ts";

/** The banner line the boot loader prints first (its version, then its build date and copyright). */
export const EXTLINUX_BANNER = /(?:SYS|EXT)LINUX \d+\.\d+ EDD \d+ Copyright \(C\) [^\r\n]*/;

function run(cmd: string, args: string[]): Promise<void> {
  return runBuildTool(cmd, args, "extlinux, syslinux-common and e2fsprogs");
}

/** Why this host cannot build the disk (not root, a tool missing), or undefined. */
export function extlinuxMissing(): string | undefined {
  if (Deno.uid() !== 0) return "installing EXTLINUX mounts a loop device, which needs root";
  for (const tool of ["/usr/bin/extlinux", "/usr/sbin/mkfs.ext2", "/usr/bin/mount"]) {
    try {
      Deno.statSync(tool);
    } catch {
      return `${tool} is missing (install extlinux and e2fsprogs)`;
    }
  }
  return undefined;
}

/** Returns the path of a raw disk whose EXTLINUX boots `kernel` (a bzImage) with `cmdline`. */
export async function buildExtlinuxDisk(kernel: string, cmdline: string): Promise<string> {
  const bytes = await Deno.readFile(kernel);
  const enc = new TextEncoder();
  const hash = await shortHash([bytes, enc.encode(cmdline), enc.encode("extlinux-1")]);
  const dir = cacheDir();
  const out = `${dir}/extlinux-${hash}.img`;
  try {
    await Deno.stat(out);
    return out;
  } catch {
    // not built yet
  }
  await Deno.mkdir(dir, { recursive: true });
  const tmp = await Deno.makeTempDir({ dir, prefix: "extlinux-" });
  const mnt = `${tmp}/mnt`;
  try {
    const img = `${tmp}/disk.img`;
    const size = Math.ceil((bytes.length + (16 << 20)) / (1 << 20)) * (1 << 20);
    await Deno.writeFile(img, new Uint8Array(0));
    await Deno.truncate(img, size);
    await run("mkfs.ext2", ["-q", "-F", "-L", "VMDBOOT", img]);
    await Deno.mkdir(mnt);
    await run("mount", ["-o", "loop", img, mnt]);
    try {
      await run("extlinux", ["--install", mnt]);
      await Deno.writeFile(`${mnt}/vmlinuz`, bytes);
      await Deno.writeTextFile(
        `${mnt}/extlinux.conf`,
        `PROMPT 0\nTIMEOUT 0\nDEFAULT linux\nLABEL linux\n  LINUX /vmlinuz\n  APPEND ${cmdline}\n`,
      );
    } finally {
      await run("umount", [mnt]);
    }
    await Deno.rename(img, out);
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
  return out;
}
