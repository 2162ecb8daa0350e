/**
 * The pacer of one interface, sans-IO: it decides when each queued frame may go on the air.
 *
 * - Every frame is costed by the interface's airtime model. A frame goes only when every budget
 *   (regional duty cycle, the operator's short and long caps) still holds in every sliding
 *   window, and only after the previous frame's airtime has ended.
 * - A frame whose one transmission would exceed the dwell limit, the MTU, or a whole budget is
 *   refused at once, with the largest size that would fit.
 * - Strict priority between classes (control > ack > interactive > bulk); within a class, deficit
 *   round robin over flows with airtime as the currency, so each flow gets an equal share of
 *   channel time whatever its frame sizes.
 * - Queues are bounded in frames, bytes and frames per flow. A full queue refuses an arrival
 *   unless a lower class holds frames, in which case the newest frame of the lowest class is
 *   evicted. Every refusal and eviction is counted by reason.
 * - A control frame may name its `kind` and `generation` (a HELLO: kind 'hello', generation its
 *   sequence number, shared by its fragments). Queuing one removes every queued frame of the same
 *   flow and kind from another generation, counted as `superseded`: HELLOs queued while a link is
 *   down leave as the newest one when it comes back, not as a stale burst.
 *
 * The gateway calls `poll(now)` at `nextDeadline(now)` and after each `enqueue`; `status(now)`
 * tells the layers above what is used, what is left, the queueing delay a new frame would see
 * (`estimateDelayMs`, a simulation: for status, not per packet), and whether the interface is
 * ready for more. `ready(now, priority)` is the cheap question to ask per packet, and
 * `readyAt(now, priority)` says when to ask again.
 */
import type { AirtimeModel } from './airtime/model.js';
import { SlidingBudget, type BudgetSpec } from './sliding-budget.js';

export const PRIORITY_CLASSES = ['control', 'ack', 'interactive', 'bulk'] as const;
export type PriorityClass = (typeof PRIORITY_CLASSES)[number];

export type DropReason = 'dwell' | 'too-large' | 'queue-full' | 'flow-full' | 'evicted' | 'superseded';

export interface PacerConfig {
  model: AirtimeModel;
  budgets?: BudgetSpec[];
  /** Longest single transmission allowed (e.g. US915: 400 ms). */
  dwellMs?: number;
  /** Largest frame in bytes; default the model's maxBytes. */
  mtu?: number;
  maxQueuedFrames?: number;
  maxQueuedBytes?: number;
  maxFramesPerFlow?: number;
  /** `ready` is true while a new frame of the largest size would wait at most this long; default 4 MTU airtimes, at least 1 s. */
  readyDelayMs?: number;
}

export interface FrameRequest<T> {
  flow: string;
  priority: PriorityClass;
  bytes: number;
  payload: T;
  /**
   * A control message's kind (e.g. 'hello'). Queuing a frame with a kind removes the queued
   * frames of the same flow and kind whose generation differs (counted as `superseded`), in any
   * class, the waiting head included — before the queue limits are checked, so they are gone even
   * if the newer frame is then refused for a full queue.
   */
  kind?: string;
  /**
   * The message's generation (a HELLO's sequence number; all its fragments share it). A frame with
   * a kind and no generation supersedes every queued frame of its flow and kind.
   */
  generation?: number;
}

export interface PacedFrame<T> extends FrameRequest<T> {
  airtimeMs: number;
  enqueuedAt: number;
}

export type EnqueueResult =
  | { ok: true; airtimeMs: number }
  | { ok: false; reason: DropReason; message: string; maxBytes?: number };

export interface WindowStatus {
  name: string;
  windowMs: number;
  limitMs: number;
  usedMs: number;
  leftMs: number;
}

export interface PacerStatus {
  windows: WindowStatus[];
  queuedFrames: number;
  queuedBytes: number;
  queuedByClass: Record<PriorityClass, number>;
  /** Estimated wait before a new frame of `maxFrameBytes` of each class would start. */
  delayMs: Record<PriorityClass, number>;
  ready: Record<PriorityClass, boolean>;
  busyUntil: number;
}

export interface PacerCounters {
  enqueued: number;
  sent: number;
  sentAirtimeMs: number;
  drops: Record<DropReason, number>;
}

