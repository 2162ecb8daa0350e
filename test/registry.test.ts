import { describe, expect, it } from 'vitest';
import { InterfaceRegistry } from '../src/link/registry.js';
import { BaseLink, FrameTooLargeError, type LinkState, type QueuedFrame, type SendOptions } from '../src/link/link.js';
import { LoraAirtimeModel } from '../src/link/airtime/lora-model.js';
import { FixedRateAirtimeModel } from '../src/link/airtime/fixed-rate.js';
import type { AirtimeModel } from '../src/link/airtime/model.js';

/** A link that records what it is given to send. */
class RecordingLink extends BaseLink {
  readonly written: QueuedFrame[] = [];
  constructor(name: string, kind: string, mtu: number, airtime: AirtimeModel, readonly loraParams?: { frequency: number; bandwidth: number; sf: number }) {
    super(name, kind, mtu, airtime, undefined, 16);
  }
  async open(): Promise<void> {
    this.setState('up');
  }
  async close(): Promise<void> {
    this.setState('closed');
  }
  force(state: LinkState): void {
    this.setState(state);
  }
  protected pump(): void {
    while (this.state === 'up' && this.queue.length > 0) {
      const f = this.queue.shift()!;
      this.written.push(f);
      this.sent(f.data.length);
    }
  }
}

const lora = () =>
  new RecordingLink('lora0', 'lora-serial', 255, new LoraAirtimeModel({ sf: 9, bandwidth: 125_000, cr: 5 }), {
    frequency: 869_525_000,
    bandwidth: 125_000,
    sf: 9,
  });

describe('InterfaceRegistry', () => {
  it('registers interfaces with their band rules and reports what each can carry', async () => {
    const reg = new InterfaceRegistry();
    const l = lora();
    await l.open();
    reg.add(l, { region: 'eu868', cap: { shortPercent: 50 } });
    const wifi = new RecordingLink('wlan0', 'udp', 1200, new FixedRateAirtimeModel({}));
    reg.add(wifi);
    expect(reg.capabilities().map((c) => [c.name, c.mtu, c.airtime.kind, c.up])).toEqual([
      ['lora0', 255, 'lora', true],
      ['wlan0', 1200, 'fixed-rate', false],
    ]);
    const [s] = reg.status(0);
    expect(s).toMatchObject({ name: 'lora0', kind: 'lora-serial', state: 'up', region: 'eu868', subBand: '869.4-869.65', mtu: 255 });
    expect(s!.pacer.windows.map((w) => [w.name, w.limitMs])).toEqual([
      ['eu868 869.4-869.65 MHz duty cycle', 360_000],
      ['airtime cap, short window', 7_500],
    ]);
  });

  it('refuses a duplicate name and a channel outside the region', () => {
    const reg = new InterfaceRegistry();
    reg.add(lora(), { region: 'eu868' });
    expect(() => reg.add(lora(), { region: 'eu868' })).toThrow(/already registered/);
    const other = new RecordingLink('x', 'lora-serial', 255, new LoraAirtimeModel({ sf: 9, bandwidth: 125_000, cr: 5 }), {
      frequency: 868_650_000,
      bandwidth: 125_000,
      sf: 9,
    });
    expect(() => reg.add(other, { region: 'eu868' })).toThrow(/does not lie inside one eu868 band/);
  });

  it('sends through the pacer: frames go when the link is up and the budget allows', async () => {
    const reg = new InterfaceRegistry();
    const l = lora();
    reg.add(l, { region: 'eu868', cap: { shortPercent: 5 } }); // 750 ms per 15 s
    const frame = new Uint8Array(51); // 328.704 ms at SF9
    for (let i = 0; i < 3; i++) expect(reg.send('lora0', 0, { flow: 'f', priority: 'bulk', data: frame }).ok).toBe(true);
    expect(reg.poll(0)).toBe(0); // the link is down: nothing leaves the pacer
    await l.open();
    expect(reg.poll(0)).toBe(1);
    const next = reg.nextDeadline(0)!;
    expect(next).toBeCloseTo(328.704, 6);
    expect(reg.poll(next)).toBe(1);
    // Two frames used 657 ms of the 750 ms short window: the third waits for the window to slide.
    const third = reg.nextDeadline(next)!;
    expect(third).toBeGreaterThan(14_000);
    expect(reg.poll(third)).toBe(1);
    expect(l.written).toHaveLength(3);
    expect(() => reg.send('nope', 0, { flow: 'f', priority: 'bulk', data: frame })).toThrow(/no interface named 'nope'/);
  });

  it('passes dwell refusals back to the sender with the size that fits', () => {
    const reg = new InterfaceRegistry();
    const l = new RecordingLink('us', 'lora-serial', 255, new LoraAirtimeModel({ sf: 10, bandwidth: 125_000, cr: 5 }), {
      frequency: 903_900_000,
      bandwidth: 125_000,
      sf: 10,
    });
    reg.add(l, { region: 'us915' });
    expect(reg.send('us', 0, { flow: 'f', priority: 'bulk', data: new Uint8Array(51) })).toMatchObject({ ok: false, reason: 'dwell', maxBytes: 24 });
  });
});

