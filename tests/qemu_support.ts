/**
 * Runs a PVH ELF guest under QEMU with KVM, the reference the test-guest kit is checked against:
 * `qemu-system-x86_64 -accel kvm -machine pc|microvm -nodefaults -nographic -serial stdio -display none
 * -kernel guest.elf -device isa-debug-exit,iobase=0xf4,iosize=4 -m 64M`, the console collected from stdout,
 * bounded by a timeout. On `pc`, SeaBIOS's serial console (its banner and "Booting from ROM..") is turned off
 * through the `etc/sercon-port` fw_cfg file so that the output is the guest's alone.
 *
 * @module
 */

/** The QEMU binary. */
export const QEMU = "qemu-system-x86_64";

/** How to run a guest under QEMU. */
export interface QemuOptions {
  /** Kernel command line (`-append`). */
  readonly append?: string;
  /** A module (`-initrd`). */
  readonly initrd?: string;
  /** Guest RAM: bytes (a whole number of MiB) or a QEMU size such as "64M". Default 64 MiB. */
  readonly memory?: number | string;
  /** Machine type. Default "pc". */
  readonly machine?: "pc" | "microvm" | "q35";
  /** Kill QEMU after this long. Default 20 s. */
  readonly timeoutMs?: number;
  /** More arguments, appended last (devices for later tests). */
  readonly extraArgs?: readonly string[];
  /**
   * A human-monitor command (e.g. `system_powerdown`) to send once the console output contains `after`;
   * the monitor listens on a unix socket in a temporary folder.
   */
  readonly monitor?: { readonly after: string; readonly command: string };
}

/** What a QEMU run produced. */
export interface QemuRun {
  /** The guest's console output (QEMU's stdout), decoded as UTF-8. */
  readonly output: string;
  /** QEMU's exit status; after a write of v to the exit port it is `(v << 1) | 1` (modulo 256). */
  readonly status: number;
  /** The value the guest wrote to the exit port, when the status says it used it (`status` odd). */
  readonly exitValue: number | undefined;
  /** QEMU's stderr (warnings such as unsupported CPUID features on this host). */
  readonly stderr: string;
  /** The command line that ran, program first. */
  readonly command: readonly string[];
  /** Wall time from spawn to exit, in milliseconds. */
  readonly elapsedMs: number;
}

/** QEMU is not installed. */
export class QemuMissingError extends Error {
  /** Builds the error. */
  constructor() {
    super(`${QEMU} is not installed: apt-get install qemu-system-x86 (.ci/run does this)`);
    this.name = "QemuMissingError";
  }
}

/** QEMU did not exit within the timeout; it has been killed. */
export class QemuTimeoutError extends Error {
  /** The console output collected before the kill. */
  readonly output: string;
  /** Builds the error. */
  constructor(timeoutMs: number, command: readonly string[], output: string) {
    super(
      `QEMU did not exit within ${timeoutMs} ms (killed); the guest probably never wrote the exit port.\n` +
        `command: ${command.join(" ")}\noutput so far: ${JSON.stringify(output.slice(-500))}`,
    );
    this.name = "QemuTimeoutError";
    this.output = output;
  }
}

const MiB = 1 << 20;

let serconOff: string | undefined;

/** A one-byte file holding 0: as SeaBIOS's `etc/sercon-port` it turns its serial console off. */
async function serconOffFile(): Promise<string> {
  if (serconOff !== undefined) return serconOff;
  const dir = `${Deno.env.get("VMD_CACHE") ?? new URL("../.cache", import.meta.url).pathname}/qemu`;
  await Deno.mkdir(dir, { recursive: true });
  const path = `${dir}/sercon-port-0.bin`;
  const tmp = await Deno.makeTempFile({ dir });
  await Deno.writeFile(tmp, new Uint8Array([0]));
  await Deno.rename(tmp, path);
  serconOff = path;
  return path;
}

function memoryArg(memory: number | string | undefined): string {
  if (memory === undefined) return "64M";
  if (typeof memory === "string") return memory;
  if (memory <= 0 || memory % MiB !== 0) {
    throw new RangeError(`memory ${memory} is not a whole number of MiB`);
  }
  return `${memory / MiB}M`;
}

