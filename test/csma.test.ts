/**
 * Tests for KISS CSMA parameters (src/link/csma.ts): the defaults, exact KISS bytes, the 10 ms
 * rounding of times, the P byte (p = (P + 1) / 256) at its edges, and errors naming the field.
 */
import { describe, expect, it } from 'vitest';
import { KissCommand, KissDecoder } from '../firmware-protocol/kiss.js';
import {
  CsmaConfigError,
  DEFAULT_KISS_CSMA,
  kissCsmaConfig,
  kissCsmaFrames,
  kissCsmaFramesFor,
  kissPersistenceByte,
  kissTimingUnits,
  validateKissCsma,
  type KissCsmaConfig,
} from '../src/link/csma.js';

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex').replace(/(..)(?!$)/g, '$1 ');

describe('defaults', () => {
  it("are Dire Wolf's: TXDELAY 300 ms, p 0.25, SLOTTIME 100 ms, TXTAIL 100 ms, half duplex", () => {
    expect(DEFAULT_KISS_CSMA).toEqual({
      txDelayMs: 300, persistence: 0.25, slotTimeMs: 100, txTailMs: 100, fullDuplex: false,
    });
    expect(Object.isFrozen(DEFAULT_KISS_CSMA)).toBe(true);
    expect(kissCsmaConfig()).toEqual(DEFAULT_KISS_CSMA);
  });

  it('overrides replace single fields; undefined leaves the default', () => {
    expect(kissCsmaConfig({ txDelayMs: 500, fullDuplex: true, txTailMs: undefined })).toEqual({
      ...DEFAULT_KISS_CSMA, txDelayMs: 500, fullDuplex: true,
    });
  });
});

describe('kissCsmaFrames', () => {
  it('encodes the defaults on port 0 byte for byte', () => {
    expect(kissCsmaFrames(DEFAULT_KISS_CSMA).map(hex)).toEqual([
      'c0 01 1e c0', // TXDELAY 30 × 10 ms
      'c0 02 3f c0', // P 63: p = 64/256
      'c0 03 0a c0', // SLOTTIME 10 × 10 ms
      'c0 04 0a c0', // TXTAIL 10 × 10 ms
      'c0 05 00 c0', // FULLDUPLEX off
    ]);
  });

  it('sends only what the operator set: nothing by default, so the TNC keeps its own settings', () => {
    expect(kissCsmaFramesFor({})).toEqual([]);
    expect(kissCsmaFramesFor({ txTailMs: 50 }).map(hex)).toEqual(['c0 04 05 c0']);
    expect(kissCsmaFramesFor({ fullDuplex: true, txDelayMs: 200 }, 1).map(hex)).toEqual(['c0 11 14 c0', 'c0 15 01 c0']);
    expect(() => kissCsmaFramesFor({ persistence: 2 })).toThrow(CsmaConfigError);
  });

  it('puts the port in the high nibble and stuffs argument bytes C0 and DB', () => {
    // 1920 ms → 192 = C0 (sent DB DC); p = 220/256 → P 219 = DB (sent DB DD).
    const config: KissCsmaConfig = {
      txDelayMs: 1920, persistence: 220 / 256, slotTimeMs: 2550, txTailMs: 0, fullDuplex: true,
    };
    expect(kissCsmaFrames(config, 3).map(hex)).toEqual([
      'c0 31 db dc c0',
      'c0 32 db dd c0',
      'c0 33 ff c0',
      'c0 34 00 c0',
      'c0 35 01 c0',
    ]);
  });

  it('decodes back to the commands and values through the KISS decoder', () => {
    const config = kissCsmaConfig({ txDelayMs: 255, persistence: 0.5, slotTimeMs: 45 });
    const decoder = new KissDecoder();
    const frames = kissCsmaFrames(config, 1).flatMap((f) => decoder.push(f));
    expect(frames.map((e) => ('frame' in e ? [e.frame.port, e.frame.command, [...e.frame.data]] : e))).toEqual([
      [1, KissCommand.TXDELAY, [26]], // 255 ms rounds up to 260 ms
      [1, KissCommand.P, [127]],
      [1, KissCommand.SLOTTIME, [5]],
      [1, KissCommand.TXTAIL, [10]],
      [1, KissCommand.FULLDUPLEX, [0]],
    ]);
  });

  it('refuses a port outside 0..15 and a bad config', () => {
    expect(() => kissCsmaFrames(DEFAULT_KISS_CSMA, 16)).toThrow(RangeError);
    expect(() => kissCsmaFrames(DEFAULT_KISS_CSMA, -1)).toThrow(RangeError);
    expect(() => kissCsmaFrames({ ...DEFAULT_KISS_CSMA, persistence: 2 })).toThrow(CsmaConfigError);
  });
});

