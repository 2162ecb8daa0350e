/**
 * Messi client: a sans-IO connection core (`MessiClientConnection`) and its TCP shell
 * (`MessiClient`) that reconnects by itself.
 *
 * The client speaks one version (default `current`, what Messi 0.6–0.29 peers speak). It pings
 * `pingIntervalMs` (default 2 s) after connecting and every interval after; when a ping is due
 * and the previous one's pong has not arrived, it disconnects (`keep-alive-timeout`). After any
 * disconnect, and after a failed connect, it tries again after `reconnectDelayMs` (default 1 s)
 * until `stop()`. A frame above `maxFrame` (`message-too-big`) or a malformed payload
 * (`message-decode-error`) from the server disconnects too; unknown types are ignored, as
 * Messi's clients do.
 */
import { EventEmitter } from 'node:events';
import net from 'node:net';
import { MonotonicClock, type SimClock, type TimerHandle } from '../link/clock.js';
import type { MessiMessage, MessiProtocol } from './codec.js';
import { DEFAULT_MAX_FRAME, MessiFrameDecoder, encodeKind, frameKind, type MessiVersion } from './framing.js';
import { ClientKeepAlive, DEFAULT_PING_INTERVAL_MS, DEFAULT_RECONNECT_DELAY_MS } from './keepalive.js';
import { DEFAULT_MAX_OUTPUT_BYTES, type MessiConnectionEvent, type MessiDisconnectReason } from './server.js';

export interface MessiClientConnectionOptions {
  protocol: MessiProtocol;
  /** Default `current`. */
  version?: MessiVersion;
  maxFrame?: number;
  pingIntervalMs?: number;
}

/** One client-side connection as a state machine (see MessiServerConnection for the shape). */
export class MessiClientConnection {
  readonly version: MessiVersion;
  private readonly protocol: MessiProtocol;
  private readonly decoder: MessiFrameDecoder;
  private readonly keepAlive: ClientKeepAlive;
  private output: Uint8Array[] = [];
  private outputBytes = 0;
  private ended = false;
  /** Frames of a type a client has no use for (ignored). */
  ignoredFrames = 0;
  emptyMessages = 0;

  constructor(nowMs: number, options: MessiClientConnectionOptions) {
    this.protocol = options.protocol;
    this.version = options.version ?? 'current';
    this.decoder = new MessiFrameDecoder({ version: this.version, maxFrame: options.maxFrame ?? DEFAULT_MAX_FRAME });
    this.keepAlive = new ClientKeepAlive(nowMs, { intervalMs: options.pingIntervalMs ?? DEFAULT_PING_INTERVAL_MS });
  }

  get closed(): boolean {
    return this.ended;
  }

  get pendingBytes(): number {
    return this.outputBytes;
  }

  /** Pings sent and pongs received on this connection. */
  get keepAliveCounts(): { pings: number; pongs: number } {
    return { pings: this.keepAlive.pings, pongs: this.keepAlive.pongs };
  }

  receive(chunk: Uint8Array): MessiConnectionEvent[] {
    const events: MessiConnectionEvent[] = [];
    if (this.ended) return events;
    for (const e of this.decoder.push(chunk)) {
      if ('error' in e) {
        events.push(this.close(e.error.code === 'oversize' ? 'message-too-big' : 'truncated', e.error.reason));
        break;
      }
      const kind = frameKind(this.version, e.frame.type, 'to-client');
      if (kind === 'pong') {
        this.keepAlive.pong();
      } else if (kind === 'server-to-client') {
        const r = this.protocol.decodeServerToClient(e.frame.payload);
        if (r.ok) events.push({ type: 'message', message: r.message });
        else if (r.error.code === 'no-choice') this.emptyMessages++;
        else {
          events.push(this.close('message-decode-error', `frame at offset ${e.offset}: ${r.error.reason}`));
          break;
        }
      } else {
        this.ignoredFrames++;
      }
    }
    return events;
  }

  end(): MessiConnectionEvent[] {
    if (this.ended) return [];
    const cut = this.decoder.end()[0];
    if (cut && 'error' in cut) return [this.close('truncated', cut.error.reason)];
    return [this.close('connection-closed', 'server closed the connection')];
  }

  poll(nowMs: number): MessiConnectionEvent[] {
    if (this.ended) return [];
    const action = this.keepAlive.poll(nowMs);
    if (action === 'timeout') return [this.close('keep-alive-timeout', 'no pong from the server in time')];
    if (action === 'ping') this.push(encodeKind(this.version, 'ping'));
    return [];
  }

  nextDeadline(): number {
    return this.ended ? Infinity : this.keepAlive.nextDeadline();
  }

