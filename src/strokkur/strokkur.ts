/**
 * Strokkur over a transport: `send(dst, bytes)` → a promise, and 'message' events. The IO side of
 * the sans-IO cores (send.ts, receive.ts): it drives `SendState.next()` while the transport is
 * ready, feeds every datagram to one `Receiver`, and turns the receiver's events into events.
 *
 * Pacing. Chunks are handed to the transport only while `transport.ready(dst)` holds (the mesh:
 * the interface pacer's ready flag; UDP: its token bucket). When it does not hold, or when
 * `transport.send` returns false (backpressure: the chunk was taken, but take no more now), the
 * facade stops and resumes on the transport's `onReady` signal — synchronously, so that in
 * virtual time a send advances with the clock. A transport with neither signal is never waited
 * for; one that says "not ready" but has no `onReady` is polled every `pollMs` (a real timer).
 *
 * Concurrency. At most `maxConcurrentSends` messages are in flight (their chunks interleaved
 * round-robin, one chunk each per turn); further sends wait in a queue of at most
 * `maxQueuedSends` (beyond it `send` rejects at once). A send resolves when its last chunk was
 * handed to the transport; it rejects for an empty or oversize message, a destination with no
 * MTU (no route), an MTU too small for one chunk, or a transport that throws.
 *
 * Redundancy: see `chooseRedundancy`.
 *
 * Receive-side failures (a checksum mismatch, a malformed chunk, an evicted state) are events,
 * never exceptions: 'error' is emitted only when someone listens (an unheard 'error' would throw
 * out of the datagram handler), and always counted in `counters.receiveErrors`.
 */
import { EventEmitter } from 'node:events';
import { MAX_MESSAGE, chunkSizeFor, sourceChunks, type DigestAlgorithm } from './chunk.js';
import { isDigestAlgorithm } from './code.js';
import { Receiver, type ReceiverOptions } from './receive.js';
import { SendState } from './send.js';

export interface StrokkurTransport<Addr> {
  /** Hands one datagram over; false: taken, but wait for `onReady` before the next. May throw. */
  send(dst: Addr, bytes: Uint8Array): boolean;
  onDatagram(handler: (src: Addr, bytes: Uint8Array) => void): void;
  /** A stable string for an address (receive states are keyed by it). */
  key(addr: Addr): string;
  /** Largest datagram to `dst` now, or undefined when `dst` cannot be reached. */
  mtu(dst: Addr): number | undefined;
  /** Whether a datagram to `dst` may be handed over now; absent: always. */
  ready?(dst: Addr): boolean;
  /** Registers a handler for "you may send again". */
  onReady?(handler: () => void): void;
  /** Measured datagram loss probability (0..1) towards `dst`, when known. */
  loss?(dst: Addr): number | undefined;
}

/** Redundancy when the path's loss is unknown. */
export const DEFAULT_REDUNDANCY = 4;
/** Cap of the redundancy chosen from a measured loss (a given `redundancy` is not capped). */
export const MAX_AUTO_REDUNDANCY = 64;
/** Target: the probability that more rows are lost than the redundancy covers. */
export const REDUNDANCY_TARGET = 1e-3;
/** Measured loss is taken as at least this (HELLO-based ratios are coarse; 0 is never true). */
export const MIN_LOSS = 0.01;

export interface StrokkurOptions {
  /** Preshared secret: keyed checksums on both sides (authentication). */
  key?: Uint8Array;
  /**
   * The digest of the messages sent: 'sha256' (default; every version-1 receiver decodes it) or
   * 'sha3-256' (SHA3-256, or keyed SHA3-256 with `key`). Received messages may carry either.
   */
  digest?: DigestAlgorithm;
  /** Caps of the receiver (its `key` comes from `key` above). */
  receiver?: Omit<ReceiverOptions, 'key'>;
  /** Messages whose chunks are interleaved at once; default 4. */
  maxConcurrentSends?: number;
  /** Messages waiting behind them; default 256 (the next `send` rejects). */
  maxQueuedSends?: number;
  /** Cap of the redundancy chosen from measured loss; default MAX_AUTO_REDUNDANCY. */
  maxRedundancy?: number;
  /** Poll interval when the transport is not ready and has no `onReady`; default 10 ms. */
  pollMs?: number;
  /** Random source for the per-message code (tests pass a seeded one). */
  random?: () => number;
  /** The receiver's clock, ms (its stale rule; see receive.ts). Default performance.now; simulations pass theirs. */
  now?: () => number;
}

