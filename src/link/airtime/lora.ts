/**
 * LoRa time on air.
 *
 * Sources (formulas re-derived here, no code copied):
 * - SX1276/77/78/79 datasheet §4.1.1.6–4.1.1.7 and AN1200.13 "LoRa Modem Designer's Guide" §4:
 *     Tsym = 2^SF / BW
 *     Tpreamble = (npreamble + 4.25) · Tsym
 *     npayload = 8 + max(ceil((8·PL − 4·SF + 28 + 16·CRC − 20·IH) / (4·(SF − 2·DE))) · CR, 0)
 *   (the datasheets write CR as 1..4 and multiply by CR + 4; our `cr` is already 5..8).
 * - SX1261/2 datasheet §6.1.4 "LoRa Time-on-Air": the same for SF7..SF12, while SF5 and SF6
 *   add 6.25 symbols (not 4.25) after the preamble and drop the "+8" from the numerator:
 *     N = npreamble + 6.25 + 8 + ceil(max(8·PL + 16·CRC − 4·SF + 20·(1 − IH), 0) / (4·SF)) · CR
 *   The datasheet gives no LDRO variant for SF5/6 (Tsym never exceeds 8.2 ms there); if LDRO is
 *   forced on we apply the same 4·(SF − 2·DE) divisor as for SF7..SF12.
 *   (SX127x's own SF6, implicit-header only, follows the SX127x formula and is not modelled.)
 * - LDRO: the SX127x datasheet §4.1.1.6 mandates it "when the symbol duration exceeds 16 ms".
 *
 * Bandwidths: the nominal names 7.8, 10.4, 15.6, 20.8 and 41.7 kHz are really 500 kHz / 64, /48,
 * /32, /24 and /12 (7812.5, 10416.67, 15625, 20833.33, 41666.67 Hz — the values in the SX126x
 * datasheet's bandwidth table and Semtech's LoRaMac-node driver). We use these exact values, so
 * Tsym = 2^SF · divisor / 500 kHz = 2^(SF+1) · divisor µs, an integer, and every airtime is an
 * exact integer number of microseconds. With these values no symbol lasts exactly 16 ms, so
 * "> 16 ms" and "≥ 16 ms" pick the same LDRO setting (SF11/SF12 at 125 kHz, SF12 at 250 kHz...).
 */

export type LoraBandwidth =
  | 7800 | 10400 | 15600 | 20800 | 31250 | 41700 | 62500 | 125000 | 250000 | 500000;

/** Each accepted bandwidth (Hz, as commonly written) → its divisor of 500 kHz. */
const BW_DIVISOR: Readonly<Record<LoraBandwidth, number>> = {
  7800: 64, 10400: 48, 15600: 32, 20800: 24, 31250: 16,
  41700: 12, 62500: 8, 125000: 4, 250000: 2, 500000: 1,
};

export const LORA_BANDWIDTHS: readonly LoraBandwidth[] = Object.freeze(
  [7800, 10400, 15600, 20800, 31250, 41700, 62500, 125000, 250000, 500000] as const,
);

export interface LoraParams {
  /** Spreading factor 5..12. */
  sf: number;
  /** Hz, one of LORA_BANDWIDTHS. */
  bandwidth: number;
  /** Coding-rate denominator 5..8 (4/5..4/8). */
  cr: number;
  /** Programmed preamble length in symbols, 1..65535; default 8. */
  preamble?: number;
  /** Implicit (fixed-length) header; default false (explicit header). */
  implicitHeader?: boolean;
  /** Payload CRC; default true. */
  crc?: boolean;
  /** Low-data-rate optimisation; default 'auto' (on when the symbol lasts more than 16 ms). */
  ldro?: 'auto' | boolean;
}

export interface LoraAirtime {
  airtimeMs: number;
  symbolMs: number;
  /** preambleSymbols + payloadSymbols; airtimeMs = symbols · symbolMs. */
  symbols: number;
  /** Programmed preamble + 4.25 (SF5/SF6: + 6.25) for sync word and start-of-frame delimiter. */
  preambleSymbols: number;
  /** Header, payload and CRC symbols: 8 + blocks · cr. */
  payloadSymbols: number;
  /** Whether low-data-rate optimisation was applied. */
  ldro: boolean;
}

