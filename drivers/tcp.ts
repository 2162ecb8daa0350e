/**
 * tcp: a direct link between two mesh sites over one TCP connection (issue 15), for sites with
 * no broker between them or where UDP is blocked. Two drivers:
 *
 * - `TcpListenLink` (`--tcp-listen HOST:PORT`) listens and serves up to `maxPeers`
 *   authenticated connections. It is a broadcast link, like a radio: `send(frame)` goes to every
 *   connected peer, `send(frame, { to })` to the peer at that endpoint only; received frames
 *   carry `from`, the peer's socket endpoint. It is 'up' while it listens, with or without
 *   peers; a frame sent while no peer is connected reaches nobody (counted `no-peers`).
 * - `TcpConnectLink` (`--tcp-connect HOST:PORT`) connects to one listener and reconnects with
 *   backoff (1 s doubling to 30 s, ±20 % jitter), like every stream link: 'opening' on the
 *   first attempt, 'up' once the handshake is done, 'reconnecting' after a failure, with the
 *   reason logged when it changes (not once per retry). Frames sent meanwhile wait in the
 *   bounded queue (oldest dropped, `queue-full`). `to` is ignored: there is one peer.
 *
 * WIRE FORMAT (meshgw's own, version 1). Both ends send, as soon as the connection is made:
 *
 *     "MGTCP1"                     6 bytes of ASCII magic (the 1 is the protocol version)
 *
 * and from then on only records:
 *
 *     type u8 | length u32 big-endian | payload (length bytes)
 *
 *     0x01 HELLO  flags u8 | mtu u32 BE | nonce 16 bytes       (21 bytes; up to 64, the rest
 *                 ignored: room for later versions)
 *                 flags bit 0: this end has a token and requires the peer to prove it;
 *                 the other bits are reserved (sent 0, ignored). mtu: the largest FRAME payload
 *                 this end accepts. nonce: fresh random bytes for this connection.
 *     0x02 AUTH   32 bytes: an HMAC-SHA-256 proof of the token (below)
 *     0x03 FRAME  one mesh frame, 0..(the receiver's mtu) bytes
 *     0x04 PING   empty; sent after `keepaliveMs` without anything else written
 *     0x05 BYE    a UTF-8 reason, ≤ 256 bytes; the sender closes the connection after it
 *
 * HANDSHAKE. Each end sends the magic and its HELLO at once. Then:
 * - Token on neither end: the connection is up when the peer's HELLO has arrived.
 * - Token on one end only: both ends see it in the HELLO flags and close, each saying which end
 *   lacks it (a BYE tells the peer).
 * - Token on both ends (K = the token's UTF-8 bytes, Hc/Hl = the connector's / listener's HELLO
 *   payload as sent):
 *     1. the connector sends AUTH  HMAC-SHA-256(K, "MGTCP1 auth C" | Hc | Hl);
 *     2. the listener checks it (constant-time); wrong: BYE "wrong token" and close. Right: it
 *        sends AUTH  HMAC-SHA-256(K, "MGTCP1 auth L" | Hl | Hc)  and the connection is up;
 *     3. the connector checks the listener's proof the same way, then it is up.
 *   The token never crosses the wire; the nonces make every proof single-use, the role labels
 *   stop a proof being reflected back, and hashing both HELLOs binds the flags and MTUs. The
 *   listener proves itself only to a connector that has proved itself, so nobody who merely
 *   connects gets material to guess the token offline.
 * - No FRAME is accepted before the handshake completes: any record other than the one expected
 *   (or a BYE) closes the connection, and its payload is never read into memory.
 * - The whole handshake must finish within `handshakeTimeoutMs` (10 s); otherwise the peer is
 *   disconnected.
 * What the token is not: encryption or per-frame integrity. It decides who may connect; once up,
 * the frames travel in clear over TCP (the mesh layer seals its own traffic). Across an
 * untrusted network, put the link inside a VPN or SSH tunnel as well.
 *
 * CAPS AND LIMITS
 * - Outgoing: the airtime model is a `RateCapAirtimeModel` (framesPerSecond, default 100;
 *   bytesPerSecond, default 1,000,000): the interface's pacer holds the link to both caps.
 *   `bitRate` = bytesPerSecond × 8. The drivers have no rate timer of their own.
 * - Incoming per connection: at most one record header (5 bytes) plus one payload within its
 *   type's limit is buffered; a FRAME over this end's MTU, a HELLO over 64 bytes, a BYE over
 *   256 bytes disconnects the peer as soon as the header is read, never buffering the body.
 * - Output per connection: the connector writes while the socket holds less than 64 KiB (the
 *   rest waits in the link queue, `queueCap`, default 256 frames); the listener writes each
 *   frame to every peer, and a peer with more than `maxPeerPendingBytes` (1 MiB) not yet taken
 *   by the kernel is disconnected (`stats.slowPeers`, the frame counted `slow-peer`).
 * - Connections: `maxPeers` (16) authenticated, and as many again in their handshake; beyond
 *   either, a new connection is closed at once (`stats.refused`).
 * - Liveness: a PING after `keepaliveMs` (10 s) without output; nothing at all received for
 *   `idleTimeoutMs` (45 s) disconnects the peer (a half-open connection, a frozen site).
 *
 * ERROR MODEL. Bad bytes from a peer are data, not exceptions: a wrong magic, an unknown or
 * misplaced record, an oversize length, a failed proof, a timeout — each closes that one
 * connection with a reason (sent to the peer in a BYE where it can still be read), counted in
 * `stats` and `counters.decodeErrors` (protocol errors), logged at most once a minute per peer
 * address. Nothing thrown escapes a socket callback; the link itself stays up. A port another
 * program holds leaves the listener 'down' with "cannot bind HOST:PORT: address in use" (the
 * daemon's start-up check looks for /cannot bind/) and it tries again with backoff.
 * Configuration errors throw at construction: `TcpListenError` for a listener beyond loopback
 * without a token (`checkTcpListen`, also for config validation), `RangeError` for bad numbers.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import net, { type Server, type Socket } from 'node:net';
import { isLoopbackHost } from '../src/link/address.js';
import { RateCapAirtimeModel } from '../src/link/airtime/rate-cap.js';
import { Backoff, type BackoffOptions } from '../src/link/backoff.js';
import { BaseLink, countDrop, type Endpoint, type LinkState } from '../src/link/link.js';

// ---------------------------------------------------------------------------------------------
// Options and defaults

export interface TcpLinkCommon {
  name: string;
  /** Largest frame carried, bytes; default 4096, at most 1 MiB. */
  mtu?: number;
  /** Outgoing frames per second at most (through the airtime model, applied by the pacer); default 100. */
  framesPerSecond?: number;
  /** Outgoing bytes per second at most (likewise); default 1,000,000. */
  bytesPerSecond?: number;
  /** Shared secret (a UTF-8 string, 16+ characters recommended); both ends must have the same. */
  token?: string;
  /** Frames kept while they cannot be written; beyond it the oldest are dropped. Default 256. */
  queueCap?: number;
  log?: (line: string) => void;
  /** The handshake must finish within this, ms; default 10,000. */
  handshakeTimeoutMs?: number;
  /** A PING after this long without output, ms; default 10,000. */
  keepaliveMs?: number;
  /** Nothing received for this long disconnects the peer, ms; default 45,000. */
  idleTimeoutMs?: number;
}

