/**
 * Test support for tests that need /dev/kvm: they run where it exists, fail loudly under CI=true where it
 * does not, and are reported as ignored (never as passed) elsewhere.
 *
 * @module
 */
import { buildFlatGuest } from "../examples/guests/build.ts";
import { loadFlatGuest } from "../src/vm/flat_guest.ts";
import { Vm, type VmDisk, type VmNic, type VmResult } from "../src/vm/vm.ts";

function hasKvm(): boolean {
  try {
    Deno.statSync("/dev/kvm");
    return true;
  } catch {
    return false;
  }
}

/** True when /dev/kvm is present. */
export const KVM_AVAILABLE: boolean = hasKvm();
const IN_CI = Deno.env.get("CI") === "true";

/**
 * Registers a test that needs KVM and, when `missing` names one, another prerequisite this machine lacks:
 * such a test is reported as ignored with the reason printed, never as passed; under CI=true it fails.
 */
export function kvmTest(name: string, fn: () => Promise<void> | void, missing: string | null = null): void {
  const lacking = !KVM_AVAILABLE ? "no /dev/kvm" : missing;
  if (lacking !== null && IN_CI) {
    Deno.test(name, () => {
      throw new Error(`${lacking}: this test must run under CI (CI=true)`);
    });
    return;
  }
  if (lacking !== null) console.error(`(${lacking}: "${name}" is not run here)`);
  Deno.test({ name, ignore: lacking !== null, sanitizeOps: false, sanitizeResources: false, fn });
}

/** What running a flat guest produced. */
export interface GuestRun {
  /** Console output. */
  readonly output: string;
  /** How the VM ended. */
  readonly result: VmResult;
}

/** Boots the example guest `name` in a fresh VM, collects its console until it ends, closes the VM. */
export async function runFlatGuest(name: string, memory = 16 << 20): Promise<GuestRun> {
  const guest = await buildFlatGuest(name);
  const vm = Vm.create({ memory });
  try {
    loadFlatGuest(vm, guest);
    await vm.start();
    const decoder = new TextDecoder();
    let output = "";
    await vm.pumpConsole((b) => {
      output += decoder.decode(b, { stream: true });
    });
    return { output, result: await vm.wait() };
  } finally {
    vm.close();
  }
}

/** How to boot a kernel in a test. */
export interface KernelRunOptions {
  /** Kernel command line. */
  readonly cmdline?: string;
  /** An initrd file. */
  readonly initrd?: string;
  /** Guest RAM in bytes (default 64 MiB). */
  readonly memory?: number;
  /** vCPUs (default 1). */
  readonly cpus?: number;
  /** Stop the VM after this long (default 20 s); the result then says `stopped`. */
  readonly timeoutMs?: number;
  /** Stop the VM as soon as the console output contains this (after it has been copied). */
  readonly until?: string;
  /** Called with the console output so far, each time more arrives. */
  readonly onOutput?: (output: string, vm: Vm) => void;
  /** Disks (virtio-blk). */
  readonly disks?: readonly VmDisk[];
  /** A virtio-rng device. */
  readonly rng?: boolean;
  /** virtio-net functions on taps. */
  readonly nics?: readonly VmNic[];
  /** Called after the VM has ended, before it is closed (its device workers still answer). */
  readonly afterRun?: (vm: Vm) => Promise<void>;
  /** Called after the VM's workers are up, before its vCPUs run. */
  readonly beforeRun?: (vm: Vm) => Promise<void>;
}

/** Boots `kernelPath` (PVH ELF or bzImage) on the PC platform and collects its console until it ends. */
export async function runKernel(kernelPath: string, o: KernelRunOptions = {}): Promise<GuestRun> {
  const { bootKernel } = await import("../src/vm/boot_kernel.ts");
  const vm = Vm.create({
    memory: o.memory ?? 64 << 20,
    vcpus: o.cpus,
    platform: "pc",
    disks: o.disks,
    rng: o.rng,
    nics: o.nics,
  });
  try {
    await bootKernel(vm, await Deno.readFile(kernelPath), {
      kernelName: kernelPath,
      cmdline: o.cmdline ?? "console=ttyS0",
      initrd: o.initrd === undefined ? undefined : await Deno.readFile(o.initrd),
      initrdName: o.initrd ?? "initrd",
    });
    await vm.spawn();
    await o.beforeRun?.(vm);
    vm.run();
    const timer = setTimeout(() => void vm.stop(), o.timeoutMs ?? 20_000);
    const decoder = new TextDecoder();
    let output = "";
    await vm.pumpConsole((b) => {
      output += decoder.decode(b, { stream: true });
      o.onOutput?.(output, vm);
      if (o.until !== undefined && output.includes(o.until)) void vm.stop();
    });
    clearTimeout(timer);
    const result = await vm.wait();
    await o.afterRun?.(vm);
    return { output, result };
  } finally {
    vm.close();
  }
}

/** Whether this host has hardware virtualisation (vmx/svm), where a stock Linux boots in seconds; and why not. */
export function hardwareKvm(): { present: boolean; why: string } {
  const cpuinfo = Deno.readTextFileSync("/proc/cpuinfo");
  const flags = /^flags\s*:(.*)$/m.exec(cpuinfo)?.[1].split(" ") ?? [];
  if (flags.includes("vmx") || flags.includes("svm")) return { present: true, why: "vmx/svm present" };
  return {
    present: false,
    why: "no vmx/svm in /proc/cpuinfo: this host's /dev/kvm is PVM (KVM without hardware virtualisation), " +
      "where a stock kernel's boot to the shell takes more than 30 minutes (docs/pvm.md)",
  };
}

/**
 * Registers a test that needs hardware KVM (a stock Linux booting in seconds): on a host without it (PVM) it
 * is reported as ignored with the reason printed, in CI too (CI machines are PVM); elsewhere a
 * {@link kvmTest} with `missing` as its other prerequisite.
 */
export function hardwareKvmTest(
  name: string,
  fn: () => Promise<void> | void,
  missing: string | null = null,
): void {
  const hw = hardwareKvm();
  if (!hw.present) {
    console.error(`("${name}" is not run here: ${hw.why})`);
    Deno.test({ name, ignore: true, fn });
    return;
  }
  kvmTest(name, fn, missing);
}

/** What a `cli.ts` subprocess printed and returned. */
export interface CliRun {
  /** Exit status. */
  readonly code: number;
  /** Standard output. */
  readonly stdout: string;
  /** Standard error. */
  readonly stderr: string;
}

/** The Deno flags the installed `vmd` would need for the commands the tests run (no net). */
export const CLI_FLAGS: readonly string[] = [
  "--allow-ffi",
  "--allow-read",
  "--allow-write",
  "--allow-env",
  "--allow-run",
  "--allow-sys",
];

/** Runs `cli.ts args...` as a subprocess from the project root with `flags` (default {@link CLI_FLAGS}). */
export async function runCli(args: readonly string[], flags: readonly string[] = CLI_FLAGS): Promise<CliRun> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", ...flags, "cli.ts", ...args],
    cwd: new URL("..", import.meta.url).pathname,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const d = new TextDecoder();
  return { code: out.code, stdout: d.decode(out.stdout), stderr: d.decode(out.stderr) };
}
