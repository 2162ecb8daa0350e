/** Tests for LoraAirtimeModel (src/link/airtime/lora-model.ts), the AirtimeModel over lora.ts. */
import { describe, expect, it } from 'vitest';
import { LoraAirtimeModel } from '../src/link/airtime/lora-model.js';
import { LoraParamError, loraAirtime, loraMaxPayloadWithin, type LoraParams } from '../src/link/airtime/lora.js';
import type { AirtimeModel } from '../src/link/airtime/model.js';

const SF9: LoraParams = { sf: 9, bandwidth: 125_000, cr: 5 };
const SF12: LoraParams = { sf: 12, bandwidth: 125_000, cr: 8, preamble: 16, crc: false };

describe('LoraAirtimeModel', () => {
  it('is an AirtimeModel of kind lora with 255-byte frames', () => {
    const m: AirtimeModel = new LoraAirtimeModel(SF9);
    expect(m.kind).toBe('lora');
    expect(m.maxBytes).toBe(255);
  });

  it('matches loraAirtime and loraMaxPayloadWithin for every size', () => {
    for (const p of [SF9, SF12]) {
      const m = new LoraAirtimeModel(p);
      for (let b = 0; b <= 255; b++) {
        expect(m.airtimeMs(b)).toBe(loraAirtime(p, b).airtimeMs);
        expect(m.maxBytesWithin(m.airtimeMs(b))).toBe(loraMaxPayloadWithin(p, m.airtimeMs(b)));
      }
    }
    expect(new LoraAirtimeModel(SF9).airtimeMs(51)).toBe(328.704);
    // Sizes share airtimes (a block of symbols carries 4.5 bytes at SF9), so the largest size
    // within 328.704 ms is the last one with that airtime.
    const m = new LoraAirtimeModel(SF9);
    const within = m.maxBytesWithin(328.704);
    expect(within).toBeGreaterThanOrEqual(51);
    expect(m.airtimeMs(within)).toBe(328.704);
    expect(m.airtimeMs(within + 1)).toBeGreaterThan(328.704);
    expect(new LoraAirtimeModel(SF9).maxBytesWithin(0)).toBe(-1);
  });

  it('keeps its own copy of the parameters', () => {
    const p: LoraParams = { ...SF9 };
    const m = new LoraAirtimeModel(p);
    p.sf = 12;
    expect(m.params.sf).toBe(9);
    expect(Object.isFrozen(m.params)).toBe(true);
    expect(m.airtimeMs(51)).toBe(328.704);
  });

  it('validates in the constructor and refuses bad sizes', () => {
    expect(() => new LoraAirtimeModel({ sf: 13, bandwidth: 125_000, cr: 5 })).toThrow(LoraParamError);
    expect(() => new LoraAirtimeModel({ sf: 9, bandwidth: 100_000, cr: 5 })).toThrow(RangeError);
    const m = new LoraAirtimeModel(SF9);
    for (const bad of [-1, 256, 1.5]) expect(() => m.airtimeMs(bad)).toThrow(RangeError);
  });
});
