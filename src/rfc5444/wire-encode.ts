/**
 * RFC 5444 encoder: the model of model.ts → bytes, compactly. Throws Rfc5444EncodeError (a
 * RangeError) for a model that cannot be encoded; that is a programming error, not input.
 *
 * Compact choices, per message:
 * - Address blocks: addresses keep their order. One block (up to 255 addresses each) unless
 *   splitting is smaller: the split that minimises the bytes of the address blocks alone is
 *   found by dynamic programming, and kept only if the whole encoding (addresses and their
 *   TLVs) comes out smaller than the unsplit one.
 * - Within a block: the longest head shared by all addresses, and the longest shared tail, or a
 *   zero tail when the shared tail bytes are zero, each used only where it saves bytes; at least
 *   one mid byte is always left. No prefix length when every address is full length, one when
 *   all are equal, else one per address.
 * - Address TLVs: emitted so that every address gets exactly its TLVs in its order. Repeatedly,
 *   the longest run of adjacent addresses whose next TLV has the same type and type extension is
 *   taken (preferring a run whose neighbours do not hold that type later in their lists) and
 *   split, at least cost, into TLVs over index ranges: one value for equal values, a multivalue
 *   for values of one length, no value when none has one. Index fields: none when a TLV covers
 *   the whole block, one for one address, two otherwise; a multivalue always carries both.
 * - Lengths: 8 bits, 16 (thasextlen) above 255; a type extension only when not 0.
 */
import type { Address, Message, Packet, Tlv } from './model.js';
import {
  ADDR_HAS_FULL_TAIL,
  ADDR_HAS_HEAD,
  ADDR_HAS_MULTI_PRELEN,
  ADDR_HAS_SINGLE_PRELEN,
  ADDR_HAS_ZERO_TAIL,
  MAX_U16,
  MSG_HAS_HOP_COUNT,
  MSG_HAS_HOP_LIMIT,
  MSG_HAS_ORIG,
  MSG_HAS_SEQNUM,
  PKT_HAS_SEQNUM,
  PKT_HAS_TLV,
  TLV_HAS_EXT_LEN,
  TLV_HAS_MULTI_INDEX,
  TLV_HAS_SINGLE_INDEX,
  TLV_HAS_TYPE_EXT,
  TLV_HAS_VALUE,
  TLV_IS_MULTIVALUE,
} from './wire-flags.js';

/** A model that RFC 5444 cannot carry (a field out of range, a size over 65535, ...). */
export class Rfc5444EncodeError extends RangeError {
  override readonly name = 'Rfc5444EncodeError';
}

function check(ok: boolean, message: string): void {
  if (!ok) throw new Rfc5444EncodeError(message);
}

function checkInt(value: number, max: number, what: string): void {
  check(Number.isInteger(value) && value >= 0 && value <= max, `${what} must be an integer 0..${max}, got ${value}`);
}

/** Growable byte buffer. */
class ByteWriter {
  private buf = new Uint8Array(64);
  length = 0;

  private room(n: number): void {
    if (this.length + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.length + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.length));
    this.buf = next;
  }

  u8(v: number): void {
    this.room(1);
    this.buf[this.length++] = v;
  }

  u16(v: number): void {
    this.room(2);
    this.buf[this.length++] = v >> 8;
    this.buf[this.length++] = v & 0xff;
  }

  bytes(v: Uint8Array): void {
    this.room(v.length);
    this.buf.set(v, this.length);
    this.length += v.length;
  }

  setU16(at: number, v: number): void {
    this.buf[at] = v >> 8;
    this.buf[at + 1] = v & 0xff;
  }

  result(): Uint8Array {
    return this.buf.slice(0, this.length);
  }
}

