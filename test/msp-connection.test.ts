/**
 * One MSP connection (src/msp/connection.ts) over a simulated channel in virtual time: loss,
 * duplication and reordering from a seeded Prng, a fixed per-packet budget and a fixed rate.
 * Nothing here reads the wall clock.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { MspConnection, type MspConnectionOptions } from '../src/msp/connection.js';
import { decodePacket, encodePacket, type AckFrame } from '../src/msp/wire.js';
import { Prng } from '../src/link/prng.js';

type Side = 'a' | 'b';

interface ChannelOptions {
  seed?: number;
  loss?: number;
  dup?: number;
  reorder?: number;
  /** One-way delay, ms. */
  delayMs?: number;
  /** Extra delay of a reordered packet, up to, ms. */
  reorderDelayMs?: number;
  /** Payload budget of one packet. */
  budget?: number;
  /** One packet per this many ms per direction. */
  intervalMs?: number;
}

interface InAir {
  at: number;
  order: number;
  to: Side;
  bytes: Uint8Array;
}

const TEST_OPTIONS: MspConnectionOptions = {
  minRtoMs: 1000,
  maxRtoMs: 16_000,
  initialRtoMs: 2000,
  idleTimeoutMs: 60_000,
  keepAliveMs: 15_000,
  ackDelayMs: 100,
};

class Sim {
  now = 0;
  readonly a: MspConnection;
  readonly b: MspConnection;
  readonly prng: Prng;
  readonly ch: Required<ChannelOptions>;
  private air: InAir[] = [];
  private order = 0;
  private slot: Record<Side, number> = { a: 0, b: 0 };
  private wants: Record<Side, boolean> = { a: true, b: true };
  /** Drop everything sent by this side (a vanished peer). */
  silenced: Record<Side, boolean> = { a: false, b: false };
  lastDeliveredTo: Record<Side, number> = { a: 0, b: 0 };
  sentPackets = 0;
  /** Called at every step; may send on either connection. */
  onStep: ((sim: Sim) => void) | undefined;

  constructor(ch: ChannelOptions = {}, opts: MspConnectionOptions = TEST_OPTIONS, optsB: MspConnectionOptions = opts) {
    this.ch = { seed: 1, loss: 0, dup: 0, reorder: 0, delayMs: 100, reorderDelayMs: 400, budget: 200, intervalMs: 20, ...ch };
    this.prng = new Prng(this.ch.seed);
    this.a = new MspConnection({ role: 'initiator', connectionId: 0x1a2b3c4d, now: 0, options: opts });
    this.b = new MspConnection({ role: 'responder', connectionId: 0x1a2b3c4d, now: 0, options: optsB });
  }

  conn(s: Side): MspConnection {
    return s === 'a' ? this.a : this.b;
  }

  poke(): void {
    this.wants.a = true;
    this.wants.b = true;
  }

  private put(to: Side, bytes: Uint8Array, at: number): void {
    const item: InAir = { at, order: this.order++, to, bytes };
    let i = this.air.length;
    while (i > 0 && (this.air[i - 1]!.at > at || (this.air[i - 1]!.at === at && this.air[i - 1]!.order > item.order))) i--;
    this.air.splice(i, 0, item);
  }

  private transmit(from: Side, bytes: Uint8Array): void {
    this.sentPackets++;
    if (bytes.length > this.ch.budget) throw new Error(`packet of ${bytes.length} bytes over the budget ${this.ch.budget}`);
    const to: Side = from === 'a' ? 'b' : 'a';
    if (this.silenced[from]) return;
    if (this.prng.next() < this.ch.loss) return;
    const extra = () => (this.prng.next() < this.ch.reorder ? this.prng.next() * this.ch.reorderDelayMs : 0);
    this.put(to, bytes, this.now + this.ch.delayMs + extra());
    if (this.prng.next() < this.ch.dup) this.put(to, bytes, this.now + this.ch.delayMs + this.prng.next() * this.ch.reorderDelayMs);
  }

  /** One step at `now`; returns the next time anything happens, or undefined. */
  step(): number | undefined {
    this.onStep?.(this);
    for (const s of ['a', 'b'] as const) this.conn(s).handleTimeout(this.now);
    while (this.air.length > 0 && this.air[0]!.at <= this.now) {
      const p = this.air.shift()!;
      this.conn(p.to).handlePacket(p.bytes, this.now);
      this.lastDeliveredTo[p.to] = this.now;
      this.wants[p.to] = true;
    }
    this.onStep?.(this);
    for (const s of ['a', 'b'] as const) {
      if (!this.wants[s] || this.slot[s] > this.now) continue;
      const pkt = this.conn(s).pollTransmit(this.now, this.ch.budget);
      if (pkt === undefined) {
        this.wants[s] = false;
        continue;
      }
      this.transmit(s, pkt);
      this.slot[s] = this.now + this.ch.intervalMs;
    }
    let next: number | undefined;
    const m = (t: number | undefined) => {
      if (t !== undefined && (next === undefined || t < next)) next = t;
    };
    m(this.air[0]?.at);
    for (const s of ['a', 'b'] as const) {
      const d = this.conn(s).nextDeadline();
      if (d !== undefined) m(Math.max(d, this.now));
      if (this.wants[s]) m(Math.max(this.slot[s], this.now));
    }
    return next;
  }

  /** Runs until `done()` or nothing more happens or virtual time passes `maxMs`. */
  run(done: () => boolean, maxMs = 3_600_000, maxSteps = 5_000_000): void {
    for (let i = 0; i < maxSteps; i++) {
      if (done()) return;
      const next = this.step();
      if (next === undefined || next > maxMs) return;
      if (next > this.now) {
        // A deadline reached: let both sides poll again.
        this.now = next;
        this.poke();
      }
    }
    throw new Error('simulation did not settle');
  }
}

function bytesOf(n: number, seed: number): Uint8Array {
  const p = new Prng(seed);
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = p.int(256);
  return b;
}

/** Fixed fast-check seed (deterministic); MSP_FC_SEED / MSP_FC_RUNS widen a local soak run. */
const SEED = Number(process.env.MSP_FC_SEED ?? 20261201);
const RUNS = (n: number): number => Number(process.env.MSP_FC_RUNS ?? n);

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

