/**
 * The pacer in virtual time. The budget property is checked by an independent sliding-window
 * count over the transmissions the pacer released, not by asking the pacer.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { Pacer, PRIORITY_CLASSES, type PacedFrame, type PriorityClass } from '../src/link/pacer.js';
import type { AirtimeModel } from '../src/link/airtime/model.js';
import { FixedRateAirtimeModel } from '../src/link/airtime/fixed-rate.js';
import type { BudgetSpec } from '../src/link/sliding-budget.js';

/** A simple model: 5 ms of preamble plus 1 ms per byte, up to 255 bytes. */
const linear: AirtimeModel = {
  kind: 'test',
  maxBytes: 255,
  airtimeMs: (bytes) => 5 + bytes,
  maxBytesWithin: (limit) => Math.min(255, Math.floor(limit - 5)),
};

const HOUR = 3_600_000;

interface Tx {
  start: number;
  end: number;
}

/**
 * The largest airtime inside any window of `windowMs` over sorted, non-overlapping transmissions.
 * The maximum is reached with a window that ends at a transmission's end or starts at a
 * transmission's start, so those windows are all that need counting.
 */
function maxWindowUsage(txs: readonly Tx[], windowMs: number): number {
  const cum = [0];
  for (const t of txs) cum.push(cum[cum.length - 1]! + (t.end - t.start));
  const firstEndingAfter = (a: number): number => {
    let lo = 0;
    let hi = txs.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (txs[mid]!.end > a) hi = mid;
      else lo = mid + 1;
    }
    return lo;
  };
  const lastStartingBefore = (b: number): number => {
    let lo = -1;
    let hi = txs.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (txs[mid]!.start < b) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  };
  const overlap = (a: number, b: number): number => {
    const i = firstEndingAfter(a);
    const j = lastStartingBefore(b);
    if (i > j) return 0;
    let sum = cum[j + 1]! - cum[i]!;
    sum -= Math.max(0, a - txs[i]!.start);
    sum -= Math.max(0, txs[j]!.end - b);
    return sum;
  };
  let max = 0;
  for (const t of txs) {
    max = Math.max(max, overlap(t.end - windowMs, t.end), overlap(t.start, t.start + windowMs));
  }
  return max;
}

/** Runs a pacer against a list of arrivals until everything is sent or `until` passes. */
function simulate<T>(pacer: Pacer<T>, arrivals: { at: number; flow: string; priority: PriorityClass; bytes: number; payload: T }[], until: number) {
  const sent: Array<PacedFrame<T> & { start: number }> = [];
  const sorted = [...arrivals].sort((a, b) => a.at - b.at);
  let i = 0;
  let now = 0;
  while (now <= until) {
    while (i < sorted.length && sorted[i]!.at <= now) {
      const a = sorted[i++]!;
      pacer.enqueue(a.at, a);
    }
    for (let f = pacer.poll(now); f; f = pacer.poll(now)) sent.push({ ...f, start: now });
    const next = Math.min(pacer.nextDeadline(now) ?? Infinity, sorted[i]?.at ?? Infinity);
    if (next === Infinity) break;
    expect(next).toBeGreaterThanOrEqual(now);
    now = next;
  }
  return sent;
}

