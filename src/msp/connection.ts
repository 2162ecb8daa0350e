/**
 * One MSP connection as a sans-IO state machine (SPEC.md beside this file, section "The
 * connection"). No timers, sockets or clocks: every method that depends on time takes `now` (ms,
 * monotonic). The host pulls packets with `pollTransmit(now, maxBytes)`, feeds received packets to
 * `handlePacket(bytes, now)`, and wakes the machine at `nextDeadline()`.
 *
 * Timeouts are folded in: `handlePacket` and `pollTransmit` first run `handleTimeout(now)`, so a
 * host may call `handleTimeout` explicitly at the deadline or simply poll; both are idempotent.
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
} from './wire.js';

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
  /** Longest delay of an acknowledgement of a single in-order packet. Default 200. */
  ackDelayMs?: number;
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
}

/** The defaults, fit for LoRa and Wi-Fi alike. */
export const MSP_CONNECTION_DEFAULTS = {
  maxQueuedBytes: 65_536,
  receiveWindowBytes: 65_536,
  initialRtoMs: 3_000,
  minRtoMs: 1_000,
  maxRtoMs: 60_000,
  idleTimeoutMs: 180_000,
  keepAliveMs: 45_000,
  ackDelayMs: 200,
} as const;

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
  transmissions: number;
  /** Selectively acknowledged (kept until the cumulative point passes). */
  sacked: boolean;
  lost: false | 'rto' | 'fast';
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
  };

  private readonly maxQueuedBytes: number;
  private readonly maxMessageBytes: number;
  private readonly receiveWindowBytes: number;
  private readonly minRtoMs: number;
  private readonly maxRtoMs: number;
  private readonly idleTimeoutMs: number;
  private readonly keepAliveMs: number;
  private readonly ackDelayMs: number;

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
  private peerWindow: number;
  private peerWindowCum = 0;
  private srtt: number | undefined;
  private rttvar = 0;
  private rto: number;
  private rtoDeadline: number | undefined;

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
  private lastAdvertised: number;

  // ---- ping / pong
  private pingDue = false;
  private pingToken = 0;
  private pongDue: number | undefined;

  constructor(config: MspConnectionConfig) {
    const o = config.options ?? {};
    const d = MSP_CONNECTION_DEFAULTS;
    this.role = config.role;
    this.connectionId = config.connectionId >>> 0;
    this.maxQueuedBytes = o.maxQueuedBytes ?? d.maxQueuedBytes;
    this.maxMessageBytes = o.maxMessageBytes ?? Math.min(this.maxQueuedBytes, 16_384);
    this.receiveWindowBytes = o.receiveWindowBytes ?? d.receiveWindowBytes;
    this.minRtoMs = o.minRtoMs ?? d.minRtoMs;
    this.maxRtoMs = Math.max(o.maxRtoMs ?? d.maxRtoMs, this.minRtoMs);
    this.idleTimeoutMs = o.idleTimeoutMs ?? d.idleTimeoutMs;
    this.keepAliveMs = o.keepAliveMs ?? d.keepAliveMs;
    this.ackDelayMs = o.ackDelayMs ?? d.ackDelayMs;
    this.rto = clamp(o.initialRtoMs ?? d.initialRtoMs, this.minRtoMs, this.maxRtoMs);
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
  get maxMessageSize(): number {
    return this.maxMessageBytes;
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
          this.onData(p.packetNumber!, f.data, f.end, f.fin, now);
          break;
        case 'repair':
          break; // FEC is not decoded by this connection (yet); the packet still refreshes liveness
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
    if (now >= this.lastReceivedAt + this.idleTimeoutMs) {
      this.err = 'timeout';
      return;
    }
    if (this.rtoDeadline !== undefined && now >= this.rtoDeadline) {
      this.stats.timeouts++;
      this.rto = Math.min(this.rto * 2, this.maxRtoMs);
      for (let n = this.sndUna; n < this.sndNext; n++) {
        const s = this.sent.get(n);
        if (s !== undefined && !s.sacked) s.lost = 'rto';
      }
      this.rtoDeadline = this.sent.size > 0 ? now + this.rto : undefined;
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
    m(this.rtoDeadline);
    m(this.keepAliveDeadline());
    m(this.lastReceivedAt + this.idleTimeoutMs);
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

    // A due ACK that cannot share a packet with the next DATA goes alone first.
    const retx = this.firstLost();
    if (retx !== undefined) {
      const ctrl = this.controlFrames(maxBytes - DATA_OVERHEAD - retx.data.length);
      if (ctrl !== undefined) return this.sendData(retx, ctrl, now);
      if (this.ackDue || this.pongDue !== undefined) return this.controlPacket(now, maxBytes);
      // Without control frames it may fit.
      if (DATA_OVERHEAD + retx.data.length <= maxBytes) return this.sendData(retx, [], now);
      return undefined;
    }

    const fresh = this.newDataAllowed();
    if (fresh) {
      const ctrl = this.controlFrames(maxBytes - DATA_OVERHEAD - 1);
      if (ctrl === undefined) return this.controlPacket(now, maxBytes);
      const pkt = this.takeFragment(maxBytes - DATA_OVERHEAD - framesSize(ctrl), now);
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
    return this.lastSentAt + (blocked ? Math.min(this.rto, this.keepAliveMs) : this.keepAliveMs);
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
    const s: SentPacket = { num: this.sndNext++, data, end, fin, sentAt: now, txSeq: 0, transmissions: 0, sacked: false, lost: false };
    this.sent.set(s.num, s);
    this.retainedBytes += data.length;
    this.inFlightBytes += data.length;
    return s;
  }

  private sendData(s: SentPacket, ctrl: MspFrame[], now: number): Uint8Array {
    if (s.transmissions > 0) {
      this.stats.retransmissions++;
      if (s.lost === 'fast') this.stats.fastRetransmits++;
    }
    s.transmissions++;
    s.lost = false;
    s.sentAt = now;
    s.txSeq = ++this.txSeq;
    if (this.rtoDeadline === undefined) this.rtoDeadline = now + this.rto;
    const frames: MspFrame[] = [...ctrl, { type: 'data', end: s.end, fin: s.fin, data: s.data }];
    return this.emit(this.header(frames, s.num & 0xffff), now);
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
        this.ackDue = false;
        this.ackDeadline = undefined;
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
    const cum = seqExpand(f.cumulative, this.sndUna);
    if (cum > this.sndNext) return; // acknowledges numbers never sent: ignore the frame
    let newest: SentPacket | undefined;
    const ackOne = (s: SentPacket): void => {
      if (!s.sacked) {
        s.sacked = true;
        this.inFlightBytes -= s.data.length;
        this.noteAckedTx(s.txSeq);
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
    if (newest !== undefined) this.rttSample(now - newest.sentAt);
    // Fast retransmit: a packet with 3 later-sent packets acknowledged is lost.
    const third = this.topAckedTx[2];
    if (third !== undefined) {
      for (let n = this.sndUna; n < this.sndNext; n++) {
        const s = this.sent.get(n);
        if (s !== undefined && !s.sacked && s.lost === false && s.txSeq < third) s.lost = 'fast';
      }
    }
    if (this.sent.size === 0) this.rtoDeadline = undefined;
    else if (advanced || newest !== undefined) this.rtoDeadline = now + this.rto;
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
    this.rto = clamp(this.srtt + Math.max(CLOCK_GRANULARITY_MS, 4 * this.rttvar), this.minRtoMs, this.maxRtoMs);
  }

  // ===========================================================================================
  // Receiving internals

  private freeSpace(): number {
    return Math.max(0, this.receiveWindowBytes - this.reorderBytes - this.partialBytes - this.readyBytes);
  }

  private onData(wire: number, data: Uint8Array, end: boolean, fin: boolean, now: number): void {
    const n = seqExpand(wire, this.rcvNext);
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
    if (fin) this.remoteFinAt = n;
    this.ackPending++;
    if (n === this.rcvNext) {
      this.accept({ data: data.slice(), end, fin });
      while (this.reorder.has(this.rcvNext)) {
        const r = this.reorder.get(this.rcvNext)!;
        this.reorder.delete(this.rcvNext);
        this.reorderBytes -= r.data.length;
        this.accept(r);
      }
      if (this.reorder.size > 0 || this.ackPending >= 2 || fin || this.shutRemote) this.ackDue = true;
    } else {
      this.reorder.set(n, { data: data.slice(), end, fin });
      this.reorderBytes += data.length;
      this.ackDue = true; // a gap
    }
    if (!this.ackDue && this.ackDeadline === undefined) this.ackDeadline = now + this.ackDelayMs;
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
      this.rtoDeadline = undefined;
    }
  }
}

// ---------------------------------------------------------------------------------------------

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
