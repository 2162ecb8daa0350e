import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import {
  LORA_BANDWIDTHS,
  LoraParamError,
  loraAirtime,
  loraMaxPayloadWithin,
  validateLoraParams,
  type LoraParams,
} from '../src/link/airtime/lora.js';

// ---- published vectors ------------------------------------------------------------------------

interface Vector {
  sf: number;
  bw: number;
  cr: number;
  bytes: number;
  ms: number;
  source?: string;
  preamble?: number;
  implicit?: boolean;
  implicitHeader?: boolean;
  header?: 'explicit' | 'implicit';
  crc?: boolean;
  ldro?: boolean | 'auto';
}
const KNOWN_FIELDS = new Set([
  'sf', 'bw', 'cr', 'bytes', 'ms', 'source', 'preamble', 'implicit', 'implicitHeader', 'header',
  'crc', 'ldro',
]);

const VECTORS_URL = new URL('../../shared/vectors/lora-airtime.json', import.meta.url);
const VECTORS_PATH = fileURLToPath(VECTORS_URL);

function loadVectors(): Vector[] {
  if (!existsSync(VECTORS_PATH)) {
    throw new Error(`LoRa airtime vector file missing: expected it at ${VECTORS_PATH}`);
  }
  const doc = JSON.parse(readFileSync(VECTORS_PATH, 'utf8')) as { vectors?: Vector[] };
  if (!Array.isArray(doc.vectors) || doc.vectors.length === 0) {
    throw new Error(`LoRa airtime vector file ${VECTORS_PATH} has no "vectors" array`);
  }
  return doc.vectors;
}

let vectors: Vector[] = [];
let loadError: unknown;
try {
  vectors = loadVectors();
} catch (e) {
  loadError = e;
}

function paramsOf(v: Vector): LoraParams {
  const p: LoraParams = { sf: v.sf, bandwidth: v.bw, cr: v.cr };
  if (v.preamble !== undefined) p.preamble = v.preamble;
  const implicit = v.implicitHeader ?? v.implicit ?? (v.header === undefined ? undefined : v.header === 'implicit');
  if (implicit !== undefined) p.implicitHeader = implicit;
  if (v.crc !== undefined) p.crc = v.crc;
  if (v.ldro !== undefined) p.ldro = v.ldro;
  return p;
}

describe('published vectors (/work/shared/vectors/lora-airtime.json)', () => {
  it('the vector file loads', () => {
    if (loadError !== undefined) throw loadError;
    expect(vectors.length).toBeGreaterThan(0);
  });

  it('every vector uses only fields this test understands', () => {
    for (const v of vectors) {
      const unknown = Object.keys(v).filter((k) => !KNOWN_FIELDS.has(k));
      expect(unknown, `vector ${JSON.stringify(v)}`).toEqual([]);
    }
  });

  it.each(vectors.map((v) => [`SF${v.sf} ${v.bw} Hz 4/${v.cr} ${v.bytes} B${v.ldro === undefined ? '' : ` ldro=${String(v.ldro)}`} → ${v.ms} ms`, v] as const))(
    '%s',
    (_name, v) => {
      const r = loraAirtime(paramsOf(v), v.bytes);
      expect(Math.round(r.airtimeMs * 1000)).toBe(Math.round(v.ms * 1000)); // to the microsecond
      expect(r.airtimeMs).toBe(v.ms);
    },
  );
});

// ---- the model --------------------------------------------------------------------------------

const base = (sf: number, bandwidth = 125000, cr = 5): LoraParams => ({ sf, bandwidth, cr });
const SFS = [5, 6, 7, 8, 9, 10, 11, 12];
const CRS = [5, 6, 7, 8];

