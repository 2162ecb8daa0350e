/**
 * Runs a scenario in virtual time through the daemon's own code: per node a MeshNode, a Gateway
 * (its one loop, its interface registry with a pacer and the region's duty-cycle budgets per
 * interface) and an MspService; Strokkur over mesh datagram ports as the app API uses it; one
 * SimMedium per medium with the scenario's radio paths (radio.ts). Only the radios and the
 * clock are simulated. Everything is seeded: one scenario and seed give one result.
 *
 * Traffic (ports are mesh datagram ports, 0..255):
 * - datagram flows: every `every` s from `start` (each flow at its own phase within the
 *   interval), a datagram of `bytes` carrying the flow and its sequence number, to port 100
 *   of the destination; delivered when it arrives there, lost otherwise (or refused at the
 *   source, counted by reason);
 * - MSP transfers: a stream to port 101 of the destination, its first message the flow number,
 *   then `bytes` of a pattern the receiver checks byte by byte; done when the receiver sees the
 *   end with every byte intact;
 * - Strokkur messages to port 102: the flow number, then the pattern; done when it arrives intact.
 *
 * What is measured independently of the code under test: airtime from the medium's own record
 * of every transmission (start, airtime), from which the most airtime in any sliding hour is
 * compared with the budget the region allows on that channel.
 */
import { createHash } from 'node:crypto';
import { SimMedium, type SimLink, type SimReach } from '../../drivers/sim.js';
import { Ax25AirtimeModel } from '../link/airtime/afsk.js';
import { FixedRateAirtimeModel } from '../link/airtime/fixed-rate.js';
import { LoraAirtimeModel } from '../link/airtime/lora-model.js';
import type { AirtimeModel } from '../link/airtime/model.js';
import { RegionError } from '../link/airtime/regions.js';
import { loraLargestFrame, MIN_USEFUL_FRAME_BYTES } from '../gateway/config.js';
import { VirtualClock } from '../link/clock.js';
import type { InterfaceConfig } from '../link/registry.js';
import { identityFromSecret } from '../mesh/identity.js';
import type { MeshSocket, NodeOptions } from '../mesh/node.js';
import { MeshNode } from '../mesh/node.js';
import { MspService } from '../msp/service.js';
import { MspState, type MspSocket, type MspSockets } from '../msp/sockets.js';
import { MeshStrokkurTransport } from '../strokkur/mesh.js';
import { Strokkur } from '../strokkur/strokkur.js';
import { Gateway } from '../gateway/gateway.js';
import { combineLoss, radioPath } from './radio.js';
import { mulberry32, ScenarioError, type MediumSpec, type Scenario, type TrafficSpec } from './scenario.js';

export const DATAGRAM_PORT = 100;
export const MSP_PORT = 101;
export const STROKKUR_PORT = 102;
const HOUR_MS = 3_600_000;
/** Distinct log lines kept per run (each with its count). */
const MAX_LOG_LINES = 64;

export interface SimRunOptions {
  /** Overrides the scenario's hours. */
  hours?: number;
  /** Called after each virtual hour with the wall time so far (ms). */
  onHour?: (hour: number, wallMs: number) => void;
}

export interface InterfaceFigures {
  medium: string;
  frames: { sent: number; received: number };
  drops: Record<string, number>;
  airtimeMs: number;
  /** The most airtime in any sliding window of the budget's length (an hour without a budget). */
  worstWindowAirtimeMs: number;
  /** The duty-cycle budget over that window, ms; undefined where the region sets none. */
  budgetMs: number | undefined;
  budget: string | undefined;
}

export interface Percentiles {
  p50: number;
  p90: number;
  p99: number;
}

export interface NodeFigures {
  name: string;
  sid: string;
  interfaces: InterfaceFigures[];
  neighbours: number;
  routes: number;
  routeChanges: number;
  /** What this node originated. */
  datagrams: { sent: number; delivered: number; lost: number; refused: Record<string, number>; latencyMs: Percentiles | undefined };
  /** MSP transfers and Strokkur messages: started before the end, completed intact, started but not completed. */
  transfers: { started: number; completed: number; failed: number };
}

export interface FlowFigures {
  kind: TrafficSpec['kind'];
  from: string;
  to: string;
  /** Datagrams sent, or 1 for a transfer / message. */
  sent: number;
  delivered: number;
  /** Datagrams: latency of each delivered one; transfers and messages: time to complete. */
  latencyMs: Percentiles | undefined;
  bytes: number;
  error?: string;
}

