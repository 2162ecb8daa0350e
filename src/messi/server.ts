/**
 * Messi server: a sans-IO connection core (`MessiServerConnection`) and its TCP shell
 * (`MessiServer`).
 *
 * Per connection: the version is judged from its first byte (SPEC.md) and every frame to that
 * client is written in that version. Each ping is answered with a pong; no ping for
 * `pingTimeoutMs` (default 3 s) drops the client. A size field above `maxFrame` (default
 * 64 KiB), a malformed protobuf payload or an unknown type drops that client at once, with a
 * logged reason; other clients are untouched. Output to a client is capped (`maxOutputBytes`,
 * default 1 MiB, counting bytes not yet taken by the kernel): a client that does not read is
 * dropped rather than allowed to grow the server's memory.
 */
import { EventEmitter } from 'node:events';
import net from 'node:net';
import { MonotonicClock, type SimClock, type TimerHandle } from '../link/clock.js';
import type { MessiMessage, MessiProtocol } from './codec.js';
import {
  DEFAULT_MAX_FRAME,
  HEADER_SIZE,
  MessiFrameDecoder,
  encodeKind,
  type MessiFrameEvent,
  frameKind,
  type MessiVersion,
} from './framing.js';
import { DEFAULT_PING_TIMEOUT_MS, ServerKeepAlive } from './keepalive.js';

/** Why a connection ended (Messi's `messi_disconnect_reason_t`, plus ours). */
export type MessiDisconnectReason =
  | 'connection-closed'
  | 'keep-alive-timeout'
  | 'message-too-big'
  | 'message-decode-error'
  | 'message-encode-error'
  | 'unknown-type'
  | 'truncated'
  | 'slow-reader'
  | 'too-many-clients'
  | 'stopped'
  | 'general-error';

export const DEFAULT_MAX_OUTPUT_BYTES = 1024 * 1024;
export const DEFAULT_MAX_CLIENTS = 256;

export type MessiConnectionEvent =
  | { type: 'message'; message: MessiMessage }
  | { type: 'disconnect'; reason: MessiDisconnectReason; detail: string };

export interface MessiServerConnectionOptions {
  protocol: MessiProtocol;
  /** Fixed version, or `auto` (default) to judge it from the first byte. */
  version?: MessiVersion | 'auto';
  maxFrame?: number;
  pingTimeoutMs?: number;
}

/**
 * One server-side connection as a state machine: `receive(bytes, now)` and `poll(now)` give
 * events; `takeOutput()` gives the bytes to write; `nextDeadline()` says when to poll.
 * After a `disconnect` event it is closed and ignores further input.
 */
export class MessiServerConnection {
  private readonly protocol: MessiProtocol;
  private readonly decoder: MessiFrameDecoder;
  private readonly keepAlive: ServerKeepAlive;
  /** Frames waiting for the version to be known (a server may send before the client's first byte). */
  private held: { kind: 'server-to-client' | 'pong'; payload: Uint8Array }[] = [];
  private heldBytes = 0;
  private output: Uint8Array[] = [];
  private outputBytes = 0;
  private ended = false;
  /** Decoded frames not yet processed (at most one TCP read's worth). */
  private inbox: MessiFrameEvent[] = [];
  /** User messages that carried no oneof choice (ignored, as Messi does). */
  emptyMessages = 0;

  constructor(nowMs: number, options: MessiServerConnectionOptions) {
    this.protocol = options.protocol;
    this.decoder = new MessiFrameDecoder({ version: options.version ?? 'auto', maxFrame: options.maxFrame ?? DEFAULT_MAX_FRAME });
    this.keepAlive = new ServerKeepAlive(nowMs, { timeoutMs: options.pingTimeoutMs ?? DEFAULT_PING_TIMEOUT_MS });
  }

  get version(): MessiVersion | undefined {
    return this.decoder.version;
  }

  get closed(): boolean {
    return this.ended;
  }

  /** Bytes produced and not yet taken, including frames held until the version is known. */
  get pendingBytes(): number {
    return this.outputBytes + this.heldBytes;
  }

