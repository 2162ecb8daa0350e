/**
 * RFC 5444 decoder: bytes → the model of model.ts, or a typed error (reason, byte offset). It never
 * throws on input and does work linear in the input, with at most MAX_DECODED_ITEMS addresses
 * plus expanded address TLVs per packet.
 *
 * What comes back: addresses are fresh arrays (they are assembled from head, mid and tail);
 * originators and TLV values are views into `bytes` (copy them to keep them beyond the input's
 * life). Address TLVs over an index range are expanded onto every address they cover, in the
 * order the TLVs appear; a multivalue TLV gives each address its own slice.
 *
 * Error reasons (offset = the first byte of the field named):
 * - 'truncated': the input ends inside the packet header, the packet TLV block, or a message
 *   (offset: the field that does not fit, for a message its <msg-size>, for a TLV block its
 *   <tlvs-length>).
 * - 'overrun': an element runs past the end of what contains it: a TLV past its TLV block's
 *   <tlvs-length>, a TLV block or address block past its message's <msg-size>.
 * - 'bad-version': <version> is not 0.
 * - 'message-size': <msg-size> is smaller than the message header it announces.
 * - 'bad-tlv-flags': both index flags, or an index or multivalue flag on a packet or message TLV.
 * - 'index-out-of-range': index-start > index-stop, or an index ≥ <num-addr>.
 * - 'bad-multivalue-length': a multivalue <length> that the number of addresses does not divide.
 * - 'empty-address-block': <num-addr> is 0.
 * - 'bad-addr-flags': both tail flags, or both prefix-length flags.
 * - 'head-tail-too-long': <head-length> + <tail-length> exceeds the address length.
 * - 'bad-prefix-length': a prefix length over 8 × address length.
 * - 'too-many-items': more than MAX_DECODED_ITEMS addresses plus expanded address TLVs.
 *
 * Reserved flag bits are ignored, as RFC 5444 §5 asks of a receiver (they "SHOULD be ignored on
 * reception"); so are thasextlen and tismultivalue on a TLV without a value.
 */
