/**
 * One VM as the daemon knows it: its definition, its state, and — while it runs — its VM process. The entry
 * starts the process, talks to it over its pipe, notices at once when it ends (for any reason, `kill -9`
 * included), and restarts the VM after a guest reboot unless the guest rebooted too often too quickly.
 *
 * @module
 */
import { guestResidentBytes } from "./guest_memory_use.ts";
import { closeFd } from "../../ffi/fd.ts";
import { openPty, type Pty } from "../../ffi/pty.ts";
import { encodeFrame, FrameDecoder } from "./framing.ts";
import type { ResolvedOwner } from "./access.ts";
import type { AllowInstance } from "../config/types.ts";
import type { VmState, VmStatus } from "./protocol.ts";
import { spawnVmProcess, type VmProcess } from "./vm_launcher.ts";
import { sendSpecFds } from "./spec_fds.ts";
import type { FileCredentials } from "../../ffi/open_file.ts";
import type { DiskFormat } from "../disk/disk.ts";
import { ImageInUseError } from "../disk/image_chain.ts";
import { type FromVm, validateFromVm, type VmSpec } from "./vm_messages.ts";
import { type DefinitionDisk, OpenVmFiles } from "./vm_files.ts";
import { closeTapFds, type NicDefinition, type OpenNics, openNics, releaseBridges } from "./vm_nics.ts";

/** What a VM is: everything needed to start it. */
export interface VmDefinition {
  /** Name. */
  readonly name: string;
  /** Absolute path of the kernel or BIOS image to boot (a BIOS boots its disks). */
  readonly kernel: string;
  /** What the BIOS boots (vm.conf `boot device`, `vmctl start -B`), or null: its own order. */
  readonly bootDevice: "disk" | "cdrom" | "net" | null;
  /** Absolute initrd path, or null. */
  readonly initrd: string | null;
  /** Kernel command line. */
  readonly cmdline: string;
  /** vCPUs. */
  readonly cpus: number;
  /** Memory in bytes. */
  readonly memory: number;
  /** Owner. */
  readonly owner: ResolvedOwner;
  /** Disk images, each a virtio-blk function. */
  readonly disks: readonly DefinitionDisk[];
  /** Absolute path of the CD-ROM's ISO image (a read-only virtio-scsi function), or null. */
  readonly cdrom: string | null;
  /**
   * The user who named files of this VM (vmctl start of an instance), whose rights those files are opened
   * with; null when every file came from vm.conf or from root (opened as root).
   */
  readonly namedBy: FileCredentials | null;
  /** The paths that user named (kernel, initrd, disks, CD-ROM); the others are vm.conf's. */
  readonly userPaths: readonly string[];
  /** NICs, each a virtio-net function on a tap vmd opens (`vm<id>-if<n>`). */
  readonly nics: readonly NicDefinition[];
  /** The `local prefix` local interfaces take their addresses from. */
  readonly localPrefix: string;
  /** The `local inet6` prefix (the host side of local interfaces gets its IPv6 address), or null when off. */
  readonly localInet6: string | null;
  /** Defined in vm.conf (true) or created by vmctl start (false). */
  readonly fromConfig: boolean;
  /** Started when the daemon starts or reloads. */
  readonly enabled: boolean;
  /**
   * What instances of this VM may change and who (other than root) may create them: vm.conf's `allow
   * instance` for a configured VM, the parent's for an instance whose parent allowed `instance`, else null
   * (only root may make instances of it).
   */
  readonly allowInstance: AllowInstance | null;
}

/** Timing of an entry. */
export interface EntryTiming {
  /** A graceful stop becomes a forced one after this long. */
  readonly stopTimeoutMs: number;
  /** A VM process that has not reported ready after this long is killed. */
  readonly readyTimeoutMs: number;
  /**
   * Fast reboots in a row (each less than {@link rebootWindowMs} after the VM started) that leave the VM
   * stopped instead of restarted (vmd(8)'s VM_START_RATE_LIMIT).
   */
  readonly rebootLimit: number;
  /** A reboot this soon after the VM started is a fast one (vmd(8)'s VM_START_RATE_SEC). */
  readonly rebootWindowMs: number;
}

