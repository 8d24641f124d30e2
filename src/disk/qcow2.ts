/**
 * The qcow2 backend (versions 2 and 3): reads (allocated, zero, compressed and unallocated clusters, the
 * latter from the backing image), writes with cluster allocation and copy-on-write, zeroing and discard, and
 * a flush that writes metadata in crash-safe order.
 *
 * Write ordering. New clusters get their refcount in memory when allocated; guest data goes to the file at
 * once; L2 and L1 changes stay in memory until a flush, which writes: refcount blocks (increments only) →
 * sync → L2 tables → sync → L1 entries → sync → decrements of clusters no longer referenced → sync. If the
 * process dies at any point, every on-disk reference points to a cluster whose refcount and contents are
 * already on disk; the worst outcome is leaked clusters. Clusters freed by a flush are reused only after it.
 *
 * @module
 */
import { type BlockStatus, checkRange, type Disk, DiskError, type DiskFormat } from "./disk.ts";
import { FileIO } from "./file_io.ts";
import { AUTOCLEAR_OFFSET, type Qcow2Header, readHeader } from "./qcow2_header.ts";
import { Qcow2Error } from "./qcow2_error.ts";
import { Refcounts } from "./qcow2_refcount.ts";
import { type Mapping, Qcow2Tables } from "./qcow2_tables.ts";

// node:zlib is imported when a qcow2 image is opened, not with this module: loading it costs an isolate ~20 ms
// and ~3 MiB, which the VM process (it only reads images' headers) and a VM on raw disks should not pay. Not
// later either: a locked-down process cannot start Node compatibility (it reads /proc/self/exe, which seccomp
// refuses, and Deno aborts), and the first compressed cluster may be read after lock-down.
let inflateRawSync: typeof import("node:zlib").inflateRawSync | undefined;

/** Opens a backing image (read-only) given its resolved path and the format the header names, if any. */
export type BackingOpener = (path: string, format: DiskFormat | undefined) => Promise<Disk>;

/** Options of {@linkcode Qcow2Disk.open}. */
export interface Qcow2OpenOptions {
  /** Open without write access. */
  readOnly?: boolean;
  /** How to open the backing image; required when the image has one. */
  openBacking?: BackingOpener;
  /** Use this already open file instead of opening the path. */
  io?: FileIO;
}

/** Most clusters written by one allocation. */
const MAX_RUN = 512;

/** Resolves a backing file name stored in the image at `imagePath`: relative names are relative to its folder. */
export function resolveBacking(imagePath: string, name: string): string {
  if (name.startsWith("/")) return name;
  const slash = imagePath.lastIndexOf("/");
  return slash < 0 ? name : imagePath.slice(0, slash + 1) + name;
}

/** A qcow2 image opened for I/O. */
export class Qcow2Disk implements Disk {
  /** See {@linkcode Disk.path}. */
  readonly path: string;
  /** Always `"qcow2"`. */
  readonly format = "qcow2" as const;
  /** See {@linkcode Disk.readOnly}. */
  readonly readOnly: boolean;
  /** The header as read when the image was opened (the refcount table may have moved since). */
  readonly header: Qcow2Header;
  /** The backing image, if any (opened read-only). */
  readonly backing: Disk | undefined;
  readonly #io: FileIO;
  readonly #refcounts: Refcounts;
  readonly #tables: Qcow2Tables;
  readonly #cs: number;
  readonly #scratch: Uint8Array;
  #inflated: { host: number; data: Uint8Array } | undefined;
  #queue: Promise<unknown> = Promise.resolve();

  private constructor(io: FileIO, h: Qcow2Header, backing: Disk | undefined) {
    this.#io = io;
    this.path = io.path;
    this.readOnly = !io.writable;
    this.header = h;
    this.backing = backing;
    this.#cs = h.clusterSize;
    this.#scratch = new Uint8Array(h.clusterSize);
    this.#refcounts = new Refcounts(io, h.clusterBits, h.refTableOffset, h.refTableClusters);
    this.#tables = new Qcow2Tables(io, h, this.#refcounts);
    this.#tables.onPressure = () => this.#flushMetadata();
  }

