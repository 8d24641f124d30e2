/**
 * The virtio-blk worker's entry module. Its only permission: libc (scoped to its path), for pread/pwrite on
 * the descriptors of its image and backing chain, which vmd opened before; no path is opened here.
 *
 * @module
 */
import { confineThisThread } from "../../ffi/landlock.ts";
import { openLibc } from "../../ffi/libc.ts";
import { openDiskFiles } from "../disk/open.ts";
import { BlkBackend } from "./blk.ts";
import { serveDeviceWorker } from "./device_worker_main.ts";

serveDeviceWorker(async (m) => {
  if (m.disk === undefined) throw new Error("virtio-blk worker needs a disk in its init message");
  const libc = openLibc(m.disk.libcPath);
  const disk = await openDiskFiles(m.disk.files, m.disk.readOnly);
  // Its descriptors are all it needs: Landlock takes every file away from this thread (per thread, so the
  // VM process's lock-down cannot do it for us; see src/privsep/lockdown.ts).
  confineThisThread(libc);
  return new BlkBackend(disk, { id: m.disk.id });
});
