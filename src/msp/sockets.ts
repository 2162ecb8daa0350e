/**
 * MSP sockets: the seed's socket API over MSP endpoints (endpoint.ts) and a datagram network
 * (the mesh host, or anything with the same four calls).
 *
 * A socket is a handle — null, valid, or closed; handles are never reused and a closed handle's
 * predicates answer safely. A socket is set up (`setLocal`, `setHandler`), then either listens
 * (`listen`) or connects (`connect`, no IO: messages sent before the first `processing` go with
 * the first packet). All application callbacks happen inside `processing(now)`, which also pulls
 * packets out of the connections while the first hop can take them, and returns the next time it
 * must be called. The gateway loop calls it as a machine (service.ts); tests may call it directly.
 *
 * The handler `(sock, state, payload, context) → bytesConsumed` is called:
 * - on a listening socket's handler once per new connection, with the new data socket (which
 *   inherits the listener's handler, context and priority), no payload;
 * - on a data socket once per received message (state has RECEIVED_DATA), returning how many
 *   bytes it consumed: the rest of that message is offered again at the next `processing`, and no
 *   byte of the next message comes first. SHUTDOWN_REMOTE is set when the peer shut down and no
 *   message follows the one offered;
 * - with DATA_OUT, no payload, when the socket can take a message of the maximum size: once when
 *   it can first send, again whenever room returns after a send met a full queue, and repeatedly
 *   within one `processing` while the handler keeps sending and room remains;
 * - with ERROR once when the connection failed (timeout, reset by the peer, or the handler threw);
 * - with CLOSED exactly once after the socket closed, for whatever reason; then the handle is closed.
 * A handler that throws is caught and logged; its socket is closed with ERROR (the peer gets a
 * RESET), and no other socket is touched.
 */
import { randomInt } from 'node:crypto';
import { type MspConnection, type MspFecMode, type MspPathEstimate } from './connection.js';
import { MspEndpoint, type MspEndpointOptions, type MspOutgoing } from './endpoint.js';
import { FLAG_NUMBERED } from './wire.js';

/** State flags (the seed's MSP_STATE_* values, bit for bit). */
export const MspState = {
  UNINITIALISED: 0,
  LISTENING: 1 << 0,
  RECEIVED_DATA: 1 << 1,
  RECEIVED_PACKET: 1 << 2,
  SHUTDOWN_LOCAL: 1 << 3,
  SHUTDOWN_REMOTE: 1 << 4,
  DATA_OUT: 1 << 5,
  CLOSED: 1 << 6,
  ERROR: 1 << 7,
} as const;

/** A socket handle: opaque; compare with `===`. */
export interface MspSocket {
  readonly id: number;
}

/** The null handle (the seed's MSP_SOCKET_NULL). */
export const MSP_SOCKET_NULL: MspSocket = Object.freeze({ id: 0 });

/** `(sock, state, payload, context) → bytes consumed` (only counted for RECEIVED_DATA calls). */
export type MspHandler<C = unknown> = (sock: MspSocket, state: number, payload: Uint8Array | undefined, context: C) => number | void;

/** Priority of a socket's data packets; its pure acknowledgements always go as 'ack'. */
export type MspPriority = 'bulk' | 'interactive';

export interface MspAddress {
  sid: Uint8Array;
  port: number;
}

/** The local address as `setLocal` takes it: our SID (or "primary"/"all": the node has one) and a port, 0 for any. */
export interface MspLocalAddress {
  sid?: Uint8Array | 'primary' | 'all';
  port: number;
}

export type MspSocketErrorCode =
  /** A null or closed handle. */
  | 'EBADF'
  /** A call that does not fit the socket's state or arguments (connect on a connected socket, listen without a port). */
  | 'EINVAL'
  /** The local port already has a listener, or cannot be bound. */
  | 'EADDRINUSE'
  /** A cap on connections (in all, per peer) was reached. */
  | 'EMFILE'
  /** send on a socket that is not a data socket. */
  | 'ENOTCONN'
  /** send after shutdown, or on a connection that failed. */
  | 'ESHUTDOWN';

/** A misuse of the API (where the C API said "undefined results"). */
export class MspSocketError extends Error {
  override readonly name = 'MspSocketError';
  constructor(
    readonly code: MspSocketErrorCode,
    message: string,
  ) {
    super(`${code}: ${message}`);
  }
}