describe('Pacer budgets', () => {
  it('property: never exceeds any budget in any sliding window over 24 virtual hours', () => {
    const budgets: BudgetSpec[] = [
      { name: 'duty cycle 1 %/h', windowMs: HOUR, fraction: 0.01 },
      { name: 'user short 10 %/15 s', windowMs: 15_000, fraction: 0.1 },
    ];
    // Bursts around a few random instants, so that the budgets are reached, plus background traffic.
    const scenario = fc.record({
      centers: fc.array(fc.integer({ min: 0, max: 24 * HOUR }), { minLength: 1, maxLength: 3 }),
      arrivals: fc.array(
        fc.record({
          cluster: fc.nat(),
          jitter: fc.integer({ min: 0, max: 120_000 }),
          background: fc.boolean(),
          uniformAt: fc.integer({ min: 0, max: 24 * HOUR }),
          flow: fc.constantFrom('a', 'b', 'c', 'd'),
          priority: fc.constantFrom(...PRIORITY_CLASSES),
          bytes: fc.integer({ min: 0, max: 255 }),
        }),
        { minLength: 800, maxLength: 2500 },
      ),
    });
    const peak = budgets.map(() => 0);
    fc.assert(
      fc.property(scenario, ({ centers, arrivals }) => {
        const timed = arrivals.map((a, k) => ({
          at: a.background ? a.uniformAt : centers[a.cluster % centers.length]! + a.jitter,
          flow: a.flow,
          priority: a.priority,
          bytes: a.bytes,
          payload: k,
        }));
        const pacer = new Pacer<number>({ model: linear, budgets, maxQueuedFrames: 5000, maxQueuedBytes: 1 << 24, maxFramesPerFlow: 5000 });
        const sent = simulate(pacer, timed, 48 * HOUR);
        const txs = sent.map((f) => ({ start: f.start, end: f.start + f.airtimeMs }));
        for (let k = 1; k < txs.length; k++) expect(txs[k]!.start).toBeGreaterThanOrEqual(txs[k - 1]!.end);
        budgets.forEach((b, i) => {
          const usage = maxWindowUsage(txs, b.windowMs);
          expect(usage).toBeLessThanOrEqual(b.fraction * b.windowMs + 1e-6);
          peak[i] = Math.max(peak[i]!, usage / (b.fraction * b.windowMs));
        });
        // Nothing was lost: every frame was either sent or counted as dropped.
        const drops = Object.values(pacer.counters.drops).reduce((x, y) => x + y, 0);
        expect(sent.length + drops).toBe(timed.length);
      }),
      { numRuns: 25 },
    );
    // The runs did press against every budget, so the check above was not vacuous.
    for (const p of peak) expect(p).toBeGreaterThan(0.98);
  });

  it('uses the budget fully when saturated (it paces, it does not starve)', () => {
    const budgets: BudgetSpec[] = [{ name: '1 %/h', windowMs: HOUR, fraction: 0.01 }];
    const pacer = new Pacer<number>({ model: linear, budgets, maxQueuedFrames: 10_000, maxQueuedBytes: 1 << 24, maxFramesPerFlow: 10_000 });
    const arrivals = Array.from({ length: 3000 }, (_, k) => ({ at: 0, flow: 'f', priority: 'bulk' as const, bytes: 95, payload: k }));
    const sent = simulate(pacer, arrivals, 3 * HOUR);
    const txs = sent.map((f) => ({ start: f.start, end: f.start + f.airtimeMs }));
    // 100 ms frames, 36 s per hour: 360 in the first hour, and as many in each later hour.
    const inFirstHour = txs.filter((t) => t.start < HOUR).length;
    expect(inFirstHour).toBe(360);
    expect(maxWindowUsage(txs, HOUR)).toBeCloseTo(36_000, 6);
  });

  it('reports used and left airtime per window', () => {
    const pacer = new Pacer({ model: linear, budgets: [{ name: 'cap', windowMs: 10_000, fraction: 0.5 }] });
    pacer.enqueue(0, { flow: 'x', priority: 'bulk', bytes: 95, payload: new Uint8Array(95) });
    expect(pacer.poll(0)?.airtimeMs).toBe(100);
    const s = pacer.status(50);
    expect(s.windows).toEqual([{ name: 'cap', windowMs: 10_000, limitMs: 5_000, usedMs: 50, leftMs: 4_950 }]);
    expect(pacer.status(20_000).windows[0]!.usedMs).toBe(0);
  });
});

