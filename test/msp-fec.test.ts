/**
 * MSP forward error correction (src/msp/fec.ts): GF(2⁸) arithmetic, the documented coefficient
 * generator, symbols and repair payloads, and the receiver's RepairDecoder (recovery in either
 * arrival order, partial recovery, hostile input, memory bounds), with a fast-check property
 * against a reference rank computation.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  GF_POLYNOMIAL,
  RepairDecoder,
  encodeRepair,
  frameOfSymbol,
  gfInv,
  gfMul,
  mulAddInto,
  repairCoefficient,
  symbolOf,
  type Recovered,
} from '../src/msp/fec.js';

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

/** Bit-serial ("Russian peasant") product modulo the AES polynomial: independent of the tables. */
function slowMul(a: number, b: number): number {
  let r = 0;
  let x = a;
  for (let y = b; y > 0; y >>= 1) {
    if (y & 1) r ^= x;
    x <<= 1;
    if (x & 0x100) x ^= GF_POLYNOMIAL;
  }
  return r;
}

/** The generator exactly as the module's doc comment states it, in BigInt arithmetic. */
function specCoefficient(seed: number, i: number): number {
  if (seed === 0) return 1;
  const M = (1n << 32n) - 1n;
  let h = BigInt(seed) * 65536n + BigInt(i);
  h ^= h >> 16n;
  h = (h * 0x85ebca6bn) & M;
  h ^= h >> 13n;
  h = (h * 0xc2b2ae35n) & M;
  h ^= h >> 16n;
  return Number(1n + (h % 255n));
}

/** Deterministic pseudo-random bytes (a DATA frame: type byte 0x10..0x13, then the fragment). */
function makeFrame(len: number, salt: number): Uint8Array {
  const f = new Uint8Array(len);
  let x = (salt * 2654435761 + 12345) >>> 0 || 1;
  for (let i = 0; i < len; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    f[i] = x & 0xff;
  }
  if (len > 0) f[0] = 0x10 | (salt & 3);
  return f;
}

/** Rank over GF(2⁸) of a matrix given as rows of coefficients (copied). */
function rank(rows: readonly number[][]): number {
  const m = rows.map((r) => r.slice());
  const cols = m[0]?.length ?? 0;
  let rk = 0;
  for (let c = 0; c < cols && rk < m.length; c++) {
    const p = m.findIndex((r, i) => i >= rk && r[c] !== 0);
    if (p < 0) continue;
    [m[rk], m[p]] = [m[p]!, m[rk]!];
    const pr = m[rk]!;
    const inv = gfInv(pr[c]!);
    for (let j = 0; j < cols; j++) pr[j] = gfMul(pr[j]!, inv);
    for (let i = 0; i < m.length; i++) {
      if (i === rk) continue;
      const f = m[i]![c]!;
      if (f === 0) continue;
      for (let j = 0; j < cols; j++) m[i]![j]! ^= gfMul(f, pr[j]!);
    }
    rk++;
  }
  return rk;
}

interface RepairSpec {
  first: number;
  count: number;
  seed: number;
}

/** Coefficient matrix of repairs restricted to the lost packet numbers. */
function lossMatrix(repairs: readonly RepairSpec[], losses: readonly number[]): number[][] {
  return repairs.map((r) =>
    losses.map((n) => (n >= r.first && n < r.first + r.count ? repairCoefficient(r.seed, n - r.first) : 0)),
  );
}

/** Lost packets the repairs determine: e_j lies in the row space iff appending it keeps the rank. */
function determinable(repairs: readonly RepairSpec[], losses: readonly number[]): Set<number> {
  const m = lossMatrix(repairs, losses);
  const rk = rank(m);
  const out = new Set<number>();
  losses.forEach((n, j) => {
    const e = losses.map((_, k) => (k === j ? 1 : 0));
    if (rank([...m, e]) === rk) out.add(n);
  });
  return out;
}

/** A stream of frames numbered base … base + n − 1, their symbols, and repairs over them. */
class Scenario {
  readonly frames: Uint8Array[];
  readonly symbols: Uint8Array[];
  constructor(
    readonly base: number,
    lengths: readonly number[],
  ) {
    this.frames = lengths.map((len, i) => makeFrame(len, base + i));
    this.symbols = this.frames.map(symbolOf);
  }
  symbol(num: number): Uint8Array {
    return this.symbols[num - this.base]!;
  }
  repair(r: RepairSpec): Uint8Array {
    return encodeRepair(this.symbols.slice(r.first - this.base, r.first - this.base + r.count), r.seed);
  }
}

