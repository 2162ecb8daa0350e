/**
 * Fuzz targets of the protocol codecs: RFC 5444 (decode → encode → decode), mesh frame headers,
 * Strokkur chunks and MSP packets (decode → encode gives the input back where the format has one
 * encoding, else is stable after one normalisation).
 */
import type { Message, Packet, Tlv } from '../../../../src/rfc5444/model.js';
import { decodePacket as decode5444, encodePacket as encode5444 } from '../../../../src/rfc5444/wire.js';
import { AddressForm, associatedData, decodeHeader, encodeHeader, forwardedFrame, headerLength, withVia, type FrameHeader } from '../../../../src/mesh/frame.js';
import { decodeChunk, encodeChunk } from '../../../../src/strokkur/chunk.js';
import { SendState } from '../../../../src/strokkur/send.js';
import { decodePacket as decodeMsp, encodePacket as encodeMsp, type MspPacket } from '../../../../src/msp/wire.js';
import { bytesEqual, invariant, type FuzzTarget } from '../../harness.js';

// ── RFC 5444 ───────────────────────────────────────────────────────────────────────────────────

const REASONS = new Set([
  'truncated', 'overrun', 'bad-version', 'message-size', 'bad-tlv-flags', 'index-out-of-range',
  'bad-multivalue-length', 'empty-address-block', 'bad-addr-flags', 'head-tail-too-long', 'bad-prefix-length', 'too-many-items',
]);

const tlv = (type: number, value: number[] | null, extType = 0): Tlv => ({ type, extType, value: value === null ? null : Uint8Array.from(value) });
const addr = (bytes: number[], prefixLength: number, tlvs: Tlv[] = []) => ({ address: Uint8Array.from(bytes), prefixLength, tlvs });

function sampleMessages(): Message[] {
  const long = Array.from({ length: 300 }, (_, i) => i & 0xff);
  return [
    { type: 0, addrLength: 16, originator: new Uint8Array(16).fill(7), hopLimit: 1, hopCount: null, seqno: 5, tlvs: [tlv(0, [0x50]), tlv(1, [0x58]), tlv(228, Array.from({ length: 12 }, (_, i) => i)), tlv(5, new Array(64).fill(0xaa), 1)],
      addresses: [addr(new Array(16).fill(1), 128, [tlv(3, [1]), tlv(225, [200])]), addr(new Array(16).fill(2), 128, [tlv(3, [2]), tlv(225, [90])])] },
    { type: 1, addrLength: 16, originator: new Uint8Array(16).fill(9), hopLimit: 255, hopCount: 0, seqno: 65535, tlvs: [tlv(1, [0x60])],
      addresses: [addr([...new Array(15).fill(3), 1], 128, [tlv(226, [0x3a, 0x83, 0x12, 0x6f]), tlv(227, [0, 255])]), addr([...new Array(15).fill(3), 2], 128, [tlv(226, [0x3a, 0x83, 0x12, 0x70]), tlv(227, [0, 255])])] },
    { type: 7, addrLength: 4, originator: Uint8Array.of(10, 0, 0, 1), hopLimit: 8, hopCount: 2, seqno: 17, tlvs: [tlv(9, long), tlv(10, null, 3), tlv(11, [])],
      addresses: [addr([10, 0, 0, 0], 24, [tlv(2, [0])]), addr([10, 0, 1, 0], 24, [tlv(2, [1])]), addr([10, 0, 2, 0], 16, [tlv(2, [1]), tlv(4, null)]), addr([192, 168, 0, 0], 32)] },
    { type: 2, addrLength: 1, originator: null, hopLimit: null, hopCount: null, seqno: null, tlvs: [], addresses: Array.from({ length: 40 }, (_, i) => addr([i], 8, i % 3 === 0 ? [tlv(1, [i, i])] : [])) },
    { type: 3, addrLength: 6, originator: null, hopLimit: 3, hopCount: null, seqno: 1, tlvs: [], addresses: [addr([1, 2, 3, 4, 5, 6], 48, [tlv(1, null, 2)]), addr([1, 2, 9, 9, 5, 6], 40, [tlv(1, null, 2)])] },
  ];
}

