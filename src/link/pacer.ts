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
 *
 * The gateway calls `poll(now)` at `nextDeadline(now)` and after each `enqueue`; `status(now)`
 * tells the layers above what is used, what is left, the queueing delay a new frame would see,
 * and whether the interface is ready for more.
 */
import type { AirtimeModel } from './airtime/model.js';
import { SlidingBudget, type BudgetSpec } from './sliding-budget.js';

export const PRIORITY_CLASSES = ['control', 'ack', 'interactive', 'bulk'] as const;
export type PriorityClass = (typeof PRIORITY_CLASSES)[number];

export type DropReason = 'dwell' | 'too-large' | 'queue-full' | 'flow-full' | 'evicted';

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
  /** `ready` is true while a new MTU-sized frame would wait at most this long; default 4 MTU airtimes, at least 1 s. */
  readyDelayMs?: number;
}

export interface FrameRequest<T> {
  flow: string;
  priority: PriorityClass;
  bytes: number;
  payload: T;
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
  /** Estimated wait before a new MTU-sized frame of each class would start. */
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

export class Pacer<T = Uint8Array> {
  readonly counters: PacerCounters = {
    enqueued: 0,
    sent: 0,
    sentAirtimeMs: 0,
    drops: { dwell: 0, 'too-large': 0, 'queue-full': 0, 'flow-full': 0, evicted: 0 },
  };
  readonly mtu: number;
  private readonly model: AirtimeModel;
  private readonly budgets: SlidingBudget[];
  private readonly dwellMs: number;
  private readonly maxQueuedFrames: number;
  private readonly maxQueuedBytes: number;
  private readonly maxFramesPerFlow: number;
  private readonly readyDelayMs: number;
  private readonly classes: ClassQueue<T>[];
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
    this.counters.enqueued++;
    return { ok: true, airtimeMs };
  }

  /** Returns the frame that may start now, recording its airtime, or undefined. */
  poll(now: number): PacedFrame<T> | undefined {
    if (now < this.busyUntil) return undefined;
    const frame = this.selectHead();
    if (!frame) return undefined;
    if (this.startTime(now, frame.airtimeMs) > now) return undefined;
    this.head = undefined;
    this.queuedFrames--;
    this.queuedBytes -= frame.bytes;
    for (const b of this.budgets) {
      b.prune(now);
      b.record(now, frame.airtimeMs);
    }
    this.busyUntil = now + frame.airtimeMs;
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

  /** Estimated wait before a new frame of `bytes` in `priority` would start. */
  estimateDelayMs(now: number, priority: PriorityClass, bytes = this.mtu): number {
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
      ready[p] = delayMs[p] <= this.readyDelayMs;
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

  /** Whether a sender of `priority` should hand over another frame now. */
  ready(now: number, priority: PriorityClass): boolean {
    return this.estimateDelayMs(now, priority) <= this.readyDelayMs;
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
        this.queuedFrames--;
        this.queuedBytes -= frame.bytes;
        this.counters.drops.evicted++;
        return true;
      }
    }
    return false;
  }
}