describe('Pacer release ahead (the loop timer\'s granularity)', () => {
  it('frames due within aheadMs go at once, counted from their planned starts, so the schedule does not move', () => {
    // 0.2 ms per frame: five fit in the millisecond a timer may be late.
    const model = new FixedRateAirtimeModel({ bitRate: 8_000_000, maxBytes: 1200 });
    const pacer = new Pacer<number>({ model });
    for (let i = 0; i < 20; i++) pacer.enqueue(0, { flow: 'x', priority: 'bulk', bytes: 200, payload: i });
    const released: number[] = [];
    for (let f = pacer.poll(0, 1); f; f = pacer.poll(0, 1)) released.push(f.payload);
    // Starts 0, 0.2, 0.4, 0.6, 0.8, 1.0 are within 1 ms of now = 0.
    expect(released).toEqual([0, 1, 2, 3, 4, 5]);
    expect(pacer.status(0).busyUntil).toBeCloseTo(1.2, 9);
    // Without ahead: one frame per instant, as before.
    expect(pacer.poll(1.2)?.payload).toBe(6);
    expect(pacer.poll(1.2)).toBeUndefined();
    expect(pacer.counters.sentAirtimeMs).toBeCloseTo(7 * 0.2, 9);
  });
});

describe('Pacer refusals', () => {
  it('refuses a frame over the dwell limit and says what fits', () => {
    const pacer = new Pacer({ model: linear, dwellMs: 100 });
    const r = pacer.enqueue(0, { flow: 'x', priority: 'bulk', bytes: 200, payload: new Uint8Array(200) });
    expect(r).toMatchObject({ ok: false, reason: 'dwell', maxBytes: 95 });
    expect(r.ok === false && r.message).toMatch(/dwell limit.*at most 95 bytes/);
    expect(pacer.enqueue(0, { flow: 'x', priority: 'bulk', bytes: 95, payload: new Uint8Array(95) }).ok).toBe(true);
    expect(pacer.counters.drops.dwell).toBe(1);
  });

  it('refuses frames over the MTU and frames no budget could ever carry', () => {
    const pacer = new Pacer<number>({ model: linear, mtu: 200, budgets: [{ name: 'tiny', windowMs: 1000, fraction: 0.05 }] });
    expect(pacer.enqueue(0, { flow: 'x', priority: 'bulk', bytes: 201, payload: 0 })).toMatchObject({ ok: false, reason: 'too-large', maxBytes: 200 });
    expect(pacer.enqueue(0, { flow: 'x', priority: 'bulk', bytes: 50, payload: 0 })).toMatchObject({ ok: false, reason: 'too-large', maxBytes: 45 });
    expect(pacer.counters.drops['too-large']).toBe(2);
  });

  it('bounds the queue: refuses when full, evicts lower classes for higher ones, counts both', () => {
    const pacer = new Pacer<number>({ model: linear, maxQueuedFrames: 4, maxFramesPerFlow: 3 });
    const req = (flow: string, priority: PriorityClass, payload: number) => ({ flow, priority, bytes: 10, payload });
    expect(pacer.enqueue(0, req('a', 'bulk', 1)).ok).toBe(true);
    expect(pacer.enqueue(0, req('a', 'bulk', 2)).ok).toBe(true);
    expect(pacer.enqueue(0, req('a', 'bulk', 3)).ok).toBe(true);
    expect(pacer.enqueue(0, req('a', 'bulk', 4))).toMatchObject({ ok: false, reason: 'flow-full' });
    expect(pacer.enqueue(0, req('b', 'bulk', 5)).ok).toBe(true);
    expect(pacer.enqueue(0, req('c', 'bulk', 6))).toMatchObject({ ok: false, reason: 'queue-full' });
    expect(pacer.enqueue(0, req('d', 'control', 7)).ok).toBe(true); // evicts a's newest bulk frame
    expect(pacer.counters.drops).toEqual({ dwell: 0, 'too-large': 0, 'queue-full': 1, 'flow-full': 1, evicted: 1, superseded: 0 });
    const order: number[] = [];
    for (let now = 0, f = pacer.poll(now); f || pacer.nextDeadline(now) !== undefined; f = pacer.poll(now)) {
      if (f) order.push(f.payload);
      else now = pacer.nextDeadline(now)!;
    }
    // DRR: flow a's turn holds a quantum (one MTU of airtime), enough for both of its frames.
    expect(order).toEqual([7, 1, 2, 5]);
  });
});