export interface TcpConnectOptions extends TcpLinkCommon {
  host: string;
  port: number;
  backoff?: BackoffOptions;
  /** A connection attempt that gets no answer is abandoned after this, ms; default 5,000. */
  connectTimeoutMs?: number;
}

export interface TcpListenOptions extends TcpLinkCommon {
  host: string;
  /** 0: a port the kernel picks (see `address`). */
  port: number;
  /** Authenticated connections at once; default 16. */
  maxPeers?: number;
  /** Output not yet taken by the kernel, per peer, before it is dropped as slow; default 1 MiB. */
  maxPeerPendingBytes?: number;
  /** Retry delays after a failed bind; default 1 s doubling to 30 s. */
  backoff?: BackoffOptions;
}

export const DEFAULT_TCP_MTU = 4096;
export const MAX_TCP_MTU = 1024 * 1024;
export const DEFAULT_TCP_FRAMES_PER_SECOND = 100;
export const DEFAULT_TCP_BYTES_PER_SECOND = 1_000_000;
export const DEFAULT_TCP_QUEUE_CAP = 256;
export const DEFAULT_TCP_MAX_PEERS = 16;
const DEFAULT_HANDSHAKE_TIMEOUT_MS = 10_000;
const DEFAULT_KEEPALIVE_MS = 10_000;
const DEFAULT_IDLE_TIMEOUT_MS = 45_000;
const DEFAULT_CONNECT_TIMEOUT_MS = 5_000;
const DEFAULT_MAX_PEER_PENDING_BYTES = 1024 * 1024;
/** The connector stops writing while the socket holds this much (the rest waits in the queue). */
const CONNECT_HIGH_WATER_BYTES = 64 * 1024;
/** After our BYE, the peer has this long to close before the socket is destroyed. */
const LINGER_MS = 2_000;
const RECOMMENDED_TOKEN_CHARS = 16;

// ---------------------------------------------------------------------------------------------
// Listening beyond loopback needs a token

/** A listening configuration that must not run (a non-loopback address without a token). */
export class TcpListenError extends Error {
  override readonly name = 'TcpListenError';
}

export { isLoopbackHost };

/** "host:port", with IPv6 addresses in brackets. */
export function formatHostPort(host: string, port: number): string {
  return host.includes(':') && !host.startsWith('[') ? `[${host}]:${port}` : `${host}:${port}`;
}

/**
 * Throws TcpListenError for a listening address beyond loopback without a token: anyone who can
 * reach the port could otherwise put frames into the mesh. An empty token counts as none.
 */
export function checkTcpListen(host: string, token: string | undefined, port?: number): void {
  if (isLoopbackHost(host) || (token !== undefined && token !== '')) return;
  const where = port === undefined ? host : formatHostPort(host, port);
  throw new TcpListenError(
    `--tcp-listen ${where} needs --tcp-token: anyone can connect to a TCP port on a non-loopback address, ` +
      'and the token is what is checked before any frame is accepted (or listen on 127.0.0.1)',
  );
}

// ---------------------------------------------------------------------------------------------
// Wire constants and encoding

const MAGIC = Buffer.from('MGTCP1', 'ascii');
const HEADER_BYTES = 5;
const RecordType = { HELLO: 0x01, AUTH: 0x02, FRAME: 0x03, PING: 0x04, BYE: 0x05 } as const;
const RECORD_NAMES: Record<number, string> = { 1: 'HELLO', 2: 'AUTH', 3: 'FRAME', 4: 'PING', 5: 'BYE' };
const HELLO_BYTES = 21;
const HELLO_MAX_BYTES = 64;
const NONCE_BYTES = 16;
const AUTH_BYTES = 32;
const BYE_MAX_BYTES = 256;
const FLAG_TOKEN = 0x01;
const EMPTY = new Uint8Array(0);

function encodeRecord(type: number, payload: Uint8Array): Buffer {
  const out = Buffer.allocUnsafeSlow(HEADER_BYTES + payload.length);
  out[0] = type;
  out.writeUInt32BE(payload.length, 1);
  out.set(payload, HEADER_BYTES);
  return out;
}

function byeRecord(reason: string): Buffer {
  let text = Buffer.from(reason, 'utf8');
  if (text.length > BYE_MAX_BYTES) text = text.subarray(0, BYE_MAX_BYTES);
  return encodeRecord(RecordType.BYE, text);
}

type Role = 'connect' | 'listen';

function proof(token: Buffer, prover: Role, proverHello: Uint8Array, verifierHello: Uint8Array): Buffer {
  return createHmac('sha256', token)
    .update(prover === 'connect' ? 'MGTCP1 auth C' : 'MGTCP1 auth L')
    .update(proverHello)
    .update(verifierHello)
    .digest();
}

/** Printable ASCII as a quoted string, anything else as hex: for reasons in the log. */
function showBytes(bytes: Uint8Array): string {
  const printable = bytes.every((b) => b >= 0x20 && b < 0x7f);
  return printable ? JSON.stringify(Buffer.from(bytes).toString('latin1')) : Buffer.from(bytes).toString('hex').replace(/(..)(?!$)/g, '$1 ');
}

