/**
 * MSP forward error correction: the arithmetic behind the REPAIR frame (SPEC.md, "REPAIR") and a
 * bounded decoder for the receiver. Sans-IO and pure: no timers, no IO; packet numbers here are
 * full, non-wrapping integers (the connection expands the 16-bit wire numbers first).
 *
 *   symbol      u16 BE length L of the DATA frame, then the L frame bytes (type byte + fragment)
 *   repair      Σ cᵢ · symbolᵢ over GF(2⁸), i = 0 … count − 1 for packets first … first + count − 1,
 *               every symbol zero-padded to the longest, so the payload is as long as the longest
 *
 * GF(2⁸) is the AES field: polynomial x⁸ + x⁴ + x³ + x + 1 (0x11B); addition is XOR. Log and exp
 * tables for the generator 3 are built when the module loads, and from them a 64 KiB table of all
 * products, so `mulAddInto` costs one table read and one XOR per byte.
 *
 * Coefficients (`repairCoefficient(seed, i)`, i = index of the packet within the repair, 0-based):
 *
 *   seed = 0:  cᵢ = 1                                  (plain XOR parity, the only mandatory case)
 *   seed ≠ 0:  h = seed × 65536 + i                    (u32; seed and i are both u16)
 *              h = h XOR (h >>> 16)
 *              h = (h × 0x85EBCA6B) mod 2³²
 *              h = h XOR (h >>> 13)
 *              h = (h × 0xC2B2AE35) mod 2³²
 *              h = h XOR (h >>> 16)
 *              cᵢ = 1 + (h mod 255)                   (never 0: every covered packet counts)
 *
 * (the 32-bit finaliser of MurmurHash3, unsigned arithmetic throughout; `>>>` is a logical shift).
 * For example seed 1 gives c₀ … c₃ = 90, 96, 99, 194, and seed 0x1234 gives 156, 36, 48, 161.
 *
 * The decoder (`RepairDecoder`) keeps the symbols it knows and the repairs that still have unknown
 * packets, as a system of linear equations in reduced row-echelon form over GF(2⁸): every repair
 * is reduced by the known symbols and the stored equations at once, so each unknown that the
 * equations determine (any subset of unknowns with as many independent equations) is recovered as
 * soon as it is determined, whatever the order in which repairs and packets arrive.
 */

import { MAX_REPAIR_COUNT } from './wire.js';

// ---------------------------------------------------------------------------------------------
// GF(2⁸) with the AES polynomial

/** x⁸ + x⁴ + x³ + x + 1. */
export const GF_POLYNOMIAL = 0x11b;
/** The generator of the multiplicative group used for the log/exp tables. */
export const GF_GENERATOR = 3;

/** EXP[i] = 3^i for i in 0..509 (doubled so that EXP[log a + log b] needs no reduction). */
const EXP = new Uint8Array(510);
/** LOG[a] = i with 3^i = a, for a in 1..255 (LOG[0] is unused). */
const LOG = new Uint8Array(256);
/** MUL[a × 256 + b] = a · b: every product, 64 KiB. */
const MUL = new Uint8Array(256 * 256);

{
  let x = 1;
  for (let i = 0; i < 255; i++) {
    EXP[i] = x;
    EXP[i + 255] = x;
    LOG[x] = i;
    // x · 3 = x · 2 + x, where x · 2 is a shift reduced by the polynomial.
    const twice = x & 0x80 ? ((x << 1) ^ GF_POLYNOMIAL) & 0xff : x << 1;
    x = twice ^ x;
  }
  for (let a = 1; a < 256; a++) {
    const la = LOG[a]!;
    for (let b = 1; b < 256; b++) MUL[(a << 8) | b] = EXP[la + LOG[b]!]!;
  }
}

/** a · b in GF(2⁸) (a, b in 0..255; other values are reduced to their low byte). */
export function gfMul(a: number, b: number): number {
  return MUL[((a & 0xff) << 8) | (b & 0xff)]!;
}

/** The multiplicative inverse of a in 1..255; throws RangeError for 0. */
export function gfInv(a: number): number {
  const v = a & 0xff;
  if (v === 0) throw new RangeError('gfInv(0): zero has no inverse');
  return EXP[255 - LOG[v]!]!;
}

