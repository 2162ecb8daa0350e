/**
 * An MQTT broker as a link: gateways at different sites that share a broker (and a mesh name)
 * become neighbours over it. Every gateway publishes the frames it sends — already sealed end to
 * end by the mesh layer — on its own topic and subscribes to everybody's:
 *
 *   PREFIX/MESH/<sid-short>/f        frames, binary payload = exactly one frame, QoS 0
 *   PREFIX/MESH/<sid-short>/status   retained JSON: { sid, online, updated, ...status() }
 *
 * (`sid-short` is `sidShort(sid)`, the SID's first 8 hex digits; PREFIX comes from the URL's
 * path, default 'meshgw'; MESH from the options, default 'mesh'.) The link is a full mesh
 * (`fullMesh`): every member hears every other, so the mesh never forwards a frame back onto
 * the interface it came from. `send`'s `to` is ignored: everyone on the topic hears everything.
 *
 * Connection. MQTT.js (`mqtt`) with its own reconnect off (`reconnectPeriod: 0`): each attempt is
 * a fresh client, and the link's state machine is this file's — 'opening' on the first attempt;
 * 'up' once the subscription is granted and the status is published; 'reconnecting' after any
 * failure (refused, lost, TLS, DNS, bad credentials, keepalive), retried with `Backoff` (1 s
 * doubling to 30 s, ±20 %) forever; 'closed' after close(), which publishes the retained
 * `{online: false}` status, disconnects cleanly (so the broker discards the will) and leaves no
 * timer behind. The will — the same retained offline status — covers a crash or a lost
 * connection. The client id is `meshgw-` and the SID's first 16 hex digits: stable, so a
 * reconnecting gateway takes over its own half-open old session at the broker instead of
 * leaving it to publish a stale will later. MQTT 5 by default (`protocolVersion: 4` for old
 * brokers): it gives no-local subscriptions (the broker does not echo our own frames), no
 * retained frames at subscribe, and a maximum packet size.
 *
 * Error model. Nothing here throws out of a callback or kills the process: every failure
 * becomes the 'reconnecting' state with a reason that names the broker (mqtt://host:port — never
 * the credentials) and the cause in words ("not authorised: wrong user name or password",
 * "TLS: unable to verify the first certificate (--mqtt-ca?)", "connection refused (is the broker
 * running?)"). The reason is logged when it changes, not once per retry. A malformed URL or an
 * option out of range is a programming/config error and throws at construction (`MqttUrlError`,
 * `RangeError`).
 *
 * Loops and storms, on what arrives from the broker, checked in this order, cheapest first, each
 * drop counted in `counters.drops` by reason:
 *   'bad-topic'     not PREFIX/MESH/<8 lowercase hex digits>/f
 *   'own-topic'     our own topic (another gateway with the same short SID, or a rogue client)
 *   'retained'      a retained message (frames are live only)
 *   'empty', 'too-large'   payload of 0 bytes or over the MTU
 *   'rate-limited'  over the sender topic's token bucket (frames and bytes, burst 2 s)
 *   'rate-limited-total'  over the bucket of all senders together (four senders' worth): a
 *                   flood under ten thousand invented sender names gets no more than that
 *   'duplicate'     a payload whose identity (SHA-256, first 16 bytes) arrived within the window
 * A frame received from MQTT is never published back to it: `send` drops a frame whose identity
 * is one received within the duplicate window (counted 'echo'). The mesh's `fullMesh` handling
 * is the first line; this is the second, for frames that come back through another path.
 *
 * Outgoing rate. No airtime cost, but a cap: the airtime model is a `RateCapAirtimeModel`
 * (frames and bytes per second), so the interface's pacer spaces frames; the driver has no
 * pacing timer of its own. It does respect MQTT.js backpressure: when a publish could not be
 * written through (the socket's buffer is full), pumping stops until that publish's callback.
 *
 * Memory caps (overflow policy in parentheses):
 *   outgoing queue while not connected   queueCap frames, default 256 (oldest dropped, 'queue-full')
 *   frames inside MQTT.js                 at most one beyond the socket's write buffer (backpressure)
 *   per-sender token buckets              1,024 sender topics (least recently heard forgotten; it
 *                                         starts again with a full burst)
 *   duplicate/echo identities             8,192 within duplicateWindowMs (oldest forgotten first)
 *   incoming packet                       MQTT 5: maximum packet size = MTU + topic + 1 KiB asked
 *                                         of the broker (it drops larger messages for us; MQTT.js
 *                                         disconnects if one still comes). MQTT 3.1.1 has no such
 *                                         field: rely on the broker's message_size_limit.
 *   status documents in flight            one (QoS 1; the next waits for its PUBACK)
 *
 * The per-sender limits protect the mesh from a misbehaving gateway; they are no defence against
 * a client allowed to publish under any topic (it can pick new sender names): the broker's ACLs
 * are (each gateway may write only PREFIX/MESH/<its id>/#). Frames are sealed end to end, so a
 * forged or replayed frame costs the mesh a check, nothing more.
 */
