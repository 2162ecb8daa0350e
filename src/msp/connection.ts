/**
 * One MSP connection as a sans-IO state machine (SPEC.md beside this file, section "The
 * connection"). No timers, sockets or clocks: every method that depends on time takes `now` (ms,
 * monotonic). The host pulls packets with `pollTransmit(now, maxBytes)`, feeds received packets to
 * `handlePacket(bytes, now)`, and wakes the machine at `nextDeadline()`.
 *
 * Timeouts are folded in: `handlePacket` and `pollTransmit` first run `handleTimeout(now)`, so a
 * host may call `handleTimeout` explicitly at the deadline or simply poll; both are idempotent.
 *
 * The owner tells the connection what the first hop costs (`setPathEstimate`, or `options.path`):
 * the RTO floor, the ACK policy and the idle timeout follow the path (SPEC.md, "The path
 * estimate"). FEC (`options.fec`, `setFecMode`) sends REPAIR packets over the newest unacknowledged
 * DATA packets; the receiving side always decodes them (`RepairDecoder`, fec.ts).
 */
import {
  DATA_OVERHEAD,
  HEADER_SIZE,
  MAX_ACK_RANGES,
  MAX_ACK_SPAN,
  RESET_ABORTED,
  decodePacket,
  encodePacket,
  seqDistance,
  seqExpand,
  varintSize,
  type AckFrame,
  type AckRange,
  type MspErrorCode,
  type MspFrame,
  type MspPacket,
  type RepairFrame,
  MAX_REPAIR_COUNT,
} from './wire.js';
import { RepairDecoder, encodeRepair, frameOfSymbol, type Recovered } from './fec.js';

export type MspRole = 'initiator' | 'responder';
export type MspConnectionState = 'open' | 'closing' | 'closed' | 'error';
export type MspConnectionError = 'timeout' | 'reset';

export interface MspConnectionOptions {
  /** Cap on bytes held for sending: not yet sent plus sent and not yet cumulatively acknowledged. Default 65,536. */
  maxQueuedBytes?: number;
  /** Largest message `send` accepts. Default min(maxQueuedBytes, 16,384); must fit the peer's receive window. */
  maxMessageBytes?: number;
  /** Receive buffer (reorder buffer + partial message + messages not yet taken); advertised free space. Default 65,536. */
  receiveWindowBytes?: number;
  /**
   * Send queue and receive window on a fast path (a first hop of at least 8 Mbit/s that is not a
   * shared half-duplex channel), when the host allows it (`setLargeWindow`): a window of
   * 64 KiB carries only 64 KiB per round trip, a few MB/s where a round trip through two busy
   * hosts takes 10 ms. Default 1,048,576; never below the two above.
   */
  fastPathWindowBytes?: number;
  /** RTO before the first RTT sample (RFC 6298 says 1 s; radio paths are slower). Default 3,000. */
  initialRtoMs?: number;
  /** RTO floor. Default 1,000 (radio). */
  minRtoMs?: number;
  /** RTO ceiling (also caps the exponential backoff). Default 60,000. */
  maxRtoMs?: number;
  /** Nothing received for this long → state 'error', error 'timeout'. Default 180,000. */
  idleTimeoutMs?: number;
  /** Send a PING when nothing was sent for this long. Default 45,000 (a quarter of the idle timeout). */
  keepAliveMs?: number;
  /** Longest delay of an acknowledgement of a single in-order packet. Default 200 (shortened on a fast path, lengthened on a half-duplex channel). */
  ackDelayMs?: number;
  /** The first hop as the host sees it (see `setPathEstimate`). Default: unknown (the radio defaults above apply unchanged). */
  path?: MspPathEstimate;
  /** Forward error correction by REPAIR packets: 'off', 'on', or 'auto' (on while measured loss is high). Default 'off'. */
  fec?: MspFecMode;
  /** A REPAIR after every this many new DATA packets (and when the send queue runs dry). Default 8. */
  fecEvery?: number;
  /** A REPAIR covers the newest this many unacknowledged numbers at most (≤ 64). Default 16. */
  fecSpan?: number;
  /** 'auto' turns FEC on when the measured first-transmission loss exceeds this. Default 0.05. */
  fecOnLoss?: number;
  /** 'auto' turns FEC off again when the measured loss falls below this. Default 0.02. */
  fecOffLoss?: number;
}

export type MspFecMode = 'off' | 'on' | 'auto';

/**
 * What the host knows of the first hop (from the mesh route and the interface's airtime model):
 * the airtime of an MSP packet of n bytes is `perPacketMs + n × msPerByte` (the mesh frame's
 * overhead and the modem's preamble are in `perPacketMs`). `pathEstimateFromAirtime` derives it.
 */
export interface MspPathEstimate {
  /** Airtime of an empty MSP packet (mesh overhead, preamble, keying), ms. */
  perPacketMs: number;
  /** Airtime per MSP byte, ms. */
  msPerByte: number;
  /** The host's `maxBytes` for this path (MSP bytes of a full packet). */
  maxPacketBytes: number;
  /** One-way delay besides the airtime (propagation, processing), ms. Default 0. */
  propagationMs?: number;
  /** Share of time the first hop may transmit (a duty cycle), 0 < f ≤ 1. Default 1. */
  dutyFraction?: number;
  /** Both directions share one channel (radio): every ACK costs airtime the data could have had. Default false. */
  halfDuplex?: boolean;
}

/** A path estimate from an airtime function of MSP bytes (e.g. the interface model plus the mesh overhead), fitted through 0 and `maxPacketBytes`. */
export function pathEstimateFromAirtime(
  airtimeMs: (mspBytes: number) => number,
  maxPacketBytes: number,
  extra: { propagationMs?: number; dutyFraction?: number; halfDuplex?: boolean } = {},
): MspPathEstimate {
  const a0 = airtimeMs(0);
  const a1 = airtimeMs(maxPacketBytes);
  return { perPacketMs: a0, msPerByte: maxPacketBytes > 0 ? Math.max(0, a1 - a0) / maxPacketBytes : 0, maxPacketBytes, ...extra };
}

export interface MspConnectionConfig {
  role: MspRole;
  /** u32 connection id (chosen at random by the initiator). */
  connectionId: number;
  now: number;
  options?: MspConnectionOptions;
}

export type MspSendResult = { ok: true } | { ok: false; reason: 'too-large' | 'queue-full' | 'shut-down'; message: string };

export interface MspConnectionStats {
  packetsSent: number;
  packetsReceived: number;
  /** DATA packets sent again (any reason). */
  retransmissions: number;
  /** Of those, packets declared lost by SACK evidence (3 later-sent packets acknowledged). */
  fastRetransmits: number;
  /** RTO expirations. */
  timeouts: number;
  /** DATA packets received again (below the cumulative point or already buffered). */
  duplicates: number;
  /** Packets that failed to decode. */
  malformed: number;
  malformedByCode: Partial<Record<MspErrorCode, number>>;
  /** Well-formed packets not for this connection (other id or same role), or out of the window. */
  ignored: number;
  /** DATA packets dropped because the receive buffer was full. */
  windowDrops: number;
  /** Packets that carried an ACK frame. */
  acksSent: number;
  /** REPAIR packets sent. */
  repairsSent: number;
  /** REPAIR frames received. */
  repairsReceived: number;
  /** DATA packets recovered from REPAIRs (and then treated as received). */
  repairsRecovered: number;
}

