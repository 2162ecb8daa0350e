/**
 * MeshgwClient: the typed app library for a running meshgw daemon (its Messi API, `meshgw.proto`,
 * default 127.0.0.1:7840). `import { MeshgwClient } from 'meshgw'`.
 *
 * - Requests are promises: each carries a request id, gets exactly one answer, and has a timeout.
 *   An `error_rsp` rejects with a `MeshgwApiError` (`code`, `message`, `maxBytes`).
 * - Events, incoming streams, datagrams and Strokkur messages are async iterators (each queue
 *   has a cap; the oldest item is dropped beyond it and counted in `dropped`).
 * - MSP streams are Node `Duplex`es with backpressure end to end over the API's credits: a write
 *   waits for the daemon's `stream_credit`; the client grants credit as the app reads.
 * - SIDs come out as 32-byte `Uint8Array`s and go in as those or as 64 hex digits (`sidToHex`,
 *   `sidFromHex` convert).
 * - When the connection drops, every pending request rejects, every stream is destroyed with a
 *   `MeshgwApiError('closed')` and every iterator throws it: nothing hangs silently.
 */
import { EventEmitter } from 'node:events';
import { Duplex } from 'node:stream';
import { MessiClient } from '../messi/client.js';
import type { MessiMessage } from '../messi/codec.js';
import type { MessiVersion } from '../messi/framing.js';
import { API_MAX_FRAME_BYTES, meshgwProtocol } from './protocol.js';

export const DEFAULT_API_HOST = '127.0.0.1';
export const DEFAULT_API_PORT = 7840;
export const DEFAULT_REQUEST_TIMEOUT_MS = 10_000;
/** Default read high-water mark of a stream, and so the credit granted to the daemon, bytes. */
export const DEFAULT_STREAM_HIGH_WATER_MARK = 256 * 1024;
/** Largest `stream_data` piece the client sends (well below Messi's 64 KiB frame cap). */
const MAX_DATA_PIECE = 16 * 1024;
/** Cap of every receive queue (events, datagrams, Strokkur messages, accepted streams). */
export const DEFAULT_QUEUE_CAP = 256;

// ---------------------------------------------------------------- SIDs

export type SidInput = Uint8Array | string;

export function sidToHex(sid: Uint8Array): string {
  return Buffer.from(sid.buffer, sid.byteOffset, sid.byteLength).toString('hex');
}

/** 64 hex digits → 32 bytes; throws RangeError otherwise. */
export function sidFromHex(hex: string): Uint8Array {
  const clean = hex.trim().toLowerCase();
  if (!/^[0-9a-f]{64}$/.test(clean)) throw new RangeError(`a SID is 64 hex digits, got '${hex}'`);
  return Uint8Array.from(Buffer.from(clean, 'hex'));
}

/** A SID from bytes or hex; throws RangeError if it is not 32 bytes. */
export function toSid(sid: SidInput): Uint8Array {
  if (typeof sid === 'string') return sidFromHex(sid);
  if (sid.length !== 32) throw new RangeError(`a SID is 32 bytes, got ${sid.length}`);
  return sid;
}

// ---------------------------------------------------------------- errors

/** A refusal by the daemon (`error_rsp`), a closed connection (`closed`) or a timeout (`timeout`). */
export class MeshgwApiError extends Error {
  override readonly name = 'MeshgwApiError';
  constructor(
    /** "bad-request", "unauthorized", "no-route", "no-key", "too-large", "queue-full", "port-in-use",
     * "not-found", "limit", "closed", "internal" from the daemon; "timeout" locally. */
    readonly code: string,
    message: string,
    /** With "too-large": the largest size accepted. */
    readonly maxBytes?: number,
  ) {
    super(message);
  }
}