/** A peer's BYE reason, made safe for one log line. */
function cleanReason(bytes: Uint8Array): string {
  const text = Buffer.from(bytes).toString('utf8').replace(/[\u0000-\u001f\u007f-\u009f]/g, '?').trim();
  return text === '' ? 'no reason given' : text;
}

function describeSocketError(err: NodeJS.ErrnoException): string {
  switch (err.code) {
    case 'ECONNRESET':
      return 'connection reset by the peer';
    case 'ECONNREFUSED':
      return 'connection refused';
    case 'EPIPE':
      return 'the peer has gone (broken pipe)';
    case 'ETIMEDOUT':
      return 'connection timed out';
    case 'EHOSTUNREACH':
      return 'host unreachable';
    case 'ENETUNREACH':
      return 'network unreachable';
    case 'ENOTFOUND':
      return 'host name not found';
    default:
      return err.message;
  }
}

/** IPv4-mapped IPv6 addresses (a dual-stack listener's view of IPv4 peers) as plain IPv4. */
function plainAddress(address: string): string {
  return address.startsWith('::ffff:') && net.isIPv4(address.slice(7)) ? address.slice(7) : address;
}

const endpointKey = (e: Endpoint): string => `${plainAddress(e.address)}|${e.port}`;

// ---------------------------------------------------------------------------------------------
// One connection: handshake, framing, keep-alive

/** Why a connection ended. */
export type TcpDisconnectCode =
  | 'bad-magic'
  | 'protocol'
  | 'oversize'
  | 'token-mismatch'
  | 'auth-failed'
  | 'handshake-timeout'
  | 'idle-timeout'
  | 'slow-peer'
  | 'peer-limit'
  | 'bye'
  | 'peer-closed'
  | 'socket-error'
  | 'closing'
  | 'internal';

interface SessionConfig {
  role: Role;
  token: Buffer | undefined;
  /** Largest FRAME payload we accept. */
  mtu: number;
  handshakeTimeoutMs: number;
  keepaliveMs: number;
  idleTimeoutMs: number;
}

interface SessionHandlers {
  up(session: Session): void;
  frame(session: Session, data: Uint8Array): void;
  /** Once per connection, whoever ended it. */
  end(session: Session, code: TcpDisconnectCode, message: string): void;
}

type Phase = 'magic' | 'hello' | 'auth' | 'up' | 'closed';

/**
 * The protocol on one socket, for either role. It owns the socket from construction: it writes
 * the magic and HELLO at once, reads records with at most one record buffered, and ends the
 * connection (calling `handlers.end` exactly once) on any violation, timeout or loss.
 */
class Session {
  readonly remote: Endpoint;
  /** The largest FRAME the peer accepts (from its HELLO). */
  peerMtu = 0;
  /** Resolves when the socket has closed. */
  readonly closed: Promise<void>;
  private phase: Phase = 'magic';
  private magicSeen = 0;
  private readonly header = Buffer.alloc(HEADER_BYTES);
  private headerFill = 0;
  private body: Uint8Array | undefined;
  private bodyType = 0;
  private bodyFill = 0;
  private readonly ownHello: Buffer;
  private peerHello: Uint8Array | undefined;
  private handshakeTimer: NodeJS.Timeout | undefined;
  private keepaliveTimer: NodeJS.Timeout | undefined;
  private lingerTimer: NodeJS.Timeout | undefined;
  private heardSinceTick = false;
  private wroteSinceTick = false;
  private silentMs = 0;

  constructor(
    private readonly socket: Socket,
    remote: Endpoint,
    private readonly config: SessionConfig,
    private readonly handlers: SessionHandlers,
  ) {
    this.remote = remote;
    this.closed = socket.closed ? Promise.resolve() : new Promise<void>((resolve) => socket.once('close', () => resolve()));
    const hello = Buffer.alloc(HELLO_BYTES);
    hello[0] = config.token ? FLAG_TOKEN : 0;
    hello.writeUInt32BE(config.mtu, 1);
    randomBytes(NONCE_BYTES).copy(hello, 5);
    this.ownHello = hello;

    socket.on('data', (chunk: Buffer) => this.guarded(() => this.onData(chunk)));
    socket.on('end', () => this.guarded(() => this.finish('peer-closed', 'the peer closed the connection')));
    // An 'error' listener stays for the socket's whole life: an unheard 'error' would throw.
    socket.on('error', (err: NodeJS.ErrnoException) => this.guarded(() => this.finish('socket-error', describeSocketError(err))));
    socket.on('close', () => {
      clearTimeout(this.lingerTimer);
      this.guarded(() => this.finish('peer-closed', 'the connection closed'));
    });
    this.handshakeTimer = setTimeout(
      () => this.guarded(() => this.fail('handshake-timeout', `no handshake within ${config.handshakeTimeoutMs} ms`, 'handshake timeout')),
      config.handshakeTimeoutMs,
    );
    this.handshakeTimer.unref();
    this.write(Buffer.concat([MAGIC, encodeRecord(RecordType.HELLO, hello)]));
  }

  get isUp(): boolean {
    return this.phase === 'up';
  }

  get isClosed(): boolean {
    return this.phase === 'closed';
  }

  /** Bytes written but not yet taken by the kernel. */
  get backlog(): number {
    return this.socket.writableLength;
  }

  /** Writes one encoded record (only once up); returns the socket's write answer. */
  writeRecord(record: Buffer): boolean {
    if (this.phase !== 'up') return false;
    return this.write(record);
  }

  onDrain(handler: () => void): void {
    this.socket.on('drain', handler);
  }

  /** Ends the connection from our side with a reason; `tell` (if given) goes to the peer in a BYE. */
  fail(code: TcpDisconnectCode, message: string, tell?: string): void {
    if (this.phase === 'closed') return;
    if (tell !== undefined && !this.socket.destroyed) {
      this.socket.end(byeRecord(tell));
      this.lingerTimer = setTimeout(() => this.socket.destroy(), LINGER_MS);
      this.lingerTimer.unref();
    } else {
      this.socket.destroy();
    }
    this.finish(code, message);
  }

