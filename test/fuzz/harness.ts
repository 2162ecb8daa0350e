/**
 * The fuzz harness: seeded mutation of a corpus of valid encodings (and pure random input) fed to
 * one target at a time. A target is a decoder or a state machine that takes bytes from outside;
 * it throws for a defect (a crash, or a broken invariant) and catches its own documented
 * rejections. `npm test` runs every target for ≥ 10⁴ inputs (test/fuzz/fuzz.test.ts); `npm run
 * fuzz` runs ≥ 10⁶ per target or a time budget (test/fuzz/main.ts) and writes a reproducer for
 * each failure, which then goes in test/fuzz/regressions/ and is replayed by `npm test`.
 *
 * Nothing here is random without a seed: the same seed, target and count give the same inputs.
 */
import { Prng } from '../../src/link/prng.js';
import { heapUsed } from '../../bench/measure.js';

export { Prng };

/** A decoder or state machine under fuzz. `S` is the state carried from one input to the next. */
export interface FuzzTarget<S = unknown> {
  readonly name: string;
  /** Valid encodings to mutate; at least one. Called once per run. */
  readonly corpus: () => Uint8Array[];
  /** Longest input generated (default 4096). The target's own caps may be smaller. */
  readonly maxLength?: number;
  /** A fresh state (a decoder with buffers, a node); called at the start and every `resetEvery` inputs. */
  readonly setup?: () => S;
  /** Inputs between two `setup`s (default: never reset). A state machine keeps state across inputs. */
  readonly resetEvery?: number;
  /**
   * Feed one input. Throw for a defect. A documented rejection (a typed error, a counter, a
   * `null`) is not a defect: catch it here with `expectRejection`.
   */
  readonly one: (input: Uint8Array, state: S, rng: Prng) => void;
  /** Invariants on the state (caps on what it holds), checked every 1,000 inputs and at the end. */
  readonly check?: (state: S) => void;
  /** Release what the state holds (timers, sockets); called before each new `setup` and at the end. */
  readonly teardown?: (state: S) => void;
}

/** Thrown for a broken invariant, so a report tells it apart from a crash. */
export class InvariantError extends Error {
  override readonly name = 'InvariantError';
}

/** Throw an InvariantError unless `condition` holds. */
export function invariant(condition: unknown, message: string): asserts condition {
  if (!condition) throw new InvariantError(message);
}

/**
 * Run `fn`; an error for which `isRejection` returns true is swallowed (returns undefined), any
 * other error propagates. TypeError, RangeError from the engine (not ours) and InvariantError are
 * always defects, whatever the predicate says, unless `allowRangeError` is set (some decoders
 * document RangeError as their rejection).
 */
export function expectRejection<T>(
  fn: () => T,
  isRejection: (err: unknown) => boolean,
  options: { allowRangeError?: boolean } = {},
): T | undefined {
  try {
    return fn();
  } catch (err) {
    if (err instanceof InvariantError) throw err;
    if (err instanceof TypeError) throw err;
    if (err instanceof RangeError && !options.allowRangeError) throw err;
    if (err instanceof Error && /Maximum call stack|Invalid array length|out of memory/.test(err.message)) throw err;
    if (isRejection(err)) return undefined;
    throw err;
  }
}

/** Byte equality, for round-trip invariants. */
export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

export function toHex(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex');
}

export function fromHex(hex: string): Uint8Array {
  const clean = hex.replace(/\s+/g, '');
  if (!/^([0-9a-f]{2})*$/i.test(clean)) throw new Error('a reproducer is hex digits, two per byte');
  return new Uint8Array(Buffer.from(clean, 'hex'));
}

// ── Mutation ────────────────────────────────────────────────────────────────────────────────────

const INTERESTING_8 = [0x00, 0x01, 0x7f, 0x80, 0xff, 0xc0, 0xdb, 0xdc, 0xdd, 0x73, 0x50, 0x10, 0x11];
const INTERESTING_32 = [0, 1, 2, 0x7f, 0x80, 0xff, 0x100, 0x7fff, 0x8000, 0xffff, 0x10000, 0x3fffff, 0x400000, 0x400001, 0x7fffffff, 0x80000000, 0xffffffff];

function randomBytes(rng: Prng, length: number): Uint8Array {
  const out = new Uint8Array(length);
  for (let i = 0; i < length; i++) out[i] = rng.int(256);
  return out;
}

