/**
 * The mesh datagram frame header (format and byte diagrams: SPEC.md beside this file).
 * Pure codec: no keys here; sealing is seal.ts.
 *
 *   byte 0   0101 A FF    0x5_: a meshgw datagram (RFC 5444 packets start with 0x0_)
 *                         A = authenticate-only (payload in clear), FF = address form
 *   byte 1   TTL          decremented per hop, excluded from authentication
 *   ...      addresses    by form (below), then src port, dst port (u8 each)
 *   8 bytes  nonce        sender's boot epoch (u32 BE) ‖ frame counter (u32 BE)
 *   ...      payload      sealed, or in clear in authenticate-only mode
 *   16 | 64  tag          Poly1305 tag (unicast) or Ed25519 signature (broadcast)
 */
import { SID_LENGTH } from './identity.js';

export const FRAME_MARK = 0x50;
export const AUTH_ONLY = 0x08;
export const SHORT_ADDRESS = 2;
export const TAG_LENGTH = 16;
export const SIGNATURE_LENGTH = 64;
export const NONCE_LENGTH = 8;

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

export function headerLength(form: AddressFormCode): number {
  const a = addressLengths(form);
  return 2 + a.dst + a.src + 2 + NONCE_LENGTH;
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
  for (const [name, v, max] of [['ttl', h.ttl, 255], ['srcPort', h.srcPort, 255], ['dstPort', h.dstPort, 255], ['epoch', h.epoch, 0xffffffff], ['counter', h.counter, 0xffffffff]] as const) {
    if (!Number.isInteger(v) || v < 0 || v > max) throw new RangeError(`${name} must be 0..${max}, got ${v}`);
  }
  const out = new Uint8Array(headerLength(h.form));
  const view = new DataView(out.buffer);
  out[0] = FRAME_MARK | (h.authOnly ? AUTH_ONLY : 0) | h.form;
  out[1] = h.ttl;
  let o = 2;
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
  if (b0 & 0x04) return { ok: false, reason: 'not-a-frame' }; // reserved bit
  const form = (b0 & 0x03) as AddressFormCode;
  const length = headerLength(form);
  if (bytes.length < length + trailerLength(form)) return { ok: false, reason: 'truncated' };
  const a = addressLengths(form);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let o = 2;
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
    header: { form, authOnly: (b0 & AUTH_ONLY) !== 0, ttl: bytes[1]!, dst, src, srcPort, dstPort, epoch: view.getUint32(o), counter: view.getUint32(o + 4) },
  };
}

/** The authenticated header bytes: the header with its TTL zeroed (forwarders change the TTL). */
export function associatedData(frame: Uint8Array, headerLen: number): Uint8Array {
  const aad = frame.slice(0, headerLen);
  aad[1] = 0;
  return aad;
}

/** The short address of a SID: its first two bytes. */
export function shortAddress(sid: Uint8Array): Uint8Array {
  return sid.slice(0, SHORT_ADDRESS);
}
