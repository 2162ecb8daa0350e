/**
 * Regional rules for the channel a radio link transmits on: the duty cycle of the sub-band it lies
 * in (EU868) or the longest single transmission (US915).
 *
 * eu868: ETSI EN 300 220-2 (V3.2.1, Table B.1) as used by the LoRaWAN regional parameters,
 * non-specific short range devices, duty cycle over a sliding hour:
 *   863.0–865.0 MHz 0.1 %   865.0–868.0 MHz 1 %    868.0–868.6 MHz 1 %
 *   868.7–869.2 MHz 0.1 %   869.4–869.65 MHz 10 %  869.7–870.0 MHz 1 %
 * 863–865 and 868.7–869.2 are separate 0.1 % bands, each with its own budget (EN 300 220-2 V3.2.1
 * bands K and N; older readings of CEPT/ERC/REC 70-03 merged them). The gaps 868.6–868.7,
 * 869.2–869.4 and 869.65–869.7 MHz belong to alarm devices and are refused here. Sub-bands carry
 * plain MHz names: the standard's own letters could not all be confirmed, and REC 70-03's labels
 * have been renumbered between editions.
 *
 * us915: FCC 47 CFR §15.247, 902–928 MHz. A frequency-hopping channel (20 dB bandwidth up to
 * 500 kHz) may occupy a frequency at most 0.4 s at a time (§15.247(a)(1)(i)); a digitally
 * modulated system with at least 500 kHz bandwidth (§15.247(a)(2)) has no dwell limit. The model
 * assumes LoRa channels narrower than 500 kHz hop (125 kHz, as in LoRaWAN US902-928, and also
 * 250 kHz) and so get the 400 ms dwell, and 500 kHz channels are digital modulation without one.
 * An unknown bandwidth counts as narrow. No duty cycle applies.
 *
 * none: Wi-Fi, wire, or an operator who takes responsibility for the rules: nothing enforced.
 *
 * Channel fit: the whole channel [f − bw/2, f + bw/2] must lie inside one sub-band; touching an
 * edge is allowed, so a 125 kHz channel at 867.9375 MHz fits 865–868 and one at 868.0625 MHz
 * fits 868–868.6, while 867.95 MHz straddles 868.0 and is refused. A zero-width channel (no
 * bandwidth given) is a point and sub-bands are half-open [from, to): 868.0 MHz falls in
 * 868–868.6, and 870.0 MHz in none.
 */

export type RegionName = 'eu868' | 'us915' | 'none';

export const REGION_NAMES: readonly RegionName[] = Object.freeze(['eu868', 'us915', 'none'] as const);

export interface SubBand {
  name: string;
  fromHz: number;
  toHz: number;
}

export interface BandRules {
  region: RegionName;
  subBand?: SubBand;
  /** Share of `windowMs` the transmitter may be on, over a sliding window. */
  dutyCycle?: { fraction: number; windowMs: number };
  /** Longest single transmission allowed, ms. */
  dwellMs?: number;
}

export class RegionError extends RangeError {
  override name = 'RegionError';
}

export const HOUR_MS = 3_600_000;

export interface RegionBand extends SubBand {
  /** Duty cycle over one hour, when the band has one. */
  dutyFraction?: number;
}

function band(fromMHz: string, toMHz: string, dutyFraction?: number): RegionBand {
  return Object.freeze({
    name: `${fromMHz}-${toMHz}`,
    fromHz: Math.round(Number(fromMHz) * 1e6),
    toHz: Math.round(Number(toMHz) * 1e6),
    ...(dutyFraction === undefined ? {} : { dutyFraction }),
  });
}

export const EU868_SUB_BANDS: readonly RegionBand[] = Object.freeze([
  band('863', '865', 0.001),
  band('865', '868', 0.01),
  band('868', '868.6', 0.01),
  band('868.7', '869.2', 0.001),
  band('869.4', '869.65', 0.1),
  band('869.7', '870', 0.01),
]);

export const US915_BAND: RegionBand = band('902', '928');

/** FCC §15.247(a)(1)(i): 0.4 s per frequency for hopping channels. */
export const US915_DWELL_MS = 400;
/** Channels this wide or wider count as digital modulation (§15.247(a)(2)), with no dwell limit. */
export const US915_DTS_MIN_BANDWIDTH_HZ = 500_000;

