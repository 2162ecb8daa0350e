/**
 * FaultLink: deterministic for a seed, rates as configured, and the exact semantics of reorder,
 * duplicate, corrupt and delay; plus the seeded generator under it.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { BaseLink, FrameTooLargeError, type LinkState, type ReceivedFrame } from '../src/link/link.js';
import { FixedRateAirtimeModel } from '../src/link/airtime/fixed-rate.js';
import { FaultLink, flipBit, MAX_DELAYED, type FaultClock, type FaultOptions } from '../src/link/faults.js';
import { Prng } from '../src/link/prng.js';

/** A link whose wire is an array: what it sends lands in `wire`; `receive` plays a frame in. */
class FakeLink extends BaseLink {
  readonly wire: Uint8Array[] = [];
  constructor() {
    super('fake0', 'sim', 256, new FixedRateAirtimeModel(), undefined, 1 << 20);
  }
  async open(): Promise<void> {
    this.setState('up');
  }
  async close(): Promise<void> {
    this.setState('closed');
  }
  protected pump(): void {
    for (let f = this.queue.shift(); f; f = this.queue.shift()) {
      this.wire.push(f.data);
      this.sent(f.data.length);
    }
  }
  receive(data: Uint8Array): void {
    this.deliver({ data, at: 0 });
  }
}

const frame = (i: number): Uint8Array => Uint8Array.of(i >> 8, i & 0xff, 0x55);
const ids = (frames: Uint8Array[]): number[] => frames.map((f) => (f[0]! << 8) | f[1]!);

/** Runs n frames out and n frames in through a FaultLink; returns what came out of each side. */
function run(options: FaultOptions, n: number) {
  const inner = new FakeLink();
  const link = new FaultLink(inner, options);
  const received: Uint8Array[] = [];
  link.on('frame', (f: ReceivedFrame) => received.push(f.data));
  for (let i = 0; i < n; i++) {
    link.send(frame(i));
    inner.receive(frame(i));
  }
  return { inner, link, sent: inner.wire, received };
}

describe('Prng (mulberry32)', () => {
  it('matches the published mulberry32 for seed 42 and stays in range', () => {
    const p = new Prng(42);
    expect([p.nextU32(), p.nextU32(), p.nextU32()]).toEqual([2581720956, 1925393290, 3661312704]);
    const q = new Prng(7);
    for (let i = 0; i < 1000; i++) {
      const x = q.next();
      expect(x >= 0 && x < 1).toBe(true);
      expect(q.int(10)).toBeLessThan(10);
    }
    expect(() => new Prng(0.5)).toThrow(RangeError);
  });
});

