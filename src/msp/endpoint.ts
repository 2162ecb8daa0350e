/**
 * The MSP endpoint: a sans-IO demultiplexer of MSP connections (connection.ts) over one datagram
 * port (SPEC.md beside this file, section "The endpoint"). No sockets, timers or clocks: received
 * datagrams go in through `handleDatagram(fromSid, fromPort, bytes, now)`, packets come out of
 * `pollTransmit(now, maxBytesFor, ready?)`, and `poll(now)` / `nextDeadline(now)` give it the
 * gateway loop's `Machine` shape.
 *
 * Connections are keyed by (peer SID, peer port, connection id, local role). The endpoint creates
 * responder connections on packets with the OPEN flag while listening, answers packets of unknown
 * connections with RESET (rate-limited by a token bucket, so a flood cannot make it transmit
 * without bound), enforces caps on connections in total, per peer SID and waiting for `accept`,
 * serves connections round robin, and forgets finished connections after reporting them.
 */
import { MspConnection, MSP_CONNECTION_DEFAULTS, type MspConnectionError, type MspConnectionOptions, type MspConnectionState, type MspRole } from './connection.js';
import {
  FLAG_OPEN,
  FLAG_RESPONDER,
  HEADER_SIZE,
  MSP_VERSION,
  RESET_REFUSED,
  RESET_UNKNOWN_CONNECTION,
  decodePacket,
  encodePacket,
  type MspErrorCode,
} from './wire.js';

export interface MspEndpointOptions {
  /** Connections in the table at most (all peers, both roles, including those waiting for accept and lingering closed ones). Default 256. */
  maxConnections?: number;
  /** Connections with one peer SID at most (all its ports, both roles). Default 16. */
  maxConnectionsPerPeer?: number;
  /** Responder connections created and not yet taken by `accept()`, at most. Default 16. */
  maxPendingAccepts?: number;
  /** RESETs the endpoint itself queues per second at most (token bucket refill rate). Default 10. */
  maxResetsPerSecond?: number;
  /** Token bucket depth for RESETs (also the bound of the RESET queue). Default maxResetsPerSecond. */
  resetBurst?: number;
  /**
   * How long a gracefully closed connection stays in the table, still acknowledging the peer's
   * retransmissions (its last ACK may have been lost). Default: the connection idle timeout
   * (`connection.idleTimeoutMs`, 180,000).
   */
  closedLingerMs?: number;
  /** Ended connections held for `takeClosed()` at most (oldest dropped first). Default maxConnections. */
  maxClosedReports?: number;
  /** Options of every connection the endpoint creates. */
  connection?: MspConnectionOptions;
}

export const MSP_ENDPOINT_DEFAULTS = {
  maxConnections: 256,
  maxConnectionsPerPeer: 16,
  maxPendingAccepts: 16,
  maxResetsPerSecond: 10,
} as const;

export interface MspEndpointConfig {
  /** The local datagram port this endpoint serves (informational; the owner binds it). */
  localPort: number;
  /** Source of connection ids: a number in [0, 1), as Math.random. Default Math.random. */
  random?: () => number;
  options?: MspEndpointOptions;
}

/** Why a connection was not created (locally by `connect`, or for a remote OPEN). */
export type MspRefusal = 'not-listening' | 'too-many-connections' | 'too-many-for-peer' | 'accept-queue-full' | 'no-free-id';

export type MspConnectResult = { ok: true; connection: MspConnection } | { ok: false; reason: MspRefusal; message: string };

/** A packet for the owner to send: the whole payload of one datagram to (sid, port). */
export interface MspOutgoing {
  sid: Uint8Array;
  port: number;
  bytes: Uint8Array;
  /** The connection that produced it; undefined for the endpoint's own RESETs. */
  connection?: MspConnection;
}

/** A connection that ended (state 'closed' or 'error'), reported once by `takeClosed()`. */
export interface MspClosedReport {
  connection: MspConnection;
  sid: Uint8Array;
  port: number;
  role: MspRole;
  state: MspConnectionState;
  error: MspConnectionError | undefined;
}