/**
 * A link that takes each frame it is given but answers false ("no more now") until `release()`,
 * which emits 'ready'. Nothing it is given is dropped.
 */
class GatedLink extends RecordingLink {
  readonly got: QueuedFrame[] = [];
  accepting = false;
  constructor(name: string, mtu = 255) {
    super(name, 'test', mtu, new FixedRateAirtimeModel({ maxBytes: mtu }));
  }
  override send(frame: Uint8Array, options?: SendOptions): boolean {
    this.got.push({ data: frame.slice(), options });
    return this.accepting;
  }
  release(): void {
    this.accepting = true;
    this.emit('ready');
  }
  protected override pump(): void {}
}

/** A link whose send throws what `fail` returns for a frame (or takes it when that is undefined). */
class ThrowingLink extends GatedLink {
  constructor(name: string, private readonly fail: (frame: Uint8Array, link: ThrowingLink) => Error | undefined) {
    super(name);
    this.accepting = true;
  }
  override send(frame: Uint8Array, options?: SendOptions): boolean {
    const err = this.fail(frame, this);
    if (err) throw err;
    return super.send(frame, options);
  }
}

const bytes = (tag: number, length = 10): Uint8Array => new Uint8Array(length).fill(tag);
const tags = (frames: QueuedFrame[]): number[] => frames.map((f) => f.data[0]!);

