/**
 * A mesh node, sans-IO: identity, sealing, the control plane, routes, forwarding between
 * interfaces, and datagram ports. Bytes from links and `now` go in (`receive`, `poll`); frames for
 * links come out — to a sink that answers at once (the gateway's interface pacers), or, without
 * one, queued for `takeOutput`. The gateway owns the links, the clock and the one timer.
 *
 * Data frames (SPEC.md beside this file) and RFC 5444 control packets share each link; the
 * first byte tells them apart. A unicast frame to a neighbour carries no via field; one that
 * travels further names its next hop in `via`, which each forwarder rewrites, decrementing the
 * TTL. Forwarders cannot open frames (sealing is end to end); they route by destination, and
 * keep the priority class the sender put in the header.
 *
 * Application code never runs inside `receive`: a datagram for a local port waits in that
 * socket's inbox (bounded) until the loop calls `dispatch()`, which calls the listeners one by
 * one and catches what they throw (counted, logged once per port), so a listener cannot unwind
 * the node, the link or the loop.
 */
import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import type { Endpoint } from '../link/link.js';
import type { PriorityClass } from '../link/pacer.js';
import { ControlPlane, nodeIdOf, type ControlInterface, type ControlOptions, type FrameSignal } from './control.js';
import {
  AddressForm,
  SHORT_ADDRESS,
  decodeHeader,
  forwardedFrame,
  frameOverhead,
  isMeshFrame,
  shortAddress,
  withVia,
  type DatagramPriority,
} from './frame.js';
import { sidHex as hex, sidShort } from './identity.js';
import { computeRoutes, type Route } from './routing.js';
import { FrameSealer, type BootToken, type PeerDirectory } from './seal.js';

export const DEFAULT_TTL = 16;
/** Ports below this are the node's own services; `bind` refuses them unless asked. */
export const RESERVED_PORTS = 16;
const MAX_PORT = 255;
/** Datagrams waiting in one socket's inbox for `dispatch`; beyond it the newest is dropped. */
export const INBOX_CAP = 256;

export interface NodeInterface extends ControlInterface {
  /** Amateur bands: datagrams on this interface are authenticated, not encrypted. */
  authOnly?: boolean;
}

export interface NodeOptions extends Omit<ControlOptions, 'boot'> {
  /** This boot's token: the epoch (epoch.ts) and 8 random bytes; default epoch 1, fresh nonce. */
  boot?: BootToken;
  /** Shorthand for `boot` with a fresh nonce (tests). */
  epoch?: number;
  nextEpoch?: () => number;
  /** Where the node's rare log lines go (a listener that threw); default nowhere. */
  log?: (line: string) => void;
}

export interface OutFrame {
  iface: string;
  bytes: Uint8Array;
  /** Link-layer unicast destination, when the link is addressed (UDP) and it is known. */
  to?: Endpoint;
  priority: PriorityClass;
  /** The pacer flow: one per local socket, one per forwarded source, one for control. */
  flow: string;
  /** Control frames: a newer generation of the same kind replaces a queued one. */
  kind?: string;
  generation?: number;
}

/** Why a datagram was not taken. Never an exception: these are conditions of the network. */
export type SendRefusal = 'no-route' | 'no-key' | 'too-large' | 'queue-full' | 'closed' | 'refused';

export type SendResult = { ok: true } | { ok: false; reason: SendRefusal; message: string; maxBytes?: number };

/** What a sink answers for one frame (the pacer's EnqueueResult has this shape). */
export type SinkResult = { ok: true } | { ok: false; reason: string; message: string; maxBytes?: number };

/** What a sender is told for each reason a sink (the pacer, or the gateway) gives. */
const SINK_REFUSALS: Readonly<Record<string, SendRefusal>> = {
  'too-large': 'too-large',
  dwell: 'too-large',
  'queue-full': 'queue-full',
  'flow-full': 'queue-full',
  evicted: 'queue-full',
  closed: 'closed',
};