  /**
   * Takes bytes and processes every frame in them; returns the events. Replies a handler makes
   * to these events are queued after all of their pongs: a shell that must keep replies in input
   * order (as Messi does) uses `feed` and `next` instead.
   */
  receive(chunk: Uint8Array, nowMs: number): MessiConnectionEvent[] {
    this.feed(chunk);
    const events: MessiConnectionEvent[] = [];
    for (let e = this.next(nowMs); e; e = this.next(nowMs)) events.push(e);
    return events;
  }

  /** Takes bytes; their frames wait for `next`. */
  feed(chunk: Uint8Array): void {
    if (this.ended) return;
    for (const e of this.decoder.push(chunk)) this.inbox.push(e);
  }

  /**
   * Processes waiting frames up to the next event and returns it (pings are answered on the way),
   * or undefined when none is left. A handler's reply queued before the following `next` goes
   * out before the answers to later frames.
   */
  next(nowMs: number): MessiConnectionEvent | undefined {
    while (!this.ended) {
      const e = this.inbox.shift();
      if (!e) return undefined;
      if ('error' in e) {
        return this.close(e.error.code === 'oversize' ? 'message-too-big' : 'truncated', e.error.reason);
      }
      this.flushHeld();
      const version = this.decoder.version!;
      const kind = frameKind(version, e.frame.type, 'to-server');
      if (kind === 'ping') {
        this.keepAlive.ping(nowMs);
        this.queue('pong', new Uint8Array(0));
      } else if (kind === 'client-to-server') {
        const r = this.protocol.decodeClientToServer(e.frame.payload);
        if (r.ok) return { type: 'message', message: r.message };
        if (r.error.code === 'no-choice') this.emptyMessages++;
        else return this.close('message-decode-error', `frame at offset ${e.offset}: ${r.error.reason}`);
      } else {
        return this.close('unknown-type', `frame type ${e.frame.type} at offset ${e.offset} (${version} version)`);
      }
    }
    return undefined;
  }

  /** The peer closed its side. */
  end(): MessiConnectionEvent[] {
    if (this.ended) return [];
    const cut = this.decoder.end()[0];
    if (cut && 'error' in cut) return [this.close('truncated', cut.error.reason)];
    return [this.close('connection-closed', 'peer closed the connection')];
  }

  poll(nowMs: number): MessiConnectionEvent[] {
    if (this.ended) return [];
    if (this.keepAlive.poll(nowMs) === 'timeout') {
      return [this.close('keep-alive-timeout', 'no ping from the client in time')];
    }
    return [];
  }

  nextDeadline(): number {
    return this.ended ? Infinity : this.keepAlive.nextDeadline();
  }

  /** Queues a message to the client. Throws MessiEncodeError for a message outside the schema. */
  send(message: MessiMessage): void {
    if (this.ended) return;
    this.queue('server-to-client', this.protocol.encodeServerToClient(message));
  }

  /** Closes from our side (kick, overflow, shutdown); returns the event to report. */
  close(reason: MessiDisconnectReason, detail: string): MessiConnectionEvent {
    this.ended = true;
    this.held = [];
    this.heldBytes = 0;
    this.inbox = [];
    return { type: 'disconnect', reason, detail };
  }

  takeOutput(): Uint8Array[] {
    const out = this.output;
    this.output = [];
    this.outputBytes = 0;
    return out;
  }

  private queue(kind: 'server-to-client' | 'pong', payload: Uint8Array): void {
    const version = this.decoder.version;
    if (version === undefined) {
      this.held.push({ kind, payload });
      this.heldBytes += payload.length + HEADER_SIZE.seed;
      return;
    }
    const frame = encodeKind(version, kind, payload);
    this.output.push(frame);
    this.outputBytes += frame.length;
  }

  private flushHeld(): void {
    if (this.held.length === 0) return;
    const held = this.held;
    this.held = [];
    this.heldBytes = 0;
    for (const h of held) this.queue(h.kind, h.payload);
  }
}

/** A connected client, as the server's events, `send` and `disconnect` name it. */
export interface MessiClientHandle {
  readonly id: number;
  readonly remoteAddress: string;
  readonly remotePort: number;
  /** The version the client speaks; undefined until its first byte. */
  readonly version: MessiVersion | undefined;
}