export interface StrokkurSendOptions {
  /** R: the message goes as k source chunks and 1 + R redundant rows. Default: from the loss. */
  redundancy?: number;
  /** This message's digest; default StrokkurOptions.digest. */
  digest?: DigestAlgorithm;
}

/** What a finished send did. */
export interface StrokkurSendReport {
  bytes: number;
  /** Source chunks. */
  k: number;
  /** Chunks handed to the transport (k + 1 + R). */
  chunks: number;
  redundancy: number;
  chunkSize: number;
}

export class StrokkurReceiveError<Addr> extends Error {
  override readonly name = 'StrokkurReceiveError';
  constructor(
    /** The sender, when its address is still known. */
    readonly source: Addr | undefined,
    readonly sourceKey: string,
    readonly reason: string,
  ) {
    super(`from ${sourceKey}: ${reason}`);
  }
}

export interface StrokkurEvents<Addr> {
  message: [from: Addr, bytes: Uint8Array];
  error: [StrokkurReceiveError<Addr>];
}

export interface StrokkurCounters {
  messagesSent: number;
  chunksSent: number;
  sendFailures: number;
  messagesReceived: number;
  receiveErrors: number;
}

interface Job<Addr> {
  dst: Addr;
  data: Uint8Array;
  redundancy: number | undefined;
  digest: DigestAlgorithm;
  state: SendState | undefined;
  report: StrokkurSendReport;
  resolve: (r: StrokkurSendReport) => void;
  reject: (e: Error) => void;
}

/** Source addresses remembered for the receiver's events (most recently heard kept). */
const MAX_REMEMBERED_SOURCES = 1024;

/** log P(X = i) for X ~ Binomial(n, p), 0 < p < 1. */
function logBinomialPmf(n: number, i: number, p: number): number {
  return logFactorial(n) - logFactorial(i) - logFactorial(n - i) + i * Math.log(p) + (n - i) * Math.log1p(-p);
}

const LOG_FACTORIALS: number[] = [0];
function logFactorial(n: number): number {
  for (let i = LOG_FACTORIALS.length; i <= n; i++) LOG_FACTORIALS.push(LOG_FACTORIALS[i - 1]! + Math.log(i));
  return LOG_FACTORIALS[n]!;
}

/** P(more than `m` of `n` independent datagrams are lost), each lost with probability p. */
export function probabilityMoreLost(n: number, m: number, p: number): number {
  if (m >= n) return 0;
  if (p <= 0) return 0;
  if (p >= 1) return 1;
  // P(X ≤ m) summed from the side with fewer terms, in log space (n may be thousands).
  let sum = 0;
  for (let i = 0; i <= m; i++) sum += Math.exp(logBinomialPmf(n, i, p));
  return Math.max(0, Math.min(1, 1 - sum));
}

/**
 * The redundancy R for k source chunks over a path that loses each datagram with probability
 * `loss`: the smallest R (from 0) such that, of the n = k + 1 + R rows sent, the chance that
 * more than R + 1 are lost — more than the redundant rows can stand in for — is below
 * REDUNDANCY_TARGET (1e-3), capped at `max`. The loss is clamped to [MIN_LOSS, 0.99]. Unknown
 * loss → DEFAULT_REDUNDANCY.
 *
 * This counts rows, as if any k of them decoded; the redundant rows are random over GF(2), so a
 * set of exactly k survivors that includes redundant rows is short of full rank now and then,
 * and the true failure rate near the boundary is somewhat above the target.
 */
export function chooseRedundancy(k: number, loss: number | undefined, max = MAX_AUTO_REDUNDANCY): number {
  if (loss === undefined || !Number.isFinite(loss)) return Math.min(DEFAULT_REDUNDANCY, max);
  const p = Math.min(0.99, Math.max(MIN_LOSS, loss));
  for (let r = 0; r < max; r++) if (probabilityMoreLost(k + 1 + r, r + 1, p) < REDUNDANCY_TARGET) return r;
  return max;
}