describe('Pacer scheduling', () => {
  it('ready says no while the queue has no room for another frame, even where airtime is free (UDP)', () => {
    const free = new FixedRateAirtimeModel({ maxBytes: 1000 }); // no bit rate: every frame costs 0 ms
    const pacer = new Pacer<number>({ model: free, maxQueuedBytes: 3000, maxQueuedFrames: 10, maxFramesPerFlow: 10 });
    const req = (priority: PriorityClass, payload: number) => ({ flow: 'f', priority, bytes: 1000, payload });
    expect(pacer.ready(0, 'bulk')).toBe(true);
    expect(pacer.enqueue(0, req('bulk', 1)).ok).toBe(true);
    expect(pacer.enqueue(0, req('bulk', 2)).ok).toBe(true);
    expect(pacer.ready(0, 'bulk')).toBe(true);
    expect(pacer.enqueue(0, req('bulk', 3)).ok).toBe(true);
    // Full: a bulk sender is told to wait (instead of a refusal it would count as a loss), ...
    expect(pacer.ready(0, 'bulk')).toBe(false);
    expect(pacer.enqueue(0, req('bulk', 4))).toMatchObject({ ok: false, reason: 'queue-full' });
    // ... a higher class is still ready (it would evict bulk), and the release is when to ask again.
    expect(pacer.ready(0, 'control')).toBe(true);
    expect(pacer.readyAt(0, 'bulk')).toBe(0);
    expect(pacer.poll(0)?.payload).toBe(1);
    expect(pacer.ready(0, 'bulk')).toBe(true);
  });

  it('serves classes in strict priority order', () => {
    const pacer = new Pacer<string>({ model: linear });
    for (const p of [...PRIORITY_CLASSES].reverse()) pacer.enqueue(0, { flow: p, priority: p, bytes: 10, payload: p });
    const sent = simulate(pacer, [], 10_000).map((f) => f.payload);
    expect(sent).toEqual(['control', 'ack', 'interactive', 'bulk']);
  });

  it('a control frame overtakes a bulk frame waiting for its budget', () => {
    const pacer = new Pacer<string>({ model: linear, budgets: [{ name: 'cap', windowMs: 10_000, fraction: 0.015 }] });
    pacer.enqueue(0, { flow: 'bulk', priority: 'bulk', bytes: 95, payload: 'b1' });
    pacer.enqueue(0, { flow: 'bulk', priority: 'bulk', bytes: 95, payload: 'b2' });
    expect(pacer.poll(0)?.payload).toBe('b1');
    expect(pacer.nextDeadline(100)).toBeGreaterThan(100); // b2 waits for the window
    pacer.enqueue(100, { flow: 'ctl', priority: 'control', bytes: 10, payload: 'c1' });
    const t = pacer.nextDeadline(100)!;
    expect(pacer.poll(t)?.payload).toBe('c1');
  });

  it('shares airtime fairly between flows of one class, whatever their frame sizes', () => {
    const pacer = new Pacer<string>({ model: linear, maxQueuedFrames: 10_000, maxQueuedBytes: 1 << 24, maxFramesPerFlow: 10_000 });
    const arrivals = [
      ...Array.from({ length: 400 }, () => ({ at: 0, flow: 'big', priority: 'bulk' as const, bytes: 245, payload: 'big' })),
      ...Array.from({ length: 4000 }, () => ({ at: 0, flow: 'small', priority: 'bulk' as const, bytes: 20, payload: 'small' })),
    ];
    const sent = simulate(pacer, arrivals, 30_000);
    const airtime = { big: 0, small: 0 } as Record<string, number>;
    for (const f of sent.filter((f) => f.start < 30_000)) airtime[f.payload] = airtime[f.payload]! + f.airtimeMs;
    const share = airtime.big! / (airtime.big! + airtime.small!);
    expect(share).toBeGreaterThan(0.45);
    expect(share).toBeLessThan(0.55);
  });

  it('tells the layers above the queueing delay and readiness', () => {
    const pacer = new Pacer<number>({ model: linear, budgets: [{ name: 'cap', windowMs: 60_000, fraction: 0.1 }], readyDelayMs: 2_000, maxFramesPerFlow: 100 });
    expect(pacer.status(0).ready.bulk).toBe(true);
    expect(pacer.estimateDelayMs(0, 'bulk', 95)).toBe(0);
    for (let k = 0; k < 80; k++) pacer.enqueue(0, { flow: 'f', priority: 'bulk', bytes: 95, payload: k });
    // 80 frames of 100 ms ahead; the 6 s budget covers 60 of them, the rest wait for the window.
    const s = pacer.status(0);
    expect(s.queuedFrames).toBe(80);
    expect(s.delayMs.bulk).toBeGreaterThan(60_000);
    expect(s.ready.bulk).toBe(false);
    // Control frames do not queue behind bulk.
    expect(s.delayMs.control).toBe(0);
    expect(s.ready.control).toBe(true);
  });
});