export interface MessiServerOptions {
  protocol: MessiProtocol;
  /** Default 127.0.0.1 (only addresses the user names are listened on beyond loopback); `listen(port, host)` overrides. */
  host?: string;
  /** Default 0: an ephemeral port; `listen(port)` overrides. */
  port?: number;
  /** Cap on one frame's payload. Default 64 KiB. */
  maxFrameBytes?: number;
  /** Drop a client from which no ping arrived for this long. Default 3000 ms. */
  clientTimeoutMs?: number;
  /** Cap on bytes queued to one client and not yet taken by the kernel. Default 1 MiB. */
  maxOutputBytes?: number;
  /** Connections beyond this are closed at once. Default 256. */
  maxClients?: number;
  /** Accept only this version instead of judging each connection's first byte. */
  version?: MessiVersion | 'auto';
  clock?: SimClock;
  log?: (line: string) => void;
}

export interface MessiServerEvents {
  'client-connected': [client: MessiClientHandle];
  'client-disconnected': [client: MessiClientHandle, reason: MessiDisconnectReason, detail: string];
  message: [client: MessiClientHandle, message: MessiMessage];
  error: [error: Error];
}

interface Conn {
  client: { id: number; remoteAddress: string; remotePort: number; version: MessiVersion | undefined };
  socket: net.Socket;
  core: MessiServerConnection;
  timer: TimerHandle | undefined;
  timerAt: number;
}

export class MessiServer extends EventEmitter<MessiServerEvents> {
  private readonly options: MessiServerOptions;
  private readonly clock: SimClock;
  private readonly log: (line: string) => void;
  private readonly maxOutputBytes: number;
  private readonly maxClients: number;
  private server: net.Server | undefined;
  private readonly conns = new Map<number, Conn>();
  private nextId = 1;
  /** Disconnects by reason since start. */
  readonly stats: Partial<Record<MessiDisconnectReason, number>> & { accepted: number; refused: number } = {
    accepted: 0,
    refused: 0,
  };

  constructor(options: MessiServerOptions) {
    super();
    this.options = options;
    this.clock = options.clock ?? new MonotonicClock();
    this.log = options.log ?? (() => {});
    this.maxOutputBytes = options.maxOutputBytes ?? DEFAULT_MAX_OUTPUT_BYTES;
    this.maxClients = options.maxClients ?? DEFAULT_MAX_CLIENTS;
  }