export class Strokkur<Addr> extends EventEmitter<StrokkurEvents<Addr>> {
  readonly counters: StrokkurCounters = { messagesSent: 0, chunksSent: 0, sendFailures: 0, messagesReceived: 0, receiveErrors: 0 };
  readonly receiver: Receiver;
  private readonly maxConcurrent: number;
  private readonly maxQueued: number;
  private readonly maxRedundancy: number;
  private readonly pollMs: number;
  private readonly active: Array<Job<Addr>> = [];
  private readonly queued: Array<Job<Addr>> = [];
  private readonly sources = new Map<string, Addr>();
  /** The transport returned false from `send`: nothing more until `onReady`. */
  private blocked = false;
  private pumping = false;
  private pumpAgain = false;
  private pollTimer: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(
    private readonly transport: StrokkurTransport<Addr>,
    private readonly options: StrokkurOptions = {},
  ) {
    super();
    this.maxConcurrent = positiveInt('maxConcurrentSends', options.maxConcurrentSends ?? 4);
    this.maxQueued = nonNegativeInt('maxQueuedSends', options.maxQueuedSends ?? 256);
    this.maxRedundancy = nonNegativeInt('maxRedundancy', options.maxRedundancy ?? MAX_AUTO_REDUNDANCY);
    this.pollMs = options.pollMs ?? 10;
    if (options.digest !== undefined && !isDigestAlgorithm(options.digest)) throw new RangeError(`digest must be 'sha256' or 'sha3-256', got ${String(options.digest)}`);
    this.receiver = new Receiver({ ...options.receiver, ...(options.key ? { key: options.key } : {}) });
    transport.onDatagram((src, bytes) => this.onDatagram(src, bytes));
    transport.onReady?.(() => {
      this.blocked = false;
      this.pump();
    });
  }

  /** Sends in flight and waiting. */
  get pending(): number {
    return this.active.length + this.queued.length;
  }

  /**
   * Sends one message (1 byte to 4 MiB). Resolves when every chunk was handed to the transport.
   * `bytes` must not change until then.
   */
  send(dst: Addr, bytes: Uint8Array, options: StrokkurSendOptions = {}): Promise<StrokkurSendReport> {
    return new Promise<StrokkurSendReport>((resolve, reject) => {
      const fail = (e: Error): void => {
        this.counters.sendFailures++;
        reject(e);
      };
      if (this.closed) return fail(new Error('strokkur is closed'));
      if (bytes.length === 0) return fail(new RangeError('empty message: a Strokkur message is 1 byte to 4 MiB'));
      if (bytes.length > MAX_MESSAGE) {
        return fail(new RangeError(`message of ${bytes.length} bytes exceeds the Strokkur maximum of ${MAX_MESSAGE} bytes`));
      }
      const r = options.redundancy;
      if (r !== undefined && !(Number.isSafeInteger(r) && r >= 0)) return fail(new RangeError(`redundancy must be an integer ≥ 0, got ${r}`));
      const digest = options.digest ?? this.options.digest ?? 'sha256';
      if (!isDigestAlgorithm(digest)) return fail(new RangeError(`digest must be 'sha256' or 'sha3-256', got ${String(digest)}`));
      if (this.transport.mtu(dst) === undefined) return fail(new Error(`no route to ${this.transport.key(dst)}`));
      if (this.queued.length >= this.maxQueued) return fail(new Error(`send queue full (${this.maxQueued} messages waiting)`));
      this.queued.push({
        dst,
        data: bytes,
        redundancy: r,
        digest,
        state: undefined,
        report: { bytes: bytes.length, k: 0, chunks: 0, redundancy: 0, chunkSize: 0 },
        resolve,
        reject: fail,
      });
      this.pump();
    });
  }

  /** Rejects every pending send and ignores datagrams from now on. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.pollTimer);
    this.pollTimer = undefined;
    for (const job of [...this.active, ...this.queued]) job.reject(new Error('strokkur closed before the message was sent'));
    this.active.length = 0;
    this.queued.length = 0;
  }

  // -------------------------------------------------------------------------------------------

  /** Hands chunks over while the transport is ready. Re-entrant calls run one more round. */
  private pump(): void {
    if (this.closed) return;
    if (this.pumping) {
      this.pumpAgain = true;
      return;
    }
    this.pumping = true;
    try {
      do {
        this.pumpAgain = false;
        this.pumpRound();
      } while (this.pumpAgain && !this.closed);
    } finally {
      this.pumping = false;
    }
  }