/** Takes a frame for a link at once (the gateway: the interface's pacer). */
export type FrameSink = (frame: OutFrame) => SinkResult;

export class MeshSendError extends Error {
  override readonly name = 'MeshSendError';
  constructor(readonly result: Extract<SendResult, { ok: false }>) {
    super(result.message);
  }
}

export interface NodeCounters {
  delivered: number;
  forwarded: number;
  /** Datagrams taken by the interface (queued in its pacer). */
  sent: number;
  /** Datagrams not taken, by reason (SendRefusal, or the pacer's reason for forwarded ones). */
  refused: Record<string, number>;
  /** Exceptions thrown by socket listeners, caught by `dispatch`. */
  listenerErrors: number;
  /**
   * Frames dropped, by reason: 'empty', 'unknown-protocol' (neither a datagram frame, 0x5_, nor
   * an RFC 5444 packet, version 0 in the first nibble), 'control-malformed' (an RFC 5444 packet
   * the reader refused; its detail is in control.counters), and the datagram reasons.
   */
  dropped: Record<string, number>;
}

export interface SocketEvents {
  message: [fromSid: Uint8Array, fromPort: number, bytes: Uint8Array];
}

interface Inbound {
  from: Uint8Array;
  port: number;
  bytes: Uint8Array;
}

export interface SocketOptions {
  reserved?: boolean;
  priority?: DatagramPriority;
}

export class MeshSocket extends EventEmitter<SocketEvents> {
  /** Received datagrams waiting for `MeshNode.dispatch`. */
  readonly inbox: Inbound[] = [];
  private open = true;
  /** Whether a listener of this socket has thrown before (it is logged once). */
  threw = false;

  constructor(
    private readonly node: MeshNode,
    readonly port: number,
    readonly priority: DatagramPriority,
  ) {
    super();
  }

  get flow(): string {
    return `port:${this.port}`;
  }

  /** Seals a datagram and hands it to the first hop's pacer; the result says whether it was taken. */
  send(sid: Uint8Array, port: number, bytes: Uint8Array, options: { priority?: DatagramPriority } = {}): SendResult {
    if (!this.open) return { ok: false, reason: 'closed', message: `port ${this.port} is closed` };
    return this.node.sendDatagram(sid, this.port, port, bytes, options.priority ?? this.priority, this.flow);
  }

  /** A one-hop signed broadcast to every neighbour; ok when at least one interface took it. */
  broadcast(port: number, bytes: Uint8Array): SendResult {
    if (!this.open) return { ok: false, reason: 'closed', message: `port ${this.port} is closed` };
    return this.node.sendBroadcast(this.port, port, bytes, this.priority, this.flow);
  }

  get closed(): boolean {
    return !this.open;
  }

  close(): void {
    if (!this.open) return;
    this.open = false;
    this.inbox.length = 0;
    this.node.unbind(this.port, this);
    this.removeAllListeners();
  }
}

export type NodeEvent =
  | { event: 'neighbour-up'; id: string; iface: string }
  | { event: 'neighbour-down'; id: string; iface: string }
  | { event: 'route-changed'; destination: string; route: Route | undefined };

export class MeshNode {
  readonly control: ControlPlane;
  readonly sealer: FrameSealer;
  readonly boot: BootToken;
  readonly counters: NodeCounters = { delivered: 0, forwarded: 0, sent: 0, refused: {}, listenerErrors: 0, dropped: {} };
  /** Called whenever the node has something for the loop: output, a delivery, an event. */
  onWake: (() => void) | undefined;
  private readonly interfaces = new Map<string, NodeInterface>();
  private readonly sockets = new Map<number, MeshSocket>();
  private readonly log: (line: string) => void;
  private sink: FrameSink | undefined;
  private output: OutFrame[] = [];
  private routeTable = new Map<string, Route>();
  private routesVersion = -1;
  private shortIndex = new Map<string, Uint8Array[]>();
  private pendingDeliveries = 0;
  private events: NodeEvent[] = [];
  private lastNeighbours = new Map<string, { id: string; iface: string }>();
  private eventsVersion = -1;
  private reportedRoutes = new Map<string, Route>();