/** Sends `msgs` from `conn` as the queue allows (call at every step). */
function feeder(conn: MspConnection, msgs: Uint8Array[], thenShutdown: boolean): (sim: Sim) => void {
  let i = 0;
  let shut = false;
  return (sim) => {
    while (i < msgs.length) {
      const r = conn.send(msgs[i]!, sim.now);
      if (!r.ok) {
        expect(r.reason).toBe('queue-full');
        break;
      }
      i++;
      sim.poke();
    }
    if (i === msgs.length && thenShutdown && !shut) {
      conn.shutdown(sim.now);
      shut = true;
      sim.poke();
    }
  };
}

describe('MspConnection over a clean channel', () => {
  it('delivers messages of many sizes once each, in order, both ways', () => {
    const sim = new Sim();
    const sizes = [0, 1, 50, 191, 192, 193, 500, 1000, 0, 5000, 16_384];
    const ab = sizes.map((n, i) => bytesOf(n, i + 1));
    const ba = sizes.slice().reverse().map((n, i) => bytesOf(n, 100 + i));
    for (const m of ab) expect(sim.a.send(m, 0)).toEqual({ ok: true });
    for (const m of ba) expect(sim.b.send(m, 0)).toEqual({ ok: true });
    const gotB: Uint8Array[] = [];
    const gotA: Uint8Array[] = [];
    sim.run(() => {
      gotB.push(...sim.b.takeReceived());
      gotA.push(...sim.a.takeReceived());
      return gotB.length >= ab.length && gotA.length >= ba.length;
    }, 600_000);
    expect(gotB.map(hex)).toEqual(ab.map(hex));
    expect(gotA.map(hex)).toEqual(ba.map(hex));
    expect(sim.a.stats.retransmissions).toBe(0);
    expect(sim.b.stats.duplicates).toBe(0);
    expect(sim.a.stats.malformed + sim.b.stats.malformed).toBe(0);
    // Nothing more arrives later.
    sim.run(() => false, sim.now + 30_000);
    expect(sim.b.takeReceived()).toEqual([]);
    expect(sim.a.state).toBe('open');
    expect(sim.a.smoothedRttMs).toBeGreaterThan(0);
  });

  it('keeps packet numbers and messages right across the 16-bit wrap', () => {
    const sim = new Sim({ intervalMs: 1, delayMs: 5 }, { ...TEST_OPTIONS, ackDelayMs: 5 });
    const total = 70_000;
    let sent = 0;
    let got = 0;
    let bad = 0;
    sim.onStep = (s) => {
      while (sent < total && s.a.queuedBytes < 2000) {
        const m = new Uint8Array([sent & 0xff, (sent >> 8) & 0xff, sent >> 16]);
        if (!s.a.send(m, s.now).ok) throw new Error('send refused');
        sent++;
        s.poke();
      }
    };
    sim.run(() => {
      for (const m of sim.b.takeReceived()) {
        if (m[0]! + (m[1]! << 8) + (m[2]! << 16) !== got) bad++;
        got++;
      }
      return got >= total;
    });
    expect(bad).toBe(0);
    expect(got).toBe(total);
  });

  it('sends at most 15 selective ranges, the highest ones', () => {
    const a = new MspConnection({ role: 'initiator', connectionId: 7, now: 0, options: TEST_OPTIONS });
    const b = new MspConnection({ role: 'responder', connectionId: 7, now: 0, options: TEST_OPTIONS });
    for (let i = 0; i < 40; i++) a.send(new Uint8Array([i]), 0);
    const pkts: Uint8Array[] = [];
    for (let p = a.pollTransmit(0, 200); p !== undefined; p = a.pollTransmit(0, 200)) pkts.push(p);
    expect(pkts.length).toBe(40);
    // Deliver every other packet except the first: 20 islands above a missing 0.
    for (let i = 1; i < 40; i += 2) b.handlePacket(pkts[i]!, 10);
    const ack = b.pollTransmit(10, 200)!;
    const d = decodePacket(ack);
    expect(d.ok).toBe(true);
    if (!d.ok) return;
    const f = d.packet.frames.find((x) => x.type === 'ack') as AckFrame;
    expect(f.cumulative).toBe(0);
    expect(f.ranges.length).toBe(15);
    expect(f.ranges[14]).toEqual({ first: 39, last: 39 });
    expect(f.ranges[0]).toEqual({ first: 11, last: 11 });
    expect(d.packet.frames.some((x) => x.type === 'window')).toBe(true);
    // The sender learns of the losses (0, 2, 4, … are each followed by 3 acked packets).
    a.handlePacket(ack, 20);
    const re = a.pollTransmit(20, 200)!;
    const rd = decodePacket(re);
    // Every unacknowledged packet below the third-highest acknowledged one is lost; lowest first.
    expect(rd.ok && rd.packet.packetNumber).toBe(0);
    expect(a.stats.fastRetransmits).toBe(1);
  });
});