export interface MediumFigures {
  name: string;
  kind: MediumSpec['kind'];
  reach: string;
  transmissions: number;
  delivered: number;
  collisions: number;
  halfDuplex: number;
  lost: number;
}

export interface SimReport {
  scenario: string;
  seed: number;
  hours: number;
  wallMs: number;
  /** Virtual time over wall time. */
  speed: number;
  nodes: NodeFigures[];
  flows: FlowFigures[];
  media: MediumFigures[];
  /** Interfaces whose worst window exceeded its budget (should be none: the pacer keeps it). */
  dutyCycleViolations: Array<{ node: string; medium: string; worstWindowAirtimeMs: number; budgetMs: number }>;
  /** Distinct lines the nodes logged, with counts (at most 64 kept). */
  log: Array<{ line: string; count: number }>;
}

interface SimNode {
  name: string;
  index: number;
  node: MeshNode;
  gateway: Gateway;
  msp: MspService;
  links: Map<string, SimLink>;
  configs: Map<string, InterfaceConfig>;
  routeChanges: number;
  datagramSocket?: MeshSocket;
  mspListening?: boolean;
  strokkur?: Strokkur<Uint8Array>;
}

interface TxRecord {
  starts: number[];
  airtimes: number[];
}

interface Flow {
  index: number;
  spec: TrafficSpec;
  from: SimNode;
  to: SimNode;
  sentAt: number[];
  received: Uint8Array;
  latencies: number[];
  refused: Record<string, number>;
  delivered: number;
  startedAt?: number;
  doneAt?: number;
  error?: string;
}

/** The byte of the pattern at `offset` of flow `flow` (a corruption anywhere shows). */
function patternByte(flow: number, offset: number): number {
  return (Math.imul(offset + 1, 0x9e3779b1) ^ Math.imul(flow + 1, 0x85ebca6b)) >>> 24;
}

function pattern(flow: number, offset: number, length: number): Uint8Array {
  const out = new Uint8Array(length);
  for (let i = 0; i < length; i++) out[i] = patternByte(flow, offset + i);
  return out;
}

function percentiles(values: number[]): Percentiles | undefined {
  if (values.length === 0) return undefined;
  const s = [...values].sort((a, b) => a - b);
  const at = (q: number): number => s[Math.min(s.length - 1, Math.floor(q * s.length))]!;
  return { p50: at(0.5), p90: at(0.9), p99: at(0.99) };
}

/** The most airtime inside any window of `windowMs` (a transmission may straddle the window's end). */
export function worstWindow(starts: readonly number[], airtimes: readonly number[], windowMs: number): number {
  let best = 0;
  let sum = 0;
  let j = 0;
  // Windows that start at a transmission's start are the ones that can hold the most.
  for (let i = 0; i < starts.length; i++) {
    if (i > 0) sum -= airtimes[i - 1]!;
    if (j < i) {
      j = i;
      sum = 0;
    }
    const end = starts[i]! + windowMs;
    while (j < starts.length && starts[j]! + airtimes[j]! <= end) sum += airtimes[j++]!;
    // The next one may start inside the window and run past its end: count the part inside.
    const partial = j < starts.length && starts[j]! < end ? end - starts[j]! : 0;
    best = Math.max(best, sum + partial);
  }
  return best;
}

function seededBytes(random: () => number, n: number): Uint8Array {
  return Uint8Array.from({ length: n }, () => Math.floor(random() * 256));
}

function airtimeOf(m: MediumSpec): AirtimeModel {
  switch (m.kind) {
    case 'lora':
      return new LoraAirtimeModel({ sf: m.sf, bandwidth: m.bandwidth, cr: m.cr });
    case 'afsk':
      return new Ax25AirtimeModel({ modem: m.modem, txDelayMs: m.txDelay * 1000 });
    case 'wifi':
      return new FixedRateAirtimeModel({ bitRate: m.bitRate, maxBytes: m.mtu });
  }
}

/** Carrier-sense slot (ms): LoRa's channel-activity detection, a TNC's 100 ms slottime, Wi-Fi's 9 µs (rounded up). */
function csmaSlotOf(m: MediumSpec): number {
  return m.kind === 'lora' ? 20 : m.kind === 'afsk' ? 100 : 1;
}

