/**
 * The vCPU worker's entry module. Its only permission is ffi on libc's path: it runs KVM_RUN on the vCPU fd it
 * is given, dispatches exits to its buses, and reports how the run ended. When its loop starts it confines
 * its own thread with Landlock (no filesystem access).
 *
 * @module
 */
/// <reference lib="deno.worker" />
import { confineThisThread } from "../../ffi/landlock.ts";
import { type Libc, openLibc } from "../../ffi/libc.ts";
import { KvmRun, VcpuFd, VmFd } from "../../ffi/kvm.ts";
import { gettid, KICK_SIGNAL } from "../../ffi/thread.ts";
import { buildBuses } from "../devices/device_spec.ts";
import { probeConfinement } from "../privsep/confinement_probe.ts";
import { runLibcProbes } from "../privsep/libc_probe.ts";
import { VcpuControl } from "./control_block.ts";
import { ExitLatch, runLoop, type RunLoopContext } from "./run_loop.ts";
import type { FromVcpuMessage, ToVcpuMessage, VcpuInitMessage } from "./vcpu_messages.ts";
import { validateToVcpu } from "./vcpu_messages.ts";
import { VcpuState } from "./vcpu_state.ts";

function send(m: FromVcpuMessage): void {
  self.postMessage(m);
}

let prepared: RunLoopContext | undefined;
let libcPath = "";

let kickArmed = false;

/**
 * Opens libc and arms the kick (both once): on the "warm" message of a pre-warmed worker (while it waits
 * for a vCPU; ~4 ms of dlopen measured), or at init.
 */
function warm(path: string): Libc {
  const libc = openLibc(path);
  libcPath = path;
  // The kick: a SIGUSR2 aimed at this thread makes KVM_RUN return EINTR. The listener itself does nothing;
  // having one keeps the signal's default action (terminate the process) away.
  if (!kickArmed) Deno.addSignalListener(KICK_SIGNAL, () => {});
  kickArmed = true;
  return libc;
}

/** Maps kvm_run and builds the buses (after {@link warm}); the loop starts on the "run" message. */
function init(m: VcpuInitMessage): void {
  if (prepared !== undefined) throw new Error("init received twice");
  const libc = warm(m.libcPath);
  const control = new VcpuControl(m.control);
  const vcpu = VcpuFd.adopt(m.vcpuFd, libc);
  const run = new KvmRun(m.run);
  const latch = new ExitLatch();
  const vm = m.vmFd === undefined ? undefined : VmFd.adopt(m.vmFd, libc);
  const buses = buildBuses(m.devices, {
    requestExit: (status) => latch.request(status),
    requestReboot: () => latch.requestReboot(),
    requestPowerOff: () => latch.requestPowerOff(),
    irqLine: (gsi, level) => vm?.irqLine(gsi, level),
  });
  const tid = gettid(libc);
  control.setTid(tid);
  prepared = { vcpu, run, buses, control, latch, pvm: m.pvm === true };
  // From here on this thread needs no file: Landlock takes them all away from it (a no-op report where the
  // kernel has no Landlock). Landlock is per thread, so the VM process's lock-down cannot do this for us;
  // see src/privsep/lockdown.ts.
  confineThisThread(libc);
  send({ type: "ready", tid });
}

/** Runs the exit loop until the run ends, reports, and closes the worker. */
function runToEnd(): void {
  if (prepared === undefined) throw new Error("run received before init");
  const { control } = prepared;
  let exit;
  try {
    exit = runLoop(prepared);
  } catch (e) {
    exit = { kind: "error" as const, message: e instanceof Error ? e.message : String(e) };
  }
  control.setState(VcpuState.Stopped);
  send({ type: "ended", exit });
  self.close();
}

self.onmessage = async (event: MessageEvent<unknown>) => {
  const why = validateToVcpu(event.data);
  if (why !== undefined) {
    send({ type: "failed", message: `vcpu worker: bad message: ${why}` });
    return;
  }
  const m = event.data as ToVcpuMessage;
  try {
    if (m.type === "probe") {
      const base = await probeConfinement();
      const libc = m.targets === undefined ? undefined : await runLibcProbes(m.targets, libcPath);
      send({ type: "probe-result", result: libc === undefined ? base : { ...base, libc } });
    } else if (m.type === "warm") warm(m.libcPath);
    else if (m.type === "init") init(m);
    else runToEnd();
  } catch (e) {
    send({ type: "failed", message: e instanceof Error ? `${e.name}: ${e.message}` : String(e) });
  }
};
