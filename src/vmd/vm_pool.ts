/**
 * The daemon's warm pool: VM processes started ahead of need (Deno up, the VM-process modules loaded, a
 * vCPU worker's isolate up), each waiting for a VM. A start takes one ({@link VmPool.take}) and a
 * replacement is started a moment later, in the background; with size 0 (or an empty pool) `take` spawns a
 * fresh one, so every VM process — pooled or not — is started and handed its VM the same way
 * (`vm_launcher.ts`). A pooled process holds nothing of any VM and is not locked down: it locks down
 * exactly as a fresh one does, once it has its VM (identity from the VM's id, no_new_privs, Landlock,
 * seccomp). Pool processes are invisible to users: they are not VMs; a VM's process is its own from the
 * moment it is taken.
 *
 * A pool process that dies while it waits is replaced (at most {@link RESPAWN_LIMIT} times within
 * {@link RESPAWN_WINDOW_MS}, so that a broken installation does not spin).
 *
 * @module
 */
import { closeFd } from "../../ffi/fd.ts";
import { spawnVmProcess, type VmProcess } from "./vm_launcher.ts";

/** How long after a take the replacement starts (lets the taken process boot its VM first). */
export const REFILL_DELAY_MS = 150;
/** Pool processes that may die within {@link RESPAWN_WINDOW_MS} before the pool stops replacing them. */
export const RESPAWN_LIMIT = 5;
/** The window of {@link RESPAWN_LIMIT}. */
export const RESPAWN_WINDOW_MS = 10_000;

/** VM processes started ahead, waiting for a VM. */
export class VmPool {
  #size: number;
  readonly #idle = new Set<VmProcess>();
  readonly #log: (msg: string) => void;
  #deaths: number[] = [];
  #timer: ReturnType<typeof setTimeout> | undefined;
  #closed = false;

  /** A pool of `size` processes (started by {@link resize} or the first {@link refill}). */
  constructor(size: number, log: (msg: string) => void) {
    this.#size = size;
    this.#log = log;
  }

  /** The pool's target size. */
  get size(): number {
    return this.#size;
  }

  /** The pids of the processes waiting now. */
  get idlePids(): number[] {
    return [...this.#idle].map((p) => p.proc.pid);
  }

  /** Changes the target size: fills up, or ends the processes beyond it. */
  resize(size: number): void {
    this.#size = size;
    for (const p of [...this.#idle].slice(size)) this.#end(p);
    this.refill();
  }

  /** A VM process for a VM: a waiting one, or a fresh one; a replacement follows in the background. */
  take(): VmProcess {
    const [first] = this.#idle;
    if (first !== undefined) this.#idle.delete(first);
    this.#schedule(REFILL_DELAY_MS);
    return first ?? spawnVmProcess();
  }

  /** Starts processes until the pool has its size (now). */
  refill(): void {
    while (!this.#closed && this.#idle.size < this.#size) {
      const now = Date.now();
      this.#deaths = this.#deaths.filter((t) => now - t < RESPAWN_WINDOW_MS);
      if (this.#deaths.length >= RESPAWN_LIMIT) {
        this.#log(
          `vm pool: ${RESPAWN_LIMIT} pool processes died within ${RESPAWN_WINDOW_MS / 1000} s; ` +
            "not replacing them for now (check the log above for why)",
        );
        this.#schedule(RESPAWN_WINDOW_MS);
        return;
      }
      let p: VmProcess;
      try {
        p = spawnVmProcess();
      } catch (e) {
        this.#log(`vm pool: cannot start a VM process: ${(e as Error).message}`);
        this.#deaths.push(now);
        continue;
      }
      this.#idle.add(p);
      // its stdout stays unread until it is taken: a waiting process writes nothing
      void p.proc.status.then((s) => {
        if (!this.#idle.delete(p)) return; // taken, or ended by the pool
        void release(p);
        this.#deaths.push(Date.now());
        this.#log(
          `vm pool: process ${p.proc.pid} died while waiting (${
            s.signal !== null ? `signal ${s.signal}` : `exit status ${s.code}`
          }); replacing it`,
        );
        this.#schedule(0);
      });
    }
  }

  /** Ends every waiting process and starts no more; resolves once they have exited. */
  async close(): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#timer);
    const ending = [...this.#idle].map((p) => this.#end(p));
    await Promise.all(ending);
  }

  #schedule(ms: number): void {
    if (this.#closed || this.#timer !== undefined) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.refill();
    }, ms);
  }

  async #end(p: VmProcess): Promise<void> {
    this.#idle.delete(p);
    try {
      p.proc.kill("SIGKILL");
    } catch { /* already gone */ }
    await p.proc.status;
    await release(p);
  }
}

/** Closes the daemon's ends of an ended process's channels (descriptor channel, stdin, stdout). */
async function release(p: VmProcess): Promise<void> {
  closeFd(p.channel);
  await p.proc.stdin.abort().catch(() => {});
  await p.proc.stdout.cancel().catch(() => {});
}