import type { Address, Message, Packet, Rfc5444Error, Tlv } from './model.js';
import {
  ADDR_HAS_FULL_TAIL,
  ADDR_HAS_HEAD,
  ADDR_HAS_MULTI_PRELEN,
  ADDR_HAS_SINGLE_PRELEN,
  ADDR_HAS_ZERO_TAIL,
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

export type DecodeResult =
  | { ok: true; packet: Packet; messageSpans: Array<{ start: number; end: number }> }
  | { ok: false; error: Rfc5444Error };

/**
 * Cap on addresses plus expanded address TLVs in one packet. A 2-byte TLV may cover 255
 * addresses, so without a cap a 64 KiB packet could expand to millions of objects; legitimate
 * packets (a HELLO with hundreds of addresses and a few TLV types) stay far below it.
 */
export const MAX_DECODED_ITEMS = 65_536;

/** Thrown inside the decoder only; decodePacket turns it into { ok: false }. */
class Malformed {
  constructor(
    readonly reason: string,
    readonly offset: number,
  ) {}
}

function fail(reason: string, offset: number): never {
  throw new Malformed(reason, offset);
}

export function decodePacket(bytes: Uint8Array): DecodeResult {
  try {
    return new Decoder(bytes).packet();
  } catch (err) {
    if (err instanceof Malformed) return { ok: false, error: { reason: err.reason, offset: err.offset } };
    throw err;
  }
}

/** A region of the input that elements must stay inside: [.., end), and what to call crossing it. */
interface Bound {
  end: number;
  reason: 'truncated' | 'overrun';
}

class Decoder {
  private items = 0;
  private readonly input: Bound;

  constructor(private readonly b: Uint8Array) {
    this.input = { end: b.length, reason: 'truncated' };
  }

  packet(): DecodeResult {
    const b = this.b;
    this.need(0, 1, this.input, 0);
    const first = b[0]!;
    if (first >> 4 !== 0) fail('bad-version', 0);
    let pos = 1;
    let seqno: number | null = null;
    if (first & PKT_HAS_SEQNUM) {
      this.need(pos, 2, this.input, pos);
      seqno = this.u16(pos);
      pos += 2;
    }
    let tlvs: Tlv[] = [];
    if (first & PKT_HAS_TLV) {
      const block = this.tlvBlock(pos, this.input, null);
      tlvs = block.tlvs;
      pos = block.end;
    }
    const messages: Message[] = [];
    const messageSpans: Array<{ start: number; end: number }> = [];
    while (pos < b.length) {
      const end = this.message(pos, messages);
      messageSpans.push({ start: pos, end });
      pos = end;
    }
    return { ok: true, packet: { version: 0, seqno, tlvs, messages }, messageSpans };
  }

  /** Decodes the message at `start` into `out`; returns where it ends. */
  private message(start: number, out: Message[]): number {
    const b = this.b;
    this.need(start, 4, this.input, start);
    const type = b[start]!;
    const flags = b[start + 1]! & 0xf0;
    const addrLength = (b[start + 1]! & 0x0f) + 1;
    const size = this.u16(start + 2);
    if (size > b.length - start) fail('truncated', start + 2);
    const headerLength =
      4 +
      (flags & MSG_HAS_ORIG ? addrLength : 0) +
      (flags & MSG_HAS_HOP_LIMIT ? 1 : 0) +
      (flags & MSG_HAS_HOP_COUNT ? 1 : 0) +
      (flags & MSG_HAS_SEQNUM ? 2 : 0);
    if (size < headerLength) fail('message-size', start + 2);
    const msg: Bound = { end: start + size, reason: 'overrun' };
    let pos = start + 4;
    let originator: Uint8Array | null = null;
    if (flags & MSG_HAS_ORIG) {
      originator = b.subarray(pos, pos + addrLength);
      pos += addrLength;
    }
    const hopLimit = flags & MSG_HAS_HOP_LIMIT ? b[pos++]! : null;
    const hopCount = flags & MSG_HAS_HOP_COUNT ? b[pos++]! : null;
    let seqno: number | null = null;
    if (flags & MSG_HAS_SEQNUM) {
      seqno = this.u16(pos);
      pos += 2;
    }
    const block = this.tlvBlock(pos, msg, null);
    pos = block.end;
    const addresses: Address[] = [];
    while (pos < msg.end) pos = this.addressBlock(pos, msg, addrLength, addresses);
    out.push({ type, addrLength, originator, hopLimit, hopCount, seqno, tlvs: block.tlvs, addresses });
    return msg.end;
  }

  /** Decodes an address block and its TLV block, appending to `out`; returns where they end. */
  private addressBlock(start: number, bound: Bound, addrLength: number, out: Address[]): number {
    const b = this.b;
    this.need(start, 2, bound, start);
    const numAddr = b[start]!;
    const flags = b[start + 1]!;
    if (numAddr === 0) fail('empty-address-block', start);
    if (flags & ADDR_HAS_FULL_TAIL && flags & ADDR_HAS_ZERO_TAIL) fail('bad-addr-flags', start + 1);
    if (flags & ADDR_HAS_SINGLE_PRELEN && flags & ADDR_HAS_MULTI_PRELEN) fail('bad-addr-flags', start + 1);
    let pos = start + 2;
    let head = b.subarray(0, 0);
    if (flags & ADDR_HAS_HEAD) {
      this.need(pos, 1, bound, pos);
      const headLength = b[pos]!;
      if (headLength > addrLength) fail('head-tail-too-long', pos);
      this.need(pos + 1, headLength, bound, pos);
      head = b.subarray(pos + 1, pos + 1 + headLength);
      pos += 1 + headLength;
    }
    let tailLength = 0;
    let tail: Uint8Array | null = null; // null: a zero tail (or none)
    if (flags & (ADDR_HAS_FULL_TAIL | ADDR_HAS_ZERO_TAIL)) {
      this.need(pos, 1, bound, pos);
      tailLength = b[pos]!;
      if (head.length + tailLength > addrLength) fail('head-tail-too-long', pos);
      if (flags & ADDR_HAS_FULL_TAIL) {
        this.need(pos + 1, tailLength, bound, pos);
        tail = b.subarray(pos + 1, pos + 1 + tailLength);
        pos += 1 + tailLength;
      } else {
        pos += 1;
      }
    }
    const midLength = addrLength - head.length - tailLength;
    this.need(pos, numAddr * midLength, bound, pos);
    const midStart = pos;
    pos += numAddr * midLength;
    const maxPrefix = 8 * addrLength;
    let prefixes: Uint8Array | null = null;
    if (flags & (ADDR_HAS_SINGLE_PRELEN | ADDR_HAS_MULTI_PRELEN)) {
      const count = flags & ADDR_HAS_SINGLE_PRELEN ? 1 : numAddr;
      this.need(pos, count, bound, pos);
      prefixes = b.subarray(pos, pos + count);
      for (let i = 0; i < count; i++) if (prefixes[i]! > maxPrefix) fail('bad-prefix-length', pos + i);
      pos += count;
    }
    this.spend(numAddr, start);
    const block: Address[] = [];
    for (let i = 0; i < numAddr; i++) {
      const address = new Uint8Array(addrLength);
      address.set(head, 0);
      address.set(b.subarray(midStart + i * midLength, midStart + (i + 1) * midLength), head.length);
      if (tail !== null) address.set(tail, addrLength - tailLength);
      const prefixLength = prefixes === null ? maxPrefix : prefixes.length === 1 ? prefixes[0]! : prefixes[i]!;
      block.push({ address, prefixLength, tlvs: [] });
    }
    const tlvBlock = this.tlvBlock(pos, bound, block);
    for (const a of block) out.push(a);
    return tlvBlock.end;
  }

  /**
   * Decodes the TLV block at `start`. With `addresses` (an address block's TLVs) the TLVs are
   * expanded onto the addresses and the returned list is empty; without, they are returned.
   */
  private tlvBlock(start: number, bound: Bound, addresses: Address[] | null): { tlvs: Tlv[]; end: number } {
    this.need(start, 2, bound, start);
    const end = start + 2 + this.u16(start);
    if (end > bound.end) fail(bound.reason, start);
    const block: Bound = { end, reason: 'overrun' };
    const tlvs: Tlv[] = [];
    let pos = start + 2;
    while (pos < end) pos = this.tlv(pos, block, addresses, tlvs);
    return { tlvs, end };
  }

  /** Decodes one TLV; returns where it ends. */
  private tlv(start: number, bound: Bound, addresses: Address[] | null, out: Tlv[]): number {
    const b = this.b;
    this.need(start, 2, bound, start);
    const type = b[start]!;
    const flags = b[start + 1]!;
    const indexed = flags & (TLV_HAS_SINGLE_INDEX | TLV_HAS_MULTI_INDEX);
    if (indexed === (TLV_HAS_SINGLE_INDEX | TLV_HAS_MULTI_INDEX)) fail('bad-tlv-flags', start + 1);
    if (addresses === null && (indexed || flags & TLV_IS_MULTIVALUE)) fail('bad-tlv-flags', start + 1);
    let pos = start + 2;
    let extType = 0;
    if (flags & TLV_HAS_TYPE_EXT) {
      this.need(pos, 1, bound, pos);
      extType = b[pos++]!;
    }
    const numAddr = addresses?.length ?? 0;
    let first = 0;
    let last = numAddr - 1;
    if (flags & TLV_HAS_SINGLE_INDEX) {
      this.need(pos, 1, bound, pos);
      first = last = b[pos]!;
      if (first >= numAddr) fail('index-out-of-range', pos);
      pos += 1;
    } else if (flags & TLV_HAS_MULTI_INDEX) {
      this.need(pos, 2, bound, pos);
      first = b[pos]!;
      last = b[pos + 1]!;
      if (first > last || last >= numAddr) fail('index-out-of-range', pos);
      pos += 2;
    }
    let value: Uint8Array | null = null;
    let valueStart = pos;
    let multivalue = false;
    if (flags & TLV_HAS_VALUE) {
      const lengthAt = pos;
      const wide = (flags & TLV_HAS_EXT_LEN) !== 0;
      this.need(pos, wide ? 2 : 1, bound, pos);
      const length = wide ? this.u16(pos) : b[pos]!;
      pos += wide ? 2 : 1;
      this.need(pos, length, bound, lengthAt);
      valueStart = pos;
      value = b.subarray(pos, pos + length);
      pos += length;
      multivalue = addresses !== null && (flags & TLV_IS_MULTIVALUE) !== 0;
      if (multivalue && length % (last - first + 1) !== 0) fail('bad-multivalue-length', lengthAt);
    }
    if (addresses === null) {
      out.push({ type, extType, value });
      return pos;
    }
    const count = last - first + 1;
    this.spend(count, start);
    const width = value === null ? 0 : multivalue ? value.length / count : value.length;
    for (let i = first; i <= last; i++) {
      const offset = multivalue ? valueStart + (i - first) * width : valueStart;
      addresses[i]!.tlvs.push({ type, extType, value: value === null ? null : b.subarray(offset, offset + width) });
    }
    return pos;
  }

  /** Fails unless `length` bytes from `pos` stay inside `bound`; the error points at `at`. */
  private need(pos: number, length: number, bound: Bound, at: number): void {
    if (pos + length > bound.end) fail(bound.reason, at);
  }

  private spend(count: number, at: number): void {
    this.items += count;
    if (this.items > MAX_DECODED_ITEMS) fail('too-many-items', at);
  }

  private u16(pos: number): number {
    return (this.b[pos]! << 8) | this.b[pos + 1]!;
  }
}