  constructor(options: NodeOptions) {
    this.boot = options.boot ?? { epoch: options.epoch ?? 1, nonce: Uint8Array.from(randomBytes(8)) };
    this.log = options.log ?? (() => undefined);
    this.sealer = new FrameSealer(options.identity, this.boot, options.nextEpoch ? { nextEpoch: options.nextEpoch } : {});
    const userForgotten = options.onNodeForgotten;
    this.control = new ControlPlane({
      ...options,
      boot: this.boot,
      onNodeForgotten: (id, sid) => {
        this.sealer.forget(sid);
        userForgotten?.(id, sid);
      },
    });
  }

  get sid(): Uint8Array {
    return this.sealer.identity.sid;
  }

  /** Frames go to `sink` at once from now on (the gateway's pacers) instead of `takeOutput`. */
  setSink(sink: FrameSink | undefined): void {
    this.sink = sink;
    if (sink) for (const out of this.takeOutput()) sink(out);
  }

  addInterface(cfg: NodeInterface, now: number): void {
    this.interfaces.set(cfg.name, cfg);
    this.control.addInterface(cfg, now);
    this.wake();
  }

  removeInterface(name: string): void {
    this.interfaces.delete(name);
    this.control.removeInterface(name);
  }

  /** Opens a datagram port; 0 picks a free one at or above RESERVED_PORTS. */
  bind(port = 0, options: SocketOptions = {}): MeshSocket {
    if (!Number.isInteger(port) || port < 0 || port > MAX_PORT) throw new RangeError(`port must be 0..${MAX_PORT}, got ${port}`);
    if (port === 0) {
      for (let p = RESERVED_PORTS; p <= MAX_PORT && port === 0; p++) if (!this.sockets.has(p)) port = p;
      if (port === 0) throw new Error('no free datagram port');
    } else if (port < RESERVED_PORTS && !options.reserved) {
      throw new RangeError(`ports below ${RESERVED_PORTS} are reserved for the node's own services`);
    }
    if (this.sockets.has(port)) throw new Error(`port ${port} is already bound`);
    const socket = new MeshSocket(this, port, options.priority ?? 'bulk');
    this.sockets.set(port, socket);
    return socket;
  }

  unbind(port: number, socket?: MeshSocket): void {
    const s = this.sockets.get(port);
    if (!s || (socket && s !== socket)) return;
    this.pendingDeliveries -= s.inbox.length;
    this.sockets.delete(port);
    s.close();
  }

  /** Bytes received on a link. Never throws and never calls application code. */
  receive(iface: string, bytes: Uint8Array, now: number, from?: Endpoint, signal?: FrameSignal): void {
    if (!this.interfaces.has(iface)) return;
    if (bytes.length === 0) return this.drop('empty');
    if (isMeshFrame(bytes)) this.handleFrame(iface, bytes);
    else if (bytes[0]! >> 4 === 0) {
      const malformed = this.control.counters.malformed;
      this.control.receive(iface, bytes, now, from, signal);
      if (this.control.counters.malformed !== malformed) this.drop('control-malformed');
    } else return this.drop('unknown-protocol');
    this.collectControl();
  }

  poll(now: number): void {
    this.control.poll(now);
    this.collectControl();
  }

  nextDeadline(): number {
    return this.control.nextDeadline();
  }

  /** Frames produced while no sink is set. */
  takeOutput(): OutFrame[] {
    const out = this.output;
    this.output = [];
    return out;
  }

  /** Whether `dispatch` has datagrams to hand to listeners. */
  get hasDeliveries(): boolean {
    return this.pendingDeliveries > 0;
  }

