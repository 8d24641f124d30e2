/**
 * The soak driver shared by `bench/soak.ts` and `tests/vmd_soak_test.ts`: a real daemon (in a network
 * namespace the caller made) taken through every way a VM, a control client and a console session can end,
 * cycle after cycle, and the daemon's footprint read from /proc: descriptors by kind, threads, RSS and PSS,
 * child processes, and the taps and bridges in its namespace.
 *
 * One cycle runs these paths side by side (each on its own VM), then `reset`:
 * - `exit`: a configured guest that ends at once (`hello`); `adhoc`: the same as `vmctl start -b`;
 * - `fail`: an ad hoc start whose kernel is missing (refused in the daemon) and one whose kernel is not a
 *   kernel (refused by the VM process), both removed; a configured VM whose kernel the VM process refuses;
 * - `kill9`: a VM with a NIC on a switch (tap and bridge), its process killed with SIGKILL;
 * - `stopf`: `stop -f -w`; `stop`: a graceful `stop -w`;
 * - `console`: a running VM's console asked for and its pty opened, written and closed as a client killed
 *   mid-session leaves it; every `realConsoleEvery` cycles also a real `vmctl console` detached with `~.` and
 *   one killed with SIGKILL;
 * - `clients`: connect and close, a half-written request, a request whose reply is never read;
 * - `reload`: vm.conf rewritten (a VM added or pruned) and re-read, which starts the enabled VM, then stopped;
 * - `reset`: with ad hoc VMs and a running VM in the table.
 *
 * @module
 */
import { sendRequest } from "../src/vmctl/client.ts";
import { encodeFrame } from "../src/vmd/framing.ts";
import { NO_START_OPTIONS, type Reply, type Request } from "../src/vmd/protocol.ts";
import { ConsoleSession, kitPaths, TestDaemon, until } from "./vmd_support.ts";

/** What the daemon holds, read from /proc and from its namespace. */
export interface Footprint {
  /** Open descriptors by kind: pipe, pty, socket, anon_inode, file. */
  readonly fds: Readonly<Record<FdKind, number>>;
  /** Threads. */
  readonly threads: number;
  /** Resident set (KiB). */
  readonly rssKiB: number;
  /** Proportional set (KiB): shared pages counted by share. */
  readonly pssKiB: number;
  /** Child processes (VM processes, helpers). */
  readonly children: number;
  /** Taps in the namespace. */
  readonly taps: number;
  /** Bridges in the namespace. */
  readonly bridges: number;
}

/** Kinds of descriptor. */
export type FdKind = "pipe" | "pty" | "socket" | "anon_inode" | "file";

/** Counts the descriptors of process `pid` by kind. */
export function fdKinds(pid: number): Record<FdKind, number> {
  const out: Record<FdKind, number> = { pipe: 0, pty: 0, socket: 0, anon_inode: 0, file: 0 };
  for (const e of Deno.readDirSync(`/proc/${pid}/fd`)) {
    let target: string;
    try {
      target = Deno.readLinkSync(`/proc/${pid}/fd/${e.name}`);
    } catch {
      continue; // closed while listing
    }
    if (target.startsWith("pipe:")) out.pipe++;
    else if (target.startsWith("socket:")) out.socket++;
    else if (target.startsWith("anon_inode:")) out.anon_inode++;
    else if (target === "/dev/ptmx" || target.startsWith("/dev/pts/")) out.pty++;
    else out.file++;
  }
  return out;
}

/** The pids of `pid`'s children (every thread's). */
export function childrenOf(pid: number): number[] {
  const out: number[] = [];
  for (const t of Deno.readDirSync(`/proc/${pid}/task`)) {
    try {
      const text = Deno.readTextFileSync(`/proc/${pid}/task/${t.name}/children`).trim();
      if (text !== "") out.push(...text.split(/\s+/).map(Number));
    } catch { /* the thread ended */ }
  }
  return out;
}

async function linkCount(ns: string, type: "tun" | "bridge"): Promise<number> {
  const r = await new Deno.Command("ip", {
    args: ["-n", ns, "-j", "link", "show", "type", type],
    stdout: "piped",
  })
    .output();
  if (!r.success) throw new Error(`ip -n ${ns} link show type ${type} failed`);
  const text = new TextDecoder().decode(r.stdout).trim();
  return text === "" ? 0 : (JSON.parse(text) as unknown[]).length;
}

