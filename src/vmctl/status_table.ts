/**
 * `vmctl status`'s table: ID PID VCPUS MAXMEM CURMEM TTY OWNER STATE NAME, one VM a line, sizes scaled.
 * Text from the daemon is printed with its control characters escaped: a row is always one line.
 *
 * @module
 */
import { printable } from "../vmd/printable.ts";
import type { VmStatus } from "../vmd/protocol.ts";

/** `bytes` with a unit, as fmt_scaled(3) would show it: `512M`, `1.0G`, `40.5M`. */
export function formatScaled(bytes: number): string {
  const units = ["B", "K", "M", "G", "T", "P"];
  let v = bytes;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  if (u === 0) return `${bytes}B`;
  return v >= 100 ? `${Math.round(v)}${units[u]}` : `${(Math.floor(v * 10) / 10).toFixed(1)}${units[u]}`;
}

/** The table's text (header included), no trailing newline. */
export function formatStatusTable(vms: readonly VmStatus[]): string {
  const row = (c: string[]) =>
    `${c[0].padStart(5)} ${c[1].padStart(5)} ${c[2].padStart(5)} ${c[3].padStart(7)} ${c[4].padStart(7)} ${
      c[5].padStart(7)
    } ${c[6].padStart(12)} ${c[7].padStart(8)} ${c[8]}`;
  const lines = [row(["ID", "PID", "VCPUS", "MAXMEM", "CURMEM", "TTY", "OWNER", "STATE", "NAME"])];
  for (const vm of vms) {
    lines.push(row([
      String(vm.id),
      vm.pid === null ? "-" : String(vm.pid),
      String(vm.vcpus),
      formatScaled(vm.maxmem),
      vm.curmem === null ? "-" : formatScaled(vm.curmem),
      vm.tty === null ? "-" : printable(vm.tty.replace(/^\/dev\//, "")),
      printable(vm.owner),
      vm.state,
      printable(vm.name),
    ]));
  }
  return lines.join("\n");
}
