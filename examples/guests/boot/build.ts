/**
 * Builds the BIOS boot test media with gcc/ld/objcopy and xorriso, cached by source hash under the guest
 * cache: from `boot_sector.S`, a raw disk whose sector 0 is the boot sector and whose sector 1 holds a line it
 * prints, and an El Torito no-emulation CD image booting the CD variant; from `acpi_probe.S`, a raw disk that
 * lists the ACPI tables the firmware left. Needs read/write on the cache and run for gcc, ld, objcopy and
 * xorriso.
 *
 * @module
 */
import { cacheDir, GuestBuildError, runBuildTool, shortHash } from "../build.ts";

const here = new URL(".", import.meta.url).pathname;
/** What the disk's sector 1 says (the boot sector reads it back through the BIOS and prints it). */
export const DISK_SECTOR_1_TEXT = "VMD-DISK-SECTOR-1";
/** The line a BIOS boot of the test disk prints (the boot drive is the first hard disk, 0x80). */
export const DISK_BOOT_LINE = `VMD-BOOT disk dl=80 read=${DISK_SECTOR_1_TEXT}`;
/** The start of the line a BIOS boot of the test CD prints (then dl=<drive> read=CD001). */
export const CDROM_BOOT_PREFIX = "VMD-BOOT cdrom dl=";
/** The status the boot sector writes to the exit port on success. */
export const BOOT_EXIT_STATUS = 0x31;
/** The status the ACPI probe writes to the exit port once it has listed the tables. */
export const ACPI_PROBE_EXIT_STATUS = 0x31;
/** Bytes of the ACPI probe its boot sector loads (itself and the 7 sectors after it). */
const ACPI_PROBE_MAX = 8 * 512;

function run(cmd: string, args: string[]): Promise<void> {
  return runBuildTool(cmd, args, "gcc, binutils and xorriso");
}

/** Assembles `source` (in this directory) into a flat binary linked at 0x7c00. */
async function flatBinary(tmp: string, source: string, defs: string[]): Promise<Uint8Array> {
  await run("gcc", ["-c", "-nostdinc", ...defs, "-o", `${tmp}/b.o`, `${here}${source}`]);
  await run("ld", [
    "-m",
    "elf_x86_64",
    "-nostdlib",
    "-Ttext=0x7c00",
    "-e",
    "_start",
    "-o",
    `${tmp}/b.elf`,
    `${tmp}/b.o`,
  ]);
  await run("objcopy", ["-O", "binary", "-j", ".text", `${tmp}/b.elf`, `${tmp}/b.bin`]);
  return await Deno.readFile(`${tmp}/b.bin`);
}

async function bootSector(tmp: string, cdrom: boolean): Promise<Uint8Array> {
  const defs = cdrom
    ? ["-DCDROM=1", "-DREAD_LBA=16", "-DREAD_OFF=1"]
    : ["-DCDROM=0", "-DREAD_LBA=1", "-DREAD_OFF=0"];
  const bin = await flatBinary(tmp, "boot_sector.S", defs);
  if (bin.length !== 512) throw new GuestBuildError(`boot sector is ${bin.length} bytes, not 512`);
  return bin;
}

async function cached(
  kind: string,
  ext: string,
  make: (tmp: string, out: string) => Promise<void>,
  source = "boot_sector.S",
): Promise<string> {
  const dir = cacheDir();
  const hash = await shortHash([await Deno.readFile(`${here}${source}`), new TextEncoder().encode(kind)]);
  const out = `${dir}/boot-${kind}-${hash}.${ext}`;
  try {
    await Deno.stat(out);
    return out;
  } catch {
    // not built yet
  }
  await Deno.mkdir(dir, { recursive: true });
  const tmp = await Deno.makeTempDir({ dir, prefix: `boot-${kind}-` });
  try {
    await make(tmp, `${tmp}/out`);
    await Deno.rename(`${tmp}/out`, out);
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
  return out;
}

/** The path of the test disk (1 MiB raw: boot sector, then the sector-1 line). */
export function buildBootDisk(): Promise<string> {
  return cached("disk", "img", async (tmp, out) => {
    const disk = new Uint8Array(1 << 20);
    disk.set(await bootSector(tmp, false), 0);
    disk.set(new TextEncoder().encode(DISK_SECTOR_1_TEXT), 512);
    await Deno.writeFile(out, disk);
  });
}

/** The path of the test CD image (ISO 9660 with an El Torito no-emulation boot image). */
export function buildBootIso(): Promise<string> {
  return cached("cdrom", "iso", async (tmp, out) => {
    await Deno.mkdir(`${tmp}/root`);
    const image = new Uint8Array(2048);
    image.set(await bootSector(tmp, true));
    await Deno.writeFile(`${tmp}/root/boot.img`, image);
    await Deno.writeTextFile(`${tmp}/root/README.TXT`, "vmd BIOS boot test CD\n");
    await run("xorriso", [
      "-as",
      "mkisofs",
      "-quiet",
      "-V",
      "VMD_BOOT_TEST",
      "-b",
      "boot.img",
      "-no-emul-boot",
      "-boot-load-size",
      "4",
      "-o",
      out,
      `${tmp}/root`,
    ]);
  });
}

/** The path of the ACPI probe disk (1 MiB raw: the probe from sector 0 on). */
export function buildAcpiProbeDisk(): Promise<string> {
  return cached("acpi", "img", async (tmp, out) => {
    const bin = await flatBinary(tmp, "acpi_probe.S", []);
    if (bin.length > ACPI_PROBE_MAX || bin[510] !== 0x55 || bin[511] !== 0xaa) {
      throw new GuestBuildError(
        `acpi_probe.S: ${bin.length} bytes (at most ${ACPI_PROBE_MAX}, boot signature at 510)`,
      );
    }
    const disk = new Uint8Array(1 << 20);
    disk.set(bin, 0);
    await Deno.writeFile(out, disk);
  }, "acpi_probe.S");
}