interface Flow<T> {
  name: string;
  queue: PacedFrame<T>[];
  deficit: number;
  inTurn: boolean;
}

/**
 * One priority class: flows served by deficit round robin. The currency is airtime, or bytes on
 * a link with no rate cap (where every frame costs 0 ms).
 */
class ClassQueue<T> {
  readonly flows = new Map<string, Flow<T>>();
  /** Flows with frames, in round-robin order. */
  readonly active: Flow<T>[] = [];
  frames = 0;

  constructor(
    private readonly quantum: number,
    private readonly cost: (frame: PacedFrame<T>) => number,
  ) {}

  push(frame: PacedFrame<T>): void {
    let flow = this.flows.get(frame.flow);
    if (!flow) {
      flow = { name: frame.flow, queue: [], deficit: 0, inTurn: false };
      this.flows.set(frame.flow, flow);
    }
    if (flow.queue.length === 0) this.active.push(flow);
    flow.queue.push(frame);
    this.frames++;
  }

  /** Takes the next frame by deficit round robin. */
  take(): PacedFrame<T> | undefined {
    while (this.active.length > 0) {
      const flow = this.active[0]!;
      if (!flow.inTurn) {
        flow.deficit += this.quantum;
        flow.inTurn = true;
      }
      const frame = flow.queue[0]!;
      const cost = this.cost(frame);
      if (cost <= flow.deficit) {
        flow.deficit -= cost;
        flow.queue.shift();
        this.frames--;
        if (flow.queue.length === 0) this.retire(flow);
        return frame;
      }
      flow.inTurn = false;
      this.active.push(this.active.shift()!);
    }
    return undefined;
  }

  /** Puts back a frame `take` returned, as if it had not been taken. */
  untake(frame: PacedFrame<T>): void {
    let flow = this.flows.get(frame.flow);
    if (!flow) {
      flow = { name: frame.flow, queue: [], deficit: 0, inTurn: false };
      this.flows.set(frame.flow, flow);
    }
    if (flow.queue.length === 0) {
      this.active.unshift(flow);
      flow.inTurn = true;
    }
    flow.deficit += this.cost(frame);
    flow.queue.unshift(frame);
    this.frames++;
  }

  /** Removes the newest frame of the longest flow (for eviction). */
  evictNewest(): PacedFrame<T> | undefined {
    let longest: Flow<T> | undefined;
    for (const f of this.active) if (!longest || f.queue.length > longest.queue.length) longest = f;
    if (!longest) return undefined;
    const frame = longest.queue.pop()!;
    this.frames--;
    if (longest.queue.length === 0) this.retire(longest);
    return frame;
  }

  /** Removes the frames of one flow that `stale` picks, keeping the others in order. */
  removeWhere(name: string, stale: (frame: PacedFrame<T>) => boolean): PacedFrame<T>[] {
    const flow = this.flows.get(name);
    if (!flow) return [];
    const removed = flow.queue.filter(stale);
    if (removed.length === 0) return removed;
    flow.queue = flow.queue.filter((f) => !stale(f));
    this.frames -= removed.length;
    if (flow.queue.length === 0) this.retire(flow);
    return removed;
  }

  /** Frames in service order approximation (for estimates): round robin across flows. */
  *frameCosts(): Generator<number> {
    let depth = 0;
    let any = true;
    while (any) {
      any = false;
      for (const f of this.active) {
        const fr = f.queue[depth];
        if (fr) {
          any = true;
          yield fr.airtimeMs;
        }
      }
      depth++;
    }
  }

  private retire(flow: Flow<T>): void {
    const i = this.active.indexOf(flow);
    if (i >= 0) this.active.splice(i, 1);
    flow.deficit = 0;
    flow.inTurn = false;
    this.flows.delete(flow.name);
  }
}

const ESTIMATE_FRAMES = 256;
/**
 * Rounding slack of `ready`: at the time `readyAt` names, the recomputed wait can come out a few
 * ulps above the limit; without slack the caller would be told "not yet, ask again now" forever.
 */
const READY_SLACK_MS = 1e-3;

function rankOf(priority: PriorityClass): number {
  const rank = PRIORITY_CLASSES.indexOf(priority);
  if (rank < 0) throw new RangeError(`unknown priority class '${String(priority)}'`);
  return rank;
}

