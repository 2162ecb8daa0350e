/**
 * The app API: a Messi server (meshgw.proto) in front of the mesh node, for LAN apps and the CLI.
 *
 * It is a GatewayService: `start(gateway)` (inside `gateway.start()`) attaches it to the host
 * API, MSP and the gateway clock; `listen()` then opens the TCP port (the daemon does this after
 * the gateway is up, so a port in use is a clear runtime error). Its `poll` runs in the one loop:
 * ping timeouts, the authentication deadline, Strokkur sends (chunks handed over while the first
 * hop's pacer takes them) and the airtime-low checks.
 *
 * Access. On loopback no token is needed unless one is configured; on any other address (or with
 * `requireToken`) the first message must be `auth_req` with the token (compared in constant
 * time); anything else, or nothing within AUTH_TIMEOUT_MS, disconnects the client without an
 * answer. Refusals are logged at most once per REFUSAL_LOG_INTERVAL_MS, with a count.
 *
 * Requests. Every request gets exactly one answer: its `_rsp`, or `error_rsp` with a code from
 * the .proto's list. Bad fields are "bad-request"; a cap is "limit"; a handler that throws is
 * "internal" (logged). Nothing a client sends can throw out of here. Stream messages without a
 * request id (`stream_data`, `stream_credit`, `stream_shutdown`, `stream_close`) for a stream the
 * client does not hold are ignored (a stream may just have closed): counted in `stats.ignored`.
 *
 * Decisions where the .proto leaves room:
 * - ping: a datagram of max(size, 8) bytes (size 0: 32) from the API's ephemeral port to the
 *   peer's ECHO_PORT, matched by its first 8 bytes (a random token) and the sender's SID; rtt on
 *   the gateway clock; `hops` is the route's at send time. A timeout is `error_rsp` "closed"
 *   (the .proto has no "timeout" code), its message starting with "timeout".
 * - streams: a `stream_data` of at most `max_message` bytes is one MSP message (boundaries
 *   kept); a larger one is split into messages of `max_message`. Data towards the client goes in
 *   `stream_data` of at most STREAM_DATA_CHUNK bytes, only within the credit the client granted;
 *   without credit the MSP handler consumes nothing, so MSP's receive window closes and the remote
 *   sender stops. The server grants STREAM_INITIAL_CREDIT at open/accept and re-grants what MSP
 *   took (batched: at a quarter of the initial credit, or when its queue is empty). Data beyond
 *   the credit closes the stream ("credit").
 * - Strokkur: sent by the sans-IO SendState (src/strokkur/send.ts) so the uuid is known for
 *   `strokkur_send_rsp`; chunk size from the path MTU and redundancy from the loss the mesh
 *   transport (src/strokkur/mesh.ts) estimates; progress at most every 1/16th of the chunks.
 *   Listening lasts until the client disconnects (the .proto has no unlisten). All listeners
 *   share one receiver (keyed by port and sender) capped at STROKKUR_RECEIVE_STATES messages and
 *   STROKKUR_RECEIVE_BUFFER bytes; a `strokkur_ind` of up to 4 MiB needs a client whose Messi
 *   frame cap allows it (API_MAX_FRAME_BYTES).
 * - caps (API_LIMITS): a client beyond the client cap gets "limit" for its first request and is
 *   disconnected; an accept beyond the stream cap is refused (the remote gets a RESET); a client
 *   whose unread output passes `bufferedBytesPerClient` is dropped by the Messi server.
 * - the API binds two ephemeral mesh ports at start (ping, Strokkur sends): usually 16 and 17.
 * - neighbours: only those whose SID is known (a node id is not a name people see), with the
 *   RSSI/SNR of the last HELLO heard where the link reports them, and how long ago it came.
 * - interface state "opening" is reported as "connecting" (the .proto's word).
 * - frames_refused: frames the link threw for or dropped, plus the pacer's refusals seen since
 *   the API started (the gateway's 'refused' events).
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { isLoopback } from '../gateway/config.js';
import type { Gateway, GatewayEvent, GatewayService } from '../gateway/gateway.js';
import type { MeshHost } from '../gateway/host.js';
import type { SimClock } from '../link/clock.js';
import type { MeshNode, MeshSocket, SendResult } from '../mesh/node.js';
import type { Route } from '../mesh/routing.js';
import { MessiServer, type MessiClientHandle, type MessiMessage } from '../messi/index.js';
import type { MspService } from '../msp/service.js';
import { MspSocketError, MspState, type MspSocket, type MspSockets } from '../msp/sockets.js';
import { CHUNK_OVERHEAD, HASH_LENGTH, MAX_MESSAGE, MAX_REDUNDANT_ROWS, MAX_ROWS, chunkSizeFor, decodeChunk, sourceChunks } from '../strokkur/chunk.js';
import { MeshStrokkurTransport } from '../strokkur/mesh.js';
import { Receiver } from '../strokkur/receive.js';
import { SendState } from '../strokkur/send.js';
import { chooseRedundancy } from '../strokkur/strokkur.js';
import { ECHO_PORT } from './echo.js';
import { API_MAX_FRAME_BYTES, meshgwProtocol, meshgwVersion } from './protocol.js';

/** The API's default TCP port. */
export const API_DEFAULT_PORT = 7840;

/** The caps (ApiLimits' defaults). Each one refused is `error_rsp` "limit". */
export const API_LIMITS = {
  /** Connected clients; the next connection is closed at once (Messi server's maxClients). */
  clients: 64,
  // (A client beyond it gets "limit" for its first request and is disconnected; beyond it by
  // OVER_LIMIT_SLACK more, connections are closed at once.)
  /** Open MSP streams per client (opened or accepted); an accept beyond it is refused (RESET). */
  streamsPerClient: 64,
  /** Ports per client: datagram binds, stream listeners and Strokkur listeners together. */
  portsPerClient: 16,
  /** Pings waiting for their echo, per client. */
  pingsPerClient: 16,
  /** Strokkur messages being sent, per client. */
  strokkurSendsPerClient: 4,
  /**
   * Bytes queued to one client and not yet taken by its socket (Messi server's maxOutputBytes):
   * a client that does not read is dropped ("slow-reader"). Room for one 4 MiB Strokkur message.
   */
  bufferedBytesPerClient: 8 * 1024 * 1024,
} as const;

export type ApiLimits = { -readonly [K in keyof typeof API_LIMITS]: number };