import { createHash } from 'node:crypto';
import { connect, ErrorWithReasonCode, type IClientOptions, type MqttClient } from 'mqtt';
import { RateCapAirtimeModel } from '../src/link/airtime/rate-cap.js';
import { Backoff, type BackoffOptions } from '../src/link/backoff.js';
import { BaseLink, countDrop, type SendOptions } from '../src/link/link.js';
import { SID_LENGTH, sidHex, sidShort } from '../src/mesh/identity.js';

export interface MqttLinkOptions {
  name: string;
  /** mqtt://[user[:pass]@]host[:port][/prefix] or mqtts://…; prefix default 'meshgw'. Credentials in the URL are percent-decoded. */
  url: string;
  /** The mesh's name in the topics (PREFIX/<mesh>/…); default 'mesh'. [A-Za-z0-9_-]{1,64}. */
  mesh?: string;
  /** This node's SID (32 bytes); its short form (sidShort) names our topics; frames on our own topic are ignored. */
  sid: Uint8Array;
  /** Override the URL's. */
  username?: string;
  /** Override the URL's. */
  password?: string;
  /** PEM contents (not paths): CA for mqtts, optional client cert and key. */
  ca?: string | Buffer;
  cert?: string | Buffer;
  key?: string | Buffer;
  /** Largest frame, bytes; default 4096. */
  mtu?: number;
  /** Outgoing caps, applied by the interface's pacer through the airtime model. Defaults 100 frames/s, 1,000,000 bytes/s. */
  framesPerSecond?: number;
  bytesPerSecond?: number;
  /**
   * Incoming caps per sender topic (token bucket, burst = 2 s worth); defaults 200 frames/s,
   * 2,000,000 bytes/s: twice what another gateway sends at its default outgoing caps, so a
   * well-behaved sender is never cut.
   */
  inFramesPerSecond?: number;
  inBytesPerSecond?: number;
  /** Identical frames within this window are dropped; default 30,000 ms, at most 8,192 remembered. */
  duplicateWindowMs?: number;
  /** Frames kept while disconnected; default 256. */
  queueCap?: number;
  /** The retained status document's contents; the driver adds { sid, online: true, updated }. */
  status?: () => Record<string, unknown>;
  /** Default 60,000. */
  statusIntervalMs?: number;
  backoff?: BackoffOptions;
  log?: (line: string) => void;
  /** No CONNACK within this long fails the attempt; default 30,000 ms. */
  connectTimeoutMs?: number;
  /** MQTT keepalive, seconds; default 30. */
  keepaliveSeconds?: number;
  /** 5 (default) or 4 (MQTT 3.1.1, for brokers without MQTT 5). */
  protocolVersion?: 4 | 5;
}

export class MqttUrlError extends RangeError {
  override readonly name = 'MqttUrlError';
}

export interface MqttUrl {
  protocol: 'mqtt' | 'mqtts';
  /** Host name or address (an IPv6 address without its brackets). */
  host: string;
  port: number;
  username?: string;
  password?: string;
  /** Topic prefix, without leading or trailing '/'. */
  prefix: string;
}

export const DEFAULT_MQTT_MTU = 4096;
export const DEFAULT_MQTT_PREFIX = 'meshgw';
export const DEFAULT_MQTT_MESH = 'mesh';
const MAX_PREFIX_BYTES = 256;
const MAX_SENDERS = 1024;
/** The bucket of all senders together holds this many senders' rates and bursts. */
const TOTAL_SENDERS = 4;
const MAX_IDENTITIES = 8192;
/** How long close() waits for the offline status and the DISCONNECT to go out. */
const CLOSE_TIMEOUT_MS = 2_000;
const SENDER_RE = /^[0-9a-f]{8}$/;
const MESH_RE = /^[A-Za-z0-9_-]{1,64}$/;

/**
 * Parses mqtt[s]://[user[:pass]@]host[:port][/prefix]. Error messages never contain the
 * password (nor the URL, which may hold it).
 */
