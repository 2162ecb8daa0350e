/**
 * The interface registry: named interfaces, each a Link with its airtime model, the band's rules,
 * the operator's caps and a pacer. It is the one place the layers above ask which interfaces
 * there are, what each can carry, and how busy each is — and the way they send: frames go
 * through the interface's pacer, which hands them to the link when the budget allows.
 *
 * No timers of its own: the gateway calls `poll(now)` at `nextDeadline(now)` and after each send.
 *
 * Backpressure drops nothing. `poll` hands frames to a link only while it is up and not blocked;
 * a `send` that returns false blocks the interface (frames wait in its pacer, still paced) until
 * the link emits 'ready'. A `send` that throws (too large, closed) is counted in the interface's
 * `refused` counters and `poll` carries on: it never throws. `onWake` is called when a link emits
 * 'ready' or comes up, so the loop runs (not during `poll`: the loop is running then, and the
 * `nextDeadline` it asks next covers what changed).
 *
 * Readiness for the layers above: `ready(name, now, priority)` per packet; `wantReady` records a
 * waiter, `takeReady(now)` hands back the waiters that are ready (the loop passes them on — the
 * registry calls nothing above it), and `nextDeadline` includes when each waiter's class will be
 * ready, so the loop wakes for a budget that frees up even with an empty queue.
 */
import { airtimeLimits, type AirtimeCap, type AirtimeLimits } from './airtime-limits.js';
import type { AirtimeModel } from './airtime/model.js';
import { bandRules, type BandRules, type RegionName } from './airtime/regions.js';
import { FrameTooLargeError, type Link, type LinkCounters, type LinkState, type LinkStats, type SendOptions } from './link.js';
import { Pacer, PRIORITY_CLASSES, type EnqueueResult, type PacerConfig, type PacerStatus, type PriorityClass } from './pacer.js';

export interface InterfaceConfig {
  /** Regional rules; default 'none'. */
  region?: RegionName;
  /** Channel for the regional rules; default the link's own LoRa parameters when it has them. */
  frequency?: number;
  bandwidth?: number;
  cap?: AirtimeCap;
  pacer?: Omit<PacerConfig, 'model' | 'budgets' | 'dwellMs' | 'mtu'>;
}

export interface PacedPayload {
  data: Uint8Array;
  options: SendOptions | undefined;
}

export interface InterfaceEntry {
  readonly name: string;
  readonly link: Link;
  readonly rules: BandRules;
  readonly limits: AirtimeLimits;
  readonly pacer: Pacer<PacedPayload>;
  /** `link.send` returned false: no frame leaves the pacer until the link emits 'ready'. */
  readonly blocked: boolean;
  /** Frames `link.send` threw for (taken from the pacer, not sent), by reason: 'too-large', 'closed', or the error's name. */
  readonly refused: Record<string, number>;
}

export interface RegistryOptions {
  /** Called when a link emits 'ready' or comes up (not from inside `poll`): the loop should run. */
  onWake?: () => void;
}

/** An entry with the registry's own mutable state and its listeners on the link. */
interface Entry extends InterfaceEntry {
  blocked: boolean;
  readonly onReady: () => void;
  readonly onState: (state: LinkState) => void;
}

export interface InterfaceStatus {
  name: string;
  kind: string;
  state: LinkState;
  mtu: number;
  bitRate: number | undefined;
  airtimeModel: string;
  region: RegionName;
  subBand: string | undefined;
  dwellMs: number | undefined;
  counters: LinkCounters;
  stats: LinkStats;
  pacer: PacerStatus;
  /** The link returned false from `send`; frames wait in the pacer until it emits 'ready'. */
  blocked: boolean;
  /** Frames the link's `send` threw for, by reason. */
  refused: Record<string, number>;
}

export interface SendRequest {
  flow: string;
  priority: PriorityClass;
  data: Uint8Array;
  options?: SendOptions;
  /** Control frames: a newer generation of the same flow and kind supersedes queued ones (see `FrameRequest`). */
  kind?: string;
  generation?: number;
}

