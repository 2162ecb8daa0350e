/**
 * The MSP endpoint (src/msp/endpoint.ts): several endpoints joined by an in-test channel in
 * virtual time (fixed one-way delay, fixed 200-byte budget, optional seeded loss). Nothing here
 * reads the wall clock.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { MspEndpoint, type MspEndpointOptions } from '../src/msp/endpoint.js';
import type { MspConnection, MspConnectionOptions } from '../src/msp/connection.js';
import { decodePacket, encodePacket } from '../src/msp/wire.js';
import { Prng } from '../src/link/prng.js';
import type { Machine } from '../src/gateway/loop.js';

const BUDGET = 200;
const CONN: MspConnectionOptions = { minRtoMs: 500, initialRtoMs: 1000, maxRtoMs: 8000, idleTimeoutMs: 60_000, keepAliveMs: 15_000 };

const sidOf = (n: number): Uint8Array => Uint8Array.from({ length: 8 }, (_, i) => (n * 31 + i * 7) & 0xff);
const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const text = (s: string): Uint8Array => new TextEncoder().encode(s);
const str = (b: Uint8Array): string => new TextDecoder().decode(b);

interface Node {
  sid: Uint8Array;
  port: number;
  ep: MspEndpoint;
}

interface InAir {
  at: number;
  order: number;
  to: string;
  fromSid: Uint8Array;
  fromPort: number;
  bytes: Uint8Array;
}

class Net {
  now = 0;
  readonly nodes = new Map<string, Node>();
  private inAir: InAir[] = [];
  private order = 0;
  private readonly prng: Prng;
  /** Packets put on the channel, per sender sid hex. */
  readonly sent = new Map<string, Uint8Array[]>();
  lost = 0;

  constructor(private readonly opts: { loss?: number; seed?: number; delayMs?: number } = {}) {
    this.prng = new Prng(opts.seed ?? 1);
  }

  add(n: number, port: number, options: MspEndpointOptions = {}, seed = n): Node {
    const p = new Prng(seed * 7919 + 1);
    const node: Node = { sid: sidOf(n), port, ep: new MspEndpoint({ localPort: port, random: () => p.next(), options: { connection: CONN, closedLingerMs: 5_000, ...options } }) };
    this.nodes.set(hex(node.sid), node);
    return node;
  }

  /** One round: deliver what is due, poll every endpoint and put its packets in the air. */
  private round(): void {
    const due = this.inAir.filter((p) => p.at <= this.now).sort((a, b) => a.at - b.at || a.order - b.order);
    this.inAir = this.inAir.filter((p) => p.at > this.now);
    for (const p of due) this.nodes.get(p.to)?.ep.handleDatagram(p.fromSid, p.fromPort, p.bytes, this.now);
    for (const node of this.nodes.values()) {
      node.ep.poll(this.now);
      for (const out of node.ep.pollTransmit(this.now, () => BUDGET)) {
        expect(out.bytes.length).toBeLessThanOrEqual(BUDGET);
        const list = this.sent.get(hex(node.sid)) ?? [];
        list.push(out.bytes);
        this.sent.set(hex(node.sid), list);
        if ((this.opts.loss ?? 0) > 0 && this.prng.next() < this.opts.loss!) {
          this.lost++;
          continue;
        }
        this.inAir.push({ at: this.now + (this.opts.delayMs ?? 50), order: this.order++, to: hex(out.sid), fromSid: node.sid, fromPort: node.port, bytes: out.bytes });
      }
    }
  }

  /** Runs until `done()` or `limitMs` of virtual time, jumping from event to event. */
  run(limitMs: number, done: () => boolean = () => false, each: () => void = () => {}): void {
    const end = this.now + limitMs;
    for (let guard = 0; guard < 200_000; guard++) {
      this.round();
      each();
      if (done()) return;
      let next = end;
      for (const p of this.inAir) next = Math.min(next, p.at);
      for (const node of this.nodes.values()) {
        const d = node.ep.nextDeadline(this.now);
        if (d !== undefined) next = Math.min(next, d);
      }
      if (this.now >= end) return;
      this.now = Math.max(next, this.now + 1);
    }
    throw new Error('run: too many rounds');
  }
}

const connectOk = (ep: MspEndpoint, to: Node, now: number): MspConnection => {
  const r = ep.connect(to.sid, to.port, now);
  if (!r.ok) throw new Error(`connect refused: ${r.reason}`);
  return r.connection;
};