/** A stream that failed: `code` is the daemon's `stream_closed_ind` error ("timeout", "reset", "credit", "limit"). */
export class MeshgwStreamError extends Error {
  override readonly name = 'MeshgwStreamError';
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/** The error of a failed connect: `code` 'no-daemon' (nothing listens) or 'unauthorized'. */
export class MeshgwConnectError extends Error {
  override readonly name = 'MeshgwConnectError';
  constructor(
    readonly code: 'no-daemon' | 'unauthorized' | 'failed',
    message: string,
  ) {
    super(message);
  }
}

// ---------------------------------------------------------------- types

export interface AirtimeWindow {
  name: string;
  windowMs: number;
  usedMs: number;
  leftMs: number;
}

export interface InterfaceStatus {
  name: string;
  kind: string;
  /** "down", "connecting", "up", "reconnecting", "closed". */
  state: string;
  mtu: number;
  /** bits/s; 0 when unknown. */
  bitRate: number;
  airtime: AirtimeWindow[];
  queuedFrames: number;
  queuedBytes: number;
  counters: { framesSent: number; framesReceived: number; bytesSent: number; bytesReceived: number; framesRefused: number };
}

export interface DaemonStatus {
  sid: Uint8Array;
  version: string;
  uptimeMs: number;
  simulated: boolean;
  interfaces: InterfaceStatus[];
}

export interface Neighbour {
  sid: Uint8Array;
  interface: string;
  symmetric: boolean;
  /** Share of its HELLOs we heard, 0..1. */
  inRatio: number;
  /** Share of ours it heard, 0..1. */
  outRatio: number;
  rssiDbm?: number;
  snrDb?: number;
  lastHeardMsAgo: number;
}

export interface Route {
  destination: Uint8Array;
  nextHop: Uint8Array;
  interface: string;
  hops: number;
  /** Expected airtime per byte delivered, ms. */
  metric: number;
  pathMtu: number;
  maxPayload: number;
}

export type MeshgwEventName = 'neighbour-up' | 'neighbour-down' | 'route-changed' | 'interface-state' | 'airtime-low' | 'frame-refused';

export interface MeshgwEvent {
  event: MeshgwEventName | string;
  /** neighbour-*, route-changed. */
  sid?: Uint8Array;
  interface?: string;
  /** interface-state: the new state; route-changed: "up" or "gone". */
  state?: string;
  reason?: string;
  /** airtime-low. */
  leftPercent?: number;
  /** Daemon uptime when it happened, ms. */
  atMs: number;
}

export interface PingResult {
  rttMs: number;
  hops: number;
}

export interface Datagram {
  sid: Uint8Array;
  port: number;
  data: Uint8Array;
}

export interface StrokkurMessage {
  sid: Uint8Array;
  /** 16-byte message id. */
  uuid: Uint8Array;
  data: Uint8Array;
}

export interface StrokkurProgress {
  uuid: Uint8Array;
  chunksSent: number;
  chunksTotal: number;
}

export interface StrokkurResult {
  uuid: Uint8Array;
  /** True when every chunk was sent. */
  ok: boolean;
  /** The daemon's reason when not ok. */
  error?: string;
}

export interface ConnectOptions {
  /** Default 127.0.0.1. */
  host?: string;
  /** Default 7840. */
  port?: number;
  /** The daemon's API token (needed on a listening address other than loopback). */
  token?: string;
  /** Messi framing version. Default `current`. */
  version?: MessiVersion;
  /** Default 10,000 ms. */
  requestTimeoutMs?: number;
  /** Give up connecting after this long. Default 5000 ms. */
  connectTimeoutMs?: number;
}

export interface StreamOptions {
  /** Interactive (small, latency-first) rather than bulk priority. */
  interactive?: boolean;
  /** Forward error correction: 'off', 'on', 'auto'; default: the daemon's. */
  fec?: 'off' | 'on' | 'auto';
  /** Read buffer, bytes: the credit granted to the daemon. Default 256 KiB. */
  highWaterMark?: number;
}

// ---------------------------------------------------------------- a bounded async queue

/** A queue read as an async iterator: capped (drops the oldest), ends or fails once. */
export class AsyncQueue<T> implements AsyncIterableIterator<T> {
  private readonly items: T[] = [];
  private readonly waiters: Array<{ resolve: (r: IteratorResult<T>) => void; reject: (e: Error) => void }> = [];
  private done = false;
  private failure: Error | undefined;
  /** Items dropped because the queue was full. */
  dropped = 0;

  constructor(
    private readonly cap: number = DEFAULT_QUEUE_CAP,
    private readonly onReturn?: () => void,
  ) {}

  get ended(): boolean {
    return this.done;
  }

  push(item: T): void {
    if (this.done) return;
    const w = this.waiters.shift();
    if (w) {
      w.resolve({ value: item, done: false });
      return;
    }
    if (this.items.length >= this.cap) {
      this.items.shift();
      this.dropped++;
    }
    this.items.push(item);
  }

  /** Ends the iteration after the queued items; with an error, the iteration throws it after them. */
  end(err?: Error): void {
    if (this.done) return;
    this.done = true;
    this.failure = err;
    for (const w of this.waiters.splice(0)) {
      if (err) w.reject(err);
      else w.resolve({ value: undefined, done: true });
    }
  }

  next(): Promise<IteratorResult<T>> {
    if (this.items.length > 0) return Promise.resolve({ value: this.items.shift()!, done: false });
    if (this.done) {
      return this.failure ? Promise.reject(this.failure) : Promise.resolve({ value: undefined, done: true });
    }
    return new Promise((resolve, reject) => this.waiters.push({ resolve, reject }));
  }

  return(): Promise<IteratorResult<T>> {
    this.items.length = 0;
    this.failure = undefined;
    this.end();
    this.onReturn?.();
    return Promise.resolve({ value: undefined, done: true });
  }

  [Symbol.asyncIterator](): AsyncIterableIterator<T> {
    return this;
  }
}

// ---------------------------------------------------------------- streams

/** One MSP stream through the daemon: a Duplex of bytes. `remote` is the peer's SID and port. */
export class MeshgwStream extends Duplex {
  /** Bytes the daemon allows us to send beyond what we sent. */
  private sendCredit: number;
  /** Total credit granted to the daemon, and total bytes received from it. */
  private granted: number;
  private received = 0;
  private pending: { chunk: Uint8Array; cb: (err?: Error | null) => void } | undefined;
  private readEnded = false;
  private closedByServer = false;
  private readonly hwm: number;
  private settleClosed!: (error: string | undefined) => void;
  /**
   * Settles when the daemon reports the stream gone: '' after a clean end of both directions
   * (our FIN delivered too), else its error ("timeout", "reset", "closed", "credit", "limit");
   * undefined when the connection to the daemon was lost first. A program that disconnects
   * right after a clean end should wait for it, or the daemon resets the stream it drops.
   */
  readonly whenClosed: Promise<string | undefined> = new Promise((resolve) => (this.settleClosed = resolve));