  /** Queues a message to the server. Throws MessiEncodeError for a message outside the schema. */
  send(message: MessiMessage): void {
    if (this.ended) return;
    this.push(encodeKind(this.version, 'client-to-server', this.protocol.encodeClientToServer(message)));
  }

  close(reason: MessiDisconnectReason, detail: string): MessiConnectionEvent {
    this.ended = true;
    return { type: 'disconnect', reason, detail };
  }

  takeOutput(): Uint8Array[] {
    const out = this.output;
    this.output = [];
    this.outputBytes = 0;
    return out;
  }

  private push(frame: Uint8Array): void {
    this.output.push(frame);
    this.outputBytes += frame.length;
  }
}

export interface MessiClientOptions {
  protocol: MessiProtocol;
  host?: string;
  port?: number;
  /** `tcp://host:port`, Messi's form; instead of host and port. */
  uri?: string;
  /** Default `current`. */
  version?: MessiVersion;
  /** Cap on one frame's payload. Default 64 KiB. */
  maxFrameBytes?: number;
  /** Default 2000 ms. */
  pingIntervalMs?: number;
  /** Delay before each reconnect attempt. Default 1000 ms. */
  reconnectMs?: number;
  /** Give up a connect attempt after this long. Default 5000 ms. */
  connectTimeoutMs?: number;
  /** Cap on bytes queued to the server and not taken by the kernel. Default 1 MiB. */
  maxOutputBytes?: number;
  clock?: SimClock;
  log?: (line: string) => void;
}

export interface MessiClientEvents {
  connected: [];
  disconnected: [reason: MessiDisconnectReason, detail: string];
  'connect-failure': [error: Error];
  message: [message: MessiMessage];
}

/** Parses Messi's `tcp://<host>:<port>`. Throws RangeError otherwise. */
export function parseTcpUri(uri: string): { host: string; port: number } {
  const m = /^tcp:\/\/(\[[^\]]+\]|[^:/]+):(\d{1,5})$/.exec(uri);
  const port = m ? Number(m[2]) : NaN;
  if (!m || !(port >= 0 && port <= 65535)) {
    throw new RangeError(`expected a URI of the form tcp://<host>:<port>, got '${uri}'`);
  }
  return { host: m[1]!.replace(/^\[|\]$/g, ''), port };
}

export class MessiClient extends EventEmitter<MessiClientEvents> {
  private readonly options: MessiClientOptions;
  private readonly host: string;
  private readonly port: number;
  private readonly clock: SimClock;
  private readonly log: (line: string) => void;
  private running = false;
  private socket: net.Socket | undefined;
  private core: MessiClientConnection | undefined;
  private timer: TimerHandle | undefined;
  private timerAt = Infinity;
  private reconnectTimer: TimerHandle | undefined;
  private connectTimer: TimerHandle | undefined;
  private up = false;
  readonly stats = { connects: 0, connectFailures: 0, disconnects: 0 };

  constructor(options: MessiClientOptions) {
    super();
    this.options = options;
    if (options.uri !== undefined) {
      const u = parseTcpUri(options.uri);
      this.host = u.host;
      this.port = u.port;
    } else {
      if (options.port === undefined) throw new RangeError('Messi client needs a port or a uri');
      this.host = options.host ?? '127.0.0.1';
      this.port = options.port;
    }
    this.clock = options.clock ?? new MonotonicClock();
    this.log = options.log ?? (() => {});
  }

  get connected(): boolean {
    return this.up;
  }

  /** The current connection's core (for status), if connected. */
  get connection(): MessiClientConnection | undefined {
    return this.up ? this.core : undefined;
  }

  /** Connects, and keeps reconnecting after every disconnect until `stop()`. */
  start(): void {
    if (this.running) return;
    this.running = true;
    this.connect();
  }

  /**
   * Disconnects (reporting `stopped` if connected) and stops reconnecting; resolves once the
   * socket is closed.
   */
  stop(): Promise<void> {
    if (!this.running) return Promise.resolve();
    this.running = false;
    this.reconnectTimer?.cancel();
    this.reconnectTimer = undefined;
    const socket = this.socket;
    const closed =
      socket && !socket.destroyed ? new Promise<void>((resolve) => socket.once('close', () => resolve())) : Promise.resolve();
    if (this.core && !this.core.closed && this.up) this.teardown(this.core.close('stopped', 'client stopped'));
    else this.teardown(undefined);
    return closed;
  }

  /** Sends a message; false if not connected (messages are not held across reconnects). */
  send(message: MessiMessage): boolean {
    if (!this.up || !this.core) return false;
    this.core.send(message);
    this.flush();
    return true;
  }