describe('MspConnection acknowledgements and RTT', () => {
  const pair = () => {
    const a = new MspConnection({ role: 'initiator', connectionId: 0x01020304, now: 0, options: TEST_OPTIONS });
    const b = new MspConnection({ role: 'responder', connectionId: 0x01020304, now: 0, options: TEST_OPTIONS });
    return { a, b };
  };
  const decoded = (p: Uint8Array) => {
    const d = decodePacket(p);
    if (!d.ok) throw new Error(d.error.code);
    return d.packet;
  };

  it('delays the ack of one packet, acks two at once, and piggybacks on DATA', () => {
    const { a, b } = pair();
    a.send(new Uint8Array([1]), 0);
    a.send(new Uint8Array([2]), 0);
    const p0 = a.pollTransmit(0, 200)!;
    const p1 = a.pollTransmit(0, 200)!;
    expect(decoded(p0).open).toBe(true);
    b.handlePacket(p0, 100);
    expect(b.pollTransmit(100, 200)).toBeUndefined();
    expect(b.nextDeadline()).toBe(100 + TEST_OPTIONS.ackDelayMs!);
    b.handlePacket(p1, 110);
    const ack = decoded(b.pollTransmit(110, 200)!);
    expect(ack.fromResponder).toBe(true);
    expect(ack.frames.find((f) => f.type === 'ack')).toEqual({ type: 'ack', cumulative: 2, ranges: [] });
    expect(b.stats.acksSent).toBe(1);
    // One more packet, and B has data of its own: the ACK rides on B's DATA.
    a.send(new Uint8Array([3]), 0);
    b.handlePacket(a.pollTransmit(120, 200)!, 130);
    b.send(new Uint8Array([9]), 130);
    const both = decoded(b.pollTransmit(130, 200)!);
    expect(both.frames.map((f) => f.type)).toEqual(['ack', 'window', 'data']);
    expect(both.packetNumber).toBe(0);
    a.handlePacket(encodePacket(both), 200);
    expect(a.takeReceived()).toEqual([new Uint8Array([9])]);
    // The initiator clears O once it heard the responder.
    a.send(new Uint8Array([4]), 200);
    expect(decoded(a.pollTransmit(200, 200)!).open).toBe(false);
  });

  it("Karn's rule: no RTT sample from a retransmitted packet", () => {
    const { a, b } = pair();
    a.send(new Uint8Array(5), 0);
    a.pollTransmit(0, 200); // lost
    a.handleTimeout(2000);
    const again = a.pollTransmit(2000, 200)!;
    expect(a.stats.retransmissions).toBe(1);
    expect(a.rtoMs).toBe(4000);
    b.handlePacket(again, 2100);
    b.handleTimeout(2100 + TEST_OPTIONS.ackDelayMs!);
    a.handlePacket(b.pollTransmit(2200, 200)!, 2300);
    expect(a.smoothedRttMs).toBeUndefined();
    expect(a.rtoMs).toBe(4000); // the backoff stays until a valid sample
    a.send(new Uint8Array(5), 3000);
    b.handlePacket(a.pollTransmit(3000, 200)!, 3100);
    b.handleTimeout(3200);
    a.handlePacket(b.pollTransmit(3200, 200)!, 3300);
    expect(a.smoothedRttMs).toBe(300);
    expect(a.rtoMs).toBe(1000); // 300 + 4 × 150 = 900, floored at minRtoMs
  });
});

describe('MspConnection timeouts: one probe, then time-ordered loss detection', () => {
  const pair = () => {
    const a = new MspConnection({ role: 'initiator', connectionId: 0x0a0b0c0d, now: 0, options: TEST_OPTIONS });
    const b = new MspConnection({ role: 'responder', connectionId: 0x0a0b0c0d, now: 0, options: TEST_OPTIONS });
    return { a, b };
  };
  const flight = (a: MspConnection, n: number, now: number): Uint8Array[] => {
    for (let i = 0; i < n; i++) a.send(new Uint8Array([i, i, i]), now);
    const pkts: Uint8Array[] = [];
    for (let p = a.pollTransmit(now, 200); p !== undefined; p = a.pollTransmit(now, 200)) pkts.push(p);
    return pkts;
  };
  const numberOf = (p: Uint8Array): number => {
    const d = decodePacket(p);
    if (!d.ok) throw new Error(d.error.code);
    return d.packet.packetNumber ?? -1;
  };

  it('a late ACK (a spurious timeout) costs one packet sent again, not the flight', () => {
    const { a, b } = pair();
    const pkts = flight(a, 10, 0);
    expect(pkts.length).toBe(10);
    // Nothing is lost, but B's ACK comes after A's RTO (a stalled host).
    for (const p of pkts) b.handlePacket(p, 50);
    a.handleTimeout(2500);
    const probe = a.pollTransmit(2500, 200)!;
    expect(numberOf(probe)).toBe(9); // the newest: its ACK tells about everything before it
    expect(a.pollTransmit(2500, 200)).toBeUndefined();
    a.handlePacket(b.pollTransmit(2600, 200)!, 2600);
    expect(a.pollTransmit(2600, 200)).toBeUndefined();
    expect(a.stats.retransmissions).toBe(1);
    b.handlePacket(probe, 2700);
    expect(b.stats.duplicates).toBe(1);
  });

  it('a lost flight goes again within one round trip after the probe is acknowledged', () => {
    const { a, b } = pair();
    flight(a, 10, 0); // all lost
    a.handleTimeout(2000);
    const probe = a.pollTransmit(2000, 200)!;
    expect(numberOf(probe)).toBe(9);
    expect(a.pollTransmit(2000, 200)).toBeUndefined();
    b.handlePacket(probe, 2100);
    b.handleTimeout(2100 + TEST_OPTIONS.ackDelayMs!);
    a.handlePacket(b.pollTransmit(2200, 200)!, 2300);
    // Packets 0..8 were sent before 9, which arrived: all lost, all sent now, oldest first.
    const again: number[] = [];
    for (let p = a.pollTransmit(2300, 200); p !== undefined; p = a.pollTransmit(2300, 200)) {
      again.push(numberOf(p));
      b.handlePacket(p, 2400);
    }
    expect(again).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8]);
    expect(a.stats.timeouts).toBe(1);
    expect(b.takeReceived().length).toBe(10);
  });

  it('a timeout resends the holes below the highest SACKed packet with the probe; an ACK ends the backoff', () => {
    const { a, b } = pair();
    // An RTT sample first: one packet out and back.
    a.send(new Uint8Array([1]), 0);
    b.handlePacket(a.pollTransmit(0, 200)!, 10);
    b.handleTimeout(10 + TEST_OPTIONS.ackDelayMs!);
    a.handlePacket(b.pollTransmit(110, 200)!, 120);
    expect(a.smoothedRttMs).toBe(120);
    const pkts = flight(a, 10, 200); // numbers 1..10
    for (const p of pkts) if (![1, 6].includes(numberOf(p))) b.handlePacket(p, 210); // 1 and 6 lost
    b.handleTimeout(400);
    a.handlePacket(b.pollTransmit(400, 200)!, 410);
    const first = [];
    for (let p = a.pollTransmit(410, 200); p !== undefined; p = a.pollTransmit(410, 200)) first.push(numberOf(p));
    expect(first).toEqual([1, 6]); // found by ACK evidence, resent — and lost again
    const rtoBefore = a.rtoMs;
    a.handleTimeout(410 + 10 * rtoBefore);
    const again = [];
    for (let p = a.pollTransmit(410 + 10 * rtoBefore, 200); p !== undefined; p = a.pollTransmit(410 + 10 * rtoBefore, 200)) {
      again.push(numberOf(p));
      b.handlePacket(p, 420 + 10 * rtoBefore);
    }
    expect(again).toEqual([1, 6]); // 6 as the probe, 1 as a hole below SACKed 10
    expect(a.rtoMs).toBe(2 * rtoBefore);
    b.handleTimeout(420 + 10 * rtoBefore + TEST_OPTIONS.ackDelayMs!);
    a.handlePacket(b.pollTransmit(600 + 10 * rtoBefore, 200)!, 610 + 10 * rtoBefore);
    expect(a.rtoMs).toBe(rtoBefore); // no RTT sample (resent packets), but the backoff is over
    expect(b.takeReceived().length).toBe(11);
  });

  it('an ACK of the first copy of a resent packet does not make later packets lost (Karn for loss)', () => {
    const { a, b } = pair();
    const pkts = flight(a, 10, 0);
    // 0..4 arrive late; the RTO resends 9 as the probe; B then acks only what it has: 0..4.
    a.handleTimeout(2000);
    a.pollTransmit(2000, 200);
    for (const p of pkts.slice(0, 5)) b.handlePacket(p, 2050);
    a.handlePacket(b.pollTransmit(2050, 200)!, 2060);
    expect(a.pollTransmit(2060, 200)).toBeUndefined(); // 5..8 may still be on their way
    for (const p of pkts.slice(5)) b.handlePacket(p, 2070);
    b.handleTimeout(2070 + TEST_OPTIONS.ackDelayMs!);
    a.handlePacket(b.pollTransmit(2200, 200)!, 2210);
    expect(a.stats.retransmissions).toBe(1);
    expect(b.takeReceived().length).toBe(10);
  });
});

