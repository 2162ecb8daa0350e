/**
 * The production path in tests: socket → mesh node → registry → pacer → link and back, through
 * the real Gateway and its one loop — on the simulated medium in virtual time, and over real UDP
 * sockets on loopback with the monotonic clock. Not a harness that bypasses the pacer.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { SimMedium, type SimLink } from '../drivers/sim.js';
import { UdpLink } from '../drivers/udp.js';
import { MonotonicClock, VirtualClock } from '../src/link/clock.js';
import type { InterfaceConfig } from '../src/link/registry.js';
import { Gateway } from '../src/gateway/gateway.js';
import { MeshNode } from '../src/mesh/node.js';
import { identityFromSecret } from '../src/mesh/identity.js';
import { Prng } from '../src/link/prng.js';
import { until } from './hil/link-helpers.js';

const text = (s: string): Uint8Array => new TextEncoder().encode(s);
const seeded = (seed: number): (() => number) => {
  const p = new Prng(seed);
  return () => p.next();
};

interface Sent {
  at: number;
  bytes: number;
  /** A datagram (first byte 0x5_) rather than an RFC 5444 packet or raw filler. */
  datagram: boolean;
  /** An RFC 5444 packet (first byte 0x0_): HELLO or TC, the control class. */
  control: boolean;
}

/** Two gateways, each with a mesh node, on one simulated LoRa channel; every link.send recorded. */
function pair(config: InterfaceConfig = {}) {
  const clock = new VirtualClock(0);
  const medium = new SimMedium({ clock, random: seeded(7) });
  const sends: Sent[][] = [[], []];
  const gateways = [0, 1].map((i) => {
    const link: SimLink = medium.attach(`sim${i}`, { queueCap: 64 });
    const original = link.send.bind(link);
    link.send = (frame, options) => {
      sends[i]!.push({ at: clock.now(), bytes: frame.length, datagram: (frame[0]! & 0xf0) === 0x50, control: (frame[0]! & 0xf0) === 0x00 });
      return original(frame, options);
    };
    const node = new MeshNode({ identity: identityFromSecret(new Uint8Array(32).fill(i + 1)), epoch: 1, random: seeded(100 + i) });
    return { link, node, gw: new Gateway({ clock, interfaces: [{ link, config }], mesh: node }) };
  });
  return { clock, medium, sends, gateways };
}

async function started(p: ReturnType<typeof pair>): Promise<void> {
  for (const g of p.gateways) await g.gw.start();
  p.clock.advance(0);
}

