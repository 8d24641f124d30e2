/**
 * The main thread's side of a virtio device: spawns its worker from the permission table, waits until the
 * device is ready, turns its interrupt doorbell into the INTx line (the main thread holds the VM fd), and
 * stops it. A device may instead start its worker late, when the driver sets DRIVER_OK (late_worker.ts): the
 * main thread then publishes the transport itself and watches the doorbell until then.
 *
 * @module
 */
import type { ProbeTargets } from "../privsep/libc_probe.ts";
import type { GuestMemoryShare } from "../memory/guest_memory.ts";
import { type PolicyContext, workerOptions } from "../privsep/permission_table.ts";
import { entryUrl } from "../privsep/permission_table.ts";
import type {
  BlkDiskInit,
  CdromInit,
  DeviceProbeResult,
  FromDeviceMessage,
  NetInit,
  ToDeviceMessage,
} from "./device_messages.ts";
import { validateFromDevice } from "./device_messages.ts";
import {
  DEVICE_CONFIG_OFFSET,
  lockIrq,
  MSIX_VECTORS,
  msixWord,
  NOTIFY_STOP,
  STATUS,
  unlockIrq,
  W,
} from "./transport_state.ts";
import { publishTransport, type TransportShape } from "./device_core.ts";

/** MSI-X message control bits (as in the capability). */
const MSIX_ENABLE = 0x8000;
const MSIX_FUNCTION_MASK = 0x4000;

/** Where a function's MSI-X capability is, and how to send a message. */
export interface MsixDelivery {
  /** The function's PCI config state (its message control says whether MSI-X is on). */
  readonly config: SharedArrayBuffer;
  /** The MSI-X capability's offset in config space. */
  readonly cap: number;
  /** Sends one message (KVM_SIGNAL_MSI). */
  readonly signal: (addressLo: number, addressHi: number, data: number) => void;
}

/** A device worker that failed to start or reported an error. */
export class DeviceWorkerError extends Error {
  /** Builds the error. */
  constructor(message: string) {
    super(message);
    this.name = "DeviceWorkerError";
  }
}

/** What to start. */
export interface DeviceSpawnOptions {
  /** The permission-table row. */
  readonly row: "virtio-blk" | "virtio-rng" | "virtio-net" | "virtio-scsi";
  /** A label for the worker (e.g. `virtio-blk0`). */
  readonly label: string;
  /** Policy facts (for virtio-blk: its disk's paths). */
  readonly policy: PolicyContext;
  /** Guest RAM. */
  readonly memory: GuestMemoryShare;
  /** The function's transport state. */
  readonly state: SharedArrayBuffer;
  /** virtio-blk: the disk. */
  readonly disk?: BlkDiskInit;
  /** virtio-net: the tap. */
  readonly net?: NetInit;
  /** virtio-scsi: the CD-ROM image. */
  readonly cdrom?: CdromInit;
  /** The INTx GSI. */
  readonly gsi: number;
  /** Drives the GSI (the VM fd's KVM_IRQ_LINE). */
  readonly irqLine: (gsi: number, level: 0 | 1) => void;
  /** MSI-X, when the function offers it. */
  readonly msix?: MsixDelivery;
}

/** Device workers started ahead of time (their isolates load while the VM is set up), by row. */
const prewarmed = new Map<DeviceSpawnOptions["row"], Worker>();

/**
 * Starts one worker of `row` now (a VM process waiting in the daemon's pool: every VM of vmd has a
 * virtio-rng device); {@link DeviceHandle.spawn} then takes it. A worker is generic until its init message,
 * so a pre-warmed one carries no VM state; its permissions are its row's, as for any other.
 */
export function prewarmDeviceWorker(row: DeviceSpawnOptions["row"], policy: PolicyContext): void {
  if (!prewarmed.has(row)) prewarmed.set(row, new Worker(entryUrl(row), workerOptions(row, policy, row)));
}

/** A running device worker. */
export class DeviceHandle {
  /** Its label. */
  readonly label: string;
  readonly #o: DeviceSpawnOptions;
  #worker: Worker | undefined;
  #late: { readonly url: string; started?: Promise<void> } | undefined;
  readonly #w: Int32Array;
  readonly #msixCtrl: Uint8Array | undefined;
  #pending: ((m: FromDeviceMessage) => void) | undefined;
  #failure: string | undefined;
  #stopped = false;
  #pump: Promise<void> | undefined;