describe('MspConnection over a lossy channel', () => {
  for (const loss of [0.1, 0.3]) {
    it(`moves 64 KiB intact at ${loss * 100} % loss, 5 % duplication, 10 % reordering`, () => {
      const sim = new Sim({ seed: 42 + loss * 100, loss, dup: 0.05, reorder: 0.1 });
      const data = bytesOf(65_536, 9);
      const msgs: Uint8Array[] = [];
      const p = new Prng(3);
      for (let at = 0; at < data.length; ) {
        const n = Math.min(data.length - at, 1 + p.int(4000));
        msgs.push(data.subarray(at, at + n));
        at += n;
      }
      const feedA = feeder(sim.a, msgs, true);
      const feedB = feeder(sim.b, [new Uint8Array([1, 2, 3])], true);
      sim.onStep = (s) => {
        feedA(s);
        feedB(s);
      };
      const got: Uint8Array[] = [];
      const gotA: Uint8Array[] = [];
      sim.run(() => {
        got.push(...sim.b.takeReceived());
        gotA.push(...sim.a.takeReceived());
        return sim.a.state === 'closed' && sim.b.state === 'closed';
      });
      expect(sim.a.error).toBeUndefined();
      expect(sim.b.error).toBeUndefined();
      expect(sim.a.state).toBe('closed');
      expect(sim.b.state).toBe('closed');
      expect(got.map((m) => m.length)).toEqual(msgs.map((m) => m.length));
      expect(Buffer.concat(got).equals(Buffer.from(data))).toBe(true);
      expect(gotA.map(hex)).toEqual(['010203']);
      expect(sim.a.stats.retransmissions).toBeGreaterThan(0);
      expect(sim.a.stats.fastRetransmits).toBeGreaterThan(0);
      expect(sim.b.stats.duplicates).toBeGreaterThan(0);
      if (process.env.MSP_DEBUG) console.log(loss, sim.now, sim.a.stats, sim.b.stats, sim.a.smoothedRttMs, sim.a.rtoMs);
    });
  }
});

