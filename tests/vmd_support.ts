/**
 * Test support for the daemon: a real `vmd` started through cli.ts on a private socket in a temp folder,
 * vmctl run as a real subprocess (optionally as another user), and direct protocol requests. Every wait is
 * bounded.
 *
 * @module
 */
import { buildKitGuest } from "../examples/guests/kit/build.ts";
import { fetchAllStatus, sendRequest } from "../src/vmctl/client.ts";
import type { Reply, Request, VmStatus } from "../src/vmd/protocol.ts";
import { v8FlagsArg } from "../src/vmd/v8_flags.ts";

const root = new URL("../", import.meta.url).pathname;
const cli = `${root}cli.ts`;

/** Paths of the kit guests the daemon tests boot. */
export async function kitPaths(): Promise<{ echo: string; reboot: string; hello: string }> {
  const [echo, reboot, hello] = await Promise.all(["echo", "reboot", "hello"].map(buildKitGuest));
  return { echo: echo.path, reboot: reboot.path, hello: hello.path };
}

/** Polls `check` every 50 ms until it returns a value other than undefined, or fails after `ms`. */
export async function until<T>(
  what: string,
  ms: number,
  check: () => Promise<T | undefined> | T | undefined,
): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await check();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** What a vmctl run printed. */
export interface CliResult {
  /** Exit status. */
  readonly code: number;
  /** Standard output. */
  readonly stdout: string;
  /** Standard error. */
  readonly stderr: string;
}

/** How to run vmctl as another user. */
export interface AsUser {
  /** uid. */
  readonly uid: number;
  /** gid. */
  readonly gid: number;
  /** A DENO_DIR that user may write. */
  readonly denoDir: string;
}

let staged: Promise<{ deno: string; cli: string }> | undefined;
let stagedPaths: { deno: string; cli: string } | undefined;

/**
 * A copy of the Deno binary and of the client's sources in a world-readable temp folder, for running vmctl as
 * another user: the checkout itself may sit below folders only root can enter (CI clones into a 0700 temp
 * folder).
 */
export function stagedForOtherUsers(): Promise<{ deno: string; cli: string }> {
  staged ??= (async () => {
    const dir = await Deno.makeTempDir({ prefix: "vmd-as-user-" });
    globalThis.addEventListener("unload", () => Deno.removeSync(dir, { recursive: true }));
    const copy = async (from: string, to: string) => {
      const r = await new Deno.Command("cp", { args: ["-r", from, to], stderr: "piped" }).output();
      if (!r.success) throw new Error(`cp ${from}: ${new TextDecoder().decode(r.stderr)}`);
    };
    await Deno.copyFile(Deno.execPath(), `${dir}/deno`);
    for (const entry of ["cli.ts", "deno.json", "package.json", "src", "ffi", "examples", "scripts"]) {
      await copy(`${root}${entry}`, `${dir}/${entry}`);
    }
    await Deno.mkdir(`${dir}/node_modules`);
    await copy(`${root}node_modules/ts-pattern`, `${dir}/node_modules/ts-pattern`);
    const r = await new Deno.Command("chmod", { args: ["-R", "a+rX", dir] }).output();
    if (!r.success) throw new Error(`chmod -R a+rX ${dir} failed`);
    await Deno.chmod(`${dir}/deno`, 0o755);
    stagedPaths = { deno: `${dir}/deno`, cli: `${dir}/cli.ts` };
    return stagedPaths;
  })();
  return staged;
}

/**
 * The command line of `vmctl args...`, run as another user through setpriv(1) when `as` is given (after
 * {@link stagedForOtherUsers} has resolved).
 */
function vmctlCommand(args: readonly string[], as?: AsUser): string[] {
  if (as === undefined) return [Deno.execPath(), "run", "-A", cli, "vmctl", ...args];
  if (stagedPaths === undefined) {
    throw new Error("await stagedForOtherUsers() before running vmctl as another user");
  }
  const deno = [stagedPaths.deno, "run", "-A", stagedPaths.cli, "vmctl", ...args];
  return [
    "setpriv",
    `--reuid=${as.uid}`,
    `--regid=${as.gid}`,
    "--init-groups",
    "env",
    `DENO_DIR=${as.denoDir}`,
    `HOME=${as.denoDir}`,
    ...deno,
  ];
}

