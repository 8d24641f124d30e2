/**
 * `struct kvm_run`: the pages KVM shares with user space for each vCPU.
 *
 * The VM's main thread maps them with `MAP_FIXED` over page-aligned pages inside a SharedArrayBuffer of its
 * own, so the buffer's bytes *are* kvm_run. The vCPU worker receives that buffer and reads exits through a
 * DataView — no copies and no pointer API, which its libc-scoped ffi grant would deny. When the vCPU is done,
 * {@link KvmRun.unmap} puts ordinary anonymous memory back under the buffer, so whatever the allocator later
 * does with those pages never touches a vCPU.
 *
 * @module
 */
import { lastError } from "./errno.ts";
import type { Libc } from "./libc.ts";
import { KVM_RUN_OFFSETS as O } from "./kvm_structs.ts";
import {
  KVM_EMULATION_FAILURE_MAX_INSN,
  KVM_INTERNAL_ERROR_EMULATION_FLAG_INSTRUCTION_BYTES,
} from "./kvm_ioctls.ts";

const PROT_READ = 0x1;
const PROT_WRITE = 0x2;
const MAP_SHARED = 0x01;
const MAP_PRIVATE = 0x02;
const MAP_FIXED = 0x10;
const MAP_ANONYMOUS = 0x20;
const MAP_FAILED = 0xffff_ffff_ffff_ffffn;
const PAGE = 4096;

/** What a worker needs to see a vCPU's kvm_run: the buffer and where the mapping starts in it. */
export interface KvmRunShare {
  /** The buffer whose pages alias kvm_run. */
  readonly sab: SharedArrayBuffer;
  /** Offset of kvm_run in the buffer (page-aligned in memory). */
  readonly offset: number;
  /** Size of the mapping (KVM_GET_VCPU_MMAP_SIZE). */
  readonly size: number;
}

/** A vCPU's kvm_run, read and written in place. */
export class KvmRun {
  /** The whole mapping. */
  readonly bytes: Uint8Array;
  /** A DataView over the whole mapping. */
  readonly view: DataView;
  /** `mmio.data`: devices read from and write into it in place. */
  readonly mmioData: Uint8Array;
  readonly #share: KvmRunShare;
  #ioOffset = -1;
  #ioBytes: Uint8Array = new Uint8Array(0);
  #ioView: DataView = new DataView(new ArrayBuffer(0));

  /** Views an existing mapping (from {@link KvmRun.map}, possibly in another thread). */
  constructor(share: KvmRunShare) {
    this.#share = share;
    this.bytes = new Uint8Array(share.sab, share.offset, share.size);
    this.view = new DataView(share.sab, share.offset, share.size);
    this.mmioData = this.bytes.subarray(O.mmio_data, O.mmio_data + 8);
  }

