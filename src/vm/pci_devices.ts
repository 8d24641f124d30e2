/**
 * The PCI devices of a VM: the host bridge at 00:00.0 and one virtio function per disk, for the CD-ROM
 * (virtio-scsi) and for the entropy device from 00:01.0, with BARs the VMM assigns in the PCI hole before boot and one IOAPIC pin (GSI 16+)
 * each. The main thread builds the shared state here, spawns the device workers and hands the vCPU workers
 * their {@link PciFunctionSpec}s.
 *
 * @module
 */
import type { PciFunctionSpec } from "../devices/device_spec.ts";
import { PCI_CAP_MSIX, VIRTIO_BAR_SIZE, virtioPciConfigSpace } from "../devices/virtio_pci.ts";
import type { DiskFormat } from "../disk/disk.ts";
import { type ChainImage, closeImageChain, diskFilesOf, openImageChain } from "../disk/image_chain.ts";
import type { DiskFile } from "../disk/open.ts";
import type { GuestMemoryShare } from "../memory/guest_memory.ts";
import { HOST_BRIDGE, PCI_MMIO_START } from "../pci/pci_bus.ts";
import { PciConfigSpace } from "../pci/config_space.ts";
import type { PolicyContext } from "../privsep/permission_table.ts";
import { closeFd } from "../../ffi/fd.ts";
import { openFileOnce } from "../../ffi/open_file.ts";
import { openLibc } from "../../ffi/libc.ts";
import { openTap, validateInterfaceName } from "../../ffi/tap.ts";
import { BLK_CONFIG_LENGTH } from "../virtio/blk.ts";
import type { CdromInit, NetInit } from "../virtio/device_messages.ts";
import { NET_CONFIG_LENGTH } from "../virtio/net.ts";
import { SCSI_CONFIG_LENGTH } from "../virtio/scsi.ts";
import { cdromImageProblem } from "../virtio/scsi_cdrom.ts";
import { DeviceHandle, type DeviceSpawnOptions } from "../virtio/device_handle.ts";
import { lateWorkerUrl } from "../virtio/late_worker.ts";
import { RngBackend } from "../virtio/rng.ts";
import { createTransportState } from "../virtio/transport_state.ts";

/**
 * A disk attached to a VM: either a path this process opens itself (with its own rights, as `vmd run`
 * does), or a chain vmd opened before and handed over as descriptors (`files`, as a VM process gets it).
 */
export interface VmDisk {
  /** Its path (this process opens it and its backing chain when the VM's devices start). */
  readonly path?: string;
  /** Its declared format; probed when absent (and then binding: see `RawOpenOptions.guardHeader`). */
  readonly format?: DiskFormat;
  /** The image and its backing chain, already open (their descriptors). */
  readonly files?: readonly DiskFile[];
  /** Attach it read-only. */
  readonly readOnly?: boolean;
}

/**
 * A CD-ROM attached to a VM (a read-only virtio-scsi function): either a path this process opens itself (as
 * `vmd run` does) or a descriptor vmd opened before and handed over (`fd`, as a VM process gets it).
 */
export interface VmCdrom {
  /** The ISO image's path (opened here when no `fd` is given; named in messages either way). */
  readonly path: string;
  /** The image, already open read-only. */
  readonly fd?: number;
}

/** A NIC attached to a VM: a virtio-net function on a tap. */
export interface VmNic {
  /** The tap's name (validated before it is opened). */
  readonly tap: string;
  /** The guest NIC's MAC (6 bytes). */
  readonly mac: Uint8Array;
  /** Drop guest frames with another source MAC (`locked lladdr`). */
  readonly lockedLladdr?: boolean;
  /** A `local interface`: the device answers DHCP with these addresses. */
  readonly local?: { readonly host: string; readonly guest: string };
  /**
   * A tap already open (vmd opened it and this process inherited it) with its host side's MAC; the tap is
   * then not opened by name. Closed with the devices either way.
   */
  readonly opened?: { readonly fd: number; readonly hostMac: Uint8Array };
}

/** A PCI function's INTx routing, for the MP table. */
export interface PciIrq {
  /** Its slot on bus 0. */
  readonly slot: number;
  /** Its IOAPIC pin. */
  readonly gsi: number;
}

/** First GSI given to PCI functions (IOAPIC pins 16..23 belong to no ISA device). */
export const PCI_GSI_BASE = 16;
/** Most virtio functions per VM (one IOAPIC pin each). */
export const MAX_VIRTIO_FUNCTIONS = 8;