/** The defaults, fit for LoRa and Wi-Fi alike. */
export const MSP_CONNECTION_DEFAULTS = {
  maxQueuedBytes: 65_536,
  receiveWindowBytes: 65_536,
  fastPathWindowBytes: 1_048_576,
  initialRtoMs: 3_000,
  minRtoMs: 1_000,
  maxRtoMs: 60_000,
  idleTimeoutMs: 180_000,
  keepAliveMs: 45_000,
  ackDelayMs: 200,
  fec: 'off',
  fecEvery: 8,
  fecSpan: 16,
  fecOnLoss: 0.05,
  fecOffLoss: 0.02,
} as const;

/** The RTO floor on a fast path: never below this, ms. */
const FAST_PATH_MIN_RTO_MS = 10;
/** A first hop of at least 8 Mbit/s (1 byte per µs) counts as fast for the large window. */
const FAST_PATH_MS_PER_BYTE = 0.001;
/** On a duty-cycled path, loss is left to SACK evidence for this many send intervals while new data can go. */
const DUTY_RTO_INTERVALS = 3;
/** The idle timeout covers at least this many send intervals of the path. */
const IDLE_INTERVALS = 16;
/** On a shared channel, ACKs are coalesced until one costs at most this share of the data airtime it acknowledges. */
const ACK_AIRTIME_SHARE = 0.04;
/** Bytes of a typical ACK packet (header, ACK with a range or two, WINDOW). */
const ACK_PACKET_BYTES = 16;
/**
 * A REPAIR over full fragments is this much longer than their DATA packet: header 5 + REPAIR
 * fields 6 + symbol length prefix 2 + DATA type byte 1 = 14, against DATA's 8.
 */
const REPAIR_EXTRA = HEADER_SIZE + 6 + 3 - DATA_OVERHEAD;
/** Samples before 'auto' FEC trusts its loss estimate. */
const FEC_AUTO_MIN_SAMPLES = 16;
/** Weight of one sample in the loss estimate (an EWMA over about 32 packets). */
const LOSS_EWMA_WEIGHT = 1 / 32;

/** Outstanding DATA numbers above the peer's cumulative point, at most (SPEC.md). */
export const MAX_IN_FLIGHT_NUMBERS = 0x7fff;
/** Clock granularity G of RFC 6298, ms. */
const CLOCK_GRANULARITY_MS = 1;

interface SentPacket {
  num: number;
  data: Uint8Array;
  end: boolean;
  fin: boolean;
  sentAt: number;
  /** Transmission order of the latest transmission (for loss detection). */
  txSeq: number;
  /** txSeq of the first transmission: what an ACK proves sent before, whichever copy it acknowledges. */
  firstTx: number;
  transmissions: number;
  /** Selectively acknowledged (kept until the cumulative point passes). */
  sacked: boolean;
  lost: false | 'rto' | 'fast';
  /** txSeq of the newest REPAIR covering this packet (0: none): loss is judged after it. */
  repairTx: number;
  /** An ACK acknowledged a later-sent packet but not this one (for the loss estimate). */
  holeSeen: boolean;
  /** The REPAIR symbol (u16 length, DATA type byte, fragment), made when first needed. */
  symbol?: Uint8Array;
}

interface Received {
  data: Uint8Array;
  end: boolean;
  fin: boolean;
}

interface Queued {
  msg: Uint8Array;
  offset: number;
}

export class MspConnection {
  readonly role: MspRole;
  readonly connectionId: number;
  readonly stats: MspConnectionStats = {
    packetsSent: 0,
    packetsReceived: 0,
    retransmissions: 0,
    fastRetransmits: 0,
    timeouts: 0,
    duplicates: 0,
    malformed: 0,
    malformedByCode: {},
    ignored: 0,
    windowDrops: 0,
    acksSent: 0,
    repairsSent: 0,
    repairsReceived: 0,
    repairsRecovered: 0,
  };

  /** The send queue cap and receive window in use (the options', or the fast path's). */
  private maxQueuedBytes: number;
  private readonly maxMessageBytes: number;
  private receiveWindowBytes: number;
  private readonly baseQueuedBytes: number;
  private readonly baseWindowBytes: number;
  private readonly fastWindowBytes: number;
  private largeWindowAllowed = true;
  private readonly minRtoMs: number;
  private readonly maxRtoMs: number;
  private readonly idleTimeoutMs: number;
  private readonly keepAliveMs: number;
  private readonly ackDelayMs: number;
  private readonly initialRtoMs: number;
  private fecMode: MspFecMode;
  private readonly fecEvery: number;
  private readonly fecSpan: number;
  private readonly fecOnLoss: number;
  private readonly fecOffLoss: number;

  // ---- derived from the path estimate (setPathEstimate)
  private path: MspPathEstimate | undefined;
  private floorRto: number;
  private idleMs: number;
  private keepAliveEff: number;
  private ackDelayEff: number;
  /** Packets received before an ACK is due. */
  private ackEvery = 2;
  /** The channel is shared and busy: ACKs are coalesced (a gap does not make one due at once). */
  private channelBound = false;
  /** Receiver: the highest DATA number seen, and numbers skipped past it since our last ACK. */
  private highestSeen = -1;
  private missedSinceAck = 0;
  /** DATA packets sent since the last ACK arrived (or the last RTO): the half-duplex pause. */
  private sentSinceAck = 0;
  /** The peer's longest ACK delay (assumed to be ours: both ends see the same path). */
  private peerAckDelay: number;
  /** The same when the channel went quiet after our packet (a shared channel: ACK after a pause); else peerAckDelay. */
  private peerQuietAckDelay = 0;
  /** The RTO timer was started by a packet sent with nothing in flight (not re-armed by an ACK since). */
  private rtoFromIdle = false;
  /** Airtime of a full packet divided by the duty cycle (0 without a path). */
  private sendIntervalMs = 0;

  private err: MspConnectionError | undefined;
  private closedFlag = false;
  private dropped = false;
  private resetPending = false;
  private heardPeer = false;
  private lastReceivedAt: number;
  private lastSentAt: number;

  // ---- sender
  private readonly queue: Queued[] = [];
  private unsentBytes = 0;
  private shutLocal = false;
  private finSent = false;
  private sndUna = 0; // lowest number not cumulatively acknowledged (full counter)
  private sndNext = 0; // next number to use (full counter)
  private readonly sent = new Map<number, SentPacket>();
  private retainedBytes = 0; // payload of packets in `sent`
  private inFlightBytes = 0; // payload of unacked, unsacked packets
  private txSeq = 0;
  private readonly topAckedTx: number[] = []; // the 3 highest txSeq values ever acknowledged, descending
  /** When the RTO last expired: packets sent before it give no RTT sample. */
  private lastTimeoutAt = -Infinity;
  /** The highest first-transmission txSeq acknowledged (time-ordered loss detection). */
  private topFirstTx = 0;
  private peerWindow: number;
  private peerWindowCum = 0;
  private srtt: number | undefined;
  private rttvar = 0;
  private rto: number;
  /** When the RTO timer was (re)started; the deadline is this plus `rtoTotal()`. */
  private rtoArmedAt: number | undefined;
  // ---- FEC sender
  private lossEstimate = 0;
  private lossSamples = 0;
  private fecAutoOn = false;
  private sinceRepair = 0;
  private repairPending = false;
  private repairSeed = 0;