describe('MspEndpoint over a lossless channel', () => {
  it('connect → exactly one accept → messages both ways intact → closed and forgotten', () => {
    const net = new Net();
    const a = net.add(1, 100);
    const b = net.add(2, 200);
    b.ep.listen();
    const ca = connectOk(a.ep, b, 0);
    const big = Uint8Array.from({ length: 1500 }, (_, i) => (i * 13) & 0xff);
    expect(ca.send(text('hello'), 0).ok).toBe(true);
    expect(ca.send(big, 0).ok).toBe(true);
    const accepted: MspConnection[] = [];
    const atB: Uint8Array[] = [];
    const atA: Uint8Array[] = [];
    net.run(
      30_000,
      () => atA.length === 2,
      () => {
        for (let c = b.ep.accept(); c !== undefined; c = b.ep.accept()) {
          accepted.push(c);
          c.send(text('welcome'), net.now);
        }
        for (const c of accepted) {
          for (const m of c.takeReceived()) {
            atB.push(m);
            if (atB.length === 2) c.send(m, net.now); // echo the big one
          }
        }
        atA.push(...ca.takeReceived());
      },
    );
    expect(accepted).toHaveLength(1);
    expect(b.ep.accept()).toBeUndefined();
    expect(accepted[0]!.connectionId).toBe(ca.connectionId);
    expect(ca.connectionId).not.toBe(0);
    expect(atB.map((m) => m.length)).toEqual([5, 1500]);
    expect(str(atB[0]!)).toBe('hello');
    expect(atB[1]).toEqual(big);
    expect(str(atA[0]!)).toBe('welcome');
    expect(atA[1]).toEqual(big);
    expect(a.ep.peerOf(ca)?.port).toBe(200);
    expect(b.ep.peerOf(accepted[0]!)?.sid).toEqual(a.sid);

    // Graceful end: both shut down → 'closed', reported once, then forgotten after the linger.
    ca.shutdown(net.now);
    accepted[0]!.shutdown(net.now);
    net.run(30_000, () => ca.state === 'closed' && accepted[0]!.state === 'closed');
    expect(ca.state).toBe('closed');
    expect(accepted[0]!.state).toBe('closed');
    net.run(1);
    const ra = a.ep.takeClosed();
    expect(ra).toHaveLength(1);
    expect(ra[0]).toMatchObject({ connection: ca, state: 'closed', role: 'initiator', port: 200 });
    expect(b.ep.takeClosed()).toHaveLength(1);
    expect(a.ep.takeClosed()).toHaveLength(0);
    net.run(20_000, () => a.ep.size === 0 && b.ep.size === 0);
    expect(a.ep.size).toBe(0);
    expect(b.ep.size).toBe(0);
    expect(a.ep.nextDeadline(net.now)).toBeUndefined();
    expect(b.ep.nextDeadline(net.now)).toBeUndefined();
    expect(b.ep.stats).toMatchObject({ created: 1, malformed: 0, refused: 0 });
  });

  for (const loss of [0, 0.25]) {
    it(`20 concurrent connections on one listener, each accepted once and intact (loss ${loss})`, () => {
      const net = new Net({ loss, seed: 42 });
      const a = net.add(1, 100, { maxConnectionsPerPeer: 32 });
      // All 20 OPENs arrive in one delivery batch, before the application accepts: the accept
      // queue must hold them (the default 16 would reset four).
      const b = net.add(2, 200, { maxConnectionsPerPeer: 32, maxPendingAccepts: 32 });
      b.ep.listen();
      const msg = (i: number): Uint8Array => Uint8Array.from({ length: 300 + i * 17 }, (_, k) => (k + i * 41) & 0xff);
      const conns = Array.from({ length: 20 }, (_, i) => {
        const c = connectOk(a.ep, b, 0);
        expect(c.send(msg(i), 0).ok).toBe(true);
        return c;
      });
      expect(new Set(conns.map((c) => c.connectionId)).size).toBe(20);
      const accepted: MspConnection[] = [];
      const replies = new Map<MspConnection, Uint8Array[]>();
      net.run(
        loss > 0 ? 300_000 : 60_000,
        () => conns.every((c) => (replies.get(c)?.length ?? 0) === 1),
        () => {
          for (let c = b.ep.accept(); c !== undefined; c = b.ep.accept()) accepted.push(c);
          for (const c of accepted) for (const m of c.takeReceived()) c.send(m, net.now); // echo
          for (const c of conns) {
            const got = c.takeReceived();
            if (got.length > 0) replies.set(c, [...(replies.get(c) ?? []), ...got]);
          }
        },
      );
      expect(accepted).toHaveLength(20);
      expect(new Set(accepted).size).toBe(20);
      expect(new Set(accepted.map((c) => c.connectionId))).toEqual(new Set(conns.map((c) => c.connectionId)));
      conns.forEach((c, i) => {
        expect(replies.get(c)).toHaveLength(1);
        expect(replies.get(c)![0]).toEqual(msg(i));
      });
      expect(b.ep.stats.created).toBe(20);
      expect(b.ep.stats.refused).toBe(0);
      if (loss > 0) expect(net.lost).toBeGreaterThan(10);
    });
  }
});

