/**
 * The virtio-net worker's entry module. Its one power is its tap: it reads and writes the tap fd the main
 * thread opened, through libc (ffi scoped to libc's path); guest memory and the transport state arrive as
 * SharedArrayBuffers. Once its tap is adopted it confines its own thread with Landlock (no filesystem access).
 *
 * @module
 */
import { confineThisThread } from "../../ffi/landlock.ts";
import { openLibc } from "../../ffi/libc.ts";
import { TapIo } from "../../ffi/tap.ts";
import { serveDeviceWorker } from "./device_worker_main.ts";
import { NetBackend } from "./net.ts";
import { W } from "./transport_state.ts";

serveDeviceWorker((m) => {
  const n = m.net;
  if (n === undefined) return Promise.reject(new Error("virtio-net: init carries no tap"));
  const io = new TapIo(n.tapFd, n.libcPath);
  // Its tap fd is all it needs: Landlock takes every file away from this thread (per thread, so the VM
  // process's lock-down cannot do it for us; see src/privsep/lockdown.ts).
  confineThisThread(openLibc(n.libcPath));
  const mac = Uint8Array.from(n.mac);
  const backend = new NetBackend(io, {
    mac,
    lockedLladdr: n.lockedLladdr,
    dhcp: n.dhcp === undefined
      ? undefined
      : { guestMac: mac, hostMac: Uint8Array.from(n.dhcp.hostMac), host: n.dhcp.host, guest: n.dhcp.guest },
  }, m.state);
  const w = new Int32Array(m.state, 0, W.STOP + 1);
  backend.watchTap(() => Atomics.load(w, W.STOP) !== 0).catch(() => {});
  return Promise.resolve(backend);
});