  /** Opens the qcow2 image at `path` and, through `opts.openBacking`, its backing image. */
  static async open(file: string, opts: Qcow2OpenOptions = {}): Promise<Qcow2Disk> {
    inflateRawSync ??= (await import("node:zlib")).inflateRawSync;
    const io = opts.io ?? FileIO.open(file, !opts.readOnly);
    const path = io.path;
    let backing: Disk | undefined;
    try {
      const h = guard(path, () => readHeader(io));
      if (!opts.readOnly && h.snapshots > 0) {
        throw new Qcow2Error(
          path,
          `the image has ${h.snapshots} internal snapshot(s); writing to it is not supported ` +
            "(open it read-only, or delete the snapshots with `qemu-img snapshot -d`)",
        );
      }
      if (h.backingFile !== undefined) {
        if (opts.openBacking === undefined) {
          throw new Qcow2Error(
            path,
            `the image has a backing file (${h.backingFile}) and no opener was given`,
          );
        }
        const fmt = h.backingFormat;
        if (fmt !== undefined && fmt !== "raw" && fmt !== "qcow2") {
          throw new Qcow2Error(
            path,
            `backing file ${h.backingFile} has format "${fmt}"; only raw and qcow2 work`,
          );
        }
        backing = await opts.openBacking(resolveBacking(path, h.backingFile), fmt);
      }
      const disk = guard(path, () => new Qcow2Disk(io, h, backing));
      if (!disk.readOnly && h.autoclear !== 0n) {
        // Autoclear features (e.g. persistent bitmaps) are ours to invalidate once we write.
        io.writeAt(AUTOCLEAR_OFFSET, new Uint8Array(8));
        io.sync();
      }
      return disk;
    } catch (e) {
      io.close();
      await backing?.close();
      throw e;
    }
  }

  /** See {@linkcode Disk.size}. */
  get size(): number {
    return this.header.size;
  }

  /** See {@linkcode Disk.read}. */
  read(offset: number, buf: Uint8Array): Promise<void> {
    return this.#exclusive(() => this.#read(offset, buf));
  }

  /** See {@linkcode Disk.write}. */
  write(offset: number, data: Uint8Array): Promise<void> {
    return this.#exclusive(() => this.#write(offset, data));
  }