  private constructor(o: DeviceSpawnOptions) {
    this.label = o.label;
    this.#o = o;
    this.#w = new Int32Array(o.state, 0, DEVICE_CONFIG_OFFSET / 4);
    this.#msixCtrl = o.msix === undefined ? undefined : new Uint8Array(o.msix.config, o.msix.cap + 2, 2);
  }

  #attach(worker: Worker): void {
    this.#worker = worker;
    worker.onmessage = (e: MessageEvent<unknown>) => {
      const why = validateFromDevice(e.data);
      const m: FromDeviceMessage = why === undefined
        ? e.data as FromDeviceMessage
        : { type: "failed", message: `${this.label}: bad message from worker: ${why}` };
      if (m.type === "failed") this.#failure = m.message;
      const p = this.#pending;
      this.#pending = undefined;
      p?.(m);
    };
    worker.onerror = (e) => {
      e.preventDefault();
      this.#failure = `${this.label}: worker error: ${e.message}`;
      const p = this.#pending;
      this.#pending = undefined;
      p?.({ type: "failed", message: this.#failure });
    };
  }

  #ask(m: ToDeviceMessage): Promise<FromDeviceMessage> {
    return new Promise((resolve) => {
      this.#pending = resolve;
      this.#worker!.postMessage(m);
    });
  }