/** `send`'s answer to a condition of the moment, not a misuse. */
export type MspSocketSendResult =
  | { ok: true; bytes: number }
  /** EAGAIN: the send queue is full; wait for DATA_OUT. EBADMSG: larger than `maxMessageSize(sock)` (in `maxBytes`). */
  | { ok: false; code: 'EAGAIN' | 'EBADMSG'; message: string; maxBytes?: number };

/** What MSP needs from the network below: the mesh host (service.ts) or a test's datagram fabric. */
export interface MspNetwork {
  /** Our node's SID. */
  readonly sid: Uint8Array;
  /** Binds a datagram port (0: any free one); datagrams received on it go to `onDatagram`. Throws when taken. */
  bind(port: number, onDatagram: (fromSid: Uint8Array, fromPort: number, bytes: Uint8Array) => void): MspDatagramPort;
  /** The largest datagram payload that reaches `sid` now; undefined without a route. */
  maxPayload(sid: Uint8Array): number | undefined;
  /** Whether the first hop towards `sid` takes a packet of `priority` now (cheap; ask per packet). */
  ready(sid: Uint8Array, priority: 'bulk' | 'interactive' | 'ack'): boolean;
  /** The first hop towards `sid` as an airtime estimate (RTO, ack policy); undefined when unknown. */
  pathEstimate?(sid: Uint8Array): MspPathEstimate | undefined;
}

export interface MspDatagramPort {
  readonly port: number;
  send(sid: Uint8Array, port: number, bytes: Uint8Array, priority: 'bulk' | 'interactive' | 'ack'): { ok: true } | { ok: false; reason: string; message: string };
  close(): void;
}

export interface MspSocketsOptions {
  /** Options of every endpoint (caps per local port) and, inside, of every connection. */
  endpoint?: MspEndpointOptions;
  /** Data sockets at most (all ports). Default 1,024. */
  maxSockets?: number;
  /**
   * Connections that may use the connection option `fastPathWindowBytes` (1 MiB by default) on a
   * fast path at once; the others keep the 64 KiB windows. Bounds what fast streams can hold in
   * memory (each up to its send queue plus twice its receive window). Default 8.
   */
  maxLargeWindows?: number;
  /** DATA_OUT calls per socket per `processing` at most (a handler that keeps sending). Default 64. */
  maxDataOutCalls?: number;
  log?: (line: string) => void;
  /** Largest path payload assumed before a route is known (bytes). Default 150. */
  defaultPathPayload?: number;
  /** Source of connection ids, a number in [0, 1) (simulations pass a seeded one). Default node:crypto's randomInt. */
  random?: () => number;
}

export interface MspSocketsStats {
  socketsOpened: number;
  connectionsAccepted: number;
  messagesDelivered: number;
  bytesDelivered: number;
  handlerErrors: number;
  packetsSent: number;
  /** Packets the network refused (counted by reason); the connection retransmits what mattered. */
  sendRefused: Record<string, number>;
}

/** Bytes of MSP framing counted against the path payload: a DATA packet with an ACK of one range and a WINDOW. */
const MESSAGE_HEADROOM = 16;
const DEFAULT_PATH_PAYLOAD = 150;
/** Packets one `processing` hands to the network at most (a fast link takes the rest in the next pass). */
const MAX_PACKETS_PER_PROCESSING = 256;

type Phase = 'initialising' | 'listening' | 'data' | 'closed';

interface PortState {
  readonly port: number;
  readonly dgram: MspDatagramPort;
  readonly endpoint: MspEndpoint;
  listener: SocketRecord | undefined;
  /** The shared port of sockets that connect without a local port. */
  readonly shared: boolean;
  users: number;
}

interface SocketRecord {
  readonly handle: MspSocket;
  /** Holds one of the large-window grants (maxLargeWindows). */
  largeWindow?: boolean;
  phase: Phase;
  localPort: number;
  remote: MspAddress | undefined;
  handler: MspHandler<any> | undefined;
  context: unknown;
  priority: MspPriority;
  /** FEC mode asked for with `setFec` (undefined: the connection option). */
  fec: MspFecMode | undefined;
  portState: PortState | undefined;
  conn: MspConnection | undefined;
  /** Received messages taken from the connection and not yet consumed; the first from `offset`. */
  inbox: Uint8Array[];
  offset: number;
  /** The new-connection call is due. */
  announce: boolean;
  /** DATA_OUT is due: first time, or room returned after a full queue. */
  dataOutDue: boolean;
  /** A send met a full queue (or room was short): DATA_OUT when room returns. */
  blocked: boolean;
  errorState: boolean;
  errorReported: boolean;
  /** Closed (by itself, by close(), after an error); the CLOSED call is due once. */
  closing: boolean;
  /** The handler has seen SHUTDOWN_REMOTE (with the last message, or in a call of its own). */
  remoteShutSeen: boolean;
}

