/**
 * Test support for virtio tests: disk images with a known pattern.
 *
 * @module
 */
import { sh } from "./net_support.ts";

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

/**
 * A 16 MiB ext4 image `disk.img` in `dir` holding `hello.txt` (a known text), for Linux's own virtio-blk
 * driver to read; returns its path and the text's sha256 (hex), as `sha256sum` prints it.
 */
export async function helloExt4Image(dir: string): Promise<{ img: string; sha: string }> {
  await Deno.mkdir(`${dir}/root`);
  const content = "vmd virtio-blk test file\n".repeat(1000);
  await Deno.writeTextFile(`${dir}/root/hello.txt`, content);
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(content)));
  const sha = Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
  const img = `${dir}/disk.img`;
  await sh("mkfs.ext4", "-q", "-d", `${dir}/root`, img, "16M");
  return { img, sha };
}

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
