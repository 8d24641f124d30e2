/**
 * vmd: a virtual machine monitor for Linux/KVM, modelled on OpenBSD's vmd(8).
 *
 * This module re-exports the library API only; it has no side effects.
 *
 * @module
 */

// ffi/: the KVM API and libc
export { ErrnoError } from "./ffi/errno.ts";
export { IoctlFd, Kvm, KVM_DEVICE, KvmRun, type KvmRunShare, VcpuFd, VmFd } from "./ffi/kvm.ts";
export { KVM, KVM_CAP, KVM_EXIT, type KvmIoctlName } from "./ffi/kvm_ioctls.ts";
export type {
  KvmCpuidEntry2,
  KvmDtable,
  KvmFpu,
  KvmMsrEntry,
  KvmRegs,
  KvmSegment,
  KvmSregs,
  KvmVcpuEvents,
} from "./ffi/kvm_structs.ts";
export { type Libc, LIBC_SYMBOLS, openLibc, resolveLibcPath } from "./ffi/libc.ts";

// guest memory
export {
  GuestMemory,
  GuestMemoryError,
  type GuestMemoryShare,
  type MemoryRegion,
  type PlacedRegion,
} from "./src/memory/guest_memory.ts";

// devices and buses
export { BusError, MmioBus, type MmioDevice, PioBus, type PioDevice } from "./src/devices/bus.ts";
export { DEBUG_EXIT_PORT, DebugExit } from "./src/devices/debug_exit.ts";
export type { PioDeviceSpec } from "./src/devices/device_spec.ts";
export { createUartShare, Uart16550, type UartShare } from "./src/devices/uart_16550.ts";
export { ByteRing } from "./src/console/byte_ring.ts";

// vCPUs and VMs
export { nextVcpuState, type VcpuEvent, VcpuState, VcpuStateError } from "./src/vcpu/vcpu_state.ts";
export type { ProbeAttempt, ProbeResult } from "./src/privsep/confinement_probe.ts";
export { describeVcpuExit, type RegisterDump, type VcpuExit } from "./src/vcpu/vcpu_exit.ts";
export { VcpuHandle, VcpuTimeoutError } from "./src/vcpu/vcpu_handle.ts";
export { COM1_PORT, ramLayout, Vm, type VmDisk, type VmOptions, type VmResult } from "./src/vm/vm.ts";

// PCI and virtio
export { PciConfigError, PciConfigSpace, type PciFunctionInfo } from "./src/pci/config_space.ts";
export { PCI_MMIO_END, PCI_MMIO_START, PciBus, type PciDevice } from "./src/pci/pci_bus.ts";
export { virtioPciConfigSpace, VirtioPciRegisters } from "./src/devices/virtio_pci.ts";
export {
  Chain,
  type ChainError,
  checkQueueConfig,
  type PopResult,
  type QueueConfig,
  SplitQueue,
} from "./src/virtio/virtqueue.ts";
export { type DeviceCounters, type VirtioBackend, VirtioDevice } from "./src/virtio/device_core.ts";
export { BLK_S, BLK_T, BlkBackend, type BlkRequest, parseBlkRequest } from "./src/virtio/blk.ts";
export { RngBackend } from "./src/virtio/rng.ts";
export { DeviceHandle, DeviceWorkerError } from "./src/virtio/device_handle.ts";
export { type FlatImage, loadFlatGuest } from "./src/vm/flat_guest.ts";
export { enterLongMode, enterRealMode } from "./src/boot/cpu_modes.ts";

// least privilege
export {
  formatPolicy,
  type Grant,
  type PermissionName,
  permissionsFor,
  POLICY,
  type PolicyContext,
  type PolicyRow,
} from "./src/privsep/permission_table.ts";

export { ConfigError } from "./src/config/config_error.ts";
export { type Diagnostic, formatDiagnostic, type Pos, type Severity } from "./src/config/diagnostic.ts";
export { fileReader, mapReader } from "./src/config/file_reader.ts";
export {
  checkConfig,
  checkConfigFile,
  type CheckOptions,
  type CheckResult,
  loadConfig,
  parseDefine,
} from "./src/config/load.ts";
export type { ConfigReader, ReadResult } from "./src/config/parser.ts";
export { printConfig } from "./src/config/printer.ts";
export { type CheckCommandOptions, runConfigCheck } from "./src/config/check_command.ts";
export type * from "./src/config/ast.ts";
export type { Ipv4Prefix, Ipv6Prefix } from "./src/config/net.ts";
export {
  DEFAULT_CONFIG_PATH,
  MAX_BACKING_IMAGES,
  MAX_DISKS_PER_VM,
  MAX_NICS_PER_VM,
} from "./src/config/limits.ts";
export type * from "./src/config/types.ts";

export type { BlockStatus, Disk, DiskFormat } from "./src/disk/disk.ts";
export { DiskError } from "./src/disk/disk.ts";
export { RawDisk } from "./src/disk/raw.ts";
export { Qcow2Disk } from "./src/disk/qcow2.ts";
export type { Qcow2Header } from "./src/disk/qcow2_header.ts";
export { Qcow2Error } from "./src/disk/qcow2_error.ts";
export { createQcow2 } from "./src/disk/qcow2_create.ts";
export type { CreateQcow2Options } from "./src/disk/qcow2_create.ts";
export { copyDisk } from "./src/disk/convert.ts";
export type { ProgressCallback } from "./src/disk/convert.ts";
export { createImage } from "./src/disk/create.ts";
export type { CreateImageOptions } from "./src/disk/create.ts";
export { detectFormat, MAX_BACKING_DEPTH, openDisk, parseDiskSpec } from "./src/disk/open.ts";
export type { DiskSpec, OpenDiskOptions } from "./src/disk/open.ts";