  // ---- receiver
  private rcvNext = 0; // cumulative point (full counter)
  private readonly reorder = new Map<number, Received>();
  private reorderBytes = 0;
  private partial: Uint8Array[] = [];
  private partialBytes = 0;
  private readonly ready: Uint8Array[] = [];
  private readyBytes = 0;
  private remoteFinAt: number | undefined; // full number of the peer's FIN packet
  private shutRemote = false;
  private ackPending = 0; // DATA packets received since the last ACK sent
  private ackDue = false;
  private ackDeadline: number | undefined;
  /** On a shared channel: the ACK is due this long after the last DATA arrived (the sender paused); 0: unused. */
  private ackQuietMs = 0;
  private ackFirstAt: number | undefined;
  private lastAdvertised: number;
  private readonly decoder = new RepairDecoder({ maxSpan: MAX_REPAIR_COUNT, maxSymbolBytes: 4096 });

  // ---- ping / pong
  private pingDue = false;
  private pingToken = 0;
  private pongDue: number | undefined;

  constructor(config: MspConnectionConfig) {
    const o = config.options ?? {};
    const d = MSP_CONNECTION_DEFAULTS;
    this.role = config.role;
    this.connectionId = config.connectionId >>> 0;
    this.maxQueuedBytes = this.baseQueuedBytes = o.maxQueuedBytes ?? d.maxQueuedBytes;
    this.maxMessageBytes = o.maxMessageBytes ?? Math.min(this.maxQueuedBytes, 16_384);
    this.receiveWindowBytes = this.baseWindowBytes = o.receiveWindowBytes ?? d.receiveWindowBytes;
    this.fastWindowBytes = o.fastPathWindowBytes ?? d.fastPathWindowBytes;
    this.minRtoMs = o.minRtoMs ?? d.minRtoMs;
    this.maxRtoMs = Math.max(o.maxRtoMs ?? d.maxRtoMs, this.minRtoMs);
    this.idleTimeoutMs = o.idleTimeoutMs ?? d.idleTimeoutMs;
    this.keepAliveMs = o.keepAliveMs ?? d.keepAliveMs;
    this.ackDelayMs = o.ackDelayMs ?? d.ackDelayMs;
    this.initialRtoMs = o.initialRtoMs ?? d.initialRtoMs;
    this.fecMode = o.fec ?? d.fec;
    this.fecEvery = Math.max(1, Math.floor(o.fecEvery ?? d.fecEvery));
    this.fecSpan = clamp(Math.floor(o.fecSpan ?? d.fecSpan), 1, MAX_REPAIR_COUNT);
    this.fecOnLoss = o.fecOnLoss ?? d.fecOnLoss;
    this.fecOffLoss = o.fecOffLoss ?? d.fecOffLoss;
    this.floorRto = this.minRtoMs;
    this.idleMs = this.idleTimeoutMs;
    this.keepAliveEff = this.keepAliveMs;
    this.ackDelayEff = this.ackDelayMs;
    this.peerAckDelay = 0;
    this.rto = clamp(this.initialRtoMs, this.minRtoMs, this.maxRtoMs);
    if (o.path !== undefined) this.setPathEstimate(o.path);
    // Until the peer advertises, assume it has the same receive window as ours.
    this.peerWindow = this.receiveWindowBytes;
    this.lastAdvertised = this.receiveWindowBytes;
    this.lastReceivedAt = config.now;
    this.lastSentAt = config.now;
  }

  // ===========================================================================================
  // State

  get state(): MspConnectionState {
    if (this.err !== undefined) return 'error';
    if (this.closedFlag) return 'closed';
    if (this.shutLocal || this.shutRemote) return 'closing';
    return 'open';
  }
  /** `shutdown` was called: no more messages from us. */
  get shutdownLocal(): boolean {
    return this.shutLocal;
  }
  /** The peer's FIN arrived and everything before it: no more messages from the peer. */
  get shutdownRemote(): boolean {
    return this.shutRemote;
  }
  get error(): MspConnectionError | undefined {
    return this.err;
  }
  /** Current retransmission timeout, ms. */
  get rtoMs(): number {
    return this.rto;
  }
  /** Smoothed RTT, ms, once sampled. */
  get smoothedRttMs(): number | undefined {
    return this.srtt;
  }
  /** Bytes held for sending (unsent + unacknowledged), against maxQueuedBytes. */
  get queuedBytes(): number {
    return this.unsentBytes + this.retainedBytes;
  }
  /** The send queue cap in use (maxQueuedBytes, or the fast path's window). */
  get sendQueueCap(): number {
    return this.maxQueuedBytes;
  }
  /** The receive window in use. */
  get receiveWindow(): number {
    return this.receiveWindowBytes;
  }

  /**
   * Whether this connection may use `fastPathWindowBytes` on a fast path (the host's memory
   * budget: MspSockets grants it to a bounded number of connections). Default true.
   */
  setLargeWindow(allowed: boolean): void {
    this.largeWindowAllowed = allowed;
    this.applyWindow();
  }

  private applyWindow(): void {
    const p = this.path;
    const fast = this.largeWindowAllowed && p !== undefined && !this.channelBound && (p.dutyFraction ?? 1) >= 1 && p.msPerByte <= FAST_PATH_MS_PER_BYTE;
    this.maxQueuedBytes = fast ? Math.max(this.baseQueuedBytes, this.fastWindowBytes) : this.baseQueuedBytes;
    const window = fast ? Math.max(this.baseWindowBytes, this.fastWindowBytes) : this.baseWindowBytes;
    // The WINDOW frame on every ACK carries the change; a shrunk window is advertised as data is
    // taken (packets within what the peer was promised before stay acceptable: the reorder limit).
    this.receiveWindowBytes = window;
  }
  /** Whole received messages waiting for `takeReceived`. */
  get receivedMessages(): number {
    return this.ready.length;
  }
  get maxMessageSize(): number {
    return this.maxMessageBytes;
  }
  /** The path estimate in use, if any. */
  get pathEstimate(): MspPathEstimate | undefined {
    return this.path;
  }
  /** The RTO floor in use: `minRtoMs`, or lower on a path whose round trip is far shorter. */
  get minRtoInUseMs(): number {
    return this.floorRto;
  }
  /** The longest delay of our ACKs in use, and the count of packets that makes one due. */
  get ackPolicy(): { delayMs: number; every: number; coalesceGaps: boolean } {
    return { delayMs: this.ackDelayEff, every: this.ackEvery, coalesceGaps: this.channelBound };
  }
  /** The idle timeout in use (raised on a slow, duty-cycled path). */
  get idleTimeoutInUseMs(): number {
    return this.idleMs;
  }
  /** FEC: the mode, whether REPAIRs are being sent now, and the measured first-transmission loss. */
  get fec(): { mode: MspFecMode; active: boolean; lossEstimate: number } {
    return { mode: this.fecMode, active: this.fecActive(), lossEstimate: this.lossEstimate };
  }