/** A daemon under test. */
export class TestDaemon {
  /** Its folder (config, socket, log). */
  readonly dir: string;
  /** The socket path. */
  readonly socket: string;
  /** The vmd process. */
  readonly proc: Deno.ChildProcess;
  #log = "";
  readonly #logDone: Promise<void>;

  private constructor(dir: string, proc: Deno.ChildProcess) {
    this.dir = dir;
    this.socket = `${dir}/vmd.sock`;
    this.proc = proc;
    const dec = new TextDecoder();
    this.#logDone = (async () => {
      for await (const c of proc.stderr) this.#log += dec.decode(c, { stream: true });
    })();
  }

  /**
   * Writes `config` to vm.conf in a new folder and starts vmd on it (under `wrap`, e.g. `ip netns exec ns`,
   * when given); resolves once the socket answers.
   */
  static async start(
    config: string,
    env: Record<string, string> = {},
    wrap: readonly string[] = [],
  ): Promise<TestDaemon> {
    const dir = await Deno.makeTempDir({ prefix: "vmd-test-" });
    await Deno.chmod(dir, 0o755);
    await Deno.writeTextFile(`${dir}/vm.conf`, config);
    const argv = [
      ...wrap,
      Deno.execPath(),
      "run",
      "-A",
      v8FlagsArg(),
      cli,
      "-d",
      "-v",
      "-f",
      `${dir}/vm.conf`,
    ];
    const proc = new Deno.Command(argv[0], {
      args: argv.slice(1),
      env: { VMD_SOCKET: `${dir}/vmd.sock`, ...env },
      stdin: "null",
      stdout: "null",
      stderr: "piped",
    }).spawn();
    const d = new TestDaemon(dir, proc);
    await until("vmd's socket", 15_000, async () => {
      try {
        await sendRequest({ v: 1, type: "status", target: null }, d.socket);
        return true;
      } catch {
        return undefined;
      }
    });
    return d;
  }

  /** The daemon's log so far. */
  get log(): string {
    return this.#log;
  }

  /** The log without the `control: status` lines a test's polling adds: what a failure message shows. */
  get logWithoutPolling(): string {
    return this.#log.split("\n").filter((l) => !l.includes("control: status")).join("\n");
  }

  /** One request over the socket. */
  request(req: Request): Promise<Reply> {
    return sendRequest(req, this.socket);
  }

  /** Every VM's status (every page). */
  async status(): Promise<VmStatus[]> {
    const r = await fetchAllStatus(this.socket);
    if (!Array.isArray(r)) throw new Error(`status failed: ${JSON.stringify(r)}`);
    return r;
  }

  /** One VM's status by name. */
  async vm(name: string): Promise<VmStatus> {
    const vm = (await this.status()).find((v) => v.name === name);
    if (vm === undefined) throw new Error(`no vm ${name}`);
    return vm;
  }

  /** Waits until VM `name` is in `state`. */
  waitState(name: string, state: VmStatus["state"], ms = 15_000): Promise<VmStatus> {
    return until(`vm ${name} ${state}`, ms, async () => {
      const vm = (await this.status()).find((v) => v.name === name);
      return vm?.state === state ? vm : undefined;
    });
  }

  /** `vmctl args...` as a subprocess (as another user with `as`, in `cwd`), with `input` on its stdin. */
  async vmctl(
    args: string[],
    o: { as?: AsUser; input?: string; timeoutMs?: number; cwd?: string } = {},
  ): Promise<CliResult> {
    const cmd = vmctlCommand(args, o.as);
    const child = new Deno.Command(cmd[0], {
      args: cmd.slice(1),
      cwd: o.cwd,
      env: { VMD_SOCKET: this.socket },
      stdin: o.input === undefined ? "null" : "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    if (o.input !== undefined) {
      const w = child.stdin.getWriter();
      await w.write(new TextEncoder().encode(o.input));
      await w.close();
    }
    const timer = setTimeout(() => child.kill("SIGKILL"), o.timeoutMs ?? 30_000);
    const out = await child.output();
    clearTimeout(timer);
    const dec = new TextDecoder();
    return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
  }

  /** SIGTERM, then waits (bounded) for vmd to exit; returns its exit status. */
  async terminate(ms = 30_000): Promise<number> {
    try {
      this.proc.kill("SIGTERM");
    } catch { /* already gone */ }
    const timer = setTimeout(() => {
      try {
        this.proc.kill("SIGKILL");
      } catch { /* gone */ }
    }, ms);
    const s = await this.proc.status;
    clearTimeout(timer);
    await this.#logDone;
    return s.code;
  }

  /**
   * Runs `body` against this daemon and then cleans up; when `body` fails, the daemon's log (without the
   * status polls) is printed before the failure is passed on.
   */
  async run(body: () => Promise<void>): Promise<void> {
    try {
      await body();
    } catch (e) {
      console.error(this.logWithoutPolling);
      throw e;
    } finally {
      await this.cleanup();
    }
  }

  /** Terminates (if running) and removes the folder. */
  async cleanup(): Promise<void> {
    await this.terminate();
    await Deno.remove(this.dir, { recursive: true }).catch(() => {});
  }
}