describe('the gateway loop on a simulated radio (virtual time)', () => {
  it('carries a datagram socket → pacer → link → pacer-less receive → socket, and back', async () => {
    const p = pair();
    await started(p);
    p.clock.advance(60_000);
    const [a, b] = p.gateways as [(typeof p.gateways)[0], (typeof p.gateways)[0]];
    expect(a.gw.host!.route(b.node.sid)).toMatchObject({ hops: 1, iface: 'sim0' });
    const got: string[] = [];
    const sb = b.gw.host!.bind(40);
    sb.on('message', (from, port, bytes) => {
      got.push(new TextDecoder().decode(bytes));
      expect(sb.send(from, port, text('pong'))).toEqual({ ok: true });
    });
    const sa = a.gw.host!.bind(41, { priority: 'interactive' });
    sa.on('message', (_f, _p, bytes) => got.push(new TextDecoder().decode(bytes)));
    const pacerBefore = a.gw.registry.get('sim0')!.pacer.counters.sent;
    expect(sa.send(b.node.sid, 40, text('ping'))).toEqual({ ok: true });
    p.clock.advance(5_000);
    expect(got).toEqual(['ping', 'pong']);
    // It went through a's pacer (one more frame than the control traffic alone), and b's back.
    expect(a.gw.registry.get('sim0')!.pacer.counters.sent).toBeGreaterThan(pacerBefore);
    expect(a.node.counters.sent).toBe(1);
    expect(b.node.counters.delivered).toBe(1);
  });

  it("neighbours carry the RSSI/SNR of their last HELLO and when it was heard", async () => {
    const p = pair();
    await started(p);
    p.clock.advance(60_000);
    const [a] = p.gateways as [(typeof p.gateways)[0]];
    const [n] = a.node.control.neighbours();
    expect(n).toBeDefined();
    // The simulated links report −90 dBm and 8.5 dB for every frame.
    expect(n!.rssiDbm).toBe(-90);
    expect(n!.snrDb).toBe(8.5);
    expect(n!.lastHeardAt).toBeLessThanOrEqual(p.clock.now());
    expect(n!.lastHeardAt).toBeGreaterThan(p.clock.now() - 60_000);
  });

  it('a send on an idle interface leaves at once, not at the next control deadline', async () => {
    const p = pair();
    await started(p);
    p.clock.advance(60_000);
    const [a, b] = p.gateways as [(typeof p.gateways)[0], (typeof p.gateways)[0]];
    const sa = a.gw.host!.bind(41);
    const before = p.sends[0]!.length;
    const at = p.clock.now();
    expect(sa.send(b.node.sid, 40, text('now'))).toEqual({ ok: true });
    p.clock.advance(0);
    expect(p.sends[0]!.length).toBe(before + 1);
    expect(p.sends[0]!.at(-1)!.at).toBe(at);
  });

  it('on a 1 % duty-cycle interface a datagram leaves within one frame airtime of the pacer allowing it', async () => {
    const p = pair({ region: 'eu868', frequency: 868_100_000, bandwidth: 125_000 });
    await started(p);
    p.clock.advance(900_000); // HELLOs every few minutes at 1 %: give discovery its time
    const [a, b] = p.gateways as [(typeof p.gateways)[0], (typeof p.gateways)[0]];
    const pacer = a.gw.registry.get('sim0')!.pacer;
    // Spend the hour's budget (36 s of airtime at 1 %) with bulk filler in several flows.
    for (let f = 0; f < 4; f++) for (let i = 0; i < 40; i++) a.gw.send('sim0', new Uint8Array(200).fill(0xee), 'bulk', `filler${f}`);
    p.clock.advance(60_000);
    const window = a.gw.status()[0]!.pacer.windows[0]!;
    expect(window.leftMs).toBeLessThan(p.gateways[0]!.link.airtime.airtimeMs(200));
    const sa = a.gw.host!.bind(41, { priority: 'interactive' });
    const sentAt = p.clock.now();
    // As large as the filler frames, so that what is left of the budget cannot take it.
    expect(sa.send(b.node.sid, 40, new Uint8Array(180).fill(0x75))).toEqual({ ok: true });
    expect(pacer.nextDeadline(sentAt)!).toBeGreaterThan(sentAt); // it has to wait for the budget
    const sentBefore = p.sends[0]!.length;
    p.clock.advance(2 * 3_600_000);
    const leave = p.sends[0]!.slice(sentBefore).find((s) => s.datagram)!;
    expect(leave).toBeDefined();
    // An independent check that no slot was wasted: once the control frames (a higher class)
    // that went before it had gone, there is no moment until one airtime before it left where
    // the channel was free of a's transmissions and the sliding hour could take its airtime.
    const model = p.gateways[0]!.link.airtime;
    const d = model.airtimeMs(leave.bytes);
    const tx = p.sends[0]!.map((s) => ({ from: s.at, to: s.at + model.airtimeMs(s.bytes) }));
    const fits = (t: number): boolean => {
      if (tx.some((x) => x.from < t + d && x.to > t)) return false;
      const start = t + d - 3_600_000;
      const used = tx.reduce((sum, x) => sum + Math.max(0, Math.min(x.to, t + d) - Math.max(x.from, start)), 0);
      return used + d <= 36_000;
    };
    const step = 50;
    const lastControl = Math.max(sentAt, ...p.sends[0]!.filter((s) => s.control && s.at < leave.at).map((s) => s.at + model.airtimeMs(s.bytes)));
    for (let t = lastControl; t < leave.at - d - step; t += step) expect(fits(t), `a free slot at ${t} before the datagram left at ${leave.at}`).toBe(false);
    expect(leave.at - sentAt).toBeGreaterThan(0);
  });

  it('a refused datagram is counted as refused, not sent; ready() says no, then a ready event comes', async () => {
    const p = pair({ region: 'eu868', frequency: 868_100_000, bandwidth: 125_000 });
    await started(p);
    p.clock.advance(900_000);
    const [a, b] = p.gateways as [(typeof p.gateways)[0], (typeof p.gateways)[0]];
    const host = a.gw.host!;
    expect(host.ready(b.node.sid, 'bulk')).toBe(true);
    const readyEvents: string[] = [];
    host.on('ready', (iface, priority) => readyEvents.push(`${iface}:${priority}`));
    const sa = host.bind(41);
    const results = Array.from({ length: 70 }, () => sa.send(b.node.sid, 40, new Uint8Array(150)));
    // The pacer holds 64 frames per flow: the rest are refused with the reason, and not counted as sent.
    expect(results.filter((r) => r.ok)).toHaveLength(64);
    expect(results.at(-1)).toMatchObject({ ok: false, reason: 'queue-full' });
    expect(a.node.counters.sent).toBe(64);
    expect(a.node.counters.refused['queue-full']).toBe(6);
    expect(host.ready(b.node.sid, 'bulk')).toBe(false);
    expect(readyEvents).toEqual([]);
    // Another socket is its own flow: one bulk sender cannot fill the queue for everybody.
    expect(host.bind(42).send(b.node.sid, 40, new Uint8Array(10))).toEqual({ ok: true });
    p.clock.advance(4 * 3_600_000);
    expect(readyEvents).toContain('sim0:bulk');
    expect(host.ready(b.node.sid, 'bulk')).toBe(true);
    // The loop slept between deadlines: no machine kept asking to run at a time it never passed.
    expect(a.gw.loop.counters.spins).toBe(0);
  });

  it('under a flood of signed HELLOs from throwaway identities a known neighbour is still delivered', async () => {
    const p = pair();
    await started(p);
    p.clock.advance(60_000);
    const [a, b] = p.gateways as [(typeof p.gateways)[0], (typeof p.gateways)[0]];
    const got: string[] = [];
    b.gw.host!.bind(40).on('message', (_f, _p, bytes) => got.push(new TextDecoder().decode(bytes)));
    const sa = a.gw.host!.bind(41);
    const sent: string[] = [];
    for (let i = 0; i < 400; i++) {
      // A throwaway identity with a properly signed HELLO (and TC), straight into b's receive path.
      const secret = new Uint8Array(32).fill(0x5a);
      new DataView(secret.buffer).setUint32(0, i);
      const sybil = new MeshNode({ identity: identityFromSecret(secret), epoch: 1 });
      sybil.addInterface({ name: 'sim', mtu: 255, airtimeMs: () => 10 }, p.clock.now());
      sybil.poll(p.clock.now() + 1_000);
      for (const out of sybil.takeOutput()) b.link.emit('frame', { data: out.bytes, at: p.clock.now() });
      if (i % 40 === 0) {
        const t = `datagram ${i}`;
        expect(sa.send(b.node.sid, 40, text(t))).toEqual({ ok: true });
        sent.push(t);
        p.clock.advance(2_000);
      }
    }
    p.clock.advance(10_000);
    expect(got).toEqual(sent);
    // Most strangers were refused before their signature was checked: the admission budget.
    expect(b.node.control.counters.admissionRefused).toBeGreaterThan(300);
    expect(b.node.control.neighbours().find((n) => n.id === a.node.control.id)?.symmetric).toBe(true);
  });

  it('a virtual clock stepped by an hour: no duty-cycle window is exceeded and no timer stalls', async () => {
    const p = pair({ region: 'eu868', frequency: 868_100_000, bandwidth: 125_000 });
    await started(p);
    p.clock.advance(900_000); // HELLOs every few minutes at 1 %: give discovery its time
    const [a] = p.gateways as [(typeof p.gateways)[0]];
    for (let i = 0; i < 60; i++) a.gw.send('sim0', new Uint8Array(200), 'bulk', 'filler');
    p.clock.advance(3_600_000); // one step: every timer due on the way fires in order
    const hellos = a.node.control.counters.hellosSent;
    p.clock.advance(600_000);
    expect(a.node.control.counters.hellosSent).toBeGreaterThan(hellos);
    // An independent count: airtime started in any sliding hour stays within 1 % of it.
    const model = a.link.airtime;
    const tx = p.sends[0]!.map((s) => ({ at: s.at, ms: model.airtimeMs(s.bytes) }));
    for (const t of tx) {
      const inWindow = tx.filter((u) => u.at >= t.at && u.at < t.at + 3_600_000).reduce((s, u) => s + u.ms, 0);
      expect(inWindow).toBeLessThanOrEqual(36_000 + 1e-6);
    }
  });

  it('a listener that throws is caught and counted; the node still delivers', async () => {
    const p = pair();
    await started(p);
    p.clock.advance(60_000);
    const [a, b] = p.gateways as [(typeof p.gateways)[0], (typeof p.gateways)[0]];
    const bad = b.gw.host!.bind(40);
    bad.on('message', () => {
      throw new Error('app bug');
    });
    const good: string[] = [];
    b.gw.host!.bind(42).on('message', (_f, _p, bytes) => good.push(new TextDecoder().decode(bytes)));
    const sa = a.gw.host!.bind(41);
    expect(sa.send(b.node.sid, 40, text('boom'))).toEqual({ ok: true });
    p.clock.advance(3_000);
    expect(sa.send(b.node.sid, 42, text('still here'))).toEqual({ ok: true });
    expect(sa.send(b.node.sid, 40, text('boom again'))).toEqual({ ok: true });
    p.clock.advance(3_000);
    expect(b.node.counters.delivered).toBe(3);
    expect(good).toEqual(['still here']);
    expect(b.node.counters.listenerErrors).toBe(2);
  });

  it('HELLOs queued while a link is down are replaced, not sent as a stale burst', async () => {
    const p = pair();
    await started(p);
    p.clock.advance(30_000);
    const [a] = p.gateways as [(typeof p.gateways)[0]];
    const setState = (s: string): void => (a.link as unknown as { setState(s: string): void }).setState(s);
    setState('reconnecting'); // as a StreamLink does while its modem is unplugged
    const hellos = a.node.control.counters.hellosSent;
    p.clock.advance(600_000);
    expect(a.node.control.counters.hellosSent - hellos).toBeGreaterThan(5);
    const before = p.sends[0]!.length;
    setState('up');
    p.clock.advance(0);
    // One HELLO and one TC (generations superseded while down), not every HELLO of ten minutes.
    expect(p.sends[0]!.length - before).toBeLessThanOrEqual(2);
    expect(a.gw.registry.get('sim0')!.pacer.counters.drops.superseded).toBeGreaterThan(0);
  });
});

