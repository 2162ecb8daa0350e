/** Timing for the benchmarks: each figure is printed beside a baseline run in the same process. */
import { performance } from 'node:perf_hooks';

export interface Row {
  name: string;
  unit: string;
  value: number;
  baselineName: string;
  baseline: number;
}

/** Runs `fn` (which does `work` units) repeatedly for at least `ms`; returns units per second. */
export function rate(work: number, ms: number, fn: () => void): number {
  fn(); // warm up
  let runs = 0;
  const start = performance.now();
  let elapsed = 0;
  do {
    fn();
    runs++;
    elapsed = performance.now() - start;
  } while (elapsed < ms);
  return (work * runs) / (elapsed / 1000);
}

export const BENCH_MS = Number(process.env.BENCH_MS ?? 1000);

/** Keeps results observable so the JIT cannot drop the work. */
export const sink = { value: 0 };

export function printTable(rows: Row[]): void {
  const fmt = (v: number): string => (v >= 100 ? v.toFixed(0) : v.toFixed(2));
  const w = [32, 14, 14, 26, 8];
  const line = (cells: string[]): string => cells.map((c, i) => c.padEnd(w[i]!)).join('');
  console.log(line(['benchmark', 'value', 'baseline', 'baseline is', 'ratio']));
  for (const r of rows) {
    console.log(line([r.name, `${fmt(r.value)} ${r.unit}`, `${fmt(r.baseline)} ${r.unit}`, r.baselineName, (r.value / r.baseline).toFixed(3)]));
  }
}

/** The heap in use after a full collection when node runs with --expose-gc (`forced`), else as it is. */
export function heapUsed(): { bytes: number; forced: boolean } {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (gc) gc();
  return { bytes: process.memoryUsage().heapUsed, forced: gc !== undefined };
}
