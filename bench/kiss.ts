/** KISS encode and decode throughput for 64-byte and 1 KiB frames, beside a plain copy. */
import { KissDecoder, encodeKissData } from '../firmware-protocol/kiss.js';
import { BENCH_MS, rate, sink, type Row } from './measure.js';

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

function benchSize(size: number): Row[] {
  const frames = makeFrames(size, Math.max(64, Math.floor((1 << 20) / size)));
  const total = frames.reduce((n, f) => n + f.length, 0);
  const encoded = frames.map((f) => encodeKissData(f));
  const stream = new Uint8Array(encoded.reduce((n, e) => n + e.length, 0));
  let o = 0;
  for (const e of encoded) {
    stream.set(e, o);
    o += e.length;
  }
  // Decode in 256-byte chunks, as a serial port delivers them; the baseline copies those chunks.
  const chunks: Uint8Array[] = [];
  for (let i = 0; i < stream.length; i += 256) chunks.push(stream.subarray(i, i + 256));
  const mb = 1e6;
  return [
    {
      name: `kiss encode ${size} B`,
      unit: 'MB/s',
      value: rate(total / mb, BENCH_MS, () => {
        for (const f of frames) sink.value += encodeKissData(f).length;
      }),
      baselineName: 'copy of the frames',
      baseline: rate(total / mb, BENCH_MS, () => {
        for (const f of frames) sink.value += f.slice().length;
      }),
    },
    {
      name: `kiss decode ${size} B`,
      unit: 'MB/s',
      value: rate(stream.length / mb, BENCH_MS, () => {
        const d = new KissDecoder({ maxFrame: size });
        for (const c of chunks) sink.value += d.push(c).length;
      }),
      baselineName: 'copy of the chunks',
      baseline: rate(stream.length / mb, BENCH_MS, () => {
        for (const c of chunks) sink.value += c.slice().length;
      }),
    },
  ];
}

export function kissBench(): Row[] {
  return [...benchSize(64), ...benchSize(1024)];
}
