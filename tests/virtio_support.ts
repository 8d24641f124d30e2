/**
 * Test support for virtio tests: disk images with a known pattern.
 *
 * @module
 */

/** The pattern byte at disk offset `o`: (o >> 9) ^ (o & 0xff), so every sector differs. */
export function patternByte(o: number): number {
  return ((o >>> 9) ^ (o & 0xff)) & 0xff;
}

/** Writes a raw image of `size` bytes holding the pattern. */
export async function patternImage(path: string, size = 1 << 20): Promise<void> {
  const b = new Uint8Array(size);
  for (let o = 0; o < size; o++) b[o] = patternByte(o);
  await Deno.writeFile(path, b);
}

/** Whether this host has hardware virtualisation (vmx/svm), which a stock Linux guest needs; and why not. */
export function hardwareKvm(): { present: boolean; why: string } {
  const cpuinfo = Deno.readTextFileSync("/proc/cpuinfo");
  const flags = /^flags\s*:(.*)$/m.exec(cpuinfo)?.[1].split(" ") ?? [];
  if (flags.includes("vmx") || flags.includes("svm")) return { present: true, why: "vmx/svm present" };
  return {
    present: false,
    why: "no vmx/svm in /proc/cpuinfo: this host's /dev/kvm is PVM (KVM without hardware virtualisation), " +
      "where a stock kernel cannot boot to init under any VMM",
  };
}