export class MspSockets {
  readonly stats: MspSocketsStats = {
    socketsOpened: 0,
    connectionsAccepted: 0,
    messagesDelivered: 0,
    bytesDelivered: 0,
    handlerErrors: 0,
    packetsSent: 0,
    sendRefused: {},
  };
  private readonly sockets = new Map<number, SocketRecord>();
  private readonly ports = new Map<number, PortState>();
  private readonly byConnection = new Map<MspConnection, SocketRecord>();
  private sharedPort: PortState | undefined;
  private nextId = 1;
  private readonly maxSockets: number;
  private readonly maxLargeWindows: number;
  private largeWindows = 0;
  private readonly maxDataOutCalls: number;
  private readonly defaultPathPayload: number;
  private readonly log: (line: string) => void;
  private readonly endpointOptions: MspEndpointOptions | undefined;
  /** Something arrived or changed since the last processing: run again now. */
  private dirty = false;
  /** Routes changed: every connection's path estimate is read again at the next processing. */
  private pathsStale = false;
  private lastNow = 0;
  private readonly random: () => number;

  /** Called when `processing` should run soon (a datagram arrived); the owner wakes its loop. */
  onWake: (() => void) | undefined;

  constructor(
    private readonly network: MspNetwork,
    options: MspSocketsOptions = {},
  ) {
    this.random = options.random ?? (() => randomInt(0, 0x1_0000_0000) / 0x1_0000_0000);
    this.maxSockets = options.maxSockets ?? 1024;
    this.maxLargeWindows = options.maxLargeWindows ?? 8;
    this.maxDataOutCalls = options.maxDataOutCalls ?? 64;
    this.defaultPathPayload = options.defaultPathPayload ?? DEFAULT_PATH_PAYLOAD;
    this.log = options.log ?? (() => undefined);
    this.endpointOptions = options.endpoint;
  }

  // ===========================================================================================
  // Handles and set-up

  /** A new socket, initialising. */
  socket(): MspSocket {
    if (this.sockets.size >= this.maxSockets) throw new MspSocketError('EMFILE', `${this.sockets.size} sockets open, the maximum`);
    const handle: MspSocket = Object.freeze({ id: this.nextId++ });
    this.sockets.set(handle.id, {
      handle,
      phase: 'initialising',
      localPort: 0,
      remote: undefined,
      handler: undefined,
      context: undefined,
      priority: 'bulk',
      fec: undefined,
      portState: undefined,
      conn: undefined,
      inbox: [],
      offset: 0,
      announce: false,
      dataOutDue: false,
      blocked: false,
      errorState: false,
      errorReported: false,
      closing: false,
      remoteShutSeen: false,
    });
    this.stats.socketsOpened++;
    return handle;
  }

  setLocal(sock: MspSocket, addr: MspLocalAddress): void {
    const s = this.settingUp(sock, 'setLocal');
    if (addr.sid !== undefined && addr.sid !== 'primary' && addr.sid !== 'all' && !sameBytes(addr.sid, this.network.sid))
      throw new MspSocketError('EINVAL', `SID ${hex(addr.sid).slice(0, 16)}… is not this node's`);
    if (!Number.isInteger(addr.port) || addr.port < 0 || addr.port > 255) throw new MspSocketError('EINVAL', `port must be 0..255, got ${addr.port}`);
    s.localPort = addr.port;
  }

  setHandler<C>(sock: MspSocket, handler: MspHandler<C>, context?: C): void {
    const s = this.live(sock, 'setHandler');
    s.handler = handler;
    s.context = context;
  }

  /** The priority of the socket's data packets (acks always go as 'ack'); inherited by accepted sockets. */
  setPriority(sock: MspSocket, priority: MspPriority): void {
    this.live(sock, 'setPriority').priority = priority;
  }

  /**
   * Forward error correction for this socket's connection (REPAIR packets, SPEC.md): 'on',
   * 'off', or 'auto' (on while the measured loss is high). Inherited by accepted sockets; it
   * costs goodput and buys latency (a loss repaired without a round trip).
   */
  setFec(sock: MspSocket, mode: MspFecMode): void {
    const s = this.live(sock, 'setFec');
    s.fec = mode;
    s.conn?.setFecMode(mode);
  }