describe('RESETs', () => {
  it('an OPEN when not listening ends the initiator in error "reset"', () => {
    const net = new Net();
    const a = net.add(1, 100);
    const b = net.add(2, 200);
    const ca = connectOk(a.ep, b, 0);
    ca.send(text('anyone?'), 0);
    net.run(10_000, () => ca.state === 'error');
    expect(ca.state).toBe('error');
    expect(ca.error).toBe('reset');
    expect(b.ep.stats.refusedByReason['not-listening']).toBeGreaterThanOrEqual(1);
    expect(b.ep.size).toBe(0);
    expect(b.ep.accept()).toBeUndefined();
    const closed = a.ep.takeClosed();
    expect(closed).toHaveLength(1);
    expect(closed[0]).toMatchObject({ connection: ca, state: 'error', error: 'reset' });
    expect(a.ep.size).toBe(0);
    // The RESET: same id, responder role (R inverted), O clear, code 1 (refused), 7 bytes.
    const resets = net.sent.get(hex(b.sid))!;
    expect(resets[0]).toHaveLength(7);
    const d = decodePacket(resets[0]!);
    expect(d.ok && d.packet).toMatchObject({ connectionId: ca.connectionId, open: false, fromResponder: true, frames: [{ type: 'reset', code: 1 }] });
  });

  it('answers an unknown connection with RESET code 0, and a flood of 10,000 with a bounded number', () => {
    const b = new MspEndpoint({ localPort: 200, options: { maxResetsPerSecond: 10 } });
    b.listen();
    const peer = sidOf(9);
    const budget = (): number => BUDGET;
    // A single late packet (no O, from an initiator) → RESET to the responder role... of the peer: R set.
    const late = encodePacket({ connectionId: 0xdeadbeef, open: false, fromResponder: false, frames: [{ type: 'ping', token: 1 }] });
    b.handleDatagram(peer, 7, late, 0);
    const first = b.pollTransmit(0, budget);
    expect(first).toHaveLength(1);
    expect(first[0]!.port).toBe(7);
    expect(first[0]!.sid).toEqual(peer);
    expect(hex(first[0]!.bytes)).toBe('50deadbeef0400');

    // A RESET for an unknown connection and malformed bytes are never answered.
    b.handleDatagram(peer, 7, encodePacket({ connectionId: 5, open: false, fromResponder: true, frames: [{ type: 'reset', code: 0 }] }), 1);
    b.handleDatagram(peer, 7, Uint8Array.of(0x40, 1, 2, 3, 4, 0x77), 1);
    b.handleDatagram(peer, 7, Uint8Array.of(0xff), 1);
    expect(b.pollTransmit(1, budget)).toHaveLength(0);
    expect(b.stats.unknownResets).toBe(1);
    expect(b.stats.malformed).toBe(2);

    // Flood: 10,000 packets of unknown connections over 2 s of virtual time, polled after each.
    const prng = new Prng(5);
    let resets = 0;
    const t0 = 10_000; // the bucket is full again
    for (let i = 0; i < 10_000; i++) {
      const now = t0 + i * 0.2;
      const p = encodePacket({ connectionId: prng.nextU32(), open: false, fromResponder: prng.next() < 0.5, frames: [{ type: 'ack', cumulative: 0, ranges: [] }] });
      b.handleDatagram(peer, 7, p, now);
      resets += b.pollTransmit(now, budget).length;
    }
    // Burst 10 plus 10 per second for 2 s.
    expect(resets).toBeGreaterThanOrEqual(20);
    expect(resets).toBeLessThanOrEqual(31);
    expect(b.stats.unknown).toBe(10_001);
    expect(b.stats.resetsSuppressed).toBe(10_000 - resets);
    expect(b.size).toBe(0);
    expect(b.pendingResetCount).toBe(0);
  });

  it('never throws and never answers random bytes', () => {
    const b = new MspEndpoint({ localPort: 1 });
    b.listen();
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), fc.uint8Array({ minLength: 0, maxLength: 8 }), (bytes, sid) => {
        expect(() => b.handleDatagram(sid, 3, bytes, 0)).not.toThrow();
      }),
      { numRuns: 500 },
    );
    expect(b.stats.internalErrors).toBe(0);
    const machine: Machine = b; // the gateway loop's shape
    expect(machine.name).toBe('msp:1');
  });
});