  private pumpRound(): void {
    let waiting = false;
    for (;;) {
      while (this.active.length < this.maxConcurrent && this.queued.length > 0) this.start(this.queued.shift()!);
      if (this.active.length === 0 || this.blocked) break;
      let progressed = false;
      for (const job of [...this.active]) {
        if (this.blocked) break;
        if (this.transport.ready && !this.transport.ready(job.dst)) {
          waiting = true;
          continue;
        }
        if (this.step(job)) progressed = true;
      }
      if (!progressed) break;
    }
    if ((waiting || this.blocked) && this.active.length > 0 && !this.transport.onReady) this.schedulePoll();
  }

  /** Creates the job's send state (chunk size from the MTU now), or rejects it. */
  private start(job: Job<Addr>): void {
    const mtu = this.transport.mtu(job.dst);
    if (mtu === undefined) return job.reject(new Error(`no route to ${this.transport.key(job.dst)}`));
    let chunkSize: number;
    try {
      chunkSize = chunkSizeFor(mtu);
    } catch (err) {
      return job.reject(err as Error);
    }
    if (!(chunkSize >= 1)) return job.reject(new RangeError(`MTU of ${mtu} bytes to ${this.transport.key(job.dst)} is too small for a Strokkur chunk`));
    const k = sourceChunks(job.data.length, chunkSize);
    const redundancy = job.redundancy ?? chooseRedundancy(k, this.transport.loss?.(job.dst), this.maxRedundancy);
    try {
      job.state = new SendState(job.data, {
        chunkSize,
        redundancy,
        digest: job.digest,
        ...(this.options.key ? { key: this.options.key } : {}),
        ...(this.options.random ? { random: this.options.random } : {}),
      });
    } catch (err) {
      return job.reject(err as Error);
    }
    job.report = { bytes: job.data.length, k: job.state.k, chunks: 0, redundancy, chunkSize };
    this.active.push(job);
  }

  /** One chunk of `job`; false when it made no progress (it finished or failed). */
  private step(job: Job<Addr>): boolean {
    const state = job.state!;
    const bytes = state.next();
    if (bytes === undefined) {
      this.finish(job);
      return false;
    }
    let more: boolean;
    try {
      more = this.transport.send(job.dst, bytes);
    } catch (err) {
      this.remove(job);
      job.reject(err instanceof Error ? err : new Error(String(err)));
      return false;
    }
    job.report.chunks++;
    this.counters.chunksSent++;
    if (!more) this.blocked = true;
    if (state.done) this.finish(job);
    return true;
  }

  private finish(job: Job<Addr>): void {
    this.remove(job);
    this.counters.messagesSent++;
    job.resolve(job.report);
  }

  private remove(job: Job<Addr>): void {
    const i = this.active.indexOf(job);
    if (i >= 0) this.active.splice(i, 1);
  }

  private schedulePoll(): void {
    if (this.pollTimer) return;
    this.pollTimer = setTimeout(() => {
      this.pollTimer = undefined;
      this.blocked = false;
      this.pump();
    }, this.pollMs);
  }

  private onDatagram(src: Addr, bytes: Uint8Array): void {
    if (this.closed) return;
    const key = this.transport.key(src);
    this.sources.delete(key);
    this.sources.set(key, src);
    if (this.sources.size > MAX_REMEMBERED_SOURCES) this.sources.delete(this.sources.keys().next().value!);
    for (const ev of this.receiver.push(key, bytes, (this.options.now ?? performance.now.bind(performance))())) {
      if ('message' in ev) {
        this.counters.messagesReceived++;
        this.emit('message', ev.message.source === key ? src : (this.sources.get(ev.message.source) ?? src), ev.message.bytes);
      } else {
        this.counters.receiveErrors++;
        const source = ev.error.source === key ? src : this.sources.get(ev.error.source);
        if (this.listenerCount('error') > 0) this.emit('error', new StrokkurReceiveError(source, ev.error.source, ev.error.reason));
      }
    }
  }
}

function positiveInt(name: string, v: number): number {
  if (!(Number.isSafeInteger(v) && v >= 1)) throw new RangeError(`${name} must be an integer ≥ 1, got ${v}`);
  return v;
}

function nonNegativeInt(name: string, v: number): number {
  if (!(Number.isSafeInteger(v) && v >= 0)) throw new RangeError(`${name} must be an integer ≥ 0, got ${v}`);
  return v;
}
