/**
 * A VM: the KVM VM fd, guest RAM over a SharedArrayBuffer, its vCPUs (each in its own worker), and the
 * devices every vCPU's bus carries (COM1 and the exit port for now). The VM's main thread owns the fds; the
 * workers only run.
 *
 * @module
 */
import { Kvm, type VcpuFd, type VmFd } from "../../ffi/kvm.ts";
import { KVM_CAP, KVM_MEM } from "../../ffi/kvm_ioctls.ts";
import { allocateGuestRam, type GuestRamBacking, hostAddressOf, PAGE_SIZE } from "../../ffi/guest_ram.ts";
import { openLibc, resolveLibcPath } from "../../ffi/libc.ts";
import { ByteRing } from "../console/byte_ring.ts";
import { DEBUG_EXIT_PORT } from "../devices/debug_exit.ts";
import type { PioDeviceSpec } from "../devices/device_spec.ts";
import { createUartShare, Uart16550, type UartShare } from "../devices/uart_16550.ts";
import { createCmosState } from "../devices/cmos_rtc.ts";
import { createI8042State, CTRL_ALT_DEL_SET1, I8042, I8042_IRQ } from "../devices/i8042.ts";
import { writeMpTable } from "../boot/mptable.ts";
import { ACPI_MAX_CPUS, writeAcpiTables } from "../acpi/acpi_tables.ts";
import { ACPI_PM_BASE, createAcpiPmState, pressPowerButton } from "../devices/acpi_pm.ts";
import { configurePcVcpu } from "./vcpu_setup.ts";
import { GuestMemory, type MemoryRegion } from "../memory/guest_memory.ts";
import type { PolicyContext } from "../privsep/permission_table.ts";
import { discardPrewarmedVcpuWorkers, prewarmVcpuWorkers, VcpuHandle } from "../vcpu/vcpu_handle.ts";
import type { VcpuExit } from "../vcpu/vcpu_exit.ts";
import { vcpuCpuid } from "./cpuid.ts";
import { detectPvm, pvmCpuid, type PvmDetection } from "./pvm.ts";
import {
  createPcDevices,
  createVmFd,
  KVM_IDENTITY_MAP_ADDR,
  KVM_TSS_ADDR,
  takePreparedPlatform,
} from "./pc_platform.ts";
import { PciDevices, type VmCdrom, type VmDisk, type VmNic } from "./pci_devices.ts";
import type { DeviceHandle } from "../virtio/device_handle.ts";
import { type BiosPlacement, placeBios } from "../firmware/bios_image.ts";
import { biosFwCfg, type BootDevice, pciBootPath, scsiBootPath } from "../firmware/bios_config.ts";
import { FW_CFG_PORTS } from "../firmware/fw_cfg_items.ts";
import { createFwCfgState } from "../devices/fw_cfg.ts";
import { DEBUGCON_PORT } from "../devices/debugcon.ts";

export type { VmCdrom, VmDisk, VmNic };

/** COM1's base port. */
export const COM1_PORT = 0x3f8;
/** COM1's interrupt line. */
export const COM1_IRQ = 4;
/** Start of the 32-bit PCI hole: RAM above this goes above 4 GiB. */
export const PCI_HOLE_START = 0xc000_0000;
export { KVM_IDENTITY_MAP_ADDR, KVM_TSS_ADDR } from "./pc_platform.ts";
/** The least RAM a VM booting through a BIOS gets (the BIOS runs in the first MiB and allocates above it). */
export const BIOS_MIN_MEMORY = 4 << 20;

/** A BIOS to boot through: its bytes and a name (its path) for errors. */
export interface VmBios {
  /** The image. */
  readonly image: Uint8Array;
  /** Its name in errors. */
  readonly name: string;
}