/** Checks every recovered symbol against the original and returns the recovered numbers. */
function check(s: Scenario, got: readonly Recovered[]): number[] {
  for (const g of got) {
    expect(hex(g.symbol)).toBe(hex(s.symbol(g.num)));
    expect(hex(frameOfSymbol(g.symbol)!)).toBe(hex(s.frames[g.num - s.base]!));
  }
  return got.map((g) => g.num);
}

describe('GF(2^8)', () => {
  it('matches the bit-serial product for every pair, with the AES test values', () => {
    const wrong: string[] = [];
    for (let a = 0; a < 256; a++) for (let b = 0; b < 256; b++) if (gfMul(a, b) !== slowMul(a, b)) wrong.push(`${a}·${b}`);
    expect(wrong).toEqual([]);
    expect(gfMul(0x57, 0x83)).toBe(0xc1); // FIPS-197 §4.2
    expect(gfMul(0x57, 0x13)).toBe(0xfe);
    expect(gfInv(0x53)).toBe(0xca);
  });

  it('a · inv(a) = 1 for every a ≠ 0; inv(0) throws', () => {
    const wrong: number[] = [];
    for (let a = 1; a < 256; a++) if (gfMul(a, gfInv(a)) !== 1) wrong.push(a);
    expect(wrong).toEqual([]);
    expect(() => gfInv(0)).toThrow(RangeError);
  });

  it('is distributive and associative (spot checks)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 255 }), fc.integer({ min: 0, max: 255 }), fc.integer({ min: 0, max: 255 }), (a, b, c) => {
        expect(gfMul(a, b ^ c)).toBe(gfMul(a, b) ^ gfMul(a, c));
        expect(gfMul(gfMul(a, b), c)).toBe(gfMul(a, gfMul(b, c)));
        expect(gfMul(a, b)).toBe(gfMul(b, a));
      }),
      { numRuns: 500, seed: 5 },
    );
  });

  it('mulAddInto agrees with gfMul for every coefficient, and touches only the overlap', () => {
    const src = Uint8Array.from({ length: 256 }, (_, i) => i);
    const start = makeFrame(300, 7);
    for (let c = 0; c < 256; c++) {
      const dst = start.slice();
      mulAddInto(dst, src, c);
      const want = start.slice();
      for (let i = 0; i < 256; i++) want[i] = start[i]! ^ gfMul(c, src[i]!);
      expect(hex(dst)).toBe(hex(want));
    }
    const short = new Uint8Array(3);
    mulAddInto(short, src.subarray(1), 1);
    expect([...short]).toEqual([1, 2, 3]);
  });
});

describe('coefficients', () => {
  it('seed 0 is plain XOR; other seeds give non-zero coefficients exactly as documented', () => {
    for (let i = 0; i < 64; i++) expect(repairCoefficient(0, i)).toBe(1);
    expect([0, 1, 2, 3].map((i) => repairCoefficient(1, i))).toEqual([90, 96, 99, 194]);
    expect([0, 1, 2, 3].map((i) => repairCoefficient(0x1234, i))).toEqual([156, 36, 48, 161]);
    const wrong: string[] = [];
    const seen = new Set<number>();
    for (let seed = 1; seed < 65536; seed += 97) {
      for (let i = 0; i < 64; i++) {
        const c = repairCoefficient(seed, i);
        seen.add(c);
        if (!(c >= 1 && c <= 255 && c === specCoefficient(seed, i))) wrong.push(`${seed},${i}: ${c}`);
      }
    }
    expect(wrong).toEqual([]);
    expect(seen.size).toBe(255); // every non-zero element occurs
    expect(repairCoefficient(0xffff, 63)).toBe(specCoefficient(0xffff, 63));
  });
});

