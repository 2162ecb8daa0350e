/**
 * MSP through the real gateway: sockets → MSP service → mesh node (sealing, routing) → registry →
 * pacer → simulated radio, and back, in virtual time, with one loop per node. Loss comes from the
 * medium; duplication and reordering from a FaultLink around each radio.
 */
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { SimMedium } from '../drivers/sim.js';
import { FixedRateAirtimeModel } from '../src/link/airtime/fixed-rate.js';
import { LoraAirtimeModel } from '../src/link/airtime/lora-model.js';
import { VirtualClock } from '../src/link/clock.js';
import { FaultLink } from '../src/link/faults.js';
import type { Link } from '../src/link/link.js';
import { Prng } from '../src/link/prng.js';
import { Gateway } from '../src/gateway/gateway.js';
import { identityFromSecret } from '../src/mesh/identity.js';
import { MeshNode } from '../src/mesh/node.js';
import { MspService, type MspServiceOptions } from '../src/msp/service.js';
import { MspState, type MspSocket } from '../src/msp/sockets.js';
import { MspStream } from '../src/msp/stream.js';

const seeded = (seed: number): (() => number) => {
  const p = new Prng(seed);
  return () => p.next();
};
const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');
const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

function bytes(n: number, seed: number): Uint8Array {
  const p = new Prng(seed);
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = Math.floor(p.next() * 256);
  return out;
}

interface Node {
  node: MeshNode;
  gw: Gateway;
  msp: MspService;
  links: Link[];
}

/** A mesh of nodes in virtual time; `links(i)` gives node i's links (on whatever media). */
class Net {
  readonly clock = new VirtualClock(0);
  readonly nodes: Node[] = [];

  add(seed: number, links: Link[], msp: MspServiceOptions = {}): Node {
    const node = new MeshNode({ identity: identityFromSecret(new Uint8Array(32).fill(seed)), epoch: 1, random: seeded(1000 + seed) });
    const service = new MspService(msp);
    const gw = new Gateway({ clock: this.clock, interfaces: links.map((link) => ({ link })), mesh: node, services: [service] });
    const n = { node, gw, msp: service, links };
    this.nodes.push(n);
    return n;
  }

  async start(): Promise<void> {
    for (const n of this.nodes) await n.gw.start();
    this.clock.advance(0);
  }

  /** Advances virtual time in steps (letting stream callbacks run) until `done()` or `maxMs` passed. */
  async run(done: () => boolean, maxMs: number, stepMs = 100): Promise<void> {
    const end = this.clock.now() + maxMs;
    while (!done() && this.clock.now() < end) {
      this.clock.advance(stepMs);
      await tick();
    }
  }

  /** Until every node has a route to every other. */
  async converge(maxMs = 120_000): Promise<void> {
    await this.run(() => this.nodes.every((a) => this.nodes.every((b) => a === b || a.gw.host!.route(b.node.sid) !== undefined)), maxMs, 500);
    for (const a of this.nodes) for (const b of this.nodes) if (a !== b) expect(a.gw.host!.route(b.node.sid), 'routes formed').toBeDefined();
  }
}

/** A Wi-Fi-like channel: 1 Mbit/s, 1200-byte frames, no carrier-sense slots. */
function wifi(net: Net, seed: number, loss = 0): SimMedium {
  return new SimMedium({ clock: net.clock, random: seeded(seed), airtime: new FixedRateAirtimeModel({ bitRate: 1_000_000, maxBytes: 1200 }), loss, csmaSlotMs: 1 });
}

/** Receives one stream on `port` of `n` into a buffer; resolves its sha256 when the stream ends. */
function sink(n: Node, port: number) {
  const got: Buffer[] = [];
  const state = { ended: false, error: undefined as unknown, bytes: 0 };
  const listener = n.msp.listen(port);
  listener.on('connection', (s: MspStream) => {
    s.on('data', (c: Buffer) => {
      got.push(c);
      state.bytes += c.length;
    });
    s.on('end', () => (state.ended = true));
    s.on('error', (e) => (state.error = e));
  });
  return { state, data: () => Buffer.concat(got) };
}