  /**
   * Tells the connection what the first hop costs (the owner calls it when the route is known or
   * changes; `options.path` does the same at creation). With an estimate:
   * - the RTO floor is min(minRtoMs, max(10 ms, 3 × the path's round trip of a full packet and an
   *   ACK)): the 1 s radio floor stays on slow paths and drops to tens of ms on fast ones;
   * - the RTO adds the peer's longest ACK delay (as QUIC's PTO adds max_ack_delay), and on a
   *   duty-cycled path, while new data can go, 3 send intervals (airtime / duty): loss is then
   *   found by SACK evidence, not by a timer that would fire before anything else could be sent;
   * - ACKs: on a fast path the delay shrinks to half the path's round trip; on a busy shared
   *   channel (half-duplex, no duty cycle) ACKs are coalesced until one costs at most 4 % of the
   *   data airtime it acknowledges (every 2 … 16 packets), a gap no longer makes one due at once,
   *   and a quiet channel (two full packets' time) makes it due;
   * - the idle timeout and keep-alive grow to cover 16 send intervals of the path.
   */
  setPathEstimate(p: MspPathEstimate | undefined): void {
    this.path = p;
    const bad = (v: number | undefined): boolean => v !== undefined && !(Number.isFinite(v) && v >= 0);
    if (p === undefined || bad(p.maxPacketBytes) || bad(p.perPacketMs) || bad(p.msPerByte) || bad(p.propagationMs) || bad(p.dutyFraction) || p.dutyFraction === 0) {
      this.path = undefined;
      this.floorRto = this.minRtoMs;
      this.idleMs = this.idleTimeoutMs;
      this.keepAliveEff = this.keepAliveMs;
      this.ackDelayEff = this.ackDelayMs;
      this.ackEvery = 2;
      this.channelBound = false;
      this.peerAckDelay = 0;
      this.peerQuietAckDelay = 0;
      this.sendIntervalMs = 0;
      this.ackQuietMs = 0;
    } else {
      const duty = clamp(p.dutyFraction ?? 1, 1e-6, 1);
      const prop = Math.max(0, p.propagationMs ?? 0);
      const air = (n: number): number => Math.max(0, p.perPacketMs + n * p.msPerByte);
      const full = air(p.maxPacketBytes);
      const ack = air(ACK_PACKET_BYTES);
      const pathRtt = 2 * prop + full + ack;
      this.channelBound = p.halfDuplex === true && duty >= 0.5 && full > 0;
      if (this.channelBound) {
        this.ackEvery = clamp(Math.ceil(ack / (ACK_AIRTIME_SHARE * full)), 2, 16);
        this.ackDelayEff = Math.max(this.ackDelayMs, (this.ackEvery + 1) * full + 2 * prop);
        this.ackQuietMs = 2 * full + 2 * prop;
      } else {
        this.ackEvery = 2;
        this.ackDelayEff = Math.min(this.ackDelayMs, Math.max(1, pathRtt / 2));
        this.ackQuietMs = 0;
      }
      this.peerAckDelay = this.ackDelayEff;
      this.peerQuietAckDelay = this.channelBound ? Math.min(this.ackDelayEff, this.ackQuietMs + full) : this.ackDelayEff;
      this.floorRto = clamp(3 * pathRtt, FAST_PATH_MIN_RTO_MS, this.minRtoMs);
      this.sendIntervalMs = duty < 1 ? full / duty : 0;
      this.idleMs = Math.max(this.idleTimeoutMs, IDLE_INTERVALS * (full / duty), 4 * (this.peerAckDelay + pathRtt));
      this.keepAliveEff = this.keepAliveMs * (this.idleMs / this.idleTimeoutMs);
    }
    this.applyWindow();
    if (this.srtt === undefined) {
      const first = this.path === undefined ? this.initialRtoMs : Math.min(this.initialRtoMs, Math.max(this.floorRto, 3 * (2 * (this.path.propagationMs ?? 0) + this.path.perPacketMs * 2 + this.path.msPerByte * (this.path.maxPacketBytes + ACK_PACKET_BYTES))));
      this.rto = clamp(first, this.floorRto, this.maxRtoMs);
    } else {
      this.rto = clamp(this.srtt + Math.max(CLOCK_GRANULARITY_MS, 4 * this.rttvar), this.floorRto, this.maxRtoMs);
    }
  }

  /** FEC for this connection from now on (the host's request; `options.fec` at creation). */
  setFecMode(mode: MspFecMode): void {
    if (mode !== 'off' && mode !== 'on' && mode !== 'auto') return;
    this.fecMode = mode;
    if (mode === 'auto') this.fecAutoOn = this.lossSamples >= FEC_AUTO_MIN_SAMPLES && this.lossEstimate > this.fecOnLoss;
    if (!this.fecActive()) {
      this.repairPending = false;
      this.sinceRepair = 0;
    }
  }

  /** The timeout from the (re)start of the RTO timer: RTO, the peer's ACK delay, and on a duty-cycled path the send intervals (see setPathEstimate). */
  private rtoTotal(): number {
    let t = this.rto + (this.rtoFromIdle ? this.peerQuietAckDelay : this.peerAckDelay);
    if (this.sendIntervalMs > 0 && this.queue.length > 0 && this.windowRoom() > 0 && this.sndNext - this.sndUna < MAX_IN_FLIGHT_NUMBERS) t += DUTY_RTO_INTERVALS * this.sendIntervalMs;
    return t;
  }

  private get live(): boolean {
    return this.err === undefined && !this.closedFlag;
  }

  // ===========================================================================================
  // Application side

  /** Queues one message (kept whole for the peer; fragmented to fit the path's budget). */
  send(message: Uint8Array, _now: number): MspSendResult {
    if (!this.live || this.shutLocal) return { ok: false, reason: 'shut-down', message: `connection is ${this.state}${this.shutLocal ? ', shut down for sending' : ''}` };
    if (message.length > this.maxMessageBytes) return { ok: false, reason: 'too-large', message: `message of ${message.length} bytes, above the maximum ${this.maxMessageBytes}` };
    if (this.queuedBytes + message.length > this.maxQueuedBytes || this.queue.length >= this.maxQueuedBytes)
      return { ok: false, reason: 'queue-full', message: `${this.queuedBytes} bytes queued; ${message.length} more exceed ${this.maxQueuedBytes}` };
    this.queue.push({ msg: message.slice(), offset: 0 });
    this.unsentBytes += message.length;
    return { ok: true };
  }

  /** Ends our direction after the queued messages (FIN on the last one, or a bare FIN). */
  shutdown(_now: number): void {
    if (!this.live) return;
    this.shutLocal = true;
  }

  /**
   * Drops the connection locally: state 'closed' at once, nothing queued is sent. If it was not
   * already finished, one RESET (code 3, aborted) is offered to the next `pollTransmit`.
   */
  close(): void {
    if (this.err === undefined && !this.closedFlag) this.resetPending = true;
    this.closedFlag = true;
    this.dropped = true;
    this.queue.length = 0;
    this.unsentBytes = 0;
  }

  /** Whole received messages, in order, each once. */
  takeReceived(): Uint8Array[] {
    if (this.ready.length === 0) return [];
    const out = this.ready.splice(0, this.ready.length);
    this.readyBytes = 0;
    // Reopen a window the peer may be waiting on.
    const free = this.freeSpace();
    if (this.lastAdvertised < this.receiveWindowBytes / 2 && free >= this.receiveWindowBytes / 2 && !this.dropped && this.err === undefined) this.ackDue = true;
    return out;
  }

  // ===========================================================================================
  // Network side