export class Pacer<T = Uint8Array> {
  readonly counters: PacerCounters = {
    enqueued: 0,
    sent: 0,
    sentAirtimeMs: 0,
    drops: { dwell: 0, 'too-large': 0, 'queue-full': 0, 'flow-full': 0, evicted: 0, superseded: 0 },
  };
  readonly mtu: number;
  /**
   * The largest frame `enqueue` accepts: the MTU, or less where the dwell limit or a whole budget
   * holds less airtime. `ready`, `readyAt` and the default of `estimateDelayMs` ask about a frame
   * of this size (a frame that could never go is no measure of how busy the interface is).
   */
  readonly maxFrameBytes: number;
  /** `ready` holds while a new frame of `maxFrameBytes` would wait at most this long. */
  readonly readyDelayMs: number;
  private readonly model: AirtimeModel;
  private readonly budgets: SlidingBudget[];
  private readonly dwellMs: number;
  private readonly maxQueuedFrames: number;
  private readonly maxQueuedBytes: number;
  private readonly maxFramesPerFlow: number;
  private readonly maxFrameAirtimeMs: number;
  private readonly classes: ClassQueue<T>[];
  /** Airtime of the frames queued in each class (the head counted in its own class), for `ready`. */
  private readonly queuedAirtime: number[] = PRIORITY_CLASSES.map(() => 0);
  /** Bytes queued in each class (the head counted in its own class), for `ready`'s queue room. */
  private readonly queuedBytesByRank: number[] = PRIORITY_CLASSES.map(() => 0);
  /** The frame chosen to go next, waiting for its budget. */
  private head: PacedFrame<T> | undefined;
  private queuedFrames = 0;
  private queuedBytes = 0;
  private busyUntil = -Infinity;

  constructor(config: PacerConfig) {
    this.model = config.model;
    this.mtu = config.mtu ?? config.model.maxBytes;
    if (!Number.isInteger(this.mtu) || this.mtu < 1 || this.mtu > config.model.maxBytes) {
      throw new RangeError(`pacer MTU must be 1..${config.model.maxBytes} bytes for a ${config.model.kind} link, got ${this.mtu}`);
    }
    this.budgets = (config.budgets ?? []).map((b) => new SlidingBudget(b));
    this.dwellMs = config.dwellMs ?? Infinity;
    this.maxQueuedFrames = config.maxQueuedFrames ?? 256;
    this.maxQueuedBytes = config.maxQueuedBytes ?? 64 * 1024;
    this.maxFramesPerFlow = config.maxFramesPerFlow ?? 64;
    const mtuAirtime = this.model.airtimeMs(this.mtu);
    let maxFrame = this.mtu;
    if (Number.isFinite(this.dwellMs)) maxFrame = Math.min(maxFrame, this.model.maxBytesWithin(this.dwellMs));
    for (const b of this.budgets) maxFrame = Math.min(maxFrame, this.model.maxBytesWithin(b.limitMs));
    this.maxFrameBytes = Math.max(0, maxFrame);
    this.maxFrameAirtimeMs = this.model.airtimeMs(this.maxFrameBytes);
    this.readyDelayMs = config.readyDelayMs ?? Math.max(1000, 4 * mtuAirtime);
    // A quantum of one MTU (in airtime, or in bytes when airtime is free) lets every flow send at
    // least one frame per turn.
    const byAirtime = mtuAirtime > 0;
    const quantum = byAirtime ? mtuAirtime : this.mtu;
    const cost = byAirtime ? (f: PacedFrame<T>): number => f.airtimeMs : (f: PacedFrame<T>): number => f.bytes;
    this.classes = PRIORITY_CLASSES.map(() => new ClassQueue<T>(quantum, cost));
  }

