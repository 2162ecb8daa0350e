/**
 * `npm run soak`: 24 virtual hours of a 10-node mesh on LoRa, AFSK and Wi-Fi, with datagram, MSP
 * and Strokkur traffic, through the daemon's own loop (meshgw sim's world: a MeshNode, a Gateway
 * with its pacer and duty-cycle budgets, MSP and Strokkur per node; only radios and clock are
 * simulated). It checks what a node on a roof must keep doing for a day:
 *
 * - heap flat: used heap after a forced GC, printed at each virtual hour; the last hour may not
 *   exceed the third by more than HEAP_GROWTH_LIMIT;
 * - the band's rules: every transmission of every interface, from the medium's record (not the
 *   pacer's), counted in every sliding window of the duty cycle's length (windows aligned with a
 *   transmission's start and with a transmission's end, which between them hold the maximum),
 *   and every transmission against the dwell limit where the region sets one;
 * - every MSP transfer and Strokkur message complete and intact (checked byte by byte);
 * - no timer that stops firing: every interface transmits (HELLOs at least) in every hour, and
 *   every datagram flow sends in every hour it is scheduled;
 * and prints one screen. Exit status 1 if any check fails.
 *
 *   npm run soak                         # 24 h, eu868
 *   npm run soak -- --hours 6 --seed 3   # shorter, another draw
 *   npm run soak -- --region us915       # the 400 ms dwell limit instead of the duty cycle
 */
import { parseArgs } from 'node:util';
import { heapUsed } from './measure.js';
import { parseScenarioText } from '../src/sim/scenario.js';
import { SimWorld } from '../src/sim/world.js';
import type { RegionName } from '../src/link/airtime/regions.js';

const HOUR_MS = 3_600_000;
/** Heap growth (after GC) between the third hour and the last that counts as a leak. */
export const HEAP_GROWTH_LIMIT = 16 * 1024 * 1024;

export interface SoakOptions {
  hours?: number;
  seed?: number;
  region?: RegionName;
  /** Called after each virtual hour with its line, for printing as it goes. */
  onHour?: (line: string) => void;
}

export interface SoakResult {
  hours: number;
  wallMs: number;
  heapMb: number[];
  heapGrowthBytes: number;
  gcForced: boolean;
  windowViolations: string[];
  dwellViolations: string[];
  /** Interfaces (node/medium) that sent nothing in some hour, with the hour. */
  silentTimers: string[];
  transfers: { kind: 'msp' | 'strokkur'; from: string; to: string; bytes: number; ok: boolean; seconds?: number; error?: string }[];
  datagrams: { sent: number; delivered: number };
  transmissions: number;
  worst: { node: string; medium: string; worstMs: number; budgetMs: number }[];
  failures: string[];
}

/** The scenario: 10 nodes; two gateways join a LoRa channel to a Wi-Fi segment and a VHF packet channel. */
export function soakScenario(hours: number, seed: number, region: RegionName): string {
  const frequency = region === 'us915' ? 903_900_000 : 869_525_000;
  const traffic: string[] = [
    // Sensors every five minutes, across each gateway and across both.
    '{ kind: datagram, from: l3, to: w1, every: 300, bytes: 24, start: 120 }',
    '{ kind: datagram, from: v2, to: l1, every: 300, bytes: 24, start: 150 }',
    '{ kind: datagram, from: w2, to: v1, every: 600, bytes: 32, start: 180 }',
    '{ kind: datagram, from: l4, to: gw2, every: 120, bytes: 16, start: 200 }',
    '{ kind: datagram, from: w1, to: w2, every: 10, bytes: 200, start: 60 }',
  ];
  const pairs: [string, string, number][] = [
    ['w1', 'l2', 4096],
    ['l1', 'w2', 2048],
    ['v1', 'w1', 1024],
    ['w2', 'l4', 2048],
    ['l3', 'v2', 1024],
    ['w1', 'w2', 262_144],
  ];
  for (let h = 0; h < hours; h++) {
    const [from, to, bytes] = pairs[h % pairs.length]!;
    traffic.push(`{ kind: msp, from: ${from}, to: ${to}, at: ${h * 3600 + 600}, bytes: ${bytes} }`);
    const [sFrom, sTo, sBytes] = pairs[(h + 3) % pairs.length]!;
    traffic.push(`{ kind: strokkur, from: ${sFrom}, to: ${sTo}, at: ${h * 3600 + 2100}, bytes: ${Math.min(sBytes, 8192)} }`);
  }
  return `
name: soak
seed: ${seed}
hours: ${hours}
region: ${region}
media:
  lora: { kind: lora, frequency: ${frequency}, bandwidth: 125000, sf: 7, pathLossExponent: 2.9 }
  vhf:  { kind: afsk, modem: afsk1200, reach: all, loss: 0.02 }
  wifi: { kind: wifi, bitRate: 6000000, mtu: 1200, reach: all, loss: 0.01 }
nodes:
  - { name: gw1, interfaces: [lora, wifi], at: [0, 0] }
  - { name: gw2, interfaces: [lora, vhf],  at: [1500, 0] }
  - { name: l1,  interfaces: [lora],       at: [700, 900] }
  - { name: l2,  interfaces: [lora],       at: [-900, 600] }
  - { name: l3,  interfaces: [lora],       at: [2600, 700] }
  - { name: l4,  interfaces: [lora],       at: [800, -1100] }
  - { name: v1,  interfaces: [vhf],        at: [9000, 9000] }
  - { name: v2,  interfaces: [vhf],        at: [9000, -9000] }
  - { name: w1,  interfaces: [wifi],       at: [10, 10] }
  - { name: w2,  interfaces: [wifi],       at: [-20, 5] }
traffic:
${traffic.map((t) => `  - ${t}`).join('\n')}
`;
}