  /** @internal Created by MeshgwClient.openStream and by listeners. */
  constructor(
    private readonly client: MeshgwClient,
    readonly streamId: number,
    readonly remote: { sid: Uint8Array; port: number },
    init: { sendCredit: number; granted: number; maxMessage: number; highWaterMark: number },
  ) {
    super({ allowHalfOpen: true, readableHighWaterMark: init.highWaterMark });
    this.sendCredit = init.sendCredit;
    this.granted = init.granted;
    this.hwm = init.highWaterMark;
    this.maxMessage = init.maxMessage;
  }

  /** Largest message on the path as the daemon said at open (0: not given). */
  readonly maxMessage: number;

  /**
   * `for await (const chunk of stream)` reads the incoming direction to its end and leaves the
   * outgoing one open, so a program can read a request to its end and then answer on the same
   * stream. (Node's default for a Duplex destroys the whole stream when the loop ends, which
   * would reset an answer not yet written.) Leaving the loop early leaves the stream open too:
   * end() or destroy() it.
   */
  override [Symbol.asyncIterator](): AsyncIterableIterator<unknown> {
    return this.iterator({ destroyOnReturn: false }) as AsyncIterableIterator<unknown>;
  }

  /** Remote SID in hex. */
  get remoteSid(): string {
    return sidToHex(this.remote.sid);
  }

  /** @internal */
  onData(data: Uint8Array): void {
    if (this.readEnded || this.destroyed) return;
    this.received += data.length;
    if (this.received > this.granted) {
      // The daemon sent beyond our credit: a broken contract, not something to buffer.
      this.destroy(new MeshgwStreamError('credit', `the daemon sent ${this.received - this.granted} bytes beyond the credit`));
      return;
    }
    this.push(Buffer.from(data.buffer, data.byteOffset, data.byteLength));
  }

  /** @internal */
  onCredit(bytes: number): void {
    this.sendCredit += bytes;
    this.flush();
  }

  /** @internal */
  onEnd(): void {
    this.endReadable();
  }

  /** @internal */
  onClosed(error: string): void {
    this.closedByServer = true;
    this.settleClosed(error);
    if (this.destroyed) return;
    if (error === '' || error === 'closed') {
      // Both directions ended: what is buffered is still read; then the Duplex destroys itself.
      this.endReadable();
      if (this.pending) this.failPending(new MeshgwStreamError('closed', 'the stream closed before the data was sent'));
      else if (!this.writableEnded) this.end();
      return;
    }
    this.destroy(new MeshgwStreamError(error, streamErrorText(error)));
  }

  /** @internal The connection dropped (err), or the app closed the client (no error). */
  onConnectionLost(err: Error | undefined): void {
    this.closedByServer = true;
    this.settleClosed(undefined);
    if (!this.destroyed) this.destroy(err);
  }

  override _read(): void {
    this.maybeGrant();
  }

  /** Every consumption passes here (flowing mode, iterators and pipes call read() too). */
  override read(size?: number): any {
    const r: unknown = super.read(size);
    this.maybeGrant();
    return r;
  }

  /**
   * Consumed = received minus what still sits in the read buffer. Keeps the daemon's credit at
   * highWaterMark ahead of consumption, granting in chunks of at least half of it.
   */
  private maybeGrant(): void {
    if (this.readEnded || this.destroyed) return;
    const consumed = this.received - this.readableLength;
    const outstanding = this.granted - consumed;
    if (outstanding > this.hwm / 2) return;
    const more = consumed + this.hwm - this.granted;
    if (more <= 0) return;
    this.granted += more;
    this.client.sendRaw({ type: 'stream_credit', body: { stream_id: this.streamId, bytes: more } });
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, cb: (err?: Error | null) => void): void {
    this.pending = { chunk: new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength), cb };
    this.flush();
  }

  override _final(cb: (err?: Error | null) => void): void {
    if (!this.closedByServer) this.client.sendRaw({ type: 'stream_shutdown', body: { stream_id: this.streamId } });
    cb();
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    const graceful = err === null && this.readEnded && this.writableFinished;
    if (!graceful && !this.closedByServer) this.client.sendRaw({ type: 'stream_close', body: { stream_id: this.streamId } });
    // Registered until the daemon's stream_closed_ind (or the connection's loss) settles `closed`.
    if (this.closedByServer) this.client.forgetStream(this.streamId);
    if (this.pending) this.failPending(err ?? new MeshgwStreamError('closed', 'stream destroyed'));
    cb(err);
  }