  /**
   * Maps vCPU fd `fd`'s kvm_run (`size` bytes) over a new SharedArrayBuffer. Main thread only: it needs the
   * buffer's address, which takes Deno's (unscoped) pointer API.
   */
  static map(fd: number, size: number, libc: Libc): KvmRun {
    const pages = Math.ceil(size / PAGE) * PAGE;
    const sab = new SharedArrayBuffer(pages + PAGE);
    const start = Deno.UnsafePointer.value(Deno.UnsafePointer.of(new Uint8Array(sab)));
    const offset = Number((BigInt(PAGE) - (start % BigInt(PAGE))) % BigInt(PAGE));
    const at = start + BigInt(offset);
    // Safe: [at, at + pages) lies inside `sab`, which we own and keep alive with this object; MAP_FIXED only
    // replaces those pages of it.
    const got = libc.mmap(at, BigInt(pages), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, fd, 0n);
    if (got === MAP_FAILED) throw lastError("mmap(kvm_run)", libc);
    if (got !== at) {
      throw new Error(`mmap(kvm_run) placed the mapping at 0x${got.toString(16)}, not 0x${at.toString(16)}`);
    }
    const run = new KvmRun({ sab, offset, size });
    run.#unmapper = () => {
      // Safe: the same pages as above; anonymous private memory replaces the vCPU mapping.
      const r = libc.mmap(
        at,
        BigInt(pages),
        PROT_READ | PROT_WRITE,
        MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED,
        -1,
        0n,
      );
      if (r === MAP_FAILED) throw lastError("mmap(restore kvm_run pages)", libc);
    };
    return run;
  }

  #unmapper: (() => void) | undefined;

  /** What to post to the vCPU worker. */
  share(): KvmRunShare {
    return this.#share;
  }

  /** Main thread: replaces the kvm_run pages with ordinary memory. The views must not be used afterwards. */
  unmap(): void {
    this.#unmapper?.();
    this.#unmapper = undefined;
  }

  /** Sets `immediate_exit`: while set, KVM_RUN returns EINTR at once. */
  setImmediateExit(on: boolean): void {
    Atomics.store(this.bytes, O.immediate_exit, on ? 1 : 0);
  }

  #ioAt(offset: number): void {
    if (offset !== this.#ioOffset) {
      if (offset < 0 || offset + PAGE > this.#share.size) {
        throw new RangeError(
          `kvm_run io data page at ${offset} lies outside the ${this.#share.size}-byte mapping`,
        );
      }
      this.#ioOffset = offset;
      this.#ioBytes = this.bytes.subarray(offset, offset + PAGE);
      this.#ioView = new DataView(this.#share.sab, this.#share.offset + offset, PAGE);
    }
  }

  /** The port I/O data page at `io.data_offset` (views are cached: no allocation in steady state). */
  ioBytes(offset: number): Uint8Array {
    this.#ioAt(offset);
    return this.#ioBytes;
  }

  /** A DataView over the port I/O data page at `io.data_offset`. */
  ioView(offset: number): DataView {
    this.#ioAt(offset);
    return this.#ioView;
  }

  /** `exit_reason`. */
  exitReason(): number {
    return this.view.getUint32(O.exit_reason, true);
  }
  /** `io.direction` (KVM_EXIT_IO_IN or KVM_EXIT_IO_OUT). */
  ioDirection(): number {
    return this.view.getUint8(O.io_direction);
  }
  /** `io.size` in bytes (1, 2 or 4). */
  ioSize(): number {
    return this.view.getUint8(O.io_size);
  }
  /** `io.port`. */
  ioPort(): number {
    return this.view.getUint16(O.io_port, true);
  }
  /** `io.count` (above 1 for string instructions). */
  ioCount(): number {
    return this.view.getUint32(O.io_count, true);
  }
  /** `io.data_offset`: where the data sits inside the mapping. */
  ioDataOffset(): number {
    // data_offset is a u64 but always inside the (small) mapping.
    return this.view.getUint32(O.io_data_offset, true);
  }
  /** `mmio.phys_addr` as a number (guest physical addresses stay below 2^53). */
  mmioPhysAddr(): number {
    return this.view.getUint32(O.mmio_phys_addr, true) +
      this.view.getUint32(O.mmio_phys_addr + 4, true) * 2 ** 32;
  }
  /** `mmio.len`. */
  mmioLen(): number {
    return this.view.getUint32(O.mmio_len, true);
  }
  /** `mmio.is_write`. */
  mmioIsWrite(): boolean {
    return this.view.getUint8(O.mmio_is_write) !== 0;
  }
  /** `fail_entry.hardware_entry_failure_reason`. */
  failEntryReason(): bigint {
    return this.view.getBigUint64(O.fail_entry_hardware_entry_failure_reason, true);
  }
  /** `internal.suberror`. */
  internalSuberror(): number {
    return this.view.getUint32(O.internal_suberror, true);
  }
  /** `internal.data[0..ndata]`. */
  internalData(): bigint[] {
    const n = Math.min(this.view.getUint32(O.internal_ndata, true), 16);
    return Array.from({ length: n }, (_, i) => this.view.getBigUint64(O.internal_data + 8 * i, true));
  }
  /**
   * `emulation_failure.insn_bytes`: copies the bytes of the instruction KVM failed to emulate into `into`
   * (at least 15 bytes long) and returns how many there are; 0 when KVM gave none (`ndata` too small for the
   * flags and bytes, or flag bit 0 clear). KVM's `insn_size` is clamped to 15, never trusted further.
   * Allocation-free.
   */
  emulationInsnBytes(into: Uint8Array): number {
    // data[0] is the flags, data[1..2] the size and bytes: all three must be counted in ndata.
    if (this.view.getUint32(O.internal_ndata, true) < 3) return 0;
    const flags = this.view.getBigUint64(O.emulation_failure_flags, true);
    if ((flags & KVM_INTERNAL_ERROR_EMULATION_FLAG_INSTRUCTION_BYTES) === 0n) return 0;
    const size = Math.min(
      this.view.getUint8(O.emulation_failure_insn_size),
      KVM_EMULATION_FAILURE_MAX_INSN,
      into.length,
    );
    for (let i = 0; i < size; i++) into[i] = this.bytes[O.emulation_failure_insn_bytes + i];
    return size;
  }
  /** `system_event.type`. */
  systemEventType(): number {
    return this.view.getUint32(O.system_event_type, true);
  }
}