export function parseMqttUrl(url: string): MqttUrl {
  const expected = 'expected mqtt[s]://[user[:pass]@]host[:port][/prefix]';
  if (typeof url !== 'string' || url.length === 0) throw new MqttUrlError(`MQTT URL is empty: ${expected}`);
  const m = /^([A-Za-z][A-Za-z0-9+.-]*):\/\/([^/?#]*)(.*)$/s.exec(url);
  if (!m) {
    throw new MqttUrlError(/^[A-Za-z][A-Za-z0-9+.-]*:/.test(url) ? `MQTT URL has no //host part: ${expected}` : `MQTT URL has no scheme: ${expected}`);
  }
  const scheme = m[1]!.toLowerCase();
  if (scheme !== 'mqtt' && scheme !== 'mqtts') throw new MqttUrlError(`MQTT URL: unsupported scheme "${scheme}:" (use mqtt:// or mqtts://)`);
  const authority = m[2]!;
  const rest = m[3]!;

  const at = authority.lastIndexOf('@');
  const userinfo = at >= 0 ? authority.slice(0, at) : undefined;
  const hostPort = authority.slice(at + 1);
  let host: string;
  let portText: string | undefined;
  if (hostPort.startsWith('[')) {
    const close = hostPort.indexOf(']');
    if (close < 0) throw new MqttUrlError('MQTT URL: unterminated [IPv6 address]');
    host = hostPort.slice(1, close);
    const after = hostPort.slice(close + 1);
    if (after !== '' && !after.startsWith(':')) throw new MqttUrlError('MQTT URL: unexpected text after the [IPv6 address]');
    portText = after === '' ? undefined : after.slice(1);
    if (!/^[0-9A-Fa-f:.]+$/.test(host) || !host.includes(':')) throw new MqttUrlError(`MQTT URL: "${host}" is not an IPv6 address`);
  } else {
    const colon = hostPort.indexOf(':');
    host = colon >= 0 ? hostPort.slice(0, colon) : hostPort;
    portText = colon >= 0 ? hostPort.slice(colon + 1) : undefined;
    if (host === '') throw new MqttUrlError(`MQTT URL has no host: ${expected}`);
    if (!/^[A-Za-z0-9.-]+$/.test(host) || host.startsWith('.') || host.startsWith('-')) {
      throw new MqttUrlError(`MQTT URL: "${host}" is not a host name or address`);
    }
  }
  let port = scheme === 'mqtts' ? 8883 : 1883;
  if (portText !== undefined) {
    const n = /^\d{1,5}$/.test(portText) ? Number(portText) : NaN;
    if (!(n >= 1 && n <= 65535)) throw new MqttUrlError(`MQTT URL: bad port "${portText}" (expected 1..65535)`);
    port = n;
  }

  let username: string | undefined;
  let password: string | undefined;
  if (userinfo !== undefined) {
    const colon = userinfo.indexOf(':');
    const rawUser = colon >= 0 ? userinfo.slice(0, colon) : userinfo;
    const rawPass = colon >= 0 ? userinfo.slice(colon + 1) : undefined;
    try {
      username = rawUser === '' ? undefined : decodeURIComponent(rawUser);
      password = rawPass === undefined || rawPass === '' ? undefined : decodeURIComponent(rawPass);
    } catch {
      throw new MqttUrlError('MQTT URL: the user name or password is not correctly percent-encoded (write @ as %40, : as %3A, / as %2F)');
    }
  }

  if (rest.includes('?')) throw new MqttUrlError('MQTT URL: a query (?…) is not supported; use options instead');
  if (rest.includes('#')) throw new MqttUrlError('MQTT URL: the prefix may not contain the wildcards + or #');
  let prefix: string;
  try {
    prefix = decodeURIComponent(rest.replace(/^\/+/, '').replace(/\/+$/, ''));
  } catch {
    throw new MqttUrlError('MQTT URL: the prefix is not correctly percent-encoded');
  }
  if (prefix === '') prefix = DEFAULT_MQTT_PREFIX;
  checkPrefix(prefix);
  return { protocol: scheme, host, port, ...(username !== undefined ? { username } : {}), ...(password !== undefined ? { password } : {}), prefix };
}

function checkPrefix(prefix: string): void {
  if (/[+#]/.test(prefix)) throw new MqttUrlError('MQTT URL: the prefix may not contain the wildcards + or #');
  if (prefix.includes('\u0000')) throw new MqttUrlError('MQTT URL: the prefix may not contain NUL');
  if (prefix.split('/').some((level) => level === '')) throw new MqttUrlError('MQTT URL: the prefix has an empty topic level (//)');
  if (prefix.startsWith('$')) throw new MqttUrlError('MQTT URL: a prefix starting with $ is reserved for the broker ($SYS)');
  if (Buffer.byteLength(prefix) > MAX_PREFIX_BYTES) throw new MqttUrlError(`MQTT URL: the prefix is longer than ${MAX_PREFIX_BYTES} bytes`);
}

/** A token bucket per sender topic, for frames and bytes. */
interface Bucket {
  frames: number;
  bytes: number;
  /** performance.now() of the last refill. */
  at: number;
}

export class MqttLink extends BaseLink {
  readonly fullMesh = true;
  override readonly stats: {
    broker: string;
    topic: string;
    subscription: string;
    statusTopic: string;
    /** Connection attempts made, successful or not. */
    attempts: number;
    /** Sender topics whose rate is tracked. */
    senders: number;
    /** Frame identities remembered for duplicate and echo suppression. */
    identities: number;
    /** Why the link is not up, when it is not (no credentials in it). */
    lastError?: string;
  };

  private readonly url: MqttUrl;
  private readonly options: MqttLinkOptions;
  private readonly broker: string;
  private readonly ownShort: string;
  private readonly sidText: string;
  private readonly base: string;
  private readonly frameTopic: string;
  private readonly statusTopic: string;
  private readonly username: string | undefined;
  private readonly password: string | undefined;
  private readonly protocolVersion: 4 | 5;
  private readonly inFrameRate: number;
  private readonly inByteRate: number;
  private readonly inFrameBurst: number;
  private readonly inByteBurst: number;
  private readonly duplicateWindowMs: number;
  private readonly statusIntervalMs: number;
  private readonly backoff: Backoff;
  /** Sender short id → bucket, least recently heard first. */
  private readonly senders = new Map<string, Bucket>();
  /** All senders together (TOTAL_SENDERS times one sender's rates); full at construction. */
  private total: Bucket = { frames: Infinity, bytes: Infinity, at: 0 };
  /** Frame identity → performance.now() when first received, oldest first. */
  private readonly identities = new Map<string, number>();

  /** The current attempt's client; events from any other (older) client are ignored. */
  private client: MqttClient | undefined;
  /** The current client is subscribed and 'up'. */
  private connected = false;
  private waitingForDrain = false;
  private everUp = false;
  private lastFailure: string | undefined;
  /** A DISCONNECT's reason code from the broker (MQTT 5), for the reason of the close that follows. */
  private disconnectCode: number | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private statusTimer: NodeJS.Timeout | undefined;
  private statusFailing = false;
  private ownTopicWarned = false;
  /** The client whose status publish awaits its PUBACK. */
  private statusInFlight: MqttClient | undefined;

  constructor(options: MqttLinkOptions) {
    const mtu = options.mtu ?? DEFAULT_MQTT_MTU;
    const bytesPerSecond = options.bytesPerSecond ?? 1_000_000;
    const framesPerSecond = options.framesPerSecond ?? 100;
    if (!Number.isSafeInteger(mtu) || mtu < 1 || mtu > 256 * 1024 * 1024) {
      throw new RangeError(`${options.name}: MTU must be an integer 1..268435456, got ${String(mtu)}`);
    }
    const airtime = new RateCapAirtimeModel({ bytesPerSecond, framesPerSecond, maxBytes: mtu });
    super(options.name, 'mqtt', mtu, airtime, bytesPerSecond * 8, options.queueCap ?? 256, options.log);
    this.options = options;
    this.url = parseMqttUrl(options.url);
    const mesh = options.mesh ?? DEFAULT_MQTT_MESH;
    if (!MESH_RE.test(mesh)) throw new RangeError(`${this.name}: mesh name "${mesh}" must be 1..64 of A-Z a-z 0-9 _ -`);
    if (!(options.sid instanceof Uint8Array) || options.sid.length !== SID_LENGTH) {
      throw new RangeError(`${this.name}: SID must be ${SID_LENGTH} bytes`);
    }
    this.inFrameRate = positive(this.name, 'inFramesPerSecond', options.inFramesPerSecond ?? 200);
    this.inByteRate = positive(this.name, 'inBytesPerSecond', options.inBytesPerSecond ?? 2_000_000);
    this.inFrameBurst = Math.max(1, 2 * this.inFrameRate);
    // A full-size frame must always be able to pass, however low the byte rate.
    this.inByteBurst = Math.max(mtu, 2 * this.inByteRate);
    this.duplicateWindowMs = options.duplicateWindowMs ?? 30_000;
    if (!(this.duplicateWindowMs >= 0 && Number.isFinite(this.duplicateWindowMs))) {
      throw new RangeError(`${this.name}: duplicateWindowMs must be ≥ 0, got ${String(options.duplicateWindowMs)}`);
    }
    this.statusIntervalMs = options.statusIntervalMs ?? 60_000;
    if (!(this.statusIntervalMs >= 100 && Number.isFinite(this.statusIntervalMs))) {
      throw new RangeError(`${this.name}: statusIntervalMs must be ≥ 100, got ${String(options.statusIntervalMs)}`);
    }
    this.protocolVersion = options.protocolVersion ?? 5;
    if (this.protocolVersion !== 4 && this.protocolVersion !== 5) throw new RangeError(`${this.name}: protocolVersion must be 4 or 5`);
    this.backoff = new Backoff(options.backoff);
    this.username = options.username ?? this.url.username;
    this.password = options.password ?? this.url.password;
    this.sidText = sidHex(options.sid);
    this.ownShort = sidShort(options.sid);
    this.base = `${this.url.prefix}/${mesh}/`;
    this.frameTopic = `${this.base}${this.ownShort}/f`;
    this.statusTopic = `${this.base}${this.ownShort}/status`;
    const host = this.url.host.includes(':') ? `[${this.url.host}]` : this.url.host;
    this.broker = `${this.url.protocol}://${host}:${this.url.port}`;
    this.stats = {
      broker: this.broker,
      topic: this.frameTopic,
      subscription: `${this.base}+/f`,
      statusTopic: this.statusTopic,
      attempts: 0,
      senders: 0,
      identities: 0,
    };
  }

  /** Starts connecting and returns at once: a missing broker is not an error (the link retries). */
  async open(): Promise<void> {
    if (this.state === 'closed') throw new Error(`${this.name}: link is closed`);
    if (this.client || this.retryTimer) return;
    this.setState('opening', this.broker);
    this.attempt();
  }

  /** Publishes the offline status, disconnects cleanly, and stops every timer. */
  async close(): Promise<void> {
    if (this.state === 'closed') return;
    clearTimeout(this.retryTimer);
    clearInterval(this.statusTimer);
    this.retryTimer = this.statusTimer = undefined;
    const client = this.client;
    const wasUp = this.connected;
    this.client = undefined;
    this.connected = false;
    this.waitingForDrain = false;
    this.setState('closed');
    if (!client) return;
    if (wasUp && client.connected) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, CLOSE_TIMEOUT_MS);
        try {
          client.publish(this.statusTopic, this.offlineDocument(), { qos: 1, retain: true }, () => undefined);
          // Not forced: waits for the QoS 1 status to be acknowledged, then sends DISCONNECT.
          client.end(false, () => {
            clearTimeout(timer);
            resolve();
          });
        } catch {
          clearTimeout(timer);
          resolve();
        }
      });
    }
    destroy(client);
  }

  /** Queues a frame; a frame just received from MQTT is not published back (counted 'echo'). */
  override send(frame: Uint8Array, options?: SendOptions): boolean {
    if (this.state !== 'closed' && frame.length > 0 && frame.length <= this.mtu && this.identities.size > 0) {
      this.forgetOldIdentities(performance.now());
      if (this.identities.has(identity(frame))) {
        countDrop(this.counters, 'echo');
        // As BaseLink would answer: the queue is unchanged (if it is over the mark, 'ready' is already owed).
        return this.queue.length < this.readyBelow;
      }
    }
    return super.send(frame, options);
  }

  protected pump(): void {
    const client = this.client;
    if (!client || !this.connected || this.waitingForDrain || this.state !== 'up') return;
    while (this.queue.length > 0) {
      const frame = this.queue.shift()!;
      let written = false;
      const payload = Buffer.from(frame.data.buffer, frame.data.byteOffset, frame.data.byteLength);
      // For QoS 0, MQTT.js calls back at once when the socket took the packet, else on 'drain'.
      client.publish(this.frameTopic, payload, { qos: 0, retain: false }, () => {
        written = true;
        if (this.waitingForDrain && this.client === client) {
          this.waitingForDrain = false;
          this.pump();
        }
      });
      this.sent(frame.data.length);
      if (!written) {
        this.waitingForDrain = true;
        return;
      }
    }
  }

  /** One connection attempt with a fresh client. */
  private attempt(): void {
    this.retryTimer = undefined;
    if (this.state === 'closed') return;
    this.stats.attempts++;
    this.disconnectCode = undefined;
    let client: MqttClient;
    try {
      client = connect(this.clientOptions());
    } catch (err) {
      // tls.connect throws at once for a malformed certificate or key.
      this.retry(`${this.broker}: ${describeError(err, this.describeContext(false))}`);
      return;
    }
    this.client = client;
    let accepted = false;
    client.on('connect', () => {
      accepted = true;
      this.onConnect(client);
    });
    client.on('message', (topic, payload, packet) => {
      if (this.client === client) this.receive(topic, payload, packet.retain);
    });
    client.on('disconnect', (packet) => {
      if (this.client === client) this.disconnectCode = packet.reasonCode;
    });
    // Every client keeps this listener for life, so a late error never goes unhandled.
    client.on('error', (err) => this.fail(client, describeError(err, this.describeContext(accepted))));
    client.on('close', () => {
      const code = this.disconnectCode;
      const why =
        code !== undefined && code !== 0
          ? `the broker disconnected us: ${reasonText(code)}`
          : accepted
            ? 'connection lost'
            : `connection closed before the broker accepted it${this.url.protocol === 'mqtt' ? ' (a TLS listener? use mqtts://)' : ''}`;
      this.fail(client, why);
    });
  }

  private clientOptions(): IClientOptions {
    const o = this.options;
    const v5 = this.protocolVersion === 5;
    const options: IClientOptions = {
      protocol: this.url.protocol,
      host: this.url.host,
      port: this.url.port,
      clientId: `meshgw-${this.sidText.slice(0, 16)}`,
      protocolVersion: this.protocolVersion,
      clean: true,
      keepalive: o.keepaliveSeconds ?? 30,
      reconnectPeriod: 0,
      connectTimeout: o.connectTimeoutMs ?? 30_000,
      queueQoSZero: false,
      resubscribe: false,
      rejectUnauthorized: true,
      will: { topic: this.statusTopic, payload: Buffer.from(JSON.stringify({ sid: this.sidText, online: false })), qos: 1, retain: true },
    };
    if (v5) {
      // Ask the broker not to send more than a frame on the longest topic we accept, with room.
      options.properties = { maximumPacketSize: this.mtu + Buffer.byteLength(this.base) + 1024, sessionExpiryInterval: 0 };
    }
    if (this.username !== undefined) options.username = this.username;
    if (this.password !== undefined) options.password = this.password;
    if (o.ca !== undefined) options.ca = o.ca;
    if (o.cert !== undefined) options.cert = o.cert;
    if (o.key !== undefined) options.key = o.key;
    return options;
  }

  private describeContext(accepted: boolean): DescribeContext {
    return {
      tls: this.url.protocol === 'mqtts',
      protocolVersion: this.protocolVersion,
      hasCredentials: this.username !== undefined || this.password !== undefined,
      accepted,
      connectTimeoutMs: this.options.connectTimeoutMs ?? 30_000,
      password: this.password,
    };
  }

  /** CONNACK accepted: subscribe, publish the status, then 'up'. */
  private onConnect(client: MqttClient): void {
    if (this.client !== client) return;
    const subscription = this.stats.subscription;
    // No-local (MQTT 5): the broker does not send us our own frames; rh 2: no retained frames.
    const subOptions = this.protocolVersion === 5 ? { qos: 0 as const, nl: true, rh: 2 } : { qos: 0 as const };
    client.subscribe(subscription, subOptions, (err, granted) => {
      if (this.client !== client) return;
      const code = granted?.[0]?.qos;
      if (err || code === undefined || code >= 0x80) {
        const detail = code !== undefined && code >= 0x80 ? reasonText(code) : (err?.message ?? 'no answer');
        this.fail(client, `the broker refused the subscription to ${subscription}: ${detail} (its ACL?)`);
        return;
      }
      this.connected = true;
      this.backoff.reset();
      if (this.everUp) this.counters.reconnects++;
      this.everUp = true;
      this.lastFailure = undefined;
      delete this.stats.lastError;
      this.publishStatus();
      clearInterval(this.statusTimer);
      this.statusTimer = setInterval(() => this.publishStatus(), this.statusIntervalMs);
      this.setState('up', `${this.broker}, ${this.frameTopic}`);
      this.pump();
    });
  }

  /** The current client failed (any cause): drop it and try again later. */
  private fail(client: MqttClient, cause: string): void {
    if (this.client !== client) return;
    this.client = undefined;
    this.connected = false;
    this.waitingForDrain = false;
    clearInterval(this.statusTimer);
    this.statusTimer = undefined;
    destroy(client);
    this.retry(`${this.broker}: ${cause}`);
  }

  private retry(reason: string): void {
    if (this.state === 'closed' || this.retryTimer) return;
    this.stats.lastError = reason;
    if (reason !== this.lastFailure) {
      // News: say it. The same failure again stays quiet (setState logs only a change of state).
      if (this.state === 'reconnecting') this.log(`${this.name}: still reconnecting (${reason})`);
      this.lastFailure = reason;
    }
    this.setState('reconnecting', reason);
    this.retryTimer = setTimeout(() => this.attempt(), this.backoff.next());
  }

  private statusDocument(): string {
    const doc: Record<string, unknown> = { sid: this.sidText, online: true, updated: new Date().toISOString() };
    let extra: Record<string, unknown> = {};
    try {
      extra = this.options.status?.() ?? {};
    } catch (err) {
      this.statusProblem(`status() threw: ${(err as Error).message}`);
    }
    // The driver's fields are the truth; status() cannot override them.
    for (const [k, v] of Object.entries(extra)) if (!(k in doc)) doc[k] = v;
    try {
      return JSON.stringify(doc);
    } catch (err) {
      this.statusProblem(`status document is not JSON: ${(err as Error).message}`);
      return JSON.stringify({ sid: this.sidText, online: true, updated: doc.updated });
    }
  }

  private offlineDocument(): string {
    return JSON.stringify({ sid: this.sidText, online: false, updated: new Date().toISOString() });
  }

  /** Publishes the retained status (QoS 1); a refusal is logged once, never fatal. */
  private publishStatus(): void {
    const client = this.client;
    if (!client || !this.connected || this.statusInFlight === client) return;
    // One status in flight at a time: an unacknowledged one is not joined by another.
    this.statusInFlight = client;
    client.publish(this.statusTopic, this.statusDocument(), { qos: 1, retain: true }, (err) => {
      if (this.statusInFlight === client) this.statusInFlight = undefined;
      if (this.client !== client || !this.connected) return;
      if (err) this.statusProblem(`cannot publish the status on ${this.statusTopic}: ${err.message}`);
      else this.statusFailing = false;
    });
  }

  private statusProblem(message: string): void {
    if (!this.statusFailing) this.log(`${this.name}: ${message}`);
    this.statusFailing = true;
  }

  /** A message from the broker: the checks of the header comment, in order. */
  private receive(topic: string, payload: Buffer, retained: boolean): void {
    const sender = topic.length === this.base.length + 10 && topic.startsWith(this.base) && topic.endsWith('/f')
      ? topic.slice(this.base.length, this.base.length + 8)
      : undefined;
    if (sender === undefined || !SENDER_RE.test(sender)) return countDrop(this.counters, 'bad-topic');
    if (sender === this.ownShort) {
      // With MQTT 5's no-local the broker never sends us our own frames: this is someone else.
      if (this.protocolVersion === 5 && !this.ownTopicWarned) {
        this.ownTopicWarned = true;
        this.log(`${this.name}: frames from another client on our own topic ${topic} (a gateway whose SID also starts with ${this.ownShort}, or a misconfigured client); they are ignored`);
      }
      return countDrop(this.counters, 'own-topic');
    }
    if (retained) return countDrop(this.counters, 'retained');
    if (payload.length === 0) return countDrop(this.counters, 'empty');
    if (payload.length > this.mtu) return countDrop(this.counters, 'too-large');
    const now = performance.now();
    if (!this.admit(sender, payload.length, now)) return countDrop(this.counters, 'rate-limited');
    if (!this.take(this.total, TOTAL_SENDERS, payload.length, now)) return countDrop(this.counters, 'rate-limited-total');
    const id = identity(payload);
    this.forgetOldIdentities(now);
    if (this.identities.has(id)) return countDrop(this.counters, 'duplicate');
    this.identities.set(id, now);
    if (this.identities.size > MAX_IDENTITIES) this.identities.delete(this.identities.keys().next().value!);
    this.stats.identities = this.identities.size;
    // A copy: the payload may be a view of a larger socket buffer.
    this.deliver({ data: Uint8Array.from(payload), at: Date.now(), from: { address: sender, port: 0 } });
  }

  /** Takes a frame from a bucket that refills at `scale` times the per-sender rates (and bursts). */
  private take(bucket: Bucket, scale: number, bytes: number, now: number): boolean {
    const elapsed = Math.max(0, now - bucket.at) / 1000;
    bucket.frames = Math.min(scale * this.inFrameBurst, bucket.frames + elapsed * scale * this.inFrameRate);
    bucket.bytes = Math.min(scale * this.inByteBurst, bucket.bytes + elapsed * scale * this.inByteRate);
    bucket.at = now;
    if (bucket.frames < 1 || bucket.bytes < bytes) return false;
    bucket.frames -= 1;
    bucket.bytes -= bytes;
    return true;
  }

  /** The sender's token buckets (frames and bytes), refilled for the time since its last frame. */
  private admit(sender: string, bytes: number, now: number): boolean {
    let bucket = this.senders.get(sender);
    if (bucket) {
      this.senders.delete(sender); // re-inserted below: most recently heard last
      const elapsed = Math.max(0, now - bucket.at) / 1000;
      bucket.frames = Math.min(this.inFrameBurst, bucket.frames + elapsed * this.inFrameRate);
      bucket.bytes = Math.min(this.inByteBurst, bucket.bytes + elapsed * this.inByteRate);
      bucket.at = now;
    } else {
      bucket = { frames: this.inFrameBurst, bytes: this.inByteBurst, at: now };
    }
    this.senders.set(sender, bucket);
    if (this.senders.size > MAX_SENDERS) this.senders.delete(this.senders.keys().next().value!);
    this.stats.senders = this.senders.size;
    if (bucket.frames < 1 || bucket.bytes < bytes) return false;
    bucket.frames -= 1;
    bucket.bytes -= bytes;
    return true;
  }

  /** Drops identities older than the window (they are in arrival order). */
  private forgetOldIdentities(now: number): void {
    for (const [id, at] of this.identities) {
      if (now - at < this.duplicateWindowMs) break;
      this.identities.delete(id);
    }
    this.stats.identities = this.identities.size;
  }
}

