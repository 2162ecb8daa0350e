/**
 * The mesh datagram frame header (format and byte diagrams: SPEC.md beside this file).
 * Pure codec: no keys here; sealing is seal.ts.
 *
 *   byte 0   0101 A V FF  0x5_: a meshgw datagram (RFC 5444 packets start with 0x0_)
 *                         A = authenticate-only (payload in clear), V = via present,
 *                         FF = address form
 *   byte 1   PP TTTTTT    PP = priority class (0 bulk, 1 interactive, 2 ack, 3 reserved: read as
 *                         ack), authenticated and carried by every forwarder; TTTTTT = TTL
 *                         (0..63), decremented per hop, excluded from authentication
 *   (2)      via          next hop's short address, only on forwarded hops; rewritten per hop
 *                         and excluded from authentication
 *   ...      addresses    by form (below), then src port, dst port (u8 each)
 *   8 bytes  nonce        sender's boot epoch (u32 BE) ‖ frame counter (u32 BE)
 *   ...      payload      sealed, or in clear in authenticate-only mode
 *   16 | 64  tag          Poly1305 tag (unicast) or Ed25519 signature (broadcast)
 */
import { SID_LENGTH } from './identity.js';

export const FRAME_MARK = 0x50;
export const AUTH_ONLY = 0x08;
export const VIA = 0x04;
export const SHORT_ADDRESS = 2;
export const TAG_LENGTH = 16;
export const SIGNATURE_LENGTH = 64;
export const NONCE_LENGTH = 8;
/** Largest TTL: the low six bits of byte 1. */
export const MAX_TTL = 63;
const TTL_MASK = 0x3f;
const PRIORITY_SHIFT = 6;

/** Priority classes a datagram can carry in its header; control traffic is RFC 5444, never a datagram. */
export const DATAGRAM_PRIORITIES = ['bulk', 'interactive', 'ack'] as const;
export type DatagramPriority = (typeof DATAGRAM_PRIORITIES)[number];

/** The 2-bit code of a priority class (the header's PP bits). */
export function priorityCode(p: DatagramPriority): number {
  return DATAGRAM_PRIORITIES.indexOf(p);
}

/** The class of a PP code; the reserved code 3 reads as ack (never above it). */
export function priorityOfCode(code: number): DatagramPriority {
  return DATAGRAM_PRIORITIES[Math.min(code, 2)]!;
}

/** Address forms (low two bits of byte 0). */
export const AddressForm = {
  /** Unicast, full 32-byte destination and source SIDs. */
  FULL: 0,
  /** Unicast, 2-byte short destination and source (peers that know each other). */
  COMPACT: 1,
  /** Broadcast, full source SID, Ed25519 signature. */
  BROADCAST: 2,
  /** Broadcast, short source, Ed25519 signature. */
  BROADCAST_COMPACT: 3,
} as const;
export type AddressFormCode = (typeof AddressForm)[keyof typeof AddressForm];

export interface FrameHeader {
  form: AddressFormCode;
  authOnly: boolean;
  ttl: number;
  /** The header's PP bits; default bulk. */
  priority?: DatagramPriority;
  /** The next hop's short address, on frames a forwarder must pick up. */
  via?: Uint8Array | undefined;
  /** Full SID or short address; undefined for broadcast. */
  dst: Uint8Array | undefined;
  src: Uint8Array;
  srcPort: number;
  dstPort: number;
  epoch: number;
  counter: number;
}

export function isBroadcastForm(form: AddressFormCode): boolean {
  return form === AddressForm.BROADCAST || form === AddressForm.BROADCAST_COMPACT;
}

function addressLengths(form: AddressFormCode): { dst: number; src: number } {
  switch (form) {
    case AddressForm.FULL:
      return { dst: SID_LENGTH, src: SID_LENGTH };
    case AddressForm.COMPACT:
      return { dst: SHORT_ADDRESS, src: SHORT_ADDRESS };
    case AddressForm.BROADCAST:
      return { dst: 0, src: SID_LENGTH };
    default:
      return { dst: 0, src: SHORT_ADDRESS };
  }
}

export function headerLength(form: AddressFormCode, via = false): number {
  const a = addressLengths(form);
  return 2 + (via ? SHORT_ADDRESS : 0) + a.dst + a.src + 2 + NONCE_LENGTH;
}

/** Bytes after the payload: the AEAD tag, or the signature of a broadcast. */
export function trailerLength(form: AddressFormCode): number {
  return isBroadcastForm(form) ? SIGNATURE_LENGTH : TAG_LENGTH;
}

/** Total per-frame overhead (header + tag/signature) of a form. */
export function frameOverhead(form: AddressFormCode): number {
  return headerLength(form) + trailerLength(form);
}

/** Whether these bytes are a mesh datagram rather than an RFC 5444 packet. */
export function isMeshFrame(bytes: Uint8Array): boolean {
  return bytes.length > 0 && (bytes[0]! & 0xf0) === FRAME_MARK;
}