const REGION_BANDS: Readonly<Record<Exclude<RegionName, 'none'>, readonly RegionBand[]>> = {
  eu868: EU868_SUB_BANDS,
  us915: [US915_BAND],
};

function mhz(hz: number): string {
  return String(Number((hz / 1e6).toFixed(6)));
}

/** Whether the channel centred on f with width bw lies inside the band (see header). */
function fits(b: SubBand, f: number, bw: number): boolean {
  if (bw === 0) return b.fromHz <= f && f < b.toHz;
  // Doubled so that integer inputs stay exact integers.
  return 2 * b.fromHz <= 2 * f - bw && 2 * f + bw <= 2 * b.toHz;
}

/**
 * The rules for a channel at `frequencyHz` with `bandwidthHz` (default 0: a point). Throws
 * RegionError when the channel is not wholly inside one of the region's bands.
 */
export function bandRules(region: RegionName, frequencyHz: number, bandwidthHz = 0): BandRules {
  if (typeof frequencyHz !== 'number' || !Number.isFinite(frequencyHz) || frequencyHz < 0) {
    throw new RegionError(`frequency must be a non-negative number of Hz, got ${String(frequencyHz)}`);
  }
  if (typeof bandwidthHz !== 'number' || !Number.isFinite(bandwidthHz) || bandwidthHz < 0) {
    throw new RegionError(`bandwidth must be a non-negative number of Hz, got ${String(bandwidthHz)}`);
  }
  if (region === 'none') return { region };
  const bands = REGION_BANDS[region];
  if (bands === undefined) {
    throw new RegionError(`unknown region ${String(region)}; expected one of ${REGION_NAMES.join(', ')}`);
  }
  const found = bands.find((b) => fits(b, frequencyHz, bandwidthHz));
  if (found === undefined) {
    const channel =
      bandwidthHz === 0
        ? `${mhz(frequencyHz)} MHz`
        : `${mhz(frequencyHz)} MHz (${bandwidthHz / 1000} kHz channel, ` +
          `${mhz(frequencyHz - bandwidthHz / 2)}–${mhz(frequencyHz + bandwidthHz / 2)} MHz)`;
    const list = bands
      .map((b) => `${mhz(b.fromHz)}–${mhz(b.toHz)} MHz` +
        (b.dutyFraction === undefined ? '' : ` ${b.dutyFraction * 100} %`))
      .join(', ');
    throw new RegionError(`${channel} does not lie inside one ${region} band; ${region} allows ${list}`);
  }
  const rules: BandRules = {
    region,
    subBand: { name: found.name, fromHz: found.fromHz, toHz: found.toHz },
  };
  if (found.dutyFraction !== undefined) {
    rules.dutyCycle = { fraction: found.dutyFraction, windowMs: HOUR_MS };
  }
  if (region === 'us915' && bandwidthHz < US915_DTS_MIN_BANDWIDTH_HZ) rules.dwellMs = US915_DWELL_MS;
  return rules;
}

/** 'eu868', 'EU868', 'eu-868', 'us_915', ' none ' ...; throws RegionError for anything else. */
export function parseRegionName(text: string): RegionName {
  const key = typeof text === 'string' ? text.trim().toLowerCase().replace(/[\s_-]/g, '') : '';
  const name = REGION_NAMES.find((r) => r === key);
  if (name === undefined) {
    throw new RegionError(`unknown region ${JSON.stringify(text)}; expected one of ${REGION_NAMES.join(', ')}`);
  }
  return name;
}

/**
 * How many frames of `airtimeMs` one transmitter may send in an hour under `rules`:
 * floor(fraction · 3 600 000 / airtimeMs). Without a duty cycle the channel itself is the limit
 * (fraction 1, back-to-back frames). 0 when the dwell limit refuses the frame; Infinity for a
 * frame of zero airtime that no dwell limit refuses. Throws RangeError for a negative or
 * non-finite airtime.
 */
export function framesPerHour(rules: BandRules, airtimeMs: number): number {
  if (typeof airtimeMs !== 'number' || !Number.isFinite(airtimeMs) || airtimeMs < 0) {
    throw new RangeError(`airtimeMs must be a non-negative number, got ${String(airtimeMs)}`);
  }
  if (rules.dwellMs !== undefined && airtimeMs > rules.dwellMs) return 0;
  if (airtimeMs === 0) return Infinity;
  const fraction = rules.dutyCycle?.fraction ?? 1;
  return Math.floor((fraction * HOUR_MS) / airtimeMs);
}