interface PlannedDevice {
  readonly row: "virtio-blk" | "virtio-rng" | "virtio-net" | "virtio-scsi";
  readonly label: string;
  readonly slot: number;
  readonly gsi: number;
  readonly state: SharedArrayBuffer;
  readonly disk?: VmDisk & { readonly id: string };
  readonly nic?: VmNic;
  readonly cdrom?: VmCdrom;
  config?: SharedArrayBuffer;
  tapFd?: number;
  /** A CD-ROM image this object opened itself. */
  cdromFd?: number;
}

/** Too many devices, or a device worker that would not start. */
export class PciDevicesError extends Error {
  /** Builds the error. */
  constructor(message: string) {
    super(message);
    this.name = "PciDevicesError";
  }
}

/** The MSI-X capability's offset in a virtio function's config space (every one we build has it). */
function msixCap(config: SharedArrayBuffer): number {
  const at = new PciConfigSpace(config).findCapability(PCI_CAP_MSIX);
  if (at === undefined) throw new PciDevicesError("a virtio function lacks its MSI-X capability");
  return at;
}

const KIND = {
  "virtio-blk": "blk",
  "virtio-net": "net",
  "virtio-rng": "rng",
  "virtio-scsi": "scsi",
} as const satisfies Record<PlannedDevice["row"], string>;
const QUEUES = { blk: 1, net: 2, rng: 1, scsi: 3 } as const;
const CONFIG_LENGTH = {
  blk: BLK_CONFIG_LENGTH,
  net: NET_CONFIG_LENGTH,
  rng: 0,
  scsi: SCSI_CONFIG_LENGTH,
} as const;

/** A VM's PCI bus 0 and its virtio devices. */
export class PciDevices {
  /** Functions for the vCPU workers' buses. */
  readonly functions: readonly PciFunctionSpec[];
  /** INTx routing for the MP table. */
  readonly irqs: readonly PciIrq[];
  readonly #planned: PlannedDevice[];
  #handles: DeviceHandle[] = [];
  /** Chains this object opened itself (disks given by path). */
  #opened: ChainImage[][] = [];

  /**
   * Plans the bus: slots, BARs, GSIs and shared state; nothing runs yet. The disks come first, then the
   * CD-ROM, virtio-rng and the NICs.
   */
  constructor(disks: readonly VmDisk[], rng: boolean, nics: readonly VmNic[] = [], cdrom?: VmCdrom) {
    const planned: PlannedDevice[] = [];
    const add = (
      row: PlannedDevice["row"],
      label: string,
      disk?: PlannedDevice["disk"],
      nic?: VmNic,
      cd?: VmCdrom,
    ) => {
      const slot = planned.length + 1;
      planned.push({
        row,
        label,
        slot,
        gsi: PCI_GSI_BASE + planned.length,
        state: createTransportState(),
        disk,
        nic,
        cdrom: cd,
      });
    };
    disks.forEach((d, i) => add("virtio-blk", `virtio-blk${i}`, { ...d, id: `vmd-disk-${i}` }));
    if (cdrom !== undefined) add("virtio-scsi", "virtio-scsi0", undefined, undefined, cdrom);
    if (rng) add("virtio-rng", "virtio-rng");
    nics.forEach((n, i) => {
      validateInterfaceName(n.tap);
      if (n.mac.length !== 6) throw new PciDevicesError(`NIC ${i}: a MAC has 6 bytes`);
      add("virtio-net", `virtio-net${i}`, undefined, n);
    });
    if (planned.length > MAX_VIRTIO_FUNCTIONS) {
      throw new PciDevicesError(
        `${planned.length} virtio devices asked for; at most ${MAX_VIRTIO_FUNCTIONS} fit (one IOAPIC pin each)`,
      );
    }
    this.#planned = planned;
    const host = PciConfigSpace.create(HOST_BRIDGE);
    const functions: PciFunctionSpec[] = [{ slot: 0, config: host.state }];
    planned.forEach((p, i) => {
      const kind = KIND[p.row];
      const cfg = virtioPciConfigSpace(
        kind,
        PCI_MMIO_START + i * VIRTIO_BAR_SIZE,
        p.gsi,
        QUEUES[kind],
        CONFIG_LENGTH[kind],
      );
      p.config = cfg.state;
      functions.push({
        slot: p.slot,
        config: cfg.state,
        virtio: { state: p.state, gsi: p.gsi, name: p.label },
      });
    });
    this.functions = functions;
    this.irqs = planned.map((p) => ({ slot: p.slot, gsi: p.gsi }));
  }

