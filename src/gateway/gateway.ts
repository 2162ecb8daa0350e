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

export type GatewayEvent =
  | { event: 'state'; interface: string; state: LinkState; reason?: string }
  | { event: 'frame'; interface: string; bytes: number; rssiDbm?: number; snrDb?: number; from?: string }
  | { event: 'status'; interfaces: InterfaceStatus[] };

export interface GatewayOptions {
  interfaces: Array<{ link: Link; config?: InterfaceConfig }>;
  capture?: PcapngFile;
  onEvent?: (e: GatewayEvent) => void;
  onFrame?: (iface: string, frame: ReceivedFrame) => void;
  /** Interval of 'status' events, ms; 0 for none. */
  statusIntervalMs?: number;
}

export class Gateway {
  readonly registry = new InterfaceRegistry();
  private timer: NodeJS.Timeout | undefined;
  private statusTimer: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(private readonly options: GatewayOptions) {
    for (const { link, config } of options.interfaces) {
      const wrapped = options.capture ? new CaptureLink(link, options.capture) : link;
      this.registry.add(wrapped, config);
      this.watch(wrapped);
    }
  }

  async start(): Promise<void> {
    await Promise.all(this.registry.list().map((e) => e.link.open()));
    const every = this.options.statusIntervalMs ?? 0;
    if (every > 0) {
      this.statusTimer = setInterval(() => this.emit({ event: 'status', interfaces: this.registry.status(Date.now()) }), every);
    }
    this.schedule();
  }

  async stop(): Promise<void> {
    this.stopped = true;
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
