/**
 * The simulated radio medium on a virtual clock: timing, collisions, half duplex, loss, channels,
 * and an hour of AFSK 1200 traffic in virtual time.
 */
import { describe, expect, it } from 'vitest';
import { SimMedium, type SimLink, type SimMediumOptions } from '../drivers/sim.js';
import { Ax25AirtimeModel } from '../src/link/airtime/afsk.js';
import { VirtualClock } from '../src/link/clock.js';
import type { ReceivedFrame } from '../src/link/link.js';
import { mulberry32 } from '../src/sim/scenario.js';

/** A small seeded PRNG (the simulator's), so loss is the same on every run. */
const seeded = mulberry32;

interface Node {
  link: SimLink;
  got: ReceivedFrame[];
}

async function setup(names: string[], options: Omit<SimMediumOptions, 'clock'> = {}, channels: Record<string, string> = {}) {
  const clock = new VirtualClock();
  const medium = new SimMedium({ clock, ...options });
  const nodes: Record<string, Node> = {};
  for (const name of names) {
    const channel = channels[name];
    const link = medium.attach(name, channel !== undefined ? { channel } : {});
    const got: ReceivedFrame[] = [];
    link.on('frame', (f) => got.push(f));
    await link.open();
    nodes[name] = { link, got };
  }
  const node = (name: string): Node => nodes[name]!;
  return { clock, medium, node };
}

const bytes = (n: number, fill = 0xa5): Uint8Array => new Uint8Array(n).fill(fill);

