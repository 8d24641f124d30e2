/**
 * `vmctl create [-b base | -i disk] [-s size] disk`: create an empty image, a qcow2 child of a base image, or
 * a sparse copy (and conversion) of another disk, following vmctl(8).
 *
 * @module
 */
import { ArgError, getopt } from "../cli/getopt.ts";
import { copyDisk } from "../disk/convert.ts";
import { createImage } from "../disk/create.ts";
import { type Disk, DiskError, type DiskFormat } from "../disk/disk.ts";
import { formatFromExtension, MAX_BACKING_DEPTH, openDisk, parseDiskSpec } from "../disk/open.ts";
import type { Qcow2Disk } from "../disk/qcow2.ts";
import { Progress, type ProgressSink } from "./progress.ts";

/** A `vmctl create` request that cannot be carried out (bad arguments, existing target, ...). */
export class CreateError extends Error {
  /** `message` says what is wrong and, where useful, what to do. */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "CreateError";
  }
}

/** One megabyte: every size vmctl creates is a whole number of them. */
const MB = 1 << 20;
/** The command's usage line. */
export const CREATE_USAGE = "usage: vmctl create [-b base | -i disk] [-s size] disk";

/**
 * Parses a size in the style of scan_scaled(3): a number with an optional fraction and an optional unit
 * `B`, `K`, `M`, `G`, `T`, `P` or `E` (powers of 1024), and returns it in bytes rounded down to a megabyte,
 * as vmctl(8) does; `warn` is told when rounding changed it. Sizes under 1 MB are refused.
 */
export function parseSize(text: string, warn: (line: string) => void = () => {}): number {
  const m = /^(\d+)(?:\.(\d+))?([bkmgtpe])?$/i.exec(text.trim());
  if (m === null) throw new CreateError(`invalid size: ${text} (use e.g. 512M, 20G, 1T)`);
  const scale = 1024 ** "bkmgtpe".indexOf((m[3] ?? "b").toLowerCase());
  const bytes = Number(`${m[1]}.${m[2] ?? "0"}`) * scale;
  if (!Number.isFinite(bytes) || bytes > Number.MAX_SAFE_INTEGER) {
    throw new CreateError(`size too large: ${text}`);
  }
  if (bytes < MB) throw new CreateError(`disk size must be at least 1MB (got ${text})`);
  const rounded = Math.floor(bytes / MB) * MB;
  if (rounded !== bytes) warn(`vmctl: disk size rounded to ${rounded / MB}M`);
  return rounded;
}

/** Where `vmctl create` writes its messages and progress. */
export interface CreateOutput {
  /** Writes a complete message line (no trailing newline in `line`). */
  message(line: string): void;
  /** The sink for the progress report of a conversion. */
  progress: ProgressSink;
}

function stderrOutput(): CreateOutput {
  const enc = new TextEncoder();
  const write = (s: string) => {
    Deno.stderr.writeSync(enc.encode(s));
  };
  return { message: (line) => write(`${line}\n`), progress: { write, tty: Deno.stderr.isTerminal() } };
}

/** Runs `vmctl create args...` and resolves to the exit status (0 on success, 1 on any error). */
export async function vmctlCreate(args: string[], out: CreateOutput = stderrOutput()): Promise<number> {
  try {
    await create(args, out);
    return 0;
  } catch (e) {
    if (e instanceof CreateError || e instanceof DiskError) {
      out.message(`vmctl: ${e.message}`);
      if (e instanceof CreateError && e.cause === "usage") out.message(CREATE_USAGE);
      return 1;
    }
    if (Object.values(Deno.errors).some((c) => e instanceof c)) {
      out.message(`vmctl: ${(e as Error).message}`);
      return 1;
    }
    throw e;
  }
}

function usage(message: string): CreateError {
  return new CreateError(message, { cause: "usage" });
}