  /** The slot of the first function of kind `row`, if there is one. */
  firstSlot(row: PlannedDevice["row"]): number | undefined {
    return this.#planned.find((p) => p.row === row)?.slot;
  }

  /** True when there is more than the host bridge. */
  get hasDevices(): boolean {
    return this.#planned.length > 0;
  }

  /** The running device workers. */
  get handles(): readonly DeviceHandle[] {
    return this.#handles;
  }

  /**
   * Spawns every device worker (each from its permission-table row), side by side, and waits until all are
   * ready; on any failure every one is stopped.
   */
  async spawn(
    memory: GuestMemoryShare,
    base: PolicyContext,
    irqLine: (gsi: number, level: 0 | 1) => void,
    signalMsi: (addressLo: number, addressHi: number, data: number) => void,
  ): Promise<void> {
    const spawning: Promise<DeviceHandle>[] = [];
    try {
      for (const p of this.#planned) {
        let files: readonly DiskFile[] = [];
        if (p.disk !== undefined) files = p.disk.files ?? this.#openDisk(p.disk);
        let cdrom: CdromInit | undefined;
        if (p.cdrom !== undefined) {
          cdrom = {
            fd: p.cdrom.fd ?? this.#openCdrom(p),
            name: p.cdrom.path,
            libcPath: base.libcPath,
            serial: "VMD-CD0",
          };
        }
        let net: NetInit | undefined;
        if (p.nic !== undefined) {
          const tap = p.nic.opened ?? openTap(p.nic.tap, openLibc(base.libcPath));
          p.tapFd = tap.fd;
          net = {
            tapFd: tap.fd,
            libcPath: base.libcPath,
            mac: [...p.nic.mac],
            lockedLladdr: p.nic.lockedLladdr ?? false,
            dhcp: p.nic.local === undefined ? undefined : { ...p.nic.local, hostMac: [...tap.hostMac] },
          };
        }
        const late = p.row === "virtio-rng" ? lateWorkerUrl("virtio-rng") : undefined;
        const options: DeviceSpawnOptions = {
          row: p.row,
          label: p.label,
          policy: base,
          memory,
          state: p.state,
          disk: p.disk === undefined
            ? undefined
            : { files, readOnly: p.disk.readOnly ?? false, id: p.disk.id, libcPath: base.libcPath },
          net,
          cdrom,
          gsi: p.gsi,
          irqLine,
          msix: { config: p.config!, cap: msixCap(p.config!), signal: signalMsi },
        };
        // virtio-rng's worker starts at DRIVER_OK when this process can start it then (late_worker.ts)
        spawning.push(
          late === undefined
            ? DeviceHandle.spawn(options)
            : Promise.resolve(DeviceHandle.spawnLate(options, late, new RngBackend())),
        );
      }
    } catch (e) {
      spawning.forEach((s) => s.then((h) => h.stop(), () => {}));
      this.stop();
      throw e;
    }
    const done = await Promise.allSettled(spawning);
    for (const d of done) if (d.status === "fulfilled") this.#handles.push(d.value);
    const failed = done.find((d): d is PromiseRejectedResult => d.status === "rejected");
    if (failed !== undefined) {
      this.stop();
      throw failed.reason;
    }
  }

  /** Opens a disk given by path (and its backing chain) with this process's rights, for its worker. */
  #openDisk(disk: VmDisk): DiskFile[] {
    if (disk.path === undefined) throw new PciDevicesError("a disk needs a path or its opened files");
    const chain = openImageChain(disk.path, {
      format: disk.format,
      readOnly: disk.readOnly ?? false,
      allowBlockDevice: true, // this process's own rights: whatever device it may open, it may use
    });
    this.#opened.push(chain);
    return diskFilesOf(chain);
  }

  /** Opens a CD-ROM image given by path with this process's rights (read-only), for its worker. */
  #openCdrom(p: PlannedDevice): number {
    const file = openFileOnce(p.cdrom!.path, { what: "CD-ROM image" });
    p.cdromFd = file.fd;
    const problem = cdromImageProblem(file.size);
    if (problem !== undefined) throw new PciDevicesError(`${p.cdrom!.path}: ${problem}`);
    return file.fd;
  }

  /** Stops every device worker, then closes the taps (which removes them). */
  stop(): void {
    for (const h of this.#handles) h.stop();
    for (const chain of this.#opened.splice(0)) closeImageChain(chain);
    for (const p of this.#planned) {
      if (p.tapFd !== undefined) closeFd(p.tapFd);
      p.tapFd = undefined;
      if (p.cdromFd !== undefined) closeFd(p.cdromFd);
      p.cdromFd = undefined;
    }
  }
}
