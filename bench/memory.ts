/**
 * Memory of a set of processes for the benchmarks: resident (RSS, shared pages counted in every process that
 * maps them) and proportional (PSS, from `/proc/PID/smaps_rollup`: a page shared by n processes counts 1/n
 * in each), so that a sum over processes counts shared code once.
 *
 * @module
 */

/** RSS and PSS of some processes, in bytes. */
export interface MemorySum {
  /** Summed resident set sizes. */
  readonly rss: number;
  /** Summed proportional set sizes. */
  readonly pss: number;
}

/** RSS and PSS of process `pid` in bytes (zeros if it is gone). */
export function processMemory(pid: number): MemorySum {
  try {
    const rollup = Deno.readTextFileSync(`/proc/${pid}/smaps_rollup`);
    const kib = (re: RegExp) => Number(re.exec(rollup)?.[1] ?? 0) * 1024;
    return { rss: kib(/^Rss:\s+(\d+) kB/m), pss: kib(/^Pss:\s+(\d+) kB/m) };
  } catch {
    return { rss: 0, pss: 0 };
  }
}

/** The sums over `pids`, read at (nearly) the same moment. */
export function sumMemory(pids: readonly number[]): MemorySum {
  let rss = 0;
  let pss = 0;
  for (const pid of pids) {
    const m = processMemory(pid);
    rss += m.rss;
    pss += m.pss;
  }
  return { rss, pss };
}