export interface MspEndpointStats {
  /** Datagrams given to handleDatagram. */
  datagrams: number;
  /** Datagrams whose header (or, for unknown connections, whole packet) failed to decode; never answered. */
  malformed: number;
  malformedByCode: Partial<Record<MspErrorCode, number>>;
  /** Well-formed packets without OPEN for no known connection (answered with RESET, rate permitting). */
  unknown: number;
  /** RESET packets for no known connection (never answered). */
  unknownResets: number;
  /** OPEN packets refused (answered with RESET code 1, rate permitting), by reason. */
  refused: number;
  refusedByReason: Partial<Record<MspRefusal, number>>;
  /** Responder connections created. */
  created: number;
  /** Initiator connections created by connect(). */
  connected: number;
  /** RESETs queued by the endpoint (not those of the connections), and those transmitted. */
  resetsQueued: number;
  resetsSent: number;
  /** RESETs not queued because the rate limit was reached. */
  resetsSuppressed: number;
  /** Connections removed from the table. */
  removed: number;
  /** Ended-connection reports dropped because takeClosed() was not called in time. */
  reportsDropped: number;
  /** Exceptions caught inside handleDatagram (a bug; counted and survived). */
  internalErrors: number;
}

interface Entry {
  readonly key: string;
  readonly conn: MspConnection;
  readonly sid: Uint8Array;
  readonly sidHex: string;
  readonly port: number;
  readonly role: MspRole;
  /** When the connection was seen ended ('closed'); undefined while live. */
  endedAt: number | undefined;
  /** A transmit poll after the end returned nothing (a close() RESET went out). */
  drained: boolean;
  reported: boolean;
}

interface PendingReset {
  sid: Uint8Array;
  sidHex: string;
  port: number;
  bytes: Uint8Array;
}

const hex = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');

const keyOf = (sidHex: string, port: number, id: number, role: MspRole): string => `${sidHex}/${port}/${id >>> 0}/${role === 'initiator' ? 'i' : 'r'}`;

export class MspEndpoint {
  readonly name: string;
  readonly localPort: number;
  readonly stats: MspEndpointStats = {
    datagrams: 0,
    malformed: 0,
    malformedByCode: {},
    unknown: 0,
    unknownResets: 0,
    refused: 0,
    refusedByReason: {},
    created: 0,
    connected: 0,
    resetsQueued: 0,
    resetsSent: 0,
    resetsSuppressed: 0,
    removed: 0,
    reportsDropped: 0,
    internalErrors: 0,
  };
  /** When true, OPEN packets for unknown connections create responder connections for `accept()`. */
  accepting = false;

  private readonly random: () => number;
  private readonly maxConnections: number;
  private readonly maxPerPeer: number;
  private readonly maxPendingAccepts: number;
  private readonly resetRate: number;
  private readonly resetBurst: number;
  private readonly lingerMs: number;
  private readonly maxReports: number;
  private readonly connOptions: MspConnectionOptions | undefined;

  private readonly table = new Map<string, Entry>();
  /** Round-robin order of the table's entries. */
  private order: Entry[] = [];
  private cursor = 0;
  private readonly perPeer = new Map<string, number>();
  private readonly pendingAccepts: Entry[] = [];
  private readonly resets: PendingReset[] = [];
  private readonly reports: MspClosedReport[] = [];
  private resetTokens: number;
  private resetRefillAt: number | undefined;

  constructor(config: MspEndpointConfig) {
    const o = config.options ?? {};
    const d = MSP_ENDPOINT_DEFAULTS;
    this.localPort = config.localPort;
    this.name = `msp:${config.localPort}`;
    this.random = config.random ?? Math.random;
    this.maxConnections = o.maxConnections ?? d.maxConnections;
    this.maxPerPeer = o.maxConnectionsPerPeer ?? d.maxConnectionsPerPeer;
    this.maxPendingAccepts = o.maxPendingAccepts ?? d.maxPendingAccepts;
    this.resetRate = o.maxResetsPerSecond ?? d.maxResetsPerSecond;
    this.resetBurst = Math.max(1, o.resetBurst ?? this.resetRate);
    this.lingerMs = o.closedLingerMs ?? o.connection?.idleTimeoutMs ?? MSP_CONNECTION_DEFAULTS.idleTimeoutMs;
    this.maxReports = o.maxClosedReports ?? this.maxConnections;
    this.connOptions = o.connection;
    this.resetTokens = this.resetBurst;
  }

  // ===========================================================================================
  // Application side

  /** Starts accepting OPENs (same as `accepting = true`). */
  listen(): void {
    this.accepting = true;
  }

  /** Connections in the table (live, waiting for accept, or lingering after a graceful close). */
  get size(): number {
    return this.table.size;
  }