describe('Pacer ready (cheap) and readyAt', () => {
  const frame = (flow: string, priority: PriorityClass, bytes: number, payload = 0) => ({ flow, priority, bytes, payload });
  const agrees = (pacer: Pacer<number>, now: number): void => {
    for (const p of PRIORITY_CLASSES) {
      expect(pacer.ready(now, p), `${p} at ${now}`).toBe(pacer.estimateDelayMs(now, p) <= pacer.readyDelayMs);
    }
  };

  it('agrees with estimateDelayMs on an empty pacer: idle, during a frame, and after', () => {
    const pacer = new Pacer<number>({ model: linear, budgets: [{ name: 'cap', windowMs: 60_000, fraction: 0.5 }], readyDelayMs: 500 });
    agrees(pacer, 0);
    pacer.enqueue(0, frame('f', 'bulk', 245)); // 250 ms
    expect(pacer.poll(0)).toBeDefined();
    pacer.enqueue(0, frame('f', 'bulk', 245));
    pacer.enqueue(0, frame('f', 'bulk', 245));
    // Three 250 ms frames back to back; the queue is empty from 500 ms on, and the channel busy until 750.
    for (let now = 0; now <= 1_000; now += 10) {
      for (let f = pacer.poll(now); f; f = pacer.poll(now));
      if (pacer.status(now).queuedFrames === 0) agrees(pacer, now);
    }
    expect(pacer.ready(600, 'bulk')).toBe(true); // 150 ms of the last frame left, within 500 ms
  });

  it('agrees with estimateDelayMs on a pacer whose budget is spent, as the window slides', () => {
    const pacer = new Pacer<number>({ model: linear, budgets: [{ name: 'cap', windowMs: 10_000, fraction: 0.1 }] });
    // Spend the 1,000 ms budget: ten 100 ms frames.
    let now = 0;
    for (let k = 0; k < 10; k++) {
      pacer.enqueue(now, frame('f', 'bulk', 95));
      const f = pacer.poll(now);
      expect(f).toBeDefined();
      now += 100;
    }
    expect(pacer.status(now).windows[0]!.leftMs).toBe(0);
    for (const p of PRIORITY_CLASSES) expect(pacer.ready(now, p)).toBe(false);
    let flipped = 0;
    for (let t = now; t <= 12_000; t += 25) {
      agrees(pacer, t);
      if (pacer.ready(t, 'bulk') && !pacer.ready(t - 25, 'bulk')) flipped++;
    }
    expect(flipped).toBe(1); // the check above crossed the transition, once
  });

  it('turns false when a class holds more than readyDelayMs of airtime, and true again once polling drains it', () => {
    const pacer = new Pacer<number>({ model: linear, readyDelayMs: 1_000, maxFramesPerFlow: 100 });
    // Ready while a new frame would start within 1,000 ms: while the queue ahead holds at most that.
    for (let k = 0; k < 10; k++) pacer.enqueue(0, frame('f', 'bulk', 95, k)); // 1,000 ms
    expect(pacer.ready(0, 'bulk')).toBe(true);
    pacer.enqueue(0, frame('f', 'bulk', 95, 10)); // 1,100 ms
    expect(pacer.ready(0, 'bulk')).toBe(false);
    expect(pacer.ready(0, 'control')).toBe(true); // control does not queue behind bulk
    pacer.nextDeadline(0); // moves a frame to the waiting head: still counted
    expect(pacer.ready(0, 'bulk')).toBe(false);
    expect(pacer.estimateDelayMs(0, 'bulk')).toBeGreaterThan(pacer.readyDelayMs);
    for (let k = 0; k < 20; k++) pacer.enqueue(0, frame('g', 'interactive', 95, 100 + k)); // 2 s of a higher class
    expect(pacer.ready(0, 'interactive')).toBe(false);
    expect(pacer.ready(0, 'bulk')).toBe(false);
    expect(pacer.ready(0, 'ack')).toBe(true);
    const seen: boolean[] = [];
    for (let now = 0; pacer.nextDeadline(now) !== undefined; now = pacer.nextDeadline(now)!) {
      for (let f = pacer.poll(now); f; f = pacer.poll(now));
      seen.push(pacer.ready(now, 'bulk'));
    }
    expect(seen[0]).toBe(false);
    expect(seen.at(-1)).toBe(true);
    expect(pacer.ready(10_000, 'bulk')).toBe(true);
    expect(pacer.ready(10_000, 'interactive')).toBe(true);
  });

  it('charges the queue against the budget: not ready at a budget edge the queue is about to spend', () => {
    const pacer = new Pacer<number>({ model: linear, budgets: [{ name: 'cap', windowMs: 60_000, fraction: 0.1 }], readyDelayMs: 2_000 });
    let now = 0;
    for (let k = 0; k < 57; k++) {
      pacer.enqueue(now, frame('f', 'bulk', 95));
      expect(pacer.poll(now)).toBeDefined();
      now += 100;
    }
    // 5,700 of 6,000 ms used; 300 ms queued take the rest, so a new frame waits for the window.
    for (let k = 0; k < 3; k++) pacer.enqueue(now, frame('f', 'bulk', 95));
    expect(pacer.status(now).windows[0]!.leftMs).toBe(300);
    expect(pacer.estimateDelayMs(now, 'bulk')).toBeGreaterThan(50_000);
    expect(pacer.ready(now, 'bulk')).toBe(false);
  });

  it('property: ready never says yes where estimateDelayMs says the wait exceeds readyDelayMs; readyAt is when to ask again', () => {
    // Bursts of up to 6 frames at a time, against budgets from tight to none, so the budgets bind.
    const op = fc.record({
      dt: fc.integer({ min: 0, max: 4_000 }),
      count: fc.integer({ min: 0, max: 6 }),
      flow: fc.constantFrom('a', 'b', 'c'),
      priority: fc.constantFrom(...PRIORITY_CLASSES),
      bytes: fc.integer({ min: 0, max: 255 }),
    });
    const seen = { ready: 0, waitFlip: 0, waitRelease: 0 };
    fc.assert(
      fc.property(fc.array(op, { minLength: 1, maxLength: 80, size: 'max' }), fc.constantFrom(0.02, 0.05, 0.2, 1), (ops, fraction) => {
        const pacer = new Pacer<number>({
          model: linear,
          budgets: [{ name: 'short', windowMs: 20_000, fraction }, { name: 'long', windowMs: 120_000, fraction: fraction / 2 }],
          readyDelayMs: 1_500,
          maxFramesPerFlow: 256,
        });
        let now = 0;
        for (const o of ops) {
          now += o.dt;
          for (let k = 0; k < o.count; k++) pacer.enqueue(now, frame(o.flow, o.priority, o.bytes));
          for (let f = pacer.poll(now); f; f = pacer.poll(now));
          for (const p of PRIORITY_CLASSES) {
            const ready = pacer.ready(now, p);
            if (ready) expect(pacer.estimateDelayMs(now, p)).toBeLessThanOrEqual(pacer.readyDelayMs + 1e-6);
            const at = pacer.readyAt(now, p);
            if (ready) {
              expect(at).toBe(now);
              seen.ready++;
              continue;
            }
            expect(at).toBeGreaterThan(now); // a loop sleeping until then does not spin
            if (!Number.isFinite(at)) continue;
            // Until then the answer stands: no frame of this class or above is released before `at`
            // (a lower class's release could only make the wait longer) ...
            const queued = pacer.status(now).queuedByClass;
            const ahead = PRIORITY_CLASSES.slice(0, PRIORITY_CLASSES.indexOf(p) + 1).some((c) => queued[c] > 0);
            const release = pacer.nextDeadline(now) ?? Infinity;
            if (ahead) expect(release).toBeGreaterThanOrEqual(at);
            expect(pacer.ready(now + (at - now) / 2, p)).toBe(false);
            // ... and at `at`, ready holds, unless that is a release of a frame ahead (which changes the answer).
            if (!(ahead && release === at)) {
              expect(pacer.ready(at + 1e-6, p)).toBe(true);
              seen.waitFlip++;
            } else seen.waitRelease++;
          }
        }
      }),
      { numRuns: 40 },
    );
    // Every branch was exercised.
    for (const n of Object.values(seen)) expect(n).toBeGreaterThan(50);
  });

  it('readyAt with an empty queue: when a spent budget lets a new MTU frame start within readyDelayMs', () => {
    const pacer = new Pacer<number>({ model: linear, budgets: [{ name: 'cap', windowMs: 10_000, fraction: 0.1 }], readyDelayMs: 1_040 });
    let now = 0;
    for (let k = 0; k < 10; k++) {
      pacer.enqueue(now, frame('f', 'bulk', 95));
      pacer.poll(now);
      now += 100;
    }
    expect(pacer.nextDeadline(now)).toBeUndefined();
    const at = pacer.readyAt(now, 'bulk');
    // A 260 ms frame fits once the window (ending with it) has shed 260 ms of the past: it starts
    // at 10,000 ms; ready 1,040 ms before that.
    expect(at).toBe(10_000 - 1_040);
    expect(pacer.ready(at - 1, 'bulk')).toBe(false);
    expect(pacer.ready(at, 'bulk')).toBe(true);
    expect(pacer.readyAt(at, 'bulk')).toBe(at);
    expect(pacer.readyAt(now, 'control')).toBe(at); // the budget is shared by every class
  });
});