export { API_MAX_FRAME_BYTES } from './protocol.js';
/** Credit the server grants for a stream's client data at open/accept. */
export const STREAM_INITIAL_CREDIT = 64 * 1024;
/** Largest `stream_data` the server sends. */
export const STREAM_DATA_CHUNK = 16 * 1024;
/** A client that must authenticate and has not within this is disconnected. */
export const AUTH_TIMEOUT_MS = 10_000;
/** At most one log line about refused clients per this interval. */
export const REFUSAL_LOG_INTERVAL_MS = 10_000;
/** Lines of the Messi server's own log (dropped connections) per that interval at most. */
const SERVER_LOG_BURST = 10;
export const PING_DEFAULT_TIMEOUT_MS = 10_000;
export const PING_MAX_TIMEOUT_MS = 60_000;
/** Ping payload when `size` is 0; a ping is at least PING_TOKEN_BYTES. */
export const PING_DEFAULT_SIZE = 32;
export const PING_TOKEN_BYTES = 8;
/** How often airtime budgets are checked while someone subscribed to "airtime-low". */
export const AIRTIME_CHECK_MS = 1000;
/** Strokkur chunks handed to the mesh per loop pass at most (then the pass repeats). */
const STROKKUR_CHUNKS_PER_POLL = 64;
/** A chunk refused for a full queue is offered again after this, ms. */
const STROKKUR_RETRY_MS = 2;
/** The receiver of every Strokkur listener of the API (one, keyed by port and source): its caps. */
export const STROKKUR_RECEIVE_STATES = 64;
export const STROKKUR_RECEIVE_BUFFER = 32 * 1024 * 1024;
/** Connections beyond the client cap are held this long for their "limit" answer, at most. */
const OVER_LIMIT_SLACK = 8;

export const API_EVENTS = ['neighbour-up', 'neighbour-down', 'route-changed', 'interface-state', 'airtime-low', 'frame-refused'] as const;

type ErrorCode = 'bad-request' | 'unauthorized' | 'no-route' | 'no-key' | 'too-large' | 'queue-full' | 'port-in-use' | 'not-found' | 'limit' | 'closed' | 'timeout' | 'internal';

/** A request refused with a typed code (thrown by handlers, answered as `error_rsp`). */
class ApiError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly maxBytes?: number,
  ) {
    super(message);
  }
}

export interface ApiServiceOptions {
  /** Listening address, e.g. 127.0.0.1. */
  host: string;
  /** TCP port; 0 for an ephemeral one. */
  port: number;
  /** The shared secret of `auth_req`. */
  token?: string;
  /** Default: when a token is given, or the address is not loopback. Needs a token. */
  requireToken?: boolean;
  /** MSP of the same gateway (streams). */
  msp: MspService;
  /** Whether the node runs on simulated radios only (status). */
  simulated?: boolean;
  limits?: Partial<ApiLimits>;
  log?: (line: string) => void;
}

interface StreamRec {
  readonly id: number;
  readonly client: ClientState;
  readonly sock: MspSocket;
  /** Bytes we may still send to the client (its grants minus what we sent). */
  toClient: number;
  /** Bytes the client may still send us. */
  fromClient: number;
  /** Client data waiting for MSP, as messages of at most maxMessage. */
  pending: Uint8Array[];
  pendingBytes: number;
  /** Bytes MSP took since the last grant. */
  ungranted: number;
  maxMessage: number;
  shutdownAsked: boolean;
  shutdownDone: boolean;
  endSent: boolean;
  /** Why we closed it ("closed" by the client, "credit", "limit"). */
  closeReason: string | undefined;
  /** The connection's error ("timeout", "reset") when it failed. */
  error: string | undefined;
}

interface ListenerRec {
  readonly client: ClientState;
  readonly port: number;
  readonly sock: MspSocket;
  readonly credit: number;
}

interface PingRec {
  readonly client: ClientState;
  readonly requestId: number;
  readonly token: string;
  readonly sid: Uint8Array;
  readonly sentAt: number;
  readonly deadline: number;
  readonly hops: number;
  readonly timeoutMs: number;
}

interface StrokkurJob {
  readonly client: ClientState;
  readonly uuid: Uint8Array;
  readonly sid: Uint8Array;
  readonly port: number;
  readonly state: SendState;
  readonly total: number;
  readonly every: number;
  sent: number;
  /** A chunk the mesh refused for a full queue, offered again at `retryAt`. */
  held: Uint8Array | undefined;
  retryAt: number;
}

interface ClientState {
  readonly handle: MessiClientHandle;
  /** Beyond the client cap: its first request is answered "limit", then it is disconnected. */
  readonly over: boolean;
  authed: boolean;
  readonly authDeadline: number;
  gone: boolean;
  /** Subscribed events (undefined: none). */
  events: Set<string> | undefined;
  airtimeLowPercent: number;
  /** Interfaces below the airtime threshold already reported. */
  airtimeLow: Set<string>;
  readonly streams: Map<number, StreamRec>;
  nextStreamId: number;
  readonly listeners: Map<number, ListenerRec>;
  readonly datagrams: Map<number, MeshSocket>;
  readonly strokkurListens: Map<number, MeshSocket>;
  readonly pings: Set<PingRec>;
  readonly sends: Set<StrokkurJob>;
}

export interface ApiStats {
  connected: number;
  refusedAuth: number;
  requests: number;
  errors: Record<string, number>;
  internalErrors: number;
  ignored: number;
}

/** The stream handler's context: the stream, or the listener whose accepts it announces. */
type HandlerContext = StreamRec | ListenerRec;

export class ApiService implements GatewayService {
  readonly name = 'api';
  readonly stats: ApiStats = { connected: 0, refusedAuth: 0, requests: 0, errors: {}, internalErrors: 0, ignored: 0 };
  readonly limits: ApiLimits;
  private readonly log: (line: string) => void;
  private readonly requireToken: boolean;
  private readonly tokenDigest: Buffer | undefined;
  private gateway: Gateway | undefined;
  private server: MessiServer | undefined;
  private readonly clients = new Map<number, ClientState>();
  private readonly pings = new Map<string, PingRec>();
  private readonly jobs: StrokkurJob[] = [];
  private readonly receiver = new Receiver({ maxStates: STROKKUR_RECEIVE_STATES, maxBufferedBytes: STROKKUR_RECEIVE_BUFFER });
  /** Clients within the cap (the others only wait for their "limit" answer). */
  private admitted = 0;
  private strokkurBlocked = false;
  private pingSocket: MeshSocket | undefined;
  private strokkurSocket: MeshSocket | undefined;
  private loss: MeshStrokkurTransport | undefined;
  private startedAt = 0;
  private nextAirtimeCheck = Infinity;
  /** Pacer refusals per interface since start (the gateway's 'refused' events). */
  private readonly refusedByPacer = new Map<string, number>();
  private refusalsUnlogged = 0;
  private lastRefused = '';
  private serverLogWindow = -Infinity;
  private serverLogLines = 0;
  private serverLogSuppressed = 0;
  private refusalLoggedAt = -Infinity;
  private listening: { host: string; port: number } | undefined;

  constructor(private readonly options: ApiServiceOptions) {
    this.log = options.log ?? (() => undefined);
    this.limits = { ...API_LIMITS, ...options.limits };
    this.requireToken = options.requireToken ?? (options.token !== undefined || !isLoopback(options.host));
    if (this.requireToken && (options.token === undefined || options.token === '')) {
      throw new Error(`the API on ${options.host} needs a token (--api-token)`);
    }
    this.tokenDigest = options.token !== undefined ? digest(options.token) : undefined;
  }

  /** Where the API listens (after `listen`). */
  /** Clients connected now. */
  get clientCount(): number {
    return this.clients.size;
  }

  get address(): { host: string; port: number } | undefined {
    return this.listening;
  }

  // ===========================================================================================
  // Life cycle

