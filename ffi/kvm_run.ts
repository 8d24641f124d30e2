/**
 * `struct kvm_run`: the pages KVM shares with user space for each vCPU, mapped with mmap(2).
 *
 * A vCPU worker's ffi grant is scoped to libc, which lets it call libc but not read raw pointers through
 * Deno's pointer API. So the exit loop copies what it needs with memcpy into buffers of its own: the header
 * (exit reason and the io/mmio union) after each exit, the port I/O data page when there is data, and writes
 * back what a read returns. Each copy is one FFI call of ~50 ns against an exit of several microseconds, and
 * none allocates.
 *
 * @module
 */
import { lastError } from "./errno.ts";
import type { Libc } from "./libc.ts";
import { KVM_RUN_OFFSETS as O } from "./kvm_structs.ts";

const PROT_READ = 0x1;
const PROT_WRITE = 0x2;
const MAP_SHARED = 0x01;
const MAP_FAILED = 0xffff_ffff_ffff_ffffn;
/** Bytes of kvm_run copied after every exit: the header and the io/mmio members of the exit union. */
const HEADER_BYTES = 64;
/** Bytes copied for rare exits that carry more (internal error data, system events). */
const FULL_BYTES = 304;
/** The largest port I/O data the kernel hands over at once (one page). */
const IO_DATA_MAX = 4096;

/** A mapped `struct kvm_run` with typed accessors over a private copy of its header. */
export class KvmRun {
  /** The copy of kvm_run's first bytes; refreshed by {@link load} / {@link loadFull}. */
  readonly header: Uint8Array<ArrayBuffer>;
  /** A DataView over {@link header}. */
  readonly view: DataView;
  /** Port I/O data: {@link loadIoData} fills it, {@link storeIoData} writes it back. */
  readonly ioData: Uint8Array<ArrayBuffer>;
  /** A DataView over {@link ioData}. */
  readonly ioView: DataView;
  /** `mmio.data`, copied out by {@link load}; {@link storeMmioData} writes it back. */
  readonly mmioData: Uint8Array<ArrayBuffer>;
  readonly #mmioInHeader: Uint8Array;
  readonly #base: bigint;
  readonly #size: number;
  readonly #libc: Libc;
  readonly #mmioDataAddress: bigint;
  readonly #immediateExitAddress: bigint;
  readonly #flag = new Uint8Array(1);
  #ioOffset = -1;
  #ioAddress = 0n;

  private constructor(base: bigint, size: number, libc: Libc) {
    this.header = new Uint8Array(FULL_BYTES);
    this.view = new DataView(this.header.buffer);
    this.ioData = new Uint8Array(IO_DATA_MAX);
    this.ioView = new DataView(this.ioData.buffer);
    this.mmioData = new Uint8Array(8);
    this.#mmioInHeader = this.header.subarray(O.mmio_data, O.mmio_data + 8);
    this.#base = base;
    this.#size = size;
    this.#libc = libc;
    this.#mmioDataAddress = base + BigInt(O.mmio_data);
    this.#immediateExitAddress = base + BigInt(O.immediate_exit);
  }

  /** mmaps the kvm_run pages of vCPU fd `fd`. */
  static map(fd: number, size: number, libc: Libc): KvmRun {
    const base = libc.mmap(0n, BigInt(size), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0n);
    if (base === MAP_FAILED) throw lastError("mmap(kvm_run)", libc);
    return new KvmRun(base, size, libc);
  }

  /** Unmaps the pages; the object must not be used afterwards. */
  unmap(): void {
    this.#libc.munmap(this.#base, BigInt(this.#size));
  }

  /** Copies the header (exit reason and io/mmio details) after an exit. */
  load(): void {
    // Safe: the mapping is #size (≥ one page) bytes long and stays mapped until unmap().
    this.#libc.memcpy_from(this.header, this.#base, BigInt(HEADER_BYTES));
    this.mmioData.set(this.#mmioInHeader);
  }

  /** Copies the whole exit union (for internal errors and system events). */
  loadFull(): void {
    // Safe: FULL_BYTES (304) is within the first page of the mapping.
    this.#libc.memcpy_from(this.header, this.#base, BigInt(FULL_BYTES));
  }

  #ioAddressFor(offset: number, len: number): bigint {
    if (offset !== this.#ioOffset) {
      if (offset < 0 || len > IO_DATA_MAX || offset + len > this.#size) {
        throw new RangeError(
          `kvm_run io data at ${offset}+${len} lies outside the ${this.#size}-byte mapping`,
        );
      }
      this.#ioOffset = offset;
      this.#ioAddress = this.#base + BigInt(offset);
    }
    return this.#ioAddress;
  }

  /** Copies `len` bytes of port I/O data (at `io.data_offset`) into {@link ioData}. */
  loadIoData(offset: number, len: number): void {
    const address = this.#ioAddressFor(offset, len);
    // Safe: #ioAddressFor checked offset + len against the mapping's size.
    this.#libc.memcpy_from(this.ioData, address, BigInt(len));
  }

  /** Writes `len` bytes of {@link ioData} back to `io.data_offset` (for IN). */
  storeIoData(offset: number, len: number): void {
    const address = this.#ioAddressFor(offset, len);
    // Safe: #ioAddressFor checked offset + len against the mapping's size.
    this.#libc.memcpy_to(address, this.ioData, BigInt(len));
  }

  /** Writes {@link mmioData} back to `mmio.data` (for an MMIO read). */
  storeMmioData(): void {
    // Safe: mmio.data is 8 bytes at offset 40 of the mapping.
    this.#libc.memcpy_to(this.#mmioDataAddress, this.mmioData, 8n);
  }

  /** Sets `immediate_exit`: while set, KVM_RUN returns EINTR at once. */
  setImmediateExit(on: boolean): void {
    this.#flag[0] = on ? 1 : 0;
    // Safe: immediate_exit is one byte at offset 1 of the mapping.
    this.#libc.memcpy_to(this.#immediateExitAddress, this.#flag, 1n);
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
  /** `internal.suberror` (after {@link loadFull}). */
  internalSuberror(): number {
    return this.view.getUint32(O.internal_suberror, true);
  }
  /** `internal.data[0..ndata]` (after {@link loadFull}). */
  internalData(): bigint[] {
    const n = Math.min(this.view.getUint32(O.internal_ndata, true), 16);
    return Array.from({ length: n }, (_, i) => this.view.getBigUint64(O.internal_data + 8 * i, true));
  }
  /** `system_event.type` (after {@link loadFull}). */
  systemEventType(): number {
    return this.view.getUint32(O.system_event_type, true);
  }
}
