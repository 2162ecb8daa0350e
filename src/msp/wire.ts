/**
 * MSP (Mesh Streaming Protocol) packets: the wire codec (byte diagrams and rules: SPEC.md beside
 * this file). Sans-IO and pure: both directions mirror each other, one validator serves both.
 *
 *   byte 0      0 1 O R N 0 0 0   version 1; O = open (initiator, not yet answered);
 *                                 R = sent by the responder; N = packet number present (DATA)
 *   1..4        connection id     u32 BE, chosen at random by the initiator
 *   5..6        packet number     u16 BE, serial arithmetic (only when N: the packet has DATA)
 *   7..         frames            one or more, each starting with a type byte
 *
 * An MSP packet is the payload of one sealed mesh datagram between two (SID, port) endpoints:
 * the mesh layer gives addresses, integrity, confidentiality, replay protection and the exact
 * length, so MSP carries none of these.
 */

export const MSP_VERSION = 1;

/** Header flag bits in byte 0. */
export const FLAG_OPEN = 0x20;
export const FLAG_RESPONDER = 0x10;
export const FLAG_NUMBERED = 0x08;
const VERSION_SHIFT = 6;
const RESERVED_BITS = 0x07;

/** Frame type bytes. */
export const FRAME_PING = 0x01;
export const FRAME_PONG = 0x02;
export const FRAME_WINDOW = 0x03;
export const FRAME_RESET = 0x04;
export const FRAME_REPAIR = 0x08;
/** DATA is 0x10 | END (0x01) | FIN (0x02). */
export const FRAME_DATA = 0x10;
export const DATA_END = 0x01;
export const DATA_FIN = 0x02;
/** ACK is 0x20 | number of selective ranges (0..15). */
export const FRAME_ACK = 0x20;

/** Header bytes without a packet number (1 + connection id). */
export const HEADER_SIZE = 5;
/** Header bytes of a packet that carries DATA (with the packet number). */
export const NUMBERED_HEADER_SIZE = 7;
/** Overhead of a DATA packet: numbered header + DATA type byte. */
export const DATA_OVERHEAD = NUMBERED_HEADER_SIZE + 1;

/** Selective ranges per ACK frame (the low nibble of its type byte). */
export const MAX_ACK_RANGES = 15;
/**
 * Largest serial distance from an ACK's cumulative point to its highest acknowledged number:
 * everything an ACK names lies in the half of the 16-bit circle above `cumulative`.
 */
export const MAX_ACK_SPAN = 0x7fff;
/** Packets one REPAIR frame may cover. */
export const MAX_REPAIR_COUNT = 64;
/** Bytes of a LEB128 varint at most (a u32). */
export const MAX_VARINT_BYTES = 5;

// ---------------------------------------------------------------------------------------------
// Serial-number arithmetic (RFC 1982 over 16 bits)

export const SEQ_MODULUS = 0x10000;

/** `a + n` modulo 2^16. */
export function seqAdd(a: number, n: number): number {
  return (((a + n) % SEQ_MODULUS) + SEQ_MODULUS) % SEQ_MODULUS;
}

/** Forward distance from `a` to `b` modulo 2^16, in 0..65535. */
export function seqDistance(a: number, b: number): number {
  return (((b - a) % SEQ_MODULUS) + SEQ_MODULUS) % SEQ_MODULUS;
}

/**
 * Signed serial difference `b − a`, in −32768..32767. Positive means `b` is after `a`. The
 * comparison is meaningful only for numbers less than 2^15 apart, which senders guarantee by
 * never having more than 32,767 numbers outstanding (SPEC.md).
 */
export function seqDiff(a: number, b: number): number {
  const d = seqDistance(a, b);
  return d >= 0x8000 ? d - SEQ_MODULUS : d;
}

/** `a` precedes `b` in serial order. */
export function seqLt(a: number, b: number): boolean {
  return seqDiff(a, b) > 0;
}

/** `a` precedes or equals `b` in serial order. */
export function seqLe(a: number, b: number): boolean {
  return seqDiff(a, b) >= 0;
}

/**
 * Expands a 16-bit wire number to the full counter value nearest to `expected` (the receiver's
 * next expected full number), as QUIC does for truncated packet numbers.
 */
export function seqExpand(wire: number, expected: number): number {
  return expected + seqDiff(seqAdd(expected, 0), wire);
}