  start(gateway: Gateway): void {
    const host = gateway.host;
    if (host === undefined) throw new Error('the API needs a gateway with a mesh node');
    this.gateway = gateway;
    this.startedAt = gateway.clock.now();
    this.pingSocket = host.bind(0, { priority: 'interactive' });
    this.pingSocket.on('message', (from, port, bytes) => this.onEcho(from, port, bytes));
    this.strokkurSocket = host.bind(0);
    this.loss = new MeshStrokkurTransport(host.node, this.strokkurSocket);
    host.on('ready', () => {
      if (this.jobs.length === 0) return;
      this.strokkurBlocked = false;
      gateway.loop.wake();
    });
    host.on('neighbour-up', (id, iface) => this.nodeEvent('neighbour-up', id, iface));
    host.on('neighbour-down', (id, iface) => this.nodeEvent('neighbour-down', id, iface));
    host.on('route-changed', (destination, route) => this.routeEvent(destination, route));
  }

  /** Opens the TCP port. Throws (e.g. EADDRINUSE) with the address in the message. */
  async listen(): Promise<{ host: string; port: number }> {
    const gateway = this.need();
    const server = new MessiServer({
      protocol: meshgwProtocol(),
      host: this.options.host,
      port: this.options.port,
      maxFrameBytes: API_MAX_FRAME_BYTES,
      maxOutputBytes: this.limits.bufferedBytesPerClient,
      maxClients: this.limits.clients + OVER_LIMIT_SLACK,
      clock: gateway.clock,
      log: (line) => this.serverLog(line),
    });
    server.on('client-connected', (c) => this.onConnect(c));
    server.on('client-disconnected', (c, reason, detail) => this.onDisconnect(c, reason, detail));
    server.on('message', (c, m) => this.onMessage(c, m));
    // A failed listen is thrown below; errors after that are logged.
    server.on('error', (e) => {
      if (this.server === server) this.log(`api: server error: ${e.message}`);
    });
    try {
      this.listening = await server.listen();
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      const where = `${this.options.host}:${this.options.port}`;
      throw new Error(e.code === 'EADDRINUSE' ? `cannot listen for the API on ${where}: the address is in use (--api HOST:PORT or --api off)` : `cannot listen for the API on ${where}: ${e.message}`, { cause: err });
    }
    this.server = server;
    return this.listening;
  }

  async stop(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    if (server) await server.close();
    for (const c of [...this.clients.values()]) this.release(c);
    this.pingSocket?.close();
    this.strokkurSocket?.close();
  }

  poll(now: number): void {
    for (const p of [...this.pings.values()]) {
      if (now < p.deadline) continue;
      this.pings.delete(p.token);
      p.client.pings.delete(p);
      this.error(p.client, p.requestId, new ApiError('timeout', `no echo from ${hex(p.sid).slice(0, 16)}… within ${p.timeoutMs} ms`));
    }
    for (const c of [...this.clients.values()]) {
      if ((!c.authed || c.over) && now >= c.authDeadline) {
        if (c.over) this.dropOver(c);
        else this.refuse(c, 'no auth_req in time');
      }
    }
    this.pumpStrokkur(now);
    if (now >= this.nextAirtimeCheck) this.checkAirtime(now);
    if (this.refusalsUnlogged > 0 && now - this.refusalLoggedAt >= REFUSAL_LOG_INTERVAL_MS) this.logRefusals(now);
  }

  nextDeadline(now: number): number | undefined {
    let d = Infinity;
    for (const p of this.pings.values()) d = Math.min(d, p.deadline);
    for (const c of this.clients.values()) if (!c.authed || c.over) d = Math.min(d, c.authDeadline);
    if (this.jobs.length > 0 && !this.strokkurBlocked) d = now;
    for (const j of this.jobs) if (j.held !== undefined) d = Math.min(d, j.retryAt);
    d = Math.min(d, this.nextAirtimeCheck);
    if (this.refusalsUnlogged > 0) d = Math.min(d, this.refusalLoggedAt + REFUSAL_LOG_INTERVAL_MS);
    return d === Infinity ? undefined : Math.max(d, now);
  }

  /** The gateway's events (the daemon passes them on): interface state, refusals. */
  handleGatewayEvent(e: GatewayEvent): void {
    if (this.gateway === undefined) return; // links report their state before the services start
    if (e.event === 'state') {
      this.broadcast('interface-state', { interface: e.interface, state: linkState(e.state), reason: e.reason ?? '' });
    } else if (e.event === 'refused') {
      this.refusedByPacer.set(e.interface, (this.refusedByPacer.get(e.interface) ?? 0) + 1);
      this.broadcast('frame-refused', { interface: e.interface, reason: e.reason });
    }
  }

  // ===========================================================================================
  // Clients

  private need(): Gateway {
    if (this.gateway === undefined) throw new Error('the API is not started: pass it to a Gateway and start that');
    return this.gateway;
  }

  private get host(): MeshHost {
    return this.need().host!;
  }

  private get node(): MeshNode {
    return this.host.node;
  }

  private get clock(): SimClock {
    return this.need().clock;
  }

  private get sockets(): MspSockets {
    return this.options.msp.sockets;
  }

  private onConnect(handle: MessiClientHandle): void {
    const now = this.clock.now();
    const over = this.admitted >= this.limits.clients;
    if (!over) this.admitted++;
    this.clients.set(handle.id, {
      handle,
      over,
      authed: !this.requireToken,
      authDeadline: now + AUTH_TIMEOUT_MS,
      gone: false,
      events: undefined,
      airtimeLowPercent: 0,
      airtimeLow: new Set(),
      streams: new Map(),
      nextStreamId: 1,
      listeners: new Map(),
      datagrams: new Map(),
      strokkurListens: new Map(),
      pings: new Set(),
      sends: new Set(),
    });
    this.stats.connected++;
    if (this.requireToken || over) this.need().loop.wake(); // the auth deadline
  }

  private onDisconnect(handle: MessiClientHandle, _reason: string, _detail: string): void {
    const c = this.clients.get(handle.id);
    if (c) this.release(c);
  }

  /** Frees everything a client held: streams closed, ports unbound, listeners removed. */
  private release(c: ClientState): void {
    if (c.gone) return;
    c.gone = true;
    this.clients.delete(c.handle.id);
    if (!c.over) this.admitted--;
    for (const s of c.streams.values()) this.closeSock(s.sock);
    c.streams.clear();
    for (const l of c.listeners.values()) this.closeSock(l.sock);
    c.listeners.clear();
    for (const s of c.datagrams.values()) s.close();
    c.datagrams.clear();
    for (const s of c.strokkurListens.values()) s.close();
    c.strokkurListens.clear();
    for (const p of c.pings) this.pings.delete(p.token);
    c.pings.clear();
    for (const j of c.sends) {
      const i = this.jobs.indexOf(j);
      if (i >= 0) this.jobs.splice(i, 1);
    }
    c.sends.clear();
    this.updateAirtimeCheck();
  }

  private closeSock(sock: MspSocket): void {
    try {
      this.sockets.close(sock);
    } catch {
      // Already gone.
    }
  }