describe('MspConnection limits and ends', () => {
  it('refuses a message when the send queue is full, too large, or after shutdown', () => {
    const c = new MspConnection({ role: 'initiator', connectionId: 1, now: 0, options: { maxQueuedBytes: 1000 } });
    expect(c.maxMessageSize).toBe(1000);
    expect(c.send(new Uint8Array(600), 0)).toEqual({ ok: true });
    const full = c.send(new Uint8Array(600), 0);
    expect(full.ok).toBe(false);
    if (!full.ok) {
      expect(full.reason).toBe('queue-full');
      expect(full.message).toMatch(/1000/);
    }
    expect(c.send(new Uint8Array(400), 0)).toEqual({ ok: true });
    const big = c.send(new Uint8Array(1001), 0);
    expect(!big.ok && big.reason).toBe('too-large');
    // Sent but unacknowledged bytes still count.
    while (c.pollTransmit(0, 200) !== undefined);
    expect(c.queuedBytes).toBe(1000);
    expect(!c.send(new Uint8Array(1), 0).ok).toBe(true);
    c.shutdown(0);
    const shut = c.send(new Uint8Array(0), 0);
    expect(!shut.ok && shut.reason).toBe('shut-down');
    expect(c.state).toBe('closing');
  });

  it('shuts down both ways: both closed, each received everything', () => {
    const sim = new Sim({ seed: 5, loss: 0.2, dup: 0.05, reorder: 0.1 });
    const ab = [bytesOf(10, 1), bytesOf(700, 2), bytesOf(0, 3)];
    const ba = [bytesOf(300, 4)];
    for (const m of ab) sim.a.send(m, 0);
    for (const m of ba) sim.b.send(m, 0);
    sim.a.shutdown(0);
    expect(sim.a.shutdownLocal).toBe(true);
    const gotA: Uint8Array[] = [];
    const gotB: Uint8Array[] = [];
    let bShut = false;
    sim.run(() => {
      gotA.push(...sim.a.takeReceived());
      gotB.push(...sim.b.takeReceived());
      if (sim.b.shutdownRemote && !bShut) {
        expect(sim.b.state).toBe('closing');
        sim.b.shutdown(sim.now);
        bShut = true;
        sim.poke();
      }
      return sim.a.state === 'closed' && sim.b.state === 'closed';
    });
    expect(sim.a.state).toBe('closed');
    expect(sim.b.state).toBe('closed');
    expect(sim.a.shutdownRemote && sim.b.shutdownRemote && sim.b.shutdownLocal).toBe(true);
    expect(gotB.map(hex)).toEqual(ab.map(hex));
    expect(gotA.map(hex)).toEqual(ba.map(hex));
    // A closed connection lingers quietly and stays closed.
    sim.run(() => false, sim.now + 120_000);
    expect(sim.a.state).toBe('closed');
    expect(sim.b.state).toBe('closed');
    expect(sim.a.nextDeadline()).toBeUndefined();
  });

  it('a bare FIN ends a direction after all data was already sent', () => {
    const sim = new Sim();
    sim.a.send(bytesOf(50, 1), 0);
    const got: Uint8Array[] = [];
    sim.run(() => {
      got.push(...sim.b.takeReceived());
      return got.length === 1;
    });
    sim.run(() => false, sim.now + 5000);
    sim.a.shutdown(sim.now);
    sim.b.shutdown(sim.now);
    sim.poke();
    sim.run(() => sim.a.state === 'closed' && sim.b.state === 'closed');
    expect([sim.a.state, sim.b.state]).toEqual(['closed', 'closed']);
  });

  it('a vanished peer gives error timeout within the idle timeout plus an RTO', () => {
    const sim = new Sim({ seed: 8 });
    sim.a.send(bytesOf(100, 1), 0);
    sim.run(() => sim.b.takeReceived().length > 0);
    sim.silenced.b = true; // B goes quiet for good
    sim.a.send(bytesOf(1000, 2), sim.now);
    sim.poke();
    const start = sim.now;
    sim.run(() => sim.a.state === 'error');
    expect(sim.a.state).toBe('error');
    expect(sim.a.error).toBe('timeout');
    const last = sim.lastDeliveredTo.a;
    expect(sim.now).toBeLessThanOrEqual(last + TEST_OPTIONS.idleTimeoutMs! + sim.a.rtoMs);
    expect(sim.now).toBeGreaterThan(start);
    expect(sim.a.stats.retransmissions).toBeGreaterThan(0);
    expect(sim.a.nextDeadline()).toBeUndefined();
    expect(sim.a.pollTransmit(sim.now, 200)).toBeUndefined();
    expect(!sim.a.send(new Uint8Array(1), sim.now).ok).toBe(true);
  });

  it('an idle connection stays open by keep-alive', () => {
    const sim = new Sim({ seed: 3, loss: 0.1 });
    sim.run(() => false, 10 * TEST_OPTIONS.idleTimeoutMs!);
    expect(sim.a.state).toBe('open');
    expect(sim.b.state).toBe('open');
    expect(sim.sentPackets).toBeGreaterThan(10);
  });

  it('RESET from the peer gives error reset', () => {
    const sim = new Sim();
    sim.a.send(bytesOf(10, 1), 0);
    sim.run(() => sim.b.takeReceived().length > 0);
    sim.b.close();
    expect(sim.b.state).toBe('closed');
    sim.poke();
    sim.run(() => sim.a.state !== 'open', sim.now + 10_000);
    expect(sim.a.state).toBe('error');
    expect(sim.a.error).toBe('reset');

    const c = new MspConnection({ role: 'responder', connectionId: 99, now: 0 });
    c.handlePacket(encodePacket({ connectionId: 99, open: false, fromResponder: true, frames: [{ type: 'reset', code: 0 }] }), 1);
    expect(c.state).toBe('open'); // a reset from our own role is not for us
    c.handlePacket(encodePacket({ connectionId: 98, open: false, fromResponder: false, frames: [{ type: 'reset', code: 0 }] }), 1);
    expect(c.state).toBe('open');
    expect(c.stats.ignored).toBe(2);
    c.handlePacket(encodePacket({ connectionId: 99, open: false, fromResponder: false, frames: [{ type: 'reset', code: 2 }] }), 1);
    expect([c.state, c.error]).toEqual(['error', 'reset']);
  });

  it('counts malformed packets and ignores them without throwing', () => {
    const c = new MspConnection({ role: 'responder', connectionId: 5, now: 0 });
    const junk = [new Uint8Array(0), new Uint8Array([0xff]), new Uint8Array([0x48, 0, 0, 0, 5]), new Uint8Array([0x40, 0, 0, 0, 5, 0x77])];
    for (const j of junk) c.handlePacket(j, 1);
    expect(c.stats.malformed).toBe(4);
    expect(c.stats.malformedByCode.empty).toBe(1);
    expect(c.state).toBe('open');
    expect(c.pollTransmit(1, 200)).toBeUndefined();
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (b) => {
        c.handlePacket(b, 2);
      }),
      { numRuns: 300, seed: SEED + 2 },
    );
  });

  it('RTO backs off exponentially, floored and capped', () => {
    const c = new MspConnection({ role: 'initiator', connectionId: 3, now: 0, options: { ...TEST_OPTIONS, idleTimeoutMs: 1e9, keepAliveMs: 1e9 } });
    c.send(new Uint8Array(10), 0);
    expect(c.pollTransmit(0, 200)).toBeDefined();
    let t = 0;
    const gaps: number[] = [];
    for (let i = 0; i < 6; i++) {
      const d = c.nextDeadline()!;
      gaps.push(d - t);
      t = d;
      c.handleTimeout(t);
      const p = c.pollTransmit(t, 200)!;
      expect(decodePacket(p).ok && (decodePacket(p) as { packet: { packetNumber?: number } }).packet.packetNumber).toBe(0);
    }
    expect(gaps).toEqual([2000, 4000, 8000, 16000, 16000, 16000]);
    expect(c.stats.retransmissions).toBe(6);
  });

  it('respects a zero window and resumes when the reader takes its messages', () => {
    const opts = { ...TEST_OPTIONS, receiveWindowBytes: 2000, maxQueuedBytes: 20_000, maxMessageBytes: 1000 };
    const sim = new Sim({ seed: 11 }, opts);
    const msgs = Array.from({ length: 12 }, (_, i) => bytesOf(900, i));
    for (const m of msgs) expect(sim.a.send(m, 0).ok).toBe(true);
    sim.run(() => false, 30_000);
    expect(sim.b.stats.windowDrops).toBe(0);
    const first = sim.b.takeReceived();
    expect(first.length).toBeLessThanOrEqual(2);
    const got = [...first];
    sim.run(() => {
      got.push(...sim.b.takeReceived());
      return got.length === msgs.length;
    });
    expect(got.map(hex)).toEqual(msgs.map(hex));
    expect(sim.a.state).toBe('open');
  });
});

