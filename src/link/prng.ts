/**
 * A small seeded pseudo-random generator for deterministic tests and fault injection: mulberry32
 * (Tommy Ettinger, 2017; public domain), 32 bits of state, period 2^32. Not for cryptography.
 */
export class Prng {
  private state: number;

  /** `seed` is any safe integer; it is reduced to 32 bits. */
  constructor(seed: number) {
    if (!Number.isSafeInteger(seed)) throw new RangeError(`seed must be a safe integer, got ${seed}`);
    this.state = seed >>> 0;
  }

  /** The next 32-bit unsigned integer. */
  nextU32(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  }

  /** A number in [0, 1). */
  next(): number {
    return this.nextU32() / 2 ** 32;
  }

  /** An integer in [0, n), for a positive integer n ≤ 2^32. */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
}