function rfc5444Corpus(): Uint8Array[] {
  const m = sampleMessages();
  const packets: Packet[] = [
    { version: 0, seqno: null, tlvs: [], messages: [m[0]!] },
    { version: 0, seqno: 300, tlvs: [], messages: [m[1]!] },
    { version: 0, seqno: 1, tlvs: [tlv(9, [7]), tlv(1, null, 4)], messages: [m[2]!, m[3]!] },
    { version: 0, seqno: null, tlvs: [tlv(0, [1, 2, 3])], messages: [] },
    { version: 0, seqno: 2, tlvs: [], messages: [m[4]!, m[0]!, m[1]!] },
    { version: 0, seqno: null, tlvs: [], messages: [m[3]!] },
  ];
  return packets.map(encode5444);
}

function tlvsEqual(a: readonly Tlv[], b: readonly Tlv[]): boolean {
  return a.length === b.length && a.every((t, i) => {
    const u = b[i]!;
    return t.type === u.type && t.extType === u.extType && (t.value === null ? u.value === null : u.value !== null && bytesEqual(t.value, u.value));
  });
}
const optBytes = (a: Uint8Array | null, b: Uint8Array | null): boolean => (a === null ? b === null : b !== null && bytesEqual(a, b));

export function rfc5444Equal(a: Packet, b: Packet): boolean {
  if (a.seqno !== b.seqno || !tlvsEqual(a.tlvs, b.tlvs) || a.messages.length !== b.messages.length) return false;
  return a.messages.every((m, i) => {
    const n = b.messages[i]!;
    return m.type === n.type && m.addrLength === n.addrLength && optBytes(m.originator, n.originator) && m.hopLimit === n.hopLimit && m.hopCount === n.hopCount && m.seqno === n.seqno &&
      tlvsEqual(m.tlvs, n.tlvs) && m.addresses.length === n.addresses.length &&
      m.addresses.every((x, j) => { const y = n.addresses[j]!; return bytesEqual(x.address, y.address) && x.prefixLength === y.prefixLength && tlvsEqual(x.tlvs, y.tlvs); });
  });
}

export const rfc5444CodecTarget: FuzzTarget = {
  name: 'rfc5444-codec',
  maxLength: 2048,
  corpus: rfc5444Corpus,
  one(input) {
    const d1 = decode5444(input);
    if (!d1.ok) {
      invariant(REASONS.has(d1.error.reason), `unknown reason ${d1.error.reason}`);
      invariant(d1.error.offset >= 0 && d1.error.offset <= input.length, `error offset ${d1.error.offset} outside the ${input.length}-byte input`);
      return;
    }
    let at = input[0]! & 0x08 ? 3 : 1;
    for (const s of d1.messageSpans) {
      invariant(s.start >= at && s.end > s.start && s.end <= input.length, 'message span out of order or outside the input');
      at = s.end;
    }
    const e1 = encode5444(d1.packet); // a decoded model always encodes (wire.ts)
    const d2 = decode5444(e1);
    invariant(d2.ok, `re-encoded packet does not decode: ${d2.ok ? '' : d2.error.reason}`);
    invariant(rfc5444Equal(d1.packet, d2.packet), 'decode → encode → decode changed the packet');
    invariant(bytesEqual(encode5444(d2.packet), e1), 'encoding is not stable after one normalisation');
  },
};

// ── Mesh frame header ──────────────────────────────────────────────────────────────────────────