  private write(bytes: Uint8Array): boolean {
    if (this.socket.destroyed || !this.socket.writable) return false;
    this.wroteSinceTick = true;
    return this.socket.write(bytes);
  }

  private finish(code: TcpDisconnectCode, message: string): void {
    if (this.phase === 'closed') return;
    this.phase = 'closed';
    this.body = undefined;
    clearTimeout(this.handshakeTimer);
    clearInterval(this.keepaliveTimer);
    // Whatever ended it, the socket goes too (after our BYE, once it has been flushed).
    if (this.lingerTimer === undefined) this.socket.destroy();
    this.handlers.end(this, code, message);
  }

  /** Runs a socket callback; nothing it throws escapes into the event loop. */
  private guarded(fn: () => void): void {
    try {
      fn();
    } catch (err) {
      this.fail('internal', `internal error: ${err instanceof Error ? err.message : String(err)}`);
    }
  }

  private onData(chunk: Buffer): void {
    this.heardSinceTick = true;
    let i = 0;
    while (i < chunk.length && this.phase !== 'closed') {
      if (this.phase === 'magic') {
        while (i < chunk.length && this.magicSeen < MAGIC.length) {
          if (chunk[i] !== MAGIC[this.magicSeen]) {
            const got = Buffer.concat([MAGIC.subarray(0, this.magicSeen), chunk.subarray(i, i + 8 - this.magicSeen)]);
            return this.fail('bad-magic', `not a meshgw tcp peer: expected "MGTCP1", got ${showBytes(got)}`, 'bad magic: expected "MGTCP1"');
          }
          this.magicSeen++;
          i++;
        }
        if (this.magicSeen === MAGIC.length) this.phase = 'hello';
        continue;
      }
      if (this.body === undefined) {
        const take = Math.min(HEADER_BYTES - this.headerFill, chunk.length - i);
        chunk.copy(this.header, this.headerFill, i, i + take);
        this.headerFill += take;
        i += take;
        if (this.headerFill < HEADER_BYTES) break;
        this.headerFill = 0;
        const type = this.header[0]!;
        const length = this.header.readUInt32BE(1);
        if (!this.admit(type, length)) return;
        if (length === 0) {
          this.handle(type, EMPTY);
          continue;
        }
        // A fresh buffer of its own per record: a delivered frame may be kept by its listener.
        this.body = new Uint8Array(length);
        this.bodyType = type;
        this.bodyFill = 0;
        continue;
      }
      const body = this.body;
      const take = Math.min(body.length - this.bodyFill, chunk.length - i);
      body.set(chunk.subarray(i, i + take), this.bodyFill);
      this.bodyFill += take;
      i += take;
      if (this.bodyFill === body.length) {
        this.body = undefined;
        this.handle(this.bodyType, body);
      }
    }
  }

  /** Judges a record header before its payload is read; false: the connection is being closed. */
  private admit(type: number, length: number): boolean {
    const name = RECORD_NAMES[type];
    if (name === undefined) {
      this.fail('protocol', `unknown record type 0x${type.toString(16).padStart(2, '0')}`, 'unknown record type');
      return false;
    }
    const expected: readonly number[] =
      this.phase === 'hello'
        ? [RecordType.HELLO, RecordType.BYE]
        : this.phase === 'auth'
          ? [RecordType.AUTH, RecordType.BYE]
          : [RecordType.FRAME, RecordType.PING, RecordType.BYE];
    if (!expected.includes(type)) {
      const when = this.phase === 'up' ? 'after the handshake' : 'before the handshake completed';
      this.fail('protocol', `unexpected ${name} record ${when}`, `unexpected ${name}`);
      return false;
    }
    const [min, max] =
      type === RecordType.HELLO
        ? [HELLO_BYTES, HELLO_MAX_BYTES]
        : type === RecordType.AUTH
          ? [AUTH_BYTES, AUTH_BYTES]
          : type === RecordType.FRAME
            ? [0, this.config.mtu]
            : type === RecordType.PING
              ? [0, 0]
              : [0, BYE_MAX_BYTES];
    if (length > max) {
      const what = type === RecordType.FRAME ? `the MTU of ${max} bytes` : `the limit of ${max} bytes`;
      this.fail('oversize', `a ${name} record of ${length} bytes exceeds ${what}`, `${name} of ${length} bytes exceeds ${what}`);
      return false;
    }
    if (length < min) {
      this.fail('protocol', `a ${name} record of ${length} bytes is too short (${min} at least)`, `short ${name}`);
      return false;
    }
    return true;
  }

  private handle(type: number, payload: Uint8Array): void {
    switch (type) {
      case RecordType.HELLO:
        return this.onHello(payload);
      case RecordType.AUTH:
        return this.onAuth(payload);
      case RecordType.FRAME:
        return this.handlers.frame(this, payload);
      case RecordType.PING:
        return;
      case RecordType.BYE: {
        return this.finish('bye', `closed by the peer: ${cleanReason(payload)}`);
      }
    }
  }