/** Reads the footprint of the daemon `pid` running in namespace `ns`. */
export async function footprint(pid: number, ns: string): Promise<Footprint> {
  const status = Deno.readTextFileSync(`/proc/${pid}/status`);
  const rollup = Deno.readTextFileSync(`/proc/${pid}/smaps_rollup`);
  const num = (re: RegExp, text: string) => Number(re.exec(text)?.[1] ?? NaN);
  return {
    fds: fdKinds(pid),
    threads: num(/^Threads:\s+(\d+)/m, status),
    rssKiB: num(/^Rss:\s+(\d+) kB/m, rollup),
    pssKiB: num(/^Pss:\s+(\d+) kB/m, rollup),
    children: childrenOf(pid).length,
    taps: await linkCount(ns, "tun"),
    bridges: await linkCount(ns, "bridge"),
  };
}

/** One line for a footprint. */
export function describeFootprint(label: string, f: Footprint): string {
  const fds = Object.entries(f.fds).map(([k, v]) => `${k} ${v}`).join(", ");
  return `${label.padEnd(8)} fds: ${fds}; threads ${f.threads}; RSS ${(f.rssKiB / 1024).toFixed(1)} MiB, ` +
    `PSS ${(f.pssKiB / 1024).toFixed(1)} MiB; children ${f.children}; taps ${f.taps}; bridges ${f.bridges}`;
}

/** The warm pool a soak daemon keeps (vm.conf `pool size`): its processes are children of the daemon. */
export const SOAK_POOL_SIZE = 2;

/** The vm.conf of a soak daemon: `extra` adds a VM that the next reload without it prunes. */
export function soakConfig(k: SoakGuests, extra: boolean): string {
  const vm = (name: string, kernel: string, more = "") =>
    `vm "${name}" {\n  disable\n  boot "${kernel}"\n  memory 16M\n${more}}\n`;
  return `pool size ${SOAK_POOL_SIZE}\nswitch "soak" {\n  interface "brsoak"\n}\n` +
    vm("q", k.hello) + vm("bad", k.notKernel) + vm("f", k.echo) + vm("g", k.echo) + vm("c", k.echo) +
    vm("k", k.echo, `  interface { switch "soak" }\n`) +
    `vm "r" {\n  boot "${k.echo}"\n  memory 16M\n}\n` + (extra ? vm("extra", k.hello) : "");
}

/** The guests of a soak run: one that ends at once, one that echoes until stopped, and a file that is not one. */
export interface SoakGuests {
  /** Kit `hello`. */
  readonly hello: string;
  /** Kit `echo`. */
  readonly echo: string;
  /** 4 KiB of zeros. */
  readonly notKernel: string;
}

/** A soak run's daemon and guests. */
export class Soak {
  /** The daemon. */
  readonly d: TestDaemon;
  /** Its namespace. */
  readonly ns: string;
  readonly #k: SoakGuests;
  readonly #realConsoleEvery: number;
  #cycle = 0;

  private constructor(d: TestDaemon, ns: string, k: SoakGuests, realConsoleEvery: number) {
    this.d = d;
    this.ns = ns;
    this.#k = k;
    this.#realConsoleEvery = realConsoleEvery;
  }

  /** Starts a daemon in `ns`; a real `vmctl console` runs every `realConsoleEvery` cycles. */
  static async start(ns: string, realConsoleEvery: number): Promise<Soak> {
    const { hello, echo } = await kitPaths();
    const dir = await Deno.makeTempDir({ prefix: "vmd-soak-" });
    const notKernel = `${dir}/not-a-kernel`;
    await Deno.writeFile(notKernel, new Uint8Array(4096));
    const k = { hello, echo, notKernel };
    const d = await TestDaemon.start(soakConfig(k, false), {}, ["ip", "netns", "exec", ns]);
    const s = new Soak(d, ns, k, realConsoleEvery);
    await s.#ok({ v: 1, type: "log", level: "brief" });
    await d.waitState("r", "running");
    await s.#ok({ v: 1, type: "stop", target: "r", force: true, wait: true });
    return s;
  }

  /** The daemon's pid (`ip netns exec` executes it in place). */
  get pid(): number {
    return this.d.proc.pid;
  }