/** A frame's identity: the first 16 bytes of its SHA-256, as a 16-character key. */
function identity(data: Uint8Array): string {
  return createHash('sha256').update(data).digest().toString('latin1', 0, 16);
}

function positive(name: string, what: string, v: number): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) throw new RangeError(`${name}: ${what} must be a positive number, got ${String(v)}`);
  return v;
}

/** Ends a client for good, whatever state it is in. */
function destroy(client: MqttClient): void {
  try {
    client.end(true);
  } catch {
    // already ended
  }
  try {
    client.stream?.destroy();
  } catch {
    // already destroyed
  }
}

interface DescribeContext {
  tls: boolean;
  protocolVersion: 4 | 5;
  hasCredentials: boolean;
  /** The broker had accepted the connection (CONNACK 0) before the error. */
  accepted: boolean;
  connectTimeoutMs: number;
  /** Scrubbed from the text, should any message ever echo it. */
  password: string | undefined;
}

/** Certificate verification failures, where the CA option is the usual fix. */
const TLS_TRUST_CODES = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'CERT_UNTRUSTED',
  'CERT_SIGNATURE_FAILURE',
  'CERT_REJECTED',
]);

/** MQTT 5 reason codes (CONNACK, SUBACK, DISCONNECT) in words. */
function reasonText(code: number): string {
  switch (code) {
    case 0x84:
      return 'unsupported protocol version (an MQTT 3.1.1 broker? use protocol version 4)';
    case 0x85:
      return 'client identifier not valid';
    case 0x86:
    case 0x87:
      return 'not authorised';
    case 0x88:
      return 'server unavailable';
    case 0x89:
      return 'server busy';
    case 0x8a:
      return 'banned';
    case 0x8b:
      return 'server shutting down';
    case 0x8d:
      return 'keep alive timeout';
    case 0x8e:
      return 'session taken over (another client with our client id: a second gateway with this SID?)';
    case 0x95:
      return 'packet too large';
    case 0x97:
      return 'quota exceeded';
    case 0x98:
      return 'administrative action';
    case 0x9c:
      return 'use another server';
    case 0x9d:
      return 'server moved';
    case 0x9f:
      return 'connection rate exceeded';
    default: {
      const known: Record<number, string> = { 0x80: 'unspecified error', 0x81: 'malformed packet', 0x82: 'protocol error', 0x83: 'implementation specific error', 0x8f: 'topic filter invalid', 0x90: 'topic name invalid', 0x96: 'message rate too high', 0xa2: 'wildcard subscriptions not supported' };
      return `${known[code] ?? 'error'} (reason code 0x${code.toString(16)})`;
    }
  }
}

