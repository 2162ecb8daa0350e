/**
 * The Node-style layer over MSP sockets (sockets.ts): the seed's planned "buffered mode".
 *
 * - `MspStream`: a `Duplex` byte stream over one connection. Writes are cut into messages of at
 *   most `maxMessageSize`; a write waits (its callback is held) while MSP's send queue is full, so
 *   `write()` returning false and 'drain' work as for a TCP socket. The readable side stops
 *   consuming from MSP while it is above its `highWaterMark`: the connection's receive window
 *   then fills and the remote sender stops — backpressure end to end, no buffer grows.
 *   `end()` shuts our direction down; the readable side ends when the peer shuts down; an MSP
 *   error (timeout, reset) destroys the stream with an `MspStreamError`.
 * - `MspMessages`: the message mode — an async iterator of received messages (boundaries kept)
 *   and `send(message)` returning a promise that resolves once MSP queued it (waiting for room).
 * - `MspListener`: incoming connections on a port, as an async iterator and 'connection' events.
 *
 * Everything here is driven by `MspSockets.processing` (the gateway loop): no timers of its own.
 */
import { Duplex } from 'node:stream';
import { EventEmitter } from 'node:events';
import type { MspFecMode } from './connection.js';
import { MspState, type MspSocket, type MspSockets } from './sockets.js';

export interface MspStreamOptions {
  /** Readable and writable high-water marks, bytes (streams) or messages (message mode: default 16). */
  highWaterMark?: number;
  /** Priority of the data packets. Default 'bulk'. */
  priority?: 'bulk' | 'interactive';
  /** Forward error correction (REPAIR packets): 'on', 'off', 'auto'. Default: the service's connection option ('off'). */
  fec?: MspFecMode;
}

/** A connection that failed: `code` is the connection's error ('timeout', 'reset') or 'handler'. */
export class MspStreamError extends Error {
  override readonly name = 'MspStreamError';
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

function failure(sockets: MspSockets, sock: MspSocket): MspStreamError {
  const e = sockets.connectionOf(sock)?.error;
  if (e === 'timeout') return new MspStreamError('timeout', 'MSP connection timed out: nothing heard from the peer within the idle timeout');
  if (e === 'reset') return new MspStreamError('reset', 'MSP connection reset by the peer');
  return new MspStreamError('error', 'MSP connection failed');
}

function openSocket(sockets: MspSockets, sid: Uint8Array, port: number, options: MspStreamOptions): MspSocket {
  const sock = sockets.socket();
  try {
    if (options.priority) sockets.setPriority(sock, options.priority);
    if (options.fec) sockets.setFec(sock, options.fec);
    sockets.connect(sock, { sid, port });
  } catch (err) {
    sockets.close(sock);
    throw err;
  }
  return sock;
}

export class MspStream extends Duplex {
  private full = false;
  private pending: { chunk: Uint8Array; cb: (err?: Error | null) => void } | undefined;
  private readEnded = false;
  private closedByMsp = false;

  static connect(sockets: MspSockets, sid: Uint8Array, port: number, options: MspStreamOptions = {}): MspStream {
    return new MspStream(sockets, openSocket(sockets, sid, port, options), options);
  }

  constructor(
    private readonly sockets: MspSockets,
    readonly socket: MspSocket,
    options: MspStreamOptions = {},
  ) {
    super({ ...(options.highWaterMark !== undefined ? { highWaterMark: options.highWaterMark } : {}), allowHalfOpen: true });
    sockets.setHandler(socket, (_s, state, payload) => this.onSocket(state, payload));
  }

  get remote(): { sid: Uint8Array; port: number } | undefined {
    return this.sockets.getRemote(this.socket);
  }

  /** Handler of the socket (called by processing). */
  onSocket(state: number, payload: Uint8Array | undefined): number {
    if (state & MspState.CLOSED) {
      this.closedByMsp = true;
      if (state & MspState.ERROR) {
        if (!this.destroyed) this.destroy(failure(this.sockets, this.socket));
        return 0;
      }
      this.endReadable();
      if (this.pending) {
        const p = this.pending;
        this.pending = undefined;
        p.cb(new MspStreamError('closed', 'MSP connection closed before the data was queued'));
      }
      if (!this.destroyed) this.destroy();
      return 0;
    }
    if (state & MspState.ERROR) {
      if (!this.destroyed) this.destroy(failure(this.sockets, this.socket));
      return 0;
    }
    let used = 0;
    if (payload !== undefined && state & MspState.RECEIVED_DATA) {
      if (this.full || this.readEnded) return 0;
      if (!this.push(Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength))) this.full = true;
      used = payload.length;
    }
    if (state & MspState.SHUTDOWN_REMOTE) this.endReadable();
    if (state & MspState.DATA_OUT) this.flush();
    return used;
  }

