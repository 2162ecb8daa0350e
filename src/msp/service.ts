/**
 * MSP inside the gateway: a GatewayService that runs `MspSockets.processing` as a machine of the
 * one loop, over the mesh host (host.ts): datagram ports from `bind`, the payload budget from
 * `route(sid).maxPayload`, and the pull gate from `ready(sid, class)`. A received datagram, a send,
 * a first hop that is ready again or a route that changed wakes the loop, which runs MSP at once.
 *
 *   const msp = new MspService();
 *   const gw = new Gateway({ ..., mesh: node, services: [msp] });
 *   await gw.start();
 *   const stream = msp.connect(peerSid, 7);           // a Duplex
 *   for await (const s of msp.listen(7)) { ... }      // incoming Duplexes
 *
 * The seed's socket API is `msp.sockets` (sockets.ts).
 */
import type { Gateway, GatewayService } from '../gateway/gateway.js';
import type { MeshHost } from '../gateway/host.js';
import type { InterfaceRegistry } from '../link/registry.js';
import { pathEstimateFromAirtime, type MspPathEstimate } from './connection.js';
import { MspSockets, type MspDatagramPort, type MspNetwork, type MspSocketsOptions } from './sockets.js';
import { MspListener, MspMessages, MspStream, type MspStreamOptions } from './stream.js';

export type MspServiceOptions = MspSocketsOptions;

/** Driver kinds whose two directions do not share one radio channel. */
const FULL_DUPLEX_KINDS = new Set(['udp', 'tcp', 'mqtt']);

/** The mesh host as MSP's network; with the registry, connections also get the first hop's airtime. */
export function hostNetwork(host: MeshHost, registry?: InterfaceRegistry): MspNetwork {
  return {
    pathEstimate(sid): MspPathEstimate | undefined {
      const route = host.route(sid);
      const entry = route ? registry?.get(route.iface) : undefined;
      if (route === undefined || entry === undefined || route.maxPayload <= 0) return undefined;
      const meshOverhead = Math.max(0, route.pathMtu - route.maxPayload);
      const model = entry.link.airtime;
      const duty = entry.rules.dutyCycle?.fraction;
      return pathEstimateFromAirtime((n) => model.airtimeMs(Math.min(model.maxBytes, n + meshOverhead)), route.maxPayload, {
        halfDuplex: !FULL_DUPLEX_KINDS.has(entry.link.kind),
        ...(duty !== undefined ? { dutyFraction: duty } : {}),
      });
    },
    sid: host.sid,
    bind(port, onDatagram): MspDatagramPort {
      const socket = host.bind(port);
      socket.on('message', onDatagram);
      return {
        port: socket.port,
        send: (sid, toPort, bytes, priority) => socket.send(sid, toPort, bytes, { priority }),
        close: () => socket.close(),
      };
    },
    maxPayload: (sid) => host.route(sid)?.maxPayload,
    ready: (sid, priority) => host.ready(sid, priority),
  };
}

export class MspService implements GatewayService {
  readonly name = 'msp';
  private socketsOrUndefined: MspSockets | undefined;
  private wake: () => void = () => undefined;
  private now = 0;

  constructor(private readonly options: MspServiceOptions = {}) {}

  /** The seed's socket API (after the gateway started). */
  get sockets(): MspSockets {
    if (this.socketsOrUndefined === undefined) throw new Error('MSP is not started: pass the MspService to a Gateway and start it');
    return this.socketsOrUndefined;
  }

  start(gateway: Gateway): void {
    const host = gateway.host;
    if (host === undefined) throw new Error('MSP needs a gateway with a mesh node');
    this.wake = () => gateway.loop.wake();
    this.now = gateway.clock.now();
    this.attach(new MspSockets(hostNetwork(host, gateway.registry), this.options), host);
  }

  /** Runs over any MspNetwork (tests, other transports) with the owner's wake; `poll` must then be called by the owner's loop. */
  attach(sockets: MspSockets, host?: MeshHost, wake?: () => void): void {
    if (wake) this.wake = wake;
    this.socketsOrUndefined = sockets;
    sockets.onWake = () => this.wake();
    if (host) {
      host.on('ready', () => this.wake());
      host.on('route-changed', () => {
        sockets.pathsChanged();
        this.wake();
      });
    }
  }

  stop(): void {
    const s = this.socketsOrUndefined;
    if (s === undefined) return;
    s.closeAll();
    s.processing(this.now);
  }

  poll(now: number): void {
    this.now = now;
    if (this.socketsOrUndefined === undefined) return;
    this.socketsOrUndefined.processing(now);
  }

  nextDeadline(now: number): number | undefined {
    if (this.socketsOrUndefined === undefined) return undefined;
    return this.socketsOrUndefined.nextDeadline(now);
  }

  /** A byte stream to (sid, port): `pipeline()` works with it; `highWaterMark` is honoured end to end. */
  connect(sid: Uint8Array, port: number, options: MspStreamOptions = {}): MspStream {
    return MspStream.connect(this.sockets, sid, port, options);
  }

  /** Messages to (sid, port): an async iterator of received messages and a `send` that waits for room. */
  connectMessages(sid: Uint8Array, port: number, options: MspStreamOptions = {}): MspMessages {
    return MspMessages.connect(this.sockets, sid, port, options);
  }

  /** Incoming connections on `port`, as byte streams (default) or message streams. */
  listen(port: number, options: MspStreamOptions & { mode?: 'stream' | 'messages' } = {}): MspListener {
    return new MspListener(this.sockets, port, options);
  }
}