/**
 * dst ^= c · src, in place, over the first `min(dst.length, src.length)` bytes. c = 0 changes
 * nothing; c = 1 is a plain XOR.
 */
export function mulAddInto(dst: Uint8Array, src: Uint8Array, c: number): void {
  const n = Math.min(dst.length, src.length);
  const k = c & 0xff;
  if (k === 0) return;
  if (k === 1) {
    for (let i = 0; i < n; i++) dst[i]! ^= src[i]!;
    return;
  }
  const row = MUL.subarray(k << 8, (k << 8) + 256);
  for (let i = 0; i < n; i++) dst[i]! ^= row[src[i]!]!;
}

/** buf = c · buf, in place (c = 0 zeroes it). */
function scaleInPlace(buf: Uint8Array, c: number): void {
  const k = c & 0xff;
  if (k === 1) return;
  const row = MUL.subarray(k << 8, (k << 8) + 256);
  for (let i = 0; i < buf.length; i++) buf[i] = row[buf[i]!]!;
}

// ---------------------------------------------------------------------------------------------
// Coefficients, symbols, encoding

/** The coefficient of the packet at `index` (0-based within the repair) under `seed`: 1..255. */
export function repairCoefficient(seed: number, index: number): number {
  const s = seed & 0xffff;
  if (s === 0) return 1;
  // `^` and Math.imul give signed 32-bit results; `>>> 0` takes them back to u32.
  let h = ((s << 16) | (index & 0xffff)) >>> 0;
  h = (h ^ (h >>> 16)) >>> 0;
  h = Math.imul(h, 0x85ebca6b) >>> 0;
  h = (h ^ (h >>> 13)) >>> 0;
  h = Math.imul(h, 0xc2b2ae35) >>> 0;
  h = (h ^ (h >>> 16)) >>> 0;
  return 1 + (h % 255);
}

/** Bytes of a symbol's length prefix. */
export const SYMBOL_PREFIX = 2;
/** Longest DATA frame a symbol can carry (its prefix is a u16). */
export const MAX_SYMBOL_FRAME = 0xffff;

/** The (unpadded) symbol of a DATA frame: u16 BE length, then the frame. RangeError above 65,535. */
export function symbolOf(frame: Uint8Array): Uint8Array {
  if (frame.length > MAX_SYMBOL_FRAME) throw new RangeError(`frame of ${frame.length} bytes: a symbol holds at most 65535`);
  const s = new Uint8Array(SYMBOL_PREFIX + frame.length);
  s[0] = frame.length >>> 8;
  s[1] = frame.length & 0xff;
  s.set(frame, SYMBOL_PREFIX);
  return s;
}

/**
 * The DATA frame inside a (possibly padded) symbol: a view of the bytes after the prefix, as many
 * as the prefix says. undefined when the symbol is shorter than its prefix claims (a corrupt
 * recovery) or than the prefix itself.
 */
export function frameOfSymbol(symbol: Uint8Array): Uint8Array | undefined {
  if (symbol.length < SYMBOL_PREFIX) return undefined;
  const len = (symbol[0]! << 8) | symbol[1]!;
  if (SYMBOL_PREFIX + len > symbol.length) return undefined;
  return symbol.subarray(SYMBOL_PREFIX, SYMBOL_PREFIX + len);
}

/**
 * The repair payload over `symbols` (those of packets first, first + 1, …, in order): Σ cᵢ·symbolᵢ
 * with cᵢ = repairCoefficient(seed, i), as long as the longest symbol and at least 2 bytes.
 * RangeError unless 1 … 64 symbols and seed is a u16.
 */
export function encodeRepair(symbols: readonly Uint8Array[], seed: number): Uint8Array {
  if (symbols.length < 1 || symbols.length > MAX_REPAIR_COUNT) {
    throw new RangeError(`a repair covers 1..${MAX_REPAIR_COUNT} packets, not ${symbols.length}`);
  }
  if (!Number.isInteger(seed) || seed < 0 || seed > 0xffff) throw new RangeError(`seed ${seed} is not a u16`);
  let len = SYMBOL_PREFIX;
  for (const s of symbols) len = Math.max(len, s.length);
  const out = new Uint8Array(len);
  symbols.forEach((s, i) => mulAddInto(out, s, repairCoefficient(seed, i)));
  return out;
}