  /**
   * Hands every queued datagram to its socket's listeners. A listener that throws is caught,
   * counted and logged (once per port); the other datagrams and sockets carry on.
   */
  dispatch(): number {
    let n = 0;
    for (const socket of [...this.sockets.values()]) {
      while (socket.inbox.length > 0 && !socket.closed) {
        const d = socket.inbox.shift()!;
        this.pendingDeliveries--;
        n++;
        try {
          socket.emit('message', d.from, d.port, d.bytes);
        } catch (err) {
          this.counters.listenerErrors++;
          if (!socket.threw) {
            socket.threw = true;
            this.log(`mesh: a listener on port ${socket.port} threw (${(err as Error)?.message ?? String(err)}); caught, counted in listenerErrors, and logged once per port`);
          }
        }
      }
    }
    return n;
  }

  /** Neighbour and route changes since the last call (computed when the topology changed). */
  takeEvents(): NodeEvent[] {
    if (this.eventsVersion !== this.control.version) {
      this.eventsVersion = this.control.version;
      const now = new Map<string, { id: string; iface: string }>();
      for (const n of this.control.neighbours()) if (n.symmetric) now.set(`${n.iface}|${n.id}`, { id: n.id, iface: n.iface });
      for (const [k, n] of now) if (!this.lastNeighbours.has(k)) this.events.push({ event: 'neighbour-up', ...n });
      for (const [k, n] of this.lastNeighbours) if (!now.has(k)) this.events.push({ event: 'neighbour-down', ...n });
      this.lastNeighbours = now;
      const routes = this.refreshRoutes();
      for (const [d, r] of routes) {
        const old = this.reportedRoutes.get(d);
        if (!old || old.nextHop !== r.nextHop || old.iface !== r.iface || old.hops !== r.hops || old.pathMtu !== r.pathMtu) {
          this.events.push({ event: 'route-changed', destination: d, route: r });
        }
      }
      for (const d of this.reportedRoutes.keys()) if (!routes.has(d)) this.events.push({ event: 'route-changed', destination: d, route: undefined });
      this.reportedRoutes = new Map(routes);
    }
    const out = this.events;
    this.events = [];
    return out;
  }

  routes(): Route[] {
    return [...this.refreshRoutes().values()];
  }

  /** The route to a node now, or undefined. */
  route(sid: Uint8Array): Route | undefined {
    return this.refreshRoutes().get(nodeIdOf(sid));
  }

  /** The largest payload a datagram to `sid` can carry now, or undefined without a route. */
  pathMtu(sid: Uint8Array): number | undefined {
    const route = this.refreshRoutes().get(nodeIdOf(sid));
    if (!route) return undefined;
    return route.pathMtu - frameOverhead(this.formTo(sid, route)) - (route.hops > 1 ? SHORT_ADDRESS : 0);
  }

  /** Seals a datagram to `dst` and hands it to its first hop. Never throws for the network's conditions. */
  sendDatagram(dst: Uint8Array, srcPort: number, dstPort: number, payload: Uint8Array, priority: DatagramPriority = 'bulk', flow = `port:${srcPort}`): SendResult {
    const route = this.refreshRoutes().get(nodeIdOf(dst));
    if (!route) return this.refuse('no-route', `no route to ${sidShort(dst)}`);
    const max = this.pathMtu(dst)!;
    if (payload.length > max) {
      return this.refuse('too-large', `datagram of ${payload.length} bytes exceeds the path MTU to ${sidShort(dst)}: at most ${max} bytes`, max);
    }
    const dstBoot = this.control.node(nodeIdOf(dst))?.boot;
    if (!dstBoot) return this.refuse('no-key', `the boot token of ${sidShort(dst)} is not known yet (no HELLO or TC from it)`);
    const iface = this.interfaces.get(route.iface)!;
    let frame = this.sealer.sealUnicast({
      dst,
      dstBoot,
      srcPort,
      dstPort,
      ttl: DEFAULT_TTL,
      payload,
      priority,
      compact: this.formTo(dst, route) === AddressForm.COMPACT,
      authOnly: iface.authOnly === true,
    });
    const via = this.viaFor(route);
    if (via) frame = withVia(frame, via);
    const r = this.emit(route.iface, frame, route.nextHop, priority, flow);
    if (r.ok) this.counters.sent++;
    return r;
  }