describe('symbols and encoding', () => {
  it('prefixes the frame length and reads it back, padded or not', () => {
    const f = makeFrame(300, 1);
    const s = symbolOf(f);
    expect(s.length).toBe(302);
    expect([s[0], s[1]]).toEqual([0x01, 0x2c]);
    expect(hex(frameOfSymbol(s)!)).toBe(hex(f));
    const padded = new Uint8Array(400);
    padded.set(s);
    expect(hex(frameOfSymbol(padded)!)).toBe(hex(f));
    expect(frameOfSymbol(symbolOf(new Uint8Array(0)))!.length).toBe(0);
    expect(frameOfSymbol(s.subarray(0, 301))).toBeUndefined();
    expect(frameOfSymbol(new Uint8Array(1))).toBeUndefined();
    expect(() => symbolOf(new Uint8Array(65536))).toThrow(RangeError);
  });

  it('a repair is as long as the longest symbol; refuses bad counts and seeds', () => {
    const syms = [symbolOf(makeFrame(5, 1)), symbolOf(makeFrame(40, 2)), symbolOf(makeFrame(1, 3))];
    const r = encodeRepair(syms, 0);
    expect(r.length).toBe(42);
    const x = new Uint8Array(42);
    for (const s of syms) for (let i = 0; i < s.length; i++) x[i]! ^= s[i]!;
    expect(hex(r)).toBe(hex(x));
    expect(encodeRepair([new Uint8Array(0)], 0).length).toBe(2);
    expect(() => encodeRepair([], 0)).toThrow(RangeError);
    expect(() => encodeRepair(Array.from({ length: 65 }, () => syms[0]!), 0)).toThrow(RangeError);
    expect(() => encodeRepair(syms, 65536)).toThrow(RangeError);
  });
});