/** The capture effect by modulation (dB): LoRa's co-channel rejection within one SF, FM's capture, OFDM's. */
const CAPTURE_DB: Readonly<Record<MediumSpec['kind'], number>> = { lora: 6, afsk: 10, wifi: 10 };

/** A number from a name, to derive each node's and medium's own seed. */
function hashName(seed: number, name: string): number {
  return createHash('sha256').update(`${seed}/${name}`).digest().readUInt32LE(0);
}

export class SimWorld {
  readonly clock = new VirtualClock(0);
  readonly nodes: SimNode[] = [];
  readonly flows: Flow[] = [];
  private readonly media = new Map<string, { spec: MediumSpec & { reach: string }; medium: SimMedium }>();
  private readonly tx = new Map<SimLink, TxRecord>();
  private readonly owner = new Map<SimLink, SimNode>();
  private readonly logLines = new Map<string, number>();
  private readonly byName = new Map<string, SimNode>();

  constructor(
    readonly scenario: Scenario,
    /** Options given to every node's MeshNode (experiments, tests: `floodSuppression: false`). */
    private readonly nodeOptions: Partial<NodeOptions> = {},
  ) {
    for (const [name, spec] of scenario.media) this.addMedium(name, spec);
    scenario.nodes.forEach((n, i) => this.addNode(n.name, n.interfaces, i));
    this.addTraffic();
  }

  private log(line: string): void {
    const seen = this.logLines.get(line);
    if (seen !== undefined) this.logLines.set(line, seen + 1);
    else if (this.logLines.size < MAX_LOG_LINES) this.logLines.set(line, 1);
  }

  private addMedium(name: string, spec: MediumSpec & { reach: 'all' | 'positions' | 'links' }): void {
    const sc = this.scenario;
    const pairs = new Map<string, number>();
    for (const l of sc.links) if (l.medium === name) pairs.set([...l.between].sort().join('\u0000'), l.loss);
    const cache = new Map<string, SimReach | null>();
    const reach = (from: SimLink, to: SimLink): SimReach | undefined => {
      const a = this.owner.get(from)!;
      const b = this.owner.get(to)!;
      const key = a.index < b.index ? `${a.index}/${b.index}` : `${b.index}/${a.index}`;
      let path = cache.get(key);
      if (path === undefined) {
        path = this.pathBetween(spec, a.name, b.name, pairs);
        cache.set(key, path);
      }
      return path ?? undefined;
    };
    const medium = new SimMedium({
      clock: this.clock,
      airtime: airtimeOf(spec),
      csmaSlotMs: csmaSlotOf(spec),
      ...(spec.reach === 'positions' ? { captureDb: CAPTURE_DB[spec.kind] } : {}),
      random: mulberry32(hashName(sc.seed, `medium/${name}`)),
      reach,
      onTransmit: (sender, _bytes, start, airtimeMs) => {
        const r = this.tx.get(sender);
        if (r) {
          r.starts.push(start);
          r.airtimes.push(airtimeMs);
        }
      },
    });
    this.media.set(name, { spec, medium });
  }

  /** The radio path of a pair (null: out of range), from the medium's reach and the scenario's links. */
  private pathBetween(spec: MediumSpec & { reach: string }, a: string, b: string, pairs: Map<string, number>): SimReach | null {
    const listed = pairs.get([a, b].sort().join('\u0000'));
    if (spec.reach === 'links' && listed === undefined) return null;
    let loss = listed ?? 0;
    let extra: { rssiDbm: number; snrDb: number } | undefined;
    if (spec.reach === 'positions') {
      const pa = this.scenario.nodes.find((n) => n.name === a)!.at!;
      const pb = this.scenario.nodes.find((n) => n.name === b)!.at!;
      const path = radioPath(spec, pa, pb);
      extra = { rssiDbm: Math.round(path.rssiDbm), snrDb: Math.round(path.snrDb * 4) / 4 };
      if (listed === undefined) loss = path.loss;
    }
    loss = combineLoss(loss, spec.loss);
    if (loss >= 1) return null;
    return { loss, ...extra };
  }