  enqueue(now: number, request: FrameRequest<T>): EnqueueResult {
    const refuse = (reason: DropReason, message: string, maxBytes?: number): EnqueueResult => {
      this.counters.drops[reason]++;
      return maxBytes === undefined ? { ok: false, reason, message } : { ok: false, reason, message, maxBytes };
    };
    const rank = PRIORITY_CLASSES.indexOf(request.priority);
    if (rank < 0) throw new RangeError(`unknown priority class '${String(request.priority)}'`);
    if (!Number.isInteger(request.bytes) || request.bytes < 0) {
      throw new RangeError(`frame size must be a whole number of bytes, got ${request.bytes}`);
    }
    if (request.bytes > this.mtu) {
      return refuse('too-large', `frame of ${request.bytes} bytes exceeds the MTU of ${this.mtu} bytes`, this.mtu);
    }
    const airtimeMs = this.model.airtimeMs(request.bytes);
    if (airtimeMs > this.dwellMs) {
      const maxBytes = this.model.maxBytesWithin(this.dwellMs);
      return refuse(
        'dwell',
        `frame of ${request.bytes} bytes takes ${airtimeMs} ms on air, over the ${this.dwellMs} ms dwell limit; at most ${maxBytes} bytes fit`,
        Math.max(0, maxBytes),
      );
    }
    for (const b of this.budgets) {
      if (airtimeMs > b.limitMs) {
        const maxBytes = this.model.maxBytesWithin(b.limitMs);
        return refuse(
          'too-large',
          `frame of ${request.bytes} bytes takes ${airtimeMs} ms on air, more than the whole '${b.spec.name}' budget of ${b.limitMs} ms; at most ${maxBytes} bytes fit`,
          Math.max(0, maxBytes),
        );
      }
    }
    if (request.kind !== undefined) this.supersede(request);
    const cls = this.classes[rank]!;
    if ((cls.flows.get(request.flow)?.queue.length ?? 0) >= this.maxFramesPerFlow) {
      return refuse('flow-full', `flow '${request.flow}' already has ${this.maxFramesPerFlow} frames queued`);
    }
    while (this.queuedFrames + 1 > this.maxQueuedFrames || this.queuedBytes + request.bytes > this.maxQueuedBytes) {
      if (!this.evictBelow(rank)) {
        return refuse('queue-full', `queue full (${this.queuedFrames} frames, ${this.queuedBytes} bytes)`);
      }
    }
    // A frame of a higher class than the one waiting at the head goes before it.
    if (this.head && PRIORITY_CLASSES.indexOf(this.head.priority) > rank) this.returnHead();
    cls.push({ ...request, airtimeMs, enqueuedAt: now });
    this.queuedFrames++;
    this.queuedBytes += request.bytes;
    this.queuedBytesByRank[rank]! += request.bytes;
    this.queuedAirtime[rank]! += airtimeMs;
    this.counters.enqueued++;
    return { ok: true, airtimeMs };
  }

  /** Returns the frame that may start now (or within `aheadMs`, counted from its planned start), recording its airtime, or undefined. */
  poll(now: number, aheadMs = 0): PacedFrame<T> | undefined {
    const horizon = now + aheadMs;
    if (horizon < this.busyUntil) return undefined;
    const frame = this.selectHead();
    if (!frame) return undefined;
    // A frame due within `aheadMs` goes now but counts from its planned start, so that releasing
    // a little early never moves the schedule (nor, where there are budgets, their accounting).
    const start = this.startTime(now, frame.airtimeMs);
    if (start > horizon) return undefined;
    this.head = undefined;
    this.forget(frame);
    for (const b of this.budgets) {
      b.prune(start);
      b.record(start, frame.airtimeMs);
    }
    this.busyUntil = start + frame.airtimeMs;
    this.counters.sent++;
    this.counters.sentAirtimeMs += frame.airtimeMs;
    return frame;
  }

  /** When `poll` may next return a frame; undefined when nothing is queued. */
  nextDeadline(now: number): number | undefined {
    const frame = this.selectHead();
    if (!frame) return undefined;
    return this.startTime(now, frame.airtimeMs);
  }

  /** Estimated wait before a new frame of `bytes` (default `maxFrameBytes`) in `priority` would start. */
  estimateDelayMs(now: number, priority: PriorityClass, bytes = this.maxFrameBytes): number {
    const rank = PRIORITY_CLASSES.indexOf(priority);
    const costs: number[] = [];
    if (this.head && PRIORITY_CLASSES.indexOf(this.head.priority) <= rank) costs.push(this.head.airtimeMs);
    for (let r = 0; r <= rank && costs.length < ESTIMATE_FRAMES; r++) {
      for (const c of this.classes[r]!.frameCosts()) {
        costs.push(c);
        if (costs.length >= ESTIMATE_FRAMES) break;
      }
    }
    const ahead = this.framesAhead(rank);
    const budgets = this.budgets.map((b) => b.clone());
    let t = Math.max(now, this.busyUntil);
    for (const d of costs) {
      t = budgets.reduce((s, b) => Math.max(s, b.earliestStart(t, d)), t);
      for (const b of budgets) b.record(t, d);
      t += d;
    }
    // Beyond the simulated frames, assume the channel runs at the tightest budget's rate.
    if (ahead > costs.length && costs.length > 0) {
      const mean = costs.reduce((a, b) => a + b, 0) / costs.length;
      const rate = Math.min(1, ...this.budgets.map((b) => b.spec.fraction));
      t += ((ahead - costs.length) * mean) / rate;
    }
    const own = this.model.airtimeMs(Math.min(bytes, this.mtu));
    t = budgets.reduce((s, b) => Math.max(s, b.earliestStart(t, own)), t);
    return t - now;
  }