describe('RepairDecoder', () => {
  const lengths8 = [0, 17, 3, 120, 1, 64, 250, 9];

  it('XOR repair recovers one loss among 8 symbols of different lengths, frame bytes exact', () => {
    for (let lost = 0; lost < 8; lost++) {
      const s = new Scenario(500, lengths8);
      const dec = new RepairDecoder();
      for (let i = 0; i < 8; i++) if (i !== lost) expect(dec.addKnown(500 + i, s.symbols[i]!)).toEqual([]);
      const got = dec.addRepair(500, 8, 0, s.repair({ first: 500, count: 8, seed: 0 }));
      expect(check(s, got)).toEqual([500 + lost]);
      expect(got[0]!.symbol.length).toBe(lengths8[lost]! + 2);
      expect(dec.stats.recovered).toBe(1);
      expect(dec.equationCount).toBe(0);
      // Now known: the same repair again teaches nothing.
      expect(dec.addRepair(500, 8, 0, s.repair({ first: 500, count: 8, seed: 0 }))).toEqual([]);
      expect(dec.stats.dropped.useless).toBe(1);
    }
  });

  it('k losses among n with k seeded repairs: all recovered; with k − 1: nothing wrong', () => {
    const n = 40;
    const s = new Scenario(10_000, Array.from({ length: n }, (_, i) => (i * 37) % 200));
    const losses = [10_001, 10_007, 10_008, 10_020, 10_033, 10_039];
    const k = losses.length;
    const repairs = Array.from({ length: k }, (_, j) => ({ first: 10_000, count: n, seed: 1000 + j * 17 }));
    expect(rank(lossMatrix(repairs, losses))).toBe(k);

    const full = new RepairDecoder();
    const partial = new RepairDecoder();
    for (let i = 0; i < n; i++) {
      if (losses.includes(10_000 + i)) continue;
      full.addKnown(10_000 + i, s.symbols[i]!);
      partial.addKnown(10_000 + i, s.symbols[i]!);
    }
    const got: Recovered[] = [];
    for (const r of repairs) got.push(...full.addRepair(r.first, r.count, r.seed, s.repair(r)));
    expect(check(s, got).sort()).toEqual(losses);
    expect(full.equationCount).toBe(0);

    const few: Recovered[] = [];
    for (const r of repairs.slice(0, k - 1)) few.push(...partial.addRepair(r.first, r.count, r.seed, s.repair(r)));
    check(s, few);
    expect(few.length).toBeLessThan(k);
    expect(few.length).toBe(determinable(repairs.slice(0, k - 1), losses).size);
    expect(partial.stats.inconsistent).toBe(0);
  });

  it('recovers the same whether repairs arrive before or after the known symbols', () => {
    const s = new Scenario(70, Array.from({ length: 24 }, (_, i) => 1 + ((i * 53) % 300)));
    const losses = [71, 75, 90];
    const repairs: RepairSpec[] = [
      { first: 70, count: 12, seed: 0 },
      { first: 74, count: 20, seed: 9 },
      { first: 70, count: 24, seed: 4242 },
    ];
    const known = s.symbols.map((_, i) => 70 + i).filter((n) => !losses.includes(n));

    const after = new RepairDecoder();
    const a: Recovered[] = [];
    for (const n of known) a.push(...after.addKnown(n, s.symbol(n)));
    for (const r of repairs) a.push(...after.addRepair(r.first, r.count, r.seed, s.repair(r)));

    const before = new RepairDecoder();
    const b: Recovered[] = [];
    for (const r of repairs) b.push(...before.addRepair(r.first, r.count, r.seed, s.repair(r)));
    expect(b).toEqual([]);
    expect(before.equationCount).toBe(3);
    for (const n of [...known].reverse()) b.push(...before.addKnown(n, s.symbol(n)));

    expect(check(s, a).sort()).toEqual(losses);
    expect(check(s, b).sort()).toEqual(losses);
    expect(before.equationCount).toBe(0);
    expect(after.equationCount).toBe(0);
  });

  it('property: returned symbols are exact, and exactly the determined losses are recovered', () => {
    const scenario = fc
      .record({
        base: fc.integer({ min: 0, max: 1_000_000 }),
        lengths: fc.array(fc.integer({ min: 1, max: 300 }), { minLength: 1, maxLength: 64 }),
      })
      .chain(({ base, lengths }) => {
        const n = lengths.length;
        const repair = fc
          .record({ first: fc.integer({ min: 0, max: n - 1 }), count: fc.integer({ min: 1, max: n }), seed: fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 0xffff })) })
          .map((r) => ({ first: base + r.first, count: Math.min(r.count, n - r.first), seed: r.seed }));
        return fc.record({
          base: fc.constant(base),
          lengths: fc.constant(lengths),
          lost: fc.uniqueArray(fc.integer({ min: 0, max: n - 1 }), { maxLength: Math.min(n, 16) }),
          repairs: fc.array(repair, { maxLength: 20 }),
          order: fc.array(fc.integer(), { minLength: n + 20, maxLength: n + 20 }),
        });
      });
    const seen = { fullMulti: 0, partial: 0, none: 0, early: 0 };
    fc.assert(
      fc.property(scenario, ({ base, lengths, lost, repairs, order }) => {
        const s = new Scenario(base, lengths);
        const losses = lost.map((i) => base + i).sort((x, y) => x - y);
        type Ev = { key: number; run: (d: RepairDecoder) => Recovered[] };
        const events: Ev[] = [];
        lengths.forEach((_, i) => {
          if (!lost.includes(i)) events.push({ key: order[i]!, run: (d) => d.addKnown(base + i, s.symbols[i]!) });
        });
        repairs.forEach((r, j) => {
          const payload = s.repair(r);
          events.push({ key: order[lengths.length + j]!, run: (d) => d.addRepair(r.first, r.count, r.seed, payload) });
        });
        events.sort((x, y) => x.key - y.key);

        const dec = new RepairDecoder();
        const got: number[] = [];
        for (const e of events) got.push(...check(s, e.run(dec)));
        // Each packet at most once; a packet still in flight when its repairs came may be
        // recovered too (correctly: check() compared every symbol with the original).
        expect(new Set(got).size).toBe(got.length);
        const gotLost = got.filter((g) => losses.includes(g));

        const expected = determinable(repairs, losses);
        expect(new Set(gotLost)).toEqual(expected);
        if (rank(lossMatrix(repairs, losses)) >= losses.length) expect(gotLost.length).toBe(losses.length);
        expect(dec.stats.inconsistent).toBe(0);
        expect(dec.stats.recovered).toBe(got.length);

        if (losses.length >= 2 && gotLost.length === losses.length) seen.fullMulti++;
        else if (gotLost.length > 0 && gotLost.length < losses.length) seen.partial++;
        else if (losses.length > 0 && gotLost.length === 0) seen.none++;
        if (got.length > gotLost.length) seen.early++;
      }),
      { numRuns: 300, seed: 20240611 },
    );
    // The runs cover the interesting cases: several losses all solved, partial solutions,
    // nothing solvable, and packets recovered before they arrived.
    expect(seen.fullMulti).toBeGreaterThan(10);
    expect(seen.partial).toBeGreaterThan(10);
    expect(seen.none).toBeGreaterThan(10);
    expect(seen.early).toBeGreaterThan(10);
  });

  it('refuses and counts hostile repairs without throwing', () => {
    const dec = new RepairDecoder({ maxSpan: 64, maxSymbolBytes: 2048 });
    expect(dec.addRepair(0, 0, 0, new Uint8Array(4))).toEqual([]);
    expect(dec.addRepair(0, 1.5, 0, new Uint8Array(4))).toEqual([]);
    expect(dec.addRepair(Number.NaN, 1, 0, new Uint8Array(4))).toEqual([]);
    expect(dec.addRepair(0, 1, 70_000, new Uint8Array(4))).toEqual([]);
    expect(dec.addRepair(0, 1, -1, new Uint8Array(4))).toEqual([]);
    expect(dec.addRepair(0, 4, 0, new Uint8Array(1))).toEqual([]);
    expect(dec.addRepair(0, 4, 0, new Uint8Array(0))).toEqual([]);
    expect(dec.addRepair(0, 4, 0, null as unknown as Uint8Array)).toEqual([]);
    expect(dec.stats.dropped.malformed).toBe(8);
    expect(dec.addRepair(0, 65, 0, new Uint8Array(4))).toEqual([]);
    expect(dec.addRepair(0, 1e9, 0, new Uint8Array(4))).toEqual([]);
    expect(dec.stats.dropped.tooWide).toBe(2);
    expect(dec.addRepair(0, 4, 0, new Uint8Array(2049))).toEqual([]);
    expect(dec.stats.dropped.tooLarge).toBe(1);
    expect(dec.addRepair(-5, 4, 0, new Uint8Array(4))).toEqual([]);
    expect(dec.stats.dropped.stale).toBe(1);
    expect(dec.stats.repairs).toBe(12);
    expect(dec.equationCount).toBe(0);

    expect(dec.addKnown(3, new Uint8Array(1))).toEqual([]);
    expect(dec.addKnown(3, new Uint8Array(2049))).toEqual([]);
    expect(dec.addKnown(Number.POSITIVE_INFINITY, new Uint8Array(4))).toEqual([]);
    expect(dec.stats.knownRefused).toBe(3);
  });

  it('never throws on random calls, and its stores stay bounded', () => {
    const call = fc.oneof(
      fc.record({
        k: fc.constant('repair' as const),
        first: fc.integer({ min: -3, max: 300 }),
        count: fc.integer({ min: -1, max: 80 }),
        seed: fc.integer({ min: -1, max: 0x10001 }),
        payload: fc.uint8Array({ maxLength: 80 }),
      }),
      fc.record({ k: fc.constant('known' as const), num: fc.integer({ min: -3, max: 300 }), symbol: fc.uint8Array({ maxLength: 80 }) }),
      fc.record({ k: fc.constant('forget' as const), num: fc.integer({ min: -3, max: 300 }) }),
    );
    fc.assert(
      fc.property(fc.array(call, { maxLength: 60 }), (calls) => {
        const dec = new RepairDecoder({ maxEquations: 6, maxSpan: 16, maxSymbolBytes: 64 });
        for (const c of calls) {
          let got: Recovered[] = [];
          if (c.k === 'repair') got = dec.addRepair(c.first, c.count, c.seed, c.payload);
          else if (c.k === 'known') got = dec.addKnown(c.num, c.symbol);
          else dec.forgetBelow(c.num);
          for (const g of got) expect(frameOfSymbol(g.symbol)!.length + 2).toBe(g.symbol.length);
          expect(dec.equationCount).toBeLessThanOrEqual(6);
          expect(dec.knownCount).toBeLessThanOrEqual(16);
        }
      }),
      { numRuns: 200, seed: 77 },
    );
  });

  it('counts contradictions as inconsistent and returns nothing for them', () => {
    const s = new Scenario(0, [10, 20, 30, 40]);
    // A corrupt length prefix for the one unknown: its prefix would claim more than its bytes.
    const dec = new RepairDecoder();
    for (const n of [0, 1, 2]) dec.addKnown(n, s.symbol(n));
    const bad = s.repair({ first: 0, count: 4, seed: 0 });
    bad[0]! ^= 0x40;
    expect(dec.addRepair(0, 4, 0, bad)).toEqual([]);
    expect(dec.stats.inconsistent).toBe(1);
    expect(dec.stats.recovered).toBe(0);
    // Non-zero padding after the recovered frame.
    const padded = new Uint8Array(60);
    padded.set(s.repair({ first: 0, count: 4, seed: 0 }));
    padded[59] = 1;
    expect(dec.addRepair(0, 4, 0, padded)).toEqual([]);
    expect(dec.stats.inconsistent).toBe(2);
    // Nothing unknown, but the payload disagrees with the known symbols.
    const all = new RepairDecoder();
    for (const n of [0, 1, 2, 3]) all.addKnown(n, s.symbol(n));
    const wrong = s.repair({ first: 0, count: 4, seed: 3 });
    wrong[5]! ^= 1;
    expect(all.addRepair(0, 4, 3, wrong)).toEqual([]);
    // Shorter than a known symbol it covers.
    expect(all.addRepair(0, 4, 0, new Uint8Array(10))).toEqual([]);
    expect(all.stats.inconsistent).toBe(2);
    expect(all.stats.dropped.useless).toBe(0);
    // The honest repair is still accepted afterwards.
    expect(check(s, dec.addRepair(0, 4, 0, s.repair({ first: 0, count: 4, seed: 0 })))).toEqual([3]);
  });

  it('keeps at most maxEquations equations, evicting the oldest', () => {
    const s = new Scenario(0, Array.from({ length: 64 }, (_, i) => 1 + (i % 50)));
    const dec = new RepairDecoder({ maxEquations: 8 });
    // Nothing is known: each repair over 64 unknowns stays pending.
    for (let j = 0; j < 200; j++) {
      expect(dec.addRepair(0, 64, j + 1, s.repair({ first: 0, count: 64, seed: j + 1 }))).toEqual([]);
      expect(dec.equationCount).toBeLessThanOrEqual(8);
    }
    expect(dec.stats.dropped.evicted).toBe(192);
    // Learning 56 of the 64 leaves 8 unknowns and 8 equations: everything else is solved.
    const got: Recovered[] = [];
    for (let n = 0; n < 56; n++) got.push(...dec.addKnown(n, s.symbol(n)));
    expect(check(s, got).sort((a, b) => a - b)).toEqual([56, 57, 58, 59, 60, 61, 62, 63]);
    expect(dec.equationCount).toBe(0);
  });

  it('keeps known symbols only within maxSpan of the newest and above the floor', () => {
    const s = new Scenario(0, Array.from({ length: 300 }, (_, i) => i % 40));
    const dec = new RepairDecoder({ maxSpan: 16 });
    for (let n = 0; n < 300; n++) {
      dec.addKnown(n, s.symbol(n));
      expect(dec.knownCount).toBeLessThanOrEqual(16);
    }
    expect(dec.keepFrom).toBe(284);
    // A repair starting before the window comes too late.
    expect(dec.addRepair(283, 2, 0, s.repair({ first: 283, count: 2, seed: 0 }))).toEqual([]);
    expect(dec.stats.dropped.stale).toBe(1);
    dec.forgetBelow(290);
    expect(dec.knownCount).toBe(10);
    expect(dec.keepFrom).toBe(290);
    dec.forgetBelow(10); // never moves down
    expect(dec.keepFrom).toBe(290);
  });

  it('forgetBelow drops equations that involve a forgotten unknown', () => {
    const s = new Scenario(100, Array.from({ length: 10 }, (_, i) => 5 + i));
    const pending = new RepairDecoder();
    for (const n of [100, 101, 104, 106, 107, 108, 109]) pending.addKnown(n, s.symbol(n));
    pending.addRepair(100, 5, 0, s.repair({ first: 100, count: 5, seed: 0 })); // 102, 103 unknown
    pending.addRepair(105, 5, 7, s.repair({ first: 105, count: 5, seed: 7 })); // 105 unknown → recovered
    expect(pending.stats.recovered).toBe(1);
    expect(pending.equationCount).toBe(1);
    pending.forgetBelow(103);
    expect(pending.equationCount).toBe(0);
    expect(pending.stats.dropped.forgotten).toBe(1);
    expect(pending.addKnown(103, s.symbol(103))).toEqual([]);
    expect(pending.addKnown(99, s.symbol(100))).toEqual([]);
  });
});
