/**
 * Pacer decisions per second (one enqueue and the poll that releases a frame) with 1, 10 and
 * 1,000 flows holding frames, beside a plain FIFO array doing the same pushes and shifts; and
 * `ready()` (the per-packet question) beside `estimateDelayMs()` (the simulation behind status) on
 * a loaded queue.
 */
import { Pacer } from '../src/link/pacer.js';
import type { AirtimeModel } from '../src/link/airtime/model.js';
import { BENCH_MS, rate, sink, type Row } from './measure.js';

const model: AirtimeModel = { kind: 'bench', maxBytes: 255, airtimeMs: (b) => 5 + b / 10, maxBytesWithin: () => 255 };
const BATCH = 10_000;

function benchFlows(flows: number): Row {
  const pacer = new Pacer<number>({
    model,
    budgets: [{ name: 'duty', windowMs: 3_600_000, fraction: 0.1 }, { name: 'short', windowMs: 15_000, fraction: 0.5 }],
    maxQueuedFrames: flows * 4 + 16,
    maxQueuedBytes: 1 << 30,
    maxFramesPerFlow: 8,
  });
  let now = 0;
  let k = 0;
  for (let f = 0; f < flows; f++) pacer.enqueue(now, { flow: `f${f}`, priority: 'bulk', bytes: 100, payload: k++ });
  const fifo: { flow: string; bytes: number }[] = [];
  for (let f = 0; f < flows; f++) fifo.push({ flow: `f${f}`, bytes: 100 });
  return {
    name: `pacer decisions, ${flows} flow${flows > 1 ? 's' : ''}`,
    unit: '/s',
    value: rate(BATCH, BENCH_MS, () => {
      for (let i = 0; i < BATCH; i++) {
        const deadline = pacer.nextDeadline(now);
        if (deadline !== undefined) now = deadline;
        const frame = pacer.poll(now);
        if (frame) pacer.enqueue(now, { flow: frame.flow, priority: 'bulk', bytes: 100, payload: k++ });
      }
    }),
    baselineName: 'FIFO array push/shift',
    baseline: rate(BATCH, BENCH_MS, () => {
      for (let i = 0; i < BATCH; i++) {
        const frame = fifo.shift()!;
        fifo.push({ flow: frame.flow, bytes: frame.bytes });
        sink.value += frame.bytes;
      }
    }),
  };
}

/** 200 frames queued over 10 flows and three classes, with an hour of budget history behind them. */
function benchReady(): Row {
  const pacer = new Pacer<number>({
    model,
    budgets: [{ name: 'duty', windowMs: 3_600_000, fraction: 0.1 }, { name: 'short', windowMs: 15_000, fraction: 0.5 }],
    maxQueuedFrames: 1024,
    maxQueuedBytes: 1 << 30,
    maxFramesPerFlow: 64,
  });
  let now = 0;
  // History: frames released over the past hour, well inside both budgets.
  for (let k = 0; k < 2_000; k++) {
    now += 1_700;
    pacer.enqueue(now, { flow: 'h', priority: 'bulk', bytes: 100, payload: k });
    pacer.poll(now);
  }
  const classes = ['ack', 'interactive', 'bulk'] as const;
  for (let k = 0; k < 200; k++) pacer.enqueue(now, { flow: `f${k % 10}`, priority: classes[k % 3]!, bytes: 100, payload: k });
  const at = now + 1;
  return {
    name: 'pacer ready(), 200 queued',
    unit: '/s',
    value: rate(BATCH, BENCH_MS, () => {
      for (let i = 0; i < BATCH; i++) if (pacer.ready(at, 'bulk')) sink.value++;
    }),
    baselineName: 'estimateDelayMs()',
    baseline: rate(BATCH / 100, BENCH_MS, () => {
      for (let i = 0; i < BATCH / 100; i++) sink.value += pacer.estimateDelayMs(at, 'bulk');
    }),
  };
}

export function pacerBench(): Row[] {
  return [benchFlows(1), benchFlows(10), benchFlows(1000), benchReady()];
}
