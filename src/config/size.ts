/**
 * Sizes written the way scan_scaled(3) reads them: a number, optionally with a fraction, and an optional unit
 * B, K, M, G, T, P or E (any case; powers of 1024).
 *
 * @module
 */

/** The result of reading a size: bytes, or why it is not a size. */
export type ScaledResult =
  | { readonly ok: true; readonly bytes: bigint }
  | { readonly ok: false; readonly reason: string };

const UNITS: Readonly<Record<string, bigint>> = {
  b: 1n,
  k: 1n << 10n,
  m: 1n << 20n,
  g: 1n << 30n,
  t: 1n << 40n,
  p: 1n << 50n,
  e: 1n << 60n,
};

const LLONG_MAX = (1n << 63n) - 1n;

/**
 * Reads `text` as scan_scaled(3) does: `512M`, `1.5g`, `1048576`, `2T`. The fraction is truncated to whole
 * bytes. Values beyond the range of a 64-bit signed integer are refused.
 */
export function scanScaled(text: string): ScaledResult {
  const m = /^[ \t]*([+-]?)([0-9]*)(?:\.([0-9]*))?([bkmgtpeBKMGTPE]?)$/.exec(text);
  if (m === null || (m[2] === "" && (m[3] ?? "") === "")) {
    return { ok: false, reason: "expected a number with an optional unit B, K, M, G, T, P or E" };
  }
  const [, sign, whole, fraction = "", unit] = m;
  const scale = UNITS[unit.toLowerCase()] ?? 1n;
  let bytes = BigInt(whole === "" ? "0" : whole) * scale;
  if (fraction !== "") bytes += (BigInt(fraction) * scale) / 10n ** BigInt(fraction.length);
  if (bytes > LLONG_MAX) return { ok: false, reason: "value is too large" };
  return { ok: true, bytes: sign === "-" ? -bytes : bytes };
}

/** Formats a byte count the short way: the largest unit that divides it (`512M`, `1G`, `1536K`, `100B`). */
export function formatScaled(bytes: number): string {
  const units: [string, number][] = [["T", 2 ** 40], ["G", 2 ** 30], ["M", 2 ** 20], ["K", 2 ** 10]];
  for (const [unit, scale] of units) {
    if (bytes !== 0 && bytes % scale === 0) return `${bytes / scale}${unit}`;
  }
  return `${bytes}`;
}