  status(now: number): PacerStatus {
    const queuedByClass = {} as Record<PriorityClass, number>;
    const delayMs = {} as Record<PriorityClass, number>;
    const ready = {} as Record<PriorityClass, boolean>;
    PRIORITY_CLASSES.forEach((p, i) => {
      queuedByClass[p] = this.classes[i]!.frames + (this.head?.priority === p ? 1 : 0);
      delayMs[p] = this.estimateDelayMs(now, p);
      ready[p] = this.ready(now, p);
    });
    return {
      windows: this.budgets.map((b) => {
        b.prune(now);
        const usedMs = b.used(now);
        return { name: b.spec.name, windowMs: b.spec.windowMs, limitMs: b.limitMs, usedMs, leftMs: Math.max(0, b.limitMs - usedMs) };
      }),
      queuedFrames: this.queuedFrames,
      queuedBytes: this.queuedBytes,
      queuedByClass,
      delayMs,
      ready,
      busyUntil: Number.isFinite(this.busyUntil) ? this.busyUntil : 0,
    };
  }

  /**
   * Whether a sender of `priority` should hand over another frame now: a new frame of
   * `maxFrameBytes` in that class would start within `readyDelayMs`. Cheap enough to ask per
   * packet — O(classes + budgets), no allocation — where `estimateDelayMs` simulates up to 256
   * frames.
   *
   * The wait it counts is: the frame on air (until `busyUntil`), plus the airtime queued in this
   * class and above (the waiting head included), plus the budget wait of that queue and the new
   * frame sent as one block from then on (`earliestStart` of their summed airtime on the live
   * budgets). A conservative approximation of `estimateDelayMs(now, priority) <= readyDelayMs`:
   *
   * - exact when nothing of this class or above is queued (then both compute the same start);
   * - otherwise never shorter than the simulation (up to rounding, while at most 256 frames are
   *   ahead — beyond that the simulation extrapolates): a block that the budgets allow is a
   *   schedule the pacer could follow, and the pacer starts each frame at its earliest. Charging
   *   the queue against the budgets (not only its airtime) is what keeps it from saying ready at
   *   a budget's edge while the queued frames are about to spend what is left.
   * - When the block exceeds a whole budget it says not ready, though the simulation may find a
   *   shorter wait with gaps between frames; `readyAt` then answers with the next release.
   *
   * `earliestStart` returns at once while a budget has room; at its edge it walks the past
   * transmissions that must slide out of the window (at most those the block needs).
   */
  ready(now: number, priority: PriorityClass): boolean {
    const rank = rankOf(priority);
    return this.hasRoom(rank) && this.readyDelay(now, rank) <= this.readyDelayMs + READY_SLACK_MS;
  }

  /**
   * Whether the queue takes a frame of `maxFrameBytes` in class `rank` without refusing it: the
   * frames and bytes of this class and above leave room (lower classes would be evicted for it).
   * Where airtime is free (UDP) this, not the airtime wait, is what holds a fast sender back.
   */
  private hasRoom(rank: number): boolean {
    let bytes = 0;
    for (let r = 0; r <= rank; r++) bytes += this.queuedBytesByRank[r]!;
    return bytes + this.maxFrameBytes <= this.maxQueuedBytes && this.framesAhead(rank) < this.maxQueuedFrames;
  }

