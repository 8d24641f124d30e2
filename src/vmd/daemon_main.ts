/**
 * `vmd [-dv] [-D macro=value] [-f file]`: the daemon. Reads vm.conf, serves the control socket
 * (`VMD_SOCKET`, default /var/run/vmd.sock), starts the enabled VMs, re-reads the configuration on SIGHUP, and
 * on SIGTERM (or SIGINT) stops every VM and exits.
 *
 * @module
 */
import { bundleSummary } from "../build/bundles.ts";
import { removeCreatedBridges } from "./vm_nics.ts";
import { ConfigError } from "../config/config_error.ts";
import { formatDiagnostic } from "../config/diagnostic.ts";
import { resolveOwner } from "./access.ts";
import { ControlServer } from "./control_server.ts";
import { Daemon, type Logger } from "./daemon.ts";
import { printable } from "./printable.ts";
import { socketPath } from "./socket_path.ts";
import { UserDb } from "./user_db.ts";
import { DEFAULT_TIMING, type EntryTiming } from "./vm_entry.ts";

/** How the daemon runs. */
export interface DaemonMainOptions {
  /** vm.conf. */
  readonly configPath: string;
  /** `-D` macros. */
  readonly defines: Readonly<Record<string, string>>;
  /** `-v`. */
  readonly verbose: boolean;
  /** Entry timing; tests may shorten the stop timeout with VMD_STOP_TIMEOUT_MS. */
  readonly timing?: EntryTiming;
}

/** The daemon is already running on that socket, or the socket path is unusable. */
export class SocketInUseError extends Error {
  /** Builds the error. */
  constructor(path: string) {
    super(`another vmd is serving ${path}; stop it first, or set VMD_SOCKET to another path`);
    this.name = "SocketInUseError";
  }
}

function stderrLogger(verbose: boolean): Logger {
  const enc = new TextEncoder();
  const write = (m: string) => {
    try {
      // one line per message, whatever names and paths users put in it
      Deno.stderr.writeSync(enc.encode(`vmd: ${printable(m)}\n`));
    } catch { /* stderr gone */ }
  };
  const log: Logger = {
    verbose,
    info: write,
    debug: (m) => {
      if (log.verbose) write(m);
    },
  };
  return log;
}

/** The socket path names something that is not a socket (which vmd will not remove). */
export class SocketPathError extends Error {
  /** Builds the error. */
  constructor(path: string) {
    super(`${path} exists and is not a socket; remove it yourself, or set VMD_SOCKET to another path`);
    this.name = "SocketPathError";
  }
}

/**
 * Removes a stale socket left by a vmd that died; refuses when a live vmd answers on it, and never removes
 * anything but a socket.
 */
async function claimSocket(path: string): Promise<void> {
  let st: Deno.FileInfo;
  try {
    st = Deno.lstatSync(path);
  } catch {
    return;
  }
  if (!st.isSocket) throw new SocketPathError(path);
  try {
    const c = await Deno.connect({ transport: "unix", path });
    c.close();
    throw new SocketInUseError(path);
  } catch (e) {
    if (e instanceof SocketInUseError) throw e;
  }
  await Deno.remove(path);
}

function timingFromEnv(): EntryTiming {
  const ms = Number(Deno.env.get("VMD_STOP_TIMEOUT_MS"));
  return Number.isInteger(ms) && ms > 0 ? { ...DEFAULT_TIMING, stopTimeoutMs: ms } : DEFAULT_TIMING;
}

/** Runs the daemon until SIGTERM/SIGINT; resolves to the exit status. */
export async function daemonMain(o: DaemonMainOptions): Promise<number> {
  const log = stderrLogger(o.verbose);
  let daemon: Daemon;
  try {
    daemon = await Daemon.create({
      configPath: o.configPath,
      defines: o.defines,
      timing: o.timing ?? timingFromEnv(),
      log,
    });
  } catch (e) {
    if (e instanceof ConfigError) {
      for (const d of e.diagnostics) log.info(formatDiagnostic(d));
      log.info(`${o.configPath}: configuration has errors; not starting`);
    } else {
      log.info((e as Error).message);
    }
    return 1;
  }
  const path = socketPath();
  let server: ControlServer;
  try {
    await claimSocket(path);
    server = ControlServer.listen(path, (req, peer, gone) => daemon.handle(req, peer, gone), log.info);
    const owner = resolveOwner(daemon.config.global.socketOwner, await UserDb.load());
    Deno.chmodSync(path, 0o660);
    Deno.chownSync(path, owner.uid ?? 0, owner.gid ?? 0);
  } catch (e) {
    log.info(`cannot serve ${path}: ${(e as Error).message}`);
    return 1;
  }
  log.info(`listening on ${path} (pid ${Deno.pid})`);
  log.info(`VM processes run ${bundleSummary()}`);

  let finish: () => void = () => {};
  const finished = new Promise<void>((r) => finish = r);
  let stopping = false;
  const onTerm = () => {
    if (stopping) return;
    stopping = true;
    log.info("stopping every vm and exiting");
    finish();
  };
  const onHup = () => {
    daemon.reload().then((m) => log.info(m), (e) => {
      if (e instanceof ConfigError) { for (const d of e.diagnostics) log.info(formatDiagnostic(d)); }
      log.info(`reload failed; keeping the running configuration: ${(e as Error).message}`);
    });
  };
  Deno.addSignalListener("SIGTERM", onTerm);
  Deno.addSignalListener("SIGINT", onTerm);
  Deno.addSignalListener("SIGHUP", onHup);

  daemon.startPool();
  void daemon.startAll();
  await finished;
  await daemon.closePool();
  await daemon.stopAll();
  await removeCreatedBridges();
  await server.close();
  try {
    Deno.removeSync(path);
  } catch { /* already gone */ }
  Deno.removeSignalListener("SIGTERM", onTerm);
  Deno.removeSignalListener("SIGINT", onTerm);
  Deno.removeSignalListener("SIGHUP", onHup);
  log.info("exiting");
  return 0;
}