/** How to build a VM. */
export interface VmOptions {
  /** Guest RAM in bytes (a multiple of 4 KiB). */
  readonly memory: number;
  /** Number of vCPUs (default 1). */
  readonly vcpus?: number;
  /**
   * `bare` (default): COM1 (polled) and the exit port, no interrupt controller — HLT ends the run; for tiny
   * test guests. `pc`: what a PC kernel expects — in-kernel PIC/IOAPIC/LAPIC and PIT, COM1 on IRQ 4, CMOS RTC,
   * i8042, port 0x80, PCI configuration ports, ACPI tables and PM registers (power button, S5), an MP table,
   * boot MSRs — plus the exit port.
   */
  readonly platform?: "bare" | "pc";
  /** The KVM device (default /dev/kvm). */
  readonly kvmPath?: string;
  /** Disks, each a virtio-blk PCI function served by its own worker (`pc` platform only). */
  readonly disks?: readonly VmDisk[];
  /** A read-only CD-ROM: a virtio-scsi PCI function after the disks, served by its own worker (`pc` only). */
  readonly cdrom?: VmCdrom;
  /** A virtio-rng PCI function (`pc` platform only). */
  readonly rng?: boolean;
  /** virtio-net functions on taps, after the disks and virtio-rng (`pc` platform only). */
  readonly nics?: readonly VmNic[];
  /**
   * Boot through this BIOS (`pc` platform): the image is mapped read-only below 4 GiB and copied below 1 MiB,
   * vCPU 0 starts at the reset vector, and the BIOS learns the machine over fw_cfg. No MP table is written
   * (the BIOS writes its own).
   */
  readonly bios?: VmBios;
  /** With a BIOS: what it boots (OpenBSD vmd's `-B`); none: the BIOS's own order. */
  readonly bootDevice?: BootDevice;
  /** Whether the host's KVM is PVM (default: asked of KVM with {@link detectPvm}); see docs/pvm.md. */
  readonly pvm?: PvmDetection;
}

/** How a VM's run ended: the first vCPU exit that ended it. */
export interface VmResult {
  /** The vCPU whose exit ended the VM. */
  readonly vcpu: number;
  /** That exit. */
  readonly exit: VcpuExit;
}

/** The most vCPUs KVM creates in one VM: KVM_CAP_MAX_VCPUS, or KVM_CAP_NR_VCPUS, or 4 (the API's default). */
export function kvmMaxVcpus(kvm: Kvm): number {
  return kvm.checkExtension(KVM_CAP.KVM_CAP_MAX_VCPUS) || kvm.checkExtension(KVM_CAP.KVM_CAP_NR_VCPUS) || 4;
}

/** The guest-physical RAM layout for `bytes` of RAM: below the PCI hole, the rest above 4 GiB. */
export function ramLayout(bytes: number): MemoryRegion[] {
  if (bytes <= PCI_HOLE_START) return [{ gpa: 0, size: bytes }];
  return [{ gpa: 0, size: PCI_HOLE_START }, { gpa: 2 ** 32, size: bytes - PCI_HOLE_START }];
}

/** A VM and its vCPUs. */
export class Vm {
  /** The KVM system fd. */
  readonly kvm: Kvm;
  /** The VM fd. */
  readonly fd: VmFd;
  /** Guest RAM. */
  readonly memory: GuestMemory;
  /** Policy facts for the workers. */
  readonly policy: PolicyContext;
  /** COM1's shared state. */
  readonly uart: UartShare;
  /** Guest → host console bytes (COM1). */
  readonly consoleOut: ByteRing;
  /** Which platform the VM models. */
  readonly platform: "bare" | "pc";
  /** The ACPI RSDP's guest-physical address (`pc` platform), for the boot protocols. */
  readonly acpiRsdp: number | undefined;
  /** Whether the host's KVM is PVM (and so whether the VM is adapted to it: docs/pvm.md). */
  readonly pvm: PvmDetection;
  readonly #uartModel: Uart16550;
  readonly #rtc: SharedArrayBuffer;
  readonly #i8042 = createI8042State();
  readonly #keyboard: I8042;
  readonly #pciHost = new SharedArrayBuffer(4);
  readonly #acpiPm = createAcpiPmState();
  readonly #vcpuFds: VcpuFd[];
  readonly #mmapSize: number;
  readonly #pci: PciDevices;
  /** The BIOS's debug output (port 0x402), when booting through a BIOS. */
  readonly firmwareLog: ByteRing | undefined;
  readonly #fwCfg: { image: SharedArrayBuffer; state: SharedArrayBuffer } | undefined;
  // keeps the read-only BIOS mapping's backing alive as long as the VM
  readonly #rom: GuestRamBacking | undefined;
  /** The in-kernel PIT's set-up still running in the background (its error, if it failed). */
  readonly #pitSetUp: Promise<Error | undefined>;
  #vcpus: VcpuHandle[] = [];
  #result: Promise<VmResult> | undefined;
  #closed = false;