describe('loraAirtime', () => {
  it('SF9 125 kHz 4/5, 51 bytes', () => {
    expect(loraAirtime(base(9), 51)).toEqual({
      airtimeMs: 328.704,
      symbolMs: 4.096,
      symbols: 80.25,
      preambleSymbols: 12.25,
      payloadSymbols: 68,
      ldro: false,
    });
  });

  it('SF5 and SF6 use the SX126x form (preamble + 6.25, no +8 in the numerator)', () => {
    // SF6: bits = 80 + 16 − 24 + 20 = 92 → ceil(92/24) = 4 blocks → 8 + 20 = 28 symbols.
    const sf6 = loraAirtime({ ...base(6), preamble: 12 }, 10);
    expect(sf6).toMatchObject({ preambleSymbols: 18.25, payloadSymbols: 28, symbols: 46.25 });
    expect(sf6.airtimeMs).toBe(23.68);
    // SF5: bits = 64 + 16 − 20 + 20 = 80 → 4 blocks → 28 symbols; 8 + 6.25 preamble.
    const sf5 = loraAirtime(base(5), 8);
    expect(sf5).toMatchObject({ preambleSymbols: 14.25, payloadSymbols: 28, symbolMs: 0.256 });
    expect(sf5.airtimeMs).toBe(10.816);
  });

  it('narrow bandwidths use the exact 500 kHz / n values', () => {
    expect(loraAirtime(base(7, 7800), 0).symbolMs).toBe(16.384); // 128 / 7812.5 Hz
    expect(loraAirtime(base(12, 41700), 0).symbolMs).toBe(98.304); // 4096 / 41666.67 Hz
    expect(loraAirtime(base(8, 10400), 0).symbolMs).toBe(24.576); // 256 / 10416.67 Hz
    expect(loraAirtime(base(10, 20800), 0).symbolMs).toBe(49.152); // 1024 / 20833.33 Hz
  });

  it('LDRO auto switches on exactly when the symbol lasts more than 16 ms', () => {
    expect(loraAirtime(base(10), 10).ldro).toBe(false); // 8.192 ms
    expect(loraAirtime(base(11), 10).ldro).toBe(true); // 16.384 ms
    expect(loraAirtime(base(12), 10).ldro).toBe(true);
    expect(loraAirtime(base(11, 250000), 10).ldro).toBe(false);
    expect(loraAirtime(base(12, 250000), 10).ldro).toBe(true);
    expect(loraAirtime(base(10, 62500), 10).ldro).toBe(true);
    expect(loraAirtime(base(9, 62500), 10).ldro).toBe(false);
    for (const sf of SFS) {
      for (const bandwidth of LORA_BANDWIDTHS) {
        const r = loraAirtime({ sf, bandwidth, cr: 5 }, 10);
        // No symbol time is exactly 16 ms, so "> 16" and ">= 16" agree.
        expect(r.symbolMs).not.toBe(16);
        expect(r.ldro, `SF${sf} ${bandwidth} Hz`).toBe(r.symbolMs > 16);
      }
    }
  });

  it('forced LDRO overrides auto and changes the divisor to 4·(SF − 2)', () => {
    // SF7 14 B: bits = 128 → ceil(128/28) = 5 blocks; with DE ceil(128/20) = 7 blocks.
    expect(loraAirtime({ ...base(7), ldro: true }, 14)).toMatchObject({ ldro: true, payloadSymbols: 43 });
    expect(loraAirtime({ ...base(7), ldro: 'auto' }, 14)).toMatchObject({ ldro: false, payloadSymbols: 33 });
    expect(loraAirtime({ ...base(12), ldro: false }, 14).ldro).toBe(false);
  });

  it('implicit header removes 20 bits and CRC off removes 16 bits from the numerator', () => {
    // SF9 51 B 4/5: explicit+CRC bits = 408 − 36 + 28 + 16 = 416 → ceil(416/36) = 12 blocks.
    expect(loraAirtime(base(9), 51).payloadSymbols).toBe(8 + 12 * 5);
    // implicit: 396 → 11 blocks; CRC off: 400 → 12 blocks; both: 380 → 11 blocks.
    expect(loraAirtime({ ...base(9), implicitHeader: true }, 51).payloadSymbols).toBe(8 + 11 * 5);
    expect(loraAirtime({ ...base(9), crc: false }, 51).payloadSymbols).toBe(8 + 12 * 5);
    expect(loraAirtime({ ...base(9), implicitHeader: true, crc: false }, 51).payloadSymbols).toBe(8 + 11 * 5);
    // SF7 0 B: bits = 0 − 28 + 28 + 16 = 16 → 1 block; implicit, no CRC: −24 → clamped to 0 blocks.
    expect(loraAirtime(base(7), 0).payloadSymbols).toBe(13);
    expect(loraAirtime({ ...base(7), implicitHeader: true, crc: false }, 0).payloadSymbols).toBe(8);
  });

  it('is consistent, exact to the µs and non-decreasing in payload size for every sf/bw/cr', () => {
    const options = [{}, { implicitHeader: true }, { crc: false }, { ldro: true }, { preamble: 12 }];
    for (const sf of SFS) {
      for (const bandwidth of LORA_BANDWIDTHS) {
        for (const cr of CRS) {
          for (const extra of options) {
            const p: LoraParams = { sf, bandwidth, cr, ...extra };
            let prev = -Infinity;
            for (let n = 0; n <= 255; n++) {
              const r = loraAirtime(p, n);
              if (r.airtimeMs < prev) {
                expect.fail(`airtime decreased at ${JSON.stringify(p)} payload ${n}`);
              }
              prev = r.airtimeMs;
              const wholeUs = Math.round(r.airtimeMs * 1000) / 1000 === r.airtimeMs;
              const product = Math.abs(r.symbols * r.symbolMs - r.airtimeMs) <= 1e-9 * r.airtimeMs;
              if (r.symbols !== r.preambleSymbols + r.payloadSymbols || !wholeUs || !product) {
                expect.fail(`inconsistent result ${JSON.stringify(r)} for ${JSON.stringify(p)} payload ${n}`);
              }
            }
          }
        }
      }
    }
  });

  it('implicit header and CRC off never add symbols', () => {
    for (const sf of SFS) {
      for (const n of [0, 1, 7, 51, 200, 255]) {
        const full = loraAirtime(base(sf), n).symbols;
        expect(loraAirtime({ ...base(sf), implicitHeader: true }, n).symbols).toBeLessThanOrEqual(full);
        expect(loraAirtime({ ...base(sf), crc: false }, n).symbols).toBeLessThanOrEqual(full);
      }
    }
  });
});