  private onHello(payload: Uint8Array): void {
    const view = Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength);
    const theirToken = (view[0]! & FLAG_TOKEN) !== 0;
    const peerMtu = view.readUInt32BE(1);
    if (peerMtu < 1) return this.fail('protocol', 'the peer announced an MTU of 0', 'MTU of 0');
    this.peerMtu = peerMtu;
    this.peerHello = payload;
    const token = this.config.token;
    if (token && !theirToken) {
      return this.fail('token-mismatch', 'the peer has no token and this end requires one (--tcp-token)', 'a token is required');
    }
    if (!token && theirToken) {
      return this.fail('token-mismatch', 'the peer requires a token and none is configured here (--tcp-token)', 'this end has no token');
    }
    if (!token) return this.up();
    this.phase = 'auth';
    // The connector proves itself first; the listener answers only a connector that has.
    if (this.config.role === 'connect') this.write(encodeRecord(RecordType.AUTH, proof(token, 'connect', this.ownHello, payload)));
  }

  private onAuth(payload: Uint8Array): void {
    const token = this.config.token!;
    const peerHello = this.peerHello!;
    const peerRole: Role = this.config.role === 'connect' ? 'listen' : 'connect';
    const want = proof(token, peerRole, peerHello, this.ownHello);
    if (!timingSafeEqual(want, payload)) return this.fail('auth-failed', 'wrong token (authentication failed)', 'wrong token');
    if (this.config.role === 'listen') this.write(encodeRecord(RecordType.AUTH, proof(token, 'listen', this.ownHello, peerHello)));
    this.up();
  }

  private up(): void {
    this.phase = 'up';
    clearTimeout(this.handshakeTimer);
    this.handshakeTimer = undefined;
    this.heardSinceTick = this.wroteSinceTick = false;
    this.silentMs = 0;
    const every = this.config.keepaliveMs;
    this.keepaliveTimer = setInterval(() => this.guarded(() => this.tick(every)), every);
    this.keepaliveTimer.unref();
    this.handlers.up(this);
  }

  private tick(elapsedMs: number): void {
    if (this.phase !== 'up') return;
    this.silentMs = this.heardSinceTick ? 0 : this.silentMs + elapsedMs;
    this.heardSinceTick = false;
    if (this.silentMs >= this.config.idleTimeoutMs) {
      this.fail('idle-timeout', `nothing received for ${this.silentMs} ms`, 'idle timeout');
      return;
    }
    if (!this.wroteSinceTick) this.write(encodeRecord(RecordType.PING, EMPTY));
    this.wroteSinceTick = false;
  }
}

// ---------------------------------------------------------------------------------------------
// Shared option handling

interface Resolved {
  mtu: number;
  airtime: RateCapAirtimeModel;
  bitRate: number;
  session: Omit<SessionConfig, 'role'>;
}

function positiveMs(name: string, what: string, value: number | undefined, fallback: number): number {
  const v = value ?? fallback;
  if (!Number.isFinite(v) || v <= 0) throw new RangeError(`${name}: ${what} must be a positive number of ms, got ${String(v)}`);
  return v;
}

function resolveCommon(o: TcpLinkCommon): Resolved {
  const mtu = o.mtu ?? DEFAULT_TCP_MTU;
  if (!Number.isInteger(mtu) || mtu < 1 || mtu > MAX_TCP_MTU) throw new RangeError(`${o.name}: MTU must be an integer in 1..${MAX_TCP_MTU}, got ${mtu}`);
  const bytesPerSecond = o.bytesPerSecond ?? DEFAULT_TCP_BYTES_PER_SECOND;
  const framesPerSecond = o.framesPerSecond ?? DEFAULT_TCP_FRAMES_PER_SECOND;
  let airtime: RateCapAirtimeModel;
  try {
    airtime = new RateCapAirtimeModel({ bytesPerSecond, framesPerSecond, maxBytes: mtu });
  } catch (err) {
    throw new RangeError(`${o.name}: ${(err as Error).message}`);
  }
  if (o.token === '') throw new RangeError(`${o.name}: the token must not be empty`);
  return {
    mtu,
    airtime,
    bitRate: bytesPerSecond * 8,
    session: {
      token: o.token === undefined ? undefined : Buffer.from(o.token, 'utf8'),
      mtu,
      handshakeTimeoutMs: positiveMs(o.name, 'handshakeTimeoutMs', o.handshakeTimeoutMs, DEFAULT_HANDSHAKE_TIMEOUT_MS),
      keepaliveMs: positiveMs(o.name, 'keepaliveMs', o.keepaliveMs, DEFAULT_KEEPALIVE_MS),
      idleTimeoutMs: positiveMs(o.name, 'idleTimeoutMs', o.idleTimeoutMs, DEFAULT_IDLE_TIMEOUT_MS),
    },
  };
}

function checkPort(name: string, port: number, min: number): void {
  if (!Number.isInteger(port) || port < min || port > 65_535) throw new RangeError(`${name}: port must be an integer in ${min}..65535, got ${port}`);
}

function checkHost(name: string, host: string): void {
  if (typeof host !== 'string' || host.trim() === '') throw new RangeError(`${name}: a host is required`);
}

function warnShortToken(name: string, token: string | undefined, log: (line: string) => void): void {
  if (token !== undefined && [...token].length < RECOMMENDED_TOKEN_CHARS) {
    log(`${name}: warning: the token has ${[...token].length} characters; ${RECOMMENDED_TOKEN_CHARS} or more random characters are recommended`);
  }
}

/** Counts a connection's end in the link's stats; returns whether it was a protocol error. */
function countEnd(stats: TcpLinkStats, code: TcpDisconnectCode): boolean {
  switch (code) {
    case 'bad-magic':
    case 'protocol':
    case 'oversize':
      stats.protocolErrors++;
      return true;
    case 'token-mismatch':
    case 'auth-failed':
      stats.authFailures++;
      return false;
    case 'handshake-timeout':
      stats.handshakeTimeouts++;
      return false;
    case 'idle-timeout':
      stats.idleTimeouts++;
      return false;
    case 'slow-peer':
      stats.slowPeers++;
      return false;
    case 'peer-limit':
      stats.refused++;
      return false;
    default:
      return false;
  }
}

/** Counters of connections, beside the link's frame counters. */
export interface TcpLinkStats {
  [key: string]: number | string | undefined;
  /** Authenticated connections now (0 or 1 for the connector). */
  peers: number;
  /** Connections that failed the token check (wrong token, a token on one end only). */
  authFailures: number;
  /** Connections closed for bytes that break the protocol (magic, record type, length). */
  protocolErrors: number;
  handshakeTimeouts: number;
  idleTimeouts: number;
  /** Listener: connections refused over the caps. */
  refused: number;
  /** Listener: peers dropped for not reading. */
  slowPeers: number;
  /** Frame listeners that threw (the frame was counted as received). */
  listenerErrors: number;
}

function newStats(): TcpLinkStats {
  return { peers: 0, authFailures: 0, protocolErrors: 0, handshakeTimeouts: 0, idleTimeouts: 0, refused: 0, slowPeers: 0, listenerErrors: 0 };
}

/**
 * Log lines about one remote address at most once per window; the repeats held back are
 * counted and mentioned in the next line. Bounded: the oldest address is forgotten first.
 */
class PerAddressLog {
  private readonly seen = new Map<string, { at: number; held: number }>();

