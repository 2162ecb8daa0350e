import { describe, expect, it } from 'vitest';
import { decodeTime, encodeTime } from '../src/rfc5444/time-tlv.js';

describe('RFC 5497 time TLV values', () => {
  it('decodes the formula (1 + a/8) · 2^b / 1024 s', () => {
    expect(decodeTime(0)).toBeCloseTo(1000 / 1024, 9);
    expect(decodeTime((10 << 3) | 4)).toBeCloseTo(1.5 * 1024 * (1000 / 1024), 9); // 1.5 s
  });

  it('encodes to the smallest code not shorter than the time, for every code', () => {
    for (let code = 0; code < 256; code++) {
      const t = decodeTime(code);
      expect(encodeTime(t)).toBe(code);
      if (code > 0) expect(decodeTime(encodeTime(t * 0.999 + decodeTime(code - 1) * 0.001))).toBeGreaterThanOrEqual(t * 0.999);
    }
    expect(decodeTime(encodeTime(2_000))).toBeGreaterThanOrEqual(2_000);
    expect(encodeTime(1e12)).toBe(255);
  });
});