  private flush(): void {
    const p = this.pending;
    if (!p || this.destroyed) return;
    while (p.chunk.length > 0 && this.sendCredit > 0) {
      const n = Math.min(p.chunk.length, this.sendCredit, MAX_DATA_PIECE);
      const piece = p.chunk.slice(0, n);
      if (!this.client.sendRaw({ type: 'stream_data', body: { stream_id: this.streamId, data: piece } })) return;
      this.sendCredit -= n;
      p.chunk = p.chunk.subarray(n);
    }
    if (p.chunk.length === 0) {
      this.pending = undefined;
      p.cb();
    }
  }

  private failPending(err: Error): void {
    const p = this.pending;
    this.pending = undefined;
    p?.cb(err);
  }

  private endReadable(): void {
    if (this.readEnded) return;
    this.readEnded = true;
    this.push(null);
  }
}

function streamErrorText(code: string): string {
  switch (code) {
    case 'timeout':
      return 'MSP stream timed out: nothing heard from the peer within the idle timeout';
    case 'reset':
      return 'MSP stream reset by the peer';
    case 'credit':
      return 'the daemon closed the stream: data beyond its credit';
    case 'limit':
      return 'the daemon closed the stream: a limit was reached';
    default:
      return `MSP stream failed: ${code}`;
  }
}

/** Incoming streams on one port: an async iterable and 'stream' events. `close()` unlistens. */
export class MeshgwListener extends EventEmitter<{ stream: [MeshgwStream]; close: [] }> implements AsyncIterable<MeshgwStream> {
  private readonly queue: AsyncQueue<MeshgwStream>;
  private closed = false;

  /** @internal */
  constructor(
    private readonly client: MeshgwClient,
    readonly port: number,
    readonly highWaterMark: number,
  ) {
    super();
    this.queue = new AsyncQueue<MeshgwStream>(16, () => void this.close());
  }

  /** @internal */
  onAccept(stream: MeshgwStream): void {
    if (this.listenerCount('stream') > 0) {
      this.emit('stream', stream);
      return;
    }
    if (this.queue.ended) {
      stream.destroy();
      return;
    }
    // Until somebody takes it, a failure of a waiting stream must not be an unhandled 'error'.
    const ignore = (): void => undefined;
    stream.on('error', ignore);
    this.queue.push(stream);
  }

  /** @internal The connection dropped (err), or the app closed the client (no error). */
  onConnectionLost(err: Error | undefined): void {
    this.closed = true;
    this.queue.end(err);
    this.emit('close');
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.queue.end();
    this.client.forgetListener(this.port);
    this.emit('close');
    if (this.client.isOpen) {
      await this.client.request('stream_unlisten_req', { port: this.port }, 'stream_unlisten_rsp').catch(() => undefined);
    }
  }

  [Symbol.asyncIterator](): AsyncIterator<MeshgwStream> {
    return {
      next: () => this.queue.next(),
      return: () => this.queue.return(),
    };
  }
}

// ---------------------------------------------------------------- datagrams

/** A bound datagram port: `send` and an async iterator of received datagrams. */
export class MeshgwDatagramSocket implements AsyncIterable<Datagram> {
  private readonly queue: AsyncQueue<Datagram>;
  private closed = false;

  /** @internal */
  constructor(
    private readonly client: MeshgwClient,
    readonly port: number,
  ) {
    this.queue = new AsyncQueue<Datagram>(DEFAULT_QUEUE_CAP, () => void this.close());
  }

  /** Datagrams dropped because nobody read them in time. */
  get dropped(): number {
    return this.queue.dropped;
  }

  /** Sends one datagram from this port; resolves once the daemon accepted it. */
  async send(sid: SidInput, port: number, data: Uint8Array, options: { interactive?: boolean } = {}): Promise<void> {
    await this.client.request(
      'datagram_send_req',
      { port: this.port, sid: toSid(sid), remote_port: port, data, interactive: options.interactive === true },
      'datagram_send_rsp',
    );
  }

  /** @internal */
  onDatagram(d: Datagram): void {
    this.queue.push(d);
  }

  /** @internal The connection dropped (err), or the app closed the client (no error). */
  onConnectionLost(err: Error | undefined): void {
    this.closed = true;
    this.queue.end(err);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.queue.end();
    this.client.forgetDatagramSocket(this.port);
    if (this.client.isOpen) {
      await this.client.request('datagram_unbind_req', { port: this.port }, 'datagram_unbind_rsp').catch(() => undefined);
    }
  }

  [Symbol.asyncIterator](): AsyncIterator<Datagram> {
    return { next: () => this.queue.next(), return: () => this.queue.return() };
  }
}

// ---------------------------------------------------------------- Strokkur

export interface StrokkurSendOptions {
  /** Redundant rows; default: the daemon's. */
  redundancy?: number;
  onProgress?: (p: StrokkurProgress) => void;
}

/** Strokkur messages (connectionless, FEC-protected) through the daemon. */
export class MeshgwStrokkur extends EventEmitter<{ progress: [StrokkurProgress] }> {
  /** @internal uuid hex → the send waiting for its result. */
  readonly sends = new Map<string, { uuid: Uint8Array; resolve: (r: StrokkurResult) => void; onProgress?: (p: StrokkurProgress) => void }>();
  /** @internal port → its queue. */
  readonly ports = new Map<number, AsyncQueue<StrokkurMessage & { port: number }>>();