  /**
   * The Messi server's lines (one per refused or dropped connection): a flood of connections
   * must not flood the log, so at most SERVER_LOG_BURST lines per REFUSAL_LOG_INTERVAL_MS, then
   * one line with how many were left out. Our own "not authorized" disconnects are counted by
   * `refuse` instead.
   */
  private serverLog(line: string): void {
    if (line.endsWith(': not authorized') || line.endsWith(': too many clients')) return;
    const now = this.clock.now();
    if (now - this.serverLogWindow >= REFUSAL_LOG_INTERVAL_MS) {
      if (this.serverLogSuppressed > 0) this.log(`api: ${this.serverLogSuppressed} more messi log lines left out in the last ${REFUSAL_LOG_INTERVAL_MS / 1000} s`);
      this.serverLogWindow = now;
      this.serverLogLines = 0;
      this.serverLogSuppressed = 0;
    }
    if (this.serverLogLines++ < SERVER_LOG_BURST) this.log(line);
    else this.serverLogSuppressed++;
  }

  /** One line for the refusals since the last one (at most one per REFUSAL_LOG_INTERVAL_MS). */
  private logRefusals(now: number): void {
    this.log(`api: refused ${this.refusalsUnlogged} client(s) without the right token (last: ${this.lastRefused})`);
    this.refusalLoggedAt = now;
    this.refusalsUnlogged = 0;
  }

  private refuse(c: ClientState, why: string): void {
    this.stats.refusedAuth++;
    this.refusalsUnlogged++;
    const now = this.clock.now();
    this.lastRefused = `${c.handle.remoteAddress}:${c.handle.remotePort}, ${why}`;
    if (now - this.refusalLoggedAt >= REFUSAL_LOG_INTERVAL_MS) this.logRefusals(now);
    else this.need().loop.wake(); // the deadline of the next line
    this.release(c);
    this.server?.disconnect(c.handle, 'not authorized');
  }

  private dropOver(c: ClientState): void {
    this.serverLog(`api: client ${c.handle.remoteAddress}:${c.handle.remotePort} refused: ${this.limits.clients} clients already connected`);
    this.release(c);
    this.server?.disconnect(c.handle, 'too many clients');
  }

  private send(c: ClientState, type: string, body: Record<string, unknown>): void {
    if (c.gone || this.server === undefined) return;
    try {
      this.server.send(c.handle, { type, body });
    } catch (err) {
      this.stats.internalErrors++;
      this.log(`api: could not encode ${type}: ${(err as Error)?.message ?? String(err)}`);
    }
  }

  private error(c: ClientState, requestId: number, e: ApiError): void {
    this.stats.errors[e.code] = (this.stats.errors[e.code] ?? 0) + 1;
    this.send(c, 'error_rsp', { request_id: requestId, code: e.code, message: e.message, ...(e.maxBytes !== undefined ? { max_bytes: e.maxBytes } : {}) });
  }

  private onMessage(handle: MessiClientHandle, m: MessiMessage): void {
    const c = this.clients.get(handle.id);
    if (c === undefined || c.gone) return;
    const body = (m.body ?? {}) as Record<string, unknown>;
    if (!c.authed) {
      if (m.type === 'auth_req' && this.tokenMatches(body['token'])) {
        c.authed = true;
        this.send(c, 'auth_rsp', {});
      } else {
        this.refuse(c, m.type === 'auth_req' ? 'wrong token' : `${m.type} before auth_req`);
      }
      return;
    }
    const rid = body['request_id'];
    const requestId = typeof rid === 'number' && Number.isInteger(rid) && rid >= 0 && rid <= 0xffff_ffff ? rid : 0;
    if (c.over) {
      this.error(c, requestId, new ApiError('limit', `${this.limits.clients} clients already connected (the cap)`));
      return this.dropOver(c);
    }
    this.stats.requests++;
    try {
      this.dispatch(c, m.type, body, requestId);
    } catch (err) {
      if (err instanceof ApiError) return this.error(c, requestId, err);
      this.stats.internalErrors++;
      this.log(`api: ${m.type} from client ${handle.id} failed: ${(err as Error)?.stack ?? String(err)}`);
      this.error(c, requestId, new ApiError('internal', `${m.type} failed: ${(err as Error)?.message ?? String(err)}`));
    } finally {
      this.gateway?.loop.wake();
    }
  }

  private tokenMatches(token: unknown): boolean {
    if (this.tokenDigest === undefined) return true;
    if (typeof token !== 'string') return false;
    return timingSafeEqual(digest(token), this.tokenDigest);
  }

  private dispatch(c: ClientState, type: string, b: Record<string, unknown>, rid: number): void {
    switch (type) {
      case 'auth_req':
        if (!this.tokenMatches(b['token'])) throw new ApiError('unauthorized', 'wrong token');
        return this.send(c, 'auth_rsp', {});
      case 'status_req':
        return this.send(c, 'status_rsp', { request_id: rid, ...this.status() });
      case 'neighbours_req':
        return this.send(c, 'neighbours_rsp', { request_id: rid, neighbours: this.neighbours() });
      case 'routes_req':
        return this.send(c, 'routes_rsp', { request_id: rid, routes: this.routes() });
      case 'subscribe_req':
        return this.subscribe(c, b, rid);
      case 'ping_req':
        return this.ping(c, b, rid);
      case 'stream_open_req':
        return this.streamOpen(c, b, rid);
      case 'stream_listen_req':
        return this.streamListen(c, b, rid);
      case 'stream_unlisten_req': {
        const port = portField(b, 'port');
        const l = c.listeners.get(port);
        if (l === undefined) throw new ApiError('not-found', `no stream listener on port ${port}`);
        c.listeners.delete(port);
        this.closeSock(l.sock);
        return this.send(c, 'stream_unlisten_rsp', { request_id: rid });
      }
      case 'stream_data':
        return this.streamData(c, b);
      case 'stream_credit': {
        const s = this.streamOf(c, b);
        const n = b['bytes'];
        if (s === undefined || typeof n !== 'number' || !Number.isInteger(n) || n < 0) return void this.stats.ignored++;
        if (n === 0) return;
        const was = s.toClient;
        s.toClient = Math.min(Number.MAX_SAFE_INTEGER, s.toClient + n);
        if (was === 0) this.sockets.kick();
        return;
      }
      case 'stream_shutdown': {
        const s = this.streamOf(c, b);
        if (s === undefined) return void this.stats.ignored++;
        s.shutdownAsked = true;
        return this.flush(s);
      }
      case 'stream_close': {
        const s = this.streamOf(c, b);
        if (s === undefined) return void this.stats.ignored++;
        s.closeReason ??= 'closed';
        return this.closeSock(s.sock);
      }
      case 'datagram_bind_req':
        return this.datagramBind(c, b, rid);
      case 'datagram_unbind_req': {
        const port = portField(b, 'port');
        const s = c.datagrams.get(port);
        if (s === undefined) throw new ApiError('not-found', `port ${port} is not bound by this client`);
        c.datagrams.delete(port);
        s.close();
        return this.send(c, 'datagram_unbind_rsp', { request_id: rid });
      }
      case 'datagram_send_req':
        return this.datagramSend(c, b, rid);
      case 'strokkur_send_req':
        return this.strokkurSend(c, b, rid);
      case 'strokkur_listen_req':
        return this.strokkurListen(c, b, rid);
      case 'strokkur_unlisten_req': {
        const port = portField(b, 'port');
        const s = c.strokkurListens.get(port);
        if (s === undefined) throw new ApiError('not-found', `this client does not listen for Strokkur messages on port ${port}`);
        c.strokkurListens.delete(port);
        s.close();
        return this.send(c, 'strokkur_unlisten_rsp', { request_id: rid });
      }
      default:
        throw new ApiError('bad-request', `'${type}' is not a request`);
    }
  }