export class InterfaceRegistry {
  private readonly entries = new Map<string, Entry>();
  /** Interfaces and classes somebody waits on (`wantReady`), until `takeReady` hands them out. */
  private readonly waiting = new Map<string, Set<PriorityClass>>();
  private readonly onWake: (() => void) | undefined;
  private polling = false;

  constructor(options: RegistryOptions = {}) {
    this.onWake = options.onWake;
  }

  /** Registers a link; throws for a duplicate name or a channel the region does not allow. */
  add(link: Link, config: InterfaceConfig = {}): InterfaceEntry {
    if (this.entries.has(link.name)) throw new Error(`an interface named '${link.name}' is already registered`);
    const lora = link.loraParams;
    const region = config.region ?? 'none';
    const frequency = config.frequency ?? lora?.frequency ?? 0;
    const bandwidth = config.bandwidth ?? lora?.bandwidth ?? 0;
    const rules = bandRules(region, frequency, bandwidth);
    const limits = airtimeLimits(rules, config.cap);
    const pacer = new Pacer<PacedPayload>({
      ...config.pacer,
      model: link.airtime,
      mtu: link.mtu,
      budgets: limits.budgets,
      ...(limits.dwellMs !== undefined ? { dwellMs: limits.dwellMs } : {}),
    });
    const entry: Entry = {
      name: link.name,
      link,
      rules,
      limits,
      pacer,
      blocked: false,
      refused: {},
      onReady: () => {
        entry.blocked = false;
        this.wake();
      },
      onState: (state) => {
        if (state !== 'up') return;
        // Asked again on coming up: a reconnect may have emptied the link's queue without a 'ready'.
        entry.blocked = false;
        this.wake();
      },
    };
    link.on('ready', entry.onReady);
    link.on('state', entry.onState);
    this.entries.set(link.name, entry);
    return entry;
  }

  /** Unregisters an interface (its queued frames are forgotten) and stops listening to its link. */
  remove(name: string): Link | undefined {
    const e = this.entries.get(name);
    if (!e) return undefined;
    e.link.off('ready', e.onReady);
    e.link.off('state', e.onState);
    this.entries.delete(name);
    this.waiting.delete(name);
    return e.link;
  }

  get(name: string): InterfaceEntry | undefined {
    return this.entries.get(name);
  }

  list(): InterfaceEntry[] {
    return [...this.entries.values()];
  }

  /** What each interface can carry: MTU and airtime model, for the RFC 5444 writer and the mesh. */
  capabilities(): Array<{ name: string; mtu: number; airtime: AirtimeModel; up: boolean }> {
    return this.list().map((e) => ({ name: e.name, mtu: e.link.mtu, airtime: e.link.airtime, up: e.link.state === 'up' }));
  }

  /** Queues a frame on an interface's pacer. */
  send(name: string, now: number, request: SendRequest): EnqueueResult {
    const e = this.entries.get(name);
    if (!e) throw new Error(`no interface named '${name}'`);
    return e.pacer.enqueue(now, {
      flow: request.flow,
      priority: request.priority,
      bytes: request.data.length,
      payload: { data: request.data, options: request.options },
      ...(request.kind !== undefined ? { kind: request.kind } : {}),
      ...(request.generation !== undefined ? { generation: request.generation } : {}),
    });
  }