  /** One received MSP packet (the payload of a mesh datagram). Never throws. */
  handlePacket(bytes: Uint8Array, now: number): void {
    this.handleTimeout(now);
    const r = decodePacket(bytes);
    if (!r.ok) {
      this.stats.malformed++;
      this.stats.malformedByCode[r.error.code] = (this.stats.malformedByCode[r.error.code] ?? 0) + 1;
      return;
    }
    const p = r.packet;
    if (this.dropped || this.err !== undefined) return;
    const fromPeer = this.role === 'initiator' ? p.fromResponder : !p.fromResponder;
    if (p.connectionId !== this.connectionId || !fromPeer || (this.role === 'initiator' && p.open)) {
      this.stats.ignored++;
      return;
    }
    this.stats.packetsReceived++;
    this.lastReceivedAt = now;
    this.heardPeer = true;

    let ack: AckFrame | undefined;
    let window: number | undefined;
    for (const f of p.frames) {
      switch (f.type) {
        case 'reset':
          if (this.closedFlag) return; // a graceful end already happened
          this.err = 'reset';
          return;
        case 'ack':
          ack = f;
          break;
        case 'window':
          window = f.bytes;
          break;
        case 'ping':
          this.pongDue = f.token;
          this.ackDue = true;
          break;
        case 'pong':
          break;
        case 'data':
          this.onData(seqExpand(p.packetNumber!, this.rcvNext), f.data, f.end, f.fin, now, undefined);
          break;
        case 'repair':
          this.onRepair(f, now);
          break;
      }
    }
    if (ack !== undefined) this.onAck(ack, window, now);
    else if (window !== undefined && this.sndUna >= this.peerWindowCum) this.peerWindow = window;
    this.checkClosed();
  }

  /** Runs the timers due at `now` (RTO, delayed ack, keep-alive, idle). Idempotent. */
  handleTimeout(now: number): void {
    if (this.dropped || this.err !== undefined) return;
    if (this.ackDeadline !== undefined && now >= this.ackDeadline) {
      this.ackDeadline = undefined;
      this.ackDue = true;
    }
    if (this.closedFlag) return;
    if (now >= this.lastReceivedAt + this.idleMs) {
      this.err = 'timeout';
      return;
    }
    if (this.rtoArmedAt !== undefined && now >= this.rtoArmedAt + this.rtoTotal()) {
      this.stats.timeouts++;
      this.lastTimeoutAt = now;
      this.sentSinceAck = 0;
      this.rto = Math.min(this.rto * 2, this.maxRtoMs);
      // One packet goes again, as a probe (QUIC's PTO, RFC 9002 §6.2; RACK's tail loss probe,
      // RFC 8985 §7): resending the whole flight would double a flight whose ACK was only late
      // (a busy host, a GC pause), and on a shared half-duplex channel hold the air the ACKs need.
      // On a fast path the probe is the newest unacknowledged packet: an ACK of it (of either
      // copy: its first transmission was the flight's last) shows everything sent before it that
      // is still unacknowledged as lost, and onAck's time-ordered rule sends that at once. On a
      // shared channel it is the oldest, whose ACK finds the rest by SACK.
      if (this.channelBound) {
        for (let n = this.sndUna; n < this.sndNext; n++) {
          const s = this.sent.get(n);
          if (s !== undefined && !s.sacked) {
            s.lost = 'rto';
            break;
          }
        }
      } else {
        // The holes below the highest selectively acknowledged packet go too: the peer has later
        // packets, so these are lost (or their resend was), not late.
        let probed = false;
        let aboveSacked = true;
        for (let n = this.sndNext - 1; n >= this.sndUna; n--) {
          const s = this.sent.get(n);
          if (s === undefined) continue;
          if (s.sacked) {
            aboveSacked = false;
            continue;
          }
          if (aboveSacked && probed) continue;
          s.lost = 'rto';
          probed = true;
        }
      }
      this.rtoArmedAt = this.sent.size > 0 ? now : undefined;
    }
    const ka = this.keepAliveDeadline();
    if (ka !== undefined && now >= ka) this.pingDue = true;
  }

  /** The earliest time `handleTimeout` (or a poll) has something to do, or undefined. */
  nextDeadline(): number | undefined {
    if (this.dropped || this.err !== undefined) return undefined;
    let d: number | undefined = this.ackDeadline;
    if (this.closedFlag) return d;
    const m = (t: number | undefined): void => {
      if (t !== undefined && (d === undefined || t < d)) d = t;
    };
    if (this.rtoArmedAt !== undefined) m(this.rtoArmedAt + this.rtoTotal());
    m(this.keepAliveDeadline());
    m(this.lastReceivedAt + this.idleMs);
    return d;
  }

  /**
   * The next packet to send, at most `maxBytes` long, or undefined. Priority: RESET, a due ACK,
   * retransmission, new data, keep-alive PING. A pending ACK (and WINDOW) rides on DATA.
   */
  pollTransmit(now: number, maxBytes: number): Uint8Array | undefined {
    this.handleTimeout(now);
    if (this.resetPending) {
      if (maxBytes < HEADER_SIZE + 2) return undefined;
      this.resetPending = false;
      return this.emit({ connectionId: this.connectionId, open: false, fromResponder: this.role === 'responder', frames: [{ type: 'reset', code: RESET_ABORTED }] }, now);
    }
    if (this.dropped || this.err !== undefined) return undefined;
    if (this.closedFlag) {
      // Lingering after a graceful close: still acknowledge retransmitted DATA of the peer.
      if (!this.ackDue) return undefined;
      return this.controlPacket(now, maxBytes);
    }

    // On a shared half-duplex channel the peer's ACK needs the air, and a carrier-sense MAC
    // favours the radio already transmitting: a sender that never pauses starves the ACKs. After
    // twice the peer's ACK interval of DATA with no ACK back, DATA waits for one (or the RTO).
    // The peer counts the packets it missed towards that interval, so it answers in time.
    if (this.channelBound && this.sentSinceAck >= 2 * this.ackEvery) {
      if (this.ackDue || this.pongDue !== undefined || this.pingDue) return this.controlPacket(now, maxBytes);
      return undefined;
    }

    // A due ACK that cannot share a packet with the next DATA goes alone first.
    const retx = this.firstLost();
    if (retx !== undefined) {
      if (DATA_OVERHEAD + retx.data.length <= maxBytes) {
        const ctrl = this.controlFrames(maxBytes - DATA_OVERHEAD - retx.data.length);
        if (ctrl !== undefined) return this.sendData(retx, ctrl, now);
        if (this.ackDue || this.pongDue !== undefined) return this.controlPacket(now, maxBytes);
        // Without control frames it fits.
        return this.sendData(retx, [], now);
      }
      // The fragment was cut for a larger budget: it waits for one (its number fixes its bytes);
      // only control frames go now.
      if (this.ackDue || this.pongDue !== undefined || this.pingDue) return this.controlPacket(now, maxBytes);
      return undefined;
    }

    // A REPAIR right after the packets it covers, before more new data.
    if (this.repairPending) {
      const rp = this.repairPacket(now, maxBytes);
      if (rp !== undefined) return rp;
    }

    const fresh = this.newDataAllowed();
    if (fresh) {
      const ctrl = this.controlFrames(maxBytes - DATA_OVERHEAD - 1);
      if (ctrl === undefined) return this.controlPacket(now, maxBytes);
      // With FEC on, fragments leave room for a REPAIR over them within the same maxBytes.
      const budget = maxBytes - DATA_OVERHEAD - framesSize(ctrl) - (this.fecActive() ? REPAIR_EXTRA : 0);
      const pkt = this.takeFragment(budget, now);
      if (pkt !== undefined) return this.sendData(pkt, ctrl, now);
    }
    if (this.ackDue || this.pongDue !== undefined || this.pingDue) return this.controlPacket(now, maxBytes);
    return undefined;
  }

  // ===========================================================================================
  // Sending internals

  private keepAliveDeadline(): number | undefined {
    if (!this.live || this.pingDue) return undefined;
    if (this.shutLocal && this.shutRemote && this.sent.size === 0 && this.queue.length === 0 && this.finSent) return undefined;
    const blocked = this.sent.size === 0 && this.unsentBytes > 0 && this.windowRoom() <= 0;
    return this.lastSentAt + (blocked ? Math.min(this.rto, this.keepAliveEff) : this.keepAliveEff);
  }

