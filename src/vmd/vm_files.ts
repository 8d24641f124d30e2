/**
 * The files of one VM start, opened by the daemon: kernel, initrd, each disk and every image of its backing
 * chain, the CD-ROM's ISO image (read-only), each once, with the rights of whoever named it (a user's own
 * files as that user; vm.conf's as root), no final symlink, regular files only, type-checked without
 * blocking. The VM process is sent the descriptors over its descriptor channel (`spec_fds.ts`) and reads them
 * with pread; the daemon closes its copies once they are sent.
 * Formats decided here are binding for the VM's life and its restarts.
 *
 * @module
 */
import { closeFd } from "../../ffi/fd.ts";
import { type FileCredentials, type OpenedFile, openFileOnce } from "../../ffi/open_file.ts";
import type { DiskFormat } from "../disk/disk.ts";
import { type ChainImage, closeImageChain, diskFilesOf, openImageChain } from "../disk/image_chain.ts";
import type { SpecDisk, SpecFile } from "./vm_messages.ts";
import { cdromImageProblem } from "../virtio/scsi_cdrom.ts";

/** A CD-ROM image that cannot be one. */
export class CdromImageError extends Error {
  /** Builds the error. */
  constructor(message: string) {
    super(message);
    this.name = "CdromImageError";
  }
}

/** A disk as a VM definition names it. */
export interface DefinitionDisk {
  /** The image's path (absolute). */
  readonly path: string;
  /** Attached read-only. */
  readonly readOnly: boolean;
  /** The declared format (vm.conf `format`, `raw:`/`qcow2:`); probed at the first start when absent. */
  readonly format?: DiskFormat;
}

/** What the VM's files are and who named them. */
export interface VmFileRequest {
  /** The kernel's path. */
  readonly kernel: string;
  /** The initrd's path, or null. */
  readonly initrd: string | null;
  /** The disks. */
  readonly disks: readonly DefinitionDisk[];
  /** The CD-ROM's ISO image, or null. */
  readonly cdrom: string | null;
  /** Open a path with this user's rights (files a user named); root's own when it returns undefined. */
  readonly openerOf: (path: string) => FileCredentials | undefined;
  /** The rights of a file's owner (a backing file must be one its image's owner could open). */
  readonly credentialsOf: (uid: number) => FileCredentials;
  /** Formats probed at an earlier start of this VM, by image path: they stay what they were. */
  readonly probed: ReadonlyMap<string, DiskFormat>;
}

/** A VM's files, open. */
export class OpenVmFiles {
  /** The kernel as the VM process reaches it. */
  readonly kernel: SpecFile;
  /** The initrd, or null. */
  readonly initrd: SpecFile | null;
  /** The disks as the VM process gets them. */
  readonly disks: readonly SpecDisk[];
  /** The CD-ROM image, or null. */
  readonly cdrom: SpecFile | null;
  /** Each disk's chain, as opened (formats, identities). */
  readonly chains: readonly ChainImage[][];
  readonly #fds: number[];
  #closed = false;

  private constructor(
    boot: OpenedFile[],
    chains: ChainImage[][],
    readOnly: readonly boolean[],
    cdrom: OpenedFile | undefined,
  ) {
    this.chains = chains;
    this.#fds = [...boot.map((b) => b.fd), ...chains.flat().map((c) => c.fd), ...(cdrom ? [cdrom.fd] : [])];
    const file = (f: OpenedFile): SpecFile => ({ fd: f.fd, name: f.path });
    this.cdrom = cdrom === undefined ? null : file(cdrom);
    this.kernel = file(boot[0]);
    this.initrd = boot.length > 1 ? file(boot[1]) : null;
    this.disks = chains.map((chain, i) => ({
      readOnly: readOnly[i],
      files: diskFilesOf(chain),
    }));
  }

  /** Opens everything a VM start needs; on any failure nothing stays open. */
  static open(req: VmFileRequest): OpenVmFiles {
    const boot: OpenedFile[] = [];
    const chains: ChainImage[][] = [];
    let cdrom: OpenedFile | undefined;
    try {
      boot.push(openFileOnce(req.kernel, { as: req.openerOf(req.kernel), what: "kernel" }));
      if (req.initrd !== null) {
        boot.push(openFileOnce(req.initrd, { as: req.openerOf(req.initrd), what: "initrd" }));
      }
      for (const d of req.disks) {
        const as = req.openerOf(d.path);
        chains.push(openImageChain(d.path, {
          format: d.format,
          probedBefore: req.probed.get(d.path),
          readOnly: d.readOnly,
          as,
          // a block device only where root named it (vm.conf, or root's own vmctl start)
          allowBlockDevice: as === undefined,
          // a user's files are all opened as that user; under root, a backing file must be one the
          // image's owner could open (an image cannot name a file its owner may not read)
          backingAs: (namedBy) =>
            as !== undefined ? as : namedBy.uid === 0 ? undefined : req.credentialsOf(namedBy.uid),
        }));
      }
      if (req.cdrom !== null) {
        // read-only, a regular file only (a user's device nodes are refused as for disks), as who named it
        cdrom = openFileOnce(req.cdrom, { as: req.openerOf(req.cdrom), what: "CD-ROM image" });
        const problem = cdromImageProblem(cdrom.size);
        if (problem !== undefined) throw new CdromImageError(`${req.cdrom}: ${problem}`);
      }
      return new OpenVmFiles(boot, chains, req.disks.map((d) => d.readOnly), cdrom);
    } catch (e) {
      if (cdrom !== undefined) closeFd(cdrom.fd);
      for (const b of boot) closeFd(b.fd);
      for (const c of chains) closeImageChain(c);
      throw e;
    }
  }

  /** Every descriptor the VM process is sent. */
  get fds(): readonly number[] {
    return this.#fds;
  }

  /** Closes the daemon's copies of the descriptors (the VM process keeps its own). */
  closeFds(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const fd of this.#fds) closeFd(fd);
  }
}
