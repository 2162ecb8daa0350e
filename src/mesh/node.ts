/**
 * A mesh node, sans-IO: identity, sealing, the control plane, routes, forwarding between
 * interfaces, and datagram ports. Bytes from links and `now` go in (`receive`, `poll`); frames for
 * links come out (`takeOutput`), with the next deadline. The gateway owns the links and the timer.
 *
 * Data frames (SPEC.md beside this file) and RFC 5444 control packets share each link; the
 * first byte tells them apart. A unicast frame to a neighbour carries no via field; one that
 * travels further names its next hop in `via`, which each forwarder rewrites, decrementing the
 * TTL. Forwarders cannot open frames (sealing is end to end); they route by destination.
 */
import { EventEmitter } from 'node:events';
import type { Endpoint } from '../link/link.js';
import type { PriorityClass } from '../link/pacer.js';
import { ControlPlane, nodeIdOf, type ControlInterface, type ControlOptions } from './control.js';
import {
  AddressForm,
  SHORT_ADDRESS,
  decodeHeader,
  forwardedFrame,
  frameOverhead,
  isMeshFrame,
  shortAddress,
  withVia,
} from './frame.js';
import { sidHex as hex, sidShort } from './identity.js';
import { computeRoutes, type Route } from './routing.js';
import { FrameSealer, type PeerDirectory } from './seal.js';

export const DEFAULT_TTL = 16;
/** Ports below this are the node's own services; `bind` refuses them unless asked. */
export const RESERVED_PORTS = 16;
const MAX_PORT = 255;
const MAX_BROADCAST_SEEN = 4096;

export interface NodeInterface extends ControlInterface {
  /** Amateur bands: datagrams on this interface are authenticated, not encrypted. */
  authOnly?: boolean;
}

export interface NodeOptions extends ControlOptions {
  /** This boot's epoch (epoch.ts). */
  epoch: number;
  nextEpoch?: () => number;
}

export interface OutFrame {
  iface: string;
  bytes: Uint8Array;
  /** Link-layer unicast destination, when the link is addressed (UDP) and it is known. */
  to?: Endpoint;
  priority: PriorityClass;
}

export class MeshSendError extends Error {
  override readonly name = 'MeshSendError';
}

export interface NodeCounters {
  delivered: number;
  forwarded: number;
  sent: number;
  dropped: Record<string, number>;
}

export interface SocketEvents {
  message: [fromSid: Uint8Array, fromPort: number, bytes: Uint8Array];
}

export class MeshSocket extends EventEmitter<SocketEvents> {
  constructor(
    private readonly node: MeshNode,
    readonly port: number,
    private readonly priority: PriorityClass,
  ) {
    super();
  }

  /** Seals and queues a datagram; throws MeshSendError (no route, too large) with the reason. */
  send(sid: Uint8Array, port: number, bytes: Uint8Array): void {
    this.node.sendDatagram(sid, this.port, port, bytes, this.priority);
  }

  /** A one-hop signed broadcast to every neighbour. */
  broadcast(port: number, bytes: Uint8Array): void {
    this.node.sendBroadcast(this.port, port, bytes, this.priority);
  }

  close(): void {
    this.node.unbind(this.port);
    this.removeAllListeners();
  }
}

export class MeshNode {
  readonly control: ControlPlane;
  readonly sealer: FrameSealer;
  readonly counters: NodeCounters = { delivered: 0, forwarded: 0, sent: 0, dropped: {} };
  private readonly interfaces = new Map<string, NodeInterface>();
  private readonly sockets = new Map<number, MeshSocket>();
  private output: OutFrame[] = [];
  private routeTable = new Map<string, Route>();
  private routesVersion = -1;
  private shortIndex = new Map<string, Uint8Array[]>();
  private readonly broadcastSeen = new Set<string>();

  constructor(options: NodeOptions) {
    this.control = new ControlPlane(options);
    this.sealer = new FrameSealer(options.identity, options.epoch, options.nextEpoch);
  }

  get sid(): Uint8Array {
    return this.sealer.identity.sid;
  }

  addInterface(cfg: NodeInterface, now: number): void {
    this.interfaces.set(cfg.name, cfg);
    this.control.addInterface(cfg, now);
  }

  removeInterface(name: string): void {
    this.interfaces.delete(name);
    this.control.removeInterface(name);
  }