  /** Listens on the local port set by `setLocal` (not 0). */
  listen(sock: MspSocket): void {
    const s = this.settingUp(sock, 'listen');
    if (s.localPort === 0) throw new MspSocketError('EINVAL', 'listen needs a local port (setLocal with a port above 0)');
    const ps = this.portFor(s.localPort);
    if (ps.listener !== undefined) throw new MspSocketError('EADDRINUSE', `port ${s.localPort} already has a listener`);
    ps.listener = s;
    ps.users++;
    ps.endpoint.listen();
    s.portState = ps;
    s.phase = 'listening';
    this.dirty = true;
  }

  /** Connects to `remote`; no IO: sends are queued for the first packet. */
  connect(sock: MspSocket, remote: MspAddress): void {
    const s = this.settingUp(sock, 'connect');
    if (!(remote.sid instanceof Uint8Array) || remote.sid.length !== 32) throw new MspSocketError('EINVAL', 'the remote SID must be 32 bytes');
    if (!Number.isInteger(remote.port) || remote.port < 1 || remote.port > 255) throw new MspSocketError('EINVAL', `remote port must be 1..255, got ${remote.port}`);
    const ps = s.localPort === 0 ? this.shared() : this.portFor(s.localPort);
    const r = ps.endpoint.connect(remote.sid, remote.port, this.lastNow);
    if (!r.ok) throw new MspSocketError('EMFILE', r.message);
    ps.users++;
    s.portState = ps;
    s.localPort = ps.port;
    s.remote = { sid: remote.sid.slice(), port: remote.port };
    this.attach(s, r.connection);
  }

  // ===========================================================================================
  // Data

  /** The largest message `send` takes now: the path's payload less MSP's framing. */
  maxMessageSize(sock: MspSocket): number {
    const s = this.sockets.get(sock.id);
    const path = s?.remote ? this.network.maxPayload(s.remote.sid) : undefined;
    const limit = (path ?? this.defaultPathPayload) - MESSAGE_HEADROOM;
    const connMax = s?.conn?.maxMessageSize ?? Infinity;
    return Math.max(1, Math.min(limit, connMax));
  }

  /**
   * Queues one message (boundaries kept). Zero bytes are not sent (`bytes: 0`). Over
   * `maxMessageSize` is EBADMSG, unless `fragment` is set (then up to the connection's maximum,
   * fragmented); a full queue is EAGAIN: wait for DATA_OUT.
   */
  send(sock: MspSocket, bytes: Uint8Array, options: { fragment?: boolean } = {}): MspSocketSendResult {
    const s = this.live(sock, 'send');
    if (s.phase !== 'data' || s.conn === undefined) throw new MspSocketError('ENOTCONN', `socket ${sock.id} is ${s.phase}, not connected`);
    if (s.errorState) throw new MspSocketError('ESHUTDOWN', `socket ${sock.id} failed (${s.conn.error ?? 'error'})`);
    if (s.conn.shutdownLocal) throw new MspSocketError('ESHUTDOWN', `socket ${sock.id} was shut down for sending`);
    if (bytes.length === 0) return { ok: true, bytes: 0 };
    const max = options.fragment ? s.conn.maxMessageSize : this.maxMessageSize(sock);
    if (bytes.length > max) return { ok: false, code: 'EBADMSG', message: `message of ${bytes.length} bytes, above the maximum ${max}`, maxBytes: max };
    const r = s.conn.send(bytes, this.lastNow);
    if (r.ok) {
      this.dirty = true;
      this.onWake?.();
      return { ok: true, bytes: bytes.length };
    }
    if (r.reason === 'queue-full') {
      s.blocked = true;
      return { ok: false, code: 'EAGAIN', message: `${r.message}; wait for DATA_OUT` };
    }
    if (r.reason === 'too-large') return { ok: false, code: 'EBADMSG', message: r.message, maxBytes: s.conn.maxMessageSize };
    throw new MspSocketError('ESHUTDOWN', r.message);
  }

  /** Ends our direction after the queued messages; the socket closes by itself once both ends are done. */
  shutdown(sock: MspSocket): void {
    const s = this.live(sock, 'shutdown');
    if (s.phase !== 'data' || s.conn === undefined) throw new MspSocketError('ENOTCONN', `socket ${sock.id} is ${s.phase}, not connected`);
    s.conn.shutdown(this.lastNow);
    this.dirty = true;
    this.onWake?.();
  }