function meshFrameCorpus(): Uint8Array[] {
  const sid = (n: number) => new Uint8Array(32).fill(n);
  const headers: FrameHeader[] = [
    { form: AddressForm.FULL, authOnly: false, ttl: 16, priority: 'bulk', dst: sid(1), src: sid(2), srcPort: 16, dstPort: 40, epoch: 1, counter: 0 },
    { form: AddressForm.COMPACT, authOnly: true, ttl: 63, priority: 'interactive', via: Uint8Array.of(9, 9), dst: Uint8Array.of(1, 1), src: Uint8Array.of(2, 2), srcPort: 255, dstPort: 0, epoch: 0xffffffff, counter: 0xffffffff },
    { form: AddressForm.BROADCAST, authOnly: true, ttl: 1, priority: 'ack', dst: undefined, src: sid(3), srcPort: 7, dstPort: 7, epoch: 2, counter: 77 },
    { form: AddressForm.BROADCAST_COMPACT, authOnly: true, ttl: 0, dst: undefined, src: Uint8Array.of(4, 4), srcPort: 30, dstPort: 30, epoch: 5, counter: 1 },
  ];
  return headers.map((h, i) => {
    const head = encodeHeader(h);
    const trailer = h.form >= AddressForm.BROADCAST ? 64 : 16;
    const out = new Uint8Array(head.length + i * 20 + trailer);
    out.set(head);
    for (let j = head.length; j < out.length; j++) out[j] = (j * 31) & 0xff;
    return out;
  });
}

const sameHeader = (a: FrameHeader, b: FrameHeader): boolean =>
  a.form === b.form && a.authOnly === b.authOnly && a.ttl === b.ttl && a.priority === b.priority && optBytes(a.via ?? null, b.via ?? null) &&
  optBytes(a.dst ?? null, b.dst ?? null) && bytesEqual(a.src, b.src) && a.srcPort === b.srcPort && a.dstPort === b.dstPort && a.epoch === b.epoch && a.counter === b.counter;

export const meshFrameTarget: FuzzTarget = {
  name: 'mesh-frame',
  maxLength: 512,
  corpus: meshFrameCorpus,
  one(input) {
    const r = decodeHeader(input);
    if (!r.ok) {
      invariant(r.reason === 'not-a-frame' || r.reason === 'truncated', `unknown reason ${String(r.reason)}`);
      return;
    }
    const { header, length } = r;
    invariant(length === headerLength(header.form, header.via !== undefined) && length <= input.length, 'header length disagrees with the form');
    const head = encodeHeader(header);
    invariant(head.length === length, 'encoded header has another length');
    // Only the reserved priority code 3 (read as ack) is normalised.
    const normal = input.slice();
    normal[1] = (input[1]! >> 6 === 3 ? (input[1]! & 0x3f) | 0x80 : input[1]!);
    invariant(bytesEqual(head, normal.subarray(0, length)), 'decode → encode changed the header bytes');
    normal.set(head, 0);
    const again = decodeHeader(normal);
    invariant(again.ok && sameHeader(again.header, header), 'decode → encode → decode changed the header');
    const aad = associatedData(input, length);
    invariant(aad.length === length - (header.via ? 2 : 0), 'associated data of the wrong length');
    const bare = withVia(input, undefined);
    const b = decodeHeader(bare);
    invariant(b.ok && b.header.via === undefined && sameHeader({ ...b.header, via: header.via }, header), 'removing via changed the header');
    invariant(bytesEqual(associatedData(bare, b.length), aad), 'via changed the authenticated bytes');
    const fwd = forwardedFrame(input, Uint8Array.of(0xab, 0xcd));
    if (header.ttl <= 1) invariant(fwd === undefined, 'a spent TTL was forwarded');
    else {
      const f = fwd ? decodeHeader(fwd) : undefined;
      invariant(f?.ok && f.header.ttl === header.ttl - 1 && f.header.via?.[0] === 0xab && bytesEqual(associatedData(fwd!, f.length), aad), 'forwarding changed more than TTL and via');
    }
  },
};

// ── Strokkur chunk ─────────────────────────────────────────────────────────────────────────────

