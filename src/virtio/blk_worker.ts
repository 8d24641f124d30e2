/**
 * The virtio-blk worker's entry module. Its permissions: read (and write unless read-only) on its image and
 * the image's backing chain, nothing else.
 *
 * @module
 */
import { openDisk } from "../disk/open.ts";
import { BlkBackend } from "./blk.ts";
import { serveDeviceWorker } from "./device_worker_main.ts";

serveDeviceWorker(async (m) => {
  if (m.disk === undefined) throw new Error("virtio-blk worker needs a disk in its init message");
  const disk = await openDisk(m.disk.spec, { readOnly: m.disk.readOnly });
  return new BlkBackend(disk, { id: m.disk.id });
});