  /** Drops the socket locally (the peer gets a RESET, nothing queued is sent); CLOSED follows at the next processing. */
  close(sock: MspSocket): void {
    const s = this.sockets.get(sock.id);
    if (s === undefined || s.phase === 'closed') return;
    this.end(s);
    this.dirty = true;
    this.onWake?.();
  }

  /** Routes changed: the connections' path estimates are refreshed at the next processing. */
  pathsChanged(): void {
    this.pathsStale = true;
    this.dirty = true;
  }

  /** Asks for a `processing` soon (a reader that was full has room again). */
  kick(): void {
    this.dirty = true;
    this.onWake?.();
  }

  /** Closes every socket (each gets its CLOSED call at the next processing). */
  closeAll(): void {
    for (const s of [...this.sockets.values()]) if (s.phase !== 'closed') this.end(s);
    this.dirty = true;
  }

  // ===========================================================================================
  // Predicates and getters (safe on null and closed handles)

  isNull(sock: MspSocket): boolean {
    return sock.id === 0;
  }
  isValid(sock: MspSocket): boolean {
    const s = this.sockets.get(sock.id);
    return s !== undefined && s.phase !== 'closed';
  }
  initialising(sock: MspSocket): boolean {
    return this.sockets.get(sock.id)?.phase === 'initialising';
  }
  open(sock: MspSocket): boolean {
    return this.isValid(sock);
  }
  closed(sock: MspSocket): boolean {
    if (sock.id === 0) return false;
    const s = this.sockets.get(sock.id);
    return s === undefined ? sock.id < this.nextId : s.phase === 'closed';
  }
  listening(sock: MspSocket): boolean {
    return this.sockets.get(sock.id)?.phase === 'listening';
  }
  data(sock: MspSocket): boolean {
    return this.sockets.get(sock.id)?.phase === 'data';
  }
  /** A data socket that has heard from its peer. */
  connected(sock: MspSocket): boolean {
    const s = this.sockets.get(sock.id);
    return s?.phase === 'data' && s.conn !== undefined && s.conn.stats.packetsReceived > 0 && !s.errorState;
  }
  shutdownLocal(sock: MspSocket): boolean {
    return this.sockets.get(sock.id)?.conn?.shutdownLocal ?? false;
  }
  shutdownRemote(sock: MspSocket): boolean {
    const s = this.sockets.get(sock.id);
    return s?.conn !== undefined && s.conn.shutdownRemote && s.inbox.length === 0 && s.conn.receivedMessages === 0;
  }
  getLocal(sock: MspSocket): MspAddress | undefined {
    const s = this.sockets.get(sock.id);
    if (s === undefined) return undefined;
    return { sid: this.network.sid, port: s.localPort };
  }
  getRemote(sock: MspSocket): MspAddress | undefined {
    const r = this.sockets.get(sock.id)?.remote;
    return r ? { sid: r.sid, port: r.port } : undefined;
  }
  getState(sock: MspSocket): number {
    const s = this.sockets.get(sock.id);
    if (s === undefined) return sock.id === 0 ? MspState.UNINITIALISED : MspState.CLOSED;
    return this.stateOf(s);
  }
  /** The connection under a data socket (statistics, RTT), for diagnostics. */
  connectionOf(sock: MspSocket): MspConnection | undefined {
    return this.sockets.get(sock.id)?.conn;
  }
  /** Open sockets (not yet given their CLOSED call). */
  get size(): number {
    return this.sockets.size;
  }

  // ===========================================================================================
  // Processing

  /**
   * Runs everything due at `now`: connection timers, new connections, deliveries, DATA_OUT,
   * errors and closes (the handlers), then pulls packets while the network takes them. Returns
   * the next time it must be called (undefined: only when something happens).
   */
  processing(now: number): number | undefined {
    this.lastNow = now;
    this.dirty = false;
    for (const ps of this.ports.values()) ps.endpoint.poll(now);
    this.acceptNew();
    if (this.pathsStale) {
      this.pathsStale = false;
      for (const s of this.sockets.values()) if (s.conn !== undefined && s.phase === 'data') this.estimatePath(s);
    }
    for (const s of [...this.sockets.values()]) this.serve(s);
    this.transmit(now);
    this.releasePorts();
    return this.nextDeadline(now);
  }

