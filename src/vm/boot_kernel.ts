/**
 * Loading a kernel into a VM and pointing vCPU 0 at its entry, in the CPU mode its boot protocol asks for.
 *
 * @module
 */
import { enterLongMode, enterProtectedMode32 } from "../boot/cpu_modes.ts";
import { BOOT_STACK_ADDR } from "../boot/layout.ts";
import { type BootPlan, loadKernel, type LoadOptions } from "../boot/loader.ts";
import type { Vm } from "./vm.ts";
import { withPvmSwitches } from "./pvm.ts";
import { isBzImage } from "../boot/bzimage.ts";
import { pvhKernelInBzImage } from "../boot/bzimage_payload.ts";
import { inflateInitrd } from "../boot/initrd_gunzip.ts";
import { isElf, parseElf } from "../boot/elf.ts";

/**
 * True if `kernel` is Linux: a bzImage (Linux's own boot protocol), or an ELF with a note named "Linux"
 * (vmlinux carries its build salt in one). Other PVH ELF guests get none of the PVM changes to Linux.
 */
export function isLinuxKernel(kernel: Uint8Array, name: string): boolean {
  if (isBzImage(kernel)) return true;
  return isElf(kernel) && parseElf(kernel, name).notes.some((n) => n.name === "Linux");
}

/** The most a bzImage's payload may decompress to when vmd decompresses it (on PVM). */
export const MAX_DECOMPRESSED_KERNEL = 512 << 20;

/**
 * Loads `kernel` (PVH ELF or bzImage) with `options` into `vm` and sets vCPU 0's entry state. On a PVM host,
 * for a Linux kernel ({@link isLinuxKernel}), the kernel switches PVM needs are appended to the command line, and a bzImage whose payload vmd can
 * decompress (LZ4) into an ELF with a PVH entry is booted through that entry: its own decompressor would run
 * at emulated speed there, and so would its inflating of a gzip initramfs, which vmd hands over inflated
 * (at most half the guest's memory; docs/pvm.md). The VM's ACPI tables, if it has them, are handed to the
 * kernel.
 */
export async function bootKernel(vm: Vm, kernel: Uint8Array, options: LoadOptions): Promise<BootPlan> {
  const pvmLinux = vm.pvm.pvm && isLinuxKernel(kernel, options.kernelName);
  const cmdline = pvmLinux ? withPvmSwitches(options.cmdline) : options.cmdline;
  const direct = pvmLinux && isBzImage(kernel)
    ? pvhKernelInBzImage(kernel, options.kernelName, MAX_DECOMPRESSED_KERNEL)
    : undefined;
  const initrd = pvmLinux && options.initrd !== undefined
    ? await inflateInitrd(options.initrd, Math.floor(vm.memory.size / 2))
    : options.initrd;
  const plan = loadKernel(vm.memory, direct ?? kernel, {
    ...options,
    cmdline,
    initrd,
    rsdp: options.rsdp ?? vm.acpiRsdp,
  });
  const vcpu = vm.vcpuFd(0);
  if (plan.mode === "protected32") enterProtectedMode32(vcpu, vm.memory, plan.entry, plan.bootInfo);
  else enterLongMode(vcpu, vm.memory, plan.entry, BOOT_STACK_ADDR, plan.bootInfo);
  return plan;
}