  sendBroadcast(srcPort: number, dstPort: number, payload: Uint8Array, priority: DatagramPriority = 'bulk', flow = `port:${srcPort}`): SendResult {
    let last: SendResult = this.refuse('no-route', 'no interface to broadcast on');
    let any = false;
    for (const name of this.interfaces.keys()) {
      const frame = this.sealer.sealBroadcast({ srcPort, dstPort, ttl: 1, payload, priority, compact: true });
      const r = this.put({ iface: name, bytes: frame, priority, flow });
      if (r.ok) any = true;
      else last = r;
    }
    if (!any) return last;
    this.counters.sent++;
    return { ok: true };
  }

  // -------------------------------------------------------------------------------------------

  private wake(): void {
    this.onWake?.();
  }

  private refuse(reason: SendRefusal, message: string, maxBytes?: number): Extract<SendResult, { ok: false }> {
    this.counters.refused[reason] = (this.counters.refused[reason] ?? 0) + 1;
    return maxBytes === undefined ? { ok: false, reason, message } : { ok: false, reason, message, maxBytes };
  }

  /** Hands a frame to the sink (mapping the pacer's refusal) or queues it for takeOutput. */
  private put(out: OutFrame): SendResult {
    this.wake();
    if (!this.sink) {
      this.output.push(out);
      return { ok: true };
    }
    const r = this.sink(out);
    if (r.ok) return { ok: true };
    return this.refuse(SINK_REFUSALS[r.reason] ?? 'refused', `${out.iface}: ${r.message}`, r.maxBytes);
  }

  private collectControl(): void {
    for (const p of this.control.takeOutput()) {
      this.put({ iface: p.iface, bytes: p.bytes, priority: 'control', flow: 'control', kind: p.kind, generation: p.generation });
    }
  }

  private drop(reason: string): void {
    this.counters.dropped[reason] = (this.counters.dropped[reason] ?? 0) + 1;
  }

  private emit(iface: string, bytes: Uint8Array, nextHopId: string, priority: PriorityClass, flow: string): SendResult {
    const to = this.control.endpointOf(nextHopId, iface);
    return this.put({ iface, bytes, priority, flow, ...(to ? { to } : {}) });
  }

  private refreshRoutes(): Map<string, Route> {
    if (this.routesVersion !== this.control.version) {
      this.routesVersion = this.control.version;
      this.routeTable = computeRoutes(this.control.id, this.control.localLinks(), this.control.topology());
      this.shortIndex = new Map();
      for (const n of this.control.knownNodes()) {
        const key = hex(n.sid.subarray(0, SHORT_ADDRESS));
        const list = this.shortIndex.get(key) ?? [];
        list.push(n.sid);
        this.shortIndex.set(key, list);
      }
    }
    return this.routeTable;
  }

  /**
   * Compact addresses only towards a symmetric neighbour — it authenticated our HELLO, so it
   * holds our key and can resolve our short address — and only when no other node we know shares
   * its short address or ours. Further away we cannot know that the destination has our key yet,
   * so the full form goes (it carries our SID, all the destination needs to open it).
   */
  private formTo(dst: Uint8Array, route: Route): typeof AddressForm.FULL | typeof AddressForm.COMPACT {
    this.refreshRoutes();
    const unique = (sid: Uint8Array): boolean => (this.shortIndex.get(hex(sid.subarray(0, SHORT_ADDRESS)))?.length ?? 0) <= 1;
    return route.hops === 1 && unique(dst) && unique(this.sid) ? AddressForm.COMPACT : AddressForm.FULL;
  }