describe('InterfaceRegistry backpressure', () => {
  it('a link that says "no more" blocks its interface: frames wait in the pacer, nothing is dropped, all go in order after ready', async () => {
    let wakes = 0;
    const reg = new InterfaceRegistry({ onWake: () => wakes++ });
    const l = new GatedLink('g0');
    reg.add(l);
    await l.open();
    expect(wakes).toBe(1); // coming up wakes the loop
    for (let k = 1; k <= 6; k++) expect(reg.send('g0', 0, { flow: 'f', priority: 'bulk', data: bytes(k) }).ok).toBe(true);
    expect(reg.poll(0)).toBe(1); // the link took the first frame and said false
    expect(tags(l.got)).toEqual([1]);
    let [s] = reg.status(0);
    expect(s!.blocked).toBe(true);
    expect(s!.pacer.queuedFrames).toBe(5); // held in the pacer
    expect(reg.nextDeadline(0)).toBeUndefined(); // a blocked interface sets no deadline
    expect(reg.ready('g0', 0, 'control')).toBe(false);
    expect(reg.poll(10)).toBe(0);
    expect(l.got).toHaveLength(1);

    const woken = new Promise<void>((resolve) => l.once('ready', () => resolve()));
    setImmediate(() => l.release());
    await woken;
    expect(wakes).toBe(2);
    [s] = reg.status(10);
    expect(s!.blocked).toBe(false);
    expect(reg.nextDeadline(10)).toBe(10);
    expect(reg.poll(10)).toBe(5);
    expect(tags(l.got)).toEqual([1, 2, 3, 4, 5, 6]);
    [s] = reg.status(10);
    expect(s!.pacer.queuedFrames).toBe(0);
    expect(reg.get('g0')!.pacer.counters.drops).toEqual({ dwell: 0, 'too-large': 0, 'queue-full': 0, 'flow-full': 0, evicted: 0, superseded: 0 });
    expect(l.counters.drops).toEqual({});
    expect(s!.refused).toEqual({});
  });

  it('blocks again on the next false; a link coming back up is asked again', async () => {
    const reg = new InterfaceRegistry();
    const l = new GatedLink('g0');
    reg.add(l);
    await l.open();
    for (let k = 1; k <= 4; k++) reg.send('g0', 0, { flow: 'f', priority: 'bulk', data: bytes(k) });
    expect(reg.poll(0)).toBe(1);
    l.force('reconnecting');
    expect(reg.poll(0)).toBe(0);
    l.force('up'); // a reconnect may have emptied the link's queue without a 'ready'
    expect(reg.status(0)[0]!.blocked).toBe(false);
    expect(reg.poll(0)).toBe(1);
    expect(reg.status(0)[0]!.blocked).toBe(true);
    expect(tags(l.got)).toEqual([1, 2]);
  });

  it('a link whose send throws is counted per reason; poll carries on with other frames and interfaces and never throws', async () => {
    const reg = new InterfaceRegistry();
    // Refuses frames over 20 bytes (a driver with a smaller limit than it declared) and frames tagged 9.
    const bad = new ThrowingLink('bad', (f) =>
      f.length > 20 ? new FrameTooLargeError('too large') : f[0] === 9 ? new TypeError('driver bug') : undefined,
    );
    const good = new GatedLink('good');
    good.accepting = true;
    reg.add(bad);
    reg.add(good);
    await bad.open();
    await good.open();
    reg.send('bad', 0, { flow: 'f', priority: 'bulk', data: bytes(1, 30) });
    reg.send('bad', 0, { flow: 'f', priority: 'bulk', data: bytes(2) });
    reg.send('bad', 0, { flow: 'f', priority: 'bulk', data: bytes(9) });
    reg.send('bad', 0, { flow: 'f', priority: 'bulk', data: bytes(3, 40) });
    reg.send('bad', 0, { flow: 'f', priority: 'bulk', data: bytes(4) });
    reg.send('good', 0, { flow: 'f', priority: 'bulk', data: bytes(5) });
    let n = -1;
    expect(() => (n = reg.poll(0))).not.toThrow();
    expect(n).toBe(3);
    expect(tags(bad.got)).toEqual([2, 4]);
    expect(tags(good.got)).toEqual([5]);
    const [sb, sg] = reg.status(0);
    expect(sb!.refused).toEqual({ 'too-large': 2, TypeError: 1 });
    expect(sb!.blocked).toBe(false);
    expect(sg!.refused).toEqual({});
  });

  it('a link that closes under send is counted as closed', async () => {
    const reg = new InterfaceRegistry();
    const l = new ThrowingLink('c0', (_f, link) => {
      link.force('closed');
      return new Error('link is closed');
    });
    reg.add(l);
    await l.open();
    reg.send('c0', 0, { flow: 'f', priority: 'bulk', data: bytes(1) });
    reg.send('c0', 0, { flow: 'f', priority: 'bulk', data: bytes(2) });
    expect(reg.poll(0)).toBe(0);
    const [s] = reg.status(0);
    expect(s!.refused).toEqual({ closed: 1 });
    expect(s!.pacer.queuedFrames).toBe(1); // the link is closed now: the rest waits
  });

  it("events a link emits from inside poll do not call onWake (the loop is running); remove stops listening", async () => {
    let wakes = 0;
    const reg = new InterfaceRegistry({ onWake: () => wakes++ });
    const l = new GatedLink('g0');
    reg.add(l);
    await l.open();
    wakes = 0;
    l.send = (frame: Uint8Array): boolean => {
      l.got.push({ data: frame.slice(), options: undefined });
      l.emit('ready');
      return true;
    };
    reg.send('g0', 0, { flow: 'f', priority: 'bulk', data: bytes(1) });
    reg.send('g0', 0, { flow: 'f', priority: 'bulk', data: bytes(2) });
    expect(reg.poll(0)).toBe(2);
    expect(wakes).toBe(0);
    l.emit('ready');
    expect(wakes).toBe(1);
    expect(reg.remove('g0')).toBe(l);
    l.emit('ready');
    l.force('down');
    l.force('up');
    expect(wakes).toBe(1);
  });

  it('HELLOs queued while a link is down are superseded: after it comes up exactly one generation goes out', async () => {
    let wakes = 0;
    const reg = new InterfaceRegistry({ onWake: () => wakes++ });
    const l = new GatedLink('g0');
    l.accepting = true;
    reg.add(l);
    // Link down: three HELLOs of two fragments each, and one data frame.
    for (const seq of [1, 2, 3]) {
      for (const frag of [0, 1]) {
        expect(reg.send('g0', seq * 1000, { flow: 'mesh-control', priority: 'control', data: bytes(seq * 10 + frag), kind: 'hello', generation: seq }).ok).toBe(true);
      }
    }
    reg.send('g0', 3000, { flow: 'data', priority: 'bulk', data: bytes(99) });
    expect(reg.poll(3000)).toBe(0);
    expect(reg.nextDeadline(3000)).toBeUndefined(); // down: woken by 'up', not by a deadline
    await l.open();
    expect(wakes).toBe(1);
    expect(reg.poll(4000)).toBe(3);
    expect(tags(l.got)).toEqual([30, 31, 99]);
    expect(reg.get('g0')!.pacer.counters.drops.superseded).toBe(4);
  });
});

