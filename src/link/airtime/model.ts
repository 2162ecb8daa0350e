/**
 * What every airtime model offers the pacer and the interface registry: the time one frame of
 * `bytes` occupies the channel, and the largest frame that fits in a time limit.
 */
export interface AirtimeModel {
  /** 'lora', 'afsk1200', 'fsk9600', 'fixed-rate' — for status output. */
  readonly kind: string;
  /** Largest frame the model can cost (LoRa: 255 bytes; others: the link MTU or unbounded). */
  readonly maxBytes: number;
  /** Channel time of one frame of `bytes` bytes, in ms. Throws RangeError for an impossible size. */
  airtimeMs(bytes: number): number;
  /** Largest size (0..maxBytes) whose airtime is ≤ limitMs, or −1 if not even 0 bytes fits. */
  maxBytesWithin(limitMs: number): number;
}