  /** The next hop's short address for a frame that goes further than one hop, else undefined. */
  private viaFor(route: Route): Uint8Array | undefined {
    if (route.hops === 1) return undefined;
    // A node id is the first 16 bytes of the SID, so its first two are the short address.
    return shortAddress(this.control.node(route.nextHop)?.sid ?? hexBytes(route.nextHop));
  }

  private directory(): PeerDirectory {
    this.refreshRoutes();
    return {
      sidsWithShort: (short) => this.shortIndex.get(hex(short)) ?? [],
      signingKeyOf: (sid) => this.control.node(nodeIdOf(sid))?.edKey,
      bootOf: (sid) => this.control.node(nodeIdOf(sid))?.boot,
    };
  }

  private handleFrame(iface: string, frame: Uint8Array): void {
    const h = decodeHeader(frame);
    if (!h.ok) return this.drop(h.reason);
    const { header } = h;
    const mine = shortAddress(this.sid);
    // Broadcasts are authenticated first; the sender's replay window then drops copies, so a
    // forged header with a predictable (source, epoch, counter) cannot suppress the real one.
    if (header.form === AddressForm.BROADCAST || header.form === AddressForm.BROADCAST_COMPACT) return this.deliver(iface, frame);
    const forMe = header.dst!.length === SHORT_ADDRESS ? equal(header.dst!, mine) : equal(header.dst!, this.sid);
    if (header.via && !equal(header.via, mine)) return this.drop('not-our-hop');
    if (!header.via && !forMe) return this.drop('not-for-us');
    if (forMe) return this.deliver(iface, frame);
    this.forward(iface, header.dst!, header.src, frame, header.authOnly, header.priority ?? 'bulk');
  }

  private deliver(iface: string, frame: Uint8Array): void {
    const r = this.sealer.open(frame, this.directory());
    if (!r.ok) return this.drop(r.reason);
    const d = r.datagram;
    if (!d.authOnly && this.interfaces.get(iface)?.authOnly) return this.drop('encrypted-on-auth-only');
    const socket = this.sockets.get(d.dstPort);
    if (!socket) return this.drop('no-port');
    if (socket.inbox.length >= INBOX_CAP) return this.drop('inbox-full');
    socket.inbox.push({ from: d.src, port: d.srcPort, bytes: d.payload });
    this.pendingDeliveries++;
    this.counters.delivered++;
    this.wake();
  }

  private forward(from: string, dst: Uint8Array, src: Uint8Array, frame: Uint8Array, authOnly: boolean, priority: DatagramPriority): void {
    let dstId: string | undefined;
    if (dst.length === SHORT_ADDRESS) {
      const candidates = this.directory().sidsWithShort(dst);
      if (candidates.length !== 1) return this.drop(candidates.length === 0 ? 'unknown-destination' : 'ambiguous-destination');
      dstId = nodeIdOf(candidates[0]!);
    } else {
      dstId = nodeIdOf(dst);
    }
    const route = this.refreshRoutes().get(dstId);
    if (!route) return this.drop('no-route');
    if (!authOnly && this.interfaces.get(route.iface)?.authOnly) return this.drop('encrypted-on-auth-only');
    // A full-mesh interface (an MQTT topic) never gets back what came from it: the destination
    // heard the sender there as well as we did, and a loop through a broker is a storm.
    if (route.iface === from && this.interfaces.get(from)?.fullMesh) return this.drop('full-mesh-return');
    const via = this.viaFor(route);
    const out = forwardedFrame(frame, via);
    if (!out) return this.drop('ttl');
    // One pacer flow per source, so one busy sender cannot starve the others it shares a hop with.
    const r = this.emit(route.iface, out, route.nextHop, priority, `fwd:${hex(src.subarray(0, SHORT_ADDRESS))}`);
    if (r.ok) this.counters.forwarded++;
    else this.drop(`forward-${r.reason}`);
  }
}

function equal(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}

function hexBytes(h: string): Uint8Array {
  return Uint8Array.from(Buffer.from(h, 'hex'));
}
