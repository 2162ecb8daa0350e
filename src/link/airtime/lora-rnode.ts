/**
 * LoRa through an RNode: what the firmware puts on air for one DATA frame from its host, and its
 * physical-layer and channel-access timing. Facts from RNode firmware (its Config.h, transmit()
 * and updateBitrate(), as of 1.6x–1.8x); the formulas are written here from that description.
 *
 * Packets. Outside promiscuous mode every packet starts with a one-byte header (high nibble a
 * random sequence number, bit 0 the split flag). A frame of 1..254 bytes is one packet of n + 1
 * bytes. A frame of 255..508 bytes is split: the first packet carries the header and 254 bytes,
 * the second the header and the rest. The firmware closes a packet whenever 255 bytes are written
 * and the frame is split, so a frame of exactly 508 bytes leaves a third packet holding only the
 * header: 255 + 255 + 1 bytes. Frames over 508 bytes are dropped silently; in promiscuous mode
 * there is no header and the frame is cut to 255 bytes.
 *
 * Preamble. The firmware does not keep LoRa's usual 8 symbols: it aims for 24 ms of preamble
 * (6 ms when the bit rate exceeds 30 kbit/s) and never goes below 18 symbols.
 *
 * CSMA. Slot = 12 symbols, truncated to whole ms, at most 100 ms; below 24 ms it is 24 ms (6 ms
 * for fast rates). DIFS = 2 slots (SIFS is 0). The contention window is drawn per transmission
 * from a band chosen by the modem's own recent airtime (rnodeContentionWindow).
 */
import { loraAirtime, validateLoraParams, type LoraParams } from './lora.js';
import type { AirtimeModel } from './model.js';

/** Largest DATA frame the firmware takes from its host. */
export const RNODE_HOST_MTU = 508;
/** Largest LoRa packet (the SX127x/SX126x length field is one byte). */
export const RNODE_PACKET_MAX = 255;
export const RNODE_HEADER_BYTES = 1;
/** Data bytes one packet carries after its header. */
export const RNODE_PACKET_DATA = RNODE_PACKET_MAX - RNODE_HEADER_BYTES;
export const RNODE_SPLIT_FLAG = 0x01;
/**
 * The largest frame meshgw sends through an RNode: 508 would cost a third, header-only packet
 * (a whole preamble for one byte) and leave the receiving modem holding a split half that
 * swallows the first half of the next split frame with the same sequence nibble (1 in 16).
 */
export const RNODE_RECOMMENDED_MTU = RNODE_HOST_MTU - 1;

const PREAMBLE_TARGET_MS = 24;
const PREAMBLE_FAST_DELTA_MS = 18;
const PREAMBLE_MIN_SYMBOLS = 18;
const FAST_THRESHOLD_BPS = 30_000;
const GUARD_THRESHOLD_BPS = 14_000;
const SLOT_SYMBOLS = 12;
const SLOT_MIN_MS = 24;
const SLOT_MIN_FAST_DELTA_MS = 18;
const SLOT_MAX_MS = 100;
const CW_PER_BAND = 15;
const CW_BANDS = 4;
const BAND_1_MAX_AIRTIME_PCT = 7;
const BAND_N_MIN_AIRTIME_PCT = 85;

/** Sizes of the LoRa packets one DATA frame of `frameBytes` becomes; [] if the firmware drops it. */
export function rnodePackets(frameBytes: number, promiscuous = false): number[] {
  if (!Number.isInteger(frameBytes) || frameBytes < 1) return [];
  if (promiscuous) return [Math.min(frameBytes, RNODE_PACKET_MAX)];
  if (frameBytes > RNODE_HOST_MTU) return [];
  if (frameBytes <= RNODE_PACKET_DATA) return [frameBytes + RNODE_HEADER_BYTES];
  const rest = frameBytes - RNODE_PACKET_DATA;
  // The firmware starts a new packet after every 255 written bytes of a split frame, even when
  // nothing is left to write (508 bytes: 255 + 255 + a header alone).
  return rest === RNODE_PACKET_DATA ? [RNODE_PACKET_MAX, RNODE_PACKET_MAX, RNODE_HEADER_BYTES] : [RNODE_PACKET_MAX, rest + RNODE_HEADER_BYTES];
}

/** The packets themselves: header (random nibble, split flag) and data, as the firmware sends them. */
export function rnodeSplit(frame: Uint8Array, sequence: number, promiscuous = false): Uint8Array[] {
  const sizes = rnodePackets(frame.length, promiscuous);
  if (promiscuous) return sizes.map((n) => frame.slice(0, n));
  const header = ((sequence & 0x0f) << 4) | (sizes.length > 1 ? RNODE_SPLIT_FLAG : 0);
  const out: Uint8Array[] = [];
  let offset = 0;
  for (const size of sizes) {
    const packet = new Uint8Array(size);
    packet[0] = header;
    packet.set(frame.subarray(offset, offset + size - RNODE_HEADER_BYTES), RNODE_HEADER_BYTES);
    offset += size - RNODE_HEADER_BYTES;
    out.push(packet);
  }
  return out;
}

export interface RNodePhy {
  symbolMs: number;
  /** Symbols per second, as the firmware truncates it. */
  symbolRate: number;
  /** The firmware's own estimate of the bit rate, bits/s. */
  bitRate: number;
  preambleSymbols: number;
  /** Preamble time rounded up to whole ms (STAT_PHYPRM's field). */
  preambleMs: number;
  csmaSlotMs: number;
  difsMs: number;
  /**
   * Whether one channel access sends every queued frame back to back (the firmware flushes its
   * queue below 14 kbit/s) or just one.
   */
  flushQueue: boolean;
}