describe('loraMaxPayloadWithin', () => {
  it('US915 400 ms dwell at SF10/125 kHz allows 24 bytes', () => {
    const p = base(10);
    const max = loraMaxPayloadWithin(p, 400);
    expect(max).toBe(24);
    expect(loraAirtime(p, max).airtimeMs).toBeLessThanOrEqual(400); // 370.688
    expect(loraAirtime(p, max + 1).airtimeMs).toBeGreaterThan(400); // 411.648
  });

  it('agrees with a linear scan of loraAirtime', () => {
    for (const sf of SFS) {
      for (const bandwidth of [7800, 125000, 500000]) {
        const p: LoraParams = { sf, bandwidth, cr: 6 };
        const times = Array.from({ length: 256 }, (_, n) => loraAirtime(p, n).airtimeMs);
        const limits = [0, times[0]! - 0.001, times[0]!, times[100]!, (times[0]! + times[255]!) / 2, times[255]!, Infinity];
        for (const limit of limits) {
          const expected = times.reduce((best, t, n) => (t <= limit ? n : best), -1);
          expect(loraMaxPayloadWithin(p, limit), `SF${sf} ${bandwidth} Hz limit ${limit}`).toBe(expected);
        }
      }
    }
  });

  it('returns -1 when even an empty frame does not fit, and 255 when everything fits', () => {
    expect(loraMaxPayloadWithin(base(12), 100)).toBe(-1);
    expect(loraMaxPayloadWithin(base(7), 10_000)).toBe(255);
  });

  it('rejects bad parameters and a NaN limit', () => {
    expect(() => loraMaxPayloadWithin(base(4), 400)).toThrow(LoraParamError);
    expect(() => loraMaxPayloadWithin(base(7), Number.NaN)).toThrow(/limitMs/);
  });
});

describe('parameter validation', () => {
  const cases: [string, LoraParams, number, RegExp][] = [
    ['sf 4', base(4), 10, /\bsf\b.*5\.\.12/],
    ['sf 13', base(13), 10, /\bsf\b.*5\.\.12/],
    ['sf 7.5', base(7.5), 10, /\bsf\b/],
    ['bw 100000', base(7, 100000), 10, /bandwidth.*125000/],
    ['bw 7812.5', base(7, 7812.5), 10, /bandwidth/],
    ['cr 4', base(7, 125000, 4), 10, /\bcr\b.*5\.\.8/],
    ['cr 9', base(7, 125000, 9), 10, /\bcr\b.*5\.\.8/],
    ['cr 5.5', base(7, 125000, 5.5), 10, /\bcr\b/],
    ['preamble 0', { ...base(7), preamble: 0 }, 10, /preamble/],
    ['preamble 8.5', { ...base(7), preamble: 8.5 }, 10, /preamble/],
    ['ldro "yes"', { ...base(7), ldro: 'yes' as unknown as boolean }, 10, /ldro/],
    ['payload 256', base(7), 256, /payloadBytes.*0\.\.255/],
    ['payload -1', base(7), -1, /payloadBytes.*0\.\.255/],
    ['payload 1.5', base(7), 1.5, /payloadBytes/],
    ['payload NaN', base(7), Number.NaN, /payloadBytes/],
  ];
  it.each(cases)('%s throws LoraParamError naming the parameter', (_name, p, n, message) => {
    expect(() => loraAirtime(p, n)).toThrow(LoraParamError);
    expect(() => loraAirtime(p, n)).toThrow(message);
  });

  it('LoraParamError is a RangeError with its own name', () => {
    try {
      validateLoraParams(base(13));
      expect.fail('should have thrown');
    } catch (e) {
      expect(e).toBeInstanceOf(RangeError);
      expect((e as Error).name).toBe('LoraParamError');
    }
  });

  it('accepts every listed bandwidth, sf 5..12 and cr 5..8', () => {
    for (const sf of SFS) for (const bandwidth of LORA_BANDWIDTHS) for (const cr of CRS) {
      expect(() => validateLoraParams({ sf, bandwidth, cr })).not.toThrow();
    }
  });
});