// ---------------------------------------------------------------------------------------------
// The model

/** An inclusive range of packet numbers, `first` ≤ `last` in serial order (it may wrap). */
export interface AckRange {
  first: number;
  last: number;
}

/** One message fragment; at most one per packet, always the last frame. Consumes the packet number. */
export interface DataFrame {
  type: 'data';
  /** This is the last fragment of a message (a message is the fragments since the previous END). */
  end: boolean;
  /** The sender's direction ends with this packet: no DATA with a higher number follows. */
  fin: boolean;
  /** Fragment bytes, possibly empty (a bare FIN). From decodePacket: a view into the packet. */
  data: Uint8Array;
}

/** Cumulative plus selective acknowledgement of the peer's packet numbers. */
export interface AckFrame {
  type: 'ack';
  /** u16: the lowest number not yet received; every number before it has been received. */
  cumulative: number;
  /** Received numbers above `cumulative`, ascending, disjoint, not adjacent; at most 15. */
  ranges: AckRange[];
}

/** Flow control: free space of the sender's receive queue. */
export interface WindowFrame {
  type: 'window';
  /** u32: payload bytes the peer may have in flight beyond the sender's cumulative point. */
  bytes: number;
}

/** Keep-alive and round-trip probe; the peer answers with PONG carrying the same token. */
export interface PingFrame {
  type: 'ping';
  /** u32. */
  token: number;
}

export interface PongFrame {
  type: 'pong';
  /** u32: the token of the PING answered. */
  token: number;
}

/** Reset codes (any u8 is carried; these are the defined ones). */
export const RESET_UNKNOWN_CONNECTION = 0;
export const RESET_REFUSED = 1;
export const RESET_PROTOCOL_ERROR = 2;
export const RESET_ABORTED = 3;

/** Abort: the connection is gone. Always the only frame of its packet. */
export interface ResetFrame {
  type: 'reset';
  /** u8. */
  code: number;
}

/**
 * Forward error correction over DATA packets `first` .. `first + count − 1`. The payload is a
 * linear combination (coefficients from `seed`, SPEC.md) of the covered packets' symbols: each
 * symbol is a u16 BE length followed by that packet's DATA frame (type byte and data), zero-padded
 * to the longest. Always the last frame; a packet with REPAIR carries no DATA.
 */
export interface RepairFrame {
  type: 'repair';
  /** u16: packet number of the first covered packet. */
  first: number;
  /** 1..64 packets covered. */
  count: number;
  /** u16: coefficient seed; 0 means plain XOR (every coefficient 1). */
  seed: number;
  /** At least 2 bytes (a symbol's length prefix). From decodePacket: a view into the packet. */
  payload: Uint8Array;
}

export type MspFrame = DataFrame | AckFrame | WindowFrame | PingFrame | PongFrame | ResetFrame | RepairFrame;

export interface MspPacket {
  /** u32, random, chosen by the initiator; the responder echoes it. */
  connectionId: number;
  /** Sent by the initiator before it has heard any packet of this connection from the responder. */
  open: boolean;
  /** Sent by the responder (otherwise by the initiator). Not both with `open`. */
  fromResponder: boolean;
  /** u16: present exactly when the packet carries a DATA frame. */
  packetNumber?: number;
  /** One or more; at most one of each type; DATA or REPAIR only last; RESET only alone. */
  frames: MspFrame[];
}

export type MspErrorCode =
  | 'empty'
  | 'version'
  | 'reserved-bits'
  | 'open-and-responder'
  | 'truncated'
  | 'no-frames'
  | 'unknown-frame'
  | 'duplicate-frame'
  | 'reset-not-alone'
  | 'data-without-number'
  | 'number-without-data'
  | 'varint-overlong'
  | 'varint-too-large'
  | 'ack-span'
  | 'repair-count'
  | 'repair-short';

export interface MspDecodeError {
  code: MspErrorCode;
  /** Offset in the packet of the byte (or field start) that revealed the error. */
  offset: number;
}

export type DecodePacketResult = { ok: true; packet: MspPacket } | { ok: false; error: MspDecodeError };

// ---------------------------------------------------------------------------------------------
// Validation shared by both directions

const isU = (v: unknown, max: number): boolean => typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= max;

