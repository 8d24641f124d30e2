/**
 * What every virtio device worker runs: validate the init message, build the backend, serve the queues.
 * The entry modules (one per permission-table row) only say which backend.
 *
 * @module
 */
/// <reference lib="deno.worker" />
import { GuestMemory } from "../memory/guest_memory.ts";
import { probeConfinement } from "../privsep/confinement_probe.ts";
import { runLibcProbes } from "../privsep/libc_probe.ts";
import { type VirtioBackend, VirtioDevice } from "./device_core.ts";
import type {
  DeviceInitMessage,
  DeviceProbeResult,
  FromDeviceMessage,
  ToDeviceMessage,
} from "./device_messages.ts";
import { validateToDevice } from "./device_messages.ts";

async function attempt(f: () => unknown): Promise<string> {
  try {
    await f();
    return "allowed";
  } catch (e) {
    return e instanceof Error ? e.name : String(e);
  }
}

/** Runs the worker: `makeBackend` builds the device from its init message. */
export function serveDeviceWorker(makeBackend: (m: DeviceInitMessage) => Promise<VirtioBackend>): void {
  const send = (m: FromDeviceMessage) => self.postMessage(m);
  let started = false;
  let libcPath: string | undefined; // the workers that hold libc (virtio-blk, virtio-net, virtio-scsi) were given its path
  let device: VirtioDevice | undefined;
  self.onmessage = async (event: MessageEvent<unknown>) => {
    const why = validateToDevice(event.data);
    if (why !== undefined) {
      send({ type: "failed", message: `device worker: bad message: ${why}` });
      return;
    }
    const m = event.data as ToDeviceMessage;
    try {
      if (m.type === "probe") {
        const base = await probeConfinement();
        const result: DeviceProbeResult = {
          ...base,
          ffi: await attempt(() => Deno.dlopen("libc.so.6", {})),
          otherFile: await attempt(() => Deno.readFileSync(m.otherFile)),
          ...(m.targets === undefined ? {} : { libc: await runLibcProbes(m.targets, libcPath) }),
        };
        send({ type: "probe-result", result });
        return;
      }
      if (m.type === "stats") {
        send({ type: "stats", counters: device?.stats() ?? {} });
        return;
      }
      if (started) throw new Error("init received twice");
      started = true;
      libcPath = m.disk?.libcPath ?? m.net?.libcPath ?? m.cdrom?.libcPath;
      const memory = new GuestMemory(m.memory);
      device = new VirtioDevice(memory, m.state, await makeBackend(m), m.published === true);
      send({ type: "ready" });
      await device.run();
    } catch (e) {
      send({ type: "failed", message: e instanceof Error ? `${e.name}: ${e.message}` : String(e) });
    }
  };
}
