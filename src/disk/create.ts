/**
 * Creating empty images of either format, optionally (qcow2) as the child of a backing image.
 *
 * @module
 */
import { DiskError, type DiskFormat } from "./disk.ts";
import { createQcow2 } from "./qcow2_create.ts";
import { RawDisk } from "./raw.ts";

/** Options of {@linkcode createImage}. */
export interface CreateImageOptions {
  /** Guest-visible size in bytes. */
  size: number;
  /** For qcow2: the backing file name to record (resolved from the new image's folder) and its format. */
  backing?: { name: string; format: DiskFormat };
}

/** Creates an empty image of `format` at `path`, which must not exist yet. */
export async function createImage(path: string, format: DiskFormat, opts: CreateImageOptions): Promise<void> {
  if (format === "raw") {
    if (opts.backing !== undefined) {
      throw new DiskError(path, "raw images cannot have a backing file: use qcow2");
    }
    await RawDisk.create(path, opts.size);
  } else {
    await createQcow2(path, {
      size: opts.size,
      backingFile: opts.backing?.name,
      backingFormat: opts.backing?.format,
    });
  }
}