  /**
   * When to ask `ready` again, if nothing more is queued: `now` when it is ready now, else the time
   * at which the wait it counts has shrunk to `readyDelayMs` — or, when frames of this class or
   * above are queued, the next release (`nextDeadline`) if that comes first, since a release
   * changes the answer (a lower class's release can only make the wait longer: then ask again).
   * Never `now` while not ready, once due frames have been polled, so a loop that sleeps until it
   * does not spin. Infinity only if not even an empty frame fits a budget.
   */
  readyAt(now: number, priority: PriorityClass): number {
    const rank = rankOf(priority);
    // A full queue turns ready by a release (the link's 'ready' wakes a blocked interface).
    if (!this.hasRoom(rank)) return this.nextDeadline(now) ?? Infinity;
    const delay = this.readyDelay(now, rank);
    if (delay <= this.readyDelayMs + READY_SLACK_MS) return now;
    // Never a time that rounds back to `now`: a caller sleeping until then must find it ready.
    const at = Math.max(now + (delay - this.readyDelayMs), now + READY_SLACK_MS);
    if (this.aheadAirtime(rank) === 0) return at;
    const release = this.nextDeadline(now);
    return release !== undefined && release < at ? release : at;
  }

  /** The wait `ready` counts; see there. */
  private readyDelay(now: number, rank: number): number {
    const ahead = this.aheadAirtime(rank);
    const from = now > this.busyUntil ? now : this.busyUntil;
    const block = ahead + this.maxFrameAirtimeMs;
    let start = from;
    for (let i = 0; i < this.budgets.length; i++) {
      const s = this.budgets[i]!.earliestStart(from, block);
      if (s > start) start = s;
    }
    return start + ahead - now;
  }

  /** Airtime queued in classes 0..rank. */
  private aheadAirtime(rank: number): number {
    let ahead = 0;
    for (let r = 0; r <= rank; r++) ahead += this.queuedAirtime[r]!;
    return ahead;
  }

  /** Removes the frames of the request's flow and kind from another generation (head included). */
  private supersede(request: FrameRequest<T>): void {
    const stale = (f: PacedFrame<T>): boolean =>
      f.kind === request.kind && (request.generation === undefined || f.generation !== request.generation);
    // A waiting head goes back to its flow first, so its flow's round-robin credit is restored.
    if (this.head && this.head.flow === request.flow && stale(this.head)) this.returnHead();
    for (const cls of this.classes) {
      for (const frame of cls.removeWhere(request.flow, stale)) {
        this.forget(frame);
        this.counters.drops.superseded++;
      }
    }
  }

  /** Takes a frame that has left the queue (sent, evicted, superseded) out of the totals. */
  private forget(frame: PacedFrame<T>): void {
    const rank = rankOf(frame.priority);
    this.queuedFrames--;
    this.queuedBytes -= frame.bytes;
    this.queuedBytesByRank[rank]! -= frame.bytes;
    const left = this.classes[rank]!.frames + (this.head?.priority === frame.priority ? 1 : 0);
    // Reset when empty, so float sums cannot drift.
    this.queuedAirtime[rank] = left === 0 ? 0 : Math.max(0, this.queuedAirtime[rank]! - frame.airtimeMs);
  }

  private framesAhead(rank: number): number {
    let n = this.head && PRIORITY_CLASSES.indexOf(this.head.priority) <= rank ? 1 : 0;
    for (let r = 0; r <= rank; r++) n += this.classes[r]!.frames;
    return n;
  }

  private startTime(now: number, airtimeMs: number): number {
    let t = Math.max(now, this.busyUntil);
    for (const b of this.budgets) t = Math.max(t, b.earliestStart(t, airtimeMs));
    return t;
  }

  private selectHead(): PacedFrame<T> | undefined {
    if (this.head) return this.head;
    for (const cls of this.classes) {
      const frame = cls.take();
      if (frame) return (this.head = frame);
    }
    return undefined;
  }

  private returnHead(): void {
    const head = this.head!;
    this.head = undefined;
    this.classes[PRIORITY_CLASSES.indexOf(head.priority)]!.untake(head);
  }

  /** Evicts the newest frame of the lowest non-empty class below `rank`; false if none. */
  private evictBelow(rank: number): boolean {
    for (let r = this.classes.length - 1; r > rank; r--) {
      const frame = this.classes[r]!.evictNewest();
      if (frame) {
        this.forget(frame);
        this.counters.drops.evicted++;
        return true;
      }
    }
    return false;
  }
}
