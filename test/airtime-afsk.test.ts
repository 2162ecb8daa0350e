/**
 * Tests for the AX.25 airtime model (src/link/airtime/afsk.ts): hand-computed airtimes at 1200 and
 * 9600 baud, the worst-case bit-stuffing count checked against a real bit stuffer, monotonicity,
 * what TXDELAY and TXTAIL add, maxBytesWithin against airtimeMs, and rejected input.
 *
 * Arithmetic used below: n = (bytes + 2) · 8 frame-and-FCS bits, stuffed to n + floor(n / 5),
 * plus 16 flag bits; airtime = txDelay + bits · 1000 / baud + txTail. Expected values are written
 * as exact fractions; JS divides them with one rounding, as the model does.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { AX25_DEFAULT_MAX_BYTES, Ax25AirtimeModel } from '../src/link/airtime/afsk.js';

const afsk = new Ax25AirtimeModel({ modem: 'afsk1200' });
const fsk = new Ax25AirtimeModel({ modem: 'fsk9600' });
const afskBare = new Ax25AirtimeModel({ modem: 'afsk1200', txDelayMs: 0, txTailMs: 0 });
const fskBare = new Ax25AirtimeModel({ modem: 'fsk9600', txDelayMs: 0, txTailMs: 0 });

/** HDLC zero-bit insertion on `data` (LSB first, as AX.25 sends): how many zeros get inserted. */
function stuffedZeros(data: Uint8Array): number {
  let run = 0;
  let inserted = 0;
  for (const byte of data) {
    for (let i = 0; i < 8; i++) {
      if ((byte >> i) & 1) {
        run++;
        if (run === 5) {
          inserted++; // a 0 goes out here and ends the run
          run = 0;
        }
      } else {
        run = 0;
      }
    }
  }
  return inserted;
}

describe('hand-computed airtimes', () => {
  it('0 bytes at 1200 baud: 16 FCS bits + 3 stuffed + 16 flag bits = 35 bits', () => {
    // n = 2·8 = 16, floor(16/5) = 3, bits = 16 + 16 + 3 = 35.
    expect(afsk.frameBits(0)).toBe(35);
    // 300 + 35·1000/1200 + 100 = 400 + 175/6 = 2575/6 ≈ 429.1667 ms
    expect(afsk.airtimeMs(0)).toBe(2575 / 6);
    expect(afskBare.airtimeMs(0)).toBe(175 / 6);
  });

  it('3 bytes: n = 40 is a multiple of 5, so the worst case is floor(n/5) = 8, not 7', () => {
    // 40 all-ones bits take a 0 after bits 5, 10, ..., 40: eight zeros, the last before the flag.
    expect(stuffedZeros(new Uint8Array(5).fill(0xff))).toBe(8);
    expect(afsk.frameBits(3)).toBe(16 + 40 + 8);
    // 64 bits at 1200 baud = 64000/1200 = 160/3 ms
    expect(afskBare.airtimeMs(3)).toBe(160 / 3);
  });

  it('18 bytes (a UI frame with two addresses and 2 info bytes) at 1200 baud', () => {
    // n = 20·8 = 160, floor(160/5) = 32, bits = 16 + 160 + 32 = 208
    // 400 + 208000/1200 = 400 + 520/3 = 1720/3 ≈ 573.333 ms
    expect(afsk.frameBits(18)).toBe(208);
    expect(afsk.airtimeMs(18)).toBe(1720 / 3);
  });

  it('100 bytes at 1200 and at 9600 baud', () => {
    // n = 102·8 = 816, floor(816/5) = 163, bits = 16 + 816 + 163 = 995
    expect(afsk.frameBits(100)).toBe(995);
    // 1200: 400 + 995000/1200 = 400 + 4975/6 = 7375/6 ≈ 1229.167 ms
    expect(afsk.airtimeMs(100)).toBe(7375 / 6);
    // 9600: 995000/9600 = 4975/48 ≈ 103.646 ms bare; 400 + 4975/48 = 24175/48 with defaults
    expect(fskBare.airtimeMs(100)).toBe(4975 / 48);
    expect(fsk.airtimeMs(100)).toBe(24175 / 48);
  });

  it('the default maximum, 329 bytes, at 1200 and 9600 baud', () => {
    // n = 331·8 = 2648, floor(2648/5) = 529, bits = 16 + 2648 + 529 = 3193
    expect(afsk.maxBytes).toBe(329);
    expect(afsk.frameBits(329)).toBe(3193);
    // 1200: 400 + 3193000/1200 = 400 + 15965/6 = 18365/6 ≈ 3060.833 ms
    expect(afsk.airtimeMs(329)).toBe(18365 / 6);
    // 9600: 400 + 3193000/9600 = 400 + 15965/48 = 35165/48 ≈ 732.604 ms
    expect(fsk.airtimeMs(329)).toBe(35165 / 48);
  });
});

