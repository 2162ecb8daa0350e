/**
 * The interface registry: named interfaces, each a Link with its airtime model, the band's rules,
 * the operator's caps and a pacer. It is the one place the layers above ask which interfaces
 * there are, what each can carry, and how busy each is — and the way they send: frames go
 * through the interface's pacer, which hands them to the link when the budget allows.
 *
 * No timers of its own: the gateway calls `poll(now)` at `nextDeadline(now)` and after each send.
 */
import { airtimeLimits, type AirtimeCap, type AirtimeLimits } from './airtime-limits.js';
import type { AirtimeModel } from './airtime/model.js';
import { bandRules, type BandRules, type RegionName } from './airtime/regions.js';
import type { Link, LinkCounters, LinkState, LinkStats, SendOptions } from './link.js';
import { Pacer, type EnqueueResult, type PacerConfig, type PacerStatus, type PriorityClass } from './pacer.js';

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
}

export interface SendRequest {
  flow: string;
  priority: PriorityClass;
  data: Uint8Array;
  options?: SendOptions;
}

export class InterfaceRegistry {
  private readonly entries = new Map<string, InterfaceEntry>();

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
    const entry: InterfaceEntry = { name: link.name, link, rules, limits, pacer };
    this.entries.set(link.name, entry);
    return entry;
  }

  remove(name: string): Link | undefined {
    const e = this.entries.get(name);
    this.entries.delete(name);
    return e?.link;
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
    });
  }

  /** Hands every frame whose time has come to its link; returns how many went. */
  poll(now: number): number {
    let n = 0;
    for (const e of this.entries.values()) {
      if (e.link.state !== 'up') continue;
      for (let f = e.pacer.poll(now); f; f = e.pacer.poll(now)) {
        e.link.send(f.payload.data, f.payload.options);
        n++;
      }
    }
    return n;
  }

  /** The earliest time any interface that is up has a frame to release. */
  nextDeadline(now: number): number | undefined {
    let next: number | undefined;
    for (const e of this.entries.values()) {
      if (e.link.state !== 'up') continue;
      const d = e.pacer.nextDeadline(now);
      if (d !== undefined && (next === undefined || d < next)) next = d;
    }
    return next;
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
    }));
  }
}