/** Why ACK ranges cannot be encoded, or undefined. */
function ackProblem(f: AckFrame): string | undefined {
  if (!isU(f.cumulative, 0xffff)) return `cumulative ${f.cumulative} is not a u16`;
  if (!Array.isArray(f.ranges)) return 'ranges must be an array';
  if (f.ranges.length > MAX_ACK_RANGES) return `${f.ranges.length} ack ranges, above ${MAX_ACK_RANGES}`;
  // `prevEnd` = serial distance from cumulative to one past the previous range (cumulative itself is missing).
  let prevEnd = 0;
  for (const r of f.ranges) {
    if (!isU(r.first, 0xffff) || !isU(r.last, 0xffff)) return 'range bounds must be u16';
    const first = seqDistance(f.cumulative, r.first);
    const last = seqDistance(f.cumulative, r.last);
    if (first <= prevEnd) return `range starting at ${r.first} is not above the previous one with a gap`;
    if (last < first) return `range ${r.first}..${r.last} is reversed`;
    if (last > MAX_ACK_SPAN) return `range ends ${last} above cumulative, more than ${MAX_ACK_SPAN}`;
    prevEnd = last + 1;
  }
  return undefined;
}

/** Why a packet model cannot be encoded, or undefined when it can. */
export function packetProblem(p: MspPacket): string | undefined {
  if (!isU(p.connectionId, 0xffffffff)) return `connection id ${p.connectionId} is not a u32`;
  if (p.open && p.fromResponder) return 'open and fromResponder are exclusive';
  if (!Array.isArray(p.frames) || p.frames.length === 0) return 'a packet needs at least one frame';
  const seen = new Set<string>();
  let hasData = false;
  for (let i = 0; i < p.frames.length; i++) {
    const f = p.frames[i]!;
    if (seen.has(f.type)) return `two ${f.type} frames`;
    seen.add(f.type);
    const last = i === p.frames.length - 1;
    switch (f.type) {
      case 'data':
        if (!last) return 'DATA must be the last frame';
        if (!(f.data instanceof Uint8Array)) return 'data must be bytes';
        hasData = true;
        break;
      case 'repair':
        if (!last) return 'REPAIR must be the last frame';
        if (!isU(f.first, 0xffff)) return `repair first ${f.first} is not a u16`;
        if (!isU(f.count, MAX_REPAIR_COUNT) || f.count < 1) return `repair count ${f.count} outside 1..${MAX_REPAIR_COUNT}`;
        if (!isU(f.seed, 0xffff)) return `repair seed ${f.seed} is not a u16`;
        if (!(f.payload instanceof Uint8Array) || f.payload.length < 2) return 'repair payload must be at least 2 bytes';
        break;
      case 'ack': {
        const problem = ackProblem(f);
        if (problem !== undefined) return problem;
        break;
      }
      case 'window':
        if (!isU(f.bytes, 0xffffffff)) return `window ${f.bytes} is not a u32`;
        break;
      case 'ping':
      case 'pong':
        if (!isU(f.token, 0xffffffff)) return `token ${f.token} is not a u32`;
        break;
      case 'reset':
        if (p.frames.length !== 1) return 'RESET must be the only frame';
        if (!isU(f.code, 0xff)) return `reset code ${f.code} is not a u8`;
        break;
      default:
        return `unknown frame type ${(f as { type: unknown }).type}`;
    }
  }
  if (hasData) {
    if (!isU(p.packetNumber, 0xffff)) return `packet number ${p.packetNumber} is not a u16`;
  } else if (p.packetNumber !== undefined) {
    return 'a packet number only with DATA';
  }
  return undefined;
}

// ---------------------------------------------------------------------------------------------
// Encoding

/** Bytes of `v` as an unsigned LEB128 varint. */
export function varintSize(v: number): number {
  let n = 1;
  while (v >= 0x80) {
    v = Math.floor(v / 0x80);
    n++;
  }
  return n;
}

class Writer {
  private buf = new Uint8Array(64);
  length = 0;
  private room(n: number): void {
    if (this.length + n <= this.buf.length) return;
    const next = new Uint8Array(Math.max(this.buf.length * 2, this.length + n));
    next.set(this.buf.subarray(0, this.length));
    this.buf = next;
  }
  u8(v: number): void {
    this.room(1);
    this.buf[this.length++] = v;
  }
  u16(v: number): void {
    this.u8(v >>> 8);
    this.u8(v & 0xff);
  }
  u32(v: number): void {
    this.u16(Math.floor(v / 0x10000));
    this.u16(v % 0x10000);
  }
  varint(v: number): void {
    while (v >= 0x80) {
      this.u8((v % 0x80) | 0x80);
      v = Math.floor(v / 0x80);
    }
    this.u8(v);
  }
  bytes(b: Uint8Array): void {
    this.room(b.length);
    this.buf.set(b, this.length);
    this.length += b.length;
  }
  done(): Uint8Array {
    return this.buf.slice(0, this.length);
  }
}

