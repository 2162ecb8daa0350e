/**
 * The receiving side of Strokkur, sans-IO.
 *
 * `ReceiveState` rebuilds one message by Gaussian elimination over GF(2), incrementally: every
 * chunk is reduced against what is held the moment it arrives, so any k linearly independent
 * chunks decode, in any order, and a chunk that adds nothing is handed back at once.
 *
 * What is held (the invariant after every chunk):
 * - `present`: the source chunks received (their columns are known outright);
 * - `dense`: redundant rows in reduced echelon form, one per pivot column; a pivot is a column
 *   whose source chunk is missing; each row's coefficients have no bit in a present column nor
 *   in another row's pivot column;
 * - one payload slot per held column: the source chunk itself for a present column, the reduced
 *   row's payload for a pivot column. When the rank reaches k every row is down to its pivot
 *   alone: the slots are the source chunks, and decoding is done.
 *
 * Where the slots live. A message's first chunks get a slot each (so a state that never gets
 * far — a flood of one chunk per UUID — holds and accounts only what it received). Once it holds
 * ⌈k / 32⌉ independent chunks it moves to one store of k slots, slot j at column j: from then on
 * nothing is allocated per chunk (a source is one copy into its slot; a redundant row one copy
 * and XOR passes over the store at word offsets), and at full rank the store is the coded data
 * in order, so the message is a view of it (`messageView`; with a chunk size that is not a
 * multiple of 4 the slots are first closed up in place). The store is accounted from the moment
 * it exists: bufferedBytes is what the state holds, never less.
 *
 * Owed sources. In the store, a row's share of the present source chunks is owed, not added: each
 * held row is 2 × cw words, its coefficients then the present sources its payload still lacks
 * (row operations XOR both halves, so the owed set follows the payload). At full rank
 * `sumPending` adds them four rows at a time through 15 class accumulators: each owed source is
 * read once per four rows instead of once per row.
 *
 * `Receiver` routes datagrams from many sources to their states under caps (SPEC.md).
 */
import { HASH_LENGTH, decodeChunk, digestAlgorithmOf, headerProblem, type Chunk, type ChunkHeader, type DigestAlgorithm } from './chunk.js';
import { coefficientWords, createDigest, digestsEqual, rowCoefficients, xorAt, xorGather } from './code.js';

export type AddChunkResult = { status: number; recycled?: Chunk };

/** A state moves to its one store of k slots once it holds ⌈k / STORE_AFTER⌉ independent chunks. */
const STORE_AFTER = 32;

