/**
 * Strokkur straight over UDP: one dgram socket serves every peer; a peer is an `{address, port}`
 * endpoint and its key is `address:port` (`[address]:port` for IPv6). Chunks from different
 * peers, and different messages from one peer, go to separate receive states.
 *
 * The MTU is one number for every peer (default 1200 bytes: under the 1280-byte IPv6 minimum less
 * the IP and UDP headers, so no fragmentation on any sane path). Sending is immediate unless
 * `bitRate` is set: then a token bucket (burst `burstBytes`, default 16 datagrams) paces the
 * datagrams, `ready` says whether a datagram may go now, and `onReady` handlers run when the
 * bucket has refilled. A receiver that is not reading fast enough loses datagrams in its kernel
 * buffer, so a sender to a far or slow host should set a rate.
 *
 * Datagrams are handed to the kernel asynchronously; `close()` waits until every one that was
 * handed over has left (or failed: failures are counted, not thrown).
 */
import { createSocket, type Socket, type SocketType } from 'node:dgram';
import { isIPv6 } from 'node:net';
import type { Endpoint } from '../link/link.js';
import type { StrokkurTransport } from './strokkur.js';

export const DEFAULT_UDP_MTU = 1200;
const MAX_UDP_PAYLOAD = 65_507;

export interface UdpStrokkurOptions {
  /** Local port; default 0 (any free port). */
  port?: number;
  /** Bind address; default 0.0.0.0 ('udp4') or :: ('udp6'). */
  address?: string;
  /** Default 'udp6' when `address` is an IPv6 address, else 'udp4'. */
  type?: SocketType;
  /** Largest datagram sent, bytes; default 1200. */
  mtu?: number;
  /** Pace sending to this many bits per second (UDP payload); default unpaced. */
  bitRate?: number;
  /** Token bucket depth, bytes; default 16 datagrams of `mtu`. */
  burstBytes?: number;
  /** SO_RCVBUF to ask for, bytes (the kernel may give less); default the system's. */
  receiveBufferBytes?: number;
}

export interface UdpStrokkurCounters {
  datagramsOut: number;
  bytesOut: number;
  datagramsIn: number;
  bytesIn: number;
  sendErrors: number;
  /** The last send error's message. */
  lastSendError?: string;
}

export function endpointKey(e: Endpoint): string {
  return isIPv6(e.address) ? `[${e.address}]:${e.port}` : `${e.address}:${e.port}`;
}

export class UdpStrokkurTransport implements StrokkurTransport<Endpoint> {
  readonly counters: UdpStrokkurCounters = { datagramsOut: 0, bytesOut: 0, datagramsIn: 0, bytesIn: 0, sendErrors: 0 };
  private readonly handlers: Array<(src: Endpoint, bytes: Uint8Array) => void> = [];
  private readonly readyHandlers: Array<() => void> = [];
  private readonly mtuBytes: number;
  private readonly bytesPerMs: number | undefined;
  private readonly burst: number;
  private tokens: number;
  private lastRefill = performance.now();
  private refillTimer: NodeJS.Timeout | undefined;
  private inFlight = 0;
  private drained: Array<() => void> = [];
  private closed = false;

  private constructor(
    private readonly socket: Socket,
    options: UdpStrokkurOptions,
  ) {
    this.mtuBytes = options.mtu ?? DEFAULT_UDP_MTU;
    if (options.bitRate !== undefined) {
      if (!(options.bitRate > 0 && Number.isFinite(options.bitRate))) throw new RangeError(`bitRate must be > 0, got ${options.bitRate}`);
      this.bytesPerMs = options.bitRate / 8 / 1000;
    }
    this.burst = options.burstBytes ?? 16 * this.mtuBytes;
    if (!(this.burst >= 1)) throw new RangeError(`burstBytes must be ≥ 1, got ${this.burst}`);
    this.tokens = this.burst;
    socket.on('message', (msg, rinfo) => {
      this.counters.datagramsIn++;
      this.counters.bytesIn += msg.length;
      const bytes = new Uint8Array(msg.buffer, msg.byteOffset, msg.length);
      const src = { address: rinfo.address, port: rinfo.port };
      for (const h of this.handlers) h(src, bytes);
    });
    // An ICMP port unreachable (a peer gone) surfaces as a socket error on some systems: count it.
    socket.on('error', (err) => this.failed(err));
  }

