/**
 * The daemon's state: the configuration, the VMs (one {@link VmEntry} each), and the answer to every
 * control request. The socket, signals and command line live in `daemon_main.ts`.
 *
 * @module
 */
import { fileReader } from "../config/file_reader.ts";
import { loadConfig } from "../config/load.ts";
import type { VmdConfig } from "../config/types.ts";
import { vmNameProblem } from "../config/validate_vm.ts";
import type { PeerCredentials } from "../../ffi/unix_socket.ts";
import { mayAdminister, mayControl, resolveOwner } from "./access.ts";
import {
  adHocDefinition,
  DefinitionError,
  definitionFromConfig,
  instanceDefinition,
  peerOwner,
  ROOT_MAY_CHANGE,
  unusableDefinition,
  userCredentials,
} from "./definitions.ts";
import { errorReply, type Reply, type Request, type StartOptions, type VmStatus } from "./protocol.ts";
import { statusPage } from "./status_page.ts";
import { UserDb } from "./user_db.ts";
import { checkRunLimits, roomForOneMore, UserLimitError } from "./user_limits.ts";
import { type EntryTiming, type VmDefinition, VmEntry, VmStateError } from "./vm_entry.ts";
import { VmPool } from "./vm_pool.ts";

/** The daemon's log: `info` always, `debug` only when verbose. */
export interface Logger {
  /** A line that is always logged. */
  info(msg: string): void;
  /** A line logged when verbose. */
  debug(msg: string): void;
  /** Verbosity (changed by `vmctl log`). */
  verbose: boolean;
}

/** How the daemon was started. */
export interface DaemonOptions {
  /** vm.conf's path. */
  readonly configPath: string;
  /** `-D` macros. */
  readonly defines: Readonly<Record<string, string>>;
  /** Entry timing (stop timeout, reboot limit). */
  readonly timing: EntryTiming;
  /** The log. */
  readonly log: Logger;
}

/** How long a group of a staggered start is waited for without `staggered start ... delay` (vmd(8): 30 s). */
const DEFAULT_STAGGER_DELAY_S = 30;

const ok = (message: string, vm: VmStatus | null = null): Reply => ({ v: 1, type: "ok", message, vm });

/** Which of `o`'s options were given (`kernel`, `memory`, ...). */
function startOptionsGiven(o: StartOptions): string[] {
  return Object.entries(o).filter(([, v]) => v !== null && v !== false && v !== 0).map(([k]) => k);
}

/** The daemon. */
export class Daemon {
  readonly #o: DaemonOptions;
  #config: VmdConfig;
  #entries: VmEntry[] = [];
  #nextId = 1;
  #db: UserDb;
  /** vm.conf's VMs the daemon cannot start (unknown owner, no kernel), with the reason. */
  readonly #skipped = new Map<VmEntry, string>();
  /** Configured VMs started with `vmctl start -b ...`: their own definition, back once they stop. */
  readonly #nextBootOnly = new Map<VmEntry, VmDefinition>();
  /** VM processes started ahead (`pool size`); started by {@link startPool}. */
  readonly #pool: VmPool;

  private constructor(o: DaemonOptions, config: VmdConfig, db: UserDb) {
    this.#o = o;
    this.#config = config;
    this.#db = db;
    this.#pool = new VmPool(config.global.poolSize, (m) => this.log.info(m));
  }

  /** Starts the warm pool's processes (once the daemon serves its socket). */
  startPool(): void {
    this.#pool.refill();
  }

  /** Ends the warm pool's waiting processes (at exit); resolves once they are gone. */
  closePool(): Promise<void> {
    return this.#pool.close();
  }

  /** The pids of the warm pool's waiting processes (not VMs: no status row shows them). */
  get poolPids(): number[] {
    return this.#pool.idlePids;
  }

  /** Reads the configuration (throws ConfigError) and builds the daemon; no VM is started yet. */
  static async create(o: DaemonOptions): Promise<Daemon> {
    const config = Daemon.readConfig(o.configPath, o.defines);
    const d = new Daemon(o, config, await UserDb.load());
    d.#apply(config, false);
    return d;
  }

