/**
 * Tests for regional rules (src/link/airtime/regions.ts): every EU868 sub-band edge, channels
 * straddling a boundary or sitting in a gap, US915 dwell by bandwidth, out-of-region frequencies,
 * region names, and frames per hour under duty cycle and dwell.
 */
import { describe, expect, it } from 'vitest';
import { loraAirtime } from '../src/link/airtime/lora.js';
import {
  EU868_SUB_BANDS,
  HOUR_MS,
  RegionError,
  bandRules,
  framesPerHour,
  parseRegionName,
  type BandRules,
} from '../src/link/airtime/regions.js';

const BW = 125_000;
const HALF = BW / 2;

function refusal(fn: () => unknown): RegionError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(RegionError);
    expect(e).toBeInstanceOf(RangeError);
    return e as RegionError;
  }
  throw new Error('expected a RegionError');
}

describe('eu868 sub-bands', () => {
  const table: Array<[string, number, number, number]> = [
    ['863-865', 863_000_000, 865_000_000, 0.001],
    ['865-868', 865_000_000, 868_000_000, 0.01],
    ['868-868.6', 868_000_000, 868_600_000, 0.01],
    ['868.7-869.2', 868_700_000, 869_200_000, 0.001],
    ['869.4-869.65', 869_400_000, 869_650_000, 0.1],
    ['869.7-870', 869_700_000, 870_000_000, 0.01],
  ];

  it('are the ETSI EN 300 220 table, each over a one-hour window', () => {
    expect(EU868_SUB_BANDS.map((b) => [b.name, b.fromHz, b.toHz, b.dutyFraction])).toEqual(table);
  });

  it.each(table)('%s: a 125 kHz channel flush with either edge fits; 1 Hz further out does not', (name, from, to, fraction) => {
    for (const f of [from + HALF, to - HALF, (from + to) / 2]) {
      expect(bandRules('eu868', f, BW)).toEqual({
        region: 'eu868',
        subBand: { name, fromHz: from, toHz: to },
        dutyCycle: { fraction, windowMs: HOUR_MS },
      });
    }
    // Outward by 1 Hz: the channel straddles the edge into a neighbour, a gap or outside 863–870.
    refusal(() => bandRules('eu868', from + HALF - 1, BW));
    refusal(() => bandRules('eu868', to - HALF + 1, BW));
  });

  it.each(table)('%s: as a point, the band is half-open [from, to)', (name, from, to) => {
    expect(bandRules('eu868', from).subBand?.name).toBe(name);
    expect(bandRules('eu868', to - 1).subBand?.name).toBe(name);
    const above = EU868_SUB_BANDS.find((b) => b.fromHz === to);
    if (above === undefined) refusal(() => bandRules('eu868', to));
    else expect(bandRules('eu868', to).subBand?.name).toBe(above.name);
  });

  it('the 868.0 MHz boundary: below, above, straddling', () => {
    expect(bandRules('eu868', 867_937_500, BW).subBand?.name).toBe('865-868'); // 867.875–868.0
    expect(bandRules('eu868', 868_062_500, BW).subBand?.name).toBe('868-868.6'); // 868.0–868.125
    expect(bandRules('eu868', 868_000_000).subBand?.name).toBe('868-868.6');
    const e = refusal(() => bandRules('eu868', 867_950_000, BW)); // 867.8875–868.0125
    expect(e.message).toContain('867.95 MHz');
    expect(e.message).toContain('867.8875–868.0125 MHz');
  });

  it('refuses the gaps between sub-bands', () => {
    for (const f of [868_650_000, 869_300_000, 869_675_000]) {
      refusal(() => bandRules('eu868', f));
      refusal(() => bandRules('eu868', f, 25_000));
    }
  });

  it('868.65 MHz: the message names the frequency, the region and its bands', () => {
    const e = refusal(() => bandRules('eu868', 868_650_000, BW));
    expect(e.message).toContain('868.65 MHz');
    expect(e.message).toContain('eu868');
    expect(e.message).toContain(
      '863–865 MHz 0.1 %, 865–868 MHz 1 %, 868–868.6 MHz 1 %, 868.7–869.2 MHz 0.1 %, ' +
        '869.4–869.65 MHz 10 %, 869.7–870 MHz 1 %',
    );
  });

  it('refuses a channel wider than its sub-band', () => {
    expect(bandRules('eu868', 869_525_000, 250_000).subBand?.name).toBe('869.4-869.65'); // exactly fills it
    refusal(() => bandRules('eu868', 869_525_000, 500_000));
  });

  it('refuses frequencies outside 863–870 MHz', () => {
    for (const f of [433_775_000, 862_999_999, 870_000_000, 915_000_000]) {
      const e = refusal(() => bandRules('eu868', f));
      expect(e.message).toContain('eu868');
    }
  });
});