describe('InterfaceRegistry readiness for the layers above', () => {
  /** A LoRa interface with a 5 % cap over 15 s (750 ms), its budget spent by two frames. */
  const spent = async () => {
    const reg = new InterfaceRegistry();
    const l = lora();
    reg.add(l, { region: 'eu868', cap: { shortPercent: 5 } });
    await l.open();
    const frame = new Uint8Array(51); // 328.704 ms at SF9
    reg.send('lora0', 0, { flow: 'f', priority: 'bulk', data: frame });
    reg.send('lora0', 0, { flow: 'f', priority: 'bulk', data: frame });
    reg.poll(0);
    const t = reg.nextDeadline(0)!;
    expect(reg.poll(t)).toBe(1);
    return { reg, l, t };
  };

  it('ready = up, not blocked, and the pacer ready; false for an unknown name', async () => {
    const reg = new InterfaceRegistry();
    const l = new GatedLink('g0');
    reg.add(l);
    expect(reg.ready('g0', 0, 'bulk')).toBe(false); // down
    await l.open();
    expect(reg.ready('g0', 0, 'bulk')).toBe(true);
    reg.send('g0', 0, { flow: 'f', priority: 'bulk', data: bytes(1) });
    reg.poll(0); // the link said false
    expect(reg.ready('g0', 0, 'bulk')).toBe(false);
    l.release();
    expect(reg.ready('g0', 0, 'bulk')).toBe(true);
    expect(reg.ready('nope', 0, 'bulk')).toBe(false);
    expect(() => reg.wantReady('nope', 'bulk')).toThrow(/no interface named 'nope'/);
  });

  it('a waiter on an empty queue is woken when the budget frees up, handed out once, then forgotten', async () => {
    const { reg, t } = await spent();
    const now = t + 1;
    expect(reg.get('lora0')!.pacer.status(now).queuedFrames).toBe(0);
    expect(reg.ready('lora0', now, 'bulk')).toBe(false);
    expect(reg.nextDeadline(now)).toBeUndefined(); // nothing queued, nobody waiting
    reg.wantReady('lora0', 'bulk');
    reg.wantReady('lora0', 'bulk'); // once is enough
    reg.wantReady('lora0', 'control');
    expect(reg.takeReady(now)).toEqual([]);
    const at = reg.nextDeadline(now)!;
    expect(at).toBeGreaterThan(now);
    expect(at).toBe(reg.get('lora0')!.pacer.readyAt(now, 'bulk'));
    expect(reg.takeReady(at - 1)).toEqual([]);
    expect(reg.takeReady(at)).toEqual([
      { iface: 'lora0', priority: 'control' },
      { iface: 'lora0', priority: 'bulk' },
    ]);
    expect(reg.takeReady(at)).toEqual([]);
    expect(reg.nextDeadline(at)).toBeUndefined();
  });

  it('waiters on a down or blocked interface set no deadline (its link event wakes the loop)', async () => {
    const { reg, l, t } = await spent();
    reg.wantReady('lora0', 'bulk');
    expect(reg.nextDeadline(t + 1)).toBeDefined();
    l.force('reconnecting');
    expect(reg.nextDeadline(t + 1)).toBeUndefined();
    expect(reg.takeReady(60_000)).toEqual([]);
    l.force('up');
    expect(reg.takeReady(60_000)).toEqual([{ iface: 'lora0', priority: 'bulk' }]);
  });
});