/**
 * The most airtime in any window of `windowMs`, counted independently of the code under test:
 * for every window that starts at a transmission's start and every window that ends at a
 * transmission's end, the overlap of every transmission with it. O(n · k) for k transmissions
 * per window; the maximum over all windows is at one of these.
 */
export function maxWindowAirtime(starts: readonly number[], airtimes: readonly number[], windowMs: number): number {
  let best = 0;
  const n = starts.length;
  const overlap = (from: number, to: number, first: number): number => {
    let sum = 0;
    for (let j = first; j < n; j++) {
      const s = starts[j]!;
      if (s >= to) break;
      const e = s + airtimes[j]!;
      if (e > from) sum += Math.min(e, to) - Math.max(s, from);
    }
    return sum;
  };
  let lo = 0;
  for (let i = 0; i < n; i++) {
    const start = starts[i]!;
    best = Math.max(best, overlap(start, start + windowMs, i));
    const end = start + airtimes[i]!;
    // Transmissions that may reach into (end − window, end]: skip those that ended before.
    while (lo < i && starts[lo]! + airtimes[lo]! <= end - windowMs) lo++;
    best = Math.max(best, overlap(end - windowMs, end, lo));
  }
  return best;
}

export async function runSoak(options: SoakOptions = {}): Promise<SoakResult> {
  const hours = options.hours ?? 24;
  const seed = options.seed ?? 1;
  const region = options.region ?? 'eu868';
  const scenario = parseScenarioText(soakScenario(hours, seed, region), 'soak');
  const world = new SimWorld(scenario);
  const started = performance.now();
  const endMs = hours * HOUR_MS;
  await world.start(endMs);
  const heapMb: number[] = [];
  const windowViolations: string[] = [];
  const dwellViolations: string[] = [];
  const worstBy = new Map<string, SoakResult['worst'][number]>();
  const reported = new Set<string>();
  let transmissions = 0;
  const checkRules = (n: (typeof world.nodes)[number], medium: string, rec: { readonly starts: readonly number[]; readonly airtimes: readonly number[] }): void => {
    const entry = n.gateway.registry.list().find((e) => e.name === medium);
    const duty = entry?.rules.dutyCycle;
    const note = (key: string, w: SoakResult['worst'][number]): void => {
      const old = worstBy.get(key);
      if (!old || w.worstMs > old.worstMs) worstBy.set(key, w);
    };
    if (duty) {
      const worstMs = maxWindowAirtime(rec.starts, rec.airtimes, duty.windowMs);
      const budgetMs = duty.fraction * duty.windowMs;
      note(`${n.name}/${medium}`, { node: n.name, medium, worstMs, budgetMs });
      if (worstMs > budgetMs + 0.001 && !reported.has(`${n.name}/${medium}`) && reported.add(`${n.name}/${medium}`)) windowViolations.push(`${n.name}/${medium}: ${(worstMs / 1000).toFixed(3)} s in a ${duty.windowMs / 1000} s window, budget ${(budgetMs / 1000).toFixed(3)} s (by ${((world.clock.now()) / HOUR_MS).toFixed(0)} h)`);
    }
    const dwell = entry?.rules.dwellMs;
    if (dwell !== undefined) {
      const longest = rec.airtimes.reduce((a, b) => Math.max(a, b), 0);
      note(`${n.name}/${medium} (dwell)`, { node: n.name, medium: `${medium} (dwell)`, worstMs: longest, budgetMs: dwell });
      const hourStart = world.clock.now() - HOUR_MS;
      const over = rec.airtimes.filter((a, i) => a > dwell + 0.001 && rec.starts[i]! >= hourStart).length;
      if (over > 0) dwellViolations.push(`${n.name}/${medium}: ${over} transmissions over the ${dwell} ms dwell limit (longest ${longest.toFixed(1)} ms)`);
    }
  };
  const silentTimers: string[] = [];
  let gcForced = false;
  const heaps: number[] = [];
  const flowSent = new Map<number, number>();
  for (let hour = 1; hour <= hours; hour++) {
    for (let t = (hour - 1) * HOUR_MS; t < hour * HOUR_MS; ) {
      t += 60_000;
      world.clock.advanceTo(t);
      // Promise callbacks (Strokkur's reports) run between the steps.
      await new Promise<void>((r) => setImmediate(r));
    }
    let txThisHour = 0;
    const hourStart = (hour - 1) * HOUR_MS;
    for (const n of world.nodes) {
      for (const medium of n.links.keys()) {
        const key = `${n.name}/${medium}`;
        const rec = world.transmissions(n.name, medium)!;
        const fresh = rec.starts.filter((s) => s >= hourStart).length;
        txThisHour += fresh;
        transmissions += fresh;
        if (fresh === 0) silentTimers.push(`${key} sent nothing in hour ${hour}`);
        checkRules(n, medium, rec);
      }
    }
    // Every window ending from now on starts after now − 1 h: older transmissions can go, so
    // that the heap measures the nodes, not this record.
    world.forgetTransmissionsBefore(hour * HOUR_MS - HOUR_MS);
    for (const f of world.flows) {
      if (f.spec.kind !== 'datagram') continue;
      const before = flowSent.get(f.index) ?? 0;
      flowSent.set(f.index, f.sentAt.length);
      // Every flow starts within its first interval of at most 600 s, so each hour sends.
      if (f.sentAt.length === before && f.sentAt.length < f.received.length) silentTimers.push(`datagram flow ${f.from.name}→${f.to.name} sent nothing in hour ${hour}`);
    }
    const heap = heapUsed();
    gcForced = heap.forced;
    heaps.push(heap.bytes);
    heapMb.push(heap.bytes / 1048576);
    const done = world.flows.filter((f) => f.spec.kind !== 'datagram' && f.doneAt !== undefined).length;
    const startedTransfers = world.flows.filter((f) => f.spec.kind !== 'datagram' && f.startedAt !== undefined).length;
    const sent = world.flows.reduce((a, f) => a + (f.spec.kind === 'datagram' ? f.sentAt.length : 0), 0);
    const delivered = world.flows.reduce((a, f) => a + (f.spec.kind === 'datagram' ? f.delivered : 0), 0);
    options.onHour?.(
      `  hour ${String(hour).padStart(2)}  heap ${(heap.bytes / 1048576).toFixed(1).padStart(5)} MB  transmissions ${String(txThisHour).padStart(6)}  datagrams ${delivered}/${sent}  transfers ${done}/${startedTransfers}  wall ${((performance.now() - started) / 1000).toFixed(1)} s`,
    );
  }
  const wallMs = performance.now() - started;

  const worst = [...worstBy.values()];
  const transfers: SoakResult['transfers'] = world.flows
    .filter((f) => f.spec.kind !== 'datagram')
    .map((f) => ({
      kind: f.spec.kind as 'msp' | 'strokkur',
      from: f.from.name,
      to: f.to.name,
      bytes: (f.spec as { bytes: number }).bytes,
      ok: f.doneAt !== undefined,
      ...(f.doneAt !== undefined && f.startedAt !== undefined ? { seconds: (f.doneAt - f.startedAt) / 1000 } : {}),
      ...(f.doneAt === undefined ? { error: f.error ?? (f.startedAt === undefined ? 'not started' : 'not complete at the end') } : {}),
    }));
  const datagrams = world.flows
    .filter((f) => f.spec.kind === 'datagram')
    .reduce((a, f) => ({ sent: a.sent + f.sentAt.length, delivered: a.delivered + f.delivered }), { sent: 0, delivered: 0 });
  await world.stop();

  const base = heaps[Math.min(2, heaps.length - 1)] ?? 0;
  const heapGrowthBytes = (heaps[heaps.length - 1] ?? 0) - base;
  const failures: string[] = [...windowViolations, ...dwellViolations, ...silentTimers];
  for (const t of transfers) if (!t.ok) failures.push(`${t.kind} ${t.from}→${t.to} (${t.bytes} B): ${t.error}`);
  if (gcForced && hours >= 4 && heapGrowthBytes > HEAP_GROWTH_LIMIT) failures.push(`heap grew by ${(heapGrowthBytes / 1048576).toFixed(1)} MB after GC from hour 3 to hour ${hours} (limit ${HEAP_GROWTH_LIMIT / 1048576} MB)`);
  return { hours, wallMs, heapMb, heapGrowthBytes, gcForced, windowViolations, dwellViolations, silentTimers, transfers, datagrams, transmissions, worst, failures };
}

