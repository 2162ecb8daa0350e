/** Airtime computations per second (LoRa time-on-air), beside a fixed-rate computation. */
import { loraAirtime } from '../src/link/airtime/lora.js';
import { BENCH_MS, rate, sink, type Row } from './measure.js';

const N = 100_000;

export function airtimeBench(): Row[] {
  const params = { sf: 9, bandwidth: 125_000, cr: 5 };
  return [
    {
      name: 'lora airtime',
      unit: '/s',
      value: rate(N, BENCH_MS, () => {
        for (let i = 0; i < N; i++) sink.value += loraAirtime(params, i & 0xff).airtimeMs;
      }),
      baselineName: 'bytes × 8 / bit rate',
      baseline: rate(N, BENCH_MS, () => {
        for (let i = 0; i < N; i++) sink.value += ((i & 0xff) * 8 * 1000) / 5468.75;
      }),
    },
  ];
}