describe('the gateway loop on the monotonic clock', () => {
  afterEach(() => vi.restoreAllMocks());

  it('a wall-clock step (NTP at boot) empties no duty-cycle window and stalls no timer', async () => {
    const clock = new MonotonicClock();
    const medium = new SimMedium({ clock, csmaSlotMs: 0 });
    const link = medium.attach('sim0');
    const peer = medium.attach('peer');
    const heard: number[] = [];
    peer.on('frame', () => heard.push(1));
    await peer.open();
    const gw = new Gateway({ clock, interfaces: [{ link, config: { region: 'eu868', frequency: 868_100_000, bandwidth: 125_000 } }] });
    await gw.start();
    try {
      for (let i = 0; i < 3; i++) gw.send('sim0', new Uint8Array(50));
      await until(() => heard.length === 3, 'three frames on the air');
      const usedBefore = gw.status()[0]!.pacer.windows[0]!.usedMs;
      expect(usedBefore).toBeGreaterThan(0);
      const real = Date.now.bind(Date);
      vi.spyOn(Date, 'now').mockImplementation(() => real() + 3_600_000);
      expect(gw.status()[0]!.pacer.windows[0]!.usedMs).toBe(usedBefore); // not emptied by the step
      gw.send('sim0', new Uint8Array(50));
      await until(() => heard.length === 4, 'a frame after a forward step');
      vi.spyOn(Date, 'now').mockImplementation(() => real() - 7_200_000);
      gw.send('sim0', new Uint8Array(50));
      await until(() => heard.length === 5, 'a frame after a backward step (no stalled timer)');
      expect(gw.status()[0]!.pacer.windows[0]!.usedMs).toBeGreaterThan(usedBefore);
    } finally {
      await gw.stop();
      await peer.close();
    }
  });
});