  /** The next time `processing` must run; `now` when something is already waiting. */
  nextDeadline(now: number): number | undefined {
    if (this.dirty) return now;
    let d: number | undefined;
    for (const ps of this.ports.values()) {
      const t = ps.endpoint.nextDeadline(now);
      if (t !== undefined && (d === undefined || t < d)) d = t;
    }
    for (const s of this.sockets.values()) if (s.closing || s.announce || (s.errorState && !s.errorReported)) return now;
    return d;
  }

  // ===========================================================================================
  // Internals

  /** The record of a socket still being set up, for `call`; a typed error otherwise. */
  private settingUp(sock: MspSocket, call: string): SocketRecord {
    const s = this.live(sock, call);
    if (s.phase !== 'initialising') throw new MspSocketError('EINVAL', `${call} on socket ${sock.id}, which is already ${s.phase === 'data' ? 'connected' : s.phase}`);
    return s;
  }

  private live(sock: MspSocket, call: string): SocketRecord {
    const s = this.sockets.get(sock.id);
    if (s === undefined || s.phase === 'closed') throw new MspSocketError('EBADF', `${call} on ${sock.id === 0 ? 'the null socket' : `socket ${sock.id}, which is closed`}`);
    return s;
  }

  private portFor(port: number): PortState {
    const have = this.ports.get(port);
    if (have !== undefined) return have;
    return this.bindPort(port, false);
  }

  private shared(): PortState {
    if (this.sharedPort !== undefined && this.ports.get(this.sharedPort.port) === this.sharedPort) return this.sharedPort;
    this.sharedPort = this.bindPort(0, true);
    return this.sharedPort;
  }

  private bindPort(port: number, shared: boolean): PortState {
    let ps: PortState | undefined;
    let dgram: MspDatagramPort;
    try {
      dgram = this.network.bind(port, (fromSid, fromPort, bytes) => {
        if (ps === undefined) return;
        ps.endpoint.handleDatagram(fromSid, fromPort, bytes, this.lastNow);
        this.dirty = true;
        this.onWake?.();
      });
    } catch (err) {
      // A RangeError is a port the network does not give out (reserved, out of range).
      throw new MspSocketError(err instanceof RangeError ? 'EINVAL' : 'EADDRINUSE', `cannot bind port ${port || '(any)'}: ${(err as Error)?.message ?? String(err)}`);
    }
    ps = { port: dgram.port, dgram, endpoint: new MspEndpoint({ localPort: dgram.port, random: this.random, ...(this.endpointOptions ? { options: this.endpointOptions } : {}) }), listener: undefined, shared, users: 0 };
    this.ports.set(dgram.port, ps);
    return ps;
  }

  private attach(s: SocketRecord, conn: MspConnection): void {
    s.conn = conn;
    s.phase = 'data';
    if (s.fec !== undefined) conn.setFecMode(s.fec);
    s.largeWindow = this.largeWindows < this.maxLargeWindows;
    if (s.largeWindow) this.largeWindows++;
    conn.setLargeWindow(s.largeWindow);
    this.estimatePath(s);
    s.dataOutDue = true;
    this.byConnection.set(conn, s);
    this.dirty = true;
  }

  private estimatePath(s: SocketRecord): void {
    if (s.remote === undefined || s.conn === undefined || this.network.pathEstimate === undefined) return;
    const p = this.network.pathEstimate(s.remote.sid);
    if (p !== undefined) s.conn.setPathEstimate(p);
  }

  private acceptNew(): void {
    for (const ps of this.ports.values()) {
      for (let conn = ps.endpoint.accept(); conn !== undefined; conn = ps.endpoint.accept()) {
        const listener = ps.listener;
        if (listener === undefined || listener.phase !== 'listening' || this.sockets.size >= this.maxSockets) {
          conn.close();
          continue;
        }
        const handle = this.socket();
        const s = this.sockets.get(handle.id)!;
        s.localPort = ps.port;
        s.handler = listener.handler;
        s.context = listener.context;
        s.priority = listener.priority;
        s.fec = listener.fec;
        s.portState = ps;
        ps.users++;
        const peer = ps.endpoint.peerOf(conn);
        if (peer) s.remote = { sid: peer.sid.slice(), port: peer.port };
        s.announce = true;
        this.attach(s, conn);
        this.stats.connectionsAccepted++;
      }
    }
  }

