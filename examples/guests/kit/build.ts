/**
 * Builds the test-guest kit: freestanding C and assembly guests packaged as 32-bit ELF files with a PVH entry
 * note (`XEN_ELFNOTE_PHYS32_ENTRY`), linked at 1 MiB. The same file boots under `qemu-system-x86_64 -kernel`
 * and under vmd. Built with the machine's gcc and ld, cached under `.cache/guests/kit/` (or
 * `$VMD_CACHE/guests/kit`) by a hash of every kit source, the flags and the guest's name.
 * Needs read/write on the cache and the kit folder, and run for gcc/ld.
 *
 * @module
 */
import { cacheDir, GuestBuildError, shortHash } from "../build.ts";

export { GuestBuildError };

/** A kit guest and the exit-port value it writes when all went well. */
export interface KitGuestInfo {
  /** The value written to the exit port on success (QEMU then exits with `(status << 1) | 1`). */
  readonly status: number;
  /** What it does, in one line. */
  readonly purpose: string;
}

/** The kit's guests by name (each is `<name>.c` in this folder, defining `kmain`). */
export const KIT_GUESTS: Readonly<Record<string, KitGuestInfo>> = {
  hello: { status: 0x10, purpose: "prints a fixed banner and one formatted line" },
  pvh_info: { status: 0x11, purpose: "reports hvm_start_info: magic, version, cmdline, memory map, module" },
  pci_scan: { status: 0x13, purpose: "lists the functions present on PCI bus 0" },
  platform: { status: 0x14, purpose: "reads the CMOS RTC, self-tests the i8042, takes COM1's IRQ 4" },
  virtio_blk: {
    status: 0x20,
    purpose: "virtio-blk: capacity, GET_ID, batched reads, write, flush, bad sector",
  },
  virtio_rng: { status: 0x21, purpose: "virtio-rng: reads 4 KiB of entropy and checks it is not constant" },
  virtio_irq: { status: 0x23, purpose: "virtio-rng completion delivered as INTx through the I/O APIC" },
  blk_bench: {
    status: 0x24,
    purpose: "virtio-blk throughput: 64 KiB writes and reads, 4 KiB reads (bench/blk.ts)",
  },
  virtio_msix: { status: 0x25, purpose: "virtio-rng completion delivered as an MSI-X message" },
  blk_plant: {
    status: 0x27,
    purpose: "hostile: prints its disk's sector 0, then writes a qcow2 header there naming a host file",
  },
  virtio_hostile: {
    status: 0x22,
    purpose: "virtio-blk with hostile descriptors; good requests still succeed",
  },
  virtio_net: {
    status: 0x26,
    purpose: "virtio-net: DHCP lease (or ip= on the cmdline), then answers ARP and pings",
  },
  acpi_smp: {
    status: 0x28,
    purpose: "walks the ACPI tables as an OS does (RSDP, XSDT, MADT, FADT, DSDT) and starts every AP",
  },
  acpi_power: {
    status: 0,
    purpose: "arms the ACPI power button, takes its SCI, then enters S5 (never exits by the exit port)",
  },
  echo: { status: 0, purpose: "prints its cmdline, then echoes console input in upper case until stopped" },
  kbd: {
    status: 0,
    purpose: "sets up the i8042 keyboard, prints each IRQ 1 scancode, resets through 0xFE on Ctrl-Alt-Del " +
      "(with kbd.deaf: sets it up and ignores it)",
  },
  reboot: {
    status: 0,
    purpose:
      "asks for a reboot through the i8042 at once, or after delay_ms=N (never exits by the exit port)",
  },
  internal_error: {
    status: 0,
    purpose: "jumps to guest-physical memory with nothing behind it: KVM cannot fetch (internal error)",
  },
  triple: {
    status: 0,
    purpose: "loads an empty IDT and executes ud2: a triple fault (never exits by the exit port)",
  },
};

/** The helper library every guest links with (besides crt0.S). */
export const KIT_LIBRARY: readonly string[] = [
  "uart.c",
  "printf.c",
  "exit.c",
  "pci.c",
  "irq.c",
  "string.c",
  "virtio.c",
  "acpi.c",
];