  /** Responder connections waiting for `accept()`. */
  get pendingAcceptCount(): number {
    return this.pendingAccepts.length;
  }

  /** RESETs queued by the endpoint, not yet transmitted. */
  get pendingResetCount(): number {
    return this.resets.length;
  }

  /**
   * Opens a connection to (peerSid, peerPort) with a fresh random non-zero 32-bit id not in use
   * with that peer. Its first packets carry OPEN; it may be used (send) at once.
   */
  connect(peerSid: Uint8Array, peerPort: number, now: number): MspConnectResult {
    const sidHex = hex(peerSid);
    if (this.table.size >= this.maxConnections) return this.refuseLocal('too-many-connections', `${this.table.size} connections, the maximum`);
    if ((this.perPeer.get(sidHex) ?? 0) >= this.maxPerPeer) return this.refuseLocal('too-many-for-peer', `${this.maxPerPeer} connections with ${sidHex}, the maximum`);
    for (let attempt = 0; attempt < 32; attempt++) {
      const id = Math.floor(this.random() * 0x1_0000_0000) >>> 0;
      if (id === 0) continue;
      const key = keyOf(sidHex, peerPort, id, 'initiator');
      if (this.table.has(key)) continue;
      const conn = new MspConnection({ role: 'initiator', connectionId: id, now, options: this.connOptions });
      this.insert(key, conn, peerSid.slice(), sidHex, peerPort, 'initiator');
      this.stats.connected++;
      return { ok: true, connection: conn };
    }
    return this.refuseLocal('no-free-id', 'no unused connection id found');
  }

  /** The oldest responder connection created by an OPEN and not yet taken, or undefined. Skips connections that failed meanwhile. */
  accept(): MspConnection | undefined {
    while (this.pendingAccepts.length > 0) {
      const e = this.pendingAccepts.shift()!;
      if (this.table.get(e.key) === e && e.conn.state !== 'error') return e.conn;
    }
    return undefined;
  }

  /** Connections that ended since the last call ('closed' or 'error'), each once. */
  takeClosed(): MspClosedReport[] {
    return this.reports.splice(0, this.reports.length);
  }

  /** The peer (sid, port) of a connection of this endpoint, or undefined when it is not (any more) in the table. */
  peerOf(conn: MspConnection): { sid: Uint8Array; port: number } | undefined {
    for (const e of this.order) if (e.conn === conn) return { sid: e.sid, port: e.port };
    return undefined;
  }

  // ===========================================================================================
  // Network side

  /** One received datagram on our port from (fromSid, fromPort). Never throws. */
  handleDatagram(fromSid: Uint8Array, fromPort: number, bytes: Uint8Array, now: number): void {
    this.stats.datagrams++;
    try {
      this.route(fromSid, fromPort, bytes, now);
    } catch {
      this.stats.internalErrors++;
    }
  }

