/**
 * The vCPU worker's entry module. Its only permission is ffi on libc's path: it runs KVM_RUN on the vCPU fd it
 * is given, dispatches exits to its buses, and reports how the run ended.
 *
 * @module
 */
/// <reference lib="deno.worker" />
import { openLibc } from "../../ffi/libc.ts";
import { VcpuFd } from "../../ffi/kvm.ts";
import { gettid, KICK_SIGNAL } from "../../ffi/thread.ts";
import { buildBuses } from "../devices/device_spec.ts";
import { probeConfinement } from "../privsep/confinement_probe.ts";
import { VcpuControl } from "./control_block.ts";
import { ExitLatch, runLoop } from "./run_loop.ts";
import type { FromVcpuMessage, VcpuInitMessage } from "./vcpu_messages.ts";
import { validateToVcpu } from "./vcpu_messages.ts";
import { VcpuState } from "./vcpu_state.ts";

function send(m: FromVcpuMessage): void {
  self.postMessage(m);
}

function start(m: VcpuInitMessage): void {
  const libc = openLibc(m.libcPath);
  // The kick: a SIGUSR2 aimed at this thread makes KVM_RUN return EINTR. The listener itself does nothing;
  // having one keeps the signal's default action (terminate the process) away.
  Deno.addSignalListener(KICK_SIGNAL, () => {});
  const control = new VcpuControl(m.control);
  const vcpu = VcpuFd.adopt(m.vcpuFd, libc);
  const run = vcpu.mapRun(m.mmapSize);
  const latch = new ExitLatch();
  const buses = buildBuses(m.devices, { requestExit: (status) => latch.request(status) });
  const tid = gettid(libc);
  control.setTid(tid);
  send({ type: "ready", tid });
  let exit;
  try {
    exit = runLoop({ vcpu, run, buses, control, latch });
  } catch (e) {
    exit = { kind: "error" as const, message: e instanceof Error ? e.message : String(e) };
  }
  control.setState(VcpuState.Stopped);
  run.unmap();
  send({ type: "ended", exit });
  self.close();
}

self.onmessage = async (event: MessageEvent<unknown>) => {
  const why = validateToVcpu(event.data);
  if (why !== undefined) {
    send({ type: "failed", message: `vcpu worker: bad message: ${why}` });
    return;
  }
  const m = event.data as VcpuInitMessage | { type: "probe" };
  try {
    if (m.type === "probe") send({ type: "probe-result", result: await probeConfinement() });
    else start(m);
  } catch (e) {
    send({ type: "failed", message: e instanceof Error ? `${e.name}: ${e.message}` : String(e) });
  }
};
