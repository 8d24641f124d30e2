/**
 * The virtio-scsi (CD-ROM) worker's entry module. Its only permission: libc (scoped to its path), for pread on
 * the descriptor of its ISO image, which vmd opened before; no path is opened here, and Landlock takes every
 * file away from this thread once it holds the descriptor.
 *
 * @module
 */
import { confineThisThread } from "../../ffi/landlock.ts";
import { openLibc } from "../../ffi/libc.ts";
import { FileIO } from "../disk/file_io.ts";
import { serveDeviceWorker } from "./device_worker_main.ts";
import { ScsiBackend } from "./scsi.ts";
import { CdromUnit } from "./scsi_cdrom.ts";

serveDeviceWorker((m) => {
  if (m.cdrom === undefined) throw new Error("virtio-scsi worker needs a CD-ROM in its init message");
  const libc = openLibc(m.cdrom.libcPath);
  const file = FileIO.fromFd(m.cdrom.fd, false, m.cdrom.name);
  confineThisThread(libc);
  return Promise.resolve(new ScsiBackend(new CdromUnit(file, { serial: m.cdrom.serial })));
});