  /**
   * Packets to send now. RESETs queued by the endpoint go first, then the connections round
   * robin, one packet each per round, so a bulk connection cannot starve another. Before each
   * packet, `ready(peerSid, packetsForPeerSoFar, connection)` (default: always) says whether the
   * first hop towards the peer takes another one (from that connection, at its priority), and `maxBytesFor(peerSid)` gives the payload budget (the
   * path MTU; undefined: no path, skip the peer). At most `maxPackets` packets in all. With
   * `send`, packets are handed to it one by one (and the returned list is empty), so a `ready`
   * that looks at the first hop's queue sees each packet already there.
   */
  pollTransmit(
    now: number,
    maxBytesFor: (peerSid: Uint8Array) => number | undefined,
    ready?: (peerSid: Uint8Array, packetsSoFar: number, connection: MspConnection | undefined) => boolean,
    maxPackets = Infinity,
    send?: (packet: MspOutgoing) => void,
  ): MspOutgoing[] {
    const out: MspOutgoing[] = [];
    let sent = 0;
    // With `send`, each packet goes out before `ready` is asked about the next one.
    const push = (o: MspOutgoing): void => {
      sent++;
      if (send) send(o);
      else out.push(o);
    };
    const counts = new Map<string, number>();
    const can = (sid: Uint8Array, sidHex: string, conn?: MspConnection): boolean => ready === undefined || ready(sid, counts.get(sidHex) ?? 0, conn);
    const emitted = (sidHex: string): void => {
      counts.set(sidHex, (counts.get(sidHex) ?? 0) + 1);
    };

    // Endpoint RESETs.
    for (let i = 0; i < this.resets.length && sent < maxPackets; ) {
      const r = this.resets[i]!;
      const budget = maxBytesFor(r.sid);
      if (budget === undefined || budget < r.bytes.length || !can(r.sid, r.sidHex)) {
        i++;
        continue;
      }
      this.resets.splice(i, 1);
      push({ sid: r.sid, port: r.port, bytes: r.bytes });
      emitted(r.sidHex);
      this.stats.resetsSent++;
    }

    // Connections, round robin.
    const snapshot = this.order.slice();
    const n = snapshot.length;
    if (n > 0) {
      const start = this.cursor % n;
      const done = new Set<Entry>();
      let next = start;
      let progress = true;
      while (progress && sent < maxPackets) {
        progress = false;
        for (let i = 0; i < n && sent < maxPackets; i++) {
          const idx = (start + i) % n;
          const e = snapshot[idx]!;
          if (done.has(e)) continue;
          const budget = maxBytesFor(e.sid);
          if (budget === undefined) {
            done.add(e);
            continue;
          }
          if (!can(e.sid, e.sidHex, e.conn)) continue;
          const pkt = e.conn.pollTransmit(now, budget);
          if (pkt === undefined) {
            done.add(e);
            if (e.endedAt !== undefined) e.drained = true;
            continue;
          }
          push({ sid: e.sid, port: e.port, bytes: pkt, connection: e.conn });
          emitted(e.sidHex);
          progress = true;
          next = idx + 1;
        }
      }
      this.cursor = next % n;
    }
    this.sweep(now);
    return out;
  }

  /** Machine shape: runs the connections' due timers and forgets finished connections. */
  poll(now: number): void {
    for (const e of this.order) e.conn.handleTimeout(now);
    this.sweep(now);
  }

  /** Machine shape: the earliest connection deadline or end of a closed connection's linger. */
  nextDeadline(now: number): number | undefined {
    let d: number | undefined;
    const m = (t: number | undefined): void => {
      if (t !== undefined && (d === undefined || t < d)) d = t;
    };
    for (const e of this.order) {
      m(e.conn.nextDeadline());
      if (e.endedAt !== undefined) m(now < e.endedAt + this.lingerMs ? e.endedAt + this.lingerMs : e.endedAt + 2 * this.lingerMs);
    }
    return d;
  }

  // ===========================================================================================
  // Internals

  private route(fromSid: Uint8Array, fromPort: number, bytes: Uint8Array, now: number): void {
    if (!(bytes instanceof Uint8Array) || bytes.length === 0) return this.malformed('empty');
    const b0 = bytes[0]!;
    if (b0 >>> 6 !== MSP_VERSION) return this.malformed('version');
    if ((b0 & 0x07) !== 0) return this.malformed('reserved-bits');
    const open = (b0 & FLAG_OPEN) !== 0;
    const fromResponder = (b0 & FLAG_RESPONDER) !== 0;
    if (open && fromResponder) return this.malformed('open-and-responder');
    if (bytes.length < HEADER_SIZE) return this.malformed('truncated');
    const id = ((bytes[1]! << 24) | (bytes[2]! << 16) | (bytes[3]! << 8) | bytes[4]!) >>> 0;
    const role: MspRole = fromResponder ? 'initiator' : 'responder';
    const sidHex = hex(fromSid);
    const key = keyOf(sidHex, fromPort, id, role);
    const known = this.table.get(key);
    if (known !== undefined) {
      // The connection decodes, validates and counts the packet itself.
      known.conn.handlePacket(bytes, now);
      this.check(known, now);
      return;
    }

    // Unknown connection: decode it all, never answer garbage or a RESET.
    const r = decodePacket(bytes);
    if (!r.ok) return this.malformed(r.error.code);
    const p = r.packet;
    if (p.frames.some((f) => f.type === 'reset')) {
      this.stats.unknownResets++;
      return;
    }
    if (!p.open) {
      this.stats.unknown++;
      this.queueReset(fromSid, sidHex, fromPort, id, !fromResponder, RESET_UNKNOWN_CONNECTION, now);
      return;
    }
    const refusal = this.refusalFor(sidHex);
    if (refusal !== undefined) {
      this.stats.refused++;
      this.stats.refusedByReason[refusal] = (this.stats.refusedByReason[refusal] ?? 0) + 1;
      this.queueReset(fromSid, sidHex, fromPort, id, !fromResponder, RESET_REFUSED, now);
      return;
    }
    const conn = new MspConnection({ role: 'responder', connectionId: id, now, options: this.connOptions });
    const e = this.insert(key, conn, fromSid.slice(), sidHex, fromPort, 'responder');
    this.pendingAccepts.push(e);
    this.stats.created++;
    conn.handlePacket(bytes, now);
    this.check(e, now);
  }

