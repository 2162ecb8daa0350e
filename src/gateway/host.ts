/**
 * The host API: the one thing the layers above the mesh (MSP, Strokkur, the app API) use.
 *
 * - `bind(port)` → a MeshSocket whose `send` returns a result (ok, or a typed refusal: no route,
 *   too large with the size that fits, queue full) and never throws for a condition of the
 *   network; received datagrams are queued and handed to its 'message' listeners by the loop.
 *   Each socket is its own pacer flow, so one bulk sender cannot starve another.
 * - `route(sid)`: next hop, interface, hops, the largest payload, expected airtime per byte.
 * - `ready(sid, class)`: whether the first hop's pacer can take another frame of that class now
 *   (cheap: ask per packet). When it says no, a 'ready' event follows once it can.
 * - Events ('ready', 'neighbour-up', 'neighbour-down', 'route-changed') are queued and handed out
 *   by the loop, never emitted from inside a receive; a listener that throws is caught and counted.
 */
import { EventEmitter } from 'node:events';
import type { SimClock } from '../link/clock.js';
import type { PriorityClass } from '../link/pacer.js';
import type { InterfaceRegistry } from '../link/registry.js';
import type { MeshNode, MeshSocket, NodeEvent, SocketOptions } from '../mesh/node.js';
import type { Route } from '../mesh/routing.js';

export interface RouteInfo {
  destination: string;
  nextHop: string;
  iface: string;
  hops: number;
  /** Expected airtime per byte delivered, ms (the routing metric). */
  msPerByte: number;
  /** The largest datagram payload that reaches the destination now, bytes. */
  maxPayload: number;
  /** The smallest link MTU on the path, bytes. */
  pathMtu: number;
}

export interface HostEvents {
  /** The first hop `iface` can take frames of `priority` again (after `ready` said no). */
  ready: [iface: string, priority: PriorityClass];
  'neighbour-up': [id: string, iface: string];
  'neighbour-down': [id: string, iface: string];
  'route-changed': [destination: string, route: Route | undefined];
}

type Queued = { [E in keyof HostEvents]: { event: E; args: HostEvents[E] } }[keyof HostEvents];

/** Events waiting for the loop; beyond this the oldest are dropped (a listener-less host). */
const MAX_QUEUED_EVENTS = 4096;

export class MeshHost extends EventEmitter<HostEvents> {
  /** Exceptions thrown by host event listeners (caught). */
  listenerErrors = 0;
  droppedEvents = 0;
  private queue: Queued[] = [];

  constructor(
    readonly node: MeshNode,
    private readonly registry: InterfaceRegistry,
    private readonly clock: SimClock,
    private readonly wake: () => void,
    private readonly log: (line: string) => void = () => undefined,
  ) {
    super();
  }

  get sid(): Uint8Array {
    return this.node.sid;
  }

  bind(port = 0, options: SocketOptions = {}): MeshSocket {
    return this.node.bind(port, options);
  }

  route(sid: Uint8Array): RouteInfo | undefined {
    const r = this.node.route(sid);
    if (!r) return undefined;
    return { destination: r.destination, nextHop: r.nextHop, iface: r.iface, hops: r.hops, msPerByte: r.metric, maxPayload: this.node.pathMtu(sid) ?? 0, pathMtu: r.pathMtu };
  }

  /** Whether the first hop to `sid` can take a frame of `priority` now; false without a route. */
  ready(sid: Uint8Array, priority: PriorityClass = 'bulk'): boolean {
    const r = this.node.route(sid);
    if (!r) return false;
    if (this.registry.ready(r.iface, this.clock.now(), priority)) return true;
    // A new wait changes the interfaces' next deadline: let the loop re-arm (once, not per ask).
    if (this.registry.wantReady(r.iface, priority)) this.wake();
    return false;
  }

  /** Queues node events and ready interfaces for `dispatch` (the loop calls both). */
  note(events: readonly NodeEvent[], ready: ReadonlyArray<{ iface: string; priority: PriorityClass }>): void {
    for (const e of events) {
      if (e.event === 'route-changed') this.push({ event: 'route-changed', args: [e.destination, e.route] });
      else this.push({ event: e.event, args: [e.id, e.iface] });
    }
    for (const r of ready) this.push({ event: 'ready', args: [r.iface, r.priority] });
  }

  get hasEvents(): boolean {
    return this.queue.length > 0;
  }

  /** Hands queued events to listeners; one that throws is caught, counted and logged once. */
  dispatch(): void {
    const events = this.queue;
    this.queue = [];
    for (const q of events) {
      try {
        (this.emit as (e: string, ...a: unknown[]) => boolean)(q.event, ...q.args);
      } catch (err) {
        if (this.listenerErrors++ === 0) this.log(`host: a '${q.event}' listener threw (${(err as Error)?.message ?? String(err)}); caught and counted`);
      }
    }
  }

  private push(q: Queued): void {
    if (this.listenerCount(q.event) === 0) return;
    this.queue.push(q);
    if (this.queue.length > MAX_QUEUED_EVENTS) {
      this.queue.shift();
      this.droppedEvents++;
    }
  }
}