/** An attached `vmctl console`: write input, wait for output, detach. */
export class ConsoleSession {
  readonly #child: Deno.ChildProcess;
  readonly #writer: WritableStreamDefaultWriter<Uint8Array>;
  #out = "";
  readonly #reading: Promise<void>;

  /** Runs `vmctl console target` (or `vmctl args...` when given an array) against `d`. */
  constructor(d: TestDaemon, target: string | readonly string[], as?: AsUser) {
    const cmd = vmctlCommand(typeof target === "string" ? ["console", target] : target, as);
    const child = new Deno.Command(cmd[0], {
      args: cmd.slice(1),
      env: { VMD_SOCKET: d.socket },
      stdin: "piped",
      stdout: "piped",
      stderr: "null",
    }).spawn();
    this.#child = child;
    this.#writer = child.stdin.getWriter();
    const dec = new TextDecoder();
    this.#reading = (async () => {
      for await (const c of child.stdout) this.#out += dec.decode(c, { stream: true });
    })();
  }

  /** Everything printed so far. */
  get output(): string {
    return this.#out;
  }

  /** Sends `text` to the console. */
  async send(text: string): Promise<void> {
    await this.#writer.write(new TextEncoder().encode(text));
  }

  /** Waits until the output contains `text`. */
  expect(text: string, ms = 10_000): Promise<string> {
    return until(
      `console output ${JSON.stringify(text)} (have ${JSON.stringify(this.#out)})`,
      ms,
      () => this.#out.includes(text) ? this.#out : undefined,
    );
  }

  /** Resolves to vmctl's exit status once it has ended by itself (the VM stopped); killed after `ms`. */
  async ended(ms = 10_000): Promise<number> {
    const timer = setTimeout(() => this.#child.kill("SIGKILL"), ms);
    const s = await this.#child.status;
    clearTimeout(timer);
    await this.#reading;
    await this.#writer.close().catch(() => {});
    return s.code;
  }

  /** Kills vmctl with SIGKILL (a client that dies mid-session); {@link ended} then reaps it. */
  kill(): void {
    try {
      this.#child.kill("SIGKILL");
    } catch { /* already gone */ }
  }

  /** Sends `~.` and resolves to vmctl's exit status (killed after 10 s). */
  async detach(): Promise<number> {
    await this.#writer.write(new TextEncoder().encode("\r~."));
    const timer = setTimeout(() => this.#child.kill("SIGKILL"), 10_000);
    const s = await this.#child.status;
    clearTimeout(timer);
    await this.#reading;
    await this.#writer.close().catch(() => {});
    return s.code;
  }
}