describe('kissTimingUnits', () => {
  it('rounds up to 10 ms units and clamps at 255', () => {
    const cases: Array<[number, number]> = [
      [0, 0], [0.001, 1], [1, 1], [10, 1], [10.5, 2], [11, 2], [300, 30], [2549, 255], [2550, 255],
      [2551, 255], [1e9, 255], [Infinity, 255],
    ];
    for (const [ms, units] of cases) expect(kissTimingUnits(ms), `${ms} ms`).toBe(units);
  });

  it('throws RangeError for negatives and NaN', () => {
    for (const bad of [-1, -0.001, -Infinity, Number.NaN, '10' as unknown as number]) {
      expect(() => kissTimingUnits(bad)).toThrow(RangeError);
    }
  });
});

describe('kissPersistenceByte', () => {
  it('maps the edges: p 0 → 0 (the least KISS can say, 1/256), p 1 → 255', () => {
    expect(kissPersistenceByte(0)).toBe(0);
    expect(kissPersistenceByte(1 / 512)).toBe(0); // round(0.5) − 1 = 0
    expect(kissPersistenceByte(1 / 256)).toBe(0);
    expect(kissPersistenceByte(2 / 256)).toBe(1);
    expect(kissPersistenceByte(0.25)).toBe(63);
    expect(kissPersistenceByte(0.5)).toBe(127);
    expect(kissPersistenceByte(1)).toBe(255);
  });

  it('inverts p = (P + 1) / 256 for every P', () => {
    for (let P = 0; P <= 255; P++) expect(kissPersistenceByte((P + 1) / 256)).toBe(P);
  });

  it('throws RangeError outside 0..1', () => {
    for (const bad of [-0.01, 1.01, Number.NaN, Infinity]) {
      expect(() => kissPersistenceByte(bad)).toThrow(RangeError);
    }
  });
});

describe('validateKissCsma', () => {
  const cases: Array<[keyof KissCsmaConfig, unknown]> = [
    ['txDelayMs', -1], ['txDelayMs', 2551], ['txDelayMs', Number.NaN], ['txDelayMs', '300'],
    ['slotTimeMs', -10], ['slotTimeMs', Infinity],
    ['txTailMs', 3000], ['txTailMs', undefined],
    ['persistence', -0.1], ['persistence', 1.5], ['persistence', Number.NaN],
    ['fullDuplex', 1], ['fullDuplex', 'yes'],
  ];
  it.each(cases)('%s = %s is refused with an error naming the field', (field, value) => {
    const config = { ...DEFAULT_KISS_CSMA, [field]: value } as KissCsmaConfig;
    let caught: unknown;
    try {
      validateKissCsma(config);
    } catch (e) {
      caught = e;
    }
    expect(caught).toBeInstanceOf(CsmaConfigError);
    expect(caught).toBeInstanceOf(RangeError);
    expect((caught as CsmaConfigError).field).toBe(field);
    expect((caught as Error).message).toContain(field);
  });

  it('accepts the range ends', () => {
    expect(() => validateKissCsma({ txDelayMs: 0, persistence: 0, slotTimeMs: 2550, txTailMs: 0, fullDuplex: true })).not.toThrow();
    expect(() => kissCsmaConfig({ persistence: 1, txDelayMs: 2550 })).not.toThrow();
  });
});