  /** @internal */
  constructor(private readonly client: MeshgwClient) {
    super();
  }

  /**
   * Sends one message (up to 4 MiB); resolves with the result once every chunk was sent or the
   * send failed (`ok: false`, `error`). Progress comes to `onProgress` and as 'progress' events.
   */
  send(sid: SidInput, port: number, data: Uint8Array, options: StrokkurSendOptions = {}): Promise<StrokkurResult> {
    return new Promise<StrokkurResult>((resolve, reject) => {
      this.client
        .request(
          'strokkur_send_req',
          { sid: toSid(sid), port, data, redundancy: options.redundancy ?? 0 },
          'strokkur_send_rsp',
          (body) => {
            // Registered as the answer is dispatched, before any progress for it can arrive.
            const uuid = bytesField(body, 'uuid');
            this.sends.set(sidToHex(uuid), { uuid, resolve, ...(options.onProgress ? { onProgress: options.onProgress } : {}) });
            return uuid;
          },
        )
        .catch(reject);
    });
  }

  /** Messages arriving on `port`, as an async iterator (the daemon starts delivering once this resolves). */
  async listen(port: number): Promise<AsyncIterableIterator<StrokkurMessage>> {
    // Leaving the iterator (break, return) stops the daemon's listener too.
    const queue = new AsyncQueue<StrokkurMessage & { port: number }>(DEFAULT_QUEUE_CAP, () => {
      if (this.ports.get(port) !== queue) return;
      this.ports.delete(port);
      this.client.request('strokkur_unlisten_req', { port }, 'strokkur_unlisten_rsp', () => undefined).catch(() => undefined);
    });
    await this.client.request('strokkur_listen_req', { port }, 'strokkur_listen_rsp', () => {
      this.ports.set(port, queue);
      return undefined;
    });
    return queue;
  }
}

// ---------------------------------------------------------------- the client

interface Pending {
  expect: string;
  map: (body: Record<string, unknown>) => unknown;
  resolve: (value: unknown) => void;
  reject: (err: Error) => void;
  timer: NodeJS.Timeout;
}

export interface MeshgwClientEvents {
  event: [MeshgwEvent];
  close: [Error | undefined];
}

export class MeshgwClient extends EventEmitter<MeshgwClientEvents> {
  readonly host: string;
  readonly port: number;
  readonly strokkur: MeshgwStrokkur;
  private readonly messi: MessiClient;
  private readonly requestTimeoutMs: number;
  private readonly pending = new Map<number, Pending>();
  private readonly streams = new Map<number, MeshgwStream>();
  private readonly streamListeners = new Map<number, MeshgwListener>();
  private readonly datagramSockets = new Map<number, MeshgwDatagramSocket>();
  private readonly eventQueues = new Set<AsyncQueue<MeshgwEvent>>();
  private nextRequestId = 1;
  private open = false;
  /** Whether anything came from the daemon (a drop before that may be a refused authentication). */
  private answered = false;
  private closeError: Error | undefined;

  private constructor(messi: MessiClient, host: string, port: number, requestTimeoutMs: number) {
    super();
    this.messi = messi;
    this.host = host;
    this.port = port;
    this.requestTimeoutMs = requestTimeoutMs;
    this.strokkur = new MeshgwStrokkur(this);
  }

  /** Connects (and authenticates with `token`); rejects with a MeshgwConnectError if no daemon answers. */
  static connect(options: ConnectOptions = {}): Promise<MeshgwClient> {
    const host = options.host ?? DEFAULT_API_HOST;
    const port = options.port ?? DEFAULT_API_PORT;
    const where = `${host.includes(':') ? `[${host}]` : host}:${port}`;
    const messi = new MessiClient({
      protocol: meshgwProtocol(),
      host,
      port,
      version: options.version ?? 'current',
      connectTimeoutMs: options.connectTimeoutMs ?? 5000,
      reconnectMs: 3_600_000,
      // A Strokkur message (up to 4 MiB) arrives in one frame.
      maxFrameBytes: API_MAX_FRAME_BYTES,
    });
    const client = new MeshgwClient(messi, host, port, options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS);
    return new Promise<MeshgwClient>((resolve, reject) => {
      let settled = false;
      let authTimer: NodeJS.Timeout | undefined;
      const fail = (e: MeshgwConnectError): void => {
        if (settled) return;
        settled = true;
        clearTimeout(authTimer);
        void messi.stop();
        reject(e);
      };
      messi.once('connect-failure', (e) => {
        const code = (e as NodeJS.ErrnoException).code;
        const nothing = code === 'ECONNREFUSED' || code === 'ENOTFOUND' || code === 'EHOSTUNREACH' || /timeout/.test(e.message);
        fail(
          new MeshgwConnectError(
            nothing ? 'no-daemon' : 'failed',
            nothing
              ? `no meshgw daemon at ${where} (start one with \`meshgw\`, or give --api)`
              : `cannot connect to the meshgw daemon at ${where}: ${e.message}`,
          ),
        );
      });
      messi.on('disconnected', (_reason, detail) => {
        if (!settled) {
          fail(
            new MeshgwConnectError(
              options.token !== undefined ? 'unauthorized' : 'failed',
              options.token !== undefined
                ? `the meshgw daemon at ${where} refused the API token`
                : `the meshgw daemon at ${where} closed the connection (${detail}); does it need --api-token?`,
            ),
          );
          return;
        }
        const hint = options.token === undefined && !client.answered ? '; the daemon may want a token: give --api-token' : '';
        client.lost(new MeshgwApiError('closed', `connection to the meshgw daemon at ${where} lost (${detail})${hint}`));
      });
      messi.on('message', (m) => {
        if (!settled && (m.type === 'auth_rsp' || m.type === 'error_rsp')) {
          clearTimeout(authTimer);
          if (m.type === 'error_rsp') {
            fail(new MeshgwConnectError('unauthorized', `the meshgw daemon at ${where} refused the API token: ${str(m.body['message'])}`));
            return;
          }
          settled = true;
          client.open = true;
          resolve(client);
          return;
        }
        client.dispatch(m);
      });
      messi.once('connected', () => {
        if (options.token === undefined) {
          settled = true;
          client.open = true;
          resolve(client);
          return;
        }
        messi.send({ type: 'auth_req', body: { token: options.token } });
        const ms = options.connectTimeoutMs ?? 5000;
        authTimer = setTimeout(() => fail(new MeshgwConnectError('failed', `the meshgw daemon at ${where} did not answer auth_req within ${ms} ms`)), ms);
      });
      messi.start();
    });
  }