describe('caps', () => {
  it('connect refuses locally at maxConnectionsPerPeer and maxConnections with a typed reason', () => {
    const a = new MspEndpoint({ localPort: 1, options: { maxConnectionsPerPeer: 2, maxConnections: 3 } });
    expect(a.connect(sidOf(2), 5, 0).ok).toBe(true);
    expect(a.connect(sidOf(2), 6, 0).ok).toBe(true);
    const r = a.connect(sidOf(2), 7, 0);
    expect(r).toMatchObject({ ok: false, reason: 'too-many-for-peer' });
    expect(a.connect(sidOf(3), 5, 0).ok).toBe(true);
    expect(a.connect(sidOf(4), 5, 0)).toMatchObject({ ok: false, reason: 'too-many-connections' });
    expect(a.size).toBe(3);
    // No id is free when random always yields the same one (or zero).
    const stuck = new MspEndpoint({ localPort: 1, random: () => 0.5 });
    expect(stuck.connect(sidOf(2), 5, 0).ok).toBe(true);
    expect(stuck.connect(sidOf(2), 5, 0)).toMatchObject({ ok: false, reason: 'no-free-id' });
    expect(stuck.connect(sidOf(2), 6, 0).ok).toBe(true); // another port: another key
    expect(new MspEndpoint({ localPort: 1, random: () => 0 }).connect(sidOf(2), 5, 0)).toMatchObject({ ok: false, reason: 'no-free-id' });
  });

  it('a listener over maxConnectionsPerPeer resets the extra OPEN (refused)', () => {
    const net = new Net();
    const a = net.add(1, 100, { maxConnectionsPerPeer: 10 });
    const b = net.add(2, 200, { maxConnectionsPerPeer: 2 });
    b.ep.listen();
    const cs = [0, 1, 2].map(() => connectOk(a.ep, b, 0));
    cs.forEach((c, i) => c.send(text(`m${i}`), 0));
    net.run(10_000, () => cs.some((c) => c.state === 'error'), () => void b.ep.accept());
    net.run(2_000);
    expect(cs.filter((c) => c.state === 'error')).toHaveLength(1);
    expect(cs.filter((c) => c.state === 'error')[0]!.error).toBe('reset');
    expect(b.ep.stats.refusedByReason['too-many-for-peer']).toBeGreaterThanOrEqual(1);
    expect(b.ep.stats.created).toBe(2);
    expect(b.ep.size).toBe(2);
    expect(a.ep.size).toBe(2);
  });

  it('a listener over maxConnections resets the extra OPEN, whichever peer sends it', () => {
    const net = new Net();
    const a = net.add(1, 100);
    const c = net.add(3, 300);
    const b = net.add(2, 200, { maxConnections: 3 });
    b.ep.listen();
    const cs = [connectOk(a.ep, b, 0), connectOk(a.ep, b, 0), connectOk(c.ep, b, 0)];
    net.run(10, () => false, () => void b.ep.accept()); // the first three OPENs arrive
    cs.forEach((x) => x.send(text('x'), net.now));
    net.run(3_000, () => false, () => void b.ep.accept());
    expect(cs.every((x) => x.state === 'open')).toBe(true);
    const extra = connectOk(c.ep, b, net.now);
    extra.send(text('one too many'), net.now);
    net.run(10_000, () => extra.state === 'error');
    expect(extra.state).toBe('error');
    expect(extra.error).toBe('reset');
    expect(b.ep.stats.refusedByReason['too-many-connections']).toBeGreaterThanOrEqual(1);
    expect(b.ep.size).toBe(3);
  });

  it('a listener whose accept queue is full refuses further OPENs', () => {
    const net = new Net();
    const a = net.add(1, 100);
    const b = net.add(2, 200, { maxPendingAccepts: 2 });
    b.ep.listen();
    const cs = [0, 1, 2].map(() => connectOk(a.ep, b, 0));
    cs.forEach((c) => c.send(text('hi'), 0));
    net.run(5_000, () => cs.some((c) => c.state === 'error'));
    expect(cs.filter((c) => c.state === 'error')).toHaveLength(1);
    expect(b.ep.stats.refusedByReason['accept-queue-full']).toBeGreaterThanOrEqual(1);
    expect(b.ep.pendingAcceptCount).toBe(2);
    expect(b.ep.accept()).toBeDefined();
    expect(b.ep.accept()).toBeDefined();
    expect(b.ep.accept()).toBeUndefined();
  });
});