/** The QEMU argument vector (without the program) for a guest; see the module doc for its shape. */
export async function qemuArgs(elfPath: string, opts: QemuOptions = {}): Promise<string[]> {
  const machine = opts.machine ?? "pc";
  const args = ["-accel", "kvm", "-machine", machine, "-nodefaults", "-nographic", "-serial", "stdio"];
  args.push("-display", "none", "-kernel", elfPath);
  args.push("-device", "isa-debug-exit,iobase=0xf4,iosize=4", "-m", memoryArg(opts.memory));
  if (opts.append !== undefined) args.push("-append", opts.append);
  if (opts.initrd !== undefined) args.push("-initrd", opts.initrd);
  if (machine !== "microvm") args.push("-fw_cfg", `name=etc/sercon-port,file=${await serconOffFile()}`);
  args.push(...(opts.extraArgs ?? []));
  return args;
}

/**
 * Boots `elfPath` (a PVH ELF) under QEMU with KVM and waits for it to exit; returns its console output and
 * exit status. Throws QemuMissingError when QEMU is absent and QemuTimeoutError (after killing it) when it
 * runs past `timeoutMs`.
 */
export async function runUnderQemu(elfPath: string, opts: QemuOptions = {}): Promise<QemuRun> {
  return await runQemu(await qemuArgs(elfPath, opts), opts.timeoutMs ?? 20_000, opts.monitor);
}

/**
 * Boots a `-M pc` QEMU through its BIOS (SeaBIOS, with its serial console on COM1 as vmd gives it) with the
 * exit port and `extraArgs` (the boot media), and waits for it to exit.
 */
export async function runQemuBios(
  extraArgs: readonly string[],
  opts: { readonly memory?: number | string; readonly timeoutMs?: number } = {},
): Promise<QemuRun> {
  const args = ["-accel", "kvm", "-machine", "pc", "-nodefaults", "-nographic", "-serial", "stdio"];
  args.push(
    "-display",
    "none",
    "-device",
    "isa-debug-exit,iobase=0xf4,iosize=4",
    "-m",
    memoryArg(opts.memory),
  );
  return await runQemu([...args, ...extraArgs], opts.timeoutMs ?? 30_000);
}

/** Runs QEMU with `args` until it exits (killed after `timeoutMs`), sending `monitor`'s command when asked; see {@link runUnderQemu}. */
export async function runQemu(
  args: readonly string[],
  timeoutMs: number,
  monitor?: QemuOptions["monitor"],
): Promise<QemuRun> {
  const extra: string[] = [];
  const monitorDir = monitor === undefined ? undefined : await Deno.makeTempDir({ prefix: "vmd-qemu-mon-" });
  const monitorPath = `${monitorDir}/monitor.sock`;
  if (monitorDir !== undefined) extra.push("-monitor", `unix:${monitorPath},server=on,wait=off`);
  let monitorSent = false;
  const sendMonitor = async (command: string) => {
    const conn = await Deno.connect({ transport: "unix", path: monitorPath });
    try {
      await conn.write(new TextEncoder().encode(`${command}\n`));
      // the monitor prints its banner and echoes the command once it has read it
      const buf = new Uint8Array(4096);
      let seen = "";
      while (!seen.includes(command)) {
        const n = await conn.read(buf);
        if (n === null) break;
        seen += new TextDecoder().decode(buf.subarray(0, n));
      }
    } finally {
      conn.close();
    }
  };
  const command = [QEMU, ...args, ...extra];
  let child: Deno.ChildProcess;
  const started = performance.now();
  try {
    child = new Deno.Command(QEMU, {
      args: [...args, ...extra],
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    })
      .spawn();
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) throw new QemuMissingError();
    throw e;
  }
  const decoder = new TextDecoder();
  let output = "";
  const readOut = (async () => {
    for await (const chunk of child.stdout) {
      output += decoder.decode(chunk, { stream: true });
      if (monitor !== undefined && !monitorSent && output.includes(monitor.after)) {
        monitorSent = true;
        await sendMonitor(monitor.command);
      }
    }
  })();
  const readErr = new Response(child.stderr).text();
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    try {
      child.kill("SIGKILL");
    } catch {
      // already gone
    }
  }, timeoutMs);
  try {
    const st = await child.status;
    await readOut;
    const stderr = await readErr;
    if (timedOut) throw new QemuTimeoutError(timeoutMs, command, output);
    const status = st.code;
    const exitValue = status % 2 === 1 ? status >> 1 : undefined;
    return { output, status, exitValue, stderr, command, elapsedMs: performance.now() - started };
  } finally {
    clearTimeout(timer);
    if (monitorDir !== undefined) await Deno.remove(monitorDir, { recursive: true });
  }
}