  /** See {@linkcode Disk.flush}. */
  flush(): Promise<void> {
    return this.#exclusive(() => {
      if (!this.readOnly) guard(this.path, () => this.#flushMetadata());
      return Promise.resolve();
    });
  }

  /** Drops whole clusters in the range (they then read as zeros); partial clusters are left as they are. */
  discard(offset: number, length: number): Promise<void> {
    return this.#exclusive(() => this.#zeroRange(offset, length, false));
  }

  /** See {@linkcode Disk.writeZeroes}. Whole clusters become zero clusters; partial ones are written. */
  writeZeroes(offset: number, length: number): Promise<void> {
    return this.#exclusive(() => this.#zeroRange(offset, length, true));
  }

  /** See {@linkcode Disk.blockStatus}. */
  blockStatus(offset: number, length: number): Promise<BlockStatus> {
    return this.#exclusive(() => this.#blockStatus(offset, length));
  }

  /** See {@linkcode Disk.close}. */
  close(): Promise<void> {
    return this.#exclusive(async () => {
      try {
        if (!this.readOnly) guard(this.path, () => this.#flushMetadata());
      } finally {
        this.#io.close();
        await this.backing?.close();
      }
    });
  }

  /** Runs `f` after every earlier request has finished: requests never interleave. */
  #exclusive<T>(f: () => Promise<T>): Promise<T> {
    const run = this.#queue.then(f).catch((e) => {
      throw typed(this.path, e);
    });
    this.#queue = run.catch(() => {});
    return run;
  }

  async #read(offset: number, buf: Uint8Array): Promise<void> {
    checkRange(this.path, this.size, offset, buf.length);
    const cs = this.#cs;
    let pos = 0;
    while (pos < buf.length) {
      const g = offset + pos;
      const inC = g % cs;
      let n = Math.min(cs - inC, buf.length - pos);
      const m = this.#lookup(g);
      if (m.kind === "data") {
        const host = m.host + inC;
        while (pos + n < buf.length) {
          const next = this.#lookup(g + n);
          if (next.kind !== "data" || next.host !== host + n) break;
          n += Math.min(cs, buf.length - pos - n);
        }
        this.#io.readAt(host, buf.subarray(pos, pos + n));
      } else if (m.kind === "compressed") {
        buf.set(this.#inflate(m, g).subarray(inC, inC + n), pos);
      } else if (m.kind === "zero" || this.backing === undefined) {
        buf.fill(0, pos, pos + n);
      } else {
        while (pos + n < buf.length && this.#lookup(g + n).kind === "unallocated") {
          n += Math.min(cs, buf.length - pos - n);
        }
        await this.#readBacking(g, buf.subarray(pos, pos + n));
      }
      pos += n;
    }
  }

  async #write(offset: number, data: Uint8Array): Promise<void> {
    this.#writable();
    checkRange(this.path, this.size, offset, data.length);
    const cs = this.#cs;
    let pos = 0;
    while (pos < data.length) {
      const g = offset + pos;
      const inC = g % cs;
      let n = Math.min(cs - inC, data.length - pos);
      const m = this.#lookup(g);
      if (m.kind === "data" && m.copied) {
        const host = m.host + inC;
        while (pos + n < data.length) {
          const next = this.#lookup(g + n);
          if (next.kind !== "data" || !next.copied || next.host !== host + n) break;
          n += Math.min(cs, data.length - pos - n);
        }
        this.#io.writeAt(host, data.subarray(pos, pos + n));
      } else if (inC === 0 && n === cs) {
        const old = [m];
        while (old.length < MAX_RUN && pos + (old.length + 1) * cs <= data.length) {
          const next = this.#lookup(g + old.length * cs);
          if (next.kind === "data" && next.copied) break;
          old.push(next);
        }
        const { offset: host, count } = this.#refcounts.allocate(old.length);
        n = count * cs;
        this.#io.writeAt(host, data.subarray(pos, pos + n));
        for (let j = 0; j < count; j++) this.#remap(g + j * cs, host + j * cs, old[j]);
      } else {
        const cluster = this.#scratch;
        await this.#readCluster(g - inC, m, cluster);
        cluster.set(data.subarray(pos, pos + n), inC);
        const host = this.#refcounts.allocate(1).offset;
        this.#io.writeAt(host, cluster);
        this.#remap(g - inC, host, m);
      }
      pos += n;
    }
  }

  async #blockStatus(offset: number, length: number): Promise<BlockStatus> {
    checkRange(this.path, this.size, offset, length);
    const cs = this.#cs;
    const l2Span = cs * (cs / 8);
    const classify = (g: number): "data" | "zero" | "backing" => {
      const m = this.#lookup(g);
      if (m.kind === "data" || m.kind === "compressed") return "data";
      if (m.kind === "zero" || this.backing === undefined || g >= this.backing.size) return "zero";
      return "backing";
    };
    const first = this.#tables.hasTable(offset) ? classify(offset) : this.#unallocatedKind(offset);
    let n = 0;
    while (n < length) {
      const g = offset + n;
      if (!this.#tables.hasTable(g)) {
        if (this.#unallocatedKind(g) !== first) break;
        n += l2Span - (g % l2Span);
        continue;
      }
      if (classify(g) !== first) break;
      n += cs - (g % cs);
    }
    n = Math.min(Math.max(n, 1), length);
    if (first !== "backing") return { kind: first, length: n };
    const backing = this.backing!;
    return await backing.blockStatus(offset, Math.min(n, backing.size - offset));
  }

  #unallocatedKind(g: number): "zero" | "backing" {
    return this.backing === undefined || g >= this.backing.size ? "zero" : "backing";
  }

  #lookup(g: number): Mapping {
    return guard(this.path, () => this.#tables.lookup(g));
  }

  #writable(): void {
    if (this.readOnly) throw new Qcow2Error(this.path, "the image is open read-only; writes are refused");
  }

  /** Points guest cluster `g` at the fresh cluster `host`, and releases what it pointed at before. */
  #remap(g: number, host: number, old: Mapping): void {
    this.#tables.setData(g, host);
    this.#release(old);
  }

  #release(old: Mapping): void {
    if (old.kind === "compressed") this.#refcounts.deferFree(old.rangeStart, old.rangeBytes);
    else if ((old.kind === "data" || old.kind === "zero") && old.host !== 0) {
      this.#refcounts.deferFree(old.host, this.#cs);
    }
  }

  async #readBacking(g: number, out: Uint8Array): Promise<void> {
    const backing = this.backing!;
    const avail = Math.max(0, Math.min(out.length, backing.size - g));
    if (avail > 0) await backing.read(g, out.subarray(0, avail));
    out.fill(0, avail);
  }

  /** Fills `out` (one cluster) with the current contents of the guest cluster at `g`, mapped by `m`. */
  async #readCluster(g: number, m: Mapping, out: Uint8Array): Promise<void> {
    if (m.kind === "data") this.#io.readAt(m.host, out);
    else if (m.kind === "compressed") out.set(this.#inflate(m, g));
    else if (m.kind === "zero" || this.backing === undefined) out.fill(0);
    else await this.#readBacking(g, out);
  }

  #inflate(m: Mapping & { kind: "compressed" }, g: number): Uint8Array {
    if (this.#inflated?.host === m.host) return this.#inflated.data;
    const packed = new Uint8Array(m.bytes);
    this.#io.readAt(m.host, packed);
    let data: Uint8Array;
    try {
      data = inflateRawSync!(packed, { // set by open(), which made this disk
        finishFlush: 2, /* Z_SYNC_FLUSH: tolerate the padding after the stream */
        maxOutputLength: this.#cs, // a hostile stream costs at most one cluster, not gigabytes
      });
    } catch (e) {
      if ((e as { code?: unknown }).code === "ERR_BUFFER_TOO_LARGE") {
        throw new Qcow2Error(
          this.path,
          `compressed cluster at guest offset ${g} inflates to more than the ${this.#cs}-byte cluster size: ` +
            "the image is corrupt or hostile (check it with `qemu-img check`, restore it from a good copy)",
        );
      }
      throw new Qcow2Error(this.path, `compressed cluster at guest offset ${g} does not inflate: ${e}`);
    }
    if (data.length < this.#cs) {
      throw new Qcow2Error(
        this.path,
        `compressed cluster at guest offset ${g} inflates to ${data.length} bytes, not ${this.#cs}`,
      );
    }
    data = data.subarray(0, this.#cs);
    this.#inflated = { host: m.host, data };
    return data;
  }

  async #zeroRange(offset: number, length: number, mustZero: boolean): Promise<void> {
    this.#writable();
    checkRange(this.path, this.size, offset, length);
    const cs = this.#cs;
    const v3 = this.header.version >= 3;
    let pos = 0;
    while (pos < length) {
      const g = offset + pos;
      const inC = g % cs;
      const n = Math.min(cs - inC, length - pos);
      pos += n;
      const whole = inC === 0 && (n === cs || g + n === this.size);
      if (!whole) {
        if (mustZero) await this.#write(g, new Uint8Array(n));
        continue;
      }
      const m = this.#lookup(g);
      if (this.backing === undefined) {
        if (m.kind === "unallocated" || m.kind === "zero" && m.host === 0) continue;
        this.#tables.setUnallocated(g);
        this.#release(m);
      } else if (v3) {
        if (m.kind === "zero" && m.host === 0) continue;
        this.#tables.setZero(g);
        this.#release(m);
      } else if (mustZero) {
        await this.#write(g, new Uint8Array(n));
      }
    }
  }

  #flushMetadata(): void {
    const refs = this.#refcounts.dirty;
    const tables = this.#tables.dirty;
    if (refs) this.#refcounts.writeIncrements();
    if (tables) {
      this.#io.sync(); // data and refcounts before the tables that point to them
      if (this.#tables.writeL2()) {
        this.#io.sync(); // L2 tables before the L1 entries that point to them
        this.#tables.writeL1();
      }
    }
    this.#io.sync();
    if (this.#refcounts.hasPendingFrees) {
      this.#inflated = undefined; // the clusters it came from may be reused from now on
      this.#refcounts.applyFrees();
      this.#io.sync();
    }
    this.#tables.trim();
  }
}

/** Runs `f`, turning any failure that is not already a disk error (e.g. a RangeError) into a {@linkcode Qcow2Error}. */
function guard<T>(path: string, f: () => T): T {
  try {
    return f();
  } catch (e) {
    throw typed(path, e);
  }
}

/** `e` if it is a disk error or an operating-system error, else a {@linkcode Qcow2Error} wrapping it. */
function typed(path: string, e: unknown): unknown {
  if (e instanceof DiskError || Object.values(Deno.errors).some((c) => e instanceof c)) return e;
  return new Qcow2Error(path, `malformed image: ${e instanceof Error ? e.message : e}`, { cause: e });
}