  private addNode(name: string, interfaces: string[], index: number): void {
    const sc = this.scenario;
    const random = mulberry32(hashName(sc.seed, `node/${name}`));
    const secret = createHash('sha256').update(`meshgw-sim/${sc.seed}/${name}`).digest();
    const node = new MeshNode({ ...this.nodeOptions, identity: identityFromSecret(new Uint8Array(secret)), boot: { epoch: 1, nonce: seededBytes(random, 8) }, random, log: (l) => this.log(l) });
    const links = new Map<string, SimLink>();
    const configs = new Map<string, InterfaceConfig>();
    const built: Array<{ link: SimLink; config: InterfaceConfig }> = [];
    for (const m of interfaces) {
      const { spec, medium } = this.media.get(m)!;
      const link = medium.attach(m, { queueCap: spec.kind === 'wifi' ? 64 : 16 });
      const config: InterfaceConfig = spec.kind === 'lora' ? { region: sc.region, frequency: spec.frequency, bandwidth: spec.bandwidth } : {};
      if (spec.kind === 'lora') {
        let most: number;
        try {
          most = loraLargestFrame({ region: sc.region }, spec, { sf: spec.sf, bandwidth: spec.bandwidth, cr: spec.cr });
        } catch (err) {
          if (err instanceof RegionError) throw new ScenarioError(`${sc.file}: media.${m}.frequency: ${err.message}`);
          throw err;
        }
        if (most < MIN_USEFUL_FRAME_BYTES) {
          throw new ScenarioError(`${sc.file}: media.${m}: SF${spec.sf} at ${spec.bandwidth / 1000} kHz under ${sc.region} allows ${most < 0 ? 'no frame at all' : `frames of at most ${most} bytes`}, below the ${MIN_USEFUL_FRAME_BYTES} a HELLO needs; use a lower sf or a wider bandwidth`);
        }
      }
      links.set(m, link);
      configs.set(m, config);
      built.push({ link, config });
    }
    const msp = new MspService({ random, log: (l) => this.log(l) });
    const gateway = new Gateway({ clock: this.clock, interfaces: built, mesh: node, services: [msp], log: (l) => this.log(l) });
    const n: SimNode = { name, index, node, gateway, msp, links, configs, routeChanges: 0 };
    gateway.host!.on('route-changed', () => n.routeChanges++);
    for (const link of links.values()) {
      this.owner.set(link, n);
      this.tx.set(link, { starts: [], airtimes: [] });
    }
    this.nodes.push(n);
    this.byName.set(name, n);
  }

  private addTraffic(): void {
    const sc = this.scenario;
    const draw = mulberry32(sc.seed ^ 0x7aff1c);
    const pick = (not?: SimNode): SimNode => {
      for (;;) {
        const n = this.nodes[Math.floor(draw() * this.nodes.length)]!;
        if (n !== not) return n;
      }
    };
    for (const spec of sc.traffic) {
      for (let p = 0; p < spec.pairs; p++) {
        const from = spec.from === 'random' ? pick(spec.to === 'random' ? undefined : this.byName.get(spec.to)) : this.byName.get(spec.from)!;
        const to = spec.to === 'random' ? pick(from) : this.byName.get(spec.to)!;
        const flow: Flow = { index: this.flows.length, spec, from, to, sentAt: [], received: new Uint8Array(0), latencies: [], refused: {}, delivered: 0 };
        this.flows.push(flow);
      }
    }
  }

  /** Opens every link and schedules the traffic. */
  async start(endMs: number): Promise<void> {
    for (const n of this.nodes) await n.gateway.start();
    for (const flow of this.flows) {
      if (flow.spec.kind === 'datagram') this.scheduleDatagrams(flow, flow.spec, endMs);
      else if (flow.spec.kind === 'msp') this.scheduleTransfer(flow, flow.spec.at * 1000, flow.spec.bytes);
      else this.scheduleMessage(flow, flow.spec.at * 1000, flow.spec.bytes);
    }
  }

  private datagramSocket(n: SimNode): MeshSocket {
    if (n.datagramSocket) return n.datagramSocket;
    const s = n.node.bind(DATAGRAM_PORT, { reserved: true });
    s.on('message', (_from, _port, bytes) => {
      if (bytes.length < 8) return;
      const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
      const flow = this.flows[view.getUint32(0)];
      const seq = view.getUint32(4);
      if (!flow || flow.to !== n || seq >= flow.sentAt.length || flow.received[seq]) return;
      flow.received[seq] = 1;
      flow.delivered++;
      flow.latencies.push(this.clock.now() - flow.sentAt[seq]!);
    });
    n.datagramSocket = s;
    return s;
  }