/** An error from MQTT.js, the socket or TLS, in words. */
function describeError(err: unknown, ctx: DescribeContext): string {
  const text = describeCause(err, ctx);
  const pw = ctx.password;
  return pw && pw.length >= 3 ? text.split(pw).join('***') : text;
}

function describeCause(err: unknown, ctx: DescribeContext): string {
  const e = err instanceof Error ? (err as Error & { code?: unknown }) : new Error(String(err));
  const message = e.message;
  const code = (e as { code?: unknown }).code;
  if (e instanceof ErrorWithReasonCode || typeof code === 'number') {
    const rc = code as number;
    if (message.startsWith('Connection refused')) {
      const auth = ctx.protocolVersion === 5 ? rc === 0x86 || rc === 0x87 : rc === 4 || rc === 5;
      if (auth) {
        return ctx.hasCredentials
          ? `not authorised: wrong user name or password (CONNACK ${rc})`
          : `not authorised: the broker wants a user name and password, none given (CONNACK ${rc})`;
      }
      if (ctx.protocolVersion === 4) {
        const v3: Record<number, string> = { 1: 'unacceptable protocol version', 2: 'client identifier rejected', 3: 'server unavailable' };
        return `connection refused: ${v3[rc] ?? 'unknown reason'} (CONNACK ${rc})`;
      }
      return `connection refused: ${reasonText(rc)}`;
    }
    return ctx.protocolVersion === 5 && rc >= 0x80 ? `${reasonText(rc)}: ${message}` : message;
  }
  if (typeof code === 'string') {
    if (TLS_TRUST_CODES.has(code)) return `TLS: ${message} (--mqtt-ca?)`;
    if (code === 'CERT_HAS_EXPIRED' || code === 'CERT_NOT_YET_VALID') return `TLS: ${message} (the broker's certificate; check its dates and this host's clock)`;
    if (code === 'ERR_TLS_CERT_ALTNAME_INVALID') return `TLS: ${message}`;
    if (code.startsWith('ERR_SSL_') || code.startsWith('ERR_TLS_') || code.startsWith('ERR_OSSL_')) {
      // OpenSSL's message is a multi-line dump; its `reason` is the words.
      const reason = (e as { reason?: unknown }).reason;
      const words = typeof reason === 'string' && reason !== '' ? reason : (message.split('\n')[0] ?? message);
      if (code.startsWith('ERR_OSSL_PEM') || /PEM|no start line|key values mismatch|bad decrypt|bad base64/i.test(words)) {
        return `TLS: cannot use the client certificate, key or CA given (${words}: PEM contents expected)`;
      }
      if (/wrong version number|packet length too long|http request/i.test(words)) return `TLS: ${words} (is that port a TLS listener? use mqtt:// for a plain one)`;
      if (/certificate required|handshake failure|bad certificate|unknown ca/i.test(words)) return `TLS: ${words} (does the broker want a client certificate and key, signed by a CA it trusts?)`;
      return `TLS: ${words}`;
    }
    switch (code) {
      case 'ECONNREFUSED':
        return 'connection refused (is the broker running, and is that its port?)';
      case 'ENOTFOUND':
      case 'EAI_AGAIN':
      case 'EAI_FAIL':
        return `cannot resolve the host name (${code})`;
      case 'ECONNRESET':
        return ctx.accepted ? 'connection reset by the broker' : `connection reset before the broker accepted it${ctx.tls ? '' : ' (a TLS listener? use mqtts://)'}`;
      case 'EPIPE':
        return 'connection lost (broken pipe)';
      case 'ETIMEDOUT':
        return 'connection timed out';
      case 'EHOSTUNREACH':
      case 'ENETUNREACH':
        return `no route to the broker (${code})`;
      default:
        return `${message} (${code})`;
    }
  }
  if (message === 'connack timeout') return `no answer (CONNACK) within ${Math.round(ctx.connectTimeoutMs / 1000)} s`;
  if (message === 'Keepalive timeout') return 'no answer from the broker within the keepalive (connection lost)';
  if (message === 'TLS not authorized') return 'TLS: the broker\'s certificate was not accepted (--mqtt-ca?)';
  return message;
}