/** The compiler flags for every kit object. */
export const KIT_CFLAGS: readonly string[] = [
  "-m32",
  "-march=i686",
  "-ffreestanding",
  "-fno-pic",
  "-fno-pie",
  "-fno-stack-protector",
  "-nostdlib",
  "-O2",
  "-Wall",
  "-Wextra",
  "-Werror",
  "-fno-builtin",
  "-fno-tree-loop-distribute-patterns",
  "-fno-asynchronous-unwind-tables",
  "-fno-unwind-tables",
  "-fcf-protection=none",
  "-mno-sse",
  "-mno-mmx",
  "-mno-80387",
];

/** The link flags (the script is `kit.ld` in this folder). */
export const KIT_LDFLAGS: readonly string[] = ["-m", "elf_i386", "-nostdlib", "--no-warn-rwx-segments"];

/** A built kit guest. */
export interface KitGuest {
  /** Its name. */
  readonly name: string;
  /** The ELF file in the cache. */
  readonly path: string;
  /** The ELF file's contents. */
  readonly bytes: Uint8Array;
}

const here = new URL(".", import.meta.url).pathname;

/** The kit's cache folder. */
export function kitCacheDir(): string {
  return `${cacheDir()}/kit`;
}

async function run(cmd: string, args: string[]): Promise<void> {
  let out;
  try {
    out = await new Deno.Command(cmd, { args, cwd: here, stdout: "piped", stderr: "piped" }).output();
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new GuestBuildError(
        `${cmd} is not installed: the test-guest kit needs gcc and binutils (apt-get install gcc binutils)`,
      );
    }
    throw new GuestBuildError(`cannot run ${cmd}: ${(e as Error).message}`);
  }
  if (!out.success) {
    throw new GuestBuildError(`${cmd} ${args.join(" ")} failed:\n${new TextDecoder().decode(out.stderr)}`);
  }
}

async function kitHash(name: string): Promise<string> {
  const files: string[] = [];
  for await (const e of Deno.readDir(here)) {
    if (e.isFile && /\.(c|h|S|ld)$/.test(e.name)) files.push(e.name);
  }
  files.sort();
  const enc = new TextEncoder();
  const parts: Uint8Array[] = [enc.encode([name, ...KIT_CFLAGS, ...KIT_LDFLAGS].join("\0"))];
  for (const f of files) parts.push(enc.encode(`\0${f}\0`), await Deno.readFile(`${here}${f}`));
  return await shortHash(parts);
}

/** Builds (or takes from the cache) the kit guest `name`; throws GuestBuildError naming what to install. */
export async function buildKitGuest(name: string): Promise<KitGuest> {
  if (!Object.hasOwn(KIT_GUESTS, name)) {
    throw new GuestBuildError(`no kit guest named ${name} (have: ${Object.keys(KIT_GUESTS).join(", ")})`);
  }
  const dir = kitCacheDir();
  const path = `${dir}/${name}-${await kitHash(name)}.elf`;
  try {
    return { name, path, bytes: await Deno.readFile(path) };
  } catch {
    // not cached yet
  }
  await Deno.mkdir(dir, { recursive: true });
  const tmp = await Deno.makeTempDir({ dir, prefix: `${name}-` });
  try {
    const sources = ["crt0.S", ...KIT_LIBRARY, `${name}.c`];
    const objects = sources.map((s) => `${tmp}/${s.replace(/\.[cS]$/, ".o")}`);
    await Promise.all(
      sources.map((s, i) => run("gcc", [...KIT_CFLAGS, "-I", here, "-c", "-o", objects[i], `${here}${s}`])),
    );
    await run("ld", [...KIT_LDFLAGS, "-T", `${here}kit.ld`, "-o", `${tmp}/g.elf`, ...objects]);
    await Deno.rename(`${tmp}/g.elf`, path);
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
  return { name, path, bytes: await Deno.readFile(path) };
}

if (import.meta.main) {
  for (const name of Deno.args.length > 0 ? Deno.args : Object.keys(KIT_GUESTS)) {
    console.log((await buildKitGuest(name)).path);
  }
}