/** vmd's timing: the 3rd reboot in a row within 6 s of starting leaves the VM stopped; 20 s to stop gracefully. */
export const DEFAULT_TIMING: EntryTiming = {
  stopTimeoutMs: 20_000,
  readyTimeoutMs: 30_000,
  rebootLimit: 3,
  rebootWindowMs: 6_000,
};

/** A request the VM's state does not allow, or a VM that failed to start. */
export class VmStateError extends Error {
  /** Builds the error. */
  constructor(message: string) {
    super(message);
    this.name = "VmStateError";
  }
}

/** The resident set size of process `pid` in bytes (from /proc), or null. */
export function processRss(pid: number): number | null {
  try {
    const m = /^VmRSS:\s+(\d+) kB$/m.exec(Deno.readTextFileSync(`/proc/${pid}/status`));
    return m === null ? null : Number(m[1]) * 1024;
  } catch {
    return null;
  }
}

interface Waiter<T> {
  resolve(v: T): void;
  reject(e: Error): void;
}

/** One VM. */
export class VmEntry {
  /** The VM's id. */
  readonly id: number;
  /** Its definition (replaced by reload while stopped). */
  def: VmDefinition;
  #state: VmState = "stopped";
  #proc: Deno.ChildProcess | undefined;
  #writer: WritableStreamDefaultWriter<Uint8Array> | undefined;
  #tty: string | null = null;
  #ptyPath: string | null = null;
  #ptySlave: number | null = null;
  #nics: OpenNics | undefined;
  #restarts = 0;
  /** When the VM process was last started (performance.now()). */
  #startedAt = 0;
  /** Reboots in a row that came less than the reboot window after their start. */
  #fastReboots = 0;
  #lastExit: string | null = null;
  #userStop = false;
  #askedToShutDown = false;
  /** Killed because the guest had not ended the stop timeout after being asked to shut down. */
  #killedAfterTimeout = false;
  #ended: Extract<FromVm, { type: "ended" }> | undefined;
  #ready: Waiter<string> | undefined;
  #replies: { kind: "paused" | "resumed"; waiter: Waiter<void> }[] = [];
  #stopWaiters: (() => void)[] = [];
  #exited: Promise<void> = Promise.resolve();
  readonly #timing: EntryTiming;
  readonly #log: (msg: string) => void;
  readonly #credentialsOf: (uid: number) => FileCredentials;
  /** Formats probed at this VM's first start, by image path: a guest cannot change them by rebooting. */
  readonly #probed = new Map<string, DiskFormat>();
  /** The images this VM's process holds while it runs (`dev:ino`), to say who holds a locked image. */
  #images = new Set<string>();
  readonly #holderOf: (image: string) => string | undefined;
  readonly #launch: () => VmProcess;

  /**
   * Builds a stopped entry; `credentialsOf` gives a user's rights (a backing file is opened with those of
   * its image's owner); `launch` gives a VM process without a VM (the daemon's pool; a fresh one by default).
   */
  constructor(
    id: number,
    def: VmDefinition,
    timing: EntryTiming,
    log: (msg: string) => void,
    credentialsOf: (uid: number) => FileCredentials = (uid) => ({ uid, gid: uid, groups: [] }),
    holderOf: (image: string) => string | undefined = () => undefined,
    launch: () => VmProcess = spawnVmProcess,
  ) {
    this.#launch = launch;
    this.#holderOf = holderOf;
    this.id = id;
    this.def = def;
    this.#timing = timing;
    this.#log = log;
    this.#credentialsOf = credentialsOf;
  }

  /** The state. */
  get state(): VmState {
    return this.#state;
  }

  /** The VM process's pid while it runs. */
  get pid(): number | null {
    return this.#proc?.pid ?? null;
  }

  /** True when this VM's running process holds the image `dev:ino`. */
  holds(image: string): boolean {
    return this.#state !== "stopped" && this.#images.has(image);
  }

  /** The console's pty while it runs. */
  get tty(): string | null {
    return this.#tty;
  }