  private scheduleDatagrams(flow: Flow, spec: Extract<TrafficSpec, { kind: 'datagram' }>, endMs: number): void {
    const every = spec.every * 1000;
    const stop = Math.min(endMs, spec.stop !== undefined ? spec.stop * 1000 : endMs);
    const phase = mulberry32(hashName(this.scenario.seed, `flow/${flow.index}`))() * every;
    const count = Math.max(0, Math.ceil((stop - spec.start * 1000 - phase) / every));
    flow.received = new Uint8Array(count);
    this.datagramSocket(flow.to);
    const socket = this.datagramSocket(flow.from);
    const payload = new Uint8Array(spec.bytes);
    const view = new DataView(payload.buffer);
    view.setUint32(0, flow.index);
    let seq = 0;
    const next = (): void => {
      if (seq >= count) return;
      view.setUint32(4, seq);
      flow.sentAt.push(this.clock.now());
      const r = socket.send(flow.to.node.sid, DATAGRAM_PORT, payload);
      if (!r.ok) flow.refused[r.reason] = (flow.refused[r.reason] ?? 0) + 1;
      seq++;
      this.clock.setTimer(spec.start * 1000 + phase + seq * every, next);
    };
    this.clock.setTimer(spec.start * 1000 + phase, next);
  }

  private mspListener(n: SimNode): void {
    const sockets = n.msp.sockets;
    if (n.mspListening) return;
    n.mspListening = true;
    const states = new Map<number, { flow: Flow | undefined; offset: number; intact: boolean; header: boolean; shut?: boolean }>();
    const listener = sockets.socket();
    sockets.setLocal(listener, { port: MSP_PORT });
    sockets.setHandler(listener, (sock: MspSocket, state: number, payload: Uint8Array | undefined) => {
      let st = states.get(sock.id);
      if (st === undefined) {
        st = { flow: undefined, offset: 0, intact: true, header: false };
        states.set(sock.id, st);
      }
      if (state & MspState.CLOSED) {
        states.delete(sock.id);
        return 0;
      }
      if (payload !== undefined && state & MspState.RECEIVED_DATA) {
        if (!st.header) {
          st.header = true;
          if (payload.length === 4) st.flow = this.flows[new DataView(payload.buffer, payload.byteOffset, 4).getUint32(0)];
          if (st.flow === undefined || st.flow.to !== n) st.intact = false;
        } else if (st.flow) {
          for (let i = 0; i < payload.length; i++) if (payload[i] !== patternByte(st.flow.index, st.offset + i)) st.intact = false;
          st.offset += payload.length;
        }
      }
      const flow = st.flow;
      // The sender is done: end our direction too, as an app that reads to the end does, so the
      // connection closes (left half-open, it would send keep-alives for the rest of the run).
      if (state & MspState.SHUTDOWN_REMOTE && !(state & MspState.SHUTDOWN_LOCAL) && !st.shut) {
        st.shut = true;
        try {
          sockets.shutdown(sock);
        } catch {
          // not connected any more: nothing to end
        }
      }
      if (state & MspState.SHUTDOWN_REMOTE && flow && flow.doneAt === undefined) {
        if (st.intact && st.offset === (flow.spec as { bytes: number }).bytes) {
          flow.doneAt = this.clock.now();
          flow.delivered = 1;
        } else {
          flow.error = st.intact ? `ended after ${st.offset} of ${(flow.spec as { bytes: number }).bytes} bytes` : 'bytes differ from what was sent';
        }
      }
      return payload?.length ?? 0;
    });
    sockets.listen(listener);
  }

  private scheduleTransfer(flow: Flow, atMs: number, bytes: number): void {
    this.mspListener(flow.to);
    this.clock.setTimer(atMs, () => {
      const sockets: MspSockets = flow.from.msp.sockets;
      const sock = sockets.socket();
      let offset = -1; // the header first
      let shut = false;
      flow.startedAt = this.clock.now();
      sockets.setHandler(sock, (s: MspSocket, state: number) => {
        if (state & MspState.ERROR && flow.doneAt === undefined) flow.error ??= `the stream failed (${sockets.connectionOf(s)?.error ?? 'error'})`;
        if (!(state & MspState.DATA_OUT) || shut) return 0;
        for (;;) {
          if (offset >= bytes) {
            sockets.shutdown(s);
            shut = true;
            return 0;
          }
          const chunk = offset < 0 ? Uint8Array.of(flow.index >>> 24, flow.index >>> 16, flow.index >>> 8, flow.index) : pattern(flow.index, offset, Math.min(bytes - offset, sockets.maxMessageSize(s)));
          const r = sockets.send(s, chunk);
          if (!r.ok) return 0;
          offset = offset < 0 ? 0 : offset + chunk.length;
        }
      });
      sockets.connect(sock, { sid: flow.to.node.sid, port: MSP_PORT });
    });
  }