describe('us915', () => {
  it('125 kHz channels: 400 ms dwell, no duty cycle', () => {
    expect(bandRules('us915', 902_300_000, 125_000)).toEqual({
      region: 'us915',
      subBand: { name: '902-928', fromHz: 902_000_000, toHz: 928_000_000 },
      dwellMs: 400,
    });
  });

  it('500 kHz channels: no dwell limit; 250 kHz and unknown bandwidth: dwell', () => {
    expect(bandRules('us915', 903_000_000, 500_000).dwellMs).toBeUndefined();
    expect(bandRules('us915', 923_300_000, 500_000).dutyCycle).toBeUndefined();
    expect(bandRules('us915', 910_000_000, 250_000).dwellMs).toBe(400);
    expect(bandRules('us915', 910_000_000).dwellMs).toBe(400);
  });

  it('channel edges at 902 and 928 MHz', () => {
    expect(bandRules('us915', 902_062_500, BW).subBand?.name).toBe('902-928');
    expect(bandRules('us915', 927_750_000, 500_000).subBand?.name).toBe('902-928');
    refusal(() => bandRules('us915', 902_050_000, BW));
    refusal(() => bandRules('us915', 927_800_000, 500_000));
  });

  it('refuses frequencies outside 902–928 MHz with a clear message', () => {
    const e = refusal(() => bandRules('us915', 868_100_000, BW));
    expect(e.message).toContain('868.1 MHz');
    expect(e.message).toContain('us915');
    expect(e.message).toContain('902–928 MHz');
  });
});

describe('none', () => {
  it('has no rules at any frequency', () => {
    expect(bandRules('none', 2_412_000_000, 20_000_000)).toEqual({ region: 'none' });
    expect(bandRules('none', 0)).toEqual({ region: 'none' });
  });
});

describe('bad input', () => {
  it('refuses malformed frequencies, bandwidths and regions', () => {
    for (const f of [-1, Number.NaN, Infinity]) refusal(() => bandRules('eu868', f));
    for (const bw of [-1, Number.NaN]) refusal(() => bandRules('eu868', 868_100_000, bw));
    refusal(() => bandRules('as923' as never, 923_200_000));
  });
});

describe('parseRegionName', () => {
  it('accepts the names in any case and with separators', () => {
    expect(parseRegionName('eu868')).toBe('eu868');
    expect(parseRegionName(' EU-868 ')).toBe('eu868');
    expect(parseRegionName('us_915')).toBe('us915');
    expect(parseRegionName('None')).toBe('none');
  });

  it('refuses anything else, listing the names', () => {
    for (const bad of ['', 'eu', 'as923', 'us902-928']) {
      const e = refusal(() => parseRegionName(bad));
      expect(e.message).toContain('eu868, us915, none');
    }
  });
});

describe('framesPerHour', () => {
  // SF9, 125 kHz, CR 4/5, 51 bytes, explicit header, CRC, 8-symbol preamble: 328.704 ms.
  const sf9 = loraAirtime({ sf: 9, bandwidth: 125_000, cr: 5 }, 51).airtimeMs;

  it('the reference frame lasts 328.704 ms', () => {
    expect(sf9).toBe(328.704);
  });

  it('at 869.525 MHz (10 %): floor(360 000 / 328.704) = 1095', () => {
    expect(framesPerHour(bandRules('eu868', 869_525_000, BW), sf9)).toBe(1095);
  });

  it('at 868.1 MHz (1 %): floor(36 000 / 328.704) = 109', () => {
    expect(framesPerHour(bandRules('eu868', 868_100_000, BW), sf9)).toBe(109);
  });

  it('at 868.9 MHz (0.1 %): floor(3 600 / 328.704) = 10', () => {
    expect(framesPerHour(bandRules('eu868', 868_900_000, BW), sf9)).toBe(10);
  });

  it('an exact fit counts', () => {
    expect(framesPerHour(bandRules('eu868', 869_525_000), 360)).toBe(1000);
  });

  it('without a duty cycle, the channel itself limits: floor(3 600 000 / airtime)', () => {
    expect(framesPerHour({ region: 'none' }, sf9)).toBe(10952);
    expect(framesPerHour(bandRules('us915', 903_000_000, 500_000), 1000)).toBe(3600);
  });

  it('dwell: 0 frames when the frame is longer than the dwell limit', () => {
    const rules = bandRules('us915', 902_300_000, BW);
    expect(framesPerHour(rules, 400)).toBe(9000);
    expect(framesPerHour(rules, 400.001)).toBe(0);
    expect(framesPerHour(rules, 1e6)).toBe(0);
  });

  it('Infinity for zero airtime; RangeError for a negative or non-finite airtime', () => {
    const rules: BandRules = { region: 'none' };
    expect(framesPerHour(rules, 0)).toBe(Infinity);
    expect(framesPerHour(bandRules('eu868', 868_100_000), 0)).toBe(Infinity);
    for (const bad of [-1, Number.NaN, Infinity]) expect(() => framesPerHour(rules, bad)).toThrow(RangeError);
  });
});