  // ===========================================================================================
  // State

  private status(): Record<string, unknown> {
    const gateway = this.need();
    const now = gateway.clock.now();
    return {
      sid: this.node.sid,
      version: meshgwVersion(),
      uptime_ms: Math.max(0, Math.floor(now - this.startedAt)),
      simulated: this.options.simulated ?? false,
      interfaces: gateway.status().map((s) => ({
        name: s.name,
        kind: s.kind,
        state: linkState(s.state),
        mtu: s.mtu,
        bit_rate: s.bitRate !== undefined && Number.isFinite(s.bitRate) ? Math.max(0, Math.min(0xffff_ffff, Math.round(s.bitRate))) : 0,
        airtime: s.pacer.windows.map((w) => ({ name: w.name, window_ms: w.windowMs, used_ms: w.usedMs, left_ms: w.leftMs })),
        queued_frames: s.pacer.queuedFrames,
        queued_bytes: s.pacer.queuedBytes,
        frames_sent: s.counters.framesOut,
        frames_received: s.counters.framesIn,
        bytes_sent: s.counters.bytesOut,
        bytes_received: s.counters.bytesIn,
        frames_refused: sum(s.refused) + sum(s.counters.drops) + (this.refusedByPacer.get(s.name) ?? 0),
      })),
    };
  }

  private neighbours(): Array<Record<string, unknown>> {
    const out: Array<Record<string, unknown>> = [];
    for (const n of this.node.control.neighbours()) {
      const sid = n.sid ?? this.node.control.node(n.id)?.sid;
      if (sid === undefined) continue;
      const ago = Math.max(0, Math.round(this.clock.now() - n.lastHeardAt));
      const signal = n.rssiDbm !== undefined ? { has_rssi: true, rssi_dbm: n.rssiDbm, snr_db: n.snrDb ?? 0 } : { has_rssi: false, rssi_dbm: 0, snr_db: 0 };
      out.push({ sid, interface: n.iface, symmetric: n.symmetric, in_ratio: n.inRatio, out_ratio: n.outRatio, ...signal, last_heard_ms_ago: ago });
    }
    return out;
  }

  private routes(): Array<Record<string, unknown>> {
    const mesh = this.need().meshStatus();
    const out: Array<Record<string, unknown>> = [];
    for (const r of mesh?.routes ?? []) {
      const dst = this.sidOf(r.destination);
      const hop = this.sidOf(r.nextHop);
      if (dst === undefined || hop === undefined) continue;
      out.push({ destination: dst, next_hop: hop, interface: r.iface, hops: r.hops, metric: r.metric, path_mtu: r.pathMtu, max_payload: Math.max(0, this.host.route(dst)?.maxPayload ?? 0) });
    }
    return out;
  }

  private sidOf(id: string): Uint8Array | undefined {
    return this.node.control.node(id)?.sid;
  }

  // ===========================================================================================
  // Events

  private subscribe(c: ClientState, b: Record<string, unknown>, rid: number): void {
    const events = b['events'];
    const none = Array.isArray(events) && events.length === 1 && events[0] === 'none';
    if (!Array.isArray(events) || (!none && events.some((e) => typeof e !== 'string' || !(API_EVENTS as readonly string[]).includes(e)))) {
      throw new ApiError('bad-request', `events must be among ${API_EVENTS.join(', ')} (an empty list: all; ["none"]: none)`);
    }
    const percent = b['airtime_low_percent'];
    if (typeof percent !== 'number' || !Number.isFinite(percent) || percent < 0 || percent > 100) throw new ApiError('bad-request', 'airtime_low_percent must be 0..100');
    c.events = new Set(none ? [] : events.length === 0 ? API_EVENTS : (events as string[]));
    c.airtimeLowPercent = percent;
    c.airtimeLow.clear();
    this.updateAirtimeCheck();
    this.send(c, 'subscribe_rsp', { request_id: rid });
  }

  private broadcast(event: string, fields: Record<string, unknown>): void {
    const at = Math.max(0, Math.floor(this.clock.now() - this.startedAt));
    for (const c of [...this.clients.values()]) {
      if (c.authed && c.events?.has(event)) this.send(c, 'event_ind', { event, at_ms: at, ...fields });
    }
  }

  private nodeEvent(event: 'neighbour-up' | 'neighbour-down', id: string, iface: string): void {
    const sid = this.sidOf(id);
    this.broadcast(event, { ...(sid ? { sid } : {}), interface: iface });
  }

  private routeEvent(destination: string, route: Route | undefined): void {
    const sid = this.sidOf(destination);
    this.broadcast('route-changed', { ...(sid ? { sid } : {}), interface: route?.iface ?? '', state: route ? 'up' : 'gone' });
  }

  private updateAirtimeCheck(): void {
    const wanted = [...this.clients.values()].some((c) => c.airtimeLowPercent > 0 && c.events?.has('airtime-low'));
    if (!wanted) this.nextAirtimeCheck = Infinity;
    else if (this.nextAirtimeCheck === Infinity) {
      this.nextAirtimeCheck = this.clock.now();
      this.gateway?.loop.wake();
    }
  }

  private checkAirtime(now: number): void {
    this.nextAirtimeCheck = now + AIRTIME_CHECK_MS;
    const left = new Map<string, number>();
    for (const s of this.need().status()) {
      let p = Infinity;
      for (const w of s.pacer.windows) if (w.limitMs > 0) p = Math.min(p, (100 * Math.max(0, w.leftMs)) / w.limitMs);
      if (p !== Infinity) left.set(s.name, p);
    }
    const at = Math.max(0, Math.floor(now - this.startedAt));
    for (const c of [...this.clients.values()]) {
      if (!c.authed || c.airtimeLowPercent <= 0 || !c.events?.has('airtime-low')) continue;
      for (const [iface, p] of left) {
        if (p < c.airtimeLowPercent) {
          if (!c.airtimeLow.has(iface)) {
            c.airtimeLow.add(iface);
            this.send(c, 'event_ind', { event: 'airtime-low', interface: iface, left_percent: p, at_ms: at });
          }
        } else {
          c.airtimeLow.delete(iface);
        }
      }
    }
    this.updateAirtimeCheck();
  }

  // ===========================================================================================
  // Ping