  private refusalFor(sidHex: string): MspRefusal | undefined {
    if (!this.accepting) return 'not-listening';
    if (this.table.size >= this.maxConnections) return 'too-many-connections';
    if ((this.perPeer.get(sidHex) ?? 0) >= this.maxPerPeer) return 'too-many-for-peer';
    // Entries that failed or were removed do not hold a place.
    let pending = 0;
    for (const e of this.pendingAccepts) if (this.table.get(e.key) === e && e.conn.state !== 'error') pending++;
    if (pending >= this.maxPendingAccepts) return 'accept-queue-full';
    return undefined;
  }

  private refuseLocal(reason: MspRefusal, message: string): MspConnectResult {
    return { ok: false, reason, message };
  }

  private malformed(code: MspErrorCode): void {
    this.stats.malformed++;
    this.stats.malformedByCode[code] = (this.stats.malformedByCode[code] ?? 0) + 1;
  }

  private insert(key: string, conn: MspConnection, sid: Uint8Array, sidHex: string, port: number, role: MspRole): Entry {
    const e: Entry = { key, conn, sid, sidHex, port, role, endedAt: undefined, drained: false, reported: false };
    this.table.set(key, e);
    this.order.push(e);
    this.perPeer.set(sidHex, (this.perPeer.get(sidHex) ?? 0) + 1);
    return e;
  }

  private remove(e: Entry): void {
    if (this.table.get(e.key) !== e) return;
    this.table.delete(e.key);
    const i = this.order.indexOf(e);
    if (i >= 0) {
      this.order.splice(i, 1);
      if (i < this.cursor) this.cursor--;
    }
    const c = (this.perPeer.get(e.sidHex) ?? 1) - 1;
    if (c <= 0) this.perPeer.delete(e.sidHex);
    else this.perPeer.set(e.sidHex, c);
    const p = this.pendingAccepts.indexOf(e);
    if (p >= 0) this.pendingAccepts.splice(p, 1);
    this.stats.removed++;
  }

  /** Notes an end of `e`: reports it once; an errored connection sends nothing more and goes at once. */
  private check(e: Entry, now: number): void {
    const st = e.conn.state;
    if (st !== 'closed' && st !== 'error') return;
    if (!e.reported) {
      e.reported = true;
      if (this.reports.length >= this.maxReports) {
        this.reports.shift();
        this.stats.reportsDropped++;
      }
      this.reports.push({ connection: e.conn, sid: e.sid, port: e.port, role: e.role, state: st, error: e.conn.error });
    }
    if (st === 'error') {
      this.remove(e);
      return;
    }
    if (e.endedAt === undefined) e.endedAt = now;
    // A closed connection lingers to acknowledge retransmissions; it goes after the linger once
    // its last packet (a close() RESET) went out, or after twice the linger regardless.
    if ((now >= e.endedAt + this.lingerMs && e.drained) || now >= e.endedAt + 2 * this.lingerMs) this.remove(e);
  }

  private sweep(now: number): void {
    for (const e of this.order.slice()) this.check(e, now);
  }

  private queueReset(sid: Uint8Array, sidHex: string, port: number, id: number, fromResponder: boolean, code: number, now: number): void {
    // Token bucket: resetRate per second, depth resetBurst.
    if (this.resetRefillAt === undefined) this.resetRefillAt = now;
    if (now > this.resetRefillAt) {
      this.resetTokens = Math.min(this.resetBurst, this.resetTokens + ((now - this.resetRefillAt) * this.resetRate) / 1000);
      this.resetRefillAt = now;
    }
    if (this.resetTokens < 1 || this.resets.length >= this.resetBurst) {
      this.stats.resetsSuppressed++;
      return;
    }
    this.resetTokens -= 1;
    const bytes = encodePacket({ connectionId: id, open: false, fromResponder, frames: [{ type: 'reset', code }] });
    this.resets.push({ sid: sid.slice(), sidHex, port, bytes });
    this.stats.resetsQueued++;
  }
}