/** The firmware's timing for a radio configured with `p` (sf, bandwidth, cr). */
export function rnodePhy(p: Pick<LoraParams, 'sf' | 'bandwidth' | 'cr'>): RNodePhy {
  validateLoraParams({ sf: p.sf, bandwidth: p.bandwidth, cr: p.cr });
  const symbolMs = 2 ** p.sf / (p.bandwidth / 1000);
  const bitRate = Math.trunc(p.sf * (4 / p.cr) / symbolMs * 1000);
  const fast = bitRate > FAST_THRESHOLD_BPS;
  const target = (PREAMBLE_TARGET_MS - (fast ? PREAMBLE_FAST_DELTA_MS : 0)) / symbolMs;
  const preambleSymbols = target < PREAMBLE_MIN_SYMBOLS ? PREAMBLE_MIN_SYMBOLS : Math.ceil(target);
  let slot = Math.trunc(symbolMs * SLOT_SYMBOLS);
  if (slot > SLOT_MAX_MS) slot = SLOT_MAX_MS;
  if (slot < SLOT_MIN_MS) slot = SLOT_MIN_MS - (fast ? SLOT_MIN_FAST_DELTA_MS : 0);
  return {
    symbolMs,
    symbolRate: Math.trunc(1000 / symbolMs),
    bitRate,
    preambleSymbols,
    preambleMs: Math.ceil(preambleSymbols * symbolMs),
    csmaSlotMs: slot,
    difsMs: 2 * slot,
    flushQueue: bitRate <= GUARD_THRESHOLD_BPS,
  };
}

/**
 * The contention window band for the modem's own airtime of the last 7.5–15 s (percent): band 1
 * up to 7 %, rising to 4 at 85 % and above (Arduino's integer map()). The window is then drawn
 * from [(band − 1)·15, band·15 − 1) slots.
 */
export function rnodeContentionWindow(airtimePercent: number): { band: number; minSlots: number; maxSlots: number } {
  const pct = Math.trunc(airtimePercent);
  let band: number;
  if (pct <= BAND_1_MAX_AIRTIME_PCT) band = 1;
  else {
    const at = pct + BAND_1_MAX_AIRTIME_PCT;
    band = Math.trunc(((at - BAND_1_MAX_AIRTIME_PCT) * (CW_BANDS - 2)) / (BAND_N_MIN_AIRTIME_PCT - BAND_1_MAX_AIRTIME_PCT)) + 2;
  }
  band = Math.min(band, CW_BANDS);
  return { band, minSlots: (band - 1) * CW_PER_BAND, maxSlots: band * CW_PER_BAND - 1 };
}

/**
 * Airtime of DATA frames through an RNode: the sum over its packets, each with its header, at
 * the firmware's preamble (or the one the modem reported in STAT_PHYPRM). Packets of one frame
 * go back to back, so no gap is counted between them.
 */
export class RNodeAirtimeModel implements AirtimeModel {
  readonly kind = 'lora-rnode';
  readonly maxBytes: number;
  readonly params: Readonly<LoraParams>;
  /** The preamble every packet is costed with: the firmware's rule, or the one given. */
  readonly preambleSymbols: number;

  constructor(params: Pick<LoraParams, 'sf' | 'bandwidth' | 'cr'> & { preamble?: number }, maxBytes = RNODE_RECOMMENDED_MTU) {
    if (!Number.isInteger(maxBytes) || maxBytes < 1 || maxBytes > RNODE_HOST_MTU) {
      throw new RangeError(`an RNode takes frames of 1 to ${RNODE_HOST_MTU} bytes, got a maximum of ${maxBytes}`);
    }
    const full: LoraParams = { sf: params.sf, bandwidth: params.bandwidth, cr: params.cr, preamble: params.preamble ?? rnodePhy(params).preambleSymbols };
    validateLoraParams(full);
    this.params = Object.freeze(full);
    this.preambleSymbols = full.preamble!;
    this.maxBytes = maxBytes;
  }

  /** The same radio with the preamble a modem reported. */
  withPreamble(preambleSymbols: number): RNodeAirtimeModel {
    return new RNodeAirtimeModel({ ...this.params, preamble: preambleSymbols }, this.maxBytes);
  }

  airtimeMs(bytes: number): number {
    if (!Number.isInteger(bytes) || bytes < 0 || bytes > this.maxBytes) {
      throw new RangeError(`an RNode frame is 0 to ${this.maxBytes} bytes here, got ${bytes}`);
    }
    // An empty frame is costed as one header-only packet (the firmware refuses it; callers ask
    // for 0 only to learn the fixed cost).
    const sizes = bytes === 0 ? [RNODE_HEADER_BYTES] : rnodePackets(bytes);
    let us = 0;
    for (const size of sizes) us += Math.round(loraAirtime(this.params, size).airtimeMs * 1000);
    return us / 1000;
  }

  maxBytesWithin(limitMs: number): number {
    if (typeof limitMs !== 'number' || Number.isNaN(limitMs)) throw new RangeError(`limitMs must be a number, got ${String(limitMs)}`);
    // Airtime never decreases with frame size (the 508-byte third packet only adds), so a binary
    // search finds the last size that fits.
    let lo = -1;
    let hi = this.maxBytes + 1;
    while (hi - lo > 1) {
      const mid = (lo + hi) >> 1;
      if (this.airtimeMs(mid) <= limitMs) lo = mid;
      else hi = mid;
    }
    return lo;
  }
}