/** The lowest set bit of v's first n words, or -1. */
function lowestBit(v: Uint32Array, n: number): number {
  for (let w = 0; w < n; w++) {
    const x = v[w]!;
    if (x !== 0) return (w << 5) + (31 - Math.clz32(x & -x));
  }
  return -1;
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * Scratch of sumPending, shared by every state (it runs to completion, synchronously): the 16
 * class accumulators (grown to the largest chunk size seen: at most 16 × 64 KiB), the class
 * member lists, the accumulator offsets.
 */
let accumulators = new Uint32Array(0);
const CLASSES: number[][] = Array.from({ length: 16 }, () => []);
const ACC_OFFSETS: number[] = [];

function storeAt(k: number): number {
  return Math.max(1, Math.ceil(k / STORE_AFTER));
}

export class ReceiveState {
  readonly uuid: Uint8Array;
  readonly k: number;
  readonly messageSize: number;
  readonly chunkSize: number;
  readonly rows: number;
  readonly seed: number;
  readonly keyed: boolean;
  readonly digest: DigestAlgorithm;

  /** Words per payload slot (chunkSize rounded up to 4 bytes). */
  private readonly words: number;
  /** Words per coefficient vector. */
  private readonly cw: number;
  private readonly present: Uint32Array;
  /** Slots of the first chunks, by column, until the store exists. */
  private sparse: Map<number, Uint32Array> | undefined = new Map();
  /** k slots of `words` words, slot j at word j × words (undefined until ⌈k/32⌉ are held). */
  private store: Uint32Array | undefined;
  private store8: Uint8Array | undefined;
  /** Independent chunks held when the store is made. */
  private readonly storeAt: number;
  private readonly dense = new Map<number, Uint32Array>();
  /** A coefficient vector to reuse (the last row found dependent). */
  private spare: Uint32Array | undefined;
  /** The row being reduced: columns (before the store) or word offsets in the store to sum. Reused. */
  private readonly ops: number[] = [];
  private rank = 0;
  private bytes: number;
  /** At full rank with the store closed up: the coded data is store8[0, k × chunkSize). */
  private packed = false;
  /** The outcome of the last verification, and the key it was made with. */
  private verified: { ok: boolean; key: Uint8Array | undefined } | undefined;

  private constructor(h: ChunkHeader) {
    this.uuid = h.uuid.slice();
    this.k = h.k;
    this.messageSize = h.messageSize;
    this.chunkSize = h.chunkSize;
    this.rows = h.rows;
    this.seed = h.seed;
    this.keyed = h.keyed;
    this.digest = digestAlgorithmOf(h);
    this.words = (h.chunkSize + 3) >>> 2;
    this.cw = coefficientWords(h.k);
    this.present = new Uint32Array(this.cw);
    this.bytes = this.cw * 4;
    this.storeAt = storeAt(h.k);
  }

  /**
   * Starts the state of a message from one of its chunks (e.g. from decodeChunk) and adds that
   * chunk; adding it again is harmless (it comes back recycled). Throws RangeError for a header
   * that decodeChunk would not have produced.
   */
  static fromChunk(chunk: Chunk): ReceiveState {
    const problem = headerProblem(chunk.header);
    if (problem !== undefined) throw new RangeError(problem);
    const s = new ReceiveState(chunk.header);
    s.addChunk(chunk);
    return s;
  }

  /** Bytes a new state for this header holds before its first chunk (the present-chunk bitmap). */
  static baseBytes(h: ChunkHeader): number {
    return coefficientWords(h.k) * 4;
  }

  /** The most a new state's first chunk with this header adds to bufferedBytes (a slot, or the store when k ≤ 32; a coefficient vector for a redundant row). */
  static chunkBytes(h: ChunkHeader): number {
    const stride = ((h.chunkSize + 3) >>> 2) * 4;
    return (storeAt(h.k) <= 1 ? h.k * stride : stride) + (h.index >= h.k ? coefficientWords(h.k) * 8 : 0);
  }

  /** The most adding a chunk with this header now can add to bufferedBytes (the store, when this chunk makes it). */
  nextChunkBytes(h: ChunkHeader): number {
    const stride = this.words * 4;
    const vector = h.index >= this.k ? this.cw * 8 : 0;
    if (this.store !== undefined || this.rank >= this.k) return vector;
    return (this.rank + 1 >= this.storeAt ? (this.k - this.sparse!.size) * stride : stride) + vector;
  }

  get ready(): boolean {
    return this.rank >= this.k;
  }

  /** Independent chunks still needed (0 when ready). */
  get needed(): number {
    return this.k - this.rank;
  }

  /** Independent chunks held. */
  get independent(): number {
    return this.rank;
  }

  /** Bytes held: payload slots (or the store), coefficient vectors and the present bitmap. */
  get bufferedBytes(): number {
    return this.bytes;
  }

  /** Whether a chunk's header belongs to this message. */
  matches(h: ChunkHeader): boolean {
    return (
      h.messageSize === this.messageSize &&
      h.chunkSize === this.chunkSize &&
      h.rows === this.rows &&
      h.seed === this.seed &&
      h.keyed === this.keyed &&
      digestAlgorithmOf(h) === this.digest &&
      h.k === this.k &&
      sameBytes(h.uuid, this.uuid)
    );
  }

  /**
   * < 0: failure (a header inconsistent with this message); 0: enough to decode; > 0: how many
   * more independent chunks are needed. `recycled` is the chunk itself when it added nothing
   * (a duplicate, linearly dependent, or arriving after the state was ready). The payload is
   * copied: the caller may reuse the chunk's bytes at once.
   */
  addChunk(chunk: Chunk): AddChunkResult {
    const h = chunk.header;
    if (!this.matches(h) || !Number.isInteger(h.index) || h.index < 0 || h.index >= this.rows || chunk.payload.length !== this.chunkSize) {
      return { status: -1 };
    }
    if (this.rank >= this.k) return { status: 0, recycled: chunk };
    if (this.store === undefined && this.rank + 1 >= this.storeAt) this.makeStore();
    const added = h.index < this.k ? this.addSource(h.index, chunk.payload) : this.addRedundant(h.index, chunk.payload);
    if (this.rank >= this.k) this.finish();
    const status = this.k - this.rank;
    return added ? { status } : { status, recycled: chunk };
  }

  /** Moves the slots held so far into the store of k slots. */
  private makeStore(): void {
    const w = this.words;
    const store = new Uint32Array(this.k * w);
    for (const [j, slot] of this.sparse!) store.set(slot, j * w);
    this.bytes += (this.k - this.sparse!.size) * w * 4;
    this.sparse = undefined;
    this.store = store;
    this.store8 = new Uint8Array(store.buffer);
  }

  /** The array slot j lives in, and its word offset there. */
  private slotArray(j: number): Uint32Array {
    return this.store ?? this.sparse!.get(j)!;
  }

  private slotOffset(j: number): number {
    return this.store !== undefined ? j * this.words : 0;
  }

  /** Writes `payload` as slot j (a new slot before the store; else its place in the store). */
  private putSlot(j: number, payload: Uint8Array): void {
    if (this.store8 !== undefined) {
      this.store8.set(payload, j * this.words * 4);
      return;
    }
    let slot = this.sparse!.get(j);
    if (slot === undefined) {
      slot = new Uint32Array(this.words);
      this.sparse!.set(j, slot);
      this.bytes += this.words * 4;
    }
    new Uint8Array(slot.buffer, 0, this.chunkSize).set(payload);
  }

  /** slot d ^= slot s. */
  private xorSlot(d: number, s: number): void {
    xorAt(this.slotArray(d), this.slotOffset(d), this.slotArray(s), this.slotOffset(s), this.words);
  }

  private isPresent(j: number): boolean {
    return (this.present[j >>> 5]! & (1 << (j & 31))) !== 0;
  }

  private addSource(i: number, payload: Uint8Array): boolean {
    if (this.isPresent(i)) return false;
    const word = i >>> 5;
    const bit = 1 << (i & 31);
    this.present[word]! |= bit;
    const pivotRow = this.dense.get(i);
    if (pivotRow === undefined) {
      // A column no held row has as pivot: take the chunk out of every row that sums it.
      this.putSlot(i, payload);
      const deferred = this.store !== undefined;
      for (const [p, row] of this.dense) {
        if ((row[word]! & bit) !== 0) {
          row[word]! ^= bit;
          if (deferred) row[this.cw + word]! ^= bit;
          else this.xorSlot(p, i);
        }
      }
      this.rank++;
      return true;
    }
    // Column i was the pivot of a held row (its payload in slot i): that row minus this chunk is what remains of it.
    pivotRow[word]! ^= bit;
    this.dense.delete(i);
    const p = lowestBit(pivotRow, this.cw);
    if (p < 0) {
      // The row was this very chunk: nothing new (the chunk's own bytes take the slot).
      this.putSlot(i, payload);
      this.spare = pivotRow;
      this.bytes -= this.cw * 8;
      return false;
    }
    // The remainder pivots on its lowest column (missing, and no other row's pivot): slot p = slot i ^ chunk, slot i = chunk.
    if (this.sparse !== undefined) {
      const rowPayload = this.sparse.get(i)!;
      this.sparse.delete(i);
      this.sparse.set(p, rowPayload);
      this.putSlot(i, payload);
      this.xorSlot(p, i);
    } else {
      this.putSlot(p, this.store8!.subarray(i * this.words * 4, (i + 1) * this.words * 4));
      this.putSlot(i, payload);
      pivotRow[this.cw + word]! ^= bit; // the chunk's share: summed at finish
    }
    this.eliminate(p, pivotRow);
    this.dense.set(p, pivotRow);
    this.rank++;
    return true;
  }

  private addRedundant(index: number, payload: Uint8Array): boolean {
    const cw = this.cw;
    const v = this.spare ?? new Uint32Array(2 * cw);
    this.spare = undefined;
    rowCoefficients(this.seed, index, this.k, v);
    v.fill(0, cw);
    const ops = this.ops;
    const deferred = this.store !== undefined;
    const scale = deferred ? this.words : 1;
    let n = 0;
    // Present columns: their source chunks are summed out (in the store: marked pending, summed at finish).
    for (let w = 0; w < cw; w++) {
      let bits = v[w]! & this.present[w]!;
      if (bits === 0) continue;
      v[w]! ^= bits;
      if (deferred) {
        v[cw + w] = bits;
        continue;
      }
      while (bits !== 0) {
        const low = bits & -bits;
        bits ^= low;
        ops[n++] = ((w << 5) + (31 - Math.clz32(low))) * scale;
      }
    }
    // Pivot columns: the held rows are summed out (rows have no bit in other rows' pivots).
    for (const [p, row] of this.dense) {
      if ((v[p >>> 5]! & (1 << (p & 31))) !== 0) {
        for (let w = 0; w < 2 * cw; w++) v[w]! ^= row[w]!;
        ops[n++] = p * scale;
      }
    }
    const pivot = lowestBit(v, cw);
    if (pivot < 0) {
      this.spare = v;
      return false; // in the span of what is held: no payload work at all
    }
    this.putSlot(pivot, payload);
    if (this.store !== undefined) xorGather(this.store, pivot * this.words, this.store, ops, n, this.words);
    else for (let i = 0; i < n; i++) this.xorSlot(pivot, ops[i]!);
    this.eliminate(pivot, v);
    this.dense.set(pivot, v);
    this.bytes += cw * 8;
    this.rank++;
    return true;
  }

  /** Clears column p from every held row (keeps the form reduced after a new pivot p; its payload is slot p). */
  private eliminate(p: number, row: Uint32Array): void {
    const word = p >>> 5;
    const bit = 1 << (p & 31);
    for (const [q, other] of this.dense) {
      if (other === row || (other[word]! & bit) === 0) continue;
      for (let w = 0; w < 2 * this.cw; w++) other[w]! ^= row[w]!;
      this.xorSlot(q, p);
    }
  }

  /**
   * At full rank, each held row's slot still lacks the present source chunks marked in its
   * pending half: they are summed here, four rows at a time. Each source marked in any of the four
   * goes once into one of 15 accumulators (by which of the four want it), and each row then adds
   * the accumulators of its classes: about k + 32 chunk XORs per four rows instead of 4 × k/2.
   * A class that only one row wants goes into that row's slot straight.
   */
  private sumPending(): void {
    const store = this.store;
    if (store === undefined || this.dense.size === 0) return;
    const w = this.words;
    const cw = this.cw;
    const rows = [...this.dense];
    const classes = CLASSES;
    const accOffsets = ACC_OFFSETS;
    let acc: Uint32Array | undefined;
    for (let g = 0; g < rows.length; g += 4) {
      const group = rows.slice(g, g + 4);
      for (const c of classes) c.length = 0;
      for (let word = 0; word < cw; word++) {
        let any = 0;
        for (const [, row] of group) any |= row[cw + word]!;
        while (any !== 0) {
          const low = any & -any;
          any ^= low;
          let c = 0;
          for (let r = 0; r < group.length; r++) if ((group[r]![1][cw + word]! & low) !== 0) c |= 1 << r;
          classes[c]!.push(((word << 5) + (31 - Math.clz32(low))) * w);
        }
      }
      for (let c = 1; c < 16; c++) {
        const members = classes[c]!;
        if (members.length === 0 || (c & (c - 1)) === 0) continue;
        if (acc === undefined) {
          if (accumulators.length < 16 * w) accumulators = new Uint32Array(16 * w);
          acc = accumulators;
        }
        acc.fill(0, c * w, (c + 1) * w);
        xorGather(acc, c * w, store, members, members.length, w);
      }
      for (let r = 0; r < group.length; r++) {
        const pivot = group[r]![0];
        const single = classes[1 << r]!;
        if (single.length > 0) xorGather(store, pivot * w, store, single, single.length, w);
        if (acc === undefined) continue;
        accOffsets.length = 0;
        for (let c = 1; c < 16; c++) if ((c & (1 << r)) !== 0 && (c & (c - 1)) !== 0 && classes[c]!.length > 0) accOffsets.push(c * w);
        xorGather(store, pivot * w, acc, accOffsets, accOffsets.length, w);
      }
    }
  }

  /** At full rank every held row is its pivot alone: the coefficient vectors go, and the slots are closed up into the coded data. */
  private finish(): void {
    this.sumPending();
    this.bytes -= this.dense.size * this.cw * 8;
    this.dense.clear();
    this.spare = undefined;
    const cs = this.chunkSize;
    const stride = this.words * 4;
    const b = this.store8!;
    if (stride !== cs) for (let j = 1; j < this.k; j++) b.copyWithin(j * cs, j * stride, j * stride + cs);
    this.packed = true;
  }

  private verify(key: Uint8Array | undefined): boolean {
    const v = this.verified;
    if (v !== undefined && (v.key === undefined ? key === undefined : key !== undefined && sameBytes(v.key, key))) return v.ok;
    let ok = false;
    if ((key !== undefined) === this.keyed && this.packed) {
      const coded = this.store8!;
      const m = this.messageSize;
      let computed: Uint8Array | undefined;
      try {
        computed = createDigest(key, undefined, this.digest).update(coded.subarray(0, m)).digest();
      } catch {
        computed = undefined; // a key this digest cannot take (keyed SHA3-256: over 65,535 bytes)
      }
      let zeros = 0;
      const end = this.k * this.chunkSize;
      for (let i = m + HASH_LENGTH; i < end; i++) zeros |= coded[i]!;
      ok = computed !== undefined && zeros === 0 && digestsEqual(computed, coded.subarray(m, m + HASH_LENGTH));
    }
    this.verified = { ok, key: key?.slice() };
    return ok;
  }

  /**
   * Decodes (done incrementally already), verifies the digest (the header's: SHA-256 or
   * SHA3-256, keyed when the message is keyed: then `key` is required, and a key given for an
   * unkeyed message fails too), writes up to buf.length bytes of the message and returns the
   * message size. -1: the digest does not match (nothing is written); -2: not enough chunks yet.
   * extract(new Uint8Array(0)) tells the size (after verifying; the verdict is kept for the next
   * call with the same key).
   */
  extract(buf: Uint8Array, key?: Uint8Array): number {
    if (!this.ready) return -2;
    if (!this.verify(key)) return -1;
    const n = Math.min(buf.length, this.messageSize);
    buf.set(this.store8!.subarray(0, n));
    return this.messageSize;
  }

  /**
   * The message, verified as by extract, as a view into the state's store (no copy: the state is
   * complete and never changes again; the view keeps the store, the message plus its digest and
   * padding, alive). undefined: not ready, or the digest does not match.
   */
  messageView(key?: Uint8Array): Uint8Array | undefined {
    if (!this.ready || !this.verify(key)) return undefined;
    return this.store8!.subarray(0, this.messageSize);
  }
}

export interface ReceiverOptions {
  /** Concurrent receive states (default 64). */
  maxStates?: number;
  /** Bytes held by all states together (default 16 MiB). */
  maxBufferedBytes?: number;
  /** Preshared key: only keyed messages are accepted, and verified with it. Without: only unkeyed. */
  key?: Uint8Array;
  /** A state that gained nothing during this many chunks counts as empty when a victim is chosen (default 64 × maxStates). Used when `push` is given no time. */
  staleAfter?: number;
  /**
   * With `push(source, bytes, now)`: a state that gained nothing for this long counts as empty
   * (default 120,000 ms: a LoRa sender at SF12 sends a chunk every few seconds). Time, unlike a
   * count of everyone's chunks, does not run faster for a slow sender when others flood.
   */
  staleAfterMs?: number;
  /** Messages remembered as finished (delivered or failed) per kind, so late chunks do not start them again (default 4096). */
  maxFinished?: number;
}

export type ReceiverEvent = { message: { source: string; bytes: Uint8Array } } | { error: { source: string; reason: string } };

export interface ReceiverCounters {
  /** Datagrams pushed. */
  chunks: number;
  /** Datagrams that are not valid chunks, or whose header contradicts their message's. */
  malformed: number;
  /** Chunks that added nothing: repeated, linearly dependent, or of a message already finished. */
  duplicates: number;
  /** Receive states dropped to stay within the caps. */
  evicted: number;
  /** Messages delivered. */
  messages: number;
  /** Messages decoded whose digest did not match: never delivered. */
  checksumFailures: number;
  /** Chunks whose mode does not match the receiver's: keyed without a key, or unkeyed with one. */
  rejected: number;
  /**
   * Chunks on which the receiver itself failed (a defect: every input is checked before use).
   * Counted and dropped so that one bad chunk cannot stop the daemon; `lastInternalError` says
   * what it was, and tests and the fuzz target require 0.
   */
  internalErrors: number;
}

interface Entry {
  source: string;
  state: ReceiveState;
  /** Receiver tick at which the state last gained rank. */
  progress: number;
  /** The time it last gained rank, when pushes give one. */
  progressAt: number | undefined;
}

/** A bounded first-in, first-out set of keys. */
class RecentSet {
  private readonly keys = new Set<string>();
  constructor(private readonly cap: number) {}
  has(key: string): boolean {
    return this.keys.has(key);
  }
  add(key: string): void {
    if (this.cap <= 0) return;
    this.keys.add(key);
    if (this.keys.size > this.cap) this.keys.delete(this.keys.values().next().value as string);
  }
}

/**
 * Many messages from many sources at once, within caps. States are keyed by (source, uuid).
 * When a new chunk would exceed `maxStates` or `maxBufferedBytes`, other states are evicted:
 * the least complete first, among equals the one whose source holds the most states, then the
 * one that progressed longest ago. So a flood of chunks with random UUIDs (each a state with one
 * chunk) evicts its own states before a message that is advancing.
 *
 * "Complete" and "stale" are fair to slow senders when `push` is given the time: completeness is
 * the share of the message held (independent chunks ÷ k, so a small message nearly done outranks
 * a large one just begun), and a state is stale (counts as empty) only after `staleAfterMs`
 * without progress — by its own clock, however fast others' chunks arrive. Without a time, the
 * older rule: independent chunks, stale after `staleAfter` chunks of anyone's traffic.
 */
export class Receiver {
  readonly counters: ReceiverCounters = { chunks: 0, malformed: 0, duplicates: 0, evicted: 0, messages: 0, checksumFailures: 0, rejected: 0, internalErrors: 0 };
  /** The last failure counted in `internalErrors`. */
  lastInternalError: Error | undefined;
  private readonly maxStates: number;
  private readonly maxBytes: number;
  private readonly staleAfter: number;
  private readonly key: Uint8Array | undefined;
  private readonly entries = new Map<string, Entry>();
  private readonly perSource = new Map<string, number>();
  private readonly delivered: RecentSet;
  private readonly failed: RecentSet;
  private bytes = 0;
  private tick = 0;
  private readonly staleAfterMs: number;
  /** The time of the latest push that gave one (undefined: the chunk-count rule). */
  private now: number | undefined;

  constructor(options: ReceiverOptions = {}) {
    this.maxStates = Math.max(1, Math.floor(options.maxStates ?? 64));
    this.maxBytes = Math.max(0, Math.floor(options.maxBufferedBytes ?? 16 * 1024 * 1024));
    this.staleAfter = Math.max(1, Math.floor(options.staleAfter ?? 64 * this.maxStates));
    this.staleAfterMs = Math.max(0, options.staleAfterMs ?? 120_000);
    this.key = options.key?.slice();
    const finished = Math.max(0, Math.floor(options.maxFinished ?? 4096));
    this.delivered = new RecentSet(finished);
    this.failed = new RecentSet(finished);
  }

  get states(): number {
    return this.entries.size;
  }

  get bufferedBytes(): number {
    return this.bytes;
  }

  /**
   * One datagram from `source` (an endpoint string, or a SID hex), at `now` (ms, any monotonic
   * clock; see the class comment). Returns the messages it completes (each delivered once) and
   * message-level errors (a digest mismatch). Never throws.
   */
  push(source: string, bytes: Uint8Array, now?: number): ReceiverEvent[] {
    this.counters.chunks++;
    this.tick++;
    if (now !== undefined && Number.isFinite(now)) this.now = now;
    try {
      return this.route(source, bytes);
    } catch (err) {
      // Not expected: every input is checked. Counted and kept rather than thrown.
      this.counters.internalErrors++;
      this.lastInternalError = err instanceof Error ? err : new Error(String(err));
      return [];
    }
  }

  private route(source: string, bytes: Uint8Array): ReceiverEvent[] {
    const decoded = decodeChunk(bytes);
    if (!decoded.ok) {
      this.counters.malformed++;
      return [];
    }
    const chunk = decoded.chunk;
    const h = chunk.header;
    if (h.keyed !== (this.key !== undefined)) {
      this.counters.rejected++;
      return [];
    }
    const id = `${source} ${Buffer.from(bytes.buffer, bytes.byteOffset + 2, 16).toString('hex')}`;
    if (this.delivered.has(id) || this.failed.has(id)) {
      this.counters.duplicates++;
      return [];
    }
    let entry = this.entries.get(id);
    if (entry !== undefined && !entry.state.matches(h)) {
      this.counters.malformed++;
      return [];
    }
    const extra = entry === undefined ? ReceiveState.baseBytes(h) + ReceiveState.chunkBytes(h) : entry.state.nextChunkBytes(h);
    if (!this.makeRoom(entry === undefined ? 1 : 0, extra, id)) {
      // Even alone this message does not fit under the byte cap.
      if (entry !== undefined) this.drop(id, entry);
      this.counters.evicted++;
      this.failed.add(id);
      return [{ error: { source, reason: `message of ${h.messageSize} bytes exceeds the ${this.maxBytes}-byte buffer cap` } }];
    }
    let result: AddChunkResult;
    if (entry === undefined) {
      const state = ReceiveState.fromChunk(chunk);
      entry = { source, state, progress: this.tick, progressAt: this.now };
      this.entries.set(id, entry);
      this.perSource.set(source, (this.perSource.get(source) ?? 0) + 1);
      this.bytes += state.bufferedBytes;
      result = { status: state.needed };
    } else {
      const before = entry.state.bufferedBytes;
      result = entry.state.addChunk(chunk);
      this.bytes += entry.state.bufferedBytes - before;
      if (result.status < 0) {
        this.counters.malformed++;
        return [];
      }
      if (result.recycled !== undefined) this.counters.duplicates++;
      else {
        entry.progress = this.tick;
        entry.progressAt = this.now;
      }
    }
    if (result.status !== 0) return [];
    return this.complete(id, entry);
  }

  private complete(id: string, entry: Entry): ReceiverEvent[] {
    const state = entry.state;
    this.drop(id, entry);
    const out = state.messageView(this.key);
    if (out === undefined) {
      this.counters.checksumFailures++;
      this.failed.add(id);
      return [{ error: { source: entry.source, reason: 'checksum mismatch: message discarded' } }];
    }
    this.counters.messages++;
    this.delivered.add(id);
    return [{ message: { source: entry.source, bytes: out } }];
  }

  private drop(id: string, entry: Entry): void {
    this.entries.delete(id);
    this.bytes -= entry.state.bufferedBytes;
    const n = (this.perSource.get(entry.source) ?? 1) - 1;
    if (n <= 0) this.perSource.delete(entry.source);
    else this.perSource.set(entry.source, n);
  }

  /** Evicts other states until `newStates` more states and `extra` more bytes fit. */
  private makeRoom(newStates: number, extra: number, keep: string): boolean {
    while (this.entries.size + newStates > this.maxStates || this.bytes + extra > this.maxBytes) {
      const victim = this.victim(keep);
      if (victim === undefined) return false;
      this.drop(victim, this.entries.get(victim)!);
      this.counters.evicted++;
    }
    return true;
  }

  /** How complete a state counts as when a victim is chosen (0: stale). */
  private rank(e: Entry): number {
    if (this.now !== undefined && e.progressAt !== undefined) {
      return this.now - e.progressAt > this.staleAfterMs ? 0 : e.state.independent / e.state.k;
    }
    return this.tick - e.progress > this.staleAfter ? 0 : e.state.independent;
  }

  private victim(keep: string): string | undefined {
    let best: string | undefined;
    let bestRank = 0;
    let bestShare = 0;
    let bestProgress = 0;
    for (const [id, e] of this.entries) {
      if (id === keep) continue;
      const rank = this.rank(e);
      const share = this.perSource.get(e.source) ?? 0;
      if (
        best === undefined ||
        rank < bestRank ||
        (rank === bestRank && (share > bestShare || (share === bestShare && e.progress < bestProgress)))
      ) {
        best = id;
        bestRank = rank;
        bestShare = share;
        bestProgress = e.progress;
      }
    }
    return best;
  }
}
