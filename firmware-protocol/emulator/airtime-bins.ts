/**
 * Airtime used over a sliding window, kept in fixed bins as modem firmware does: memory is one
 * small array whatever the traffic. `used(now)` counts every bin still inside the window, so it
 * errs on the side of counting a little more airtime than a sliding window would.
 */
export class AirtimeBins {
  private readonly bins: Float64Array;
  /** Absolute index (time / binMs) of the newest bin touched. */
  private head = 0;

  constructor(
    readonly windowMs: number,
    readonly binMs: number,
  ) {
    const n = Math.ceil(windowMs / binMs);
    if (!(n >= 1)) throw new RangeError(`airtime window ${windowMs} ms / bin ${binMs} ms is empty`);
    this.bins = new Float64Array(n);
  }

  private advance(now: number): void {
    const index = Math.floor(now / this.binMs);
    if (index <= this.head) return;
    const steps = Math.min(index - this.head, this.bins.length);
    for (let i = 1; i <= steps; i++) this.bins[(this.head + i) % this.bins.length] = 0;
    this.head = index;
  }

  add(now: number, airtimeMs: number): void {
    this.advance(now);
    this.bins[this.head % this.bins.length]! += airtimeMs;
  }

  used(now: number): number {
    this.advance(now);
    let sum = 0;
    for (const v of this.bins) sum += v;
    return sum;
  }

  /** The time at which the oldest bin leaves the window (the next time `used` can fall). */
  nextRelease(now: number): number {
    return (Math.floor(now / this.binMs) + 1) * this.binMs;
  }
}