describe('MSP through the gateway loop on a simulated radio', () => {
  for (const loss of [0, 0.1, 0.3]) {
    it(`1 MiB intact at ${loss * 100} % loss, 5 % duplication, 10 % reordering`, async () => {
      const net = new Net();
      const medium = wifi(net, 11, loss);
      const faulted = (i: number): Link => new FaultLink(medium.attach(`w${i}`, { queueCap: 64 }), { seed: 50 + i, duplicate: 0.05, reorder: 0.1, direction: 'in' }, net.clock);
      const a = net.add(1, [faulted(1)]);
      const b = net.add(2, [faulted(2)]);
      await net.start();
      await net.converge();
      const data = bytes(1024 * 1024, 3 + loss * 10);
      const rx = sink(b, 40);
      const s = a.msp.connect(b.node.sid, 40);
      let error: unknown;
      s.on('error', (e) => (error = e));
      s.end(Buffer.from(data));
      await net.run(() => rx.state.ended || rx.state.error !== undefined || error !== undefined, 3_600_000, 200);
      expect(error).toBeUndefined();
      expect(rx.state.error).toBeUndefined();
      expect(rx.state.ended).toBe(true);
      const got = rx.data();
      expect(got.length).toBe(data.length);
      expect(sha(got)).toBe(sha(data));
      const fl = a.links[0] as FaultLink;
      if (loss > 0) expect(medium.counters.lost).toBeGreaterThan(0);
      expect(fl.faultCounters.in.duplicate + fl.faultCounters.in.reorder).toBeGreaterThan(0);
    }, 120_000);
  }

  it('a peer that vanishes: ERROR, then CLOSED, within the idle timeout', async () => {
    const net = new Net();
    const medium = wifi(net, 12);
    const opts: MspServiceOptions = { endpoint: { connection: { idleTimeoutMs: 30_000, keepAliveMs: 5_000 } } };
    const a = net.add(1, [medium.attach('w1')], opts);
    const b = net.add(2, [medium.attach('w2')], opts);
    await net.start();
    await net.converge();
    sink(b, 40);
    const sockets = a.msp.sockets;
    const sock = sockets.socket();
    const states: Array<{ at: number; state: number }> = [];
    sockets.setHandler(sock, (_s: MspSocket, state: number) => {
      states.push({ at: net.clock.now(), state });
      return 0;
    });
    sockets.connect(sock, { sid: b.node.sid, port: 40 });
    sockets.send(sock, new Uint8Array([1, 2, 3]));
    await net.run(() => sockets.connected(sock), 10_000);
    expect(sockets.connected(sock)).toBe(true);
    const gone = net.clock.now();
    await b.gw.stop();
    await net.run(() => sockets.closed(sock), 120_000, 500);
    const err = states.find((x) => x.state & MspState.ERROR);
    const closed = states.filter((x) => x.state & MspState.CLOSED);
    expect(err).toBeDefined();
    expect(closed).toHaveLength(1);
    expect(closed[0]!.at).toBeGreaterThanOrEqual(err!.at);
    // Within the idle timeout of the last packet heard, plus a step of the test's clock.
    expect(closed[0]!.at - gone).toBeLessThanOrEqual(30_000 + 1_000);
  }, 60_000);

  it('100 concurrent connections on one listener, each intact', async () => {
    const net = new Net();
    const medium = wifi(net, 13, 0.05);
    const caps: MspServiceOptions = { endpoint: { maxConnectionsPerPeer: 128, maxPendingAccepts: 128 } };
    const a = net.add(1, [medium.attach('w1', { queueCap: 64 })], caps);
    const b = net.add(2, [medium.attach('w2', { queueCap: 64 })], caps);
    await net.start();
    await net.converge();
    const received = new Map<string, Buffer[]>();
    const ended = new Set<string>();
    b.msp.listen(40).on('connection', (s: MspStream) => {
      let id: string | undefined;
      const parts: Buffer[] = [];
      s.on('data', (c: Buffer) => {
        parts.push(c);
        if (id === undefined && Buffer.concat(parts).length >= 4) {
          id = String(Buffer.concat(parts).readUInt32BE(0));
          received.set(id, parts);
        }
      });
      s.on('end', () => id !== undefined && ended.add(id));
    });
    const payloads = new Map<string, Uint8Array>();
    for (let i = 0; i < 100; i++) {
      const body = bytes(2000 + i * 37, 500 + i);
      new DataView(body.buffer).setUint32(0, i);
      payloads.set(String(i), body);
      const s = a.msp.connect(b.node.sid, 40);
      s.end(Buffer.from(body));
    }
    await net.run(() => ended.size === 100, 600_000, 200);
    expect(ended.size).toBe(100);
    for (const [id, body] of payloads) expect(sha(Buffer.concat(received.get(id)!)), `stream ${id}`).toBe(sha(body));
  }, 120_000);

  it('a 3-hop path across a LoRa and a Wi-Fi segment', async () => {
    const net = new Net();
    const lora = new SimMedium({ clock: net.clock, random: seeded(21), airtime: new LoraAirtimeModel({ sf: 7, bandwidth: 125_000, cr: 5 }) });
    const wlan = wifi(net, 22);
    // a —LoRa— b —Wi-Fi (channel bc)— c —Wi-Fi (channel cd)— d
    const a = net.add(1, [lora.attach('lora-a')]);
    net.add(2, [lora.attach('lora-b'), wlan.attach('wifi-b', { channel: 'bc' })]);
    net.add(3, [wlan.attach('wifi-c1', { channel: 'bc' }), wlan.attach('wifi-c2', { channel: 'cd' })]);
    const d2 = net.add(4, [wlan.attach('wifi-d', { channel: 'cd' })]);
    await net.start();
    await net.converge(600_000);
    const route = a.gw.host!.route(d2.node.sid)!;
    expect(route.hops).toBe(3);
    expect(route.iface).toBe('lora-a');
    const data = bytes(16 * 1024, 77);
    const rx = sink(d2, 40);
    const s = a.msp.connect(d2.node.sid, 40);
    s.end(Buffer.from(data));
    await net.run(() => rx.state.ended, 1_800_000, 500);
    expect(rx.state.ended).toBe(true);
    expect(sha(rx.data())).toBe(sha(data));
  }, 120_000);

  it('a bulk stream and an interactive one share a LoRa link: the interactive messages keep arriving', async () => {
    const net = new Net();
    const lora = new SimMedium({ clock: net.clock, random: seeded(31), airtime: new LoraAirtimeModel({ sf: 7, bandwidth: 125_000, cr: 5 }) });
    const a = net.add(1, [lora.attach('l1', { queueCap: 32 })]);
    const b = net.add(2, [lora.attach('l2', { queueCap: 32 })]);
    await net.start();
    await net.converge();
    const bulkRx = sink(b, 40);
    const chat: Array<{ sentAt: number; gotAt?: number }> = [];
    b.msp.listen(41, { mode: 'messages' }).on('connection', (m) => {
      void (async () => {
        for await (const msg of m as AsyncIterable<Uint8Array>) chat[new DataView(msg.buffer, msg.byteOffset).getUint32(0)]!.gotAt = net.clock.now();
      })();
    });
    const bulk = a.msp.connect(b.node.sid, 40);
    const bulkData = bytes(48 * 1024, 9);
    bulk.end(Buffer.from(bulkData));
    const talk = a.msp.connectMessages(b.node.sid, 41, { priority: 'interactive' });
    // One short message every 5 s while the bulk transfer runs.
    for (let i = 0; i < 12; i++) {
      await net.run(() => false, 5_000, 100);
      const m = new Uint8Array(20);
      new DataView(m.buffer).setUint32(0, i);
      chat.push({ sentAt: net.clock.now() });
      void talk.send(m);
    }
    await net.run(() => chat.every((c) => c.gotAt !== undefined), 60_000);
    const bulkStillRunning = !bulkRx.state.ended;
    await net.run(() => bulkRx.state.ended, 1_800_000, 500);
    expect(sha(bulkRx.data())).toBe(sha(bulkData));
    expect(chat.every((c) => c.gotAt !== undefined)).toBe(true);
    // Every interactive message arrived within a few LoRa frame times, not behind the bulk queue.
    const latencies = chat.map((c) => c.gotAt! - c.sentAt);
    expect(Math.max(...latencies)).toBeLessThan(10_000);
    expect(bulkStillRunning).toBe(true);
  }, 120_000);
});