  override _read(): void {
    if (this.full) {
      this.full = false;
      if (this.sockets.isValid(this.socket)) this.sockets.kick();
    }
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, cb: (err?: Error | null) => void): void {
    this.pending = { chunk: new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength), cb };
    this.flush();
  }

  override _final(cb: (err?: Error | null) => void): void {
    try {
      if (this.sockets.isValid(this.socket)) this.sockets.shutdown(this.socket);
      cb();
    } catch (err) {
      cb(err as Error);
    }
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    // Both sides done (the auto-destroy after 'end' and 'finish'): MSP still delivers our FIN and
    // closes the socket by itself. Anything else drops the connection (RESET to the peer).
    const graceful = err === null && this.readEnded && this.writableFinished;
    if (!graceful && !this.closedByMsp && this.sockets.isValid(this.socket)) this.sockets.close(this.socket);
    if (this.pending) {
      const p = this.pending;
      this.pending = undefined;
      p.cb(err ?? new MspStreamError('closed', 'stream destroyed'));
    }
    cb(err);
  }

  /** Queues as much of the pending write as MSP takes; its callback runs when all of it is queued. */
  private flush(): void {
    const p = this.pending;
    if (p === undefined || !this.sockets.isValid(this.socket)) return;
    try {
      while (p.chunk.length > 0) {
        const max = this.sockets.maxMessageSize(this.socket);
        const piece = p.chunk.subarray(0, max);
        const r = this.sockets.send(this.socket, piece);
        if (!r.ok) {
          if (r.code === 'EAGAIN') return; // DATA_OUT calls flush again
          continue; // EBADMSG: the path shrank between the two calls; cut again
        }
        p.chunk = p.chunk.subarray(piece.length);
      }
    } catch (err) {
      this.pending = undefined;
      p.cb(err as Error);
      return;
    }
    this.pending = undefined;
    p.cb();
  }

  private endReadable(): void {
    if (this.readEnded) return;
    this.readEnded = true;
    this.push(null);
  }
}

/** Message mode over one connection. */
export class MspMessages {
  private readonly queue: Uint8Array[] = [];
  private readonly waiters: Array<{ resolve: (r: IteratorResult<Uint8Array>) => void; reject: (e: Error) => void }> = [];
  private readonly sendWaiters: Array<() => void> = [];
  private ended = false;
  private failed: MspStreamError | undefined;
  private readonly highWaterMark: number;
  private closedResolve!: () => void;
  /** Resolves when the connection closed (gracefully or not). */
  readonly closed: Promise<void> = new Promise((r) => (this.closedResolve = r));

  static connect(sockets: MspSockets, sid: Uint8Array, port: number, options: MspStreamOptions = {}): MspMessages {
    return new MspMessages(sockets, openSocket(sockets, sid, port, options), options);
  }

  constructor(
    private readonly sockets: MspSockets,
    readonly socket: MspSocket,
    options: MspStreamOptions = {},
  ) {
    this.highWaterMark = Math.max(1, options.highWaterMark ?? 16);
    sockets.setHandler(socket, (_s, state, payload) => this.onSocket(state, payload));
  }

  get remote(): { sid: Uint8Array; port: number } | undefined {
    return this.sockets.getRemote(this.socket);
  }

  /** The error that ended the connection, if it failed. */
  get error(): MspStreamError | undefined {
    return this.failed;
  }

  /** Queues one message (up to the connection's maximum, fragmented on the path); waits while MSP's queue is full. */
  async send(message: Uint8Array): Promise<void> {
    for (;;) {
      if (this.failed) throw this.failed;
      if (!this.sockets.isValid(this.socket)) throw new MspStreamError('closed', 'MSP connection is closed');
      const r = this.sockets.send(this.socket, message, { fragment: true });
      if (r.ok) return;
      if (r.code === 'EBADMSG') throw new MspStreamError('too-large', r.message);
      await new Promise<void>((resolve) => this.sendWaiters.push(resolve));
    }
  }

  /** Ends our direction after the queued messages. */
  shutdown(): void {
    if (this.sockets.isValid(this.socket)) this.sockets.shutdown(this.socket);
  }

  /** Drops the connection (the peer gets a RESET). */
  close(): void {
    this.sockets.close(this.socket);
  }

  [Symbol.asyncIterator](): AsyncIterator<Uint8Array> {
    return {
      next: () => {
        const m = this.queue.shift();
        if (m !== undefined) {
          if (this.queue.length < this.highWaterMark) this.sockets.kick();
          return Promise.resolve({ value: m, done: false });
        }
        if (this.failed) return Promise.reject(this.failed);
        if (this.ended) return Promise.resolve({ value: undefined, done: true });
        return new Promise((resolve, reject) => this.waiters.push({ resolve, reject }));
      },
      return: () => {
        this.close();
        return Promise.resolve({ value: undefined, done: true });
      },
    };
  }