  private stateOf(s: SocketRecord, extra = 0): number {
    let st = extra;
    if (s.phase === 'listening') st |= MspState.LISTENING;
    const c = s.conn;
    if (c !== undefined) {
      if (c.shutdownLocal) st |= MspState.SHUTDOWN_LOCAL;
      // The peer shut down and nothing follows: the message offered now is the last (or, in a
      // call without data, every message was consumed).
      const waiting = s.inbox.length + c.receivedMessages;
      if (c.shutdownRemote && (extra & MspState.RECEIVED_DATA ? waiting <= 1 : waiting === 0)) st |= MspState.SHUTDOWN_REMOTE;
      if (s.phase === 'data' && !s.errorState && !c.shutdownLocal && this.hasRoom(s)) st |= MspState.DATA_OUT;
    }
    if (s.errorState) st |= MspState.ERROR;
    if (s.phase === 'closed') st |= MspState.CLOSED;
    return st;
  }

  /** Room in the send queue for a message of the maximum size. */
  private hasRoom(s: SocketRecord): boolean {
    const c = s.conn!;
    if (c.shutdownLocal || (c.state !== 'open' && c.state !== 'closing')) return false;
    return c.queuedBytes + this.maxMessageSize(s.handle) <= c.sendQueueCap;
  }

  /** Calls the handler; an exception closes the socket with ERROR. Returns the handler's number, or undefined when it threw. */
  private call(s: SocketRecord, state: number, payload: Uint8Array | undefined): number | undefined {
    const h = s.handler;
    if (h === undefined) return payload?.length ?? 0;
    try {
      const r = h(s.handle, state, payload, s.context);
      return typeof r === 'number' && Number.isFinite(r) ? r : 0;
    } catch (err) {
      this.stats.handlerErrors++;
      this.log(`msp: the handler of socket ${s.handle.id} threw (${(err as Error)?.message ?? String(err)}); the socket is closed with ERROR`);
      if (s.phase !== 'closed') {
        s.errorState = true;
        s.errorReported = true; // the throw was the error; only CLOSED follows
        this.end(s);
      }
      return undefined;
    }
  }

  private serve(s: SocketRecord): void {
    if (s.phase === 'closed') {
      if (s.closing) this.finish(s);
      return;
    }
    if (s.phase === 'listening' || s.phase === 'initialising') return;
    const c = s.conn!;
    if (s.announce) {
      s.announce = false;
      if (this.call(s, this.stateOf(s), undefined) === undefined) return this.finish(s);
    }
    // Received messages, in order; a partly consumed one blocks the rest. Once the peer's FIN is
    // in, nothing more can arrive: take all, so SHUTDOWN_REMOTE marks the last message truly.
    if (c.shutdownRemote && s.inbox.length > 0) s.inbox.push(...c.takeReceived());
    for (;;) {
      if (s.inbox.length === 0) {
        const got = c.takeReceived();
        if (got.length === 0) break;
        s.inbox = got;
        s.offset = 0;
      }
      const msg = s.inbox[0]!;
      const payload = s.offset === 0 ? msg : msg.subarray(s.offset);
      const state = this.stateOf(s, MspState.RECEIVED_DATA);
      if (state & MspState.SHUTDOWN_REMOTE) s.remoteShutSeen = true;
      const used = this.call(s, state, payload);
      if (used === undefined) return this.finish(s);
      if (ended(s)) return this.finish(s);
      const n = Math.max(0, Math.min(Math.floor(used), payload.length));
      this.stats.bytesDelivered += n;
      if (n < payload.length) {
        s.offset += n;
        break;
      }
      s.inbox.shift();
      s.offset = 0;
      this.stats.messagesDelivered++;
    }
    // The peer shut down after the last message was taken: one call says so.
    if (c.shutdownRemote && !s.remoteShutSeen && s.inbox.length === 0 && c.receivedMessages === 0 && c.state !== 'error') {
      s.remoteShutSeen = true;
      if (this.call(s, this.stateOf(s), undefined) === undefined) return this.finish(s);
      if (ended(s)) return this.finish(s);
    }
    // Room to send.
    if (!s.errorState && !c.shutdownLocal && (c.state === 'open' || c.state === 'closing')) {
      if (s.blocked && this.hasRoom(s)) {
        s.blocked = false;
        s.dataOutDue = true;
      }
      for (let i = 0; s.dataOutDue && i < this.maxDataOutCalls; i++) {
        if (!this.hasRoom(s)) {
          // DATA_OUT comes again when room returns.
          s.blocked = true;
          s.dataOutDue = false;
          break;
        }
        const before = c.queuedBytes;
        s.dataOutDue = false;
        if (this.call(s, this.stateOf(s), undefined) === undefined) return this.finish(s);
        if (ended(s)) return this.finish(s);
        if (c.queuedBytes > before && !c.shutdownLocal) s.dataOutDue = true;
      }
      if (s.dataOutDue) this.dirty = true; // the handler is still producing: another pass
    }
    // Ends.
    if (c.state === 'error' && !s.errorState) {
      s.errorState = true;
      this.log(`msp: socket ${s.handle.id} to ${s.remote ? hex(s.remote.sid).slice(0, 16) : '?'}…:${s.remote?.port ?? '?'} failed: ${c.error}`);
    }
    if (s.errorState && !s.errorReported) {
      s.errorReported = true;
      if (this.call(s, this.stateOf(s), undefined) === undefined) return this.finish(s);
      if (!ended(s)) this.end(s);
      return this.finish(s);
    }
    if (c.state === 'closed' && s.inbox.length === 0) {
      this.end(s);
      this.finish(s);
    }
  }