export function strokkurMessages(): Uint8Array[] {
  return [Uint8Array.of(42), new TextEncoder().encode('hello strokkur, a small message'), Uint8Array.from({ length: 300 }, (_, i) => (i * 7) & 0xff), Uint8Array.from({ length: 1000 }, (_, i) => (i * i) & 0xff)];
}

/** Every chunk of each message, with varied chunk sizes and redundancy. */
export function strokkurChunks(): Uint8Array[] {
  const out: Uint8Array[] = [];
  const sizes = [16, 40, 64, 200];
  strokkurMessages().forEach((m, i) => {
    const uuid = new Uint8Array(16).fill(0x10 + i);
    const s = new SendState(m, { chunkSize: sizes[i]!, redundancy: 1 + i, uuid, seed: 0x1234 * (i + 1) });
    for (let c = s.next(); c !== undefined; c = s.next()) out.push(c.slice());
  });
  return out;
}

export const strokkurChunkTarget: FuzzTarget = {
  name: 'strokkur-chunk',
  maxLength: 1024,
  corpus: strokkurChunks,
  one(input) {
    const r = decodeChunk(input);
    if (!r.ok) {
      invariant(typeof r.reason === 'string' && r.reason.length > 0, 'a rejection without a reason');
      return;
    }
    const h = r.chunk.header;
    invariant(r.chunk.payload.length === h.chunkSize && h.index < h.rows && h.k >= 1 && h.rows >= h.k + 1, 'decoded header breaks its own rules');
    const again = encodeChunk(r.chunk);
    invariant(bytesEqual(again, input), 'decode → encode changed the chunk');
  },
};

// ── MSP packet ─────────────────────────────────────────────────────────────────────────────────

function mspCorpus(): Uint8Array[] {
  const packets: MspPacket[] = [
    { connectionId: 0x01020304, open: true, fromResponder: false, packetNumber: 0, frames: [{ type: 'data', end: true, fin: false, data: new TextEncoder().encode('hello') }] },
    { connectionId: 0xffffffff, open: false, fromResponder: true, frames: [{ type: 'ack', cumulative: 65530, ranges: [{ first: 65532, last: 65535 }, { first: 2, last: 2 }, { first: 100, last: 400 }] }, { type: 'window', bytes: 65536 }, { type: 'pong', token: 0xffffffff }] },
    { connectionId: 7, open: false, fromResponder: false, packetNumber: 65535, frames: [{ type: 'ack', cumulative: 3, ranges: [] }, { type: 'ping', token: 200 }, { type: 'data', end: false, fin: true, data: new Uint8Array(0) }] },
    { connectionId: 7, open: false, fromResponder: true, frames: [{ type: 'reset', code: 3 }] },
    { connectionId: 9, open: false, fromResponder: false, frames: [{ type: 'window', bytes: 127 }, { type: 'repair', first: 10, count: 4, seed: 99, payload: Uint8Array.of(0, 3, 0x11, 1, 2) }] },
    { connectionId: 9, open: false, fromResponder: false, packetNumber: 12, frames: [{ type: 'data', end: true, fin: true, data: Uint8Array.from({ length: 200 }, (_, i) => i) }] },
  ];
  return packets.map(encodeMsp);
}

export const mspPacketTarget: FuzzTarget = {
  name: 'msp-packet',
  maxLength: 1024,
  corpus: mspCorpus,
  one(input) {
    const r = decodeMsp(input);
    if (!r.ok) {
      // decodePacket turns any unexpected exception into 'truncated' at offset 0, which no real
      // truncation gives (the first byte is always there): that pair is a crash in disguise.
      invariant(!(r.error.code === 'truncated' && r.error.offset === 0), 'decoder threw internally (masked as truncated at 0)');
      invariant(r.error.offset >= 0 && r.error.offset <= input.length, 'error offset outside the input');
      return;
    }
    // One encoding per packet (minimal varints, fixed type bytes): the bytes come back exactly.
    invariant(bytesEqual(encodeMsp(r.packet), input), 'decode → encode changed the packet');
  },
};
