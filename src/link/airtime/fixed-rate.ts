/**
 * Airtime of a link with a plain bit rate and no per-frame overhead worth modelling: Wi-Fi ad hoc
 * or UDP links, optionally capped to a rate the operator chooses.
 *
 * airtime = bytes · 8 bits / bitRate. With no cap (bitRate undefined or Infinity) every frame
 * costs 0 ms and the pacer never holds one back.
 *
 * The default maxBytes, 1200, is the datagram size a UDP sender can expect to cross any IPv6 path
 * without fragmentation (RFC 8200 §5: minimum link MTU 1280, less 40 bytes of IPv6 header and
 * 8 of UDP leaves 1232; 1200 is the round figure QUIC uses for the same reason, RFC 9000 §14).
 */
import type { AirtimeModel } from './model.js';

export interface FixedRateOptions {
  /** Bits per second, > 0; undefined or Infinity for no cap (airtime 0). */
  bitRate?: number;
  /** Largest frame in bytes, a positive integer; default 1200. */
  maxBytes?: number;
}

export const DEFAULT_FIXED_RATE_MAX_BYTES = 1200;

export class FixedRateAirtimeModel implements AirtimeModel {
  readonly kind = 'fixed-rate';
  readonly maxBytes: number;
  /** Bits per second; Infinity when uncapped. */
  readonly bitRate: number;

  constructor(options: FixedRateOptions = {}) {
    const bitRate = options.bitRate ?? Infinity;
    if (typeof bitRate !== 'number' || Number.isNaN(bitRate) || bitRate <= 0) {
      throw new RangeError(`bitRate must be a positive number of bits/s or Infinity, got ${String(bitRate)}`);
    }
    const maxBytes = options.maxBytes ?? DEFAULT_FIXED_RATE_MAX_BYTES;
    if (!Number.isSafeInteger(maxBytes) || maxBytes < 1) {
      throw new RangeError(`maxBytes must be a positive integer, got ${String(maxBytes)}`);
    }
    this.bitRate = bitRate;
    this.maxBytes = maxBytes;
  }

  /** One rounding: bytes · 8000 is an exact integer, divided once by the rate. */
  airtimeMs(bytes: number): number {
    if (!Number.isInteger(bytes) || bytes < 0 || bytes > this.maxBytes) {
      throw new RangeError(`bytes must be an integer in 0..${this.maxBytes}, got ${String(bytes)}`);
    }
    return this.bitRate === Infinity ? 0 : (bytes * 8000) / this.bitRate;
  }

  maxBytesWithin(limitMs: number): number {
    if (typeof limitMs !== 'number' || Number.isNaN(limitMs)) {
      throw new RangeError(`limitMs must be a number, got ${String(limitMs)}`);
    }
    if (limitMs < 0) return -1;
    if (this.bitRate === Infinity) return this.maxBytes;
    // Estimate from the inverse formula, then settle by the forward one so that the answer agrees
    // with airtimeMs exactly despite rounding in either direction.
    let n = Math.min(this.maxBytes, Math.floor((limitMs * this.bitRate) / 8000));
    while (n < this.maxBytes && this.airtimeMs(n + 1) <= limitMs) n++;
    while (n >= 0 && this.airtimeMs(n) > limitMs) n--;
    return n;
  }
}