  /**
   * Hands every frame whose time has come to its link, while the link is up and takes more;
   * returns how many the links accepted. Never throws. `aheadMs`: on interfaces without airtime
   * budgets, frames due that much later go now too (the loop's timer granularity).
   */
  poll(now: number, aheadMs = 0): number {
    let n = 0;
    this.polling = true;
    try {
      for (const e of this.entries.values()) {
        // Where no band rule or cap counts airtime (UDP, MQTT, TCP), frames due within the
        // clock's granularity go now: a rate-capped link at thousands of frames a second would
        // otherwise send one frame per timer tick. Budgeted interfaces keep exact times.
        const ahead = e.limits.budgets.length === 0 && e.limits.dwellMs === undefined ? aheadMs : 0;
        while (e.link.state === 'up' && !e.blocked) {
          const f = e.pacer.poll(now, ahead);
          if (!f) break;
          let more: boolean;
          try {
            more = e.link.send(f.payload.data, f.payload.options);
          } catch (err) {
            const reason = err instanceof FrameTooLargeError ? 'too-large' : (e.link.state as LinkState) === 'closed' ? 'closed' : err instanceof Error ? err.name : 'error';
            e.refused[reason] = (e.refused[reason] ?? 0) + 1;
            continue;
          }
          n++;
          if (!more) e.blocked = true;
        }
      }
    } finally {
      this.polling = false;
    }
    return n;
  }

  /**
   * The earliest time an interface that is up and not blocked has a frame to release, or a class
   * somebody waits on becomes ready. Blocked and down interfaces are left out: their link's
   * 'ready' or 'up' calls `onWake`.
   */
  nextDeadline(now: number): number | undefined {
    let next = Infinity;
    for (const e of this.entries.values()) {
      if (e.link.state !== 'up' || e.blocked) continue;
      const d = e.pacer.nextDeadline(now);
      if (d !== undefined && d < next) next = d;
      const waits = this.waiting.get(e.name);
      if (waits) for (const p of waits) next = Math.min(next, e.pacer.readyAt(now, p));
    }
    return Number.isFinite(next) ? next : undefined;
  }

  /** Whether a sender of `priority` should hand `name` another frame now; false for an unknown name. */
  ready(name: string, now: number, priority: PriorityClass): boolean {
    const e = this.entries.get(name);
    return e !== undefined && e.link.state === 'up' && !e.blocked && e.pacer.ready(now, priority);
  }

  /** Remembers that somebody waits for `name` to be ready for `priority`; `takeReady` says when. True when the wait is new. */
  wantReady(name: string, priority: PriorityClass): boolean {
    if (!this.entries.has(name)) throw new Error(`no interface named '${name}'`);
    if (!PRIORITY_CLASSES.includes(priority)) throw new RangeError(`unknown priority class '${String(priority)}'`);
    let waits = this.waiting.get(name);
    if (!waits) this.waiting.set(name, (waits = new Set()));
    if (waits.has(priority)) return false;
    waits.add(priority);
    return true;
  }

  /** The waited-on (interface, class) pairs that are ready now, in registry and class order; forgotten once returned. */
  takeReady(now: number): Array<{ iface: string; priority: PriorityClass }> {
    const out: Array<{ iface: string; priority: PriorityClass }> = [];
    if (this.waiting.size === 0) return out;
    for (const e of this.entries.values()) {
      const waits = this.waiting.get(e.name);
      if (!waits) continue;
      for (const priority of PRIORITY_CLASSES) {
        if (waits.has(priority) && this.ready(e.name, now, priority)) {
          waits.delete(priority);
          out.push({ iface: e.name, priority });
        }
      }
      if (waits.size === 0) this.waiting.delete(e.name);
    }
    return out;
  }

  private wake(): void {
    if (!this.polling) this.onWake?.();
  }

  status(now: number): InterfaceStatus[] {
    return this.list().map((e) => ({
      name: e.name,
      kind: e.link.kind,
      state: e.link.state,
      mtu: e.link.mtu,
      bitRate: e.link.bitRate,
      airtimeModel: e.link.airtime.kind,
      region: e.rules.region,
      subBand: e.rules.subBand?.name,
      dwellMs: e.limits.dwellMs,
      counters: e.link.counters,
      stats: e.link.stats,
      pacer: e.pacer.status(now),
      blocked: e.blocked,
      refused: { ...e.refused },
    }));
  }
}