function summary(r: SoakResult, region: string): string[] {
  const msp = r.transfers.filter((t) => t.kind === 'msp');
  const sk = r.transfers.filter((t) => t.kind === 'strokkur');
  const secs = (ts: typeof msp): string => {
    const s = ts.filter((t) => t.seconds !== undefined).map((t) => t.seconds!).sort((a, b) => a - b);
    return s.length === 0 ? '' : `, ${s[0]!.toFixed(1)}–${s[s.length - 1]!.toFixed(1)} s each`;
  };
  const tightest = [...r.worst].sort((a, b) => b.worstMs / b.budgetMs - a.worstMs / a.budgetMs)[0];
  const lines = [
    '',
    `soak: ${r.hours} virtual hours, 10 nodes (LoRa SF7 ${region}, AFSK 1200, Wi-Fi), ${r.transmissions} transmissions, ${(r.wallMs / 1000).toFixed(1)} s wall (${((r.hours * HOUR_MS) / r.wallMs).toFixed(0)}× real time)`,
    (r.hours >= 4
      ? `  heap after GC     ${r.heapMb[2]!.toFixed(1)} MB at hour 3 → ${r.heapMb[r.heapMb.length - 1]?.toFixed(1)} MB at hour ${r.hours} (${r.heapGrowthBytes >= 0 ? '+' : ''}${(r.heapGrowthBytes / 1048576).toFixed(1)} MB; limit +${HEAP_GROWTH_LIMIT / 1048576} MB)`
      : `  heap after GC     ${r.heapMb[r.heapMb.length - 1]?.toFixed(1)} MB at hour ${r.hours} (growth is judged from hour 3 on: run 4 hours or more)`) +
      (r.gcForced ? '' : ' — without a forced GC: run with node --expose-gc'),
    `  duty cycle        ${r.windowViolations.length} violations over every sliding window${tightest ? `; tightest ${tightest.node}/${tightest.medium} ${(tightest.worstMs / 1000).toFixed(1)} s of ${(tightest.budgetMs / 1000).toFixed(1)} s (${((100 * tightest.worstMs) / tightest.budgetMs).toFixed(0)} %)` : ''}`,
    `  dwell             ${r.dwellViolations.length} violations${r.worst.some((w) => w.medium.endsWith('(dwell)')) ? '' : ` (${region} sets no dwell limit on these channels)`}`,
    `  MSP transfers     ${msp.filter((t) => t.ok).length}/${msp.length} complete and intact${secs(msp)}`,
    `  Strokkur messages ${sk.filter((t) => t.ok).length}/${sk.length} complete and intact${secs(sk)}`,
    `  datagrams         ${r.datagrams.delivered}/${r.datagrams.sent} delivered (${((100 * r.datagrams.delivered) / Math.max(1, r.datagrams.sent)).toFixed(1)} %; lossy radios, no retransmission)`,
    `  timers            ${r.silentTimers.length === 0 ? 'every interface and every flow sent in every hour' : `${r.silentTimers.length} silent: ${r.silentTimers.slice(0, 3).join('; ')}`}`,
    r.failures.length === 0 ? 'PASS' : `FAIL (${r.failures.length}):\n${r.failures.slice(0, 10).map((f) => `  ${f}`).join('\n')}`,
  ];
  return lines;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const fail = (m: string): never => {
    console.error(`soak: ${m}\nusage: npm run soak -- [--hours N] [--seed N] [--region eu868|us915]`);
    process.exit(2);
  };
  let values: { hours?: string; seed?: string; region?: string } = {};
  try {
    values = parseArgs({ options: { hours: { type: 'string' }, seed: { type: 'string' }, region: { type: 'string' } } }).values;
  } catch (err) {
    fail((err as Error).message);
  }
  const hours = Number(values.hours ?? 24);
  const seed = Number(values.seed ?? 1);
  if (!Number.isInteger(hours) || hours < 1 || hours > 168) fail(`--hours must be 1..168, got ${values.hours}`);
  if (!Number.isSafeInteger(seed) || seed < 0) fail(`--seed must be a non-negative integer, got ${values.seed}`);
  const region = values.region ?? 'eu868';
  if (region !== 'eu868' && region !== 'us915') fail(`--region must be eu868 or us915, got ${region}`);
  console.log(`soak: ${hours} virtual hours, seed ${seed}, ${region}`);
  const result = await runSoak({ hours, seed, region: region as RegionName, onHour: (line) => console.log(line) });
  for (const line of summary(result, region)) console.log(line);
  process.exit(result.failures.length === 0 ? 0 : 1);
}