  get isOpen(): boolean {
    return this.open;
  }

  /** Closes the connection: streams are destroyed, iterators end, pending requests reject. */
  async close(): Promise<void> {
    if (!this.open && this.closeError) return;
    this.lost(new MeshgwApiError('closed', 'the client was closed'), false);
    await this.messi.stop();
  }

  // ---- requests

  async status(): Promise<DaemonStatus> {
    return this.request('status_req', {}, 'status_rsp', (b) => ({
      sid: bytesField(b, 'sid'),
      version: str(b['version']),
      uptimeMs: num(b['uptime_ms']),
      simulated: b['simulated'] === true,
      interfaces: list(b['interfaces']).map(
        (i): InterfaceStatus => ({
          name: str(i['name']),
          kind: str(i['kind']),
          state: str(i['state']),
          mtu: num(i['mtu']),
          bitRate: num(i['bit_rate']),
          airtime: list(i['airtime']).map((w) => ({
            name: str(w['name']),
            windowMs: num(w['window_ms']),
            usedMs: num(w['used_ms']),
            leftMs: num(w['left_ms']),
          })),
          queuedFrames: num(i['queued_frames']),
          queuedBytes: num(i['queued_bytes']),
          counters: {
            framesSent: num(i['frames_sent']),
            framesReceived: num(i['frames_received']),
            bytesSent: num(i['bytes_sent']),
            bytesReceived: num(i['bytes_received']),
            framesRefused: num(i['frames_refused']),
          },
        }),
      ),
    }));
  }

  async neighbours(): Promise<Neighbour[]> {
    return this.request('neighbours_req', {}, 'neighbours_rsp', (b) =>
      list(b['neighbours']).map((n): Neighbour => ({
        sid: bytesField(n, 'sid'),
        interface: str(n['interface']),
        symmetric: n['symmetric'] === true,
        inRatio: num(n['in_ratio']),
        outRatio: num(n['out_ratio']),
        ...(n['has_rssi'] === true ? { rssiDbm: num(n['rssi_dbm']), snrDb: num(n['snr_db']) } : {}),
        lastHeardMsAgo: num(n['last_heard_ms_ago']),
      })),
    );
  }

  /** Same as neighbours(). */
  neighbors(): Promise<Neighbour[]> {
    return this.neighbours();
  }

  async routes(): Promise<Route[]> {
    return this.request('routes_req', {}, 'routes_rsp', (b) =>
      list(b['routes']).map((r): Route => ({
        destination: bytesField(r, 'destination'),
        nextHop: bytesField(r, 'next_hop'),
        interface: str(r['interface']),
        hops: num(r['hops']),
        metric: num(r['metric']),
        pathMtu: num(r['path_mtu']),
        maxPayload: num(r['max_payload']),
      })),
    );
  }

  /** Pings the node's echo service; rejects with MeshgwApiError ('timeout' when no echo came, 'no-route', 'too-large', ...). */
  async ping(sid: SidInput, options: { size?: number; timeoutMs?: number } = {}): Promise<PingResult> {
    const timeoutMs = options.timeoutMs ?? 10_000;
    const ask = this.request(
      'ping_req',
      { sid: toSid(sid), size: options.size ?? 32, timeout_ms: timeoutMs },
      'ping_rsp',
      (b) => ({ rttMs: num(b['rtt_ms']), hops: num(b['hops']) }),
      // The daemon answers within timeoutMs; leave it room to say so itself.
      timeoutMs + 5000,
    );
    // A ping that timed out is the daemon's "timeout" refusal.
    return ask;
  }

