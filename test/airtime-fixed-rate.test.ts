/** Tests for the fixed bit-rate airtime model (src/link/airtime/fixed-rate.ts). */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { FixedRateAirtimeModel } from '../src/link/airtime/fixed-rate.js';

describe('FixedRateAirtimeModel', () => {
  it('uncapped: every frame costs 0 ms and every size fits', () => {
    for (const m of [new FixedRateAirtimeModel(), new FixedRateAirtimeModel({ bitRate: Infinity })]) {
      expect(m.kind).toBe('fixed-rate');
      expect(m.maxBytes).toBe(1200);
      expect(m.airtimeMs(0)).toBe(0);
      expect(m.airtimeMs(1200)).toBe(0);
      expect(m.maxBytesWithin(0)).toBe(1200);
      expect(m.maxBytesWithin(-1)).toBe(-1);
    }
  });

  it('capped: bytes · 8 / bitRate', () => {
    const m = new FixedRateAirtimeModel({ bitRate: 9600 });
    expect(m.airtimeMs(1200)).toBe(1000); // 9600 bits at 9600 bit/s
    expect(m.airtimeMs(1)).toBe(5 / 6); // 8000/9600
    const slow = new FixedRateAirtimeModel({ bitRate: 1200, maxBytes: 256 });
    expect(slow.airtimeMs(100)).toBe(2000 / 3); // 800 bits at 1200 bit/s
    expect(slow.maxBytesWithin(2000 / 3)).toBe(100);
    expect(slow.maxBytesWithin(Infinity)).toBe(256);
    expect(slow.maxBytesWithin(0)).toBe(0);
  });

  it('maxBytesWithin is the largest size that fits', () => {
    fc.assert(
      fc.property(
        fc.double({ min: 1, max: 1e7, noNaN: true }),
        fc.integer({ min: 1, max: 2000 }),
        fc.double({ min: -1, max: 20_000, noNaN: true }),
        (bitRate, maxBytes, limit) => {
          const m = new FixedRateAirtimeModel({ bitRate, maxBytes });
          const n = m.maxBytesWithin(limit);
          if (n === -1) expect(limit).toBeLessThan(0);
          else expect(m.airtimeMs(n)).toBeLessThanOrEqual(limit);
          if (n < maxBytes) expect(m.airtimeMs(n + 1)).toBeGreaterThan(limit);
        },
      ),
    );
  });

  it('rejects bad options, sizes and limits', () => {
    for (const options of [{ bitRate: 0 }, { bitRate: -5 }, { bitRate: Number.NaN }, { maxBytes: 0 }, { maxBytes: 1.5 }]) {
      expect(() => new FixedRateAirtimeModel(options)).toThrow(RangeError);
    }
    const m = new FixedRateAirtimeModel({ bitRate: 1000 });
    for (const bad of [-1, 0.5, 1201, Number.NaN]) expect(() => m.airtimeMs(bad)).toThrow(RangeError);
    expect(() => m.maxBytesWithin(Number.NaN)).toThrow(RangeError);
  });
});
