/**
 * The gateway: owns the interfaces (through the registry), the loop with its one clock and one
 * timer, the mesh node with its host API, the services above it, and the optional capture file.
 *
 * It opens every link (a device missing at start is not fatal: the link keeps retrying),
 * reports link events to `onEvent`, feeds received frames to the mesh node, and runs one loop
 * that polls, in order: the services (MSP, Strokkur, the API — whatever the daemon composes), the
 * mesh node, the interface pacers, and the periodic status. Mesh frames leave through each
 * interface's pacer at their priority, one pacer flow per socket.
 */
import { CaptureLink } from '../link/capture.js';
import { MonotonicClock, type SimClock } from '../link/clock.js';
import type { Link, LinkState, ReceivedFrame } from '../link/link.js';
import type { PcapngFile } from '../link/pcap.js';
import type { PriorityClass, EnqueueResult } from '../link/pacer.js';
import { InterfaceRegistry, type InterfaceConfig, type InterfaceStatus } from '../link/registry.js';
import type { MeshNode, OutFrame, SinkResult } from '../mesh/node.js';
import { MeshHost } from './host.js';
import { Loop, type Machine } from './loop.js';

export type GatewayEvent =
  | { event: 'state'; interface: string; state: LinkState; reason?: string }
  | { event: 'frame'; interface: string; bytes: number; rssiDbm?: number; snrDb?: number; from?: string }
  /** A frame the interface's pacer refused (dwell limit, MTU, a full queue), with why. */
  | { event: 'refused'; interface: string; reason: string; message: string }
  | { event: 'neighbour'; id: string; interface: string; state: 'up' | 'down' }
  | { event: 'status'; interfaces: InterfaceStatus[]; mesh?: MeshStatus };

export interface MeshStatus {
  sid: string;
  neighbours: Array<{ id: string; iface: string; symmetric: boolean; inRatio: number; outRatio: number }>;
  routes: Array<{ destination: string; nextHop: string; iface: string; hops: number; metric: number; pathMtu: number }>;
  counters: MeshNode['counters'];
}

/** Something the daemon runs inside the loop (MSP endpoints, Strokkur, the app API). */
export interface GatewayService extends Machine {
  start?(gateway: Gateway): void | Promise<void>;
  stop?(): void | Promise<void>;
}

export interface GatewayOptions {
  /** Protocol and pacing time: monotonic by default; a VirtualClock in simulations. */
  clock?: SimClock;
  /** authOnly: datagrams on this interface are authenticated, not encrypted (amateur bands). */
  interfaces: Array<{ link: Link; config?: InterfaceConfig; authOnly?: boolean }>;
  capture?: PcapngFile;
  onEvent?: (e: GatewayEvent) => void;
  onFrame?: (iface: string, frame: ReceivedFrame) => void;
  /** Interval of 'status' events, ms; 0 for none. */
  statusIntervalMs?: number;
  /** The mesh node that runs over the interfaces (HELLOs, routing, datagram ports). */
  mesh?: MeshNode;
  /** Machines polled by the loop before the mesh node, started and stopped with the gateway. */
  services?: GatewayService[];
  log?: (line: string) => void;
}

export class Gateway {
  readonly clock: SimClock;
  readonly loop: Loop;
  readonly registry: InterfaceRegistry;
  /** The host API over the mesh node (undefined without one). */
  readonly host: MeshHost | undefined;
  private readonly services: GatewayService[];
  private readonly log: (line: string) => void;
  private nextStatusAt = Infinity;
  private stopped = false;
  private eventHandlerThrew = false;

  constructor(private readonly options: GatewayOptions) {
    this.clock = options.clock ?? new MonotonicClock();
    const log = (this.log = options.log ?? (() => undefined));
    this.loop = new Loop(this.clock, { log });
    this.registry = new InterfaceRegistry({ onWake: () => this.loop.wake() });
    this.services = options.services ?? [];
    const node = options.mesh;
    for (const { link, config, authOnly } of options.interfaces) {
      const wrapped = options.capture ? new CaptureLink(link, options.capture) : link;
      const entry = this.registry.add(wrapped, config);
      this.watch(wrapped);
      node?.addInterface(
        {
          name: wrapped.name,
          mtu: wrapped.mtu,
          airtimeMs: (bytes) => wrapped.airtime.airtimeMs(Math.min(bytes, wrapped.airtime.maxBytes)),
          ...(entry.rules.dutyCycle ? { dutyFraction: entry.rules.dutyCycle.fraction } : {}),
          ...(authOnly ? { authOnly } : {}),
          ...(wrapped.fullMesh ? { fullMesh: true } : {}),
        },
        this.clock.now(),
      );
    }
    for (const s of this.services) this.loop.add(s);
    if (node) {
      this.host = new MeshHost(node, this.registry, this.clock, () => this.loop.wake(), log);
      node.onWake = () => this.loop.wake();
      node.setSink((out) => this.transmit(out));
      this.loop.add(this.meshMachine(node, this.host));
    } else {
      this.host = undefined;
    }
    this.loop.add({ name: 'interfaces', poll: (now) => this.pollInterfaces(now), nextDeadline: (now) => this.registry.nextDeadline(now) });
    this.loop.add({ name: 'status', poll: (now) => this.pollStatus(now), nextDeadline: () => this.nextStatusAt });
  }