  constructor(
    private readonly log: (line: string) => void,
    private readonly windowMs = 60_000,
    private readonly maxAddresses = 256,
  ) {}

  /** `kind` separates what is limited: a peer's refusals do not hide its connects. */
  line(address: string, kind: string, text: string): void {
    const now = Date.now();
    const key = `${kind} ${address}`;
    const entry = this.seen.get(key);
    if (entry && now - entry.at < this.windowMs) {
      entry.held++;
      return;
    }
    const held = entry?.held ?? 0;
    this.seen.delete(key);
    this.seen.set(key, { at: now, held: 0 });
    if (this.seen.size > this.maxAddresses) this.seen.delete(this.seen.keys().next().value!);
    this.log(held > 0 ? `${text} (and ${held} more like it from ${address} not logged)` : text);
  }
}

// ---------------------------------------------------------------------------------------------
// The connecting end

export class TcpConnectLink extends BaseLink {
  override readonly kind = 'tcp-connect' as const;
  readonly fullMesh = false;
  readonly host: string;
  readonly port: number;
  override readonly stats: TcpLinkStats & { remote: string; connects: number; connectFailures: number; peerMtu?: number };
  private readonly sessionConfig: SessionConfig;
  private readonly backoff: Backoff;
  private readonly connectTimeoutMs: number;
  private session: Session | undefined;
  private connecting: Socket | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  /** Resolves the promise of the attempt under way (open() waits for the first). */
  private settleAttempt: (() => void) | undefined;
  private lastFailure: string | undefined;
  private everUp = false;
  private waitingForDrain = false;
  private warnedPeerMtu = false;

  constructor(options: TcpConnectOptions) {
    checkHost(options.name, options.host);
    checkPort(options.name, options.port, 1);
    const r = resolveCommon(options);
    super(options.name, 'tcp-connect', r.mtu, r.airtime, r.bitRate, options.queueCap ?? DEFAULT_TCP_QUEUE_CAP, options.log);
    this.host = options.host;
    this.port = options.port;
    this.sessionConfig = { ...r.session, role: 'connect' };
    this.backoff = new Backoff(options.backoff);
    this.connectTimeoutMs = positiveMs(options.name, 'connectTimeoutMs', options.connectTimeoutMs, DEFAULT_CONNECT_TIMEOUT_MS);
    this.stats = { ...newStats(), remote: formatHostPort(options.host, options.port), connects: 0, connectFailures: 0 };
    warnShortToken(options.name, options.token, this.log);
  }

  /** Starts connecting; resolves after the first attempt (connected and authenticated, or failed). */
  async open(): Promise<void> {
    if (this.state === 'closed') throw new Error(`${this.name}: link is closed`);
    if (this.state !== 'down') return;
    this.setState('opening');
    await this.attempt();
  }

  async close(): Promise<void> {
    if (this.state === 'closed') return;
    clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    const session = this.session;
    this.session = undefined;
    this.connecting?.destroy();
    this.connecting = undefined;
    this.setState('closed');
    this.settleAttempt?.();
    if (session) {
      session.fail('closing', 'link closed', 'closing');
      await session.closed;
    }
  }

  protected pump(): void {
    const session = this.session;
    if (this.state !== 'up' || !session?.isUp || this.waitingForDrain) return;
    while (this.queue.length > 0) {
      if (session.backlog >= CONNECT_HIGH_WATER_BYTES) {
        this.waitingForDrain = true;
        return;
      }
      const frame = this.queue.shift()!;
      if (frame.data.length > session.peerMtu) {
        countDrop(this.counters, 'too-large-peer');
        continue;
      }
      session.writeRecord(encodeRecord(RecordType.FRAME, frame.data));
      this.sent(frame.data.length);
    }
  }

  private attempt(): Promise<void> {
    this.retryTimer = undefined;
    return new Promise<void>((resolve) => {
      let settled = false;
      this.settleAttempt = () => {
        if (settled) return;
        settled = true;
        this.settleAttempt = undefined;
        resolve();
      };
      if (this.state === 'closed') return this.settleAttempt();
      const where = this.stats.remote;
      const socket = net.connect({ host: this.host, port: this.port });
      this.connecting = socket;
      socket.setNoDelay(true);
      const timer = setTimeout(() => {
        socket.destroy();
        failed(`cannot connect to ${where}: no answer within ${this.connectTimeoutMs} ms`);
      }, this.connectTimeoutMs);
      const failed = (reason: string): void => {
        clearTimeout(timer);
        if (this.connecting !== socket) return;
        this.connecting = undefined;
        this.stats.connectFailures++;
        this.retry(reason);
        this.settleAttempt?.();
      };
      const onError = (err: NodeJS.ErrnoException): void => failed(`cannot connect to ${where}: ${describeSocketError(err)}`);
      socket.on('error', onError);
      socket.once('connect', () => {
        clearTimeout(timer);
        if (this.connecting !== socket) return void socket.destroy();
        this.connecting = undefined;
        this.stats.connects++;
        socket.setKeepAlive(true, 30_000);
        const remote = { address: plainAddress(socket.remoteAddress ?? this.host), port: socket.remotePort ?? this.port };
        const session = new Session(socket, remote, this.sessionConfig, {
          up: (s) => this.onUp(s),
          frame: (s, data) => this.onFrame(s, data),
          end: (s, code, message) => this.onEnd(s, code, message),
        });
        socket.off('error', onError); // the session listens from here on
        this.session = session;
        session.onDrain(() => {
          if (this.session !== session) return;
          this.waitingForDrain = false;
          this.pump();
        });
      });
    });
  }

  private onUp(session: Session): void {
    if (this.session !== session || this.state === 'closed') return;
    if (this.everUp) this.counters.reconnects++;
    this.everUp = true;
    this.lastFailure = undefined;
    this.backoff.reset();
    this.waitingForDrain = false;
    this.stats.peers = 1;
    this.stats.peerMtu = session.peerMtu;
    if (session.peerMtu < this.mtu && !this.warnedPeerMtu) {
      this.warnedPeerMtu = true;
      this.log(`${this.name}: the peer takes frames of up to ${session.peerMtu} bytes, this end's MTU is ${this.mtu}: larger frames are dropped (too-large-peer)`);
    }
    this.setState('up', `connected to ${this.stats.remote}`);
    this.pump();
    this.settleAttempt?.();
  }

