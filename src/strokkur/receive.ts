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
 * - `slots`: one payload per column: the source chunk itself for a present column, the reduced
 *   row's payload for a pivot column. So the state holds at most k payloads (memory ≈ received
 *   chunks × chunkSize, plus k/8 bytes per held redundant row), and when the rank reaches k
 *   every row is down to its pivot alone: the slots are the source chunks, and decoding is done.
 *
 * `Receiver` routes datagrams from many sources to their states under caps (SPEC.md).
 */
import { HASH_LENGTH, decodeChunk, headerProblem, type Chunk, type ChunkHeader } from './chunk.js';
import { coefficientWords, createDigest, digestsEqual, rowCoefficients, xorAll, xorInto } from './code.js';

export type AddChunkResult = { status: number; recycled?: Chunk };

function lowestBit(v: Uint32Array): number {
  for (let w = 0; w < v.length; w++) {
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

export class ReceiveState {
  readonly uuid: Uint8Array;
  readonly k: number;
  readonly messageSize: number;
  readonly chunkSize: number;
  readonly rows: number;
  readonly seed: number;
  readonly keyed: boolean;

  /** Words per payload slot (chunkSize rounded up to 4 bytes). */
  private readonly words: number;
  /** Words per coefficient vector. */
  private readonly cw: number;
  private readonly present: Uint32Array;
  private readonly slots = new Map<number, Uint32Array>();
  private readonly dense = new Map<number, Uint32Array>();
  private rank = 0;
  private bytes: number;
  /** The outcome of the last verification, and the key it was made with. */
  private verified: { ok: boolean; key: Uint8Array | undefined } | undefined;
  private readonly operands: Uint32Array[] = [];

  private constructor(h: ChunkHeader) {
    this.uuid = h.uuid.slice();
    this.k = h.k;
    this.messageSize = h.messageSize;
    this.chunkSize = h.chunkSize;
    this.rows = h.rows;
    this.seed = h.seed;
    this.keyed = h.keyed;
    this.words = (h.chunkSize + 3) >>> 2;
    this.cw = coefficientWords(h.k);
    this.present = new Uint32Array(this.cw);
    this.bytes = this.cw * 4;
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

  /** The most one chunk with this header can add to bufferedBytes. */
  static chunkBytes(h: ChunkHeader): number {
    return ((h.chunkSize + 3) >>> 2) * 4 + (h.index >= h.k ? coefficientWords(h.k) * 4 : 0);
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

  /** Bytes held: payload slots, coefficient vectors and the present bitmap. */
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
    const added = h.index < this.k ? this.addSource(h.index, chunk.payload) : this.addRedundant(h.index, chunk.payload);
    if (this.rank >= this.k) this.finish();
    const status = this.k - this.rank;
    return added ? { status } : { status, recycled: chunk };
  }

  private newSlot(payload: Uint8Array): Uint32Array {
    const slot = new Uint32Array(this.words);
    new Uint8Array(slot.buffer, 0, this.chunkSize).set(payload);
    return slot;
  }

  private isPresent(j: number): boolean {
    return (this.present[j >>> 5]! & (1 << (j & 31))) !== 0;
  }

  private addSource(i: number, payload: Uint8Array): boolean {
    if (this.isPresent(i)) return false;
    const slot = this.newSlot(payload);
    const word = i >>> 5;
    const bit = 1 << (i & 31);
    this.present[word]! |= bit;
    const pivotRow = this.dense.get(i);
    if (pivotRow === undefined) {
      // A column no held row has as pivot: take the chunk out of every row that sums it.
      for (const [p, row] of this.dense) {
        if ((row[word]! & bit) !== 0) {
          row[word]! ^= bit;
          xorInto(this.slots.get(p)!, slot, this.words);
        }
      }
      this.slots.set(i, slot);
      this.bytes += this.words * 4;
      this.rank++;
      return true;
    }
    // Column i was the pivot of a held row: that row minus this chunk is what remains of it.
    const rowPayload = this.slots.get(i)!;
    pivotRow[word]! ^= bit;
    xorInto(rowPayload, slot, this.words);
    this.slots.set(i, slot);
    this.dense.delete(i);
    const p = lowestBit(pivotRow);
    if (p < 0) {
      // The row was this very chunk: nothing new (its payload is dropped, the chunk kept).
      this.bytes -= this.cw * 4;
      return false;
    }
    // The remainder pivots on its lowest column (missing, and no other row's pivot).
    this.slots.set(p, rowPayload);
    this.eliminate(p, pivotRow, rowPayload);
    this.dense.set(p, pivotRow);
    this.bytes += this.words * 4;
    this.rank++;
    return true;
  }

  private addRedundant(index: number, payload: Uint8Array): boolean {
    const cw = this.cw;
    const v = new Uint32Array(cw);
    rowCoefficients(this.seed, index, this.k, v);
    const ops = this.operands;
    let n = 0;
    // Present columns: their source chunks are summed out.
    for (let w = 0; w < cw; w++) {
      let bits = v[w]! & this.present[w]!;
      if (bits === 0) continue;
      v[w]! ^= bits;
      while (bits !== 0) {
        const low = bits & -bits;
        bits ^= low;
        ops[n++] = this.slots.get((w << 5) + (31 - Math.clz32(low)))!;
      }
    }
    // Pivot columns: the held rows are summed out (rows have no bit in other rows' pivots).
    for (const [p, row] of this.dense) {
      if ((v[p >>> 5]! & (1 << (p & 31))) !== 0) {
        for (let w = 0; w < cw; w++) v[w]! ^= row[w]!;
        ops[n++] = this.slots.get(p)!;
      }
    }
    const pivot = lowestBit(v);
    if (pivot < 0) {
      ops.length = 0;
      return false; // in the span of what is held: no payload work at all
    }
    const slot = this.newSlot(payload);
    xorAll(slot, ops, n, this.words);
    ops.length = 0;
    this.eliminate(pivot, v, slot);
    this.slots.set(pivot, slot);
    this.dense.set(pivot, v);
    this.bytes += this.words * 4 + cw * 4;
    this.rank++;
    return true;
  }

  /** Clears column p from every held row (keeps the form reduced after a new pivot p). */
  private eliminate(p: number, row: Uint32Array, payload: Uint32Array): void {
    const word = p >>> 5;
    const bit = 1 << (p & 31);
    for (const [q, other] of this.dense) {
      if (other === row || (other[word]! & bit) === 0) continue;
      for (let w = 0; w < this.cw; w++) other[w]! ^= row[w]!;
      xorInto(this.slots.get(q)!, payload, this.words);
    }
  }

  /** At full rank every held row is its pivot alone: the coefficient vectors can go. */
  private finish(): void {
    this.bytes -= this.dense.size * this.cw * 4;
    this.dense.clear();
  }

  /** The bytes of the coded data (message ‖ digest ‖ zeros) in slot j. */
  private slotBytes(j: number): Uint8Array {
    return new Uint8Array(this.slots.get(j)!.buffer, 0, this.chunkSize);
  }

  private verify(key: Uint8Array | undefined): boolean {
    const v = this.verified;
    if (v !== undefined && (v.key === undefined ? key === undefined : key !== undefined && sameBytes(v.key, key))) return v.ok;
    let ok = false;
    if ((key !== undefined) === this.keyed) {
      const cs = this.chunkSize;
      const digest = createDigest(key);
      const stored = new Uint8Array(HASH_LENGTH);
      let zeros = 0;
      const end = this.messageSize + HASH_LENGTH;
      for (let j = 0; j < this.k; j++) {
        const bytes = this.slotBytes(j);
        const start = j * cs;
        const messageEnd = Math.max(0, Math.min(cs, this.messageSize - start));
        if (messageEnd > 0) digest.update(bytes.subarray(0, messageEnd));
        for (let i = messageEnd; i < cs; i++) {
          const at = start + i;
          if (at < end) stored[at - this.messageSize] = bytes[i]!;
          else zeros |= bytes[i]!;
        }
      }
      ok = zeros === 0 && digestsEqual(digest.digest(), stored);
    }
    this.verified = { ok, key: key?.slice() };
    return ok;
  }

  /**
   * Decodes (done incrementally already), verifies the digest (SHA-256, or HMAC-SHA-256 when the
   * message is keyed: then `key` is required, and a key given for an unkeyed message fails too),
   * writes up to buf.length bytes of the message and returns the message size. -1: the digest
   * does not match (nothing is written); -2: not enough chunks yet. extract(new Uint8Array(0))
   * tells the size (after verifying; the verdict is kept for the next call with the same key).
   */
  extract(buf: Uint8Array, key?: Uint8Array): number {
    if (!this.ready) return -2;
    if (!this.verify(key)) return -1;
    const cs = this.chunkSize;
    const n = Math.min(buf.length, this.messageSize);
    for (let j = 0; j * cs < n; j++) {
      buf.set(this.slotBytes(j).subarray(0, Math.min(cs, n - j * cs)), j * cs);
    }
    return this.messageSize;
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
}

interface Entry {
  source: string;
  state: ReceiveState;
  /** Receiver tick at which the state last gained rank. */
  progress: number;
  /** The time it last gained rank, when pushes give one. */
  progressAt: number | undefined;
}

function hex(bytes: Uint8Array): string {
  let s = '';
  for (const b of bytes) s += (b < 16 ? '0' : '') + b.toString(16);
  return s;
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
  readonly counters: ReceiverCounters = { chunks: 0, malformed: 0, duplicates: 0, evicted: 0, messages: 0, checksumFailures: 0, rejected: 0 };
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
    } catch {
      // Not expected: every input is checked. Counted rather than thrown.
      this.counters.malformed++;
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
    const id = `${source} ${hex(h.uuid)}`;
    if (this.delivered.has(id) || this.failed.has(id)) {
      this.counters.duplicates++;
      return [];
    }
    let entry = this.entries.get(id);
    if (entry !== undefined && !entry.state.matches(h)) {
      this.counters.malformed++;
      return [];
    }
    const extra = (entry === undefined ? ReceiveState.baseBytes(h) : 0) + ReceiveState.chunkBytes(h);
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
    const size = state.extract(new Uint8Array(0), this.key);
    if (size < 0) {
      this.counters.checksumFailures++;
      this.failed.add(id);
      return [{ error: { source: entry.source, reason: 'checksum mismatch: message discarded' } }];
    }
    const out = new Uint8Array(size);
    state.extract(out, this.key);
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