// ---------------------------------------------------------------------------------------------
// The receiver's decoder

/** A packet the decoder recovered: its number and its unpadded symbol (prefix + frame). */
export interface Recovered {
  num: number;
  symbol: Uint8Array;
}

export interface RepairDecoderOptions {
  /** Equations (repairs with unknowns) kept at most; beyond, the oldest is dropped. Default 64. */
  maxEquations?: number;
  /** Widest repair accepted (packets covered). Default 64 (MAX_REPAIR_COUNT). */
  maxSpan?: number;
  /** Longest repair payload (and known symbol) accepted, in bytes. Default 2048. */
  maxSymbolBytes?: number;
}

export interface RepairDecoderStats {
  /** addRepair calls. */
  repairs: number;
  /** Packets recovered (returned by addRepair or addKnown). */
  recovered: number;
  /** Repairs or equations given up, by reason. */
  dropped: {
    /** count, first or seed not integers in range, payload under 2 bytes. */
    malformed: number;
    /** count above maxSpan. */
    tooWide: number;
    /** payload above maxSymbolBytes. */
    tooLarge: number;
    /** covers a number below the floor or outside the window of kept symbols (too late). */
    stale: number;
    /** nothing left to learn: every covered packet known, or implied by the stored equations. */
    useless: number;
    /** the oldest equation, pushed out beyond maxEquations. */
    evicted: number;
    /** equations on a number below the floor, dropped by forgetBelow. */
    forgotten: number;
  };
  /**
   * Contradictions: a repair shorter than a known symbol it covers, an equation that reduces to
   * 0 = non-zero, or a recovered symbol whose length prefix exceeds its bytes or whose padding is
   * not zero. The offending equation is dropped and nothing is returned for it.
   */
  inconsistent: number;
  /** addKnown calls refused (symbol under 2 or over maxSymbolBytes bytes, number not an integer). */
  knownRefused: number;
}

/** One stored equation: Σ cols[n] · symbol(n) = payload, with cols[pivot] = 1. */
interface Row {
  /** Unknown packet number → non-zero coefficient. */
  cols: Map<number, number>;
  payload: Uint8Array;
  /** The unknown this row solves for: it appears in no other row. */
  pivot: number;
  /** Insertion order, for eviction (oldest first). */
  age: number;
}

/**
 * The receiver's side of REPAIR. Feed it every DATA packet's symbol (`addKnown`) and every
 * REPAIR (`addRepair`); each returns the packets that became recoverable. Advance the floor
 * (`forgetBelow`) as the cumulative point moves.
 *
 * Known symbols are kept only from max(floor, horizon − maxSpan + 1), where horizon is the highest
 * packet number seen (known or covered by a repair): later repairs can cover no more, and a repair
 * starting below that is refused as stale. Memory is therefore bounded by about
 * (maxSpan + maxEquations) × maxSymbolBytes bytes of symbols and payloads (plus each equation's
 * coefficients, at most maxEquations × maxSpan entries altogether). Each call costs at most
 * O(maxEquations × (maxSymbolBytes + maxEquations × maxSpan)) (one elimination pass over the
 * stored equations), plus O(maxSpan × maxSymbolBytes) to reduce a repair by the known symbols.
 *
 * Never throws on hostile input: refused repairs are counted in `stats`. Symbols given to
 * `addKnown` are kept by reference and must not be modified afterwards.
 */
export class RepairDecoder {
  readonly maxEquations: number;
  readonly maxSpan: number;
  readonly maxSymbolBytes: number;
  readonly stats: RepairDecoderStats = {
    repairs: 0,
    recovered: 0,
    dropped: { malformed: 0, tooWide: 0, tooLarge: 0, stale: 0, useless: 0, evicted: 0, forgotten: 0 },
    inconsistent: 0,
    knownRefused: 0,
  };

  private readonly known = new Map<number, Uint8Array>();
  private rows: Row[] = [];
  private floor = 0;
  private horizon = -Infinity;
  private nextAge = 0;