/** The bytes of a packet. Throws RangeError for a model that cannot be represented. */
export function encodePacket(p: MspPacket): Uint8Array {
  const problem = packetProblem(p);
  if (problem !== undefined) throw new RangeError(problem);
  const w = new Writer();
  const numbered = p.packetNumber !== undefined;
  w.u8((MSP_VERSION << VERSION_SHIFT) | (p.open ? FLAG_OPEN : 0) | (p.fromResponder ? FLAG_RESPONDER : 0) | (numbered ? FLAG_NUMBERED : 0));
  w.u32(p.connectionId);
  if (numbered) w.u16(p.packetNumber!);
  for (const f of p.frames) {
    switch (f.type) {
      case 'data':
        w.u8(FRAME_DATA | (f.end ? DATA_END : 0) | (f.fin ? DATA_FIN : 0));
        w.bytes(f.data);
        break;
      case 'ack': {
        w.u8(FRAME_ACK | f.ranges.length);
        w.u16(f.cumulative);
        let prevEnd = 0;
        for (const r of f.ranges) {
          const first = seqDistance(f.cumulative, r.first);
          const last = seqDistance(f.cumulative, r.last);
          w.varint(first - prevEnd - 1); // missing numbers before the range, minus one
          w.varint(last - first); // numbers in the range, minus one
          prevEnd = last + 1;
        }
        break;
      }
      case 'window':
        w.u8(FRAME_WINDOW);
        w.varint(f.bytes);
        break;
      case 'ping':
        w.u8(FRAME_PING);
        w.varint(f.token);
        break;
      case 'pong':
        w.u8(FRAME_PONG);
        w.varint(f.token);
        break;
      case 'reset':
        w.u8(FRAME_RESET);
        w.u8(f.code);
        break;
      case 'repair':
        w.u8(FRAME_REPAIR);
        w.u16(f.first);
        w.u8(f.count);
        w.u16(f.seed);
        w.bytes(f.payload);
        break;
    }
  }
  return w.done();
}

// ---------------------------------------------------------------------------------------------
// Decoding

class Fail {
  constructor(
    readonly code: MspErrorCode,
    readonly offset: number,
  ) {}
}

class Reader {
  pos = 0;
  constructor(private readonly b: Uint8Array) {}
  get left(): number {
    return this.b.length - this.pos;
  }
  need(n: number, fieldStart = this.pos): void {
    if (this.left < n) throw new Fail('truncated', fieldStart);
  }
  u8(): number {
    this.need(1);
    return this.b[this.pos++]!;
  }
  u16(): number {
    this.need(2);
    const v = (this.b[this.pos]! << 8) | this.b[this.pos + 1]!;
    this.pos += 2;
    return v;
  }
  u32(): number {
    this.need(4);
    const v = ((this.b[this.pos]! << 24) | (this.b[this.pos + 1]! << 16) | (this.b[this.pos + 2]! << 8) | this.b[this.pos + 3]!) >>> 0;
    this.pos += 4;
    return v;
  }
  /** Minimal unsigned LEB128, at most 5 bytes, at most 2^32 − 1. */
  varint(): number {
    const start = this.pos;
    let v = 0;
    let scale = 1;
    for (let i = 0; i < MAX_VARINT_BYTES; i++) {
      if (this.left < 1) throw new Fail('truncated', start);
      const byte = this.b[this.pos++]!;
      v += (byte & 0x7f) * scale;
      if ((byte & 0x80) === 0) {
        if (byte === 0 && i > 0) throw new Fail('varint-overlong', start);
        if (v > 0xffffffff) throw new Fail('varint-too-large', start);
        return v;
      }
      scale *= 0x80;
    }
    throw new Fail('varint-too-large', start);
  }
  rest(): Uint8Array {
    const r = this.b.subarray(this.pos);
    this.pos = this.b.length;
    return r;
  }
}

