/**
 * The "airtime" of a link that costs nothing on any band but must not flood what is behind it
 * (an MQTT broker and the sites beyond it, a TCP link between two sites): a frame occupies the
 * link for the longer of its bytes at `bytesPerSecond` and one frame's share of `framesPerSecond`,
 *
 *   airtime = max(bytes · 1000 / bytesPerSecond, 1000 / framesPerSecond) ms,
 *
 * so the interface's pacer — which sends one frame after another, each when the previous one's
 * airtime has passed — holds the link to both caps, control frames first, with no timer of the
 * driver's own.
 */
import type { AirtimeModel } from './model.js';

export interface RateCapOptions {
  /** Bytes per second at most, > 0. */
  bytesPerSecond: number;
  /** Frames per second at most, > 0. */
  framesPerSecond: number;
  /** Largest frame, bytes (the link's MTU). */
  maxBytes: number;
}

export class RateCapAirtimeModel implements AirtimeModel {
  readonly kind = 'rate-cap';
  readonly maxBytes: number;
  readonly bytesPerSecond: number;
  readonly framesPerSecond: number;

  constructor(options: RateCapOptions) {
    for (const k of ['bytesPerSecond', 'framesPerSecond'] as const) {
      const v = options[k];
      if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) throw new RangeError(`${k} must be a positive number, got ${String(v)}`);
    }
    if (!Number.isSafeInteger(options.maxBytes) || options.maxBytes < 1) throw new RangeError(`maxBytes must be a positive integer, got ${String(options.maxBytes)}`);
    this.bytesPerSecond = options.bytesPerSecond;
    this.framesPerSecond = options.framesPerSecond;
    this.maxBytes = options.maxBytes;
  }

  airtimeMs(bytes: number): number {
    if (!Number.isInteger(bytes) || bytes < 0 || bytes > this.maxBytes) {
      throw new RangeError(`bytes must be an integer in 0..${this.maxBytes}, got ${String(bytes)}`);
    }
    return Math.max((bytes * 1000) / this.bytesPerSecond, 1000 / this.framesPerSecond);
  }

  maxBytesWithin(limitMs: number): number {
    if (!(limitMs >= 1000 / this.framesPerSecond)) return -1;
    return Math.min(this.maxBytes, Math.floor((limitMs * this.bytesPerSecond) / 1000));
  }
}
