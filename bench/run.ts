/**
 * `npm run bench`: KISS encode and decode throughput for 64-byte and 1 KiB frames, each beside a
 * baseline run in the same process — a plain copy of the same bytes — and their ratio.
 * Figures vary with the machine; the ratio is what to compare between changes.
 */
import { performance } from 'node:perf_hooks';
import { KissDecoder, encodeKissData } from '../firmware-protocol/kiss.js';

interface Row {
  name: string;
  mbPerSec: number;
  baselineMbPerSec: number;
}

/** Deterministic frame contents with the escape-worthy bytes at their natural rate (2/256). */
function makeFrames(size: number, count: number): Uint8Array[] {
  let x = 0x12345678;
  return Array.from({ length: count }, () => {
    const f = new Uint8Array(size);
    for (let i = 0; i < size; i++) {
      x = (x * 1103515245 + 12345) >>> 0;
      f[i] = x >>> 24;
    }
    return f;
  });
}

/** Runs `fn` (which processes `bytes` bytes) repeatedly for at least `ms`; returns MB/s. */
function throughput(bytes: number, ms: number, fn: () => void): number {
  fn(); // warm up
  let runs = 0;
  const start = performance.now();
  let elapsed = 0;
  do {
    fn();
    runs++;
    elapsed = performance.now() - start;
  } while (elapsed < ms);
  return (bytes * runs) / (elapsed / 1000) / 1e6;
}

function bench(size: number, ms: number): Row[] {
  const frames = makeFrames(size, Math.max(64, Math.floor((1 << 20) / size)));
  const total = frames.reduce((n, f) => n + f.length, 0);
  let sink = 0;

  // Baseline: copy the same frames into fresh buffers.
  const copy = (): void => {
    for (const f of frames) sink += f.slice().length;
  };
  const encode = (): void => {
    for (const f of frames) sink += encodeKissData(f).length;
  };
  const stream = new Uint8Array(frames.reduce((n, f) => n + encodeKissData(f).length, 0));
  let o = 0;
  for (const f of frames) {
    const e = encodeKissData(f);
    stream.set(e, o);
    o += e.length;
  }
  // Decode in 256-byte chunks, as a serial port delivers them; the baseline copies those chunks.
  const chunks: Uint8Array[] = [];
  for (let i = 0; i < stream.length; i += 256) chunks.push(stream.subarray(i, i + 256));
  const copyChunks = (): void => {
    for (const c of chunks) sink += c.slice().length;
  };
  const decode = (): void => {
    const d = new KissDecoder({ maxFrame: size });
    for (const c of chunks) sink += d.push(c).length;
  };

  const rows: Row[] = [
    { name: `kiss encode ${size} B`, mbPerSec: throughput(total, ms, encode), baselineMbPerSec: throughput(total, ms, copy) },
    { name: `kiss decode ${size} B`, mbPerSec: throughput(stream.length, ms, decode), baselineMbPerSec: throughput(stream.length, ms, copyChunks) },
  ];
  if (sink === -1) console.log(sink); // keep the work observable
  return rows;
}

const ms = Number(process.env.BENCH_MS ?? 1000);
const rows = [...bench(64, ms), ...bench(1024, ms)];
const pad = (s: string, n: number): string => s.padEnd(n);
console.log(`${pad('benchmark', 22)}${pad('MB/s', 10)}${pad('copy MB/s', 12)}ratio`);
for (const r of rows) {
  console.log(
    `${pad(r.name, 22)}${pad(r.mbPerSec.toFixed(1), 10)}${pad(r.baselineMbPerSec.toFixed(1), 12)}${(r.mbPerSec / r.baselineMbPerSec).toFixed(3)}`,
  );
}
