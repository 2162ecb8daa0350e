/**
 * Property: whatever the channel does — loss, duplication, reordering, a packet budget that
 * changes from poll to poll — and with FEC off, on or automatic, with or without a path
 * estimate, two MSP connections deliver exactly the messages sent, in order, each once, or one
 * of them reports an error; never a wrong byte, never a message out of order or twice.
 *
 * The channel is a small virtual-time simulator in the manner of test/msp-connection.test.ts.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { MspConnection, type MspConnectionOptions, type MspFecMode, type MspPathEstimate } from '../src/msp/connection.js';
import { Prng } from '../src/link/prng.js';

interface Channel {
  seed: number;
  loss: number;
  dup: number;
  reorder: number;
  delayMs: number;
  intervalMs: number;
  minBudget: number;
  maxBudget: number;
}

interface InAir {
  at: number;
  order: number;
  to: 0 | 1;
  bytes: Uint8Array;
}

const BASE: MspConnectionOptions = {
  minRtoMs: 200,
  maxRtoMs: 4000,
  initialRtoMs: 500,
  idleTimeoutMs: 20_000,
  keepAliveMs: 5000,
  ackDelayMs: 50,
};

interface RunResult {
  got: [Uint8Array[], Uint8Array[]];
  errored: boolean;
  recovered: number;
  repairs: number;
}

function run(ch: Channel, sends: [Uint8Array[], Uint8Array[]], opts: MspConnectionOptions, maxMs: number): RunResult {
  const prng = new Prng(ch.seed);
  const conns = [
    new MspConnection({ role: 'initiator', connectionId: 0x5eed, now: 0, options: opts }),
    new MspConnection({ role: 'responder', connectionId: 0x5eed, now: 0, options: opts }),
  ] as const;
  const got: [Uint8Array[], Uint8Array[]] = [[], []];
  const pending: [Uint8Array[], Uint8Array[]] = [sends[0].slice(), sends[1].slice()];
  const air: InAir[] = [];
  let order = 0;
  let now = 0;
  const slot = [0, 0];
  const put = (a: InAir): void => {
    let i = air.length;
    while (i > 0 && (air[i - 1]!.at > a.at || (air[i - 1]!.at === a.at && air[i - 1]!.order > a.order))) i--;
    air.splice(i, 0, a);
  };
  const done = (): boolean =>
    conns.some((c) => c.state === 'error') || (got[1].length === sends[0].length && got[0].length === sends[1].length);
  for (let steps = 0; steps < 200_000 && !done() && now <= maxMs; steps++) {
    // The applications: queue what fits, take what arrived.
    for (const e of [0, 1] as const) {
      const c = conns[e];
      while (pending[e].length > 0 && c.send(pending[e][0]!, now).ok) pending[e].shift();
      got[e === 0 ? 1 : 0].push(...conns[e === 0 ? 1 : 0].takeReceived());
    }
    while (air.length > 0 && air[0]!.at <= now) {
      const a = air.shift()!;
      conns[a.to].handlePacket(a.bytes, now);
    }
    for (const e of [0, 1] as const) {
      if (slot[e]! > now) continue;
      const budget = ch.minBudget + prng.int(ch.maxBudget - ch.minBudget + 1);
      const pkt = conns[e].pollTransmit(now, budget);
      if (pkt === undefined) continue;
      expect(pkt.length).toBeLessThanOrEqual(budget);
      slot[e] = now + ch.intervalMs;
      if (prng.next() < ch.loss) continue;
      const to = e === 0 ? 1 : 0;
      const extra = (): number => (prng.next() < ch.reorder ? prng.next() * 4 * ch.delayMs : 0);
      put({ at: now + ch.delayMs + extra(), order: order++, to, bytes: pkt });
      if (prng.next() < ch.dup) put({ at: now + ch.delayMs + prng.next() * 4 * ch.delayMs, order: order++, to, bytes: pkt });
    }
    let next = Infinity;
    if (air.length > 0) next = air[0]!.at;
    for (const e of [0, 1] as const) {
      const d = conns[e].nextDeadline();
      if (d !== undefined) next = Math.min(next, Math.max(d, slot[e]!));
      // Something may be waiting for the next transmit slot.
      next = Math.min(next, Math.max(slot[e]!, now + ch.intervalMs));
    }
    now = Math.max(next, now + 0.001);
  }
  for (const e of [0, 1] as const) got[e === 0 ? 1 : 0].push(...conns[e === 0 ? 1 : 0].takeReceived());
  return {
    got,
    errored: conns.some((c) => c.state === 'error'),
    recovered: conns[0].stats.repairsRecovered + conns[1].stats.repairsRecovered,
    repairs: conns[0].stats.repairsSent + conns[1].stats.repairsSent,
  };
}

function message(len: number, tag: number): Uint8Array {
  const p = new Prng(tag * 7919 + len);
  const m = new Uint8Array(len);
  for (let i = 0; i < len; i++) m[i] = p.int(256);
  return m;
}

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

const channelArb = fc.record({
  seed: fc.integer({ min: 0, max: 2 ** 31 }),
  // Now and then a channel so bad that the idle timeout ends the connection: a prefix, then an error.
  loss: fc.oneof(
    { weight: 2, arbitrary: fc.constant(0) },
    { weight: 6, arbitrary: fc.double({ min: 0, max: 0.45, noNaN: true }) },
    { weight: 1, arbitrary: fc.double({ min: 0.8, max: 0.97, noNaN: true }) },
  ),
  dup: fc.oneof(fc.constant(0), fc.double({ min: 0, max: 0.2, noNaN: true })),
  reorder: fc.oneof(fc.constant(0), fc.double({ min: 0, max: 0.4, noNaN: true })),
  delayMs: fc.integer({ min: 1, max: 80 }),
  intervalMs: fc.integer({ min: 1, max: 30 }),
  minBudget: fc.integer({ min: 24, max: 120 }),
  maxBudget: fc.integer({ min: 120, max: 320 }),
});

const pathArb: fc.Arbitrary<MspPathEstimate | undefined> = fc.oneof(
  fc.constant(undefined),
  // A fast link, a slow shared channel, a duty-cycled one (scaled down to stay quick).
  fc.constant({ perPacketMs: 0.05, msPerByte: 0.001, maxPacketBytes: 300, propagationMs: 5 }),
  fc.constant({ perPacketMs: 2, msPerByte: 0.05, maxPacketBytes: 300, propagationMs: 1, halfDuplex: true }),
  fc.constant({ perPacketMs: 1, msPerByte: 0.02, maxPacketBytes: 300, propagationMs: 1, dutyFraction: 0.5, halfDuplex: true }),
);

const fecArb: fc.Arbitrary<MspFecMode> = fc.constantFrom('off', 'on', 'auto');

function check(r: RunResult, sends: [Uint8Array[], Uint8Array[]]): void {
  // Each direction: a prefix of what was sent, byte for byte, in order, once each.
  for (const e of [0, 1] as const) {
    const sent = sends[e].map(hex);
    const got = r.got[e === 0 ? 1 : 0].map(hex);
    expect(got.length).toBeLessThanOrEqual(sent.length);
    expect(got).toEqual(sent.slice(0, got.length));
    if (!r.errored) expect(got.length).toBe(sent.length);
  }
}

describe('MspConnection property (loss, duplication, reordering, FEC)', () => {
  it('delivers exactly the sent messages, in order, once each, or reports an error', () => {
    let recovered = 0;
    let repairs = 0;
    let errored = 0;
    fc.assert(
      fc.property(
        channelArb,
        fc.array(fc.integer({ min: 0, max: 900 }), { minLength: 1, maxLength: 10 }),
        fc.array(fc.integer({ min: 0, max: 400 }), { maxLength: 4 }),
        fecArb,
        pathArb,
        (ch, sizesA, sizesB, fec, path) => {
          const sends: [Uint8Array[], Uint8Array[]] = [sizesA.map((n, i) => message(n, i + 1)), sizesB.map((n, i) => message(n, 100 + i))];
          const opts: MspConnectionOptions = { ...BASE, fec, fecEvery: 1 + (ch.seed % 8), fecSpan: 1 + (ch.seed % 24) };
          if (path !== undefined) opts.path = path;
          const r = run(ch, sends, opts, 600_000);
          check(r, sends);
          recovered += r.recovered;
          repairs += r.repairs;
          if (r.errored) errored++;
          if (process.env.MSP_DEBUG) console.log(fec, path !== undefined, ch.loss.toFixed(2), r.errored, r.repairs, r.recovered);
        },
      ),
      { numRuns: 1500, seed: 20261202 },
    );
    // FEC was really exercised, and most runs completed.
    if (process.env.MSP_DEBUG) console.log({ repairs, recovered, errored });
    expect(errored).toBeGreaterThan(0);
    expect(errored).toBeLessThan(400);
    expect(repairs).toBeGreaterThan(100);
    expect(recovered).toBeGreaterThan(10);
  });

  it('with FEC on and heavy loss: recovered packets are the sent ones (never a wrong byte)', () => {
    let recovered = 0;
    fc.assert(
      fc.property(
        channelArb.map((c) => ({ ...c, loss: 0.2 + (c.seed % 25) / 100, minBudget: 120, maxBudget: 200 })),
        fc.array(fc.integer({ min: 1, max: 1500 }), { minLength: 2, maxLength: 8 }),
        fc.integer({ min: 1, max: 8 }),
        fc.integer({ min: 1, max: 64 }),
        (ch, sizes, every, span) => {
          const sends: [Uint8Array[], Uint8Array[]] = [sizes.map((n, i) => message(n, 7 * i + 3)), []];
          const r = run(ch, sends, { ...BASE, fec: 'on', fecEvery: every, fecSpan: span }, 600_000);
          check(r, sends);
          recovered += r.recovered;
        },
      ),
      { numRuns: 600, seed: 7 },
    );
    expect(recovered).toBeGreaterThan(50);
  });
});