describe('MspConnection property', () => {
  it('delivers exactly the sent messages in order, or reports an error, never a wrong byte', () => {
    fc.assert(
      fc.property(
        fc.array(fc.uint8Array({ maxLength: 400 }), { maxLength: 8 }),
        fc.array(fc.uint8Array({ maxLength: 100 }), { maxLength: 3 }),
        fc.integer({ min: 0, max: 2 ** 31 }),
        fc.double({ min: 0, max: 0.5, noNaN: true }),
        fc.double({ min: 0, max: 0.2, noNaN: true }),
        fc.double({ min: 0, max: 0.3, noNaN: true }),
        fc.integer({ min: 60, max: 250 }),
        (ab, ba, seed, loss, dup, reorder, budget) => {
          const sim = new Sim({ seed, loss, dup, reorder, budget });
          for (const m of ab) expect(sim.a.send(m, 0).ok).toBe(true);
          for (const m of ba) expect(sim.b.send(m, 0).ok).toBe(true);
          sim.a.shutdown(0);
          sim.b.shutdown(0);
          const gotB: Uint8Array[] = [];
          const gotA: Uint8Array[] = [];
          const over = (c: MspConnection) => c.state === 'closed' || c.state === 'error';
          sim.run(() => {
            gotB.push(...sim.b.takeReceived());
            gotA.push(...sim.a.takeReceived());
            return over(sim.a) && over(sim.b);
          });
          gotB.push(...sim.b.takeReceived());
          gotA.push(...sim.a.takeReceived());
          const check = (got: Uint8Array[], sent: Uint8Array[], c: MspConnection) => {
            expect(got.length).toBeLessThanOrEqual(sent.length);
            expect(got.map(hex)).toEqual(sent.slice(0, got.length).map(hex));
            if (c.state !== 'error') expect(got.length).toBe(sent.length);
          };
          expect(over(sim.a) && over(sim.b)).toBe(true);
          check(gotB, ab, sim.b);
          check(gotA, ba, sim.a);
        },
      ),
      { numRuns: RUNS(200), seed: SEED },
    );
  });

  it('under heavy loss and a short idle timeout: a prefix of the messages, then an error, never a wrong byte', () => {
    const opts = { ...TEST_OPTIONS, idleTimeoutMs: 6000, keepAliveMs: 1500, maxRtoMs: 4000 };
    let errors = 0;
    fc.assert(
      fc.property(
        fc.array(fc.uint8Array({ minLength: 1, maxLength: 300 }), { minLength: 1, maxLength: 10 }),
        fc.integer({ min: 0, max: 2 ** 31 }),
        fc.double({ min: 0.5, max: 0.95, noNaN: true }),
        (ab, seed, loss) => {
          const sim = new Sim({ seed, loss, dup: 0.1, reorder: 0.2 }, opts);
          for (const m of ab) sim.a.send(m, 0);
          sim.a.shutdown(0);
          sim.b.shutdown(0);
          const got: Uint8Array[] = [];
          const over = (c: MspConnection) => c.state === 'closed' || c.state === 'error';
          sim.run(() => {
            got.push(...sim.b.takeReceived());
            return over(sim.a) && over(sim.b);
          });
          got.push(...sim.b.takeReceived());
          expect(over(sim.a) && over(sim.b)).toBe(true);
          expect(got.map(hex)).toEqual(ab.slice(0, got.length).map(hex));
          if (sim.b.state === 'error') errors++;
          else expect(got.length).toBe(ab.length);
        },
      ),
      { numRuns: RUNS(100), seed: SEED + 1 },
    );
    expect(errors).toBeGreaterThan(0);
  });
});