  /** Parses and validates a configuration file; throws ConfigError with every diagnostic. */
  static readConfig(path: string, defines: Readonly<Record<string, string>>): VmdConfig {
    const r = fileReader(path);
    if (!r.ok) throw new DefinitionError(`cannot read ${path}: ${r.reason}`);
    return loadConfig(path, r.text, { reader: fileReader, defines });
  }

  /** The configuration in force. */
  get config(): VmdConfig {
    return this.#config;
  }

  /** Every VM. */
  get entries(): readonly VmEntry[] {
    return this.#entries;
  }

  /** The log. */
  get log(): Logger {
    return this.#o.log;
  }

  /**
   * Merges `config` into the VM table: new VMs are added, stopped ones take their new definition, running
   * ones keep running; with `prune`, stopped VMs from the old config that the new one lacks are removed.
   * Returns the enabled, stopped VMs, to be started.
   */
  #apply(config: VmdConfig, prune: boolean): VmEntry[] {
    const toStart: VmEntry[] = [];
    for (const vm of config.vms) {
      let def: VmDefinition;
      let skipped: string | null = null;
      try {
        def = definitionFromConfig(vm, this.#db, config, (m) => this.log.info(m));
      } catch (e) {
        // listed, never started: `vmctl status` shows why (as its last exit), `vmctl start` says it again
        skipped = (e as Error).message;
        this.log.info(`${skipped}; skipped`);
        def = unusableDefinition(vm);
      }
      const existing = this.#entries.find((e) => e.def.name === vm.name);
      let entry: VmEntry | undefined;
      if (existing === undefined) {
        entry = this.#newEntry(def);
        this.#entries.push(entry);
      } else if (existing.state === "stopped") {
        existing.def = def;
        this.#nextBootOnly.delete(existing);
        entry = existing;
      } else {
        this.log.debug(
          `vm ${vm.name} is running; its new definition applies once it is stopped and reloaded`,
        );
      }
      if (entry === undefined) continue;
      if (skipped === null) this.#skipped.delete(entry);
      else this.#skipped.set(entry, skipped);
      if (skipped === null && def.enabled) toStart.push(entry);
    }
    if (prune) {
      // as vmd(8): a reload forgets every stopped VM the file no longer has, ad hoc VMs and instances too
      const names = new Set(config.vms.map((v) => v.name));
      this.#entries = this.#entries.filter((e) =>
        e.state !== "stopped" || (e.def.fromConfig && names.has(e.def.name))
      );
    }
    return toStart;
  }

  /** Starts `entries`, `staggered start` permitting: in groups, each waited for (up to the delay). */
  async startAll(entries: readonly VmEntry[] = this.#entries.filter((e) => e.def.enabled)): Promise<void> {
    const configured = this.#config.global.staggeredStart;
    // without `staggered start`, as vmd(8): as many at a time as the host has CPUs, each group given 30 s
    const s = configured.kind === "on"
      ? configured
      : { parallel: Math.max(1, navigator.hardwareConcurrency), delaySeconds: DEFAULT_STAGGER_DELAY_S };
    if (entries.length > 0) {
      this.log.debug(
        `starting ${entries.length} vm(s), ${s.parallel} at a time, ${s.delaySeconds} s apart at most`,
      );
    }
    const startOne = (e: VmEntry) =>
      e.start().then(
        (tty) => this.log.info(`vm ${e.def.name}: running, console ${tty}`),
        (err) => this.log.info(`vm ${e.def.name}: ${(err as Error).message}`),
      );
    for (let i = 0; i < entries.length; i += s.parallel) {
      const group = entries.slice(i, i + s.parallel).map(startOne);
      let timer: ReturnType<typeof setTimeout> | undefined;
      const delay = new Promise<void>((r) => timer = setTimeout(r, s.delaySeconds * 1000));
      await Promise.race([Promise.all(group), delay]);
      clearTimeout(timer);
    }
  }

  /** Re-reads vm.conf (SIGHUP, `vmctl reload`) and starts what it enables. */
  async reload(): Promise<string> {
    this.#db = await UserDb.load();
    const config = Daemon.readConfig(this.#o.configPath, this.#o.defines);
    this.#config = config;
    this.#pool.resize(config.global.poolSize);
    const toStart = this.#apply(config, true);
    void this.startAll(toStart);
    return `reloaded ${this.#o.configPath}: ${config.vms.length} vm(s), starting ${toStart.length}`;
  }

  /** Stops every VM (graceful, forced after the timeout) — for SIGTERM and `vmctl reset`. */
  async stopAll(): Promise<void> {
    await Promise.all(
      this.#entries.filter((e) => e.state !== "stopped").map((e) =>
        e.stop(false).catch((err) => this.log.info(`vm ${e.def.name}: ${(err as Error).message}`))
      ),
    );
  }

  /** A new stopped entry; its backing files are opened with their images' owners' rights. */
  #newEntry(def: VmDefinition): VmEntry {
    return new VmEntry(
      this.#nextId++,
      def,
      this.#o.timing,
      (m) => this.log.info(m),
      (uid) => userCredentials(uid, this.#db.userById(uid)?.gid ?? uid, this.#db),
      (image) => this.#entries.find((e) => e.holds(image))?.def.name,
      () => this.#pool.take(),
    );
  }

  #find(target: string): VmEntry | undefined {
    if (/^\d+$/.test(target)) return this.#entries.find((e) => e.id === Number(target));
    return this.#entries.find((e) => e.def.name === target);
  }

  /** Answers one request from `peer`; `gone` aborts when its client has gone (a `wait` then stops waiting). */
  async handle(req: Request, peer: PeerCredentials, gone?: AbortSignal): Promise<Reply> {
    try {
      return await this.#handle(req, peer, gone);
    } catch (e) {
      if (e instanceof VmStateError) return errorReply("state", e.message);
      if (e instanceof DefinitionError) return errorReply("failed", e.message);
      if (e instanceof UserLimitError) return errorReply("denied", e.message);
      return errorReply("failed", e instanceof Error ? e.message : String(e));
    }
  }

  async #handle(req: Request, peer: PeerCredentials, gone?: AbortSignal): Promise<Reply> {
    this.log.debug(`control: ${req.type} from uid ${peer.uid} (pid ${peer.pid})`);
    const denied = () =>
      errorReply("denied", `permission denied: uid ${peer.uid} may not ${req.type} this vm`);
    const admin = () => errorReply("denied", `permission denied: only root may ${req.type}`);
    switch (req.type) {
      case "status": {
        const rows = this.#entries.map((e) => ({ id: e.id, status: () => this.#row(e) }));
        if (req.target === null) return statusPage(rows, req.after ?? 0);
        const e = this.#find(req.target);
        if (e === undefined) return errorReply("no-such-vm", `vm ${req.target} does not exist`);
        return { v: 1, type: "status", vms: [this.#row(e)] };
      }
      case "start":
        return await this.#start(req.target, req.options, peer);
      case "stop": {
        const targets = req.target === null
          ? this.#entries.filter((e) => e.state !== "stopped" && mayControl(peer, e.def.owner, this.#db))
          : [this.#find(req.target)];
        if (targets[0] === undefined && req.target !== null) {
          return errorReply("no-such-vm", `vm ${req.target} does not exist`);
        }
        const list = targets as VmEntry[];
        if (!list.every((e) => mayControl(peer, e.def.owner, this.#db))) return denied();
        if (req.target !== null && list[0].state === "stopped") {
          return errorReply("state", `vm ${list[0].def.name} is not running`);
        }
        const stopping = Promise.all(list.map((e) => e.stop(req.force).catch(() => {})));
        if (req.wait) {
          await stopping;
          return ok(
            list.map((e) => `vm ${e.def.name}: terminated vm ${e.id}`).join("\n"),
            list.length === 1 ? list[0].status() : null,
          );
        }
        // vmctl(8)'s words, after its "stopping vm NAME: "
        const how = req.force ? "forced to terminate vm" : "requested to shutdown vm";
        return ok(list.map((e) => `vm ${e.def.name}: ${how} ${e.id}`).join("\n"), null);
      }
      case "pause":
      case "unpause":
      case "console":
      case "wait": {
        const e = this.#find(req.target);
        if (e === undefined) return errorReply("no-such-vm", `vm ${req.target} does not exist`);
        if (!mayControl(peer, e.def.owner, this.#db)) return denied();
        if (req.type === "pause") {
          await e.pause();
          return ok(`paused vm ${e.def.name}`, e.status());
        }
        if (req.type === "unpause") {
          await e.unpause();
          return ok(`unpaused vm ${e.def.name}`, e.status());
        }
        if (req.type === "console") {
          if (e.tty === null) return errorReply("state", `vm ${e.def.name} is not running`);
          return { v: 1, type: "console", tty: e.tty, vm: e.status(false) };
        }
        if (e.state === "stopped") return errorReply("state", `vm ${e.def.name} is not running`);
        await e.waitStopped(gone);
        return ok(`vm ${e.def.name} stopped: ${e.status().lastExit ?? "not started"}`, e.status());
      }
      case "load": {
        if (!mayAdminister(peer)) return admin();
        const config = Daemon.readConfig(req.path, this.#o.defines);
        const toStart = this.#apply(config, false);
        void this.startAll(toStart);
        return ok(`loaded ${req.path}: ${config.vms.length} vm(s), starting ${toStart.length}`);
      }
      case "reload":
        if (!mayAdminister(peer)) return admin();
        return ok(await this.reload());
      case "reset":
        if (!mayAdminister(peer)) return admin();
        if (req.what === "switches") {
          return ok("switches are Linux bridges vmd makes when a VM joins one and removes after the last");
        }
        // as vmd(8): reset clears state, it does not read vm.conf (`vmctl reload` does); ids start again at 1
        await this.stopAll();
        this.#entries = [];
        this.#skipped.clear();
        this.#nextBootOnly.clear();
        this.#nextId = 1;
        return ok("reset: every vm stopped and forgotten; vmctl reload reads vm.conf again");
      case "log":
        if (!mayAdminister(peer)) return admin();
        this.log.verbose = req.level === "verbose";
        return ok(`logging is ${req.level}`);
    }
  }

  async #start(
    target: string,
    o: StartOptions | null,
    peer: PeerCredentials,
  ): Promise<Reply> {
    let e = this.#find(target);
    if (
      e !== undefined && !e.def.fromConfig && e.state === "stopped" && e.def.name === target && o !== null &&
      (o.kernel !== null || o.template !== null)
    ) {
      // a stopped ad hoc VM or instance stays listed with how it ended; starting its name anew with options
      // replaces it (vmd(8) forgets it when it stops)
      if (!mayControl(peer, e.def.owner, this.#db)) {
        return errorReply("denied", `permission denied: uid ${peer.uid} may not replace vm ${e.def.name}`);
      }
      this.#forget(e, "replaced by a new start");
      e = undefined;
    }
    if (e === undefined && o !== null && (o.template !== null || o.kernel !== null)) {
      // a new VM's name: vm.conf's rule (no control characters, not a number that reads as an id)
      const problem = vmNameProblem(target);
      if (problem !== null) return errorReply("bad-message", problem);
    }
    if (o !== null && o.template !== null) {
      if (e !== undefined) {
        return errorReply("state", `vm ${e.def.name} already exists; pick another instance name`);
      }
      // as vmd(8): any VM may be the parent (a configured one, an instance, an ad hoc one); root has no
      // restrictions, users need the parent's `allow instance { owner }` (an instance has its parent's only
      // when the parent allowed `instance`)
      const tentry = this.#find(o.template);
      if (tentry === undefined) return errorReply("no-such-vm", `template vm ${o.template} does not exist`);
      const allow = tentry.def.allowInstance;
      const allowOwner = allow === null || allow.owner === null ? null : resolveOwner(allow.owner, this.#db);
      if (peer.uid !== 0 && (allowOwner === null || !mayControl(peer, allowOwner, this.#db))) {
        const why = tentry.def.fromConfig
          ? `vm.conf's allow instance { owner } of ${tentry.def.name} does not name them`
          : `${tentry.def.name} is an instance or ad hoc vm whose parent did not allow instance { instance }`;
        return errorReply(
          "denied",
          `permission denied: uid ${peer.uid} may not create instances of ${o.template}: ${why}`,
        );
      }
      // files a user names for an instance are opened by vmd with that user's rights, and only so; an
      // instance root creates is owned by its parent's owner (vmd(8)), one a user creates by that user
      const def = instanceDefinition(
        target,
        tentry.def,
        peer.uid === 0 ? ROOT_MAY_CHANGE : allow,
        o,
        peer.uid === 0 ? tentry.def.owner : peerOwner(peer.uid, this.#db),
        this.#config,
        peer.uid === 0 ? undefined : userCredentials(peer.uid, peer.gid, this.#db),
      );
      checkRunLimits(this.#entries, peer.uid, def, null);
      for (const old of roomForOneMore(this.#entries, peer.uid)) {
        this.#forget(old, "stopped, forgotten to make room for a new one");
      }
      e = this.#newEntry(def);
      this.#entries.push(e);
    } else if (e === undefined) {
      if (o === null) {
        return errorReply(
          "no-such-vm",
          `vm ${target} does not exist; give a kernel with -b, or disks for the BIOS to boot with -d`,
        );
      }
      if (!mayAdminister(peer)) return errorReply("denied", "permission denied: only root may create vms");
      e = this.#newEntry(adHocDefinition(target, o, peerOwner(peer.uid, this.#db), this.#config));
      this.#entries.push(e);
    } else {
      if (!mayControl(peer, e.def.owner, this.#db)) {
        return errorReply("denied", `permission denied: uid ${peer.uid} may not start vm ${e.def.name}`);
      }
      const skipped = this.#skipped.get(e);
      if (skipped !== undefined) return errorReply("failed", `${skipped}; fix vm.conf and reload`);
      const given = o === null ? [] : startOptionsGiven(o);
      if (given.some((g) => g !== "kernel" && g !== "bootDevice")) {
        return errorReply(
          "state",
          `vm ${e.def.name} is defined already; of -b, -B, -m, -d, -L, -n, -i and friends only -b and -B ` +
            "apply to it (for its next boot); use -t to make an instance with other settings",
        );
      }
      if (o !== null && o.bootDevice !== null && e.state === "stopped") {
        // vmctl(8): -B chooses the boot device of the next boot only
        this.#nextBootOnly.set(e, this.#nextBootOnly.get(e) ?? e.def);
        e.def = { ...e.def, bootDevice: o.bootDevice };
      }
      if (o !== null && o.kernel !== null && e.state === "stopped") {
        // vmctl(8): -b on a defined VM boots that kernel this once; its own definition is back once it stops
        if (!mayAdminister(peer)) {
          return errorReply(
            "denied",
            `permission denied: only root may boot vm ${e.def.name} from another kernel`,
          );
        }
        this.#nextBootOnly.set(e, this.#nextBootOnly.get(e) ?? e.def);
        e.def = { ...e.def, kernel: o.kernel };
      }
      if (!e.def.fromConfig) checkRunLimits(this.#entries, peer.uid, e.def, e);
    }
    const wasStopped = e.state === "stopped"; // otherwise start() refuses, and the VM is left as it is
    let tty: string;
    try {
      tty = await e.start();
    } catch (err) {
      // as vmd(8) does: a VM vmctl created and that failed to start leaves nothing behind
      if (wasStopped && !e.def.fromConfig && e.state !== "running" && e.state !== "paused") {
        this.#forget(e, (err as Error).message);
      }
      if (wasStopped && e.state === "stopped") this.#restoreDefinition(e);
      throw err;
    }
    if (wasStopped) this.#whenStopped(e);
    return ok(`started vm ${e.id} successfully, tty ${tty}`, e.status(false));
  }

  /** The status row of `e`; a vm.conf VM the daemon cannot start shows why as its last exit. */
  #row(e: VmEntry): VmStatus {
    const row = e.status();
    const skipped = this.#skipped.get(e);
    return skipped === undefined ? row : { ...row, lastExit: `not started: ${skipped}` };
  }

  /** Once `e` has stopped (through guest reboots), a configured VM booted with `-b` gets its definition back. */
  #whenStopped(e: VmEntry): void {
    if (!this.#nextBootOnly.has(e)) return;
    e.waitStopped().then(() => {
      if (e.state === "stopped") this.#restoreDefinition(e);
    });
  }

  #restoreDefinition(e: VmEntry): void {
    const own = this.#nextBootOnly.get(e);
    if (own === undefined) return;
    this.#nextBootOnly.delete(e);
    e.def = own;
  }

  /** Removes a VM vmctl created from the table (its process, if any, is killed). */
  #forget(e: VmEntry, why: string): void {
    this.#entries = this.#entries.filter((x) => x !== e);
    if (e.state !== "stopped") e.stop(true).catch(() => {});
    this.log.info(`vm ${e.def.name}: removed: ${why}`);
  }
}
