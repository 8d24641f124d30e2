/**
 * The virtio-blk worker's entry module. Its permissions: read (and write unless read-only) on the links to
 * its image's descriptor and its backing chain's (opened before by vmd), nothing else.
 *
 * @module
 */
import { openDiskFiles } from "../disk/open.ts";
import { BlkBackend } from "./blk.ts";
import { serveDeviceWorker } from "./device_worker_main.ts";

serveDeviceWorker(async (m) => {
  if (m.disk === undefined) throw new Error("virtio-blk worker needs a disk in its init message");
  const disk = await openDiskFiles(m.disk.files, m.disk.readOnly);
  return new BlkBackend(disk, { id: m.disk.id });
});