  private connect(): void {
    if (!this.running) return;
    const socket = net.connect({ host: this.host, port: this.port });
    this.socket = socket;
    socket.setNoDelay(true);
    const timeoutMs = this.options.connectTimeoutMs ?? 5000;
    this.connectTimer = this.clock.setTimer(this.clock.now() + timeoutMs, () => {
      this.connectTimer = undefined;
      if (this.socket === socket && !this.up) socket.destroy(new Error(`connect timeout after ${timeoutMs} ms`));
    });
    socket.once('connect', () => {
      this.connectTimer?.cancel();
      this.connectTimer = undefined;
      if (this.socket !== socket) return;
      this.core = new MessiClientConnection(this.clock.now(), {
        protocol: this.options.protocol,
        version: this.options.version ?? 'current',
        maxFrame: this.options.maxFrameBytes ?? DEFAULT_MAX_FRAME,
        pingIntervalMs: this.options.pingIntervalMs ?? DEFAULT_PING_INTERVAL_MS,
      });
      this.up = true;
      this.stats.connects++;
      this.emit('connected');
      this.arm();
    });
    socket.on('data', (data: Buffer) => {
      if (this.socket !== socket || !this.core) return;
      this.handle(this.core.receive(data));
    });
    socket.on('end', () => {
      if (this.socket !== socket || !this.core) return;
      this.handle(this.core.end());
    });
    socket.on('error', (e) => {
      if (this.socket !== socket) return;
      if (!this.up) this.failConnect(e);
      else if (this.core && !this.core.closed) this.handle([this.core.close('connection-closed', `socket error: ${e.message}`)]);
    });
    socket.on('close', () => {
      if (this.socket !== socket) return;
      if (!this.up) this.failConnect(new Error('connection closed before it was established'));
      else if (this.core && !this.core.closed) this.handle([this.core.close('connection-closed', 'socket closed')]);
    });
  }

  private failConnect(e: Error): void {
    this.connectTimer?.cancel();
    this.connectTimer = undefined;
    this.socket?.destroy();
    this.socket = undefined;
    this.stats.connectFailures++;
    this.log(`messi: connect to ${this.host}:${this.port} failed: ${e.message}`);
    this.emit('connect-failure', e);
    this.scheduleReconnect();
  }

  private scheduleReconnect(): void {
    if (!this.running || this.reconnectTimer) return;
    const delay = this.options.reconnectMs ?? DEFAULT_RECONNECT_DELAY_MS;
    this.reconnectTimer = this.clock.setTimer(this.clock.now() + delay, () => {
      this.reconnectTimer = undefined;
      this.connect();
    });
  }

  private handle(events: MessiConnectionEvent[]): void {
    for (const e of events) {
      if (e.type === 'message') {
        this.emit('message', e.message);
      } else {
        this.teardown(e);
        return;
      }
    }
    this.flush();
    this.arm();
  }

  private flush(): void {
    const core = this.core;
    const socket = this.socket;
    if (!core || !socket || !this.up) return;
    for (const frame of core.takeOutput()) socket.write(frame);
    const cap = this.options.maxOutputBytes ?? DEFAULT_MAX_OUTPUT_BYTES;
    if (socket.writableLength > cap) {
      this.teardown(core.close('slow-reader', `${socket.writableLength} bytes queued to a server that does not read (cap ${cap})`));
    }
  }

  private arm(): void {
    const core = this.core;
    if (!core || !this.up) return;
    const at = core.nextDeadline();
    if (at === this.timerAt) return;
    this.timer?.cancel();
    this.timerAt = at;
    this.timer =
      at === Infinity
        ? undefined
        : this.clock.setTimer(at, () => {
            this.timer = undefined;
            this.timerAt = Infinity;
            if (this.core === core) this.handle(core.poll(this.clock.now()));
          });
  }

  private teardown(e: MessiConnectionEvent | undefined): void {
    this.timer?.cancel();
    this.timer = undefined;
    this.timerAt = Infinity;
    this.connectTimer?.cancel();
    this.connectTimer = undefined;
    const socket = this.socket;
    this.socket = undefined;
    const wasUp = this.up;
    this.up = false;
    if (socket) {
      if (e?.type === 'disconnect' && (e.reason === 'stopped' || e.reason === 'connection-closed')) {
        socket.end();
        socket.destroySoon();
      } else {
        socket.destroy();
      }
    }
    if (wasUp && e?.type === 'disconnect') {
      this.stats.disconnects++;
      if (e.reason !== 'stopped' && e.reason !== 'connection-closed') this.log(`messi: disconnected: ${e.reason}: ${e.detail}`);
      this.emit('disconnected', e.reason, e.detail);
    }
    this.scheduleReconnect();
  }
}
