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

export { hardwareKvm } from "./kvm_support.ts";

/** What a device worker's confinement probe must report: every power denied. */
export const DENIED: Readonly<Record<string, string>> = {
  read: "NotCapable",
  write: "NotCapable",
  env: "NotCapable",
  net: "NotCapable",
  run: "NotCapable",
  sys: "NotCapable",
  ffi: "NotCapable",
  otherFile: "NotCapable",
};
