/**
 * Strokkur over a mesh datagram port. Addresses are SIDs (32 bytes); a SID's key is its hex. The
 * socket is one bound on a `MeshNode` (`node.bind(port)`); chunks go to the same port number on
 * the destination (`remotePort` to change that), and whatever arrives on the socket, from any
 * port, is fed to the receiver.
 *
 * - MTU: `node.pathMtu(dst)` — the largest datagram payload along the route now (undefined
 *   without a route, so a send then rejects).
 * - Loss: for a one-hop route, 1 − the neighbour's reported delivery ratio of our HELLOs (the
 *   same ratio that costs the link in routing). Further hops are advertised only as a cost (ms per
 *   byte ÷ delivery ratio) with no airtime to divide it by, so their loss is not derivable: the
 *   loss is then unknown (Strokkur uses its default redundancy) unless `loss` is given.
 * - Pacing: the pacer lives in the gateway's interface registry, so the caller says when the mesh
 *   may take more (`ready`, `onReady`: e.g. the pacer's ready flag for the bulk class on the
 *   route's interface). Without them chunks are handed over as fast as Strokkur produces them.
 * - `flush`: optional; the node wakes its loop or runner by itself when it queues a frame.
 *   In the daemon, pass `host.ready` / the host's 'ready' event (src/gateway/host.ts) as
 *   `ready` / `onReady`: chunks then wait in Strokkur, not in a radio's queue.
 */
import { nodeIdOf } from '../mesh/control.js';
import { MeshSendError, type MeshNode, type MeshSocket } from '../mesh/node.js';
import type { StrokkurTransport } from './strokkur.js';

export interface MeshStrokkurOptions {
  /** Destination port of every chunk; default the socket's own port. */
  remotePort?: number;
  /** Whether a chunk to `dst` may be handed to the node now; default always. */
  ready?: (dst: Uint8Array) => boolean;
  /** Registers the handler to call when `ready` may have become true. */
  onReady?: (handler: () => void) => void;
  /** Overrides the loss estimate (0..1, or undefined for unknown). */
  loss?: (dst: Uint8Array) => number | undefined;
  /** Called after each chunk was queued in the node (the runner's flush). */
  flush?: () => void;
}

export class MeshStrokkurTransport implements StrokkurTransport<Uint8Array> {
  private readonly remotePort: number;
  readonly ready?: (dst: Uint8Array) => boolean;
  readonly onReady?: (handler: () => void) => void;

  constructor(
    private readonly node: MeshNode,
    private readonly socket: MeshSocket,
    private readonly options: MeshStrokkurOptions = {},
  ) {
    this.remotePort = options.remotePort ?? socket.port;
    if (options.ready) this.ready = options.ready;
    if (options.onReady) this.onReady = options.onReady;
  }

  /** Seals and queues one chunk; throws MeshSendError (no route, over the path MTU, queue full). */
  send(dst: Uint8Array, bytes: Uint8Array): boolean {
    const r = this.socket.send(dst, this.remotePort, bytes);
    if (!r.ok) throw new MeshSendError(r);
    this.options.flush?.();
    return true;
  }

  onDatagram(handler: (src: Uint8Array, bytes: Uint8Array) => void): void {
    this.socket.on('message', (from, _port, bytes) => handler(from, bytes));
  }

  key(addr: Uint8Array): string {
    return Buffer.from(addr.buffer, addr.byteOffset, addr.byteLength).toString('hex');
  }

  mtu(dst: Uint8Array): number | undefined {
    return this.node.pathMtu(dst);
  }

  loss(dst: Uint8Array): number | undefined {
    if (this.options.loss) return this.options.loss(dst);
    const id = nodeIdOf(dst);
    const route = this.node.routes().find((r) => r.destination === id);
    if (!route || route.hops !== 1) return undefined;
    const n = this.node.control.neighbours().find((x) => x.id === route.nextHop && x.iface === route.iface);
    return n ? Math.min(1, Math.max(0, 1 - n.outRatio)) : undefined;
  }
}