  /**
   * Subscribes to events (all when `events` is empty) and returns them as an async iterator.
   * A new subscription replaces the daemon's last one (its event list is shared by the connection).
   */
  events(options: { events?: string[]; airtimeLowPercent?: number } = {}): AsyncIterableIterator<MeshgwEvent> {
    const queue: AsyncQueue<MeshgwEvent> = new AsyncQueue<MeshgwEvent>(DEFAULT_QUEUE_CAP, () => this.eventQueues.delete(queue));
    if (this.closeError) {
      queue.end(this.closeError);
      return queue;
    }
    this.eventQueues.add(queue);
    this.request(
      'subscribe_req',
      { events: options.events ?? [], airtime_low_percent: options.airtimeLowPercent ?? 0 },
      'subscribe_rsp',
    ).catch((e: Error) => {
      this.eventQueues.delete(queue);
      queue.end(e);
    });
    return queue;
  }

  /** Opens an MSP stream to `sid`:`port`. */
  async openStream(sid: SidInput, port: number, options: StreamOptions = {}): Promise<MeshgwStream> {
    const hwm = Math.max(1, options.highWaterMark ?? DEFAULT_STREAM_HIGH_WATER_MARK);
    const remote = { sid: toSid(sid), port };
    return this.request(
      'stream_open_req',
      { sid: remote.sid, port, interactive: options.interactive === true, fec: options.fec ?? '', credit: hwm },
      'stream_open_rsp',
      (b) => {
        // Registered as the answer is dispatched: data for it may follow in the same read.
        const id = num(b['stream_id']);
        const s = new MeshgwStream(this, id, remote, {
          sendCredit: num(b['credit']),
          granted: hwm,
          maxMessage: num(b['max_message']),
          highWaterMark: hwm,
        });
        this.streams.set(id, s);
        return s;
      },
    );
  }

  /** Accepts MSP streams on `port`; `close()` on the listener unlistens. */
  async listen(port: number, options: StreamOptions = {}): Promise<MeshgwListener> {
    const hwm = Math.max(1, options.highWaterMark ?? DEFAULT_STREAM_HIGH_WATER_MARK);
    return this.request(
      'stream_listen_req',
      { port, interactive: options.interactive === true, fec: options.fec ?? '', credit: hwm },
      'stream_listen_rsp',
      () => {
        const l = new MeshgwListener(this, port, hwm);
        this.streamListeners.set(port, l);
        return l;
      },
    );
  }

  /** Binds a datagram port (0: any free one). */
  async bind(port = 0): Promise<MeshgwDatagramSocket> {
    return this.request('datagram_bind_req', { port }, 'datagram_bind_rsp', (b) => {
      const s = new MeshgwDatagramSocket(this, num(b['port']));
      this.datagramSockets.set(s.port, s);
      return s;
    });
  }

  // ---- internals (used by the objects above)