describe('scheduling and memory', () => {
  it('round robin: one interactive message goes out within the first polls behind a deep bulk queue', () => {
    const a = new MspEndpoint({ localPort: 1, options: { connection: CONN } });
    const peer = sidOf(2);
    const bulk = connectOk(a, { sid: peer, port: 5, ep: a }, 0);
    for (let i = 0; i < 200; i++) expect(bulk.send(new Uint8Array(150).fill(i), 0).ok).toBe(true);
    // Let the bulk connection get going alone first.
    expect(a.pollTransmit(0, () => BUDGET, undefined, 3)).toHaveLength(3);
    const inter = connectOk(a, { sid: peer, port: 6, ep: a }, 0);
    inter.send(text('ls'), 0);
    let foundAt = -1;
    for (let poll = 0; poll < 10 && foundAt < 0; poll++) {
      // The first hop takes one packet per poll.
      const out = a.pollTransmit(1 + poll, () => BUDGET, (_sid, soFar) => soFar < 1);
      expect(out).toHaveLength(1);
      const d = decodePacket(out[0]!.bytes);
      if (d.ok && d.packet.connectionId === inter.connectionId) foundAt = poll;
    }
    expect(foundAt).toBeGreaterThanOrEqual(0);
    expect(foundAt).toBeLessThanOrEqual(2);
    // Unlimited: both connections share each call, alternating.
    const out = a.pollTransmit(20, () => BUDGET, undefined, 4);
    const ids = out.map((o) => {
      const d = decodePacket(o.bytes);
      return d.ok ? d.packet.connectionId : -1;
    });
    expect(ids.every((id) => id === bulk.connectionId || id === inter.connectionId)).toBe(true);
    // A peer without a path is skipped; nothing is produced for it.
    expect(a.pollTransmit(21, () => undefined)).toHaveLength(0);
  });

  it('closed and failed connections leave the table: its size returns to 0', () => {
    const net = new Net();
    const a = net.add(1, 100, { maxConnectionsPerPeer: 32 });
    const b = net.add(2, 200, { maxConnectionsPerPeer: 32 });
    b.ep.listen();
    const cs = Array.from({ length: 8 }, () => connectOk(a.ep, b, 0));
    cs.forEach((c, i) => c.send(text(`m${i}`), 0));
    const accepted: MspConnection[] = [];
    net.run(5_000, () => accepted.length === 8, () => {
      for (let c = b.ep.accept(); c !== undefined; c = b.ep.accept()) accepted.push(c);
    });
    expect(a.ep.size).toBe(8);
    expect(b.ep.size).toBe(8);
    // Half end gracefully, a quarter are aborted locally (RESET to the peer), a quarter time out
    // because the peer vanished.
    for (const c of [...cs.slice(0, 4), ...accepted.filter((x) => cs.slice(0, 4).some((y) => y.connectionId === x.connectionId))]) c.shutdown(net.now);
    cs[4]!.close();
    cs[5]!.close();
    net.run(10_000, () => false, () => {
      for (const c of accepted) c.takeReceived();
    });
    const abortedAtB = accepted.filter((x) => x.connectionId === cs[4]!.connectionId || x.connectionId === cs[5]!.connectionId);
    expect(abortedAtB.map((x) => x.error)).toEqual(['reset', 'reset']);
    // The peer of the last two vanishes: stop carrying B's packets for them by dropping B.
    const bNode = net.nodes.get(hex(b.sid))!;
    net.nodes.delete(hex(b.sid));
    net.run(120_000, () => a.ep.size === 0);
    expect(a.ep.size).toBe(0);
    expect(cs[6]!.error).toBe('timeout');
    const reports = a.ep.takeClosed();
    expect(reports).toHaveLength(8);
    expect(new Set(reports.map((r) => r.connection)).size).toBe(8);
    // B alone: its connections end too (graceful ones linger, the rest time out).
    net.nodes.set(hex(b.sid), bNode);
    net.nodes.delete(hex(a.sid));
    net.run(120_000, () => b.ep.size === 0);
    expect(b.ep.size).toBe(0);
    expect(b.ep.takeClosed()).toHaveLength(8);
    expect(b.ep.nextDeadline(net.now)).toBeUndefined();
  });
});