  /** Marks the socket closed (releasing its connection); the CLOSED call is due. */
  private end(s: SocketRecord): void {
    if (s.phase === 'closed') return;
    const wasListening = s.phase === 'listening';
    s.phase = 'closed';
    s.closing = true;
    s.inbox = [];
    if (s.conn !== undefined) {
      if (s.conn.state === 'open' || s.conn.state === 'closing') s.conn.close();
      this.byConnection.delete(s.conn);
      if (s.largeWindow) {
        s.largeWindow = false;
        this.largeWindows--;
      }
    }
    const ps = s.portState;
    if (ps !== undefined) {
      ps.users--;
      if (wasListening && ps.listener === s) {
        ps.listener = undefined;
        ps.endpoint.accepting = false;
        // Connections that arrived for the listener and were never announced are refused.
        for (let conn = ps.endpoint.accept(); conn !== undefined; conn = ps.endpoint.accept()) conn.close();
      }
    }
  }

  /** The CLOSED call, exactly once; then the handle is closed for good. */
  private finish(s: SocketRecord): void {
    if (s.phase !== 'closed') this.end(s);
    if (!s.closing) return;
    s.closing = false;
    this.sockets.delete(s.handle.id);
    this.call(s, MspState.CLOSED | (s.errorState ? MspState.ERROR : 0), undefined);
  }

  private transmit(now: number): void {
    const net = this.network;
    const priorityOf = (conn: MspConnection | undefined): MspPriority => (conn ? (this.byConnection.get(conn)?.priority ?? 'bulk') : 'bulk');
    const budget = (sid: Uint8Array): number | undefined => net.maxPayload(sid);
    const ready = (sid: Uint8Array, _n: number, conn: MspConnection | undefined): boolean => net.ready(sid, conn === undefined ? 'ack' : priorityOf(conn));
    for (const ps of this.ports.values()) {
      let n = 0;
      // Each packet goes into the first hop's pacer before `ready` is asked about the next.
      const send = (o: MspOutgoing): void => {
        n++;
        const numbered = (o.bytes[0]! & FLAG_NUMBERED) !== 0;
        const r = ps.dgram.send(o.sid, o.port, o.bytes, numbered ? priorityOf(o.connection) : 'ack');
        if (r.ok) this.stats.packetsSent++;
        else this.stats.sendRefused[r.reason] = (this.stats.sendRefused[r.reason] ?? 0) + 1;
      };
      ps.endpoint.pollTransmit(now, budget, ready, MAX_PACKETS_PER_PROCESSING, send);
      if (n === MAX_PACKETS_PER_PROCESSING) this.dirty = true; // more may be waiting: the next pass takes them
    }
  }


  private releasePorts(): void {
    for (const ps of [...this.ports.values()]) {
      if (ps.users > 0 || ps.listener !== undefined || ps.endpoint.size > 0) continue;
      this.ports.delete(ps.port);
      if (this.sharedPort === ps) this.sharedPort = undefined;
      ps.dgram.close();
    }
  }
}

/** The phase read through a call, so that the compiler does not narrow it across handler calls. */
function ended(s: SocketRecord): boolean {
  return s.phase === 'closed';
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function hex(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');
}