describe('Pacer superseding control frames', () => {
  const hello = (generation: number, fragment: number, flow = 'mesh-control') => ({
    flow,
    priority: 'control' as const,
    bytes: 40,
    payload: `hello ${generation}.${fragment}`,
    kind: 'hello',
    generation,
  });

  it('a newer HELLO removes the queued fragments of older ones, the waiting head included; its own fragments stay', () => {
    const pacer = new Pacer<string>({ model: linear, budgets: [{ name: 'cap', windowMs: 10_000, fraction: 0.02 }] });
    // Spend the budget so that everything waits.
    pacer.enqueue(0, { flow: 'x', priority: 'bulk', bytes: 150, payload: 'spend' });
    expect(pacer.poll(0)?.payload).toBe('spend');
    pacer.enqueue(0, hello(1, 1));
    pacer.enqueue(0, hello(1, 2)); // same generation: both stay
    pacer.enqueue(0, { flow: 'mesh-control', priority: 'control', bytes: 10, payload: 'tc' }); // no kind: untouched
    pacer.enqueue(0, hello(7, 1, 'other-flow')); // another flow: untouched
    pacer.enqueue(0, { flow: 'mesh-control', priority: 'control', bytes: 10, payload: 'other kind', kind: 'tc', generation: 1 });
    expect(pacer.nextDeadline(0)).toBeGreaterThan(0); // hello 1.1 is now the waiting head
    expect(pacer.status(0).queuedFrames).toBe(5);
    expect(pacer.counters.drops.superseded).toBe(0);
    expect(pacer.ready(0, 'control')).toBe(false);

    expect(pacer.enqueue(0, hello(2, 1)).ok).toBe(true);
    expect(pacer.enqueue(0, hello(2, 2)).ok).toBe(true);
    expect(pacer.counters.drops.superseded).toBe(2);
    const s = pacer.status(0);
    expect(s.queuedFrames).toBe(5);
    expect(s.queuedBytes).toBe(10 + 40 + 10 + 40 + 40);

    const order: string[] = [];
    for (let now = 0; pacer.nextDeadline(now) !== undefined; now = pacer.nextDeadline(now)!) {
      for (let f = pacer.poll(now); f; f = pacer.poll(now)) order.push(f.payload);
    }
    expect(order.filter((p) => p.startsWith('hello') && !p.includes('7'))).toEqual(['hello 2.1', 'hello 2.2']);
    expect(order).toHaveLength(5);
    expect(order).toContain('tc');
    expect(order).toContain('other kind');
    expect(order).toContain('hello 7.1');
    // Every frame was sent or counted.
    const drops = Object.values(pacer.counters.drops).reduce((a, b) => a + b, 0);
    expect(pacer.counters.sent + drops).toBe(pacer.counters.enqueued + 2 - 2); // superseded frames were enqueued, then dropped
    expect(pacer.counters.sent).toBe(6);
    expect(pacer.counters.enqueued).toBe(8);
    expect(drops).toBe(2);
  });

  it('a kind without a generation supersedes every queued frame of its flow and kind', () => {
    const pacer = new Pacer<string>({ model: linear, budgets: [{ name: 'cap', windowMs: 10_000, fraction: 0.02 }] });
    pacer.enqueue(0, { flow: 'x', priority: 'bulk', bytes: 150, payload: 'spend' });
    pacer.poll(0);
    pacer.enqueue(0, { flow: 'f', priority: 'control', bytes: 10, payload: 'a', kind: 'beacon' });
    pacer.enqueue(0, { flow: 'f', priority: 'control', bytes: 10, payload: 'b', kind: 'beacon' });
    pacer.enqueue(0, { flow: 'f', priority: 'control', bytes: 10, payload: 'c', kind: 'beacon' });
    expect(pacer.counters.drops.superseded).toBe(2);
    expect(pacer.status(0).queuedFrames).toBe(1);
  });

  it('superseding frees the airtime ready counts', () => {
    const pacer = new Pacer<string>({ model: linear, readyDelayMs: 1_000, maxFramesPerFlow: 100 });
    for (let k = 0; k < 11; k++) pacer.enqueue(0, { ...hello(1, k), bytes: 95 }); // 1.1 s of one HELLO's fragments
    expect(pacer.ready(0, 'control')).toBe(false);
    pacer.enqueue(0, { ...hello(2, 1), bytes: 95 });
    expect(pacer.counters.drops.superseded).toBe(11);
    expect(pacer.ready(0, 'control')).toBe(true);
  });
});