  private ping(c: ClientState, b: Record<string, unknown>, rid: number): void {
    const sid = sidField(b, 'sid');
    const size = u32Field(b, 'size');
    const timeout = u32Field(b, 'timeout_ms');
    if (timeout > PING_MAX_TIMEOUT_MS) throw new ApiError('bad-request', `timeout_ms must be at most ${PING_MAX_TIMEOUT_MS}`);
    if (c.pings.size >= this.limits.pingsPerClient) throw new ApiError('limit', `${c.pings.size} pings already waiting (cap ${this.limits.pingsPerClient})`);
    const route = this.host.route(sid);
    if (route === undefined) throw new ApiError('no-route', `no route to ${hex(sid).slice(0, 16)}…`);
    const length = Math.max(PING_TOKEN_BYTES, size === 0 ? PING_DEFAULT_SIZE : size);
    if (length > route.maxPayload) throw new ApiError('too-large', `a ping of ${length} bytes exceeds the path's ${route.maxPayload}`, route.maxPayload);
    const payload = new Uint8Array(length);
    let token: string;
    do {
      payload.set(randomBytes(PING_TOKEN_BYTES));
      token = hex(payload.subarray(0, PING_TOKEN_BYTES));
    } while (this.pings.has(token));
    const r = this.pingSocket!.send(sid, ECHO_PORT, payload, { priority: 'interactive' });
    if (!r.ok) throw sendError(r);
    const now = this.clock.now();
    const timeoutMs = timeout === 0 ? PING_DEFAULT_TIMEOUT_MS : timeout;
    const p: PingRec = { client: c, requestId: rid, token, sid: sid.slice(), sentAt: now, deadline: now + timeoutMs, hops: route.hops, timeoutMs };
    this.pings.set(token, p);
    c.pings.add(p);
  }

  private onEcho(from: Uint8Array, port: number, bytes: Uint8Array): void {
    if (port !== ECHO_PORT || bytes.length < PING_TOKEN_BYTES) return;
    const p = this.pings.get(hex(bytes.subarray(0, PING_TOKEN_BYTES)));
    if (p === undefined || !sameBytes(p.sid, from)) return;
    this.pings.delete(p.token);
    p.client.pings.delete(p);
    this.send(p.client, 'ping_rsp', { request_id: p.requestId, rtt_ms: Math.max(0, this.clock.now() - p.sentAt), hops: p.hops });
  }

  // ===========================================================================================
  // Datagrams

  private portsHeld(c: ClientState): number {
    return c.datagrams.size + c.listeners.size + c.strokkurListens.size;
  }

  private bindPort(c: ClientState, port: number): MeshSocket {
    if (this.portsHeld(c) >= this.limits.portsPerClient) throw new ApiError('limit', `this client holds ${this.portsHeld(c)} ports (cap ${this.limits.portsPerClient})`);
    try {
      return this.host.bind(port);
    } catch (err) {
      if (err instanceof RangeError) throw new ApiError('bad-request', err.message);
      throw new ApiError(port === 0 ? 'limit' : 'port-in-use', (err as Error)?.message ?? String(err));
    }
  }

  private datagramBind(c: ClientState, b: Record<string, unknown>, rid: number): void {
    const port = portField(b, 'port', true);
    const socket = this.bindPort(c, port);
    c.datagrams.set(socket.port, socket);
    socket.on('message', (from, fromPort, bytes) => this.send(c, 'datagram_ind', { port: socket.port, sid: from, remote_port: fromPort, data: bytes }));
    this.send(c, 'datagram_bind_rsp', { request_id: rid, port: socket.port });
  }

  private datagramSend(c: ClientState, b: Record<string, unknown>, rid: number): void {
    const port = portField(b, 'port');
    const sid = sidField(b, 'sid');
    const remotePort = portField(b, 'remote_port');
    const data = bytesField(b, 'data');
    const socket = c.datagrams.get(port);
    if (socket === undefined) throw new ApiError('not-found', `port ${port} is not bound by this client`);
    const r = socket.send(sid, remotePort, data, b['interactive'] === true ? { priority: 'interactive' } : {});
    if (!r.ok) throw sendError(r);
    this.send(c, 'datagram_send_rsp', { request_id: rid });
  }

  // ===========================================================================================
  // Strokkur

  private strokkurSend(c: ClientState, b: Record<string, unknown>, rid: number): void {
    const sid = sidField(b, 'sid');
    const port = portField(b, 'port');
    const data = bytesField(b, 'data');
    const redundancy = u32Field(b, 'redundancy');
    if (data.length === 0) throw new ApiError('bad-request', 'empty message: a Strokkur message is 1 byte to 4 MiB');
    if (data.length > MAX_MESSAGE) throw new ApiError('too-large', `message of ${data.length} bytes exceeds the Strokkur maximum`, MAX_MESSAGE);
    if (c.sends.size >= this.limits.strokkurSendsPerClient) throw new ApiError('limit', `${c.sends.size} Strokkur messages already being sent (cap ${this.limits.strokkurSendsPerClient})`);
    const mtu = this.node.pathMtu(sid);
    if (mtu === undefined) throw new ApiError('no-route', `no route to ${hex(sid).slice(0, 16)}…`);
    if (redundancy > MAX_REDUNDANT_ROWS - 1) throw new ApiError('bad-request', `redundancy must be at most ${MAX_REDUNDANT_ROWS - 1}`);
    if (mtu <= CHUNK_OVERHEAD) throw new ApiError('no-route', `the path MTU to ${hex(sid).slice(0, 16)}… (${mtu} bytes) leaves no room for a Strokkur chunk`);
    const chunkSize = chunkSizeFor(mtu);
    const k = sourceChunks(data.length, chunkSize);
    const r = redundancy > 0 ? redundancy : chooseRedundancy(k, this.loss?.loss(sid));
    if (k + 1 + r > MAX_ROWS) {
      const most = Math.min(MAX_MESSAGE, (MAX_ROWS - 1 - r) * chunkSize - HASH_LENGTH);
      throw new ApiError('too-large', `a message of ${data.length} bytes needs more than ${MAX_ROWS} chunks of ${chunkSize} bytes on this path`, Math.max(0, most));
    }
    const uuid = Uint8Array.from(randomBytes(16));
    uuid[6] = (uuid[6]! & 0x0f) | 0x40; // RFC 9562 version 4, as SendState makes them
    uuid[8] = (uuid[8]! & 0x3f) | 0x80;
    const state = new SendState(data.slice(), { chunkSize, redundancy: r, uuid });
    const job: StrokkurJob = { client: c, uuid: state.uuid, sid: sid.slice(), port, state, total: state.rows, every: Math.max(1, Math.floor(state.rows / 16)), sent: 0, held: undefined, retryAt: 0 };
    c.sends.add(job);
    this.jobs.push(job);
    this.strokkurBlocked = false;
    this.send(c, 'strokkur_send_rsp', { request_id: rid, uuid: job.uuid });
  }