  /** Starts listening (arguments override the options); resolves with the bound address. */
  async listen(port?: number, host?: string): Promise<{ port: number; host: string }> {
    if (this.server) throw new Error('Messi server already listening');
    const server = net.createServer((socket) => this.accept(socket));
    this.server = server;
    server.on('error', (e) => this.emit('error', e));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port ?? this.options.port ?? 0, host ?? this.options.host ?? '127.0.0.1', () => {
        server.off('error', reject);
        resolve();
      });
    });
    const a = this.address()!;
    return { port: a.port, host: a.address };
  }

  address(): net.AddressInfo | undefined {
    const a = this.server?.address();
    return a && typeof a === 'object' ? a : undefined;
  }

  get clients(): MessiClientHandle[] {
    return [...this.conns.values()].map((c) => c.client);
  }

  /** Sends to one client; false if it is not connected. Throws MessiEncodeError for a bad message. */
  send(client: MessiClientHandle | number, message: MessiMessage): boolean {
    const c = this.conns.get(typeof client === 'number' ? client : client.id);
    if (!c) return false;
    c.core.send(message);
    this.flush(c);
    return true;
  }

  /** Sends to every connected client; returns how many. */
  broadcast(message: MessiMessage): number {
    // Check the schema once before touching any client.
    this.options.protocol.encodeServerToClient(message);
    let n = 0;
    for (const c of [...this.conns.values()]) {
      c.core.send(message);
      this.flush(c);
      n++;
    }
    return n;
  }

  /** Drops one client (reason `stopped`; `detail` is logged and reported). */
  disconnect(client: MessiClientHandle | number, detail = 'disconnected by the server'): boolean {
    const c = this.conns.get(typeof client === 'number' ? client : client.id);
    if (!c) return false;
    this.drop(c, c.core.close('stopped', detail));
    return true;
  }

  /** Stops listening and drops every client. */
  async close(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    for (const c of [...this.conns.values()]) this.drop(c, c.core.close('stopped', 'server closing'));
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  private accept(socket: net.Socket): void {
    if (this.conns.size >= this.maxClients) {
      this.stats.refused++;
      this.log(`messi: refused ${socket.remoteAddress}:${socket.remotePort}: ${this.maxClients} clients already`);
      socket.destroy();
      return;
    }
    this.stats.accepted++;
    socket.setNoDelay(true);
    const core = new MessiServerConnection(this.clock.now(), {
      protocol: this.options.protocol,
      version: this.options.version ?? 'auto',
      maxFrame: this.options.maxFrameBytes ?? DEFAULT_MAX_FRAME,
      pingTimeoutMs: this.options.clientTimeoutMs ?? DEFAULT_PING_TIMEOUT_MS,
    });
    const c: Conn = {
      client: {
        id: this.nextId++,
        remoteAddress: socket.remoteAddress ?? '',
        remotePort: socket.remotePort ?? 0,
        version: undefined,
      },
      socket,
      core,
      timer: undefined,
      timerAt: Infinity,
    };
    this.conns.set(c.client.id, c);
    socket.on('data', (data: Buffer) => {
      c.core.feed(data);
      c.client.version = c.core.version;
      for (let e = c.core.next(this.clock.now()); e; e = c.core.next(this.clock.now())) {
        if (e.type === 'message') {
          this.emit('message', c.client, e.message);
          if (!this.conns.has(c.client.id)) return;
        } else {
          this.drop(c, e);
          return;
        }
      }
      this.flush(c);
      this.arm(c);
    });
    socket.on('end', () => this.handle(c, c.core.end()));
    socket.on('error', (e) => {
      if (!c.core.closed) this.drop(c, c.core.close('connection-closed', `socket error: ${e.message}`));
    });
    socket.on('close', () => {
      if (!c.core.closed) this.drop(c, c.core.close('connection-closed', 'socket closed'));
    });
    this.emit('client-connected', c.client);
    this.arm(c);
  }

  private handle(c: Conn, events: ReturnType<MessiServerConnection['receive']>): void {
    for (const e of events) {
      if (e.type === 'message') {
        if (!this.conns.has(c.client.id)) return;
        this.emit('message', c.client, e.message);
      } else {
        this.drop(c, e);
        return;
      }
    }
    if (this.conns.has(c.client.id)) {
      this.flush(c);
      this.arm(c);
    }
  }

  private flush(c: Conn): void {
    if (!this.conns.has(c.client.id)) return;
    for (const frame of c.core.takeOutput()) c.socket.write(frame);
    const queued = c.socket.writableLength + c.core.pendingBytes;
    if (queued > this.maxOutputBytes) {
      this.drop(c, c.core.close('slow-reader', `${queued} bytes queued to a client that does not read (cap ${this.maxOutputBytes})`));
    }
  }

  private arm(c: Conn): void {
    const at = c.core.nextDeadline();
    if (at === c.timerAt) return;
    c.timer?.cancel();
    c.timerAt = at;
    c.timer = at === Infinity ? undefined : this.clock.setTimer(at, () => {
      c.timer = undefined;
      c.timerAt = Infinity;
      const events = c.core.poll(this.clock.now());
      if (events.length > 0) this.handle(c, events);
      else this.arm(c);
    });
  }

  private drop(c: Conn, e: MessiConnectionEvent): void {
    if (!this.conns.delete(c.client.id)) return;
    c.timer?.cancel();
    c.timer = undefined;
    const reason = e.type === 'disconnect' ? e.reason : 'general-error';
    const detail = e.type === 'disconnect' ? e.detail : '';
    this.stats[reason] = (this.stats[reason] ?? 0) + 1;
    if (reason === 'connection-closed' || reason === 'stopped') {
      if (reason === 'stopped') this.log(`messi: closing client ${c.client.id}: ${detail}`);
      c.socket.end();
      c.socket.destroySoon();
    } else {
      this.log(`messi: dropped client ${c.client.id} (${c.client.remoteAddress}:${c.client.remotePort}): ${reason}: ${detail}`);
      c.socket.destroy();
    }
    this.emit('client-disconnected', c.client, reason, detail);
  }
}

/** Old name of MessiClientHandle. */
export type MessiServerClient = MessiClientHandle;
