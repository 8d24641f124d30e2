/**
 * The reserved words of vm.conf. An unquoted word from this list is always a keyword and never a string (quote
 * it to use it as a name), exactly as in vmd. Our Linux extensions (`cpus`, `initrd`, `cmdline`) are *not*
 * reserved: they are recognised only where they are allowed, so every file vmd accepts still parses.
 *
 * @module
 */

/** vmd's keyword table (including `add`, `id` and `size`, which it reserves without using). */
export const KEYWORDS: ReadonlySet<string> = new Set([
  "add",
  "agentx",
  "allow",
  "boot",
  "cdrom",
  "context",
  "delay",
  "device",
  "disable",
  "disk",
  "down",
  "enable",
  "format",
  "group",
  "id",
  "include",
  "inet6",
  "instance",
  "interface",
  "interfaces",
  "lladdr",
  "local",
  "locked",
  "memory",
  "net",
  "owner",
  "parallel",
  "path",
  "prefix",
  "rdomain",
  "sev",
  "seves",
  "size",
  "socket",
  "staggered",
  "start",
  "switch",
  "up",
  "vm",
]);

/** True when `word` is reserved. */
export function isKeyword(word: string): boolean {
  return KEYWORDS.has(word);
}

/** The closest word of `candidates` to `word` (edit distance at most 2), for "did you mean" hints. */
export function suggest(word: string, candidates: readonly string[]): string | null {
  let best: string | null = null;
  let bestDistance = 3;
  for (const c of candidates) {
    const d = editDistance(word.toLowerCase(), c);
    if (d < bestDistance) {
      best = c;
      bestDistance = d;
    }
  }
  return best;
}

function editDistance(a: string, b: string): number {
  if (Math.abs(a.length - b.length) > 2) return 3;
  let prev = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      cur[j] = Math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = cur;
  }
  return prev[b.length];
}