  /** Opens a datagram port; 0 picks a free one at or above RESERVED_PORTS. */
  bind(port = 0, options: { reserved?: boolean; priority?: PriorityClass } = {}): MeshSocket {
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

  unbind(port: number): void {
    this.sockets.delete(port);
  }

  /** Bytes received on a link. */
  receive(iface: string, bytes: Uint8Array, now: number, from?: Endpoint): void {
    if (!this.interfaces.has(iface)) return;
    if (isMeshFrame(bytes)) this.handleFrame(iface, bytes);
    else this.control.receive(iface, bytes, now, from);
    this.collectControl();
  }

  poll(now: number): void {
    this.control.poll(now);
    this.collectControl();
  }

  nextDeadline(): number {
    return this.control.nextDeadline();
  }

  takeOutput(): OutFrame[] {
    const out = this.output;
    this.output = [];
    return out;
  }

  routes(): Route[] {
    return [...this.refreshRoutes().values()];
  }

  /** The largest payload a datagram to `sid` can carry now, or undefined without a route. */
  pathMtu(sid: Uint8Array): number | undefined {
    const route = this.refreshRoutes().get(nodeIdOf(sid));
    if (!route) return undefined;
    return route.pathMtu - frameOverhead(this.formTo(sid, route)) - (route.hops > 1 ? SHORT_ADDRESS : 0);
  }

  sendDatagram(dst: Uint8Array, srcPort: number, dstPort: number, payload: Uint8Array, priority: PriorityClass): void {
    const route = this.refreshRoutes().get(nodeIdOf(dst));
    if (!route) throw new MeshSendError(`no route to ${sidShort(dst)}`);
    const max = this.pathMtu(dst)!;
    if (payload.length > max) {
      throw new MeshSendError(`datagram of ${payload.length} bytes exceeds the path MTU to ${sidShort(dst)}: at most ${max} bytes`);
    }
    const iface = this.interfaces.get(route.iface)!;
    let frame = this.sealer.sealUnicast({
      dst,
      srcPort,
      dstPort,
      ttl: DEFAULT_TTL,
      payload,
      compact: this.formTo(dst, route) === AddressForm.COMPACT,
      authOnly: iface.authOnly === true,
    });
    const via = this.viaFor(route);
    if (via) frame = withVia(frame, via);
    this.emit(route.iface, frame, route.nextHop, priority);
    this.counters.sent++;
  }

  sendBroadcast(srcPort: number, dstPort: number, payload: Uint8Array, priority: PriorityClass): void {
    for (const name of this.interfaces.keys()) {
      const frame = this.sealer.sealBroadcast({ srcPort, dstPort, ttl: 1, payload, compact: true });
      this.output.push({ iface: name, bytes: frame, priority });
    }
    this.counters.sent++;
  }

  // -------------------------------------------------------------------------------------------

  private collectControl(): void {
    for (const p of this.control.takeOutput()) this.output.push({ iface: p.iface, bytes: p.bytes, priority: 'control' });
  }

  private drop(reason: string): void {
    this.counters.dropped[reason] = (this.counters.dropped[reason] ?? 0) + 1;
  }

  private emit(iface: string, bytes: Uint8Array, nextHopId: string, priority: PriorityClass): void {
    const to = this.control.endpointOf(nextHopId, iface);
    this.output.push({ iface, bytes, priority, ...(to ? { to } : {}) });
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
    };
  }

  private handleFrame(iface: string, frame: Uint8Array): void {
    const h = decodeHeader(frame);
    if (!h.ok) return this.drop(h.reason);
    const { header } = h;
    const mine = shortAddress(this.sid);
    if (header.form === AddressForm.BROADCAST || header.form === AddressForm.BROADCAST_COMPACT) {
      const key = `${hex(header.src)}/${header.epoch}/${header.counter}`;
      if (this.broadcastSeen.has(key)) return this.drop('duplicate-broadcast');
      this.broadcastSeen.add(key);
      if (this.broadcastSeen.size > MAX_BROADCAST_SEEN) this.broadcastSeen.delete(this.broadcastSeen.values().next().value!);
      return this.deliver(iface, frame);
    }
    const forMe = header.dst!.length === SHORT_ADDRESS ? equal(header.dst!, mine) : equal(header.dst!, this.sid);
    if (header.via && !equal(header.via, mine)) return this.drop('not-our-hop');
    if (!header.via && !forMe) return this.drop('not-for-us');
    if (forMe) return this.deliver(iface, frame);
    this.forward(header.dst!, frame, header.authOnly);
  }

  private deliver(iface: string, frame: Uint8Array): void {
    const r = this.sealer.open(frame, this.directory());
    if (!r.ok) return this.drop(r.reason);
    const d = r.datagram;
    if (!d.authOnly && this.interfaces.get(iface)?.authOnly) return this.drop('encrypted-on-auth-only');
    const socket = this.sockets.get(d.dstPort);
    if (!socket) return this.drop('no-port');
    this.counters.delivered++;
    socket.emit('message', d.src, d.srcPort, d.payload);
  }

  private forward(dst: Uint8Array, frame: Uint8Array, authOnly: boolean): void {
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
    const via = this.viaFor(route);
    const out = forwardedFrame(frame, via);
    if (!out) return this.drop('ttl');
    this.counters.forwarded++;
    this.emit(route.iface, out, route.nextHop, 'bulk');
  }
}

function equal(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}

function hexBytes(h: string): Uint8Array {
  return Uint8Array.from(Buffer.from(h, 'hex'));
}