describe('the gateway loop over real UDP on loopback (monotonic clock)', () => {
  const stops: Array<() => Promise<void>> = [];
  afterEach(async () => {
    vi.restoreAllMocks();
    for (const s of stops.splice(0)) await s();
  });

  async function udpPair() {
    const base = 31_000 + Math.floor(Math.random() * 20_000);
    const clock = new MonotonicClock();
    const nodes = [0, 1].map((i) => new MeshNode({ identity: identityFromSecret(new Uint8Array(32).fill(i + 11)), epoch: 1, minHelloMs: 200 }));
    const gws = [0, 1].map(
      (i) =>
        new Gateway({
          clock,
          mesh: nodes[i]!,
          interfaces: [{ link: new UdpLink({ name: 'udp0', address: '127.0.0.1', port: base + i, peers: [{ address: '127.0.0.1', port: base + 1 - i }] }) }],
        }),
    );
    for (const g of gws) {
      await g.start();
      stops.push(() => g.stop());
    }
    await until(() => gws[0]!.host!.route(nodes[1]!.sid) !== undefined && gws[1]!.host!.route(nodes[0]!.sid) !== undefined, 'routes both ways over UDP', 20_000);
    return { clock, nodes, gws };
  }

  it('delivers a datagram both ways through the pacers and the UDP sockets', async () => {
    const { nodes, gws } = await udpPair();
    const got: string[] = [];
    const s1 = gws[1]!.host!.bind(40);
    s1.on('message', (from, port, bytes) => {
      got.push(new TextDecoder().decode(bytes));
      s1.send(from, port, text('pong'));
    });
    const s0 = gws[0]!.host!.bind(41);
    s0.on('message', (_f, _p, bytes) => got.push(new TextDecoder().decode(bytes)));
    expect(s0.send(nodes[1]!.sid, 40, text('ping'))).toEqual({ ok: true });
    await until(() => got.length === 2, 'ping and pong');
    expect(got).toEqual(['ping', 'pong']);
  });
});
