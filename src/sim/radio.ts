/**
 * The simulator's radio paths: who hears whom, with what loss, RSSI and SNR.
 *
 * Positions and a log-distance path-loss model (the usual planning model; the exponent is the
 * scenario's, 2 in free space, 2.7–3.5 over suburban and urban ground):
 *   PL(d) = FSPL(1 m, f) + 10 · n · log10(d / 1 m),   FSPL(1 m, f) = 20 · log10(f / Hz) − 147.55 dB
 *   RSSI = txPower − PL(d)          (antennas of 0 dBi, no cable loss)
 *   noise = −174 dBm/Hz + 10 · log10(bandwidth) + noise figure
 *   SNR = RSSI − noise
 * A reception is decodable around the modem's required SNR (LoRa: −7.5 dB at SF7, 2.5 dB lower
 * per SF step, as in Semtech's SX127x/SX126x datasheets; 1200 baud AFSK through an FM receiver:
 * 10 dB in 15 kHz; 802.11 at its lowest OFDM rate: 5 dB in 20 MHz). The margin m = SNR − required
 * gives a loss 1 / (1 + e^(1.5·m)): 50 % at the threshold, about 1 % 3 dB above it, and beyond
 * 6 dB below it the pair is out of range altogether (no reception and no carrier sensed).
 * The medium's own random loss combines with this one; a scenario's `links` entry overrides a
 * pair's loss (1 cuts it).
 */
import type { MediumSpec } from './scenario.js';

/** Required SNR (dB) for LoRa demodulation by spreading factor. */
const LORA_REQUIRED_SNR_DB: Readonly<Record<number, number>> = { 5: -2.5, 6: -5, 7: -7.5, 8: -10, 9: -12.5, 10: -15, 11: -17.5, 12: -20 };
/** Beyond this margin below the required SNR nothing is heard. */
const OUT_OF_RANGE_MARGIN_DB = -6;
/** Loss below this is rounded to none (and above 1 − this to out of range). */
const NEGLIGIBLE = 1e-4;

export interface RadioPath {
  distanceM: number;
  rssiDbm: number;
  snrDb: number;
  /** Loss from distance alone (0..1). */
  loss: number;
}

/** The transmit power a medium uses unless the scenario says (dBm): LoRa 14, a 5 W VHF radio 37, Wi-Fi 20. */
export function defaultTxPower(m: MediumSpec): number {
  return m.txPower ?? (m.kind === 'lora' ? 14 : m.kind === 'afsk' ? 37 : 20);
}

function receiver(m: MediumSpec): { bandwidthHz: number; noiseFigureDb: number; requiredSnrDb: number } {
  switch (m.kind) {
    case 'lora':
      return { bandwidthHz: m.bandwidth, noiseFigureDb: 6, requiredSnrDb: LORA_REQUIRED_SNR_DB[m.sf] ?? -12.5 };
    case 'afsk':
      return { bandwidthHz: 15_000, noiseFigureDb: 8, requiredSnrDb: m.modem === 'fsk9600' ? 14 : 10 };
    case 'wifi':
      return { bandwidthHz: 20_000_000, noiseFigureDb: 7, requiredSnrDb: 5 };
  }
}

/** The path between two points on a medium, from the model above. */
export function radioPath(m: MediumSpec, a: readonly [number, number], b: readonly [number, number]): RadioPath {
  const distanceM = Math.hypot(a[0] - b[0], a[1] - b[1]);
  const fspl1m = 20 * Math.log10(m.frequency) - 147.55;
  const pathLossDb = fspl1m + 10 * m.pathLossExponent * Math.log10(Math.max(1, distanceM));
  const rssiDbm = defaultTxPower(m) - pathLossDb;
  const rx = receiver(m);
  const noiseDbm = -174 + 10 * Math.log10(rx.bandwidthHz) + rx.noiseFigureDb;
  const snrDb = rssiDbm - noiseDbm;
  const margin = snrDb - rx.requiredSnrDb;
  let loss = margin < OUT_OF_RANGE_MARGIN_DB ? 1 : 1 / (1 + Math.exp(1.5 * margin));
  if (loss < NEGLIGIBLE) loss = 0;
  if (loss > 1 - NEGLIGIBLE) loss = 1;
  return { distanceM, rssiDbm, snrDb, loss };
}

/** The distance at which a medium's loss from distance reaches `loss` (for docs and reports), metres. */
export function rangeFor(m: MediumSpec, loss = 0.5): number {
  let lo = 1;
  let hi = 1e7;
  for (let i = 0; i < 60; i++) {
    const mid = Math.sqrt(lo * hi);
    if (radioPath(m, [0, 0], [mid, 0]).loss < loss) lo = mid;
    else hi = mid;
  }
  return lo;
}

/** Combines independent losses: a frame survives only if it survives each. */
export function combineLoss(a: number, b: number): number {
  return 1 - (1 - a) * (1 - b);
}