describe('FaultLink', () => {
  const all: FaultOptions = { seed: 1, drop: 0.1, duplicate: 0.1, reorder: 0.1, corrupt: 0.1 };

  it('is deterministic for a seed, in both directions, and differs for another seed', () => {
    const a = run(all, 2000);
    const b = run(all, 2000);
    expect(a.sent.map((f) => Buffer.from(f).toString('hex'))).toEqual(b.sent.map((f) => Buffer.from(f).toString('hex')));
    expect(a.received.map((f) => Buffer.from(f).toString('hex'))).toEqual(b.received.map((f) => Buffer.from(f).toString('hex')));
    expect(a.link.faultCounters).toEqual(b.link.faultCounters);
    const c = run({ ...all, seed: 2 }, 2000);
    expect(ids(c.sent)).not.toEqual(ids(a.sent));
    // Each direction has its own generator: the two directions do not make the same choices.
    expect(ids(a.sent)).not.toEqual(ids(a.received));
  });

  it('injects each fault at its rate, within 5 standard deviations over 20,000 frames', () => {
    const n = 20_000;
    for (const [name, rate] of [['drop', 0.25], ['duplicate', 0.1], ['reorder', 0.05], ['corrupt', 0.3]] as const) {
      const { link } = run({ seed: 99, [name]: rate }, n);
      const tol = 5 * Math.sqrt((rate * (1 - rate)) / n);
      for (const dir of ['in', 'out'] as const) {
        const observed = link.faultCounters[dir][name] / n;
        // A reorder is only drawn while nothing is held: its rate is p / (1 + p) of all frames.
        const expected = name === 'reorder' ? rate / (1 + rate) : rate;
        expect(Math.abs(observed - expected), `${name} ${dir}: ${observed}`).toBeLessThan(tol);
      }
    }
  });

  it('drops count in counters.drops, never deliver; rate 0 never faults', () => {
    const dropped = run({ seed: 3, drop: 1 }, 50);
    expect(dropped.sent).toHaveLength(0);
    expect(dropped.received).toHaveLength(0);
    expect(dropped.link.counters.drops['fault-drop']).toBe(100);
    const clean = run({ seed: 3, drop: 0, duplicate: 0, reorder: 0, corrupt: 0 }, 50);
    expect(ids(clean.sent)).toEqual([...Array(50).keys()]);
    expect(ids(clean.received)).toEqual([...Array(50).keys()]);
  });

  it('duplicate sends a frame twice, back to back', () => {
    const { sent, received, link } = run({ seed: 4, duplicate: 1 }, 3);
    expect(ids(sent)).toEqual([0, 0, 1, 1, 2, 2]);
    expect(ids(received)).toEqual([0, 0, 1, 1, 2, 2]);
    expect(link.faultCounters.out.duplicate).toBe(3);
  });

  it('reorder holds a frame and releases it right after the next one; flush releases it', () => {
    const { sent, received, link } = run({ seed: 5, reorder: 1 }, 5);
    expect(ids(sent)).toEqual([1, 0, 3, 2]);
    expect(ids(received)).toEqual([1, 0, 3, 2]);
    link.flush();
    expect(ids(sent)).toEqual([1, 0, 3, 2, 4]);
    expect(ids(received)).toEqual([1, 0, 3, 2, 4]);
  });

  it('corrupt flips exactly one bit of a copy (property)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 2 ** 31 }), fc.uint8Array({ minLength: 1, maxLength: 256 }), (seed, data) => {
        const inner = new FakeLink();
        const original = data.slice();
        new FaultLink(inner, { seed, corrupt: 1, direction: 'out' }).send(data);
        const out = inner.wire[0]!;
        expect(data).toEqual(original);
        expect(out.length).toBe(data.length);
        let bits = 0;
        for (let i = 0; i < data.length; i++) for (let x = data[i]! ^ out[i]!; x; x &= x - 1) bits++;
        expect(bits).toBe(1);
      }),
    );
    expect(Array.from(flipBit(Uint8Array.of(0, 0), 9))).toEqual([0, 0x40]);
    const empty = new FakeLink();
    new FaultLink(empty, { seed: 1, corrupt: 1 }).send(new Uint8Array(0));
    expect(empty.wire).toEqual([new Uint8Array(0)]);
  });

  it('delay holds frames on the injected clock, order kept', () => {
    let now = 1000;
    const timers: { at: number; fn: () => void }[] = [];
    const clock: FaultClock = { now: () => now, setTimer: (at, fn) => void timers.push({ at, fn }) };
    const inner = new FakeLink();
    const link = new FaultLink(inner, { seed: 6, delayMs: 50 }, clock);
    const received: number[] = [];
    link.on('frame', (f) => received.push(f.data[1]!));
    link.send(frame(1));
    now = 1010;
    inner.receive(frame(2));
    link.send(frame(3));
    expect(inner.wire).toHaveLength(0);
    expect(received).toEqual([]);
    expect(timers.map((t) => t.at)).toEqual([1050, 1060, 1060]);
    for (const t of timers) t.fn();
    expect(ids(inner.wire)).toEqual([1, 3]);
    expect(received).toEqual([2]);
    expect(link.faultCounters.out.delay).toBe(2);
  });

  it('caps the frames waiting out their delay', () => {
    const clock: FaultClock = { now: () => 0, setTimer: () => undefined };
    const inner = new FakeLink();
    const link = new FaultLink(inner, { seed: 8, delayMs: 10 }, clock);
    for (let i = 0; i < MAX_DELAYED + 5; i++) link.send(frame(i));
    expect(link.faultCounters.out.delay).toBe(MAX_DELAYED);
    expect(link.counters.drops['fault-delay-full']).toBe(5);
  });

  it("faults only the chosen direction; too-large frames still throw; events pass through", async () => {
    const inner = new FakeLink();
    const link = new FaultLink(inner, { seed: 7, drop: 1, direction: 'in' });
    const states: LinkState[] = [];
    link.on('state', (s) => states.push(s));
    const received: ReceivedFrame[] = [];
    link.on('frame', (f) => received.push(f));
    await link.open();
    expect(link.state).toBe('up');
    expect(states).toEqual(['up']);
    link.send(frame(1));
    inner.receive(frame(2));
    expect(ids(inner.wire)).toEqual([1]);
    expect(received).toHaveLength(0);
    expect(link.faultCounters.in.drop).toBe(1);
    expect(link.faultCounters.out.drop).toBe(0);
    const dropsOut = new FaultLink(new FakeLink(), { seed: 7, drop: 1 });
    expect(() => dropsOut.send(new Uint8Array(257))).toThrow(FrameTooLargeError);
    expect(dropsOut.counters.drops['too-large']).toBe(1);
  });

  it('rejects bad options with a RangeError naming the option', () => {
    const bad: [Partial<FaultOptions>, RegExp][] = [
      [{ drop: 1.5 }, /^drop /],
      [{ duplicate: -0.1 }, /^duplicate /],
      [{ reorder: Number.NaN }, /^reorder /],
      [{ corrupt: '0.5' as unknown as number }, /^corrupt /],
      [{ delayMs: -1 }, /^delayMs /],
      [{ delayMs: Infinity }, /^delayMs /],
      [{ direction: 'up' as 'in' }, /^direction /],
      [{ seed: 1.5 }, /^seed /],
    ];
    for (const [opts, message] of bad) {
      expect(() => new FaultLink(new FakeLink(), { seed: 1, ...opts })).toThrow(RangeError);
      expect(() => new FaultLink(new FakeLink(), { seed: 1, ...opts })).toThrow(message);
    }
    expect(() => new FaultLink(new FakeLink(), { seed: 1, drop: 0, duplicate: 1, delayMs: 0, direction: 'out' })).not.toThrow();
  });
});