  constructor(opts: RepairDecoderOptions = {}) {
    this.maxEquations = positiveInt(opts.maxEquations, 64);
    this.maxSpan = positiveInt(opts.maxSpan, MAX_REPAIR_COUNT);
    this.maxSymbolBytes = Math.max(SYMBOL_PREFIX, positiveInt(opts.maxSymbolBytes, 2048));
  }

  /** Stored equations (≤ maxEquations). */
  get equationCount(): number {
    return this.rows.length;
  }

  /** Known symbols kept (≤ maxSpan once the window has filled, fewer with a higher floor). */
  get knownCount(): number {
    return this.known.size;
  }

  /** Lowest number a new repair may cover, and the lowest known symbol kept. */
  get keepFrom(): number {
    return Math.max(this.floor, this.horizon - this.maxSpan + 1);
  }

  /** Packet `num` is known (received, or recovered elsewhere); `symbol` is its unpadded symbol. */
  addKnown(num: number, symbol: Uint8Array): Recovered[] {
    if (!Number.isSafeInteger(num) || !(symbol instanceof Uint8Array) || symbol.length < SYMBOL_PREFIX || symbol.length > this.maxSymbolBytes) {
      this.stats.knownRefused++;
      return [];
    }
    if (num < this.floor || this.known.has(num)) return [];
    const out: Recovered[] = [];
    this.learn(num, symbol, out);
    this.raiseHorizon(num);
    return out;
  }

  /**
   * A REPAIR over packets first … first + count − 1 with coefficients from `seed`. Returns the
   * packets it made recoverable (possibly together with earlier repairs), each also known now.
   */
  addRepair(first: number, count: number, seed: number, payload: Uint8Array): Recovered[] {
    this.stats.repairs++;
    const d = this.stats.dropped;
    if (
      !Number.isSafeInteger(first) || !Number.isSafeInteger(count) || count < 1 ||
      !Number.isSafeInteger(first + count) || !Number.isInteger(seed) || seed < 0 || seed > 0xffff ||
      !(payload instanceof Uint8Array) || payload.length < SYMBOL_PREFIX
    ) {
      d.malformed++;
      return [];
    }
    if (count > this.maxSpan) {
      d.tooWide++;
      return [];
    }
    if (payload.length > this.maxSymbolBytes) {
      d.tooLarge++;
      return [];
    }
    if (first < this.keepFrom) {
      d.stale++;
      return [];
    }

    // Substitute the known symbols; the rest are the unknowns.
    const acc = payload.slice();
    const cols = new Map<number, number>();
    for (let i = 0; i < count; i++) {
      const num = first + i;
      const c = repairCoefficient(seed, i);
      const sym = this.known.get(num);
      if (sym === undefined) {
        cols.set(num, c);
      } else if (sym.length > acc.length) {
        this.stats.inconsistent++;
        return [];
      } else {
        mulAddInto(acc, sym, c);
      }
    }
    const row: Row = { cols, payload: acc, pivot: 0, age: this.nextAge++ };
    // Eliminate the stored pivots (the rows are in reduced echelon form: their pivots appear
    // nowhere else, so one pass leaves no pivot in the new row).
    for (const r of this.rows) {
      const f = row.cols.get(r.pivot);
      if (f !== undefined) addScaled(row, r, f);
    }
    this.raiseHorizon(first + count - 1);
    const out: Recovered[] = [];
    if (row.cols.size === 0) {
      if (isZero(row.payload)) d.useless++;
      else this.stats.inconsistent++;
      return out;
    }
    this.insert(row);
    this.harvest(out);
    while (this.rows.length > this.maxEquations) {
      let oldest = 0;
      for (let i = 1; i < this.rows.length; i++) if (this.rows[i]!.age < this.rows[oldest]!.age) oldest = i;
      this.rows.splice(oldest, 1);
      d.evicted++;
    }
    return out;
  }

  /**
   * The floor: packets below `num` will never be needed. Drops their known symbols and every
   * equation that involves one of them as an unknown. The floor never moves down.
   */
  forgetBelow(num: number): void {
    if (!Number.isSafeInteger(num) || num <= this.floor) return;
    this.floor = num;
    this.trimKnown();
    const kept: Row[] = [];
    for (const r of this.rows) {
      let below = false;
      for (const n of r.cols.keys()) if (n < num) below = true;
      if (below) this.stats.dropped.forgotten++;
      else kept.push(r);
    }
    this.rows = kept;
  }