  /**
   * Hands chunks to the mesh, round robin across messages, while the first hop takes them. A
   * chunk the pacer refuses for a full queue is kept and offered again after STROKKUR_RETRY_MS
   * (a link with no rate cap is always "ready", and its queue is what says no).
   */
  private pumpStrokkur(now: number): void {
    let budget = STROKKUR_CHUNKS_PER_POLL;
    this.strokkurBlocked = false;
    while (budget > 0 && this.jobs.length > 0) {
      let progressed = false;
      for (const job of [...this.jobs]) {
        if (budget <= 0) break;
        if (now < job.retryAt) continue;
        if (this.host.route(job.sid) === undefined) {
          this.finishJob(job, 'no-route');
          continue;
        }
        if (!this.host.ready(job.sid, 'bulk')) continue;
        const bytes = job.held ?? job.state.next();
        job.held = undefined;
        if (bytes === undefined) {
          this.finishJob(job, '');
          continue;
        }
        budget--;
        const r = this.strokkurSocket!.send(job.sid, job.port, bytes);
        if (!r.ok) {
          if (r.reason === 'queue-full' || r.reason === 'refused') {
            job.held = bytes;
            job.retryAt = now + STROKKUR_RETRY_MS;
          } else {
            this.finishJob(job, r.reason);
          }
          continue;
        }
        progressed = true;
        job.sent++;
        if (job.state.done) this.finishJob(job, '');
        else if (job.sent % job.every === 0) this.send(job.client, 'strokkur_progress_ind', { uuid: job.uuid, chunks_sent: job.sent, chunks_total: job.total });
      }
      if (!progressed) {
        if (this.jobs.length > 0) this.strokkurBlocked = true;
        break;
      }
    }
  }

  private finishJob(job: StrokkurJob, error: string): void {
    const i = this.jobs.indexOf(job);
    if (i >= 0) this.jobs.splice(i, 1);
    job.client.sends.delete(job);
    if (error === '') this.send(job.client, 'strokkur_progress_ind', { uuid: job.uuid, chunks_sent: job.sent, chunks_total: job.total });
    this.send(job.client, 'strokkur_result_ind', { uuid: job.uuid, error });
  }

  private strokkurListen(c: ClientState, b: Record<string, unknown>, rid: number): void {
    const port = portField(b, 'port');
    const socket = this.bindPort(c, port);
    c.strokkurListens.set(port, socket);
    socket.on('message', (from, _fromPort, bytes) => {
      for (const ev of this.receiver.push(`${port}:${hex(from)}`, bytes, this.clock.now())) {
        if (!('message' in ev)) continue;
        // A message completes on the chunk just pushed: its header names the message.
        const chunk = decodeChunk(bytes);
        const uuid = chunk.ok ? chunk.chunk.header.uuid : new Uint8Array(16);
        this.send(c, 'strokkur_ind', { port, sid: from, uuid, data: ev.message.bytes });
      }
    });
    this.send(c, 'strokkur_listen_rsp', { request_id: rid });
  }

  // ===========================================================================================
  // Streams

  private streamOf(c: ClientState, b: Record<string, unknown>): StreamRec | undefined {
    const id = b['stream_id'];
    return typeof id === 'number' ? c.streams.get(id) : undefined;
  }

  private newStream(c: ClientState, sock: MspSocket, toClient: number): StreamRec {
    const id = c.nextStreamId++;
    const conn = this.sockets.connectionOf(sock);
    const s: StreamRec = {
      id,
      client: c,
      sock,
      toClient,
      fromClient: STREAM_INITIAL_CREDIT,
      pending: [],
      pendingBytes: 0,
      ungranted: 0,
      maxMessage: Math.max(1, conn?.maxMessageSize ?? this.sockets.maxMessageSize(sock)),
      shutdownAsked: false,
      shutdownDone: false,
      endSent: false,
      closeReason: undefined,
      error: undefined,
    };
    c.streams.set(id, s);
    return s;
  }

  private streamOptions(b: Record<string, unknown>): { priority: 'bulk' | 'interactive'; fec: 'on' | 'off' | 'auto' | undefined } {
    const fec = b['fec'];
    if (fec !== undefined && fec !== '' && fec !== 'on' && fec !== 'off' && fec !== 'auto') throw new ApiError('bad-request', `fec must be "", "off", "on" or "auto"`);
    return { priority: b['interactive'] === true ? 'interactive' : 'bulk', fec: fec === '' || fec === undefined ? undefined : fec };
  }

  private streamOpen(c: ClientState, b: Record<string, unknown>, rid: number): void {
    const sid = sidField(b, 'sid');
    const port = portField(b, 'port');
    const credit = u32Field(b, 'credit');
    const o = this.streamOptions(b);
    if (c.streams.size >= this.limits.streamsPerClient) throw new ApiError('limit', `this client holds ${c.streams.size} streams (cap ${this.limits.streamsPerClient})`);
    if (this.host.route(sid) === undefined) throw new ApiError('no-route', `no route to ${hex(sid).slice(0, 16)}…`);
    const sockets = this.sockets;
    let sock: MspSocket;
    try {
      sock = sockets.socket();
    } catch (err) {
      throw mspError(err);
    }
    let s: StreamRec;
    try {
      sockets.setPriority(sock, o.priority);
      if (o.fec) sockets.setFec(sock, o.fec);
      sockets.connect(sock, { sid, port });
      s = this.newStream(c, sock, credit);
      sockets.setHandler<HandlerContext>(sock, this.handler, s);
    } catch (err) {
      this.closeSock(sock);
      throw mspError(err);
    }
    this.send(c, 'stream_open_rsp', { request_id: rid, stream_id: s.id, credit: STREAM_INITIAL_CREDIT, max_message: s.maxMessage });
  }

  private streamListen(c: ClientState, b: Record<string, unknown>, rid: number): void {
    const port = portField(b, 'port');
    const credit = u32Field(b, 'credit');
    const o = this.streamOptions(b);
    if (c.listeners.has(port)) throw new ApiError('port-in-use', `this client already listens on port ${port}`);
    if (this.portsHeld(c) >= this.limits.portsPerClient) throw new ApiError('limit', `this client holds ${this.portsHeld(c)} ports (cap ${this.limits.portsPerClient})`);
    const sockets = this.sockets;
    let sock: MspSocket;
    try {
      sock = sockets.socket();
    } catch (err) {
      throw mspError(err);
    }
    try {
      sockets.setLocal(sock, { port });
      sockets.setPriority(sock, o.priority);
      if (o.fec) sockets.setFec(sock, o.fec);
      const l: ListenerRec = { client: c, port, sock, credit };
      sockets.setHandler<HandlerContext>(sock, this.handler, l);
      sockets.listen(sock);
      c.listeners.set(port, l);
    } catch (err) {
      this.closeSock(sock);
      throw mspError(err);
    }
    this.send(c, 'stream_listen_rsp', { request_id: rid });
  }

  private streamData(c: ClientState, b: Record<string, unknown>): void {
    const s = this.streamOf(c, b);
    const data = b['data'];
    if (s === undefined || !(data instanceof Uint8Array)) return void this.stats.ignored++;
    if (data.length === 0) return;
    if (s.shutdownAsked || s.closeReason !== undefined) return void this.stats.ignored++;
    if (data.length > s.fromClient) {
      s.closeReason = 'credit';
      this.closeSock(s.sock);
      return;
    }
    s.fromClient -= data.length;
    for (let o = 0; o < data.length; o += s.maxMessage) s.pending.push(data.slice(o, Math.min(data.length, o + s.maxMessage)));
    s.pendingBytes += data.length;
    this.flush(s);
  }