export class LoraParamError extends RangeError {
  override name = 'LoraParamError';
}

const LDRO_THRESHOLD_US = 16_000;

function checkInt(name: string, value: unknown, min: number, max: number): void {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new LoraParamError(`${name} must be an integer in ${min}..${max}, got ${String(value)}`);
  }
}

export function validateLoraParams(p: LoraParams): void {
  checkInt('sf', p.sf, 5, 12);
  if (!(LORA_BANDWIDTHS as readonly number[]).includes(p.bandwidth)) {
    throw new LoraParamError(
      `bandwidth must be one of ${LORA_BANDWIDTHS.join(', ')} Hz, got ${String(p.bandwidth)}`,
    );
  }
  checkInt('cr', p.cr, 5, 8);
  if (p.preamble !== undefined) checkInt('preamble', p.preamble, 1, 65535);
  for (const key of ['implicitHeader', 'crc'] as const) {
    if (p[key] !== undefined && typeof p[key] !== 'boolean') {
      throw new LoraParamError(`${key} must be a boolean, got ${String(p[key])}`);
    }
  }
  if (p.ldro !== undefined && p.ldro !== 'auto' && typeof p.ldro !== 'boolean') {
    throw new LoraParamError(`ldro must be 'auto', true or false, got ${String(p.ldro)}`);
  }
}

/** Symbol time in integer microseconds: 2^SF / (500 kHz / divisor). */
function symbolUs(p: LoraParams): number {
  return 2 ** (p.sf + 1) * BW_DIVISOR[p.bandwidth as LoraBandwidth];
}

/** The model proper; `p` must already be valid and `payloadBytes` in 0..255. */
function compute(p: LoraParams, payloadBytes: number): LoraAirtime {
  const { sf, cr } = p;
  const tsymUs = symbolUs(p);
  const ldro = p.ldro === undefined || p.ldro === 'auto' ? tsymUs > LDRO_THRESHOLD_US : p.ldro;
  const crc = (p.crc ?? true) ? 1 : 0;
  const explicitHeader = p.implicitHeader ? 0 : 1;

  // SX127x §4.1.1.7 / SX126x §6.1.4: 28 − 20·IH = 8 + 20·(1 − IH); SF5/SF6 omit the 8.
  const bits = 8 * payloadBytes + 16 * crc - 4 * sf + 20 * explicitHeader + (sf >= 7 ? 8 : 0);
  const blocks = Math.ceil(Math.max(bits, 0) / (4 * (sf - 2 * (ldro ? 1 : 0))));
  const payloadSymbols = 8 + blocks * cr;

  // Counted in quarter symbols so that 4.25 and 6.25 stay integers.
  const preambleQuarters = 4 * (p.preamble ?? 8) + (sf >= 7 ? 17 : 25);
  const quarters = preambleQuarters + 4 * payloadSymbols;
  const airtimeUs = (quarters * tsymUs) / 4; // exact: tsymUs is a multiple of 64

  return {
    airtimeMs: airtimeUs / 1000,
    symbolMs: tsymUs / 1000,
    symbols: quarters / 4,
    preambleSymbols: preambleQuarters / 4,
    payloadSymbols,
    ldro,
  };
}

export function loraAirtime(p: LoraParams, payloadBytes: number): LoraAirtime {
  validateLoraParams(p);
  checkInt('payloadBytes', payloadBytes, 0, 255);
  return compute(p, payloadBytes);
}

/** Largest payload (0..255) whose airtime is ≤ limitMs, or -1 if not even 0 bytes fits. */
export function loraMaxPayloadWithin(p: LoraParams, limitMs: number): number {
  validateLoraParams(p);
  if (typeof limitMs !== 'number' || Number.isNaN(limitMs)) {
    throw new LoraParamError(`limitMs must be a number, got ${String(limitMs)}`);
  }
  // Airtime never decreases with payload size, so binary-search the last fitting size.
  let lo = -1; // fits (or the "nothing fits" sentinel)
  let hi = 256; // does not fit (sentinel)
  while (hi - lo > 1) {
    const mid = (lo + hi) >> 1;
    if (compute(p, mid).airtimeMs <= limitMs) lo = mid;
    else hi = mid;
  }
  return lo;
}