  private windowRoom(): number {
    return this.peerWindow - this.inFlightBytes;
  }

  private newDataAllowed(): boolean {
    if (this.queue.length === 0 && !(this.shutLocal && !this.finSent)) return false;
    if (this.sndNext - this.sndUna >= MAX_IN_FLIGHT_NUMBERS) return false;
    return true;
  }

  private firstLost(): SentPacket | undefined {
    if (this.sent.size === 0) return undefined;
    for (let n = this.sndUna; n < this.sndNext; n++) {
      const s = this.sent.get(n);
      if (s !== undefined && s.lost !== false && !s.sacked) return s;
    }
    return undefined;
  }

  /** Cuts the next fragment (or a bare FIN) within `budget` payload bytes and the peer's window. */
  private takeFragment(budget: number, now: number): SentPacket | undefined {
    const head = this.queue[0];
    if (head === undefined) {
      if (!(this.shutLocal && !this.finSent) || budget < 0) return undefined;
      this.finSent = true;
      return this.newPacket(new Uint8Array(0), false, true, now);
    }
    const remaining = head.msg.length - head.offset;
    let len = Math.min(remaining, budget, Math.max(0, this.windowRoom()));
    if (remaining > 0 && len <= 0) return undefined;
    if (remaining === 0 && budget < 0) return undefined;
    len = Math.max(0, len);
    const data = head.msg.subarray(head.offset, head.offset + len);
    head.offset += len;
    this.unsentBytes -= len;
    const end = head.offset === head.msg.length;
    if (end) this.queue.shift();
    const fin = end && this.shutLocal && this.queue.length === 0;
    if (fin) this.finSent = true;
    return this.newPacket(data, end, fin, now);
  }

  private newPacket(data: Uint8Array, end: boolean, fin: boolean, now: number): SentPacket {
    const s: SentPacket = { num: this.sndNext++, data, end, fin, sentAt: now, txSeq: 0, firstTx: 0, transmissions: 0, sacked: false, lost: false, repairTx: 0, holeSeen: false };
    this.sent.set(s.num, s);
    this.retainedBytes += data.length;
    this.inFlightBytes += data.length;
    return s;
  }

  private sendData(s: SentPacket, ctrl: MspFrame[], now: number): Uint8Array {
    this.sentSinceAck++;
    if (s.transmissions > 0) {
      this.stats.retransmissions++;
      if (s.lost === 'fast') this.stats.fastRetransmits++;
    }
    s.transmissions++;
    if (s.transmissions === 1 && this.fecActive()) {
      this.sinceRepair++;
      // Every fecEvery packets, and when the queue runs dry (the last packets have no others after them).
      if (this.sinceRepair >= this.fecEvery || this.queue.length === 0) this.repairPending = true;
    }
    s.lost = false;
    s.sentAt = now;
    s.txSeq = ++this.txSeq;
    if (s.transmissions === 1) s.firstTx = s.txSeq;
    if (this.rtoArmedAt === undefined) {
      this.rtoArmedAt = now;
      this.rtoFromIdle = true;
    } else {
      this.rtoFromIdle = false; // more than one packet out: the peer ACKs by its bulk rule
    }
    const frames: MspFrame[] = [...ctrl, { type: 'data', end: s.end, fin: s.fin, data: s.data }];
    return this.emit(this.header(frames, s.num & 0xffff), now);
  }

  /**
   * A REPAIR over the newest `fecSpan` numbers not cumulatively acknowledged (from the lowest one
   * not yet acknowledged at all), RLNC with a fresh non-zero seed; undefined when nothing is left
   * to repair or FEC went off. Never numbered, never retransmitted.
   */
  private repairPacket(now: number, maxBytes: number): Uint8Array | undefined {
    this.repairPending = false;
    this.sinceRepair = 0;
    if (!this.fecActive()) return undefined;
    let first = Math.max(this.sndUna, this.sndNext - this.fecSpan);
    while (first < this.sndNext && this.sent.get(first)?.sacked !== false) first++;
    let maxSym = 0;
    const fits = (): boolean => {
      maxSym = 2;
      for (let n = first; n < this.sndNext; n++) maxSym = Math.max(maxSym, 3 + this.sent.get(n)!.data.length);
      return HEADER_SIZE + 6 + maxSym <= maxBytes;
    };
    while (first < this.sndNext && !fits()) first++;
    if (first >= this.sndNext) return undefined;
    const symbols: Uint8Array[] = [];
    for (let n = first; n < this.sndNext; n++) symbols.push(symbolOfSent(this.sent.get(n)!));
    this.repairSeed = (this.repairSeed % 0xffff) + 1; // 1 … 65535: random linear combinations
    const payload = encodeRepair(symbols, this.repairSeed);
    const ctrl = this.controlFrames(maxBytes - HEADER_SIZE - 6 - payload.length) ?? [];
    const tx = ++this.txSeq;
    for (let n = first; n < this.sndNext; n++) {
      const s = this.sent.get(n)!;
      if (!s.sacked) s.repairTx = tx;
    }
    this.stats.repairsSent++;
    const frame: RepairFrame = { type: 'repair', first: first & 0xffff, count: this.sndNext - first, seed: this.repairSeed, payload };
    return this.emit(this.header([...ctrl, frame]), now);
  }

  private header(frames: MspFrame[], packetNumber?: number): MspPacket {
    const p: MspPacket = { connectionId: this.connectionId, open: this.role === 'initiator' && !this.heardPeer, fromResponder: this.role === 'responder', frames };
    if (packetNumber !== undefined) p.packetNumber = packetNumber;
    return p;
  }

  private emit(p: MspPacket, now: number): Uint8Array {
    const bytes = encodePacket(p);
    this.stats.packetsSent++;
    this.lastSentAt = now;
    for (const f of p.frames) {
      if (f.type === 'ack') {
        this.stats.acksSent++;
        this.ackPending = 0;
        this.missedSinceAck = 0;
        this.ackDue = false;
        this.ackDeadline = undefined;
        this.ackFirstAt = undefined;
      } else if (f.type === 'window') {
        this.lastAdvertised = f.bytes;
      } else if (f.type === 'pong') {
        this.pongDue = undefined;
      } else if (f.type === 'ping') {
        this.pingDue = false;
      }
    }
    return bytes;
  }

  /**
   * Control frames to ride on a DATA packet within `room` bytes: ACK + WINDOW when an ack is
   * pending, PONG when due. Undefined when due control frames do not fit (the caller then sends
   * them alone first).
   */
  private controlFrames(room: number): MspFrame[] | undefined {
    const frames: MspFrame[] = [];
    if (this.ackDue || this.ackPending > 0) {
      const w: MspFrame = { type: 'window', bytes: this.freeSpace() };
      const ack = this.buildAck(room - framesSize([w]));
      if (ack === undefined) return this.ackDue ? undefined : [];
      frames.push(ack, w);
    }
    if (this.pongDue !== undefined) {
      const pong: MspFrame = { type: 'pong', token: this.pongDue };
      if (framesSize([...frames, pong]) > room) return undefined;
      frames.push(pong);
    }
    return frames;
  }

