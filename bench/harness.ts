// Shared by every benchmark: timing loops that report medians, and the result record the runner
// collects. Benchmarks measure; they never pass or fail on a time (DESIGN.md).
import { performance } from 'node:perf_hooks';

export interface BenchResult {
  /** Group, e.g. "wire", "lease-db". */
  suite: string;
  /** What was measured, e.g. "DHCP decode (DISCOVER, 300 B)". */
  name: string;
  value: number;
  unit: string;
  /** Ratio to the named baseline measured in the same run, when there is one. */
  ratio?: { to: string; value: number };
  /** Free-form details: sizes, counts, runs. */
  note?: string;
  /** An issue's target for this number, and whether this run met it. */
  target?: { text: string; met: boolean };
  /** Shown in README's performance section (the numbers people compare); the full table has every result. */
  headline?: boolean;
}

/** Median of the samples (the middle one, or the mean of the two middle ones). */
export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/**
 * ns per call of fn, median over `rounds` rounds of `iterations` calls each, after a warm-up
 * round. The result of fn is folded into a sink so the JIT cannot drop the work.
 */
export function nsPerOp(fn: () => unknown, iterations = 100_000, rounds = 7): number {
  let sink = 0;
  const round = (): number => {
    const t0 = performance.now();
    for (let i = 0; i < iterations; i++) {
      const r = fn();
      if (r === undefined) sink++;
    }
    return ((performance.now() - t0) * 1e6) / iterations;
  };
  round();
  const samples: number[] = [];
  for (let r = 0; r < rounds; r++) samples.push(round());
  if (sink < 0) console.log(sink);
  return median(samples);
}