describe('MspConnection path estimate', () => {
  const conn = (options: MspConnectionOptions) => new MspConnection({ role: 'initiator', connectionId: 7, now: 0, options });
  const wifi = { perPacketMs: 0.0256, msPerByte: 0.0008, maxPacketBytes: 1168, propagationMs: 5 };
  const afsk = { perPacketMs: 480, msPerByte: 8, maxPacketBytes: 224, propagationMs: 1, halfDuplex: true };
  const lora = { perPacketMs: 120, msPerByte: 5, maxPacketBytes: 223, propagationMs: 1, dutyFraction: 0.01, halfDuplex: true };

  it('without one, the radio defaults apply unchanged', () => {
    const c = conn({});
    expect(c.minRtoInUseMs).toBe(1000);
    expect(c.rtoMs).toBe(3000);
    expect(c.ackPolicy).toEqual({ delayMs: 200, every: 2, coalesceGaps: false });
    expect(c.idleTimeoutInUseMs).toBe(180_000);
  });

  it('a fast path lowers the RTO floor and the ACK delay; setPathEstimate(undefined) restores them', () => {
    const c = conn({});
    c.setPathEstimate(wifi);
    // Round trip of a full packet and an ACK: 2 × 5 + 0.96 + 0.04 ≈ 11 ms.
    expect(c.minRtoInUseMs).toBeGreaterThan(20);
    expect(c.minRtoInUseMs).toBeLessThan(50);
    expect(c.rtoMs).toBeLessThan(50);
    expect(c.ackPolicy.delayMs).toBeLessThan(10);
    expect(c.ackPolicy.every).toBe(2);
    c.setPathEstimate(undefined);
    expect(c.minRtoInUseMs).toBe(1000);
    expect(c.ackPolicy.delayMs).toBe(200);
  });

  it('a fast path (≥ 8 Mbit/s, not shared) gets the large windows, unless the host withholds them', () => {
    const c = conn({});
    expect([c.sendQueueCap, c.receiveWindow]).toEqual([65_536, 65_536]);
    c.setPathEstimate(wifi); // 0.0008 ms per byte: 10 Mbit/s
    expect([c.sendQueueCap, c.receiveWindow]).toEqual([1_048_576, 1_048_576]);
    c.setLargeWindow(false);
    expect([c.sendQueueCap, c.receiveWindow]).toEqual([65_536, 65_536]);
    c.setLargeWindow(true);
    for (const slow of [afsk, lora, { ...wifi, msPerByte: 0.002 }, { ...wifi, halfDuplex: true }]) {
      c.setPathEstimate(slow);
      expect([c.sendQueueCap, c.receiveWindow], JSON.stringify(slow)).toEqual([65_536, 65_536]);
    }
    c.setPathEstimate(undefined);
    expect([c.sendQueueCap, c.receiveWindow]).toEqual([65_536, 65_536]);
  });

  it('a slow shared channel keeps the 1 s floor and coalesces ACKs', () => {
    const c = conn({ path: afsk });
    expect(c.minRtoInUseMs).toBe(1000);
    const p = c.ackPolicy;
    expect(p.coalesceGaps).toBe(true);
    expect(p.every).toBeGreaterThan(4);
    expect(p.delayMs).toBeGreaterThan(p.every * 2000);
  });

  it('an estimate with a non-finite or negative field counts as none', () => {
    const c = conn({ path: { ...wifi, propagationMs: Number.NaN } });
    expect(c.pathEstimate).toBeUndefined();
    expect(c.minRtoInUseMs).toBe(1000);
    c.setPathEstimate({ ...lora, dutyFraction: 0 });
    expect(c.idleTimeoutInUseMs).toBe(180_000);
  });

  it('a duty-cycled path stretches the idle timeout over many send intervals', () => {
    const c = conn({ path: lora });
    // A full packet: 120 + 223 × 5 ms ≈ 1.2 s of airtime, one per ≈ 124 s at 1 %.
    expect(c.idleTimeoutInUseMs).toBeGreaterThan(16 * 120_000);
    expect(c.ackPolicy.every).toBe(2);
  });

  it('on a shared channel, out-of-order packets do not each draw an ACK', () => {
    const a = conn({ path: afsk });
    const b = new MspConnection({ role: 'responder', connectionId: 7, now: 0, options: { path: afsk } });
    const every = b.ackPolicy.every;
    for (let i = 0; i < every + 2; i++) a.send(new Uint8Array(100).fill(i), 0);
    const pkts: Uint8Array[] = [];
    for (let i = 0; i < every + 2; i++) pkts.push(a.pollTransmit(i * 2500, 224)!);
    // Packet 0 lost: the rest arrive out of order.
    let acks = 0;
    for (let i = 1; i < pkts.length; i++) {
      b.handlePacket(pkts[i]!, i * 2500 + 2400);
      if (b.pollTransmit(i * 2500 + 2400, 224) !== undefined) acks++;
    }
    expect(acks).toBe(1); // once `every` packets are pending, not per gap
  });
});

describe('MspConnection on a shared half-duplex channel', () => {
  const afsk = { perPacketMs: 480, msPerByte: 8, maxPacketBytes: 224, propagationMs: 1, halfDuplex: true };
  const pair = () => ({
    a: new MspConnection({ role: 'initiator', connectionId: 7, now: 0, options: { path: afsk } }),
    b: new MspConnection({ role: 'responder', connectionId: 7, now: 0, options: { path: afsk } }),
  });

  it('pauses DATA after twice the ACK interval without an ACK, and resumes when one arrives', () => {
    const { a, b } = pair();
    const every = a.ackPolicy.every;
    for (let i = 0; i < 6 * every; i++) a.send(new Uint8Array(200).fill(i), 0);
    const burst: Uint8Array[] = [];
    for (let p = a.pollTransmit(0, 224); p !== undefined; p = a.pollTransmit(0, 224)) burst.push(p);
    // The channel is left for the peer's ACK: no more DATA although the window has room.
    expect(burst).toHaveLength(2 * every);
    for (const p of burst) b.handlePacket(p, 100);
    const ack = b.pollTransmit(100, 224)!;
    expect(ack).toBeDefined();
    a.handlePacket(ack, 200);
    expect(a.pollTransmit(200, 224)).toBeDefined();
  });

  it('the receiver counts the packets it missed towards its ACK interval', () => {
    const { a, b } = pair();
    const every = b.ackPolicy.every;
    for (let i = 0; i < every; i++) a.send(new Uint8Array(200).fill(i), 0);
    const pkts: Uint8Array[] = [];
    for (let i = 0; i < every; i++) pkts.push(a.pollTransmit(0, 224)!);
    // Half of them are lost; the last arrives: the ACK is due at once, not after the quiet timer.
    for (let i = 0; i < every; i++) if (i % 2 === 1 || i === every - 1) b.handlePacket(pkts[i]!, 10);
    expect(b.pollTransmit(10, 224)).toBeDefined();
  });

  it('an RTO resends only the oldest unacknowledged packet', () => {
    const { a } = pair();
    for (let i = 0; i < 4; i++) a.send(new Uint8Array(200).fill(i), 0);
    for (let i = 0; i < 4; i++) expect(a.pollTransmit(0, 224)).toBeDefined();
    let t = 0;
    let again: Uint8Array | undefined;
    while (again === undefined && t < 120_000) again = a.pollTransmit((t += 100), 224);
    expect(again).toBeDefined();
    expect(a.stats.timeouts).toBe(1);
    expect(a.stats.retransmissions).toBe(1);
    // The rest wait for the ACKs that one draws (or the next RTO), not resent in a burst.
    const next = a.pollTransmit(t, 224);
    const carriesData = (p: Uint8Array): boolean => {
      const d = decodePacket(p);
      return d.ok && d.packet.frames.some((f) => f.type === 'data');
    };
    expect(next === undefined || !carriesData(next)).toBe(true);
    expect(a.stats.retransmissions).toBe(1);
  });
});