  private strokkurOf(n: SimNode): Strokkur<Uint8Array> {
    if (n.strokkur) return n.strokkur;
    const host = n.gateway.host!;
    const transport = new MeshStrokkurTransport(n.node, n.node.bind(STROKKUR_PORT, { reserved: true }), {
      ready: (dst) => host.ready(dst, 'bulk'),
      onReady: (h) => void host.on('ready', h),
    });
    const s = new Strokkur(transport, { random: mulberry32(hashName(this.scenario.seed, `strokkur/${n.name}`)), now: () => this.clock.now() });
    s.on('message', (_from, bytes) => {
      if (bytes.length < 4) return;
      const flow = this.flows[new DataView(bytes.buffer, bytes.byteOffset, 4).getUint32(0)];
      if (!flow || flow.to !== n || flow.doneAt !== undefined) return;
      const body = bytes.subarray(4);
      const spec = flow.spec as { bytes: number };
      let intact = body.length === spec.bytes;
      for (let i = 0; intact && i < body.length; i++) if (body[i] !== patternByte(flow.index, i)) intact = false;
      if (intact) {
        flow.doneAt = this.clock.now();
        flow.delivered = 1;
      } else {
        flow.error = 'the message differs from what was sent';
      }
    });
    s.on('error', (e) => this.log(`strokkur at ${n.name}: ${e.message}`));
    n.strokkur = s;
    return s;
  }

  private scheduleMessage(flow: Flow, atMs: number, bytes: number): void {
    this.strokkurOf(flow.to);
    const sender = this.strokkurOf(flow.from);
    this.clock.setTimer(atMs, () => {
      flow.startedAt = this.clock.now();
      const message = new Uint8Array(4 + bytes);
      new DataView(message.buffer).setUint32(0, flow.index);
      message.set(pattern(flow.index, 0, bytes), 4);
      sender.send(flow.to.node.sid, message).catch((err: Error) => {
        if (flow.doneAt === undefined) flow.error ??= err.message;
      });
    });
  }

  /**
   * The medium's record of every transmission a node made on one of its interfaces (start and
   * airtime, ms), for checks that must not trust the pacer (the soak's window count).
   */
  transmissions(node: string, medium: string): { readonly starts: readonly number[]; readonly airtimes: readonly number[] } | undefined {
    const link = this.byName.get(node)?.links.get(medium);
    return link ? this.tx.get(link) : undefined;
  }

  /**
   * Forgets the transmissions that ended before `ms`, for a long run that checks its windows as
   * it goes (the soak): otherwise the record grows by every frame. `report` then sees only what
   * is left.
   */
  forgetTransmissionsBefore(ms: number): void {
    for (const r of this.tx.values()) {
      let keep = 0;
      while (keep < r.starts.length && r.starts[keep]! + r.airtimes[keep]! < ms) keep++;
      if (keep > 0) {
        r.starts.splice(0, keep);
        r.airtimes.splice(0, keep);
      }
    }
  }