  // -------------------------------------------------------------------------------------------

  private raiseHorizon(num: number): void {
    if (num <= this.horizon) return;
    this.horizon = num;
    this.trimKnown();
  }

  private trimKnown(): void {
    const from = this.keepFrom;
    for (const n of this.known.keys()) if (n < from) this.known.delete(n);
  }

  /** `num`'s symbol is now known: keep it (inside the window) and substitute it everywhere. */
  private learn(num: number, symbol: Uint8Array, out: Recovered[]): void {
    if (num >= this.keepFrom) this.known.set(num, symbol);
    let orphan: Row | undefined;
    const kept: Row[] = [];
    for (const r of this.rows) {
      const c = r.cols.get(num);
      if (c === undefined) {
        kept.push(r);
        continue;
      }
      if (symbol.length > r.payload.length) {
        this.stats.inconsistent++;
        continue;
      }
      mulAddInto(r.payload, symbol, c);
      r.cols.delete(num);
      if (r.pivot === num) orphan = r;
      else kept.push(r);
    }
    this.rows = kept;
    if (orphan !== undefined) {
      // It lost its pivot but holds no other row's pivot: it goes back in as a new row.
      if (orphan.cols.size > 0) this.insert(orphan);
      else if (!isZero(orphan.payload)) this.stats.inconsistent++;
    }
    this.harvest(out);
  }

  /** Adds a row holding no stored pivot: picks its pivot, normalises it, clears it elsewhere. */
  private insert(row: Row): void {
    let pivot = Infinity;
    for (const n of row.cols.keys()) if (n < pivot) pivot = n;
    const c = row.cols.get(pivot)!;
    if (c !== 1) {
      const inv = gfInv(c);
      scaleInPlace(row.payload, inv);
      for (const [n, v] of row.cols) row.cols.set(n, gfMul(v, inv));
    }
    row.pivot = pivot;
    for (const r of this.rows) {
      const f = r.cols.get(pivot);
      if (f !== undefined) addScaled(r, row, f);
    }
    this.rows.push(row);
  }

  /** Recovers every row left with its pivot alone (its pivot appears in no other row). */
  private harvest(out: Recovered[]): void {
    const kept: Row[] = [];
    const solved: Row[] = [];
    for (const r of this.rows) (r.cols.size === 1 ? solved : kept).push(r);
    if (solved.length === 0) return;
    this.rows = kept;
    for (const r of solved) {
      const c = r.cols.get(r.pivot)!;
      if (c !== 1) scaleInPlace(r.payload, gfInv(c));
      const symbol = trimSymbol(r.payload);
      if (symbol === undefined) {
        this.stats.inconsistent++;
        continue;
      }
      this.stats.recovered++;
      out.push({ num: r.pivot, symbol });
      if (r.pivot >= this.keepFrom) this.known.set(r.pivot, symbol);
    }
  }
}

/** row ^= f · other (coefficients and payload; the payload grows to the longer of the two). */
function addScaled(row: Row, other: Row, f: number): void {
  if (other.payload.length > row.payload.length) {
    const grown = new Uint8Array(other.payload.length);
    grown.set(row.payload);
    row.payload = grown;
  }
  mulAddInto(row.payload, other.payload, f);
  for (const [n, v] of other.cols) {
    const x = (row.cols.get(n) ?? 0) ^ gfMul(f, v);
    if (x === 0) row.cols.delete(n);
    else row.cols.set(n, x);
  }
}

function isZero(b: Uint8Array): boolean {
  for (let i = 0; i < b.length; i++) if (b[i] !== 0) return false;
  return true;
}

/** A solved, padded symbol cut to prefix + frame; undefined if the prefix or padding is wrong. */
function trimSymbol(padded: Uint8Array): Uint8Array | undefined {
  const frame = frameOfSymbol(padded);
  if (frame === undefined) return undefined;
  const end = SYMBOL_PREFIX + frame.length;
  for (let i = end; i < padded.length; i++) if (padded[i] !== 0) return undefined;
  return padded.slice(0, end);
}

function positiveInt(v: number | undefined, fallback: number): number {
  return v !== undefined && Number.isSafeInteger(v) && v >= 1 ? v : fallback;
}