  /** A packet of control frames only (ACK + WINDOW, PONG, PING). */
  private controlPacket(now: number, maxBytes: number): Uint8Array | undefined {
    const room = maxBytes - HEADER_SIZE;
    const frames: MspFrame[] = [];
    if (this.ackDue || this.ackPending > 0 || this.pingDue || this.pongDue !== undefined) {
      const w: MspFrame = { type: 'window', bytes: this.freeSpace() };
      const ack = this.buildAck(room - framesSize([w]) - 12);
      if (ack !== undefined) frames.push(ack, w);
    }
    if (this.pongDue !== undefined) frames.push({ type: 'pong', token: this.pongDue });
    if (this.pingDue) {
      this.pingToken = (this.pingToken + 1) >>> 0;
      frames.push({ type: 'ping', token: this.pingToken });
    }
    if (frames.length === 0 || framesSize(frames) > room) return undefined;
    return this.emit(this.header(frames), now);
  }

  // ===========================================================================================
  // Acknowledgements received

  private onAck(f: AckFrame, window: number | undefined, now: number): void {
    this.sentSinceAck = 0;
    const cum = seqExpand(f.cumulative, this.sndUna);
    if (cum > this.sndNext) return; // acknowledges numbers never sent: ignore the frame
    let newest: SentPacket | undefined;
    let anyNew = false;
    const ackOne = (s: SentPacket): void => {
      if (!s.sacked) {
        s.sacked = true;
        anyNew = true;
        this.inFlightBytes -= s.data.length;
        this.noteAckedTx(s.txSeq);
        if (s.firstTx > this.topFirstTx) this.topFirstTx = s.firstTx;
        this.noteLossSample(s.transmissions > 1 || s.holeSeen);
        if (s.transmissions === 1 && (newest === undefined || s.txSeq > newest.txSeq)) newest = s;
      }
    };
    let advanced = false;
    while (this.sndUna < cum) {
      const s = this.sent.get(this.sndUna);
      if (s !== undefined) {
        ackOne(s);
        this.sent.delete(s.num);
        this.retainedBytes -= s.data.length;
      }
      this.sndUna++;
      advanced = true;
    }
    for (const r of f.ranges) {
      const first = Math.max(cum + seqDistance(f.cumulative, r.first), this.sndUna);
      const last = Math.min(cum + seqDistance(f.cumulative, r.last), this.sndNext - 1);
      for (let n = first; n <= last; n++) {
        const s = this.sent.get(n);
        if (s !== undefined) ackOne(s);
      }
    }
    if (window !== undefined && cum >= this.peerWindowCum) {
      this.peerWindow = window;
      this.peerWindowCum = cum;
    }
    // Karn again: a packet sent before the last timeout may be acknowledged only now because its
    // ACK was lost and the probe drew a new one; its "round trip" would include the whole wait.
    if (newest !== undefined && newest.sentAt >= this.lastTimeoutAt) this.rttSample(now - newest.sentAt);
    // An ACK that acknowledges anything new ends a timeout's backoff (as QUIC's PTO count,
    // RFC 9002 §6.2.1): the path delivers; the RTO is the estimate's again.
    else if (anyNew && this.srtt !== undefined) this.rto = this.rtoEstimate();
    // Fast retransmit: a packet with 3 later-sent packets acknowledged is lost (each counted by
    // its latest transmission: a resent packet lost again is found by the resends after it), and
    // so is one sent before an acknowledged packet's first transmission that has had a round trip
    // and a reordering window (a quarter of it) to be acknowledged itself — time order, as RACK
    // (RFC 8985), what recovers a lost flight after one probe; counting the first transmission
    // there means an ACK of a late original never condemns what was sent after it. A packet
    // covered by a REPAIR is judged only by the first rule, after the REPAIR (3 packets sent
    // after it acknowledged): the peer may have recovered it.
    const top = this.topAckedTx[0];
    const third = this.topAckedTx[2];
    if (top !== undefined) {
      const srtt = this.srtt ?? 0;
      const overdueMs = srtt + Math.max(CLOCK_GRANULARITY_MS, srtt / 4);
      for (let n = this.sndUna; n < this.sndNext; n++) {
        const s = this.sent.get(n);
        if (s === undefined || s.sacked) continue;
        if (s.txSeq < top) s.holeSeen = true;
        if (s.lost !== false) continue;
        if (third !== undefined && Math.max(s.txSeq, s.repairTx) < third) s.lost = 'fast';
        else if (s.txSeq < this.topFirstTx && s.repairTx === 0 && now - s.sentAt >= overdueMs) s.lost = 'fast';
      }
    }
    if (this.sent.size === 0) this.rtoArmedAt = undefined;
    else if (advanced || anyNew) {
      this.rtoArmedAt = now;
      this.rtoFromIdle = false;
    }
  }

  /** The first-transmission loss estimate (an EWMA) and the 'auto' FEC switch with hysteresis. */
  private noteLossSample(lost: boolean): void {
    this.lossSamples++;
    const w = Math.max(LOSS_EWMA_WEIGHT, 1 / this.lossSamples);
    this.lossEstimate += w * ((lost ? 1 : 0) - this.lossEstimate);
    if (this.fecMode !== 'auto' || this.lossSamples < FEC_AUTO_MIN_SAMPLES) return;
    if (!this.fecAutoOn && this.lossEstimate > this.fecOnLoss) this.fecAutoOn = true;
    else if (this.fecAutoOn && this.lossEstimate < this.fecOffLoss) this.fecAutoOn = false;
  }

  private fecActive(): boolean {
    return this.fecMode === 'on' || (this.fecMode === 'auto' && this.fecAutoOn);
  }

  private noteAckedTx(tx: number): void {
    const t = this.topAckedTx;
    t.push(tx);
    t.sort((a, b) => b - a);
    if (t.length > 3) t.length = 3;
  }

  /** RFC 6298 §2 (Karn's rule is applied by the caller: only once-sent packets are sampled). */
  private rttSample(r: number): void {
    r = Math.max(0, r);
    if (this.srtt === undefined) {
      this.srtt = r;
      this.rttvar = r / 2;
    } else {
      this.rttvar = 0.75 * this.rttvar + 0.25 * Math.abs(this.srtt - r);
      this.srtt = 0.875 * this.srtt + 0.125 * r;
    }
    this.rto = this.rtoEstimate();
  }

  /** RFC 6298's RTO from SRTT and RTTVAR, floored and capped (the backoff aside). */
  private rtoEstimate(): number {
    return clamp(this.srtt! + Math.max(CLOCK_GRANULARITY_MS, 4 * this.rttvar), this.floorRto, this.maxRtoMs);
  }

  // ===========================================================================================
  // Receiving internals

  private freeSpace(): number {
    return Math.max(0, this.receiveWindowBytes - this.reorderBytes - this.partialBytes - this.readyBytes);
  }