  private onFrame(session: Session, data: Uint8Array): void {
    if (this.session !== session) return;
    deliverGuarded(() => this.deliver({ data, at: Date.now(), from: { ...session.remote } }), this.stats, this.log, this.name);
  }

  private onEnd(session: Session, code: TcpDisconnectCode, message: string): void {
    if (this.session !== session) return;
    this.session = undefined;
    this.waitingForDrain = false;
    this.stats.peers = 0;
    if (countEnd(this.stats, code)) this.counters.decodeErrors++;
    if (this.state === 'closed') return;
    this.retry(`${this.stats.remote}: ${message}`);
    this.settleAttempt?.();
  }

  private retry(reason: string): void {
    if (this.state === 'closed' || this.retryTimer) return;
    if (reason !== this.lastFailure && this.state === 'reconnecting') this.log(`${this.name}: still reconnecting (${reason})`);
    this.lastFailure = reason;
    this.setState('reconnecting', reason);
    this.retryTimer = setTimeout(() => void this.attempt(), this.backoff.next());
  }
}

/**
 * Hands a received frame to the link's listeners. A listener that throws is the application's
 * fault, not the peer's: it is counted (and the first one logged), and the connection carries on.
 */
function deliverGuarded(deliver: () => void, stats: TcpLinkStats, log: (line: string) => void, name: string): void {
  try {
    deliver();
  } catch (err) {
    stats.listenerErrors++;
    if (stats.listenerErrors === 1) log(`${name}: a frame listener threw (further ones are only counted): ${err instanceof Error ? err.message : String(err)}`);
  }
}

// ---------------------------------------------------------------------------------------------
// The listening end

interface Peer {
  session: Session;
  key: string;
}

export class TcpListenLink extends BaseLink {
  override readonly kind = 'tcp-listen' as const;
  readonly fullMesh = false;
  readonly host: string;
  readonly port: number;
  readonly maxPeers: number;
  override readonly stats: TcpLinkStats & { pending: number; accepted: number; bindFailures: number; listening?: string };
  private readonly sessionConfig: SessionConfig;
  private readonly maxPending: number;
  private readonly maxPeerPendingBytes: number;
  private readonly backoff: Backoff;
  private readonly peerLog: PerAddressLog;
  private server: Server | undefined;
  private bound: { host: string; port: number } | undefined;
  /** Authenticated peers by endpoint. */
  private readonly peers = new Map<string, Peer>();
  /** Connections in their handshake. */
  private readonly pending = new Set<Session>();
  private retryTimer: NodeJS.Timeout | undefined;
  private lastFailure: string | undefined;

  constructor(options: TcpListenOptions) {
    checkHost(options.name, options.host);
    checkPort(options.name, options.port, 0);
    checkTcpListen(options.host, options.token, options.port);
    const r = resolveCommon(options);
    super(options.name, 'tcp-listen', r.mtu, r.airtime, r.bitRate, options.queueCap ?? DEFAULT_TCP_QUEUE_CAP, options.log);
    this.host = options.host;
    this.port = options.port;
    this.maxPeers = options.maxPeers ?? DEFAULT_TCP_MAX_PEERS;
    if (!Number.isInteger(this.maxPeers) || this.maxPeers < 1) throw new RangeError(`${this.name}: maxPeers must be a positive integer, got ${this.maxPeers}`);
    this.maxPending = this.maxPeers;
    this.maxPeerPendingBytes = options.maxPeerPendingBytes ?? Math.max(DEFAULT_MAX_PEER_PENDING_BYTES, 2 * (HEADER_BYTES + r.mtu));
    if (!Number.isInteger(this.maxPeerPendingBytes) || this.maxPeerPendingBytes < HEADER_BYTES + r.mtu) {
      throw new RangeError(`${this.name}: maxPeerPendingBytes must be an integer ≥ one record (${HEADER_BYTES + r.mtu}), got ${this.maxPeerPendingBytes}`);
    }
    this.sessionConfig = { ...r.session, role: 'listen' };
    this.backoff = new Backoff(options.backoff);
    this.peerLog = new PerAddressLog(this.log);
    this.stats = { ...newStats(), pending: 0, accepted: 0, bindFailures: 0 };
    warnShortToken(options.name, options.token, this.log);
  }

  /** The bound address while listening (a port of 0 resolved to the real one). */
  get address(): { host: string; port: number } | undefined {
    return this.bound ? { ...this.bound } : undefined;
  }

  /** The endpoints of the authenticated peers (as `from` gives them, and `to` takes them). */
  peerEndpoints(): Endpoint[] {
    return [...this.peers.values()].map((p) => ({ ...p.session.remote }));
  }

  /** Listens, or (address in use, not available) goes 'down' and keeps trying with backoff. */
  async open(): Promise<void> {
    if (this.state === 'closed') throw new Error(`${this.name}: link is closed`);
    if (this.state !== 'down' || this.server || this.retryTimer) return;
    this.setState('opening');
    await this.attempt();
  }

  async close(): Promise<void> {
    if (this.state === 'closed') return;
    clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    const server = this.server;
    this.server = undefined;
    this.bound = undefined;
    this.setState('closed');
    const sessions = [...this.pending, ...[...this.peers.values()].map((p) => p.session)];
    for (const s of sessions) s.fail('closing', 'link closed', 'closing');
    const serverClosed = server ? new Promise<void>((resolve) => server.close(() => resolve())) : Promise.resolve();
    await Promise.all([serverClosed, ...sessions.map((s) => s.closed)]);
  }