  async start(): Promise<void> {
    await Promise.all(this.registry.list().map((e) => e.link.open()));
    const every = this.options.statusIntervalMs ?? 0;
    if (every > 0) this.nextStatusAt = this.clock.now() + every;
    for (const s of this.services) await s.start?.(this);
    this.loop.start();
  }

  meshStatus(): MeshStatus | undefined {
    const node = this.options.mesh;
    if (!node) return undefined;
    return {
      sid: Buffer.from(node.sid).toString('hex'),
      neighbours: node.control.neighbours().map((n) => ({ id: n.id, iface: n.iface, symmetric: n.symmetric, inRatio: n.inRatio, outRatio: n.outRatio })),
      routes: node.routes().map((r) => ({ destination: r.destination, nextHop: r.nextHop, iface: r.iface, hops: r.hops, metric: r.metric, pathMtu: r.pathMtu })),
      counters: node.counters,
    };
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.loop.stop();
    for (const s of [...this.services].reverse()) await s.stop?.();
    await Promise.all(this.registry.list().map((e) => e.link.close()));
    await this.options.capture?.close();
  }

  /** Sends a frame on one interface through its pacer. */
  send(iface: string, data: Uint8Array, priority: PriorityClass = 'bulk', flow = 'local'): EnqueueResult {
    const result = this.registry.send(iface, this.clock.now(), { flow, priority, data });
    this.loop.wake();
    return result;
  }

  status(): InterfaceStatus[] {
    return this.registry.status(this.clock.now());
  }

  // -------------------------------------------------------------------------------------------

  /** The node's sink: a frame goes into its interface's pacer at once, and the loop runs. */
  private transmit(out: OutFrame): SinkResult {
    if (!this.registry.get(out.iface)) return { ok: false, reason: 'closed', message: `no interface named '${out.iface}'` };
    const r = this.registry.send(out.iface, this.clock.now(), {
      flow: out.flow,
      priority: out.priority,
      data: out.bytes,
      ...(out.to ? { options: { to: out.to } } : {}),
      ...(out.kind !== undefined ? { kind: out.kind, generation: out.generation ?? 0 } : {}),
    });
    if (!r.ok) this.emit({ event: 'refused', interface: out.iface, reason: r.reason, message: r.message });
    this.loop.wake();
    return r;
  }

  private meshMachine(node: MeshNode, host: MeshHost): Machine {
    return {
      name: 'mesh',
      poll: (now) => {
        if (now >= node.nextDeadline()) node.poll(now);
        node.dispatch();
        const events = node.takeEvents();
        for (const e of events) {
          if (e.event !== 'route-changed') this.emit({ event: 'neighbour', id: e.id, interface: e.iface, state: e.event === 'neighbour-up' ? 'up' : 'down' });
        }
        host.note(events, []);
        host.dispatch();
      },
      nextDeadline: () => node.nextDeadline(),
    };
  }

  /** Hands due frames to the links; the number handed over (progress, for the loop's spin check). */
  private pollInterfaces(now: number): number {
    const sent = this.registry.poll(now, this.clock.granularityMs ?? 0);
    const ready = this.registry.takeReady(now);
    if (ready.length > 0 && this.host) {
      this.host.note([], ready);
      this.host.dispatch();
    }
    return sent;
  }

  private pollStatus(now: number): void {
    if (now < this.nextStatusAt) return;
    const every = this.options.statusIntervalMs ?? 0;
    this.nextStatusAt = every > 0 ? Math.max(this.nextStatusAt + every, now + 1) : Infinity;
    const mesh = this.meshStatus();
    this.emit({ event: 'status', interfaces: this.registry.status(now), ...(mesh ? { mesh } : {}) });
  }

  private watch(link: Link): void {
    link.on('state', (state, reason) => {
      this.emit({ event: 'state', interface: link.name, state, ...(reason ? { reason } : {}) });
      if (state === 'up') this.loop.wake();
    });
    link.on('frame', (frame) => {
      this.emit({
        event: 'frame',
        interface: link.name,
        bytes: frame.data.length,
        ...(frame.rssiDbm !== undefined ? { rssiDbm: frame.rssiDbm } : {}),
        ...(frame.snrDb !== undefined ? { snrDb: frame.snrDb } : {}),
        ...(frame.from ? { from: `${frame.from.address}:${frame.from.port}` } : {}),
      });
      this.options.onFrame?.(link.name, frame);
      const signal = frame.rssiDbm !== undefined || frame.snrDb !== undefined ? { ...(frame.rssiDbm !== undefined ? { rssiDbm: frame.rssiDbm } : {}), ...(frame.snrDb !== undefined ? { snrDb: frame.snrDb } : {}) } : undefined;
      this.options.mesh?.receive(link.name, frame.data, this.clock.now(), frame.from, signal);
      this.loop.wake();
    });
  }

  private emit(e: GatewayEvent): void {
    try {
      this.options.onEvent?.(e);
    } catch (err) {
      // An event consumer's failure is its own; the gateway carries on.
      if (!this.eventHandlerThrew) this.log(`gateway: the event handler threw (${(err as Error)?.message ?? String(err)}); caught, logged once`);
      this.eventHandlerThrew = true;
    }
  }
}