  /**
   * The status row. `measure` false leaves CURMEM out (null): reading a process's smaps costs the daemon
   * 3–9 ms, which the row in a start or console reply would add to every `vmctl start -c`; status requests
   * measure it.
   */
  status(measure = true): VmStatus {
    const pid = this.pid;
    return {
      id: this.id,
      name: this.def.name,
      pid,
      vcpus: this.def.cpus,
      maxmem: this.def.memory,
      curmem: pid === null || !measure ? null : guestResidentBytes(pid, this.def.memory),
      tty: this.#tty,
      owner: this.def.owner.text,
      state: this.#state,
      restarts: this.#restarts,
      lastExit: this.#lastExit,
    };
  }

  /** Starts the VM (a user's start: the reboot count starts afresh); resolves with its tty once it runs. */
  start(): Promise<string> {
    this.#restarts = 0;
    this.#fastReboots = 0;
    return this.#start();
  }

  async #start(): Promise<string> {
    if (this.#state !== "stopped") throw new VmStateError(`vm ${this.def.name} is already ${this.#state}`);
    this.#state = "starting";
    this.#startedAt = performance.now();
    this.#images = new Set();
    this.#userStop = false;
    this.#askedToShutDown = false;
    this.#killedAfterTimeout = false;
    let nics: OpenNics | undefined;
    let files: OpenVmFiles | undefined;
    const fail = (why: string): never => {
      if (nics !== undefined) {
        closeTapFds(nics);
        void releaseBridges(nics);
      }
      files?.closeFds();
      this.#state = "stopped";
      this.#lastExit = `failed: ${why}`;
      this.#notifyStopped();
      throw new VmStateError(`vm ${this.def.name} failed to start: ${why}`);
    };
    try {
      // every file the VM uses, opened once with the rights of whoever named it; the process gets the fds
      const def = this.def;
      files = OpenVmFiles.open({
        kernel: def.kernel,
        initrd: def.initrd,
        disks: def.disks,
        cdrom: def.cdrom,
        openerOf: (path) => def.namedBy !== null && def.userPaths.includes(path) ? def.namedBy : undefined,
        credentialsOf: this.#credentialsOf,
        probed: this.#probed,
      });
      files.chains.forEach((chain, i) => {
        if (chain[0].probed) this.#probed.set(def.disks[i].path, chain[0].format);
      });
      // the taps and their host side (privileged: vmd's part); the VM process is sent the fds
      nics = await openNics(this.id, this.def.nics, this.def.localPrefix, this.def.localInet6);
    } catch (e) {
      if (e instanceof ImageInUseError) {
        const vm = this.#holderOf(`${e.dev}:${e.ino}`);
        if (vm !== undefined) {
          return fail(
            `${e.path} is in use by vm ${vm}; stop it first, or give this VM its own image or overlay`,
          );
        }
      }
      return fail((e as Error).message);
    }
    this.#images = new Set(files.chains.flat().map((c) => `${c.dev}:${c.ino}`));
    if (this.#userStop) return fail("stopped before it started");
    // the daemon opens the console (the privileged part); the VM process is sent only the master
    let pty: Pty;
    try {
      pty = openPty();
    } catch (e) {
      return fail(`cannot open a pty: ${(e as Error).message}`);
    }
    this.#giveTty(pty.path);
    const spec: VmSpec = {
      name: this.def.name,
      vmId: this.id,
      kernel: files.kernel,
      initrd: files.initrd,
      cmdline: this.def.cmdline,
      bootDevice: this.def.bootDevice,
      cpus: this.def.cpus,
      memory: this.def.memory,
      consoleFd: pty.master,
      disks: files.disks,
      cdrom: files.cdrom,
      nics: nics.specs,
    };
    let launched: VmProcess | undefined;
    try {
      // a VM process started ahead (or now); its VM's descriptors go over its descriptor channel, before
      // the boot message that names them
      launched = this.#launch();
      sendSpecFds(launched.channel, spec);
    } catch (e) {
      closeFd(pty.slave);
      if (launched !== undefined) {
        try {
          launched.proc.kill("SIGKILL");
        } catch { /* gone */ }
        void launched.proc.stdin.abort().catch(() => {});
        void launched.proc.stdout.cancel().catch(() => {});
      }
      return fail(`cannot start its process: ${(e as Error).message}`);
    } finally {
      if (launched !== undefined) closeFd(launched.channel); // one message per VM process, then no more
      closeFd(pty.master); // the VM process has its own copy
      closeTapFds(nics); // the same: the taps live as long as the VM process holds them
      files.closeFds(); // and its files: vmd keeps no descriptor of a running VM's files
    }
    for (const n of nics.specs) {
      const mac = n.mac.map((b) => b.toString(16).padStart(2, "0")).join(":");
      const what = n.local !== null ? `local ${n.local.host}/31, guest ${n.local.guest}` : "";
      this.#log(`vm ${this.def.name}: ${n.tap}: lladdr ${mac}${n.lockedLladdr ? " (locked)" : ""} ${what}`);
    }
    this.#nics = nics;
    // vmd keeps the (raw-mode) slave open while the VM runs: the master then never reads EIO between
    // console sessions, and the terminal settings stay put
    this.#ptySlave = pty.slave;
    this.#ptyPath = pty.path;
    const proc = launched.proc;
    this.#proc = proc;
    this.#ended = undefined;
    this.#writer = proc.stdin.getWriter();
    const ready = new Promise<string>((resolve, reject) => this.#ready = { resolve, reject });
    const timer = setTimeout(() => {
      this.#ready?.reject(
        new VmStateError(`vm ${this.def.name} did not start within ${this.#timing.readyTimeoutMs} ms`),
      );
      this.#kill();
    }, this.#timing.readyTimeoutMs);
    // the exit is handled once every message the process wrote has been read (its last may say why)
    const reading = this.#readMessages(proc);
    this.#exited = Promise.all([proc.status, reading]).then(([s]) => this.#onExit(s));
    this.#send({ type: "boot", spec });
    this.#log(`vm ${this.def.name}: started process ${proc.pid}`);
    try {
      return await ready;
    } finally {
      clearTimeout(timer);
    }
  }

  #send(msg: unknown): void {
    this.#writer?.write(encodeFrame(msg)).catch(() => {/* the process is gone; its exit is handled */});
  }

  async #readMessages(proc: Deno.ChildProcess): Promise<void> {
    const decoder = new FrameDecoder();
    // one small buffer per VM run, read into again and again: the stream's default reader hands out a new
    // 64 KiB buffer per read, garbage the daemon's heap collects late (issue 18: memory under churn)
    const reader = proc.stdout.getReader({ mode: "byob" });
    let buf = new ArrayBuffer(4096);
    try {
      for (;;) {
        const { value, done } = await reader.read(new Uint8Array(buf));
        if (value === undefined || done) break;
        for (const ev of decoder.push(value)) {
          if (ev.kind !== "frame") throw new Error(`bad frame (${ev.kind})`);
          this.#onMessage(validateFromVm(ev.value));
        }
        buf = value.buffer as ArrayBuffer;
      }
    } catch (e) {
      if (this.#proc === proc) {
        this.#log(`vm ${this.def.name}: bad message from its process (${(e as Error).message}); killing it`);
        this.#kill();
      }
    } finally {
      // after a bad frame the pipe is still open: cancelling closes the daemon's end (a no-op at its end)
      await reader.cancel().catch(() => {});
    }
  }