  protected pump(): void {
    if (this.state !== 'up') return;
    for (let next = this.queue.shift(); next; next = this.queue.shift()) {
      const to = next.options?.to;
      let targets: Peer[];
      if (to) {
        const peer = this.peers.get(endpointKey(to));
        if (!peer) {
          countDrop(this.counters, 'no-such-peer');
          continue;
        }
        targets = [peer];
      } else {
        targets = [...this.peers.values()];
        if (targets.length === 0) {
          countDrop(this.counters, 'no-peers');
          continue;
        }
      }
      const record = encodeRecord(RecordType.FRAME, next.data);
      let written = 0;
      for (const peer of targets) {
        if (next.data.length > peer.session.peerMtu) {
          countDrop(this.counters, 'too-large-peer');
          continue;
        }
        peer.session.writeRecord(record);
        written++;
        const backlog = peer.session.backlog;
        if (backlog > this.maxPeerPendingBytes) {
          countDrop(this.counters, 'slow-peer');
          peer.session.fail('slow-peer', `${backlog} bytes pending to a peer that does not read (cap ${this.maxPeerPendingBytes})`);
        }
      }
      if (written > 0) this.sent(next.data.length);
    }
  }

  private async attempt(): Promise<void> {
    this.retryTimer = undefined;
    if (this.state === 'closed') return;
    const where = formatHostPort(this.host, this.port);
    const server = net.createServer({ noDelay: true, keepAlive: true, keepAliveInitialDelay: 30_000 });
    try {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen({ host: this.host, port: this.port }, () => {
          server.off('error', reject);
          resolve();
        });
      });
    } catch (err) {
      server.close();
      this.stats.bindFailures++;
      return this.retry(`cannot bind ${where}: ${describeListenError(err as NodeJS.ErrnoException)}`);
    }
    // close() may have run while the bind was under way.
    if ((this.state as LinkState) === 'closed') {
      server.close();
      return;
    }
    const info = server.address();
    this.bound = info && typeof info === 'object' ? { host: info.address, port: info.port } : { host: this.host, port: this.port };
    this.server = server;
    this.stats.listening = formatHostPort(this.bound.host, this.bound.port);
    server.on('connection', (socket) => {
      try {
        this.accept(server, socket);
      } catch (err) {
        socket.destroy();
        this.log(`${this.name}: could not take a connection: ${err instanceof Error ? err.message : String(err)}`);
      }
    });
    // After listening, errors are about single accepts (EMFILE, ...): the server carries on.
    server.on('error', (err) => this.peerLog.line('-', 'server', `${this.name}: ${err.message}`));
    this.lastFailure = undefined;
    this.backoff.reset();
    this.setState('up', `listening on ${this.stats.listening}`);
    this.pump();
  }

  private retry(reason: string): void {
    if (this.state === 'closed') return;
    if (reason !== this.lastFailure && this.state === 'down' && this.lastFailure !== undefined) this.log(`${this.name}: still down (${reason})`);
    this.lastFailure = reason;
    this.setState('down', reason);
    this.retryTimer = setTimeout(() => void this.attempt(), this.backoff.next());
  }

  private accept(server: Server, socket: Socket): void {
    socket.on('error', () => undefined); // until the session takes over, and for sockets refused below
    if (this.server !== server || this.state !== 'up' || socket.remoteAddress === undefined) {
      socket.destroy();
      return;
    }
    const remote = { address: plainAddress(socket.remoteAddress), port: socket.remotePort ?? 0 };
    const shown = formatHostPort(remote.address, remote.port);
    if (this.peers.size >= this.maxPeers) {
      this.stats.refused++;
      this.peerLog.line(remote.address, 'refused', `${this.name}: refused ${shown}: ${this.peers.size} peers connected (the most allowed)`);
      socket.end(Buffer.concat([MAGIC, byeRecord(`too many peers (${this.peers.size} connected)`)]));
      setTimeout(() => socket.destroy(), LINGER_MS).unref();
      return;
    }
    if (this.pending.size >= this.maxPending) {
      this.stats.refused++;
      this.peerLog.line(remote.address, 'refused', `${this.name}: refused ${shown}: ${this.pending.size} connections already in their handshake`);
      socket.destroy();
      return;
    }
    this.stats.accepted++;
    const session = new Session(socket, remote, this.sessionConfig, {
      up: (s) => this.onUp(s),
      frame: (s, data) => deliverGuarded(() => this.deliver({ data, at: Date.now(), from: { ...s.remote } }), this.stats, this.log, this.name),
      end: (s, code, message) => this.onEnd(s, code, message),
    });
    this.pending.add(session);
    this.stats.pending = this.pending.size;
  }

  private onUp(session: Session): void {
    this.pending.delete(session);
    this.stats.pending = this.pending.size;
    if (this.state !== 'up') return session.fail('closing', 'link closed', 'closing');
    if (this.peers.size >= this.maxPeers) {
      return session.fail('peer-limit', `${this.peers.size} peers connected (the most allowed)`, `too many peers (${this.peers.size} connected)`);
    }
    const key = endpointKey(session.remote);
    this.peers.set(key, { session, key });
    this.stats.peers = this.peers.size;
    this.peerLog.line(session.remote.address, 'connected', `${this.name}: peer ${formatHostPort(session.remote.address, session.remote.port)} connected`);
    if (session.peerMtu < this.mtu) {
      this.peerLog.line(
        session.remote.address,
        'mtu',
        `${this.name}: peer ${formatHostPort(session.remote.address, session.remote.port)} takes frames of up to ${session.peerMtu} bytes, this end's MTU is ${this.mtu}: larger frames to it are dropped (too-large-peer)`,
      );
    }
  }

  private onEnd(session: Session, code: TcpDisconnectCode, message: string): void {
    const key = endpointKey(session.remote);
    const wasPeer = this.peers.get(key)?.session === session;
    if (wasPeer) this.peers.delete(key);
    this.pending.delete(session);
    this.stats.peers = this.peers.size;
    this.stats.pending = this.pending.size;
    if (countEnd(this.stats, code)) this.counters.decodeErrors++;
    if (code === 'closing') return;
    const shown = formatHostPort(session.remote.address, session.remote.port);
    const what = wasPeer ? 'disconnected' : 'refused';
    this.peerLog.line(session.remote.address, what, `${this.name}: peer ${shown} ${what}: ${message}`);
  }
}

function describeListenError(err: NodeJS.ErrnoException): string {
  switch (err.code) {
    case 'EADDRINUSE':
      return 'address in use';
    case 'EACCES':
      return 'permission denied (ports below 1024 need privileges)';
    case 'EADDRNOTAVAIL':
      return 'address not available on this host';
    case 'ENOTFOUND':
      return 'host name not found';
    default:
      return err.message;
  }
}