export function encodePacket(p: Packet): Uint8Array {
  check(p.version === 0, `packet version must be 0, got ${String(p.version)}`);
  const parts = [encodePacketHead(p.seqno, p.tlvs), ...p.messages.map(encodeMessage)];
  const out = new Uint8Array(parts.reduce((n, part) => n + part.length, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

/** Version/flags byte, optional seqno, and the packet TLV block when tlvs is non-empty. */
export function encodePacketHead(seqno: number | null, tlvs: Tlv[]): Uint8Array {
  const w = new ByteWriter();
  w.u8((seqno !== null ? PKT_HAS_SEQNUM : 0) | (tlvs.length > 0 ? PKT_HAS_TLV : 0));
  if (seqno !== null) {
    checkInt(seqno, MAX_U16, 'packet seqno');
    w.u16(seqno);
  }
  if (tlvs.length > 0) writeTlvBlock(w, tlvs, 'packet TLV block');
  return w.result();
}

export function encodeTlvBlock(tlvs: Tlv[]): Uint8Array {
  const w = new ByteWriter();
  writeTlvBlock(w, tlvs, 'TLV block');
  return w.result();
}

export function encodeMessage(m: Message): Uint8Array {
  checkInt(m.type, 0xff, 'message type');
  const L = m.addrLength;
  check(Number.isInteger(L) && L >= 1 && L <= 16, `addrLength must be 1..16, got ${L}`);
  const w = new ByteWriter();
  w.u8(m.type);
  const flags =
    (m.originator !== null ? MSG_HAS_ORIG : 0) |
    (m.hopLimit !== null ? MSG_HAS_HOP_LIMIT : 0) |
    (m.hopCount !== null ? MSG_HAS_HOP_COUNT : 0) |
    (m.seqno !== null ? MSG_HAS_SEQNUM : 0);
  w.u8(flags | (L - 1));
  w.u16(0); // <msg-size>, set below
  if (m.originator !== null) {
    check(m.originator.length === L, `originator must be ${L} bytes, got ${m.originator.length}`);
    w.bytes(m.originator);
  }
  if (m.hopLimit !== null) {
    checkInt(m.hopLimit, 0xff, 'hopLimit');
    w.u8(m.hopLimit);
  }
  if (m.hopCount !== null) {
    checkInt(m.hopCount, 0xff, 'hopCount');
    w.u8(m.hopCount);
  }
  if (m.seqno !== null) {
    checkInt(m.seqno, MAX_U16, 'message seqno');
    w.u16(m.seqno);
  }
  writeTlvBlock(w, m.tlvs, 'message TLV block');
  if (m.addresses.length > 0) w.bytes(encodeAddresses(m.addresses, L));
  check(w.length <= MAX_U16, `message of ${w.length} bytes is over 65535`);
  w.setU16(2, w.length);
  return w.result();
}

function checkTlv(t: Tlv): void {
  checkInt(t.type, 0xff, 'TLV type');
  checkInt(t.extType, 0xff, 'TLV extType');
  if (t.value !== null) check(t.value.length <= MAX_U16, `TLV value of ${t.value.length} bytes is over 65535`);
}

/** A packet or message TLV block: no index fields. */
function writeTlvBlock(w: ByteWriter, tlvs: Tlv[], what: string): void {
  const at = w.length;
  w.u16(0);
  for (const t of tlvs) {
    checkTlv(t);
    writeTlv(w, { type: t.type, extType: t.extType, value: t.value, index: null, multivalue: false });
  }
  const length = w.length - at - 2;
  check(length <= MAX_U16, `${what} of ${length} bytes is over 65535`);
  w.setU16(at, length);
}

/** One TLV as it goes on the wire. */
interface WireTlv {
  type: number;
  extType: number;
  /** The whole value (for a multivalue, the slices in order), or null. */
  value: Uint8Array | null;
  /** null: no index fields; [i, i] with single: one index; else start and stop. */
  index: { start: number; stop: number; single: boolean } | null;
  multivalue: boolean;
}

function writeTlv(w: ByteWriter, t: WireTlv): void {
  let flags = 0;
  if (t.extType !== 0) flags |= TLV_HAS_TYPE_EXT;
  if (t.index !== null) flags |= t.index.single ? TLV_HAS_SINGLE_INDEX : TLV_HAS_MULTI_INDEX;
  if (t.value !== null) flags |= TLV_HAS_VALUE | (t.value.length > 0xff ? TLV_HAS_EXT_LEN : 0);
  if (t.multivalue) flags |= TLV_IS_MULTIVALUE;
  w.u8(t.type);
  w.u8(flags);
  if (t.extType !== 0) w.u8(t.extType);
  if (t.index !== null) {
    w.u8(t.index.start);
    if (!t.index.single) w.u8(t.index.stop);
  }
  if (t.value !== null) {
    if (t.value.length > 0xff) w.u16(t.value.length);
    else w.u8(t.value.length);
    w.bytes(t.value);
  }
}

// ---- address blocks -------------------------------------------------------------------------

/** Encodes all address blocks of a message (with their TLV blocks), choosing the block split. */
function encodeAddresses(addrs: Address[], L: number): Uint8Array {
  for (const a of addrs) {
    check(a.address.length === L, `address must be ${L} bytes, got ${a.address.length}`);
    checkInt(a.prefixLength, 8 * L, 'prefixLength');
    for (const t of a.tlvs) checkTlv(t);
  }
  const plain = chunkBounds(addrs.length);
  const split = cheapestSplit(addrs, L);
  const a = encodeBlocks(addrs, L, plain);
  if (sameBounds(plain, split)) return a;
  const b = encodeBlocks(addrs, L, split);
  return b.length < a.length ? b : a;
}

/** Block boundaries: consecutive chunks of up to 255 addresses. */
function chunkBounds(n: number): number[] {
  const bounds = [0];
  for (let i = 255; i < n; i += 255) bounds.push(i);
  bounds.push(n);
  return bounds;
}

function sameBounds(a: number[], b: number[]): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}

/** Shared-byte statistics of a run of addresses, enough to price its address block. */
class BlockStats {
  n = 0;
  head = 0;
  tail = 0;
  zeroTail = 0;
  allFull = true;
  allSamePrefix = true;
  private first: Address | undefined;

  constructor(private readonly L: number) {}

  add(a: Address): void {
    const L = this.L;
    if (this.first === undefined) {
      this.first = a;
      this.head = L;
      this.tail = L;
      this.zeroTail = trailingZeros(a.address);
    } else {
      const f = this.first.address;
      let h = 0;
      while (h < this.head && f[h] === a.address[h]) h++;
      this.head = h;
      let t = 0;
      while (t < this.tail && f[L - 1 - t] === a.address[L - 1 - t]) t++;
      this.tail = t;
      this.zeroTail = Math.min(this.zeroTail, trailingZeros(a.address));
      if (a.prefixLength !== this.first.prefixLength) this.allSamePrefix = false;
    }
    if (a.prefixLength !== 8 * L) this.allFull = false;
    this.n++;
  }

  /** The layout layoutBytes() chose last. */
  private chosen = { head: 0, tail: 0, zero: false, bytes: 0 };

  /**
   * Size in bytes (num-addr and flags included) of the cheapest head/tail layout: a head of the
   * shared length or none, and a full tail, a zero tail or none, always leaving one mid byte.
   * Ties keep the earlier choice (no head before a head; no tail, full tail, zero tail).
   */
  layoutBytes(): number {
    const { n, L, chosen } = this;
    chosen.bytes = Infinity;
    for (let k = 0; k < (this.head > 0 ? 2 : 1); k++) {
      const head = k === 0 ? 0 : Math.min(this.head, L - 1);
      const room = L - 1 - head;
      const fixed = 2 + (head > 0 ? 1 + head : 0);
      this.consider(fixed + n * (L - head), head, 0, false);
      const full = Math.min(this.tail, room);
      if (full > 0) this.consider(fixed + 1 + full + n * (L - head - full), head, full, false);
      const zero = Math.min(this.zeroTail, room);
      if (zero > 0) this.consider(fixed + 1 + n * (L - head - zero), head, zero, true);
    }
    return chosen.bytes;
  }

  private consider(bytes: number, head: number, tail: number, zero: boolean): void {
    if (bytes >= this.chosen.bytes) return;
    this.chosen.bytes = bytes;
    this.chosen.head = head;
    this.chosen.tail = tail;
    this.chosen.zero = zero;
  }

  /** The cheapest head/tail layout (see layoutBytes). */
  layout(): { head: number; tail: number; zero: boolean; bytes: number } {
    this.layoutBytes();
    return { ...this.chosen };
  }

  prefixBytes(): number {
    return this.allFull ? 0 : this.allSamePrefix ? 1 : this.n;
  }

  /** Bytes of the address block plus the 2-byte length of its (TLV) block. */
  cost(): number {
    return this.n === 0 ? 0 : this.layoutBytes() + this.prefixBytes() + 2;
  }
}

function trailingZeros(a: Uint8Array): number {
  let z = 0;
  while (z < a.length && a[a.length - 1 - z] === 0) z++;
  return z;
}

/**
 * Block boundaries that minimise the bytes of the address blocks (TLVs aside): dynamic
 * programming over the end of the last block, O(n × 255 × addrLength).
 */
function cheapestSplit(addrs: Address[], L: number): number[] {
  const n = addrs.length;
  const best = new Array<number>(n + 1).fill(Infinity);
  const from = new Array<number>(n + 1).fill(0);
  best[0] = 0;
  for (let j = 1; j <= n; j++) {
    // Blocks addrs[i..j): grow backwards from j - 1 (the statistics do not depend on order).
    const stats = new BlockStats(L);
    for (let i = j - 1; i >= 0 && j - i <= 255; i--) {
      stats.add(addrs[i]!);
      const cost = best[i]! + stats.cost();
      if (cost < best[j]!) {
        best[j] = cost;
        from[j] = i;
      }
    }
  }
  const bounds = [n];
  for (let j = n; j > 0; j = from[j]!) bounds.push(from[j]!);
  return bounds.reverse();
}

function encodeBlocks(addrs: Address[], L: number, bounds: number[]): Uint8Array {
  const w = new ByteWriter();
  for (let k = 0; k + 1 < bounds.length; k++) {
    const block = addrs.slice(bounds[k], bounds[k + 1]);
    writeAddressBlock(w, block, L);
    const at = w.length;
    w.u16(0);
    for (const t of scheduleAddressTlvs(block)) writeTlv(w, t);
    const length = w.length - at - 2;
    check(length <= MAX_U16, `address TLV block of ${length} bytes is over 65535`);
    w.setU16(at, length);
  }
  return w.result();
}

function writeAddressBlock(w: ByteWriter, block: Address[], L: number): void {
  const stats = new BlockStats(L);
  for (const a of block) stats.add(a);
  const { head, tail, zero } = stats.layout();
  const first = block[0]!.address;
  let flags = 0;
  if (head > 0) flags |= ADDR_HAS_HEAD;
  if (tail > 0) flags |= zero ? ADDR_HAS_ZERO_TAIL : ADDR_HAS_FULL_TAIL;
  if (!stats.allFull) flags |= stats.allSamePrefix ? ADDR_HAS_SINGLE_PRELEN : ADDR_HAS_MULTI_PRELEN;
  w.u8(block.length);
  w.u8(flags);
  if (head > 0) {
    w.u8(head);
    w.bytes(first.subarray(0, head));
  }
  if (tail > 0) {
    w.u8(tail);
    if (!zero) w.bytes(first.subarray(L - tail));
  }
  for (const a of block) w.bytes(a.address.subarray(head, L - tail));
  if (flags & ADDR_HAS_SINGLE_PRELEN) w.u8(block[0]!.prefixLength);
  else if (flags & ADDR_HAS_MULTI_PRELEN) for (const a of block) w.u8(a.prefixLength);
}

// ---- address TLVs ---------------------------------------------------------------------------

function sameKey(a: Tlv, b: Tlv): boolean {
  return a.type === b.type && a.extType === b.extType;
}

function sameValue(a: Uint8Array | null, b: Uint8Array | null): boolean {
  if (a === null || b === null) return a === b;
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * Wire TLVs that give every address of the block exactly its TLV list, in order: each wire TLV
 * covers only addresses whose next pending TLV it is.
 */
function scheduleAddressTlvs(block: Address[]): WireTlv[] {
  const n = block.length;
  const next = new Array<number>(n).fill(0);
  const pending = (i: number): Tlv | undefined => block[i]!.tlvs[next[i]!];
  /** Whether address i holds a TLV of t's type later than its next one. */
  const holdsLater = (i: number, t: Tlv): boolean => {
    if (i < 0 || i >= n) return false;
    const tlvs = block[i]!.tlvs;
    for (let k = next[i]! + 1; k < tlvs.length; k++) if (sameKey(tlvs[k]!, t)) return true;
    return false;
  };
  const out: WireTlv[] = [];
  for (;;) {
    let best: { start: number; stop: number; blocked: boolean } | undefined;
    for (let i = 0; i < n; ) {
      const t = pending(i);
      if (t === undefined) {
        i++;
        continue;
      }
      let j = i + 1;
      while (j < n) {
        const u = pending(j);
        if (u === undefined || !sameKey(u, t)) break;
        j++;
      }
      const run = { start: i, stop: j - 1, blocked: holdsLater(i - 1, t) || holdsLater(j, t) };
      if (
        best === undefined ||
        (best.blocked && !run.blocked) ||
        (best.blocked === run.blocked && run.stop - run.start > best.stop - best.start)
      ) {
        best = run;
      }
      i = j;
    }
    if (best === undefined) return out;
    const values: Array<Uint8Array | null> = [];
    for (let i = best.start; i <= best.stop; i++) values.push(pending(i)!.value);
    const t = pending(best.start)!;
    for (const seg of segmentRun(values, best.start, n, t.extType !== 0)) {
      const multivalue = seg.kind === 'multi';
      const value = multivalue ? concat(values.slice(seg.start - best.start, seg.stop - best.start + 1) as Uint8Array[]) : values[seg.start - best.start]!;
      out.push({ type: t.type, extType: t.extType, value, index: indexOf(seg.start, seg.stop, n, multivalue), multivalue });
    }
    for (let i = best.start; i <= best.stop; i++) next[i]!++;
  }
}

function indexOf(start: number, stop: number, n: number, multivalue: boolean): WireTlv['index'] {
  if (!multivalue && start === 0 && stop === n - 1) return null;
  if (!multivalue && start === stop) return { start, stop, single: true };
  return { start, stop, single: false };
}

/** Bytes of a wire TLV over block indices start..stop of n (the same choices as indexOf). */
function wireCost(start: number, stop: number, n: number, ext: boolean, valueLength: number | null, multivalue: boolean): number {
  const indexBytes = multivalue ? 2 : start === 0 && stop === n - 1 ? 0 : start === stop ? 1 : 2;
  const valueBytes = valueLength === null ? 0 : (valueLength > 0xff ? 2 : 1) + valueLength;
  return 2 + (ext ? 1 : 0) + indexBytes + valueBytes;
}

interface Segment {
  start: number;
  stop: number;
  kind: 'single' | 'multi';
}

/**
 * Splits a run of addresses (block indices `offset`..) carrying one TLV type into the fewest bytes
 * of wire TLVs: segments of equal values (one value) or of values of one length (multivalue).
 * Dynamic programming over the run, O(run²).
 */
function segmentRun(values: Array<Uint8Array | null>, offset: number, n: number, ext: boolean): Segment[] {
  const r = values.length;
  const equalNext: boolean[] = [];
  for (let i = 0; i + 1 < r; i++) equalNext.push(sameValue(values[i]!, values[i + 1]!));
  // All equal (the common case): one TLV, and no cheaper split exists.
  if (equalNext.every(Boolean)) return [{ start: offset, stop: offset + r - 1, kind: 'single' }];
  const best = new Array<number>(r + 1).fill(Infinity);
  const choice = new Array<Segment | undefined>(r + 1);
  best[0] = 0;
  for (let a = 0; a < r; a++) {
    const va = values[a]!;
    let allEqual = true;
    for (let b = a; b < r; b++) {
      if (b > a && !equalNext[b - 1]) allEqual = false;
      const vb = values[b]!;
      const sameLength = va !== null && vb !== null && va.length === vb.length;
      if (!allEqual && !sameLength) break;
      let cost: number;
      let kind: Segment['kind'];
      if (allEqual) {
        cost = wireCost(offset + a, offset + b, n, ext, va === null ? null : va.length, false);
        kind = 'single';
      } else {
        const total = va!.length * (b - a + 1);
        if (total > MAX_U16) break;
        cost = wireCost(offset + a, offset + b, n, ext, total, true);
        kind = 'multi';
      }
      if (best[a]! + cost < best[b + 1]!) {
        best[b + 1] = best[a]! + cost;
        choice[b + 1] = { start: offset + a, stop: offset + b, kind };
      }
    }
  }
  const segments: Segment[] = [];
  for (let end = r; end > 0; ) {
    const seg = choice[end]!;
    segments.push(seg);
    end = seg.start - offset;
  }
  return segments.reverse();
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}