async function create(args: string[], out: CreateOutput): Promise<void> {
  let parsed;
  try {
    parsed = getopt(args, {
      base: { type: "string", short: "b" },
      input: { type: "string", short: "i" },
      size: { type: "string", short: "s" },
    }, true);
  } catch (e) {
    throw e instanceof ArgError ? usage(e.message) : e;
  }
  const { base, input } = parsed.values;
  if (parsed.positionals.length !== 1) throw usage("create: exactly one disk argument is needed");
  const spec = parseDiskSpec(parsed.positionals[0]);
  const format: DiskFormat = spec.format ?? formatFromExtension(spec.path) ?? "raw";
  const size = parsed.values.size === undefined
    ? undefined
    : parseSize(parsed.values.size, (l) => out.message(l));
  if (base !== undefined && input !== undefined) throw usage("conflicting -b and -i arguments");
  if (exists(spec.path)) {
    throw new CreateError(`create: ${spec.path}: file exists; remove it or choose another name`);
  }
  if (input !== undefined) return await convert(input, spec.path, format, size, out);
  if (base !== undefined) return await derive(base, spec.path, format, size, out);
  if (size === undefined) throw usage(`could not create ${spec.path}: missing size argument`);
  await createImage(spec.path, format, { size });
  out.message(`vmctl: ${format} imagefile created`);
}

function exists(path: string): boolean {
  try {
    Deno.lstatSync(path);
    return true;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return false;
    throw e;
  }
}

async function derive(
  base: string,
  path: string,
  format: DiskFormat,
  size: number | undefined,
  out: CreateOutput,
) {
  if (format !== "qcow2") {
    throw new CreateError("base images require qcow2 disk format (name the disk *.qcow2 or qcow2:disk)");
  }
  const parent = await openDisk(base, { readOnly: true });
  try {
    if (chainDepth(parent) >= MAX_BACKING_DEPTH + 1) {
      throw new CreateError(
        `base image ${parent.path} already has a chain of ${MAX_BACKING_DEPTH} backing images; a child would be too deep`,
      );
    }
    if (size !== undefined && size !== parent.size) {
      throw new CreateError(
        `-s ${size} bytes does not match the base image's size (${parent.size} bytes); leave -s out`,
      );
    }
    await createImage(path, "qcow2", {
      size: parent.size,
      backing: { name: backingName(parent.path, path), format: parent.format },
    });
  } finally {
    await parent.close();
  }
  out.message(`vmctl: qcow2 imagefile created`);
}

/** Images in the chain starting at `disk` (1 for a disk without a backing image). */
function chainDepth(disk: Disk): number {
  let n = 1;
  for (let d = (disk as Partial<Qcow2Disk>).backing; d !== undefined; d = (d as Partial<Qcow2Disk>).backing) {
    n++;
  }
  return n;
}

/** The name to record for backing image `base` in a new image at `child`: relative when in the same folder. */
function backingName(base: string, child: string): string {
  const absBase = Deno.realPathSync(base);
  const childDir = Deno.realPathSync(dirname(child));
  return dirname(absBase) === childDir ? absBase.slice(absBase.lastIndexOf("/") + 1) : absBase;
}

function dirname(path: string): string {
  const i = path.lastIndexOf("/");
  return i < 0 ? "." : i === 0 ? "/" : path.slice(0, i);
}

async function convert(
  input: string,
  path: string,
  format: DiskFormat,
  size: number | undefined,
  out: CreateOutput,
) {
  const src = await openDisk(input, { readOnly: true });
  let created = false;
  try {
    const want = size ?? src.size;
    if (want < src.size) {
      throw new CreateError(`size cannot be smaller than input disk size (${src.size} bytes)`);
    }
    await createImage(path, format, { size: Math.ceil(want / MB) * MB });
    created = true;
    const dst = await openDisk(`${format}:${path}`);
    try {
      const progress = new Progress(`${src.path} -> ${path}`, src.size, out.progress);
      await copyDisk(src, dst, (done) => progress.update(done));
      progress.finish();
    } finally {
      await dst.close();
    }
  } catch (e) {
    if (created) Deno.removeSync(path);
    throw e;
  } finally {
    await src.close();
  }
  out.message(`vmctl: ${format} imagefile created`);
}
