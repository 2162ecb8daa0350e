/**
 * Channel-access (p-persistent CSMA) parameters that a host gives a KISS TNC, and the KISS
 * command frames that carry them.
 *
 * Only KISS TNCs take these from the host. A LoRa modem speaking the RNode command set does its
 * own carrier sense and backoff in firmware and accepts no CSMA parameters from the host, so a
 * lora-serial link has nothing here to send.
 *
 * Sources:
 * - M. Chepponis, P. Karn, "The KISS TNC: A simple Host-to-TNC communications protocol" (1987),
 *   commands 1–5: TXDELAY, SlotTime and TXtail in 10 ms units; P is the persistence parameter
 *   with p = (P + 1) / 256; FullDuplex 0 = half duplex. Its defaults: TXDELAY 50 (500 ms), P 63,
 *   SlotTime 10 (100 ms), FullDuplex 0; TXtail is called obsolete and given no default.
 *   (firmware-protocol/SPEC.md §1.2 repeats this table.)
 * - Dire Wolf, src/audio.h, "typical transmit timings for VHF": DEFAULT_TXDELAY 30 (300 ms),
 *   DEFAULT_TXTAIL 10 (100 ms), DEFAULT_SLOTTIME 10, DEFAULT_PERSIST 63, DEFAULT_FULLDUP 0.
 *
 * Our defaults are Dire Wolf's: the KISS paper's 500 ms TXDELAY dates from slow-keying crystal
 * rigs, 300 ms is what the most common software TNC ships with, and it gives a TXTAIL where the
 * paper gives none. P 63 and SlotTime 100 ms agree in both.
 */
import { KissCommand, encodeKiss } from '../../firmware-protocol/kiss.js';

export interface KissCsmaConfig {
  /** Keying delay before the frame, ms (0..2550; sent rounded up to 10 ms). */
  txDelayMs: number;
  /** Probability 0..1 of transmitting in a free slot (sent as P = round(p · 256) − 1). */
  persistence: number;
  /** CSMA slot interval, ms (0..2550; sent rounded up to 10 ms). */
  slotTimeMs: number;
  /** Time the transmitter stays keyed after the frame, ms (0..2550; sent rounded up to 10 ms). */
  txTailMs: number;
  fullDuplex: boolean;
}

export const DEFAULT_KISS_CSMA: Readonly<KissCsmaConfig> = Object.freeze({
  txDelayMs: 300,
  persistence: 0.25,
  slotTimeMs: 100,
  txTailMs: 100,
  fullDuplex: false,
});

/** The longest time a one-byte KISS argument in 10 ms units can express. */
export const KISS_MAX_TIME_MS = 2550;

/** A config field out of range; `field` names it for the config loader's message. */
export class CsmaConfigError extends RangeError {
  override name = 'CsmaConfigError';
  constructor(readonly field: keyof KissCsmaConfig, message: string) {
    super(message);
  }
}

/**
 * A time in ms as a KISS TXDELAY / SLOTTIME / TXTAIL argument: 10 ms units, rounded up (never
 * shorter than asked), clamped to 255. Throws RangeError for NaN, non-numbers and negatives.
 */
export function kissTimingUnits(ms: number): number {
  if (typeof ms !== 'number' || Number.isNaN(ms) || ms < 0) {
    throw new RangeError(`time must be a non-negative number of ms, got ${String(ms)}`);
  }
  return Math.min(255, Math.ceil(ms / 10));
}

/** A probability 0..1 as the KISS P byte: round(p · 256) − 1, clamped to 0..255. */
export function kissPersistenceByte(p: number): number {
  if (typeof p !== 'number' || Number.isNaN(p) || p < 0 || p > 1) {
    throw new RangeError(`persistence must be a probability in 0..1, got ${String(p)}`);
  }
  return Math.min(255, Math.max(0, Math.round(p * 256) - 1));
}

/** Throws CsmaConfigError naming the first bad field. */
export function validateKissCsma(config: KissCsmaConfig): void {
  for (const field of ['txDelayMs', 'slotTimeMs', 'txTailMs'] as const) {
    const v: unknown = config[field];
    if (typeof v !== 'number' || !(v >= 0 && v <= KISS_MAX_TIME_MS)) {
      throw new CsmaConfigError(field, `${field} must be a number of ms in 0..${KISS_MAX_TIME_MS}, got ${String(v)}`);
    }
  }
  const p: unknown = config.persistence;
  if (typeof p !== 'number' || !(p >= 0 && p <= 1)) {
    throw new CsmaConfigError('persistence', `persistence must be a probability in 0..1, got ${String(p)}`);
  }
  if (typeof config.fullDuplex !== 'boolean') {
    throw new CsmaConfigError('fullDuplex', `fullDuplex must be true or false, got ${String(config.fullDuplex)}`);
  }
}

/** The defaults overlaid with the fields the operator set, validated. */
export function kissCsmaConfig(overrides: Partial<KissCsmaConfig> = {}): KissCsmaConfig {
  const d = DEFAULT_KISS_CSMA;
  const config: KissCsmaConfig = {
    txDelayMs: overrides.txDelayMs ?? d.txDelayMs,
    persistence: overrides.persistence ?? d.persistence,
    slotTimeMs: overrides.slotTimeMs ?? d.slotTimeMs,
    txTailMs: overrides.txTailMs ?? d.txTailMs,
    fullDuplex: overrides.fullDuplex ?? d.fullDuplex,
  };
  validateKissCsma(config);
  return config;
}

/**
 * The KISS frames that set a TNC port's CSMA parameters, in the order TXDELAY, P, SLOTTIME,
 * TXTAIL, FULLDUPLEX. Throws CsmaConfigError for a bad config, RangeError for a port outside 0..15.
 */
export function kissCsmaFrames(config: KissCsmaConfig, port = 0): Uint8Array[] {
  validateKissCsma(config);
  const frame = (command: number, value: number): Uint8Array =>
    encodeKiss({ port, command, data: Uint8Array.of(value) });
  return [
    frame(KissCommand.TXDELAY, kissTimingUnits(config.txDelayMs)),
    frame(KissCommand.P, kissPersistenceByte(config.persistence)),
    frame(KissCommand.SLOTTIME, kissTimingUnits(config.slotTimeMs)),
    frame(KissCommand.TXTAIL, kissTimingUnits(config.txTailMs)),
    frame(KissCommand.FULLDUPLEX, config.fullDuplex ? 1 : 0),
  ];
}

/**
 * The KISS frames for just the parameters the operator set, in the same order: a TNC's own
 * settings (Direwolf's FULLDUP ON, a hardware TNC's jumpers) stay as they are for everything
 * the configuration does not name. Throws like kissCsmaFrames for a bad value.
 */
export function kissCsmaFramesFor(set: Partial<KissCsmaConfig>, port = 0): Uint8Array[] {
  const all = kissCsmaFrames(kissCsmaConfig(set), port);
  const order: Array<keyof KissCsmaConfig> = ['txDelayMs', 'persistence', 'slotTimeMs', 'txTailMs', 'fullDuplex'];
  return all.filter((_, i) => set[order[i]!] !== undefined);
}