  /** The daemon's footprint now. */
  footprint(): Promise<Footprint> {
    return footprint(this.pid, this.ns);
  }

  async #req(req: Request): Promise<Reply> {
    return await sendRequest(req, this.d.socket);
  }

  async #ok(req: Request): Promise<Reply> {
    const r = await this.#req(req);
    if (r.type === "error") throw new Error(`${req.type}: ${r.message}`);
    return r;
  }

  async #start(target: string, kernel: string | null = null): Promise<Reply> {
    const options = kernel === null ? null : { ...NO_START_OPTIONS, kernel, memory: 16 << 20 };
    return await this.#req({ v: 1, type: "start", target, options });
  }

  async #startOk(target: string, kernel: string | null = null): Promise<void> {
    const r = await this.#start(target, kernel);
    if (r.type === "error") throw new Error(`start ${target}: ${r.message}`);
  }

  /** Waits for `target` to stop; a guest that ended before the wait arrived (a busy host) counts as stopped. */
  async #waitStopped(target: string): Promise<void> {
    const r = await this.#req({ v: 1, type: "wait", target });
    if (r.type === "error" && !r.message.endsWith("is not running")) throw new Error(`wait: ${r.message}`);
  }

  async #exit(): Promise<void> {
    await this.#startOk("q");
    await this.#waitStopped("q");
    const name = `adhoc${this.#cycle}`;
    await this.#startOk(name, this.#k.hello);
    await this.#waitStopped(name);
  }

  async #fail(): Promise<void> {
    for (
      const [target, kernel] of [[`miss${this.#cycle}`, `${this.d.dir}/missing`], ["bad", null]] as const
    ) {
      const r = await this.#start(target, kernel);
      if (r.type !== "error") throw new Error(`start ${target} should have failed`);
    }
    const r = await this.#start(`junk${this.#cycle}`, this.#k.notKernel);
    if (r.type !== "error") throw new Error("a start of a file that is not a kernel should have failed");
  }

  async #kill9(): Promise<void> {
    await this.#startOk("k");
    const vm = await this.d.vm("k");
    if (vm.pid === null) throw new Error("vm k has no pid");
    Deno.kill(vm.pid, "SIGKILL");
    await this.#waitStopped("k");
  }

  async #stops(): Promise<void> {
    await this.#startOk("f");
    await this.#ok({ v: 1, type: "stop", target: "f", force: true, wait: true });
    await this.#startOk("g");
    await this.#ok({ v: 1, type: "stop", target: "g", force: false, wait: true });
  }

  async #console(): Promise<void> {
    await this.#startOk("c");
    const r = await this.#ok({ v: 1, type: "console", target: "c" });
    if (r.type !== "console") throw new Error(`console: ${JSON.stringify(r)}`);
    const tty = await Deno.open(r.tty, { read: true, write: true });
    await tty.write(new TextEncoder().encode("soak\r"));
    tty.close(); // as a client killed mid-session leaves it
    if (this.#realConsoleEvery > 0 && this.#cycle % this.#realConsoleEvery === 0) {
      // attached once the guest's echo of a word of this cycle comes back
      const detached = new ConsoleSession(this.d, "c");
      await detached.send(`d${this.#cycle}\r`);
      await detached.expect(`D${this.#cycle}`);
      if (await detached.detach() !== 0) throw new Error("vmctl console did not detach cleanly");
      const killed = new ConsoleSession(this.d, "c");
      await killed.send(`k${this.#cycle}\r`);
      await killed.expect(`K${this.#cycle}`);
      killed.kill();
      await killed.ended();
    }
    await this.#ok({ v: 1, type: "stop", target: "c", force: true, wait: true });
  }

  async #clients(): Promise<void> {
    const path = this.d.socket;
    const status = encodeFrame({ v: 1, type: "status", target: null });
    // connect and close at once
    (await Deno.connect({ transport: "unix", path })).close();
    // half a request, then gone
    const half = await Deno.connect({ transport: "unix", path });
    await half.write(status.subarray(0, status.length - 3));
    half.close();
    // a whole request whose reply is never read
    const deaf = await Deno.connect({ transport: "unix", path });
    await deaf.write(status);
    deaf.close();
  }

  async #reload(): Promise<void> {
    await Deno.writeTextFile(`${this.d.dir}/vm.conf`, soakConfig(this.#k, this.#cycle % 2 === 0));
    await this.#ok({ v: 1, type: "reload" });
    await this.d.waitState("r", "running");
    await this.#ok({ v: 1, type: "stop", target: "r", force: true, wait: true });
  }

  async #reset(): Promise<void> {
    await this.#startOk("f");
    await this.#startOk(`held${this.#cycle}`, this.#k.echo);
    await this.#ok({ v: 1, type: "reset", what: "all" });
    // reset forgets every VM (as upstream's does) without reading vm.conf; a reload brings r back and starts it
    await this.#ok({ v: 1, type: "reload" });
    await this.d.waitState("r", "running");
    await this.#ok({ v: 1, type: "stop", target: "r", force: true, wait: true });
  }

  /** Runs one cycle of every path; the daemon is left with every VM stopped and no ad hoc VM. */
  async cycle(): Promise<void> {
    this.#cycle++;
    await Promise.all([
      this.#exit(),
      this.#fail(),
      this.#kill9(),
      this.#stops(),
      this.#console(),
      this.#clients(),
      this.#reload(),
    ]);
    await this.#reset();
  }

  /**
   * The baseline footprint after a warm-up cycle: once the warm pool is full again (a start took a waiting
   * process and its replacement comes shortly after; a snapshot in between would count one child short) and
   * the daemon has settled.
   */
  async baseline(): Promise<Footprint> {
    await until(
      "the warm pool to be full",
      10_000,
      () => childrenOf(this.pid).length === SOAK_POOL_SIZE ? true : undefined,
    );
    return await this.settle(await this.footprint(), 3_000);
  }

  /**
   * Polls until the footprint's descriptors, children, taps and bridges equal `base`'s (the daemon closes
   * dropped connections between polls, and releases a VM's things once its exit is handled); returns the last
   * reading after `ms` either way.
   */
  async settle(base: Footprint, ms = 10_000): Promise<Footprint> {
    const same = (f: Footprint) =>
      JSON.stringify(f.fds) === JSON.stringify(base.fds) && f.children === base.children &&
      f.taps === base.taps && f.bridges === base.bridges;
    try {
      return await until("the daemon to settle", ms, async () => {
        const f = await this.footprint();
        return same(f) ? f : undefined;
      });
    } catch {
      return await this.footprint();
    }
  }

  /**
   * `n` clients ask to `wait` for a running VM and go away before it stops: returns the daemon's footprint
   * with the VM running before and after (settled), and the CPU it used (clock ticks) over the 2 s after.
   */
  async abandonedWaits(n: number): Promise<{ before: Footprint; after: Footprint; cpuTicks: number }> {
    await this.#startOk("c");
    // the start's own connection is closed at the server's next poll (within a second)
    await new Promise((r) => setTimeout(r, 1_500));
    const before = await this.footprint();
    for (let i = 0; i < n; i++) {
      const conn = await Deno.connect({ transport: "unix", path: this.d.socket });
      await conn.write(encodeFrame({ v: 1, type: "wait", target: "c" }));
      await new Promise((r) => setTimeout(r, 20)); // read and waiting
      conn.close();
    }
    const after = await this.settle(before, 5_000);
    const ticks = () => {
      const f = Deno.readTextFileSync(`/proc/${this.pid}/stat`).split(") ")[1].split(" ");
      return Number(f[11]) + Number(f[12]); // utime + stime
    };
    const t0 = ticks();
    await new Promise((r) => setTimeout(r, 2_000));
    const cpuTicks = ticks() - t0;
    await this.#ok({ v: 1, type: "stop", target: "c", force: true, wait: true });
    return { before, after, cpuTicks };
  }

  /** SIGTERM: resolves to the exit status, and to the daemon's children and links left behind. */
  async terminate(): Promise<{ code: number; orphans: number; taps: number; bridges: number }> {
    const kids = childrenOf(this.pid);
    const code = await this.d.terminate();
    const alive = () =>
      kids.filter((p) => {
        try {
          Deno.statSync(`/proc/${p}`);
          return true;
        } catch {
          return false;
        }
      }).length;
    const orphans = await until("the VM processes to end", 10_000, () => alive() === 0 ? 0 : undefined)
      .catch(() => alive());
    return {
      code,
      orphans,
      taps: await linkCount(this.ns, "tun"),
      bridges: await linkCount(this.ns, "bridge"),
    };
  }
}