function concat(...parts: Uint8Array[]): Uint8Array {
  let length = 0;
  for (const p of parts) length += p.length;
  const out = new Uint8Array(length);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** Write `value` as a `width`-byte integer at `at`, big- or little-endian (a length field). */
function writeInt(buf: Uint8Array, at: number, width: number, value: number, littleEndian: boolean): void {
  for (let i = 0; i < width && at + i < buf.length; i++) {
    const shift = littleEndian ? i * 8 : (width - 1 - i) * 8;
    buf[at + i] = Math.floor(value / 2 ** shift) & 0xff;
  }
}

/** One mutation of `input` (a copy; `input` is not changed). */
function mutateOnce(rng: Prng, input: Uint8Array, corpus: readonly Uint8Array[], maxLength: number): Uint8Array {
  const buf = input.slice();
  const n = buf.length;
  const op = rng.int(10);
  if (n === 0 && op < 7) return randomBytes(rng, 1 + rng.int(16));
  switch (op) {
    case 0: {
      // bit flips: 1 to 8 bits anywhere
      const flips = 1 + rng.int(8);
      for (let i = 0; i < flips; i++) {
        const at = rng.int(n);
        buf[at] = (buf[at] ?? 0) ^ (1 << rng.int(8));
      }
      return buf;
    }
    case 1: {
      // a byte set to an interesting value (framing bytes, magics, edges)
      buf[rng.int(n)] = INTERESTING_8[rng.int(INTERESTING_8.length)] ?? 0;
      return buf;
    }
    case 2: {
      // a random byte
      buf[rng.int(n)] = rng.int(256);
      return buf;
    }
    case 3:
      // truncation
      return buf.subarray(0, rng.int(n));
    case 4: {
      // a length field: an edge value (or the input's own length ± 1) as 1, 2, 3 or 4 bytes
      const width = 1 + rng.int(4);
      const at = rng.int(n);
      const pick = rng.int(3);
      const value =
        pick === 0 ? (INTERESTING_32[rng.int(INTERESTING_32.length)] ?? 0) : pick === 1 ? Math.max(0, n - at + rng.int(5) - 2) : rng.nextU32();
      writeInt(buf, at, width, value % 2 ** (8 * width), rng.int(4) === 0);
      return buf;
    }
    case 5: {
      // delete a range
      const at = rng.int(n);
      const len = 1 + rng.int(Math.min(n - at, 64));
      return concat(buf.subarray(0, at), buf.subarray(at + len));
    }
    case 6: {
      // repeat a slice in place (a field or a block appearing twice, or many times)
      const at = rng.int(n);
      const len = 1 + rng.int(Math.min(n - at, 64));
      const times = 1 + (rng.int(8) === 0 ? rng.int(64) : rng.int(3));
      const slice = buf.subarray(at, at + len);
      const parts: Uint8Array[] = [buf.subarray(0, at + len)];
      for (let i = 0; i < times; i++) parts.push(slice);
      parts.push(buf.subarray(at + len));
      return concat(...parts).subarray(0, maxLength);
    }
    case 7: {
      // splice: the head of this input with the tail of another corpus entry
      const other = corpus[rng.int(corpus.length)] ?? buf;
      const cutA = rng.int(n + 1);
      const cutB = rng.int(other.length + 1);
      return concat(buf.subarray(0, cutA), other.subarray(cutB)).subarray(0, maxLength);
    }
    case 8: {
      // insert random bytes
      const at = rng.int(n + 1);
      return concat(buf.subarray(0, at), randomBytes(rng, 1 + rng.int(32)), buf.subarray(at)).subarray(0, maxLength);
    }
    default: {
      // concatenate two corpus entries (two frames in one read)
      const other = corpus[rng.int(corpus.length)] ?? buf;
      return concat(buf, other).subarray(0, maxLength);
    }
  }
}

/**
 * The i-th input of a run: one in ten is pure random bytes, one in twenty a corpus entry as it
 * is, the rest a corpus entry with 1 to 4 stacked mutations.
 */
export function generate(rng: Prng, corpus: readonly Uint8Array[], maxLength: number): Uint8Array {
  const roll = rng.int(20);
  if (roll < 2) return randomBytes(rng, rng.int(Math.min(maxLength, rng.int(8) === 0 ? maxLength : 256) + 1));
  const base = corpus[rng.int(corpus.length)] ?? new Uint8Array(0);
  if (roll === 2) return base.slice(0, maxLength);
  let out = base.subarray(0, maxLength);
  const stack = 1 + rng.int(4);
  for (let i = 0; i < stack; i++) out = mutateOnce(rng, out, corpus, maxLength);
  return out;
}

// ── Running ─────────────────────────────────────────────────────────────────────────────────────

export interface FuzzFailure {
  readonly target: string;
  /** The input number in the run (0-based); with the seed it reproduces the run up to it. */
  readonly index: number;
  readonly inputHex: string;
  readonly kind: 'crash' | 'invariant';
  readonly message: string;
  readonly stack: string;
}

export interface FuzzResult {
  readonly target: string;
  readonly seed: number;
  readonly tried: number;
  readonly failures: FuzzFailure[];
  readonly slowest: { readonly ms: number; readonly index: number; readonly inputHex: string };
  readonly elapsedMs: number;
  /** Heap used after a forced GC (with --expose-gc) at the start and the end, else without GC. */
  readonly heapStartBytes: number;
  readonly heapEndBytes: number;
  readonly gcForced: boolean;
}

export interface FuzzOptions {
  readonly seed?: number;
  /** Inputs to try (default 10,000). */
  readonly iterations?: number;
  /** Stop after this many seconds even if `iterations` are not done. */
  readonly seconds?: number;
  /** Stop after this many failures (default 5). */
  readonly maxFailures?: number;
  /** Called every 2 s with progress, for a long run. */
  readonly onProgress?: (tried: number, elapsedMs: number) => void;
}

function describe(target: string, index: number, input: Uint8Array, err: unknown): FuzzFailure {
  const e = err instanceof Error ? err : new Error(String(err));
  return {
    target,
    index,
    inputHex: toHex(input),
    kind: e instanceof InvariantError ? 'invariant' : 'crash',
    message: `${e.name}: ${e.message}`,
    stack: e.stack ?? '',
  };
}

/** Run one target. Never throws for what the target does: failures are in the result. */
export function runFuzz<S>(target: FuzzTarget<S>, options: FuzzOptions = {}): FuzzResult {
  const seed = options.seed ?? 1;
  const iterations = options.iterations ?? 10_000;
  const deadline = options.seconds === undefined ? Infinity : performance.now() + options.seconds * 1000;
  const maxFailures = options.maxFailures ?? 5;
  const maxLength = target.maxLength ?? 4096;
  const rng = new Prng(seed);
  const corpus = target.corpus();
  if (corpus.length === 0) throw new Error(`fuzz target ${target.name} has an empty corpus`);
  const failures: FuzzFailure[] = [];
  let slowest = { ms: -1, index: -1, inputHex: '' };
  const start = performance.now();
  let lastProgress = start;
  const heapStart = heapUsed();

  let state = target.setup ? target.setup() : (undefined as S);
  let tried = 0;
  const checkState = (index: number, input: Uint8Array): void => {
    if (!target.check) return;
    try {
      target.check(state);
    } catch (err) {
      failures.push(describe(target.name, index, input, err));
    }
  };
  let last: Uint8Array = new Uint8Array(0);
  for (; tried < iterations && failures.length < maxFailures; tried++) {
    if (target.resetEvery !== undefined && tried > 0 && tried % target.resetEvery === 0) {
      target.teardown?.(state);
      state = target.setup ? target.setup() : (undefined as S);
    }
    const input = generate(rng, corpus, maxLength);
    last = input;
    const t0 = performance.now();
    try {
      target.one(input, state, rng);
    } catch (err) {
      failures.push(describe(target.name, tried, input, err));
      // A state machine that threw may be broken beyond use: start it again.
      target.teardown?.(state);
      state = target.setup ? target.setup() : (undefined as S);
    }
    const t1 = performance.now();
    if (t1 - t0 > slowest.ms) slowest = { ms: t1 - t0, index: tried, inputHex: toHex(input) };
    if (tried % 1000 === 999) {
      checkState(tried, input);
      if (t1 > deadline) {
        tried++;
        break;
      }
      if (options.onProgress && t1 - lastProgress > 2000) {
        lastProgress = t1;
        options.onProgress(tried + 1, t1 - start);
      }
    }
  }
  checkState(tried, last);
  target.teardown?.(state);
  const heapEnd = heapUsed();
  return {
    target: target.name,
    seed,
    tried,
    failures,
    slowest,
    elapsedMs: performance.now() - start,
    heapStartBytes: heapStart.bytes,
    heapEndBytes: heapEnd.bytes,
    gcForced: heapEnd.forced,
  };
}

/** Feed one input (a reproducer) to a fresh state; throws what the target throws. */
export function replay<S>(target: FuzzTarget<S>, input: Uint8Array, seed = 1): void {
  const state = target.setup ? target.setup() : (undefined as S);
  try {
    target.one(input, state, new Prng(seed));
    target.check?.(state);
  } finally {
    target.teardown?.(state);
  }
}