  #onMessage(msg: FromVm): void {
    switch (msg.type) {
      case "ready":
        this.#tty = this.#ptyPath;
        this.#state = "running";
        this.#ready?.resolve(this.#ptyPath ?? "");
        this.#ready = undefined;
        return;
      case "paused":
      case "resumed": {
        const i = this.#replies.findIndex((r) => r.kind === msg.type);
        if (i >= 0) this.#replies.splice(i, 1)[0].waiter.resolve();
        if (this.#state === "running" || this.#state === "paused") {
          this.#state = msg.type === "paused" ? "paused" : "running";
        }
        return;
      }
      case "ended":
        this.#ended = msg;
        return;
      case "shutting-down":
        this.#askedToShutDown = msg.asked;
        this.#log(
          msg.asked
            ? `vm ${this.def.name}: ${
              msg.by === "power-button" ? "pressed the ACPI power button" : "sent Ctrl-Alt-Del"
            }; waiting up to ${this.#timing.stopTimeoutMs} ms for the guest`
            : `vm ${this.def.name}: the guest has no ACPI or keyboard driver to ask; stopped its vCPUs`,
        );
        return;
      case "failed":
        this.#lastExit = `failed: ${msg.message}`;
        this.#log(`vm ${this.def.name}: ${msg.message}`);
        this.#ready?.reject(new VmStateError(`vm ${this.def.name} failed to start: ${msg.message}`));
        this.#ready = undefined;
        return;
    }
  }

  /** Hands the console to the VM's owner (as vmd does): owner uid, and the owner group with group access. */
  #giveTty(tty: string): void {
    const { uid, gid } = this.def.owner;
    try {
      Deno.chownSync(tty, uid ?? 0, gid);
      Deno.chmodSync(tty, gid === null ? 0o600 : 0o660);
    } catch (e) {
      this.#log(`vm ${this.def.name}: cannot give ${tty} to its owner: ${(e as Error).message}`);
    }
  }

  async #onExit(s: Deno.CommandStatus): Promise<void> {
    const ended = this.#ended;
    // the VM process is gone and its taps with it; a bridge vmd made goes with the last VM on it
    if (this.#nics !== undefined) await releaseBridges(this.#nics);
    this.#nics = undefined;
    if (this.#ptySlave !== null) closeFd(this.#ptySlave);
    this.#ptySlave = null;
    this.#ptyPath = null;
    this.#proc = undefined;
    // the write end of the process's stdin pipe: nothing closes it but us (its stdout reader closed itself
    // at end of stream); kept open, one pipe per VM run would leak for the daemon's life
    this.#writer?.abort().catch(() => {/* already errored: its descriptor is closed */});
    this.#writer = undefined;
    this.#tty = null;
    this.#state = "stopped";
    const how = s.signal !== null ? `signal ${s.signal}` : `exit status ${s.code}`;
    if (ended !== undefined) {
      const asked = this.#askedToShutDown && (ended.kind === "reboot" || ended.kind === "shutdown");
      this.#lastExit = asked ? `${ended.reason} (asked to shut down)` : ended.reason;
    } else if (this.#killedAfterTimeout) {
      this.#lastExit = `killed: the guest did not shut down within ${this.#timing.stopTimeoutMs / 1000} s ` +
        "of being asked";
    } else if (this.#lastExit === null || !this.#lastExit.startsWith("failed")) {
      this.#lastExit = `vm process died (${how})`;
    }
    this.#log(`vm ${this.def.name}: stopped: ${this.#lastExit}`);
    // a triple fault or a KVM error: the registers as KVM left them, one log line each
    for (const line of ended?.dump?.split("\n") ?? []) this.#log(`vm ${this.def.name}: ${line}`);
    const gone = new VmStateError(`vm ${this.def.name} stopped: ${this.#lastExit}`);
    this.#ready?.reject(gone);
    this.#ready = undefined;
    for (const r of this.#replies.splice(0)) r.waiter.reject(gone);
    if (!this.#userStop && ended !== undefined && (ended.kind === "reboot" || ended.kind === "shutdown")) {
      // as vmd(8): a reboot less than the window after the VM started is a fast one; a slower one clears
      // the count; the limit's fast reboot in a row leaves the VM stopped (a guest in a reboot loop)
      const ran = performance.now() - this.#startedAt;
      this.#fastReboots = ran < this.#timing.rebootWindowMs ? this.#fastReboots + 1 : 0;
      const window = `${this.#timing.rebootWindowMs / 1000} s`;
      if (this.#fastReboots >= this.#timing.rebootLimit) {
        this.#lastExit = `${ended.reason}; rebooted ${this.#timing.rebootLimit} times in a row within ` +
          `${window} of starting, left stopped`;
        this.#log(`vm ${this.def.name}: ${this.#lastExit}`);
      } else {
        this.#restarts++;
        this.#log(
          `vm ${this.def.name}: guest rebooted after ${(ran / 1000).toFixed(1)} s; restarting ` +
            `(${this.#restarts}; fast reboots in a row: ${this.#fastReboots} of ${this.#timing.rebootLimit})`,
        );
        this.#start().catch((e) => {
          this.#log(`vm ${this.def.name}: restart failed: ${(e as Error).message}`);
          this.#notifyStopped();
        });
        return;
      }
    }
    this.#notifyStopped();
  }

  #notifyStopped(): void {
    if (this.#state !== "stopped") return;
    for (const w of this.#stopWaiters.splice(0)) w();
  }

  #kill(): void {
    try {
      this.#proc?.kill("SIGKILL");
    } catch { /* already gone */ }
  }

  /**
   * Resolves when the VM is stopped (at once if it is), through restarts after guest reboots. With `gone`,
   * rejects when it aborts (the client waiting went away), and the waiter is forgotten.
   */
  waitStopped(gone?: AbortSignal): Promise<void> {
    if (this.#state === "stopped") return Promise.resolve();
    return new Promise((resolve, reject) => {
      if (gone === undefined) {
        this.#stopWaiters.push(resolve);
        return;
      }
      const onGone = () => {
        this.#stopWaiters = this.#stopWaiters.filter((w) => w !== waiter);
        reject(new VmStateError(`stopped waiting for vm ${this.def.name}: the client went away`));
      };
      const waiter = () => {
        gone.removeEventListener("abort", onGone);
        resolve();
      };
      if (gone.aborted) return onGone();
      gone.addEventListener("abort", onGone, { once: true });
      this.#stopWaiters.push(waiter);
    });
  }

  /**
   * Stops the VM: `force` kills its process at once; otherwise the guest is asked to shut down (Ctrl-Alt-Del
   * on its i8042 keyboard; a guest without a keyboard driver has its vCPUs stopped at once), the reboot or
   * power-off that follows ends the VM as stopped (not restarted, not counted as a reboot), and the process
   * is killed if it has not ended after the stop timeout. Resolves when it has stopped.
   */
  async stop(force: boolean): Promise<void> {
    if (this.#state === "stopped") throw new VmStateError(`vm ${this.def.name} is not running`);
    this.#userStop = true;
    const stopped = this.waitStopped();
    if (force) {
      this.#kill();
    } else {
      this.#state = "stopping";
      this.#send({ type: "shutdown" });
      const timer = setTimeout(() => {
        this.#log(`vm ${this.def.name}: did not stop within ${this.#timing.stopTimeoutMs} ms; killing it`);
        this.#killedAfterTimeout = true;
        this.#kill();
      }, this.#timing.stopTimeoutMs);
      await stopped.finally(() => clearTimeout(timer));
    }
    await stopped;
    await this.#exited;
  }

  /** Pauses every vCPU of a running VM. */
  pause(): Promise<void> {
    if (this.#state !== "running") {
      return Promise.reject(new VmStateError(`vm ${this.def.name} is ${this.#state}, not running`));
    }
    return this.#request("pause", "paused");
  }

  /** Resumes a paused VM. */
  unpause(): Promise<void> {
    if (this.#state !== "paused") {
      return Promise.reject(new VmStateError(`vm ${this.def.name} is ${this.#state}, not paused`));
    }
    return this.#request("resume", "resumed");
  }

  #request(type: "pause" | "resume", reply: "paused" | "resumed"): Promise<void> {
    const done = new Promise<void>((resolve, reject) =>
      this.#replies.push({ kind: reply, waiter: { resolve, reject } })
    );
    this.#send({ type });
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<void>((_, reject) => {
      timer = setTimeout(
        () => reject(new VmStateError(`vm ${this.def.name} did not ${type} within 10 s`)),
        10_000,
      );
    });
    return Promise.race([done, timeout]).finally(() => clearTimeout(timer));
  }
}
