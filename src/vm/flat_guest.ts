/**
 * Loading a flat binary guest (no headers) into a VM and pointing vCPU 0 at it, in real mode or in 64-bit
 * long mode set up by the VMM.
 *
 * @module
 */
import { enterLongMode, enterRealMode } from "../boot/cpu_modes.ts";
import type { Vm } from "./vm.ts";

/** A flat guest image and how to enter it. */
export interface FlatImage {
  /** Real mode (entered at `loadAddress >> 4 : 0`) or long mode (entered at `loadAddress`). */
  readonly mode: "real" | "long";
  /** Guest physical load and entry address (16-byte aligned, below 1 MiB for real mode). */
  readonly loadAddress: number;
  /** The bytes. */
  readonly image: Uint8Array;
}

/** Copies `guest` into RAM and sets vCPU 0's registers for its entry. */
export function loadFlatGuest(vm: Vm, guest: FlatImage): void {
  vm.memory.write(guest.loadAddress, guest.image);
  const vcpu = vm.vcpuFd(0);
  if (guest.mode === "real") {
    if (guest.loadAddress % 16 !== 0 || guest.loadAddress >= 0x100000) {
      throw new RangeError(
        `real-mode load address 0x${guest.loadAddress.toString(16)} is not a paragraph < 1 MiB`,
      );
    }
    enterRealMode(vcpu, guest.loadAddress >> 4, 0);
  } else {
    enterLongMode(vcpu, vm.memory, guest.loadAddress, 0x80000);
  }
}