describe('worst-case bit stuffing', () => {
  it('no frame gets more inserted zeros than floor(n/5); all-ones frames get exactly that', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (data) => {
        expect(stuffedZeros(data)).toBeLessThanOrEqual(Math.floor((data.length * 8) / 5));
      }),
    );
    for (let len = 0; len <= 40; len++) {
      expect(stuffedZeros(new Uint8Array(len).fill(0xff))).toBe(Math.floor((len * 8) / 5));
    }
  });

  it('the model counts the worst case for frame plus FCS', () => {
    for (let bytes = 0; bytes <= 40; bytes++) {
      const fcsAndFrame = new Uint8Array(bytes + 2).fill(0xff);
      expect(afsk.frameBits(bytes)).toBe(16 + (bytes + 2) * 8 + stuffedZeros(fcsAndFrame));
    }
  });
});

describe('shape', () => {
  it('kind, baud and defaults', () => {
    expect(afsk.kind).toBe('afsk1200');
    expect(afsk.baud).toBe(1200);
    expect(fsk.kind).toBe('fsk9600');
    expect(fsk.baud).toBe(9600);
    expect(afsk.txDelayMs).toBe(300);
    expect(afsk.txTailMs).toBe(100);
    expect(AX25_DEFAULT_MAX_BYTES).toBe(329);
  });

  it('airtime strictly increases with size at both rates', () => {
    for (const m of [afsk, fsk, afskBare, fskBare]) {
      for (let b = 1; b <= m.maxBytes; b++) expect(m.airtimeMs(b)).toBeGreaterThan(m.airtimeMs(b - 1));
    }
  });

  it('TXDELAY and TXTAIL add their own time, nothing more', () => {
    const m = new Ax25AirtimeModel({ modem: 'afsk1200', txDelayMs: 250, txTailMs: 30 });
    const onlyDelay = new Ax25AirtimeModel({ modem: 'fsk9600', txDelayMs: 120, txTailMs: 0 });
    const onlyTail = new Ax25AirtimeModel({ modem: 'fsk9600', txDelayMs: 0, txTailMs: 70 });
    for (const b of [0, 1, 17, 100, 255, 329]) {
      expect(m.airtimeMs(b) - afskBare.airtimeMs(b)).toBeCloseTo(280, 9);
      expect(onlyDelay.airtimeMs(b) - fskBare.airtimeMs(b)).toBeCloseTo(120, 9);
      expect(onlyTail.airtimeMs(b) - fskBare.airtimeMs(b)).toBeCloseTo(70, 9);
    }
  });

  it('the bit part at 9600 baud is an eighth of that at 1200', () => {
    for (const b of [0, 18, 100, 329]) {
      expect(fskBare.airtimeMs(b) * 8).toBeCloseTo(afskBare.airtimeMs(b), 9);
    }
  });

  it('honours a smaller maxBytes', () => {
    const m = new Ax25AirtimeModel({ modem: 'afsk1200', maxBytes: 64 });
    expect(m.maxBytes).toBe(64);
    expect(() => m.airtimeMs(65)).toThrow(RangeError);
    expect(m.maxBytesWithin(Infinity)).toBe(64);
  });
});

describe('maxBytesWithin', () => {
  it('returns each size for exactly its own airtime', () => {
    for (const m of [afsk, fsk, afskBare]) {
      for (let b = 0; b <= m.maxBytes; b++) expect(m.maxBytesWithin(m.airtimeMs(b))).toBe(b);
    }
  });

  it('is the largest size that fits, for any limit', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(afsk, fsk, afskBare, fskBare),
        fc.double({ min: -10, max: 4000, noNaN: true }),
        (m, limit) => {
          const n = m.maxBytesWithin(limit);
          if (n === -1) expect(m.airtimeMs(0)).toBeGreaterThan(limit);
          else expect(m.airtimeMs(n)).toBeLessThanOrEqual(limit);
          if (n < m.maxBytes) expect(m.airtimeMs(n + 1)).toBeGreaterThan(limit);
        },
      ),
    );
  });

  it('−1 below the fixed cost, maxBytes for an unbounded limit, RangeError for NaN', () => {
    expect(afsk.maxBytesWithin(400)).toBe(-1); // TXDELAY + TXTAIL alone
    expect(afsk.maxBytesWithin(2575 / 6 - 1e-9)).toBe(-1);
    expect(afsk.maxBytesWithin(Infinity)).toBe(329);
    expect(afsk.maxBytesWithin(-Infinity)).toBe(-1);
    expect(() => afsk.maxBytesWithin(Number.NaN)).toThrow(RangeError);
  });
});

describe('rejected input', () => {
  it('bad sizes', () => {
    for (const bad of [-1, 1.5, 330, Number.NaN, Infinity, '3' as unknown as number]) {
      expect(() => afsk.airtimeMs(bad)).toThrow(RangeError);
    }
  });

  it('bad options', () => {
    const bad: unknown[] = [
      { modem: 'afsk300' },
      {},
      { modem: 'afsk1200', txDelayMs: -1 },
      { modem: 'afsk1200', txDelayMs: Number.NaN },
      { modem: 'fsk9600', txTailMs: Infinity },
      { modem: 'fsk9600', txTailMs: '10' },
      { modem: 'afsk1200', maxBytes: 0 },
      { modem: 'afsk1200', maxBytes: 2.5 },
    ];
    for (const options of bad) {
      expect(() => new Ax25AirtimeModel(options as never)).toThrow(RangeError);
    }
  });
});
