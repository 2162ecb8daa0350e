/**
 * An airtime budget over a sliding window: at no instant t may the transmissions overlapping
 * [t − window, t] add up to more than fraction × window. Sans-IO: times are ms passed in.
 *
 * It keeps each transmission as an interval. Transmissions on one interface never overlap and
 * are recorded in time order; intervals wholly older than the window are pruned, so memory is
 * bounded by limit / (shortest frame's airtime) — for EU868's 10 % sub-band and 25 ms LoRa
 * frames, 14,400 intervals at most.
 *
 * Placing a new transmission [s, s + d]: the usage of a window ending at t ∈ [s, s + d] is the
 * past overlap of [t − W, s] plus (t − s); it never decreases in t (the new transmission grows at
 * rate 1, the past shrinks at rate ≤ 1), so the only window to check is the one ending at s + d:
 *     overlap(past, [s + d − W, s]) + d ≤ limit.
 * The earliest such s is found by walking the past from its oldest end.
 */

export interface BudgetSpec {
  /** For status output, e.g. 'eu868 g3 duty cycle' or 'user short'. */
  name: string;
  windowMs: number;
  /** Fraction of the window that may be used, 0 < fraction ≤ 1. */
  fraction: number;
}

export class SlidingBudget {
  readonly limitMs: number;
  private starts: number[] = [];
  private ends: number[] = [];
  private head = 0;
  /** Sum of durations of intervals from `head` on. */
  private total = 0;

  constructor(readonly spec: BudgetSpec) {
    if (!(spec.windowMs > 0) || !Number.isFinite(spec.windowMs)) {
      throw new RangeError(`budget '${spec.name}': window must be a positive number of ms, got ${spec.windowMs}`);
    }
    if (!(spec.fraction > 0 && spec.fraction <= 1)) {
      throw new RangeError(`budget '${spec.name}': fraction must be in (0, 1], got ${spec.fraction}`);
    }
    this.limitMs = spec.fraction * spec.windowMs;
  }

  /** Number of intervals kept (for memory accounting and tests). */
  get size(): number {
    return this.starts.length - this.head;
  }

  record(start: number, durationMs: number): void {
    this.starts.push(start);
    this.ends.push(start + durationMs);
    this.total += durationMs;
  }

  /** Drops intervals that ended before `now − window`: they can never count again. */
  prune(now: number): void {
    const cutoff = now - this.spec.windowMs;
    while (this.head < this.starts.length && this.ends[this.head]! <= cutoff) {
      this.total -= this.ends[this.head]! - this.starts[this.head]!;
      this.head++;
    }
    if (this.head > 1024 && this.head * 2 > this.starts.length) {
      this.starts = this.starts.slice(this.head);
      this.ends = this.ends.slice(this.head);
      this.head = 0;
    }
    if (this.size === 0) this.total = 0; // no drift from float sums
  }

  /** Airtime used in the window ending at `now`. */
  used(now: number): number {
    const from = now - this.spec.windowMs;
    let sum = 0;
    for (let i = this.head; i < this.starts.length; i++) {
      const a = Math.max(this.starts[i]!, from);
      const b = Math.min(this.ends[i]!, now);
      if (b > a) sum += b - a;
    }
    return sum;
  }

  /**
   * The earliest start ≥ `notBefore` for a transmission of `durationMs`, where `notBefore` is at
   * or after the end of every recorded transmission; Infinity if the frame alone exceeds the limit.
   */
  earliestStart(notBefore: number, durationMs: number): number {
    if (durationMs > this.limitMs) return Infinity;
    const allowed = this.limitMs - durationMs; // past usage the window may still hold
    let remaining = this.total;
    if (remaining <= allowed) return notBefore;
    // Cut the past from its oldest end until what is left fits.
    for (let i = this.head; i < this.starts.length; i++) {
      const length = this.ends[i]! - this.starts[i]!;
      if (remaining - length <= allowed) {
        const edge = this.starts[i]! + (remaining - allowed); // window must start here or later
        return Math.max(notBefore, edge - durationMs + this.spec.windowMs);
      }
      remaining -= length;
    }
    return notBefore; // unreachable: remaining reaches 0 ≤ allowed
  }

  /** A copy, for what-if estimates. */
  clone(): SlidingBudget {
    const c = new SlidingBudget(this.spec);
    c.starts = this.starts.slice(this.head);
    c.ends = this.ends.slice(this.head);
    c.total = this.total;
    return c;
  }
}