  /** Binds a socket; rejects (EADDRINUSE, EACCES, a bad address) with the system's reason. */
  static async open(options: UdpStrokkurOptions = {}): Promise<UdpStrokkurTransport> {
    const mtu = options.mtu ?? DEFAULT_UDP_MTU;
    if (!(Number.isInteger(mtu) && mtu >= 1 && mtu <= MAX_UDP_PAYLOAD)) throw new RangeError(`mtu must be an integer from 1 to ${MAX_UDP_PAYLOAD}, got ${mtu}`);
    const type = options.type ?? (options.address !== undefined && isIPv6(options.address) ? 'udp6' : 'udp4');
    const socket = createSocket({ type });
    await new Promise<void>((resolve, reject) => {
      const onError = (err: Error): void => {
        socket.close();
        reject(err);
      };
      socket.once('error', onError);
      socket.bind(options.port ?? 0, options.address ?? (type === 'udp6' ? '::' : '0.0.0.0'), () => {
        socket.off('error', onError);
        resolve();
      });
    });
    if (options.receiveBufferBytes !== undefined) {
      try {
        socket.setRecvBufferSize(options.receiveBufferBytes);
      } catch {
        // The system keeps its own size: not fatal.
      }
    }
    return new UdpStrokkurTransport(socket, { ...options, mtu });
  }

  /** The bound local endpoint. */
  localEndpoint(): Endpoint {
    const a = this.socket.address();
    return { address: a.address, port: a.port };
  }

  send(dst: Endpoint, bytes: Uint8Array): boolean {
    if (this.closed) throw new Error('UDP transport is closed');
    if (bytes.length > this.mtuBytes) throw new RangeError(`datagram of ${bytes.length} bytes exceeds the MTU of ${this.mtuBytes} bytes`);
    // Node keeps the buffer until the datagram is written: copy, the caller may reuse theirs.
    const data = Buffer.from(bytes);
    this.inFlight++;
    this.socket.send(data, dst.port, dst.address, (err) => {
      if (err) this.failed(err);
      else {
        this.counters.datagramsOut++;
        this.counters.bytesOut += data.length;
      }
      if (--this.inFlight === 0) for (const fn of this.drained.splice(0)) fn();
    });
    if (this.bytesPerMs === undefined) return true;
    this.refill();
    this.tokens -= bytes.length;
    return this.ready();
  }

  onDatagram(handler: (src: Endpoint, bytes: Uint8Array) => void): void {
    this.handlers.push(handler);
  }

  key(addr: Endpoint): string {
    return endpointKey(addr);
  }

  mtu(): number {
    return this.mtuBytes;
  }

  /** Unpaced: always. Paced: while the bucket holds tokens (else a refill is scheduled). */
  ready(): boolean {
    if (this.bytesPerMs === undefined || this.closed) return true;
    this.refill();
    if (this.tokens > 0) return true;
    this.scheduleRefill();
    return false;
  }

  onReady(handler: () => void): void {
    this.readyHandlers.push(handler);
  }

  /** Datagrams handed to the socket that have not left yet. */
  get pending(): number {
    return this.inFlight;
  }

  /** Waits until every datagram handed over has left, then closes the socket. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.refillTimer);
    this.refillTimer = undefined;
    if (this.inFlight > 0) await new Promise<void>((resolve) => this.drained.push(resolve));
    await new Promise<void>((resolve) => this.socket.close(() => resolve()));
  }

  private failed(err: Error): void {
    this.counters.sendErrors++;
    this.counters.lastSendError = err.message;
  }

  private refill(): void {
    const now = performance.now();
    this.tokens = Math.min(this.burst, this.tokens + (now - this.lastRefill) * this.bytesPerMs!);
    this.lastRefill = now;
  }

  private scheduleRefill(): void {
    if (this.refillTimer) return;
    // Until the bucket is positive again, or at least a millisecond.
    const waitMs = Math.max(1, Math.ceil((1 - this.tokens) / this.bytesPerMs!));
    this.refillTimer = setTimeout(() => {
      this.refillTimer = undefined;
      if (this.closed) return;
      for (const h of this.readyHandlers) h();
    }, waitMs);
  }
}