  /** Gathers the figures at the end of a run. */
  report(hours: number, wallMs: number): SimReport {
    const sc = this.scenario;
    const nodes: NodeFigures[] = [];
    const violations: SimReport['dutyCycleViolations'] = [];
    for (const n of this.nodes) {
      const interfaces: InterfaceFigures[] = [];
      for (const [m, link] of n.links) {
        const rec = this.tx.get(link)!;
        const entry = n.gateway.registry.list().find((e) => e.name === m);
        const duty = entry?.rules.dutyCycle;
        const windowMs = duty?.windowMs ?? HOUR_MS;
        const worst = worstWindow(rec.starts, rec.airtimes, windowMs);
        const budgetMs = duty ? duty.fraction * duty.windowMs : undefined;
        const drops: Record<string, number> = { ...link.counters.drops };
        for (const [k, v] of Object.entries(entry?.pacer.counters.drops ?? {})) if (v > 0) drops[`pacer-${k}`] = v;
        interfaces.push({
          medium: m,
          frames: { sent: link.counters.framesOut, received: link.counters.framesIn },
          drops,
          airtimeMs: rec.airtimes.reduce((a, b) => a + b, 0),
          worstWindowAirtimeMs: worst,
          budgetMs,
          budget: entry?.limits.budgets[0]?.name,
        });
        // A microsecond of rounding is not a violation.
        if (budgetMs !== undefined && worst > budgetMs + 0.001) violations.push({ node: n.name, medium: m, worstWindowAirtimeMs: worst, budgetMs });
      }
      const mine = this.flows.filter((f) => f.from === n);
      const dgrams = mine.filter((f) => f.spec.kind === 'datagram');
      const transfers = mine.filter((f) => f.spec.kind !== 'datagram');
      const refused: Record<string, number> = {};
      for (const f of dgrams) for (const [k, v] of Object.entries(f.refused)) refused[k] = (refused[k] ?? 0) + v;
      const sent = dgrams.reduce((a, f) => a + f.sentAt.length, 0);
      const delivered = dgrams.reduce((a, f) => a + f.delivered, 0);
      nodes.push({
        name: n.name,
        sid: Buffer.from(n.node.sid).toString('hex'),
        interfaces,
        neighbours: n.node.control.neighbours().filter((x) => x.symmetric).length,
        routes: n.node.routes().length,
        routeChanges: n.routeChanges,
        datagrams: { sent, delivered, lost: sent - delivered, refused, latencyMs: percentiles(dgrams.flatMap((f) => f.latencies)) },
        transfers: {
          started: transfers.filter((f) => f.startedAt !== undefined).length,
          completed: transfers.filter((f) => f.doneAt !== undefined).length,
          failed: transfers.filter((f) => f.startedAt !== undefined && f.doneAt === undefined).length,
        },
      });
    }
    const flows: FlowFigures[] = this.flows.map((f) => {
      const isDatagram = f.spec.kind === 'datagram';
      const latencies = isDatagram ? f.latencies : f.doneAt !== undefined && f.startedAt !== undefined ? [f.doneAt - f.startedAt] : [];
      const unfinished = !isDatagram && f.doneAt === undefined ? (f.error ?? (f.startedAt === undefined ? 'not started before the end' : 'not complete at the end')) : undefined;
      return {
        kind: f.spec.kind,
        from: f.from.name,
        to: f.to.name,
        sent: isDatagram ? f.sentAt.length : 1,
        delivered: f.delivered,
        latencyMs: percentiles(latencies),
        bytes: f.spec.bytes,
        ...(unfinished !== undefined ? { error: unfinished } : {}),
      };
    });
    const media: MediumFigures[] = [...this.media].map(([name, { spec, medium }]) => ({ name, kind: spec.kind, reach: spec.reach, ...medium.counters }));
    const virtualMs = hours * HOUR_MS;
    return {
      scenario: sc.name,
      seed: sc.seed,
      hours,
      wallMs,
      speed: wallMs > 0 ? virtualMs / wallMs : Infinity,
      nodes,
      flows,
      media,
      dutyCycleViolations: violations,
      log: [...this.logLines].map(([line, count]) => ({ line, count })),
    };
  }

  async stop(): Promise<void> {
    for (const n of this.nodes) {
      n.strokkur?.close();
      await n.gateway.stop();
    }
  }
}

/** Runs a scenario to its end and returns the figures. */
export async function runScenario(scenario: Scenario, options: SimRunOptions = {}): Promise<SimReport> {
  const hours = options.hours ?? scenario.hours;
  const endMs = hours * HOUR_MS;
  const started = performance.now();
  const world = new SimWorld(scenario);
  await world.start(endMs);
  const stepMs = 60_000;
  let hour = 0;
  for (let t = 0; t < endMs; ) {
    t = Math.min(endMs, t + stepMs);
    world.clock.advanceTo(t);
    // Promise callbacks (Strokkur's reports) run between the steps.
    await new Promise<void>((r) => setImmediate(r));
    while (options.onHour && t >= (hour + 1) * HOUR_MS) options.onHour(++hour, performance.now() - started);
  }
  const wallMs = performance.now() - started;
  const report = world.report(hours, wallMs);
  await world.stop();
  return report;
}