function decodeAck(r: Reader, count: number): AckFrame {
  const cumulative = r.u16();
  const ranges: AckRange[] = [];
  let prevEnd = 0;
  for (let i = 0; i < count; i++) {
    const at = r.pos;
    const gap = r.varint();
    const len = r.varint();
    const first = prevEnd + gap + 1;
    const last = first + len;
    if (last > MAX_ACK_SPAN) throw new Fail('ack-span', at);
    ranges.push({ first: seqAdd(cumulative, first), last: seqAdd(cumulative, last) });
    prevEnd = last + 1;
  }
  return { type: 'ack', cumulative, ranges };
}

function decodeFrames(r: Reader, numbered: boolean): MspFrame[] {
  const frames: MspFrame[] = [];
  const seen = new Set<string>();
  while (r.left > 0) {
    const at = r.pos;
    const t = r.u8();
    let f: MspFrame;
    if ((t & 0xf0) === FRAME_ACK) {
      f = decodeAck(r, t & 0x0f);
    } else if ((t & 0xfc) === FRAME_DATA) {
      if (!numbered) throw new Fail('data-without-number', at);
      f = { type: 'data', end: (t & DATA_END) !== 0, fin: (t & DATA_FIN) !== 0, data: r.rest() };
    } else if (t === FRAME_REPAIR) {
      const first = r.u16();
      const countAt = r.pos;
      const count = r.u8();
      if (count < 1 || count > MAX_REPAIR_COUNT) throw new Fail('repair-count', countAt);
      const seed = r.u16();
      if (r.left < 2) throw new Fail('repair-short', r.pos);
      f = { type: 'repair', first, count, seed, payload: r.rest() };
    } else if (t === FRAME_WINDOW) {
      f = { type: 'window', bytes: r.varint() };
    } else if (t === FRAME_PING) {
      f = { type: 'ping', token: r.varint() };
    } else if (t === FRAME_PONG) {
      f = { type: 'pong', token: r.varint() };
    } else if (t === FRAME_RESET) {
      if (frames.length !== 0) throw new Fail('reset-not-alone', at);
      f = { type: 'reset', code: r.u8() };
      if (r.left > 0) throw new Fail('reset-not-alone', r.pos);
    } else {
      throw new Fail('unknown-frame', at);
    }
    if (seen.has(f.type)) throw new Fail('duplicate-frame', at);
    seen.add(f.type);
    frames.push(f);
  }
  return frames;
}

/**
 * Parses one packet (the whole payload of a mesh datagram). Never throws; the work is bounded by
 * the packet's length (at most 7 frames, 15 ack ranges). DATA and REPAIR payloads are views into
 * `bytes`, not copies.
 */
export function decodePacket(bytes: Uint8Array): DecodePacketResult {
  try {
    if (!(bytes instanceof Uint8Array)) return { ok: false, error: { code: 'empty', offset: 0 } };
    if (bytes.length === 0) return { ok: false, error: { code: 'empty', offset: 0 } };
    const r = new Reader(bytes);
    const b0 = r.u8();
    if (b0 >>> VERSION_SHIFT !== MSP_VERSION) return { ok: false, error: { code: 'version', offset: 0 } };
    if ((b0 & RESERVED_BITS) !== 0) return { ok: false, error: { code: 'reserved-bits', offset: 0 } };
    const open = (b0 & FLAG_OPEN) !== 0;
    const fromResponder = (b0 & FLAG_RESPONDER) !== 0;
    if (open && fromResponder) return { ok: false, error: { code: 'open-and-responder', offset: 0 } };
    const numbered = (b0 & FLAG_NUMBERED) !== 0;
    const connectionId = r.u32();
    const packetNumber = numbered ? r.u16() : undefined;
    if (r.left === 0) return { ok: false, error: { code: 'no-frames', offset: r.pos } };
    const frames = decodeFrames(r, numbered);
    if (numbered && frames[frames.length - 1]!.type !== 'data') return { ok: false, error: { code: 'number-without-data', offset: 5 } };
    const packet: MspPacket = { connectionId, open, fromResponder, frames };
    if (packetNumber !== undefined) packet.packetNumber = packetNumber;
    return { ok: true, packet };
  } catch (e) {
    if (e instanceof Fail) return { ok: false, error: { code: e.code, offset: e.offset } };
    return { ok: false, error: { code: 'truncated', offset: 0 } };
  }
}
