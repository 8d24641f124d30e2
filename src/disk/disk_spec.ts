/**
 * A disk name as a user writes it: `raw:path` and `qcow2:path` force the format, anything else is a path.
 * In a module of its own so that `vmctl` can parse `-d` without loading the disk code (start-up time).
 *
 * @module
 */
import type { DiskFormat } from "./disk.ts";

/** A disk name split into its path and its explicit format, if it had a `raw:` or `qcow2:` prefix. */
export interface DiskSpec {
  /** The file's path. */
  path: string;
  /** The format named by the prefix, if any. */
  format?: DiskFormat;
}

/** Splits an optional `raw:` / `qcow2:` prefix off a disk name. */
export function parseDiskSpec(spec: string): DiskSpec {
  const m = /^(raw|qcow2):(.*)$/s.exec(spec);
  if (m === null) return { path: spec };
  return { path: m[2], format: m[1] as DiskFormat };
}
