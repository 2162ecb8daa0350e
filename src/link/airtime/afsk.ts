/**
 * Airtime of AX.25 frames sent by a KISS TNC: 1200 baud AFSK (Bell 202 tones) or 9600 baud FSK
 * (G3RUH). Both send one bit per baud, so the bit rate is the baud rate; G3RUH's scrambler and
 * both modems' NRZI coding change no bit counts.
 *
 * What the transmitter sends for one frame, in order:
 *   TXDELAY          the keying delay, filled with flags by the TNC; counted as its time only
 *   opening flag     8 bits (01111110)
 *   frame + FCS      (bytes + 2) · 8 bits, plus the zeros inserted by bit stuffing
 *   closing flag     8 bits
 *   TXTAIL           time the transmitter is held keyed afterwards
 *
 *   airtimeMs = txDelayMs + (16 + n + floor(n / 5)) · 1000 / baud + txTailMs,  n = (bytes + 2) · 8
 *
 * Bit stuffing, worst case: the sender inserts a 0 after every five consecutive 1s between the
 * flags, including after the FCS's last five bits if they are 1s (the receiver deletes any 0 that
 * follows five 1s, so that 0 must be there). An inserted 0 ends the run, so every insertion needs
 * five fresh data bits: at most floor(n / 5) insertions, and all-ones data reaches it (ones at
 * positions 5, 10, ..., and a 0 after each). floor((n − 1) / 5) would under-count whenever n is a
 * multiple of 5, e.g. 3 bytes + FCS = 40 bits → 8 insertions, not 7. The opening flag ends in 0,
 * so no run carries into the frame.
 *
 * Rounding: the sum is formed as one numerator, (txDelayMs + txTailMs) · baud + bits · 1000, and
 * divided once by the baud rate. With whole-millisecond TXDELAY and TXTAIL (the usual case, and
 * KISS can only express multiples of 10 ms) the numerator is an exact integer, so the result is
 * the double nearest the exact rational value: correctly rounded.
 *
 * Sources:
 * - AX.25 Link Access Protocol for Amateur Packet Radio, version 2.2 (TAPR, 1998): §3 frame
 *   structure (flag 01111110; address 14–70 octets: destination, source and up to 8 repeaters of
 *   7 octets; control 1 octet, 2 for modulo-128 I and S frames; PID 1 octet; information field up
 *   to N1, default 256 octets; 16-bit FCS), §3.6 bit stuffing. HDLC (ISO/IEC 13239) defines the
 *   same zero-bit insertion.
 * - J. Miller, G3RUH, "9600 Baud Packet Radio Modem Design" (1988).
 * - TXDELAY and TXTAIL defaults: see ../csma.ts (Dire Wolf's 300 ms and 100 ms).
 *
 * Default maxBytes 329 = 70 (ten addresses) + 2 (control) + 1 (PID) + 256 (N1): the largest frame
 * an AX.25 2.2 station with default N1 sends, without FCS and flags.
 */
import { DEFAULT_KISS_CSMA } from '../csma.js';
import type { AirtimeModel } from './model.js';

export type Ax25Modem = 'afsk1200' | 'fsk9600';

export const AX25_BAUD: Readonly<Record<Ax25Modem, number>> = Object.freeze({
  afsk1200: 1200,
  fsk9600: 9600,
});

export const AX25_DEFAULT_MAX_BYTES = 329;

export interface Ax25AirtimeOptions {
  modem: Ax25Modem;
  /** Keying delay, ms; default 300. Give the value the TNC really uses (KISS sends 10 ms units). */
  txDelayMs?: number;
  /** Hold after the frame, ms; default 100. */
  txTailMs?: number;
  /** Largest frame (address + control + PID + info), bytes; default 329. */
  maxBytes?: number;
}

/** Flag bits around one frame: one opening and one closing flag. */
const FLAG_BITS = 16;

export class Ax25AirtimeModel implements AirtimeModel {
  readonly kind: Ax25Modem;
  readonly baud: number;
  readonly txDelayMs: number;
  readonly txTailMs: number;
  readonly maxBytes: number;

  constructor(options: Ax25AirtimeOptions) {
    const { modem } = options;
    if (modem !== 'afsk1200' && modem !== 'fsk9600') {
      throw new RangeError(`modem must be 'afsk1200' or 'fsk9600', got ${String(modem)}`);
    }
    this.kind = modem;
    this.baud = AX25_BAUD[modem];
    this.txDelayMs = checkMs('txDelayMs', options.txDelayMs ?? DEFAULT_KISS_CSMA.txDelayMs);
    this.txTailMs = checkMs('txTailMs', options.txTailMs ?? DEFAULT_KISS_CSMA.txTailMs);
    const maxBytes = options.maxBytes ?? AX25_DEFAULT_MAX_BYTES;
    if (!Number.isSafeInteger(maxBytes) || maxBytes < 1) {
      throw new RangeError(`maxBytes must be a positive integer, got ${String(maxBytes)}`);
    }
    this.maxBytes = maxBytes;
  }

  /** Bits between TXDELAY and TXTAIL: flags, frame and FCS with worst-case bit stuffing. */
  frameBits(bytes: number): number {
    if (!Number.isInteger(bytes) || bytes < 0 || bytes > this.maxBytes) {
      throw new RangeError(`bytes must be an integer in 0..${this.maxBytes}, got ${String(bytes)}`);
    }
    const n = (bytes + 2) * 8;
    return FLAG_BITS + n + Math.floor(n / 5);
  }

  airtimeMs(bytes: number): number {
    const bits = this.frameBits(bytes);
    return ((this.txDelayMs + this.txTailMs) * this.baud + bits * 1000) / this.baud;
  }

  maxBytesWithin(limitMs: number): number {
    if (typeof limitMs !== 'number' || Number.isNaN(limitMs)) {
      throw new RangeError(`limitMs must be a number, got ${String(limitMs)}`);
    }
    // Airtime grows with size, so binary-search the last size that fits.
    let lo = -1; // fits, or the "nothing fits" sentinel
    let hi = this.maxBytes + 1; // does not fit (sentinel)
    while (hi - lo > 1) {
      const mid = Math.floor((lo + hi) / 2);
      if (this.airtimeMs(mid) <= limitMs) lo = mid;
      else hi = mid;
    }
    return lo;
  }
}

function checkMs(name: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
    throw new RangeError(`${name} must be a non-negative number of ms, got ${String(value)}`);
  }
  return value;
}
