/**
 * CURMEM: how much of a guest's RAM is resident, as vmd(8) reports it (vmm(4) counts the pages of the
 * guest's address space that are in memory). A VM process keeps guest RAM in one anonymous read-write
 * mapping (the SharedArrayBuffer KVM is given: the guest's memory plus a page of alignment and the
 * allocator's header), so the resident size of that one mapping, from `/proc/<pid>/smaps`, is the guest's
 * use. The Deno runtime's own memory (V8 heaps, workers, code) is not guest memory and is not counted: a
 * guest can never show more than its MAXMEM. The daemon runs as root and may read the smaps of VM processes
 * after they have dropped to their own uid.
 *
 * @module
 */

/** Slack between the guest's memory size and its mapping's size (alignment page, allocator header). */
const MAPPING_SLACK = 64 * 1024;

/**
 * The resident bytes of the guest-RAM mapping in an smaps text: the anonymous read-write mapping whose size
 * is the guest's `memory` (plus at most 64 KiB). When several qualify, the most resident one. Null when none
 * does.
 */
export function guestResidentFromSmaps(smaps: string, memory: number): number | null {
  let best: number | null = null;
  for (const block of smaps.split(/\n(?=[0-9a-f]+-[0-9a-f]+ )/)) {
    const head = /^[0-9a-f]+-[0-9a-f]+ (\S+) \S+ \S+ \S+[ \t]*(.*)$/m.exec(block);
    if (head === null || !head[1].startsWith("rw") || head[2].trim() !== "") continue;
    const size = Number(/^Size:\s+(\d+) kB$/m.exec(block)?.[1] ?? NaN) * 1024;
    if (!(size >= memory && size <= memory + MAPPING_SLACK)) continue;
    const rss = Number(/^Rss:\s+(\d+) kB$/m.exec(block)?.[1] ?? NaN) * 1024;
    if (Number.isFinite(rss) && (best === null || rss > best)) best = Math.min(rss, memory);
  }
  return best;
}

/** The resident bytes of guest RAM of the VM process `pid` whose guest has `memory` bytes; null if unknown. */
export function guestResidentBytes(pid: number, memory: number): number | null {
  try {
    return guestResidentFromSmaps(Deno.readTextFileSync(`/proc/${pid}/smaps`), memory);
  } catch {
    return null;
  }
}
