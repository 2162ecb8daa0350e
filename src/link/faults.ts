/**
 * `FaultLink` wraps any Link and injects faults into its frames, like smoltcp's
 * `fault_injector.rs`: seeded and deterministic, so a failing test replays exactly.
 *
 * Each frame in a faulted direction meets, in this order, with independent probabilities:
 *   drop       the frame is lost (also counted in the inner `counters.drops['fault-drop']`);
 *   corrupt    one bit, chosen uniformly over the frame, is flipped (in a copy);
 *   duplicate  the frame goes twice;
 *   reorder    the frame is held and goes right after the next frame that passes (one frame is
 *              held at most; `flush()` releases it);
 * and then whatever passes is delayed by `delayMs` (order kept) on the injected clock, at most
 * MAX_DELAYED frames at once (beyond it they are dropped, counted as 'fault-delay-full').
 * Each direction draws from its own generator (seeded from `seed`), so the faults on one
 * direction do not depend on how its frames interleave with the other's.
 *
 * Too-large frames and sends on a closed link go straight to the inner link, which throws.
 * 'state' and 'ready' events pass through; 'frame' events come after the inbound faults.
 */
import { LinkWrapper } from './link-wrapper.js';
import { EventEmitter } from 'node:events';
import { countDrop, type Link, type LinkEvents, type ReceivedFrame, type SendOptions } from './link.js';
import { Prng } from './prng.js';

export interface FaultOptions {
  seed: number;
  /** Probabilities 0..1 per frame; default 0. */
  drop?: number;
  duplicate?: number;
  reorder?: number;
  corrupt?: number;
  /** Added to every frame that passes, ms (≥ 0); default 0. */
  delayMs?: number;
  /** Which frames are faulted: received ('in'), sent ('out') or both (default). */
  direction?: 'in' | 'out' | 'both';
}

/**
 * Time source and one-shot timers; the default is the wall clock and setTimeout. Any clock with
 * `now()` and `setTimer(atMs, fn)` fits, e.g. a virtual clock for simulated time.
 */
export interface FaultClock {
  now(): number;
  setTimer(atMs: number, fn: () => void): void;
}

export const wallClock: FaultClock = {
  now: () => Date.now(),
  setTimer: (atMs, fn) => void setTimeout(fn, Math.max(0, atMs - Date.now())),
};

export interface FaultCounts {
  drop: number;
  corrupt: number;
  duplicate: number;
  reorder: number;
  delay: number;
}

const RATES = ['drop', 'duplicate', 'reorder', 'corrupt'] as const;

/** Frames that may wait out their delay at once; beyond it they are dropped ('fault-delay-full'). */
export const MAX_DELAYED = 1024;

/** Checks the options; throws a RangeError naming the first bad one. */
export function validateFaultOptions(o: FaultOptions): void {
  if (!Number.isSafeInteger(o.seed)) throw new RangeError(`seed must be a safe integer, got ${o.seed}`);
  for (const name of RATES) {
    const v = o[name];
    if (v !== undefined && !(typeof v === 'number' && v >= 0 && v <= 1)) throw new RangeError(`${name} must be a probability from 0 to 1, got ${v}`);
  }
  const d = o.delayMs;
  if (d !== undefined && !(typeof d === 'number' && Number.isFinite(d) && d >= 0)) throw new RangeError(`delayMs must be a finite number ≥ 0, got ${d}`);
  if (o.direction !== undefined && !['in', 'out', 'both'].includes(o.direction)) {
    throw new RangeError(`direction must be 'in', 'out' or 'both', got ${String(o.direction)}`);
  }
}

/** Returns a copy of `data` with bit `bit` (0 = the most significant bit of byte 0) flipped. */
export function flipBit(data: Uint8Array, bit: number): Uint8Array {
  const out = data.slice();
  const i = bit >>> 3;
  out[i] = (out[i] ?? 0) ^ (0x80 >>> (bit & 7));
  return out;
}

/** The fault decisions of one direction: frames in, the frames to pass on out. Sans-IO. */
export class FaultPlan<T extends { data: Uint8Array }> {
  readonly counts: FaultCounts = { drop: 0, corrupt: 0, duplicate: 0, reorder: 0, delay: 0 };
  private readonly prng: Prng;
  private held: T[] = [];

  constructor(private readonly o: FaultOptions, seed: number) {
    this.prng = new Prng(seed);
  }

