import { describe, expect, it } from 'vitest';
import { InterfaceRegistry } from '../src/link/registry.js';
import { BaseLink, type LinkState, type QueuedFrame } from '../src/link/link.js';
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