export function encodeHeader(h: FrameHeader): Uint8Array {
  const a = addressLengths(h.form);
  if (a.dst !== (h.dst?.length ?? 0)) throw new RangeError(`destination must be ${a.dst} bytes for address form ${h.form}`);
  if (a.src !== h.src.length) throw new RangeError(`source must be ${a.src} bytes for address form ${h.form}`);
  for (const [name, v, max] of [['ttl', h.ttl, MAX_TTL], ['srcPort', h.srcPort, 255], ['dstPort', h.dstPort, 255], ['epoch', h.epoch, 0xffffffff], ['counter', h.counter, 0xffffffff]] as const) {
    if (!Number.isInteger(v) || v < 0 || v > max) throw new RangeError(`${name} must be 0..${max}, got ${v}`);
  }
  if (h.via && h.via.length !== SHORT_ADDRESS) throw new RangeError(`via must be ${SHORT_ADDRESS} bytes`);
  const out = new Uint8Array(headerLength(h.form, h.via !== undefined));
  const view = new DataView(out.buffer);
  out[0] = FRAME_MARK | (h.authOnly ? AUTH_ONLY : 0) | (h.via ? VIA : 0) | h.form;
  out[1] = (priorityCode(h.priority ?? 'bulk') << PRIORITY_SHIFT) | h.ttl;
  let o = 2;
  if (h.via) {
    out.set(h.via, o);
    o += SHORT_ADDRESS;
  }
  if (h.dst) {
    out.set(h.dst, o);
    o += h.dst.length;
  }
  out.set(h.src, o);
  o += h.src.length;
  out[o++] = h.srcPort;
  out[o++] = h.dstPort;
  view.setUint32(o, h.epoch);
  view.setUint32(o + 4, h.counter);
  return out;
}

export type HeaderResult = { ok: true; header: FrameHeader; length: number } | { ok: false; reason: 'not-a-frame' | 'truncated' };

/** Parses a header (for receivers and forwarders); never throws. */
export function decodeHeader(bytes: Uint8Array): HeaderResult {
  if (!isMeshFrame(bytes)) return { ok: false, reason: 'not-a-frame' };
  const b0 = bytes[0]!;
  const form = (b0 & 0x03) as AddressFormCode;
  const hasVia = (b0 & VIA) !== 0;
  const length = headerLength(form, hasVia);
  if (bytes.length < length + trailerLength(form)) return { ok: false, reason: 'truncated' };
  const a = addressLengths(form);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let o = 2;
  const via = hasVia ? bytes.slice(o, o + SHORT_ADDRESS) : undefined;
  o += hasVia ? SHORT_ADDRESS : 0;
  const dst = a.dst ? bytes.slice(o, o + a.dst) : undefined;
  o += a.dst;
  const src = bytes.slice(o, o + a.src);
  o += a.src;
  const srcPort = bytes[o]!;
  const dstPort = bytes[o + 1]!;
  o += 2;
  return {
    ok: true,
    length,
    header: { form, authOnly: (b0 & AUTH_ONLY) !== 0, ttl: bytes[1]! & TTL_MASK, priority: priorityOfCode(bytes[1]! >> PRIORITY_SHIFT), via, dst, src, srcPort, dstPort, epoch: view.getUint32(o), counter: view.getUint32(o + 4) },
  };
}

/**
 * The authenticated header bytes: the header without what forwarders change — TTL bits zeroed
 * (the priority bits stay), the via bit cleared and the via address left out.
 */
export function associatedData(frame: Uint8Array, headerLen: number): Uint8Array {
  const hasVia = (frame[0]! & VIA) !== 0;
  const aad = new Uint8Array(headerLen - (hasVia ? SHORT_ADDRESS : 0));
  aad[0] = frame[0]! & ~VIA;
  aad[1] = frame[1]! & ~TTL_MASK;
  aad.set(frame.subarray(2 + (hasVia ? SHORT_ADDRESS : 0), headerLen), 2);
  return aad;
}

/**
 * The frame as a forwarder sends it on: TTL decremented and `via` set to the next hop's short
 * address (or removed with undefined, for the last hop). Undefined when the TTL is spent.
 */
export function forwardedFrame(frame: Uint8Array, via: Uint8Array | undefined): Uint8Array | undefined {
  const ttl = frame[1]! & TTL_MASK;
  if (ttl <= 1) return undefined;
  const out = withVia(frame, via);
  out[1] = (frame[1]! & ~TTL_MASK) | (ttl - 1);
  return out;
}

/** The frame with its via field set (or removed with undefined); TTL unchanged. */
export function withVia(frame: Uint8Array, via: Uint8Array | undefined): Uint8Array {
  const hasVia = (frame[0]! & VIA) !== 0;
  const rest = frame.subarray(2 + (hasVia ? SHORT_ADDRESS : 0));
  const out = new Uint8Array(2 + (via ? SHORT_ADDRESS : 0) + rest.length);
  out[0] = (frame[0]! & ~VIA) | (via ? VIA : 0);
  out[1] = frame[1]!;
  if (via) out.set(via, 2);
  out.set(rest, out.length - rest.length);
  return out;
}

/** The short address of a SID: its first two bytes. */
export function shortAddress(sid: Uint8Array): Uint8Array {
  return sid.slice(0, SHORT_ADDRESS);
}
