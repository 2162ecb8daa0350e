import { describe, expect, it } from 'vitest';
import { airtimeLimits } from '../src/link/airtime-limits.js';
import { bandRules } from '../src/link/airtime/regions.js';
import { LoraAirtimeModel } from '../src/link/airtime/lora-model.js';
import { Pacer } from '../src/link/pacer.js';

describe('airtimeLimits', () => {
  it('turns an EU868 sub-band and an operator cap into pacer budgets', () => {
    const limits = airtimeLimits(bandRules('eu868', 869_525_000, 125_000), { shortPercent: 5, longPercent: 2 });
    expect(limits).toEqual({
      budgets: [
        { name: 'eu868 869.4-869.65 MHz duty cycle', windowMs: 3_600_000, fraction: 0.1 },
        { name: 'airtime cap, short window', windowMs: 15_000, fraction: 0.05 },
        { name: 'airtime cap, long window', windowMs: 3_600_000, fraction: 0.02 },
      ],
    });
  });

  it('carries the US915 dwell limit, which the pacer enforces per frame', () => {
    const limits = airtimeLimits(bandRules('us915', 903_900_000, 125_000));
    expect(limits).toEqual({ budgets: [], dwellMs: 400 });
    const pacer = new Pacer({ model: new LoraAirtimeModel({ sf: 10, bandwidth: 125_000, cr: 5 }), ...limits });
    expect(pacer.enqueue(0, { flow: 'f', priority: 'bulk', bytes: 51, payload: new Uint8Array(51) })).toMatchObject({
      ok: false,
      reason: 'dwell',
      maxBytes: 24,
    });
    expect(pacer.enqueue(0, { flow: 'f', priority: 'bulk', bytes: 24, payload: new Uint8Array(24) }).ok).toBe(true);
  });

  it('sets nothing for Wi-Fi, and refuses nonsense caps', () => {
    expect(airtimeLimits(bandRules('none', 2_412_000_000))).toEqual({ budgets: [] });
    expect(() => airtimeLimits(bandRules('none', 0), { shortPercent: 0 })).toThrow(/short airtime cap/);
    expect(() => airtimeLimits(bandRules('none', 0), { longPercent: 150 })).toThrow(/long airtime cap/);
  });
});
