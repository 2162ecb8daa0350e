/**
 * The gateway: owns the interfaces (through the registry), the one timer of the event loop, and
 * the optional capture file. It opens every link (a device missing at start is not fatal: the
 * link keeps retrying), forwards link events to `onEvent`, and releases paced frames when their
 * time comes.
 *
 * The layers above (mesh, MSP, Strokkur, Messi) come in later issues; until then received frames
 * are reported as events.
 */
import { CaptureLink } from '../link/capture.js';
import type { Link, LinkState, ReceivedFrame } from '../link/link.js';
import type { PcapngFile } from '../link/pcap.js';
import type { PriorityClass, EnqueueResult } from '../link/pacer.js';
import { InterfaceRegistry, type InterfaceConfig, type InterfaceStatus } from '../link/registry.js';
import { RealClock } from '../link/clock.js';
import type { MeshNode } from '../mesh/node.js';
import { MeshRunner } from './mesh-runner.js';

export type GatewayEvent =
  | { event: 'state'; interface: string; state: LinkState; reason?: string }
  | { event: 'frame'; interface: string; bytes: number; rssiDbm?: number; snrDb?: number; from?: string }
  /** A frame the interface's pacer refused (dwell limit, MTU, a full queue), with why. */
  | { event: 'refused'; interface: string; reason: string; message: string }
  | { event: 'status'; interfaces: InterfaceStatus[]; mesh?: MeshStatus };

export interface MeshStatus {
  sid: string;
  neighbours: Array<{ id: string; iface: string; symmetric: boolean; inRatio: number; outRatio: number }>;
  routes: Array<{ destination: string; nextHop: string; iface: string; hops: number; metric: number; pathMtu: number }>;
  counters: MeshNode['counters'];
}

export interface GatewayOptions {
  /** authOnly: datagrams on this interface are authenticated, not encrypted (amateur bands). */
  interfaces: Array<{ link: Link; config?: InterfaceConfig; authOnly?: boolean }>;
  capture?: PcapngFile;
  onEvent?: (e: GatewayEvent) => void;
  onFrame?: (iface: string, frame: ReceivedFrame) => void;
  /** Interval of 'status' events, ms; 0 for none. */
  statusIntervalMs?: number;
  /** The mesh node that runs over the interfaces (HELLOs, routing, datagram ports). */
  mesh?: MeshNode;
}

export class Gateway {
  readonly registry = new InterfaceRegistry();
  private timer: NodeJS.Timeout | undefined;
  private statusTimer: NodeJS.Timeout | undefined;
  private stopped = false;
  private runner: MeshRunner | undefined;

  constructor(private readonly options: GatewayOptions) {
    const links = new Map<string, Link>();
    for (const { link, config, authOnly } of options.interfaces) {
      const wrapped = options.capture ? new CaptureLink(link, options.capture) : link;
      const entry = this.registry.add(wrapped, config);
      this.watch(wrapped);
      links.set(wrapped.name, wrapped);
      options.mesh?.addInterface(
        {
          name: wrapped.name,
          mtu: wrapped.mtu,
          airtimeMs: (bytes) => wrapped.airtime.airtimeMs(Math.min(bytes, wrapped.airtime.maxBytes)),
          ...(entry.rules.dutyCycle ? { dutyFraction: entry.rules.dutyCycle.fraction } : {}),
          ...(authOnly ? { authOnly } : {}),
        },
        Date.now(),
      );
    }
    if (options.mesh) {
      this.runner = new MeshRunner({
        node: options.mesh,
        clock: new RealClock(),
        links,
        // Mesh frames leave through each interface's pacer, at their priority.
        transmit: (out) => {
          const r = this.registry.send(out.iface, Date.now(), {
            flow: out.priority === 'control' ? 'mesh-control' : 'mesh',
            priority: out.priority,
            data: out.bytes,
            ...(out.to ? { options: { to: out.to } } : {}),
          });
          if (!r.ok) this.emit({ event: 'refused', interface: out.iface, reason: r.reason, message: r.message });
          this.schedule();
        },
      });
    }
  }

  async start(): Promise<void> {
    await Promise.all(this.registry.list().map((e) => e.link.open()));
    const every = this.options.statusIntervalMs ?? 0;
    if (every > 0) {
      this.statusTimer = setInterval(() => {
        const mesh = this.meshStatus();
        this.emit({ event: 'status', interfaces: this.registry.status(Date.now()), ...(mesh ? { mesh } : {}) });
      }, every);
    }
    this.runner?.start();
    this.schedule();
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
    this.stopped = true;
    this.runner?.stop();
    if (this.timer) clearTimeout(this.timer);
    if (this.statusTimer) clearInterval(this.statusTimer);
    await Promise.all(this.registry.list().map((e) => e.link.close()));
    await this.options.capture?.close();
  }

  /** Sends a frame on one interface through its pacer. */
  send(iface: string, data: Uint8Array, priority: PriorityClass = 'bulk', flow = 'local'): EnqueueResult {
    const result = this.registry.send(iface, Date.now(), { flow, priority, data });
    this.schedule();
    return result;
  }

  status(): InterfaceStatus[] {
    return this.registry.status(Date.now());
  }

  private watch(link: Link): void {
    link.on('state', (state, reason) => {
      this.emit({ event: 'state', interface: link.name, state, ...(reason ? { reason } : {}) });
      if (state === 'up') this.schedule();
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
    });
  }

  private emit(e: GatewayEvent): void {
    this.options.onEvent?.(e);
  }

  /** The loop's one timer: release what is due, then sleep until the next deadline. */
  private schedule(): void {
    if (this.stopped) return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    const now = Date.now();
    this.registry.poll(now);
    const next = this.registry.nextDeadline(now);
    if (next === undefined) return;
    this.timer = setTimeout(() => this.schedule(), Math.max(1, Math.ceil(next - now)));
  }
}