  #init(published: boolean): Promise<FromDeviceMessage> {
    const o = this.#o;
    return this.#ask({
      type: "init",
      memory: o.memory,
      state: o.state,
      disk: o.disk,
      net: o.net,
      cdrom: o.cdrom,
      published,
    });
  }

  /** Spawns the worker and waits until its device is ready. Throws {@link DeviceWorkerError}. */
  static async spawn(o: DeviceSpawnOptions): Promise<DeviceHandle> {
    const worker = prewarmed.get(o.row) ??
      new Worker(entryUrl(o.row), workerOptions(o.row, o.policy, o.label));
    prewarmed.delete(o.row);
    const h = new DeviceHandle(o);
    h.#attach(worker);
    const r = await h.#init(false);
    if (r.type !== "ready") {
      worker.terminate();
      throw new DeviceWorkerError(
        `${o.label}: ${r.type === "failed" ? r.message : "unexpected answer"}${
          o.row === "virtio-blk"
            ? " (check the disk path and mode)"
            : o.row === "virtio-scsi"
            ? " (check the CD-ROM image)"
            : ""
        }`,
      );
    }
    h.#pump = h.#interruptPump();
    h.#pump.catch(() => {});
    return h;
  }

  /**
   * A device whose worker starts when the driver sets DRIVER_OK (or a probe asks for it), from `url` (a
   * `blob:` module, late_worker.ts): the transport is published from `shape` now, and the interrupt doorbell
   * is served meanwhile. A worker that fails to start is reported on stderr and as {@link failure}; the
   * guest's requests then go unanswered, as with a worker that failed later.
   */
  static spawnLate(o: DeviceSpawnOptions, url: string, shape: TransportShape): DeviceHandle {
    publishTransport(o.state, shape);
    const h = new DeviceHandle(o);
    h.#late = { url };
    h.#pump = h.#interruptPump();
    h.#pump.catch(() => {});
    h.#watchForDriver().catch(() => {});
    return h;
  }

  /** Whether the worker is running (a late device's starts at DRIVER_OK). */
  get started(): boolean {
    return this.#worker !== undefined;
  }

  /**
   * Waits on the notify doorbell (resets and DRIVER_OK ring it) until the driver has set DRIVER_OK. A reset
   * meanwhile is complete at once (there are no queues to drop): device_status reads 0 again, as the driver
   * waits for. The doorbell's bits are left for the worker, whose first pass then builds the queues.
   */
  async #watchForDriver(): Promise<void> {
    const w = this.#w;
    for (;;) {
      if (Atomics.load(w, W.RESET_PENDING) !== 0) {
        Atomics.store(w, W.RESET_PENDING, 0);
        Atomics.notify(w, W.RESET_PENDING);
      }
      if (this.#stopped || (Atomics.load(w, W.STATUS) & STATUS.DRIVER_OK) !== 0) break;
      const r = Atomics.waitAsync(w, W.NOTIFY, Atomics.load(w, W.NOTIFY));
      if (r.async) await r.value;
    }
    if (!this.#stopped) await this.#startLate();
  }

  /** Starts a late device's worker once; resolves when it is serving (or has failed, see {@link failure}). */
  #startLate(): Promise<void> {
    const late = this.#late;
    if (late === undefined || this.#stopped) return Promise.resolve();
    late.started ??= (async () => {
      const o = this.#o;
      try {
        this.#attach(new Worker(late.url, workerOptions(o.row, o.policy, o.label)));
        const r = await this.#init(true);
        if (r.type !== "ready") {
          throw new DeviceWorkerError(r.type === "failed" ? r.message : "unexpected answer");
        }
      } catch (e) {
        this.#failure ??= `${this.label}: late start failed: ${(e as Error).message}`;
        console.error(`vm: ${this.#failure}`);
      }
      if (this.#stopped) this.#worker?.terminate();
    })();
    return late.started;
  }

  /** The worker's last reported failure, if any. */
  get failure(): string | undefined {
    return this.#failure;
  }

  /** Asks the running worker to try forbidden powers (reading `otherFile` among them). */
  async probe(otherFile: string, targets?: ProbeTargets): Promise<DeviceProbeResult> {
    await this.#startLate();
    if (this.#worker === undefined) throw new DeviceWorkerError(`${this.label}: not running`);
    const r = await this.#ask({ type: "probe", otherFile, targets });
    if (r.type !== "probe-result") throw new DeviceWorkerError(`${this.label}: probe failed`);
    return r.result;
  }

  /** The device's counters (the loop's, and the device type's: virtio-net's frames and drops). */
  async stats(): Promise<Readonly<Record<string, number>>> {
    // a late device whose driver has not started it has served nothing; one that is starting, soon
    if (this.#late !== undefined && this.#late.started === undefined) return {};
    await this.#late?.started;
    if (this.#worker === undefined) return {};
    const r = await this.#ask({ type: "stats" });
    if (r.type !== "stats") throw new DeviceWorkerError(`${this.label}: stats failed`);
    return r.counters;
  }

  /** Waits on the interrupt doorbell and asserts the line while ISR is non-zero. */
  async #interruptPump(): Promise<void> {
    const w = this.#w;
    let seen = Atomics.load(w, W.IRQ_SEQ);
    while (!this.#stopped) {
      const r = Atomics.waitAsync(w, W.IRQ_SEQ, seen);
      if (r.async) await r.value;
      seen = Atomics.load(w, W.IRQ_SEQ);
      if (this.#stopped) return;
      lockIrq(w);
      try {
        this.#deliver();
      } catch (e) {
        // After stop() the VM fd may be gone; anything else is worth knowing about.
        if (!this.#stopped) {
          this.#failure = `${this.label}: interrupt delivery failed: ${(e as Error).message}`;
        }
      }
      unlockIrq(w);
    }
  }

  /** With MSI-X on, sends each pending unmasked vector's message; otherwise drives INTx from ISR. */
  #deliver(): void {
    const w = this.#w;
    const c = this.#msixCtrl;
    const ctrl = c === undefined ? 0 : Atomics.load(c, 0) | (Atomics.load(c, 1) << 8);
    if ((ctrl & MSIX_ENABLE) !== 0) {
      if ((ctrl & MSIX_FUNCTION_MASK) !== 0) return;
      const pending = Atomics.load(w, W.PENDING_VECTORS);
      for (let v = 0; v < MSIX_VECTORS; v++) {
        const bit = 1 << v;
        if ((pending & bit) === 0 || (Atomics.load(w, msixWord(v, 3)) & 1) !== 0) continue;
        Atomics.and(w, W.PENDING_VECTORS, ~bit);
        this.#o.msix!.signal(
          Atomics.load(w, msixWord(v, 0)) >>> 0,
          Atomics.load(w, msixWord(v, 1)) >>> 0,
          Atomics.load(w, msixWord(v, 2)) >>> 0,
        );
      }
      return;
    }
    Atomics.store(w, W.PENDING_VECTORS, 0);
    if (Atomics.load(w, W.ISR) !== 0 && Atomics.load(w, W.IRQ_ASSERTED) === 0) {
      Atomics.store(w, W.IRQ_ASSERTED, 1);
      this.#o.irqLine(this.#o.gsi, 1);
    }
  }

  /** Stops the device loop and the worker (the interrupt pump ends on its next wake-up, which this rings). */
  stop(): void {
    if (this.#stopped) return;
    this.#stopped = true;
    Atomics.store(this.#w, W.STOP, 1);
    Atomics.or(this.#w, W.NOTIFY, NOTIFY_STOP);
    Atomics.notify(this.#w, W.NOTIFY);
    Atomics.add(this.#w, W.IRQ_SEQ, 1);
    Atomics.notify(this.#w, W.IRQ_SEQ);
    this.#worker?.terminate();
  }
}