  /** @internal Sends one request and resolves with `map(answer body)`, run as the answer is dispatched. */
  request<T = Record<string, unknown>>(
    type: string,
    body: Record<string, unknown>,
    expect: string,
    map: (body: Record<string, unknown>) => T = (b) => b as T,
    timeoutMs = this.requestTimeoutMs,
  ): Promise<T> {
    if (!this.open) return Promise.reject(this.closeError ?? new MeshgwApiError('closed', 'the client is not connected'));
    const id = this.nextRequestId;
    this.nextRequestId = this.nextRequestId >= 0xffff_ffff ? 1 : this.nextRequestId + 1;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        if (this.pending.delete(id)) reject(new MeshgwApiError('timeout', `no answer to ${type} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(id, { expect, map, resolve: resolve as (v: unknown) => void, reject, timer });
      try {
        this.messi.send({ type, body: { ...body, request_id: id } });
      } catch (e) {
        this.pending.delete(id);
        clearTimeout(timer);
        reject(e as Error);
      }
    });
  }

  /** @internal */
  sendRaw(message: MessiMessage): boolean {
    return this.open && this.messi.send(message);
  }

  /** @internal */
  forgetStream(id: number): void {
    this.streams.delete(id);
  }

  /** @internal */
  forgetListener(port: number): void {
    this.streamListeners.delete(port);
  }

  /** @internal */
  forgetDatagramSocket(port: number): void {
    this.datagramSockets.delete(port);
  }

  private dispatch(m: MessiMessage): void {
    this.answered = true;
    const b = m.body;
    if (m.type === 'error_rsp' || m.type.endsWith('_rsp')) {
      const id = num(b['request_id']);
      const p = this.pending.get(id);
      if (!p) return;
      this.pending.delete(id);
      clearTimeout(p.timer);
      if (m.type === 'error_rsp') {
        const max = num(b['max_bytes']);
        p.reject(new MeshgwApiError(str(b['code']) || 'internal', str(b['message']) || str(b['code']), max > 0 ? max : undefined));
      } else if (m.type !== p.expect) {
        p.reject(new MeshgwApiError('internal', `expected ${p.expect}, the daemon answered ${m.type}`));
      } else {
        try {
          p.resolve(p.map(b));
        } catch (e) {
          p.reject(e as Error);
        }
      }
      return;
    }
    switch (m.type) {
      case 'event_ind': {
        const sid = bytesField(b, 'sid');
        const e: MeshgwEvent = {
          event: str(b['event']),
          ...(sid.length > 0 ? { sid } : {}),
          ...(str(b['interface']) ? { interface: str(b['interface']) } : {}),
          ...(str(b['state']) ? { state: str(b['state']) } : {}),
          ...(str(b['reason']) ? { reason: str(b['reason']) } : {}),
          ...(str(b['event']) === 'airtime-low' ? { leftPercent: num(b['left_percent']) } : {}),
          atMs: num(b['at_ms']),
        };
        for (const q of this.eventQueues) q.push(e);
        this.emit('event', e);
        return;
      }
      case 'stream_data':
        this.streams.get(num(b['stream_id']))?.onData(bytesField(b, 'data'));
        return;
      case 'stream_credit':
        this.streams.get(num(b['stream_id']))?.onCredit(num(b['bytes']));
        return;
      case 'stream_end_ind':
        this.streams.get(num(b['stream_id']))?.onEnd();
        return;
      case 'stream_closed_ind': {
        const s = this.streams.get(num(b['stream_id']));
        this.streams.delete(num(b['stream_id']));
        s?.onClosed(str(b['error']));
        return;
      }
      case 'stream_accept_ind': {
        const id = num(b['stream_id']);
        const l = this.streamListeners.get(num(b['port']));
        if (!l) {
          this.sendRaw({ type: 'stream_close', body: { stream_id: id } });
          return;
        }
        const s = new MeshgwStream(this, id, { sid: bytesField(b, 'sid'), port: num(b['remote_port']) }, {
          sendCredit: num(b['credit']),
          granted: l.highWaterMark,
          maxMessage: 0,
          highWaterMark: l.highWaterMark,
        });
        this.streams.set(id, s);
        l.onAccept(s);
        return;
      }
      case 'datagram_ind':
        this.datagramSockets.get(num(b['port']))?.onDatagram({
          sid: bytesField(b, 'sid'),
          port: num(b['remote_port']),
          data: bytesField(b, 'data'),
        });
        return;
      case 'strokkur_progress_ind': {
        const p: StrokkurProgress = { uuid: bytesField(b, 'uuid'), chunksSent: num(b['chunks_sent']), chunksTotal: num(b['chunks_total']) };
        this.strokkur.sends.get(sidToHex(p.uuid))?.onProgress?.(p);
        this.strokkur.emit('progress', p);
        return;
      }
      case 'strokkur_result_ind': {
        const uuid = bytesField(b, 'uuid');
        const key = sidToHex(uuid);
        const s = this.strokkur.sends.get(key);
        if (!s) return;
        this.strokkur.sends.delete(key);
        const error = str(b['error']);
        s.resolve(error === '' ? { uuid, ok: true } : { uuid, ok: false, error });
        return;
      }
      case 'strokkur_ind':
        this.strokkur.ports.get(num(b['port']))?.push({
          port: num(b['port']),
          sid: bytesField(b, 'sid'),
          uuid: bytesField(b, 'uuid'),
          data: bytesField(b, 'data'),
        });
        return;
      default:
        return; // an indication of a newer daemon: ignored
    }
  }

  private lost(err: Error, emitError = true): void {
    if (this.closeError) return;
    this.closeError = err;
    this.open = false;
    void this.messi.stop();
    for (const p of this.pending.values()) {
      clearTimeout(p.timer);
      p.reject(err);
    }
    this.pending.clear();
    for (const s of [...this.streams.values()]) s.onConnectionLost(emitError ? err : undefined);
    this.streams.clear();
    for (const l of [...this.streamListeners.values()]) l.onConnectionLost(emitError ? err : undefined);
    this.streamListeners.clear();
    for (const d of [...this.datagramSockets.values()]) d.onConnectionLost(emitError ? err : undefined);
    this.datagramSockets.clear();
    for (const q of this.eventQueues) q.end(emitError ? err : undefined);
    this.eventQueues.clear();
    for (const q of this.strokkur.ports.values()) q.end(emitError ? err : undefined);
    this.strokkur.ports.clear();
    for (const s of this.strokkur.sends.values()) s.resolve({ uuid: s.uuid, ok: false, error: 'closed' });
    this.strokkur.sends.clear();
    this.emit('close', emitError ? err : undefined);
  }
}

// ---------------------------------------------------------------- decoded-body helpers

function num(v: unknown): number {
  return typeof v === 'number' ? v : typeof v === 'bigint' ? Number(v) : 0;
}

function str(v: unknown): string {
  return typeof v === 'string' ? v : '';
}

function list(v: unknown): Array<Record<string, unknown>> {
  return Array.isArray(v) ? (v as Array<Record<string, unknown>>) : [];
}

function bytesField(body: Record<string, unknown>, name: string): Uint8Array {
  const v = body[name];
  return v instanceof Uint8Array ? Uint8Array.from(v) : new Uint8Array(0);
}