describe('MspConnection FEC', () => {
  const opts = (fec: 'on' | 'auto' | 'off', extra: MspConnectionOptions = {}): MspConnectionOptions => ({ ...TEST_OPTIONS, fec, fecEvery: 4, fecSpan: 8, ...extra });

  it('a lost DATA packet is recovered from a REPAIR, acknowledged as received and never retransmitted', () => {
    const a = new MspConnection({ role: 'initiator', connectionId: 9, now: 0, options: opts('on') });
    const b = new MspConnection({ role: 'responder', connectionId: 9, now: 0, options: opts('off') });
    const msgs = [0, 1, 2, 3].map((i) => bytesOf(150, 50 + i));
    for (const m of msgs) a.send(m, 0);
    const pkts: Uint8Array[] = [];
    for (let p = a.pollTransmit(0, 200); p !== undefined; p = a.pollTransmit(0, 200)) pkts.push(p);
    expect(pkts.length).toBe(5); // 4 DATA, then the REPAIR
    const types = pkts.map((p) => decodePacket(p)).map((d) => (d.ok ? d.packet.frames.at(-1)!.type : 'bad'));
    expect(types).toEqual(['data', 'data', 'data', 'data', 'repair']);
    expect(pkts.every((p) => p.length <= 200)).toBe(true);
    expect(a.stats.repairsSent).toBe(1);
    // Packet 1 is lost; the REPAIR fills it in.
    for (const i of [0, 2, 3, 4]) b.handlePacket(pkts[i]!, 50);
    expect(b.stats.repairsReceived).toBe(1);
    expect(b.stats.repairsRecovered).toBe(1);
    expect(b.takeReceived().map(hex)).toEqual(msgs.map(hex));
    const ack = b.pollTransmit(60, 200)!;
    const d = decodePacket(ack);
    expect(d.ok && (d.packet.frames.find((f) => f.type === 'ack') as AckFrame).cumulative).toBe(4);
    a.handlePacket(ack, 100);
    expect(a.queuedBytes).toBe(0);
    // Long past any RTO (but before the keep-alive): nothing to send again.
    a.handleTimeout(10_000);
    expect(a.pollTransmit(10_000, 200)).toBeUndefined();
    expect(a.stats.retransmissions).toBe(0);
  });

  it('setFecMode switches REPAIRs per connection', () => {
    const a = new MspConnection({ role: 'initiator', connectionId: 9, now: 0, options: opts('off') });
    for (let i = 0; i < 8; i++) a.send(bytesOf(100, i), 0);
    for (let i = 0; i < 4; i++) a.pollTransmit(0, 200);
    expect(a.stats.repairsSent).toBe(0);
    a.setFecMode('on');
    expect(a.fec).toMatchObject({ mode: 'on', active: true });
    const kinds: string[] = [];
    for (let p = a.pollTransmit(0, 200); p !== undefined; p = a.pollTransmit(0, 200)) {
      const d = decodePacket(p);
      kinds.push(d.ok ? d.packet.frames.at(-1)!.type : 'bad');
    }
    expect(kinds).toEqual(['data', 'data', 'data', 'data', 'repair']);
    a.setFecMode('off');
    expect(a.fec.active).toBe(false);
  });

  it('the fast-retransmit check waits for packets sent after the REPAIR', () => {
    const a = new MspConnection({ role: 'initiator', connectionId: 9, now: 0, options: opts('on') });
    const b = new MspConnection({ role: 'responder', connectionId: 9, now: 0, options: opts('off', { ackDelayMs: 1 }) });
    for (let i = 0; i < 4; i++) a.send(bytesOf(150, i), 0);
    const pkts: Uint8Array[] = [];
    for (let p = a.pollTransmit(0, 200); p !== undefined; p = a.pollTransmit(0, 200)) pkts.push(p);
    // Packet 0 lost; 1, 2, 3 arrive and are acknowledged before the REPAIR does.
    for (const i of [1, 2, 3]) b.handlePacket(pkts[i]!, 10);
    a.handlePacket(b.pollTransmit(10, 200)!, 20);
    expect(a.stats.fastRetransmits).toBe(0);
    a.send(bytesOf(10, 9), 20);
    const next = decodePacket(a.pollTransmit(20, 200)!);
    expect(next.ok && next.packet.packetNumber).toBe(4); // new data, not packet 0 again
  });

  it("'auto' turns REPAIRs on at high loss and off when the loss is gone", () => {
    const sim = new Sim({ seed: 3, loss: 0.3, budget: 200 }, opts('auto', { fecOnLoss: 0.1, fecOffLoss: 0.02 }));
    const data = bytesOf(40_000, 4);
    const msgs: Uint8Array[] = [];
    for (let at = 0; at < data.length; at += 500) msgs.push(data.subarray(at, at + 500));
    sim.onStep = feeder(sim.a, msgs, false);
    const got: Uint8Array[] = [];
    let seenOn = false;
    sim.run(() => {
      got.push(...sim.b.takeReceived());
      seenOn ||= sim.a.fec.active;
      return got.length === msgs.length;
    });
    expect(seenOn).toBe(true);
    expect(sim.a.stats.repairsSent).toBeGreaterThan(0);
    expect(sim.b.stats.repairsRecovered).toBeGreaterThan(0);
    expect(Buffer.concat(got).equals(Buffer.from(data))).toBe(true);
    // A clean channel: the estimate falls and REPAIRs stop.
    sim.ch.loss = 0;
    const more = Array.from({ length: 200 }, (_, i) => bytesOf(500, 1000 + i));
    sim.onStep = feeder(sim.a, more, false);
    const got2: Uint8Array[] = [];
    sim.run(() => {
      got2.push(...sim.b.takeReceived());
      return got2.length === more.length;
    });
    expect(got2.map(hex)).toEqual(more.map(hex));
    expect(sim.a.fec.active).toBe(false);
    expect(sim.a.fec.lossEstimate).toBeLessThan(0.02);
  });

  it('moves 64 KiB intact at 30 % loss with FEC on at both ends, recovering packets', () => {
    const sim = new Sim({ seed: 11, loss: 0.3, dup: 0.05, reorder: 0.1 }, opts('on'));
    const data = bytesOf(65_536, 12);
    const msgs: Uint8Array[] = [];
    for (let at = 0; at < data.length; at += 3000) msgs.push(data.subarray(at, at + 3000));
    sim.onStep = feeder(sim.a, msgs, true);
    const got: Uint8Array[] = [];
    sim.run(() => {
      got.push(...sim.b.takeReceived());
      return sim.b.shutdownRemote;
    });
    expect(Buffer.concat(got).equals(Buffer.from(data))).toBe(true);
    expect(sim.b.stats.repairsRecovered).toBeGreaterThan(10);
  });
});