  /** Client data into MSP while it has room; credit back to the client for what MSP took. */
  private flush(s: StreamRec): void {
    if (s.closeReason !== undefined || s.client.gone) return;
    const sockets = this.sockets;
    try {
      while (s.pending.length > 0) {
        const m = s.pending[0]!;
        const r = sockets.send(s.sock, m, { fragment: true });
        if (!r.ok) {
          if (r.code === 'EBADMSG' && r.maxBytes !== undefined && r.maxBytes < m.length) {
            // The connection's maximum is smaller than we thought: split and go on.
            s.maxMessage = Math.max(1, r.maxBytes);
            s.pending.shift();
            const parts: Uint8Array[] = [];
            for (let o = 0; o < m.length; o += s.maxMessage) parts.push(m.subarray(o, Math.min(m.length, o + s.maxMessage)));
            s.pending.unshift(...parts);
            continue;
          }
          break;
        }
        s.pending.shift();
        s.pendingBytes -= m.length;
        s.ungranted += m.length;
      }
      if (s.pending.length === 0 && s.shutdownAsked && !s.shutdownDone) {
        s.shutdownDone = true;
        sockets.shutdown(s.sock);
      }
    } catch (err) {
      // The socket failed or closed under us: its CLOSED call reports it.
      if (!(err instanceof MspSocketError)) throw err;
    }
    if (s.ungranted > 0 && (s.ungranted >= STREAM_INITIAL_CREDIT / 4 || s.pending.length === 0) && !s.shutdownAsked) {
      const n = s.ungranted;
      s.ungranted = 0;
      s.fromClient += n;
      this.send(s.client, 'stream_credit', { stream_id: s.id, bytes: n });
    }
  }

  /** The MSP handler of every API socket (listeners and streams); `ctx` tells which. */
  private readonly handler = (sock: MspSocket, state: number, payload: Uint8Array | undefined, ctx: HandlerContext): number => {
    if (ctx === undefined) return 0;
    if (!('id' in ctx)) {
      // A listener: its own calls (CLOSED), or a new connection's announcement.
      if (sock === ctx.sock || state & MspState.CLOSED) return 0;
      return this.accept(ctx, sock, state, payload);
    }
    return this.onStream(ctx, state, payload);
  };

  private accept(l: ListenerRec, sock: MspSocket, state: number, payload: Uint8Array | undefined): number {
    const c = l.client;
    if (c.gone || c.listeners.get(l.port) !== l || c.streams.size >= this.limits.streamsPerClient) {
      this.closeSock(sock);
      return 0;
    }
    const s = this.newStream(c, sock, l.credit);
    this.sockets.setHandler<HandlerContext>(sock, this.handler, s);
    const remote = this.sockets.getRemote(sock);
    this.send(c, 'stream_accept_ind', { port: l.port, stream_id: s.id, sid: remote?.sid ?? new Uint8Array(32), remote_port: remote?.port ?? 0, credit: STREAM_INITIAL_CREDIT });
    return this.onStream(s, state, payload);
  }

  private onStream(s: StreamRec, state: number, payload: Uint8Array | undefined): number {
    const sockets = this.sockets;
    if (state & MspState.CLOSED) {
      const c = s.client;
      if (c.streams.get(s.id) === s) c.streams.delete(s.id);
      const error = s.closeReason ?? (state & MspState.ERROR ? (s.error ?? 'reset') : '');
      this.send(c, 'stream_closed_ind', { stream_id: s.id, error });
      return 0;
    }
    if (state & MspState.ERROR) {
      s.error = sockets.connectionOf(s.sock)?.error === 'timeout' ? 'timeout' : 'reset';
      return 0;
    }
    if (s.client.gone) return payload?.length ?? 0;
    let used = 0;
    if (state & MspState.RECEIVED_DATA && payload !== undefined) {
      const n = Math.min(payload.length, s.toClient);
      for (let o = 0; o < n; o += STREAM_DATA_CHUNK) this.send(s.client, 'stream_data', { stream_id: s.id, data: payload.subarray(o, Math.min(n, o + STREAM_DATA_CHUNK)) });
      s.toClient -= n;
      used = n;
      if (n === payload.length && state & MspState.SHUTDOWN_REMOTE) this.end(s);
    } else if (state & MspState.SHUTDOWN_REMOTE && sockets.shutdownRemote(s.sock)) {
      this.end(s);
    }
    if (state & MspState.DATA_OUT && s.pending.length > 0) this.flush(s);
    else if (state & MspState.DATA_OUT && s.shutdownAsked && !s.shutdownDone) this.flush(s);
    return used;
  }

  private end(s: StreamRec): void {
    if (s.endSent) return;
    s.endSent = true;
    this.send(s.client, 'stream_end_ind', { stream_id: s.id });
  }
}

// =============================================================================================
// Fields

function u32Field(b: Record<string, unknown>, name: string): number {
  const v = b[name] ?? 0;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > 0xffff_ffff) throw new ApiError('bad-request', `${name} must be a u32`);
  return v;
}

function portField(b: Record<string, unknown>, name: string, zeroAllowed = false): number {
  const v = u32Field(b, name);
  if (v > 255 || (v === 0 && !zeroAllowed)) throw new ApiError('bad-request', `${name} must be ${zeroAllowed ? 0 : 1}..255, got ${v}`);
  return v;
}

function sidField(b: Record<string, unknown>, name: string): Uint8Array {
  const v = b[name];
  if (!(v instanceof Uint8Array) || v.length !== 32) throw new ApiError('bad-request', `${name} must be a SID of 32 bytes`);
  return v;
}

function bytesField(b: Record<string, unknown>, name: string): Uint8Array {
  const v = b[name] ?? new Uint8Array(0);
  if (!(v instanceof Uint8Array)) throw new ApiError('bad-request', `${name} must be bytes`);
  return v;
}

function sendError(r: Extract<SendResult, { ok: false }>): ApiError {
  switch (r.reason) {
    case 'no-route':
    case 'no-key':
    case 'too-large':
    case 'queue-full':
    case 'closed':
      return new ApiError(r.reason, r.message, r.maxBytes);
    case 'refused':
      return new ApiError('queue-full', r.message);
  }
}

function mspError(err: unknown): Error {
  if (err instanceof ApiError) return err;
  if (err instanceof MspSocketError) {
    switch (err.code) {
      case 'EADDRINUSE':
        return new ApiError('port-in-use', err.message);
      case 'EMFILE':
        return new ApiError('limit', err.message);
      case 'EINVAL':
        return new ApiError('bad-request', err.message);
      default:
        return new ApiError('closed', err.message);
    }
  }
  return err instanceof Error ? err : new Error(String(err));
}

// =============================================================================================

function linkState(s: string): string {
  return s === 'opening' ? 'connecting' : s;
}

function digest(token: string): Buffer {
  return createHash('sha256').update(token, 'utf8').digest();
}

function sum(r: Record<string, number>): number {
  let n = 0;
  for (const v of Object.values(r)) if (Number.isFinite(v)) n += v;
  return n;
}

function hex(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}