  /**
   * One DATA packet, number `n` expanded; `symbol` is set when it was recovered from REPAIRs
   * (the decoder knows it already).
   */
  private onData(n: number, data: Uint8Array, end: boolean, fin: boolean, now: number, symbol: Uint8Array | undefined): void {
    if (n < this.rcvNext || this.reorder.has(n)) {
      this.stats.duplicates++;
      this.ackDue = true; // our ACK may have been lost
      return;
    }
    if (n - this.rcvNext > MAX_ACK_SPAN || (this.remoteFinAt !== undefined && n > this.remoteFinAt) || this.closedFlag) {
      this.stats.ignored++;
      return;
    }
    if (n === this.rcvNext) {
      // In order: accepted while partial + ready messages fit the window (the reorder buffer is
      // not counted, or a full reorder buffer could block the packet it waits for).
      if (this.partialBytes + this.readyBytes + data.length > this.receiveWindowBytes) {
        this.stats.windowDrops++;
        this.ackDue = true;
        return;
      }
    } else if (data.length > this.freeSpace()) {
      this.stats.windowDrops++;
      this.ackDue = true;
      return;
    }
    // One copy: the REPAIR symbol (u16 length, type byte, fragment), the fragment a view of it.
    let sym = symbol;
    if (sym === undefined) {
      const len = 1 + data.length;
      sym = new Uint8Array(2 + len);
      sym[0] = len >>> 8;
      sym[1] = len & 0xff;
      sym[2] = dataTypeByte(end, fin);
      sym.set(data, 3);
    }
    const copy = sym.subarray(3);
    if (fin) this.remoteFinAt = n;
    this.ackPending++;
    // Numbers skipped past the highest seen were sent too (and lost): on a shared channel they
    // count towards the ACK interval, as the sender counts them before it pauses for our ACK.
    if (n > this.highestSeen + 1) this.missedSinceAck += n - this.highestSeen - 1;
    if (n > this.highestSeen) this.highestSeen = n;
    const inOrder = n === this.rcvNext;
    if (inOrder) {
      this.accept({ data: copy, end, fin });
      while (this.reorder.has(this.rcvNext)) {
        const r = this.reorder.get(this.rcvNext)!;
        this.reorder.delete(this.rcvNext);
        this.reorderBytes -= r.data.length;
        this.accept(r);
      }
      if ((this.reorder.size > 0 && !this.channelBound) || this.ackPending + this.missedSinceAck >= this.ackEvery || fin || this.shutRemote) this.ackDue = true;
    } else {
      this.reorder.set(n, { data: copy, end, fin });
      this.reorderBytes += data.length;
      // A gap: at once, unless ACKs are coalesced on a busy shared channel.
      if (!this.channelBound || this.ackPending + this.missedSinceAck >= this.ackEvery) this.ackDue = true;
    }
    if (!this.ackDue) {
      if (this.ackFirstAt === undefined) this.ackFirstAt = now;
      let d = this.ackFirstAt + this.ackDelayEff;
      if (this.ackQuietMs > 0) d = Math.min(d, now + this.ackQuietMs);
      this.ackDeadline = d;
    }
    if (symbol === undefined) this.learnSymbol(n, sym, now);
  }

  /** Gives the decoder a received packet's symbol; packets it then recovers count as received. */
  private learnSymbol(n: number, sym: Uint8Array, now: number): void {
    this.deliverRecovered(this.decoder.addKnown(n, sym), now);
  }

  private onRepair(f: RepairFrame, now: number): void {
    this.stats.repairsReceived++;
    if (this.closedFlag) return;
    const first = seqExpand(f.first, this.rcvNext);
    // Nothing to learn when every covered number is already in hand.
    if (first + f.count <= this.rcvNext) return;
    this.deliverRecovered(this.decoder.addRepair(first, f.count, f.seed, f.payload), now);
  }

  private deliverRecovered(list: Recovered[], now: number): void {
    for (const r of list) {
      const frame = frameOfSymbol(r.symbol);
      if (frame === undefined || frame.length < 1) continue;
      const type = frame[0]!;
      if ((type & 0xfc) !== 0x10) continue; // not a DATA frame: a corrupt recovery, ignored
      if (r.num < this.rcvNext || this.reorder.has(r.num)) continue;
      this.stats.repairsRecovered++;
      const end = (type & 0x01) !== 0;
      const fin = (type & 0x02) !== 0;
      // The recovered symbol is trimmed to prefix + frame: the same layout onData keeps.
      this.onData(r.num, frame.subarray(1), end, fin, now, r.symbol);
    }
  }

  /** The packet numbered rcvNext, in order. */
  private accept(r: Received): void {
    this.rcvNext++;
    if (r.data.length > 0 || r.end) {
      this.partial.push(r.data);
      this.partialBytes += r.data.length;
    }
    if (r.end) {
      const msg = concat(this.partial, this.partialBytes);
      this.partial = [];
      this.partialBytes = 0;
      this.ready.push(msg);
      this.readyBytes += msg.length;
    }
    if (r.fin) {
      // A message left open by FIN is incomplete: it is never delivered.
      this.partial = [];
      this.partialBytes = 0;
      this.shutRemote = true;
    }
  }

  /** ACK of what we hold, with the highest ranges first when more than 15 (or than fit `room`). */
  private buildAck(room: number): AckFrame | undefined {
    const cumulative = this.rcvNext & 0xffff;
    if (room < 3) return undefined;
    const keys = [...this.reorder.keys()].sort((a, b) => a - b);
    const ranges: { first: number; last: number }[] = [];
    for (const k of keys) {
      const last = ranges[ranges.length - 1];
      if (last !== undefined && last.last + 1 === k) last.last = k;
      else ranges.push({ first: k, last: k });
    }
    let chosen = ranges.slice(-MAX_ACK_RANGES);
    const toFrame = (rs: typeof ranges): AckFrame => ({
      type: 'ack',
      cumulative,
      ranges: rs.map((r): AckRange => ({ first: r.first & 0xffff, last: r.last & 0xffff })),
    });
    let frame = toFrame(chosen);
    while (framesSize([frame]) > room && chosen.length > 0) {
      chosen = chosen.slice(1);
      frame = toFrame(chosen);
    }
    return frame;
  }

  private checkClosed(): void {
    if (!this.live) return;
    if (this.shutLocal && this.finSent && this.sent.size === 0 && this.queue.length === 0 && this.shutRemote) {
      this.closedFlag = true;
      this.rtoArmedAt = undefined;
    }
  }
}

// ---------------------------------------------------------------------------------------------

/** A sent packet's REPAIR symbol (SPEC.md, REPAIR), cached on it. */
function symbolOfSent(s: SentPacket): Uint8Array {
  if (s.symbol === undefined) {
    const len = 1 + s.data.length;
    const sym = new Uint8Array(2 + len);
    sym[0] = len >>> 8;
    sym[1] = len & 0xff;
    sym[2] = dataTypeByte(s.end, s.fin);
    sym.set(s.data, 3);
    s.symbol = sym;
  }
  return s.symbol;
}

function dataTypeByte(end: boolean, fin: boolean): number {
  return 0x10 | (end ? 0x01 : 0) | (fin ? 0x02 : 0);
}

function clamp(v: number, lo: number, hi: number): number {
  return Math.min(Math.max(v, lo), hi);
}

function concat(parts: Uint8Array[], total: number): Uint8Array {
  if (parts.length === 1) return parts[0]!;
  const out = new Uint8Array(total);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** Encoded size of control frames (not DATA). */
function framesSize(frames: MspFrame[]): number {
  let n = 0;
  for (const f of frames) {
    switch (f.type) {
      case 'ack': {
        n += 3;
        let prevEnd = 0;
        for (const r of f.ranges) {
          const first = seqDistance(f.cumulative, r.first);
          const last = seqDistance(f.cumulative, r.last);
          n += varintSize(first - prevEnd - 1) + varintSize(last - first);
          prevEnd = last + 1;
        }
        break;
      }
      case 'window':
        n += 1 + varintSize(f.bytes);
        break;
      case 'ping':
      case 'pong':
        n += 1 + varintSize(f.token);
        break;
      case 'reset':
        n += 2;
        break;
      case 'data':
        n += 1 + f.data.length;
        break;
      case 'repair':
        n += 6 + f.payload.length;
        break;
    }
  }
  return n;
}