describe('SimMedium and SimLink', () => {
  it('opens immediately and reports the LoRa SF7/125 kHz default', async () => {
    const { medium, node } = await setup(['a']);
    const a = node('a').link;
    expect(a.state).toBe('up');
    expect(a.kind).toBe('sim');
    expect(a.mtu).toBe(255);
    expect(medium.airtime.kind).toBe('lora');
    expect(a.bitRate).toBeCloseTo(5468.75, 6);
    await a.close();
    expect(a.state).toBe('closed');
    expect(() => a.send(bytes(1))).toThrow(/closed/);
  });

  it('delivers exactly airtime + delay after the send, with synthetic RSSI and SNR', async () => {
    const delayMs = 7;
    const { clock, medium, node } = await setup(['a', 'b', 'c'], { delayMs });
    const frame = Uint8Array.from([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    const due = delayMs + medium.airtime.airtimeMs(frame.length);
    node('a').link.send(frame);
    frame.fill(0); // the medium copied it
    clock.advance(due - 1);
    expect(node('b').got).toHaveLength(0);
    clock.advance(1);
    for (const name of ['b', 'c']) {
      const got = node(name).got;
      expect(got).toHaveLength(1);
      expect(got[0]!.at).toBe(due);
      expect([...got[0]!.data]).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
      expect(got[0]!.rssiDbm).toBe(-90);
      expect(got[0]!.snrDb).toBe(8.5);
    }
    expect(node('a').got).toHaveLength(0); // a radio does not hear itself
    expect(node('a').link.counters).toMatchObject({ framesOut: 1, bytesOut: 10 });
    expect(node('b').link.counters).toMatchObject({ framesIn: 1, bytesIn: 10 });
  });

  it('sends one frame per airtime from its queue, back to back', async () => {
    const { clock, medium, node } = await setup(['a', 'b']);
    const t = medium.airtime.airtimeMs(20);
    for (let i = 0; i < 3; i++) node('a').link.send(bytes(20, i));
    clock.runUntilIdle();
    expect(node('b').got.map((f) => [f.at, f.data[0]])).toEqual([[t, 0], [2 * t, 1], [3 * t, 2]]);
  });

  it('loses both frames when two transmissions overlap at a receiver', async () => {
    // Without carrier sense (hidden terminals behave so): b does not wait for a.
    const { clock, medium, node } = await setup(['a', 'b', 'c'], { csmaSlotMs: 0 });
    const t = medium.airtime.airtimeMs(16);
    node('a').link.send(bytes(16, 1));
    clock.advance(t / 2);
    node('b').link.send(bytes(16, 2));
    clock.runUntilIdle();
    expect(node('c').got).toHaveLength(0);
    expect(node('c').link.counters.drops).toEqual({ collision: 2 });
    // a and b each transmitted during the other's frame: half duplex, not collision.
    expect(node('a').link.counters.drops).toEqual({ 'half-duplex': 1 });
    expect(node('b').link.counters.drops).toEqual({ 'half-duplex': 1 });
    expect(medium.counters).toMatchObject({ transmissions: 2, collisions: 2, halfDuplex: 2, delivered: 0 });
  });

  it('reach: out of range hears nothing and senses no carrier (hidden terminals collide); each pair its own loss, RSSI and SNR', async () => {
    // a and c cannot hear each other; b hears both, a at −100 dBm, c at −80 dBm.
    const reachOf: Record<string, { loss: number; rssiDbm: number; snrDb: number } | undefined> = {
      'a>b': { loss: 0, rssiDbm: -100, snrDb: 2 },
      'b>a': { loss: 0, rssiDbm: -100, snrDb: 2 },
      'c>b': { loss: 0, rssiDbm: -80, snrDb: 12 },
      'b>c': { loss: 0, rssiDbm: -80, snrDb: 12 },
    };
    const starts: string[] = [];
    const { clock, medium, node } = await setup(['a', 'b', 'c'], {
      reach: (from, to) => reachOf[`${from.name}>${to.name}`],
      onTransmit: (sender, n, start) => starts.push(`${sender.name}:${n}@${start}`),
    });
    const t = medium.airtime.airtimeMs(16);
    node('a').link.send(bytes(16, 1));
    clock.runUntilIdle();
    expect(node('b').got.map((f) => [f.data[0], f.rssiDbm, f.snrDb])).toEqual([[1, -100, 2]]);
    expect(node('c').got).toHaveLength(0);
    // c starts while a is on the air: it senses nothing (out of range), so both reach b at once.
    node('a').link.send(bytes(16, 2));
    clock.advance(t / 2);
    node('c').link.send(bytes(16, 3));
    clock.runUntilIdle();
    expect(node('b').got).toHaveLength(1);
    expect(node('b').link.counters.drops).toEqual({ collision: 2 });
    expect(starts).toEqual(['a:16@0', `a:16@${t}`, `c:16@${t + t / 2}`]);
  });

  it('capture: of two overlapping receptions, the one captureDb stronger survives', async () => {
    const rssi: Record<string, number> = { a: -100, c: -80 };
    const { clock, medium, node } = await setup(['a', 'b', 'c'], {
      csmaSlotMs: 0,
      captureDb: 6,
      reach: (from, to) => (to.name === 'b' ? { loss: 0, rssiDbm: rssi[from.name]! } : undefined),
    });
    const t = medium.airtime.airtimeMs(16);
    node('a').link.send(bytes(16, 1));
    clock.advance(t / 2);
    node('c').link.send(bytes(16, 3));
    clock.runUntilIdle();
    // c is 20 dB stronger: its frame survives, a's is lost.
    expect(node('b').got.map((f) => f.data[0])).toEqual([3]);
    expect(node('b').link.counters.drops).toEqual({ collision: 1 });
    // Within 6 dB of each other: both lost, as without capture.
    rssi.c = -97;
    node('a').link.send(bytes(16, 4));
    clock.advance(t / 2);
    node('c').link.send(bytes(16, 5));
    clock.runUntilIdle();
    expect(node('b').got.map((f) => f.data[0])).toEqual([3]);
    expect(node('b').link.counters.drops).toEqual({ collision: 3 });
  });

  it('does not collide frames that only touch end to start, nor any frames with collisions off', async () => {
    const touching = await setup(['a', 'b', 'c']);
    const t = touching.medium.airtime.airtimeMs(16);
    touching.node('a').link.send(bytes(16, 1));
    touching.clock.advance(t);
    touching.node('b').link.send(bytes(16, 2));
    touching.clock.runUntilIdle();
    expect(touching.node('c').got.map((f) => f.data[0])).toEqual([1, 2]);

    const off = await setup(['a', 'b', 'c'], { collisions: false });
    off.node('a').link.send(bytes(16, 1));
    off.clock.advance(t / 2);
    off.node('b').link.send(bytes(16, 2));
    off.clock.runUntilIdle();
    expect(off.node('c').got.map((f) => f.data[0])).toEqual([1, 2]);
  });

  it('is half duplex: a receiver that starts transmitting mid-reception loses that frame', async () => {
    const { clock, medium, node } = await setup(['a', 'b', 'c'], { collisions: false, csmaSlotMs: 0 });
    const t = medium.airtime.airtimeMs(40);
    node('a').link.send(bytes(40, 1));
    clock.advance(t - 1); // b keys up 1 ms before a's frame ends
    node('b').link.send(bytes(4, 2));
    clock.runUntilIdle();
    expect(node('b').got).toHaveLength(0);
    expect(node('b').link.counters.drops).toEqual({ 'half-duplex': 1 });
    expect(node('a').got.map((f) => f.data[0])).toEqual([]); // a was still sending when b's began
    expect(node('c').got.map((f) => f.data[0])).toEqual([1, 2]);
  });

  it('drops frames at random with the seeded loss rate', async () => {
    const { clock, node } = await setup(['a', 'b'], { loss: 0.3, random: seeded(42) });
    const n = 2000;
    for (let i = 0; i < n; i++) {
      node('a').link.send(bytes(8));
      clock.runUntilIdle();
    }
    const delivered = node('b').got.length;
    expect(delivered / n).toBeGreaterThan(0.65);
    expect(delivered / n).toBeLessThan(0.75);
    expect(node('b').link.counters.drops['loss']).toBe(n - delivered);
  });

  it('isolates channels', async () => {
    const { clock, node } = await setup(['a', 'b', 'c'], {}, { a: 'x', b: 'x', c: 'y' });
    node('a').link.send(bytes(5, 1));
    node('c').link.send(bytes(5, 3)); // same time, other channel: no collision
    clock.runUntilIdle();
    expect(node('b').got.map((f) => f.data[0])).toEqual([1]);
    expect(node('c').got).toHaveLength(0);
    expect(node('a').got).toHaveLength(0);
  });

  it('holds frames queued before open, and forgets a closed link', async () => {
    const clock = new VirtualClock();
    const medium = new SimMedium({ clock });
    const a = medium.attach('a');
    const b = medium.attach('b');
    const got: ReceivedFrame[] = [];
    b.on('frame', (f) => got.push(f));
    await b.open();
    a.send(bytes(3));
    clock.runUntilIdle();
    expect(got).toHaveLength(0);
    await a.open();
    clock.runUntilIdle();
    expect(got).toHaveLength(1);
    await b.close();
    a.send(bytes(3));
    clock.runUntilIdle();
    expect(got).toHaveLength(1);
    expect(clock.pending).toBe(0);
  });

  it('runs an hour of saturated AFSK 1200 traffic in virtual time, frame counts by airtime arithmetic', { timeout: 5_000 }, async () => {
    const airtime = new Ax25AirtimeModel({ modem: 'afsk1200' });
    const delayMs = 3;
    const { clock, node } = await setup(['a', 'b', 'c'], { airtime, delayMs });
    const a = node('a').link;
    expect(a.bitRate).toBe(1200);
    const size = 100;
    const fill = (): void => {
      while (a.send(bytes(size))) {
        /* keep the queue topped up */
      }
    };
    a.on('ready', fill);
    const wallStart = performance.now();
    fill();
    const hour = 3_600_000;
    clock.advance(hour);
    const wallMs = performance.now() - wallStart;

    const t = airtime.airtimeMs(size); // 300 + 995 bits / 1.2 + 100 = 1229.1666… ms
    expect(t).toBeCloseTo(1229.1667, 3);
    // Transmissions start at 0, t, 2t, …; the k-th (from 0) is delivered at (k + 1)·t + delay.
    expect(a.counters.framesOut).toBe(Math.floor(hour / t) + 1);
    for (const name of ['b', 'c']) {
      expect(node(name).got.length).toBe(Math.floor((hour - delayMs) / t));
      expect(node(name).link.counters.drops).toEqual({});
    }
    console.log(`an hour of AFSK 1200 (${node('b').got.length} frames) took ${wallMs.toFixed(0)} ms of wall time`);
  });
});

describe('VirtualClock', () => {
  it('fires timers in time order, ties in creation order, with now() at each timer', () => {
    const clock = new VirtualClock(100);
    const seen: string[] = [];
    clock.setTimer(130, () => seen.push(`b@${clock.now()}`));
    clock.setTimer(110, () => {
      seen.push(`a@${clock.now()}`);
      clock.setTimer(120, () => seen.push(`nested@${clock.now()}`)); // set while firing, still due
    });
    clock.setTimer(130, () => seen.push(`c@${clock.now()}`));
    clock.setTimer(50, () => seen.push(`past@${clock.now()}`)); // in the past: fires now
    const cancelled = clock.setTimer(115, () => seen.push('cancelled'));
    cancelled.cancel();
    expect(clock.pending).toBe(4);
    clock.advance(25);
    expect(seen).toEqual(['past@100', 'a@110', 'nested@120']);
    expect(clock.now()).toBe(125);
    expect(clock.runUntilIdle()).toBe(2);
    expect(seen.slice(3)).toEqual(['b@130', 'c@130']);
    expect(clock.now()).toBe(130);
    expect(() => clock.advance(-1)).toThrow(RangeError);
  });

  it('refuses to spin forever on a timer that re-arms itself', () => {
    const clock = new VirtualClock();
    const tick = (): void => void clock.setTimer(clock.now() + 1, tick);
    tick();
    expect(() => clock.runUntilIdle(1000)).toThrow(/not idle/);
  });

  it('with carrier sense, a link that hears the channel busy waits instead of colliding', async () => {
    const { clock, medium, node } = await setup(['a', 'b', 'c']);
    const t = medium.airtime.airtimeMs(16);
    node('a').link.send(bytes(16, 1));
    clock.advance(t / 2);
    node('b').link.send(bytes(16, 2)); // b hears a: defers past a's end
    clock.advance(10 * t);
    expect(node('c').got).toHaveLength(2);
    expect(node('c').link.counters.drops['collision']).toBeUndefined();
  });
});