  /** The frames to pass on now for one frame that arrives (none, one, or several). */
  take(item: T): T[] {
    // A fixed number of draws per frame keeps each decision tied to the frame's position.
    const [drop, corrupt, bit, duplicate, reorder] = [this.prng.next(), this.prng.next(), this.prng.next(), this.prng.next(), this.prng.next()];
    if (drop < (this.o.drop ?? 0)) {
      this.counts.drop++;
      return [];
    }
    if (corrupt < (this.o.corrupt ?? 0) && item.data.length > 0) {
      item = { ...item, data: flipBit(item.data, Math.floor(bit * item.data.length * 8)) };
      this.counts.corrupt++;
    }
    const copies = duplicate < (this.o.duplicate ?? 0) ? [item, item] : [item];
    if (copies.length === 2) this.counts.duplicate++;
    if (this.held.length === 0 && reorder < (this.o.reorder ?? 0)) {
      this.held = copies;
      this.counts.reorder++;
      return [];
    }
    return [...copies, ...this.flush()];
  }

  /** Releases the held frame, if any. */
  flush(): T[] {
    const out = this.held;
    this.held = [];
    return out;
  }
}

interface Outgoing {
  data: Uint8Array;
  options: SendOptions | undefined;
}

export class FaultLink extends LinkWrapper {
  /** Faults injected on received ('in') and sent ('out') frames. */
  readonly faultCounters: { in: FaultCounts; out: FaultCounts };
  private readonly events = new EventEmitter();
  private readonly inPlan: FaultPlan<ReceivedFrame> | undefined;
  private readonly outPlan: FaultPlan<Outgoing> | undefined;
  private readonly delayMs: number;
  /** Frames waiting out their delay, both directions. */
  private delayed = 0;

  constructor(
    inner: Link,
    options: FaultOptions,
    private readonly clock: FaultClock = wallClock,
  ) {
    super(inner);
    validateFaultOptions(options);
    const dir = options.direction ?? 'both';
    this.delayMs = options.delayMs ?? 0;
    const inPlan = dir === 'out' ? undefined : new FaultPlan<ReceivedFrame>(options, options.seed);
    const outPlan = dir === 'in' ? undefined : new FaultPlan<Outgoing>(options, options.seed ^ 0x5bd1e995);
    const idle = (): FaultCounts => ({ drop: 0, corrupt: 0, duplicate: 0, reorder: 0, delay: 0 });
    this.faultCounters = { in: inPlan?.counts ?? idle(), out: outPlan?.counts ?? idle() };
    this.inPlan = inPlan;
    this.outPlan = outPlan;
    inner.on('frame', (frame) => {
      if (this.inPlan) this.inject(this.inPlan, frame, (f) => this.events.emit('frame', f));
      else this.events.emit('frame', frame);
    });
  }

  override send(frame: Uint8Array, options?: SendOptions): boolean {
    if (!this.outPlan || frame.length > this.inner.mtu || this.inner.state === 'closed') return this.inner.send(frame, options);
    let more = true;
    this.inject(this.outPlan, { data: frame, options }, (f) => (more = this.sendNow(f) && more));
    return more;
  }

  /** Releases frames held for reordering, in both directions. */
  flush(): void {
    if (this.inPlan) this.pass(this.inPlan.flush(), (f) => this.events.emit('frame', f), this.inPlan.counts);
    if (this.outPlan) this.pass(this.outPlan.flush(), (f) => this.sendNow(f), this.outPlan.counts);
  }

  override on<E extends keyof LinkEvents>(event: E, listener: (...args: LinkEvents[E]) => void): this {
    if (event === 'frame') this.events.on(event, listener as (...args: unknown[]) => void);
    else this.inner.on(event, listener);
    return this;
  }

  override off<E extends keyof LinkEvents>(event: E, listener: (...args: LinkEvents[E]) => void): this {
    if (event === 'frame') this.events.off(event, listener as (...args: unknown[]) => void);
    else this.inner.off(event, listener);
    return this;
  }

  /** Runs one frame through a direction's faults and passes on what comes out. */
  private inject<T extends { data: Uint8Array }>(plan: FaultPlan<T>, item: T, emit: (item: T) => void): void {
    const dropsBefore = plan.counts.drop;
    this.pass(plan.take(item), emit, plan.counts);
    if (plan.counts.drop > dropsBefore) countDrop(this.inner.counters, 'fault-drop');
  }

  /** Passes frames on now, or after the delay. */
  private pass<T>(items: T[], emit: (item: T) => void, counts: FaultCounts): void {
    if (items.length === 0) return;
    if (this.delayMs === 0) {
      for (const item of items) emit(item);
      return;
    }
    if (this.delayed + items.length > MAX_DELAYED) {
      countDrop(this.inner.counters, 'fault-delay-full', items.length);
      return;
    }
    counts.delay += items.length;
    this.delayed += items.length;
    this.clock.setTimer(this.clock.now() + this.delayMs, () => {
      this.delayed -= items.length;
      for (const item of items) emit(item);
    });
  }

  /** Sends one frame that survived the faults; a late frame on a closed link is counted, not thrown. */
  private sendNow(f: Outgoing): boolean {
    if (this.inner.state === 'closed') {
      countDrop(this.inner.counters, 'fault-closed');
      return false;
    }
    return this.inner.send(f.data, f.options);
  }
}