  private onSocket(state: number, payload: Uint8Array | undefined): number {
    if (state & MspState.ERROR && !this.failed) this.fail(failure(this.sockets, this.socket));
    if (state & MspState.CLOSED) {
      this.end();
      this.wakeSenders();
      this.closedResolve();
      return 0;
    }
    let used = 0;
    if (payload !== undefined && state & MspState.RECEIVED_DATA) {
      if (this.queue.length >= this.highWaterMark) return 0;
      const w = this.waiters.shift();
      if (w) w.resolve({ value: payload, done: false });
      else this.queue.push(payload);
      used = payload.length;
    }
    if (state & MspState.SHUTDOWN_REMOTE && (payload === undefined || used === payload.length)) this.end();
    if (state & MspState.DATA_OUT) this.wakeSenders();
    return used;
  }

  private end(): void {
    if (this.ended) return;
    this.ended = true;
    if (this.queue.length === 0) for (const w of this.waiters.splice(0)) w.resolve({ value: undefined, done: true });
  }

  private fail(err: MspStreamError): void {
    this.failed = err;
    this.wakeSenders();
    // Iterators waiting get the error; messages already queued are still handed out first.
    if (this.queue.length === 0) for (const w of this.waiters.splice(0)) w.reject(err);
  }

  private wakeSenders(): void {
    for (const w of this.sendWaiters.splice(0)) w();
  }
}

const ignore = (): void => undefined;

export interface MspListenerEvents<T> {
  connection: [T];
  error: [Error];
}

/** Incoming connections on a port. Connections not taken are held up to a bound (16), then refused. */
export class MspListener<T extends MspStream | MspMessages = MspStream | MspMessages> extends EventEmitter {
  readonly socket: MspSocket;
  private readonly backlog: T[] = [];
  private readonly waiters: Array<(r: IteratorResult<T>) => void> = [];
  private closedFlag = false;
  private readonly known = new Set<number>();

  constructor(
    private readonly sockets: MspSockets,
    readonly port: number,
    private readonly options: MspStreamOptions & { mode?: 'stream' | 'messages'; backlog?: number } = {},
  ) {
    super();
    const sock = (this.socket = sockets.socket());
    try {
      if (options.priority) sockets.setPriority(sock, options.priority);
      if (options.fec) sockets.setFec(sock, options.fec);
      sockets.setLocal(sock, { port });
      sockets.setHandler(sock, (s, state, payload) => this.onSocket(s, state, payload));
      sockets.listen(sock);
    } catch (err) {
      sockets.close(sock);
      throw err;
    }
  }

  close(): void {
    if (this.closedFlag) return;
    this.closedFlag = true;
    this.sockets.close(this.socket);
    for (const w of this.waiters.splice(0)) w({ value: undefined, done: true });
  }

  [Symbol.asyncIterator](): AsyncIterator<T> {
    return {
      next: () => {
        const c = this.backlog.shift();
        if (c !== undefined) {
          if (c instanceof MspStream) c.off('error', ignore);
          return Promise.resolve({ value: c, done: false });
        }
        if (this.closedFlag) return Promise.resolve({ value: undefined, done: true });
        return new Promise((resolve) => this.waiters.push(resolve));
      },
      return: () => {
        this.close();
        return Promise.resolve({ value: undefined, done: true });
      },
    };
  }

  private onSocket(sock: MspSocket, state: number, payload: Uint8Array | undefined): number {
    if (sock === this.socket) {
      if (state & MspState.CLOSED) this.close();
      return 0;
    }
    if (this.known.has(sock.id)) return 0; // not reached: the wrapper takes over the handler
    this.known.add(sock.id);
    const conn = (this.options.mode === 'messages' ? new MspMessages(this.sockets, sock, this.options) : new MspStream(this.sockets, sock, this.options)) as T;
    this.known.delete(sock.id);
    const w = this.waiters.shift();
    if (w) w({ value: conn, done: false });
    else if (this.listenerCount('connection') > 0) this.emit('connection', conn);
    else if (this.backlog.length < (this.options.backlog ?? 16)) {
      // Until somebody takes it, a failure of a waiting stream must not be an unhandled 'error'.
      if (conn instanceof MspStream) conn.on('error', ignore);
      this.backlog.push(conn);
    } else {
      this.sockets.close(sock);
      return 0;
    }
    // The announcing call carries no payload; a wrapper sees the socket's later calls itself.
    void payload;
    return 0;
  }
}