  private constructor(
    kvm: Kvm,
    fd: VmFd,
    memory: GuestMemory,
    vcpuFds: VcpuFd[],
    mmapSize: number,
    platform: "bare" | "pc",
    pci: PciDevices,
    acpiRsdp: number | undefined,
    pvm: PvmDetection,
    pitSetUp: Promise<Error | undefined>,
    firmware?: { rom: GuestRamBacking; fwCfg: SharedArrayBuffer },
  ) {
    this.#pitSetUp = pitSetUp;
    this.platform = platform;
    this.acpiRsdp = acpiRsdp;
    this.pvm = pvm;
    this.#rom = firmware?.rom;
    this.#fwCfg = firmware === undefined ? undefined : { image: firmware.fwCfg, state: createFwCfgState() };
    this.firmwareLog = firmware === undefined ? undefined : ByteRing.create(1 << 16);
    this.#pci = pci;
    this.kvm = kvm;
    this.fd = fd;
    this.memory = memory;
    this.#vcpuFds = vcpuFds;
    this.#mmapSize = mmapSize;
    this.policy = { libcPath: resolveLibcPath() };
    this.uart = createUartShare();
    this.consoleOut = new ByteRing({ sab: this.uart.tx });
    this.#uartModel = new Uart16550(this.uart, "uart", () => {
      if (this.platform !== "pc") return;
      this.fd.irqLine(COM1_IRQ, 1);
      this.fd.irqLine(COM1_IRQ, 0);
    });
    // the main thread's model of the i8042 only types keys; a reset comes from a vCPU's model
    this.#keyboard = new I8042(this.#i8042, () => {}, () => {
      this.fd.irqLine(I8042_IRQ, 1);
      this.fd.irqLine(I8042_IRQ, 0);
    });
    const below4g = memory.regions[0].size;
    this.#rtc = createCmosState({ below4g, above4g: memory.size - below4g });
  }

  /** Creates the VM, registers its RAM and creates its vCPUs (not yet running). */
  static create(options: VmOptions): Vm {
    const vcpus = options.vcpus ?? 1;
    if (!Number.isInteger(vcpus) || vcpus < 1 || vcpus > ACPI_MAX_CPUS) {
      throw new RangeError(
        `bad vCPU count ${vcpus}: a VM has 1..${ACPI_MAX_CPUS} (APIC ids below the broadcast id)`,
      );
    }
    if (
      !Number.isSafeInteger(options.memory) || options.memory < PAGE_SIZE || options.memory % PAGE_SIZE !== 0
    ) {
      throw new RangeError(`guest memory ${options.memory} is not a positive multiple of ${PAGE_SIZE}`);
    }
    const libcPath = resolveLibcPath();
    const libc = openLibc(libcPath);
    const prepared = options.platform === "pc" && options.pvm === undefined
      ? takePreparedPlatform(options.kvmPath)
      : undefined;
    const kvm = prepared?.kvm ?? Kvm.open(options.kvmPath, libc);
    const maxVcpus = kvmMaxVcpus(kvm);
    if (vcpus > maxVcpus) {
      prepared?.fd.close();
      kvm.close();
      throw new RangeError(
        `${vcpus} vCPUs: this host's KVM allows at most ${maxVcpus} per VM; give it fewer`,
      );
    }
    // the workers' isolates load while the VM is created and the kernel loaded
    prewarmVcpuWorkers(vcpus, { libcPath });
    let fd: VmFd | undefined = prepared?.fd;
    try {
      const pvm = prepared?.pvm ?? options.pvm ?? detectPvm(kvm);
      fd ??= createVmFd(kvm);
      const pc = options.platform === "pc";
      const bios = options.bios === undefined ? undefined : placeBios(options.bios.image, options.bios.name);
      if (bios !== undefined) checkBiosVm(kvm, options, pc);
      const pci = new PciDevices(
        options.disks ?? [],
        options.rng ?? false,
        options.nics ?? [],
        options.cdrom,
      );
      if (pci.hasDevices && !pc) {
        throw new RangeError(
          "disks, the CD-ROM and virtio-rng need the pc platform (its PCI bus and interrupt controller)",
        );
      }
      // RAM is registered before the in-kernel devices: each of those waits for an SRCU grace period in the
      // kernel, and a memory slot registered while one is pending waits for it too (3-10 ms measured)
      const backing = allocateGuestRam(options.memory);
      const memory = new GuestMemory({
        sab: backing.sab,
        offset: backing.offset,
        regions: ramLayout(options.memory),
      });
      memory.regions.forEach((r, slot) => {
        const host = hostAddressOf(memory.bytes.subarray(r.offset, r.offset + r.size));
        fd!.setUserMemoryRegion(slot, BigInt(r.gpa), BigInt(r.size), host);
      });
      const pitSetUp = prepared?.pitSetUp ??
        (pc ? createPcDevices(kvm, fd, pvm) : Promise.resolve(undefined));
      const supported = prepared?.supportedCpuid ?? kvm.supportedCpuid();
      const cpuid = pvm.pvm ? pvmCpuid(supported) : supported;
      const vcpuFds: VcpuFd[] = [];
      for (let id = 0; id < vcpus; id++) {
        const v = fd.createVcpu(id);
        vcpuFds.push(v);
        v.setCpuid2(vcpuCpuid(cpuid, id));
        if (pc) configurePcVcpu(v, true);
      }
      let firmware: { rom: GuestRamBacking; fwCfg: SharedArrayBuffer } | undefined;
      let rsdp: number | undefined;
      if (bios !== undefined) {
        // SeaBIOS is copied over the BIOS area and builds its own MP table; vmd's ACPI tables reach it through
        // fw_cfg's table loader
        const rom = mapBios(fd, memory, bios);
        firmware = { rom, fwCfg: biosDirectory(memory, vcpus, pci, options.bootDevice).freeze() };
      } else if (pc) {
        writeMpTable(memory, vcpus, pci.irqs);
        rsdp = writeAcpiTables(memory, {
          cpus: vcpus,
          pciRoutes: pci.irqs,
          com1: { port: COM1_PORT, irq: COM1_IRQ },
        });
      }
      return new Vm(
        kvm,
        fd,
        memory,
        vcpuFds,
        kvm.vcpuMmapSize(),
        pc ? "pc" : "bare",
        pci,
        rsdp,
        pvm,
        pitSetUp,
        firmware,
      );
    } catch (e) {
      discardPrewarmedVcpuWorkers();
      fd?.close();
      kvm.close();
      throw e;
    }
  }

  /** The number of vCPUs. */
  get vcpuCount(): number {
    return this.#vcpuFds.length;
  }

  /** vCPU `id`'s fd, to set its initial registers before {@link start}. */
  vcpuFd(id: number): VcpuFd {
    const v = this.#vcpuFds[id];
    if (v === undefined) throw new RangeError(`no vCPU ${id}`);
    return v;
  }

  /** The running virtio device workers (after {@link spawn}): disks, the CD-ROM, virtio-rng, NICs. */
  get virtioDevices(): readonly DeviceHandle[] {
    return this.#pci.handles;
  }

  /** The running vCPUs' handles (after {@link start}). */
  get vcpus(): readonly VcpuHandle[] {
    return this.#vcpus;
  }

  /** The devices on every vCPU's port bus. */
  devices(): PioDeviceSpec[] {
    const exit: PioDeviceSpec = { kind: "debug-exit", base: DEBUG_EXIT_PORT };
    if (this.platform === "bare") return [{ kind: "uart", base: COM1_PORT, share: this.uart }, exit];
    return [
      { kind: "uart", base: COM1_PORT, share: this.uart, irq: COM1_IRQ },
      exit,
      { kind: "rtc", base: 0x70, state: this.#rtc },
      { kind: "i8042", base: 0x60, state: this.#i8042 },
      { kind: "sink", base: 0x80, length: 1, name: "post" },
      { kind: "acpi-pm", base: ACPI_PM_BASE, state: this.#acpiPm },
      {
        kind: "pci-host",
        base: 0xcf8,
        state: this.#pciHost,
        functions: this.#pci.hasDevices || this.#fwCfg !== undefined ? this.#pci.functions : undefined,
      },
      ...this.#firmwareDevices(),
    ];
  }

  #firmwareDevices(): PioDeviceSpec[] {
    if (this.#fwCfg === undefined || this.firmwareLog === undefined) return [];
    return [
      {
        kind: "fw-cfg",
        base: FW_CFG_PORTS.selector,
        dmaBase: FW_CFG_PORTS.dma,
        image: this.#fwCfg.image,
        state: this.#fwCfg.state,
        memory: this.memory.share(),
      },
      { kind: "debugcon", base: DEBUGCON_PORT, ring: this.firmwareLog.sab },
    ];
  }

  /** Sends console input to the guest (COM1), raising its interrupt; returns how many bytes fitted. */
  consoleInput(bytes: Uint8Array): number {
    return this.#uartModel.receive(bytes);
  }

  /**
   * Presses and releases Ctrl-Alt-Del on the i8042 keyboard (`pc` platform), which a stock Linux guest
   * answers by rebooting (or by what its init makes of it). Returns false, sending nothing, when no guest
   * driver has set the keyboard up to take keys (see {@link I8042.typeKeys}).
   */
  sendCtrlAltDel(): boolean {
    if (this.platform !== "pc") return false;
    return this.#keyboard.typeKeys(CTRL_ALT_DEL_SET1);
  }

  /**
   * Presses the ACPI power button (`pc` platform): PWRBTN_STS and the SCI, which a guest's ACPI driver
   * answers by shutting down and writing S5. Returns false, pressing nothing, when the guest has not enabled
   * the power-button event (no ACPI driver: fall back to {@link sendCtrlAltDel}).
   */
  pressPowerButton(): boolean {
    if (this.platform !== "pc") return false;
    return pressPowerButton(this.#acpiPm, (gsi, level) => this.fd.irqLine(gsi, level));
  }

  /** Spawns one worker per vCPU and lets them run. */
  async start(): Promise<void> {
    await this.spawn();
    this.run();
  }

  /** Spawns one worker per vCPU, ready to run (their loops have not started). */
  async spawn(): Promise<void> {
    if (this.#vcpus.length > 0) throw new Error("VM already started");
    // Device workers and vCPU workers start side by side: each is an isolate that loads its modules, and
    // nothing in a vCPU's bus waits for a device worker (they meet through shared memory).
    const devicesReady = this.#pci.spawn(
      this.memory.share(),
      this.policy,
      (gsi, level) => this.fd.irqLine(gsi, level),
      (lo, hi, data) => this.fd.signalMsi(lo, hi, data),
    );
    const devices = this.devices();
    const vcpusReady = Promise.all(
      this.#vcpuFds.map((vcpu, id) =>
        VcpuHandle.spawn({
          id,
          vcpu,
          mmapSize: this.#mmapSize,
          devices,
          policy: this.policy,
          vmFd: this.platform === "pc" ? this.fd.fd : undefined,
          pvm: this.pvm.pvm,
        })
      ),
    );
    const [devicesDone, vcpusDone] = await Promise.allSettled([devicesReady, vcpusReady]);
    const pitError = await this.#pitSetUp; // before any vCPU runs
    if (devicesDone.status === "rejected" || vcpusDone.status === "rejected" || pitError !== undefined) {
      if (vcpusDone.status === "fulfilled") await Promise.all(vcpusDone.value.map((h) => h.stop()));
      throw devicesDone.status === "rejected"
        ? devicesDone.reason
        : vcpusDone.status === "rejected"
        ? vcpusDone.reason
        : pitError;
    }
    this.#vcpus = vcpusDone.value;
    this.#result = Promise.race(this.#vcpus.map((h) => h.ended.then((exit) => ({ vcpu: h.id, exit }))))
      .then(async (first) => {
        await Promise.all(this.#vcpus.map((h) => h.stop()));
        return first;
      });
  }

  /** Starts every spawned vCPU's loop. */
  run(): void {
    if (this.#vcpus.length === 0) throw new Error("VM not spawned");
    for (const h of this.#vcpus) h.start();
  }

  /** Resolves when the VM has ended (the first vCPU exit ends it; the others are stopped). */
  wait(): Promise<VmResult> {
    if (this.#result === undefined) throw new Error("VM not started");
    return this.#result;
  }

  /** Pauses every vCPU. */
  async pause(): Promise<void> {
    await Promise.all(this.#vcpus.map((h) => h.pause()));
  }

  /** Resumes every vCPU. */
  async resume(): Promise<void> {
    await Promise.all(this.#vcpus.map((h) => h.resume()));
  }

  /** Stops every vCPU and resolves with the VM's result. */
  async stop(): Promise<VmResult> {
    await Promise.all(this.#vcpus.map((h) => h.stop()));
    return await this.wait();
  }

  /**
   * Copies console output to `sink` as it arrives, until the VM has ended and the output is drained.
   */
  async pumpConsole(sink: (bytes: Uint8Array) => void | Promise<void>): Promise<void> {
    let done = false;
    const result = this.wait().then(() => done = true);
    while (!done) {
      await Promise.race([this.consoleOut.waitForData(100), result]);
      const bytes = this.consoleOut.drain();
      if (bytes.length > 0) await sink(bytes);
    }
    const rest = this.consoleOut.drain();
    if (rest.length > 0) await sink(rest);
  }

  /** Closes the vCPU fds, the VM fd and /dev/kvm. Call after the VM has ended. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#pci.stop();
    for (const v of this.#vcpuFds) v.close();
    this.fd.close();
    this.kvm.close();
  }
}

/** Refuses a BIOS VM this KVM or these options cannot make. */
function checkBiosVm(kvm: Kvm, options: VmOptions, pc: boolean): void {
  if (!pc) throw new RangeError("booting through a BIOS needs the pc platform");
  if (options.memory < BIOS_MIN_MEMORY) {
    throw new RangeError(
      `booting through a BIOS needs at least ${BIOS_MIN_MEMORY >> 20} MiB of memory; give the VM more (-m)`,
    );
  }
  if (kvm.checkExtension(KVM_CAP.KVM_CAP_READONLY_MEM) === 0) {
    throw new Error("KVM lacks KVM_CAP_READONLY_MEM, which mapping the BIOS read-only needs");
  }
}

/**
 * Maps the BIOS read-only below 4 GiB (writes exit as MMIO and are dropped) and copies it below 1 MiB (RAM:
 * the BIOS writes its variables there). Returns the read-only mapping's backing, which must outlive the VM.
 */
function mapBios(fd: VmFd, memory: GuestMemory, bios: BiosPlacement): GuestRamBacking {
  const n = bios.image.length;
  const rom = allocateGuestRam(n);
  const bytes = new Uint8Array(rom.sab, rom.offset, n);
  bytes.set(bios.image);
  fd.setUserMemoryRegion(
    memory.regions.length,
    BigInt(bios.highBase),
    BigInt(n),
    hostAddressOf(bytes),
    KVM_MEM.KVM_MEM_READONLY,
  );
  memory.write(bios.lowBase, bios.image);
  return rom;
}

/** The fw_cfg directory a BIOS VM serves, with the boot order `bootDevice` asks for. */
function biosDirectory(memory: GuestMemory, cpus: number, pci: PciDevices, bootDevice?: BootDevice) {
  let bootOrder: string[] | undefined;
  if (bootDevice === "disk") {
    const slot = pci.firstSlot("virtio-blk");
    if (slot === undefined) throw new RangeError("boot device disk: the VM has no disk; attach one (-d)");
    bootOrder = [pciBootPath(slot)];
  } else if (bootDevice === "cdrom") {
    const slot = pci.firstSlot("virtio-scsi");
    if (slot === undefined) throw new RangeError("boot device cdrom: the VM has no CD-ROM; attach one (-r)");
    bootOrder = [scsiBootPath(slot, 0, 0)]; // target 0, LUN 0
  } else if (bootDevice === "net") {
    bootOrder = []; // as OpenBSD vmd: the BIOS has no network boot (no PXE ROM), so it boots nothing
  }
  return biosFwCfg({
    ram: memory.regions,
    reserved: [{
      gpa: Number(KVM_IDENTITY_MAP_ADDR),
      size: KVM_TSS_ADDR + 3 * PAGE_SIZE - Number(KVM_IDENTITY_MAP_ADDR),
    }],
    cpus,
    bootOrder,
    serialPort: COM1_PORT,
    acpi: { cpus, pciRoutes: pci.irqs, com1: { port: COM1_PORT, irq: COM1_IRQ } },
  });
}
