/**
 * The RFC 5444 wire codec: hand-built bytes for every feature (both directions), typed errors
 * with offsets, truncation at every position, and properties: model → encode → decode is the
 * identity; random and mutated bytes never make the decoder throw.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import type { Address, Message, Packet, Tlv } from '../src/rfc5444/model.js';
import {
  decodePacket,
  encodeMessage,
  encodePacket,
  encodePacketHead,
  encodeTlvBlock,
  MAX_DECODED_ITEMS,
  Rfc5444EncodeError,
} from '../src/rfc5444/wire.js';
import { packetToJson } from '../src/rfc5444/json.js';

const bytes = (h: string): Uint8Array => Uint8Array.from(Buffer.from(h.replace(/\s+/g, ''), 'hex'));
const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const clean = (h: string): string => h.replace(/\s+/g, '');

const tlv = (type: number, value: string | null, extType = 0): Tlv => ({ type, extType, value: value === null ? null : bytes(value) });
const addr = (h: string, tlvs: Tlv[] = [], prefixLength?: number): Address => ({
  address: bytes(h),
  prefixLength: prefixLength ?? 4 * clean(h).length,
  tlvs,
});
const msg = (addresses: Address[], extra: Partial<Message> = {}): Message => ({
  type: 1,
  addrLength: addresses[0] ? addresses[0].address.length : 4,
  originator: null,
  hopLimit: null,
  hopCount: null,
  seqno: null,
  tlvs: [],
  addresses,
  ...extra,
});
const pkt = (messages: Message[], extra: Partial<Packet> = {}): Packet => ({ version: 0, seqno: null, tlvs: [], messages, ...extra });

/** Encodes a message with no header fields and no message TLVs; returns what follows them. */
function addressPart(addresses: Address[]): string {
  const m = encodeMessage(msg(addresses));
  expect((m[2]! << 8) | m[3]!).toBe(m.length);
  expect(hex(m.subarray(0, 2))).toBe('01' + (m[1]! & 0x0f).toString(16).padStart(2, '0'));
  expect(hex(m.subarray(4, 6))).toBe('0000');
  // And it decodes back to the same addresses.
  const back = decodePacket(encodePacket(pkt([msg(addresses)])));
  expect(back.ok && packetToJson(back.packet)).toEqual(packetToJson(pkt([msg(addresses)])));
  return hex(m.subarray(6));
}

function decodeOk(h: string): Packet {
  const r = decodePacket(bytes(h));
  if (!r.ok) throw new Error(`expected ok, got ${r.error.reason} at ${r.error.offset}`);
  return r.packet;
}

function decodeErr(h: string | Uint8Array): { reason: string; offset: number } {
  const r = decodePacket(typeof h === 'string' ? bytes(h) : h);
  if (r.ok) throw new Error('expected an error');
  return r.error;
}

describe('packet header', () => {
  it('version/flags byte, seqno, packet TLV block only when there are TLVs', () => {
    expect(hex(encodePacket(pkt([])))).toBe('00');
    expect(hex(encodePacket(pkt([], { seqno: 0x1234 })))).toBe('081234');
    expect(hex(encodePacket(pkt([], { tlvs: [tlv(1, null)] })))).toBe('0400020100');
    expect(hex(encodePacket(pkt([], { seqno: 0x1234, tlvs: [tlv(1, null)] })))).toBe('0c123400020100');
    expect(hex(encodePacketHead(7, []))).toBe('080007');
    expect(decodeOk('0c123400020100')).toEqual(pkt([], { seqno: 0x1234, tlvs: [{ type: 1, extType: 0, value: null }] }));
  });

  it('an empty packet TLV block and reserved flag bits decode (reserved bits are ignored)', () => {
    expect(decodeOk('040000')).toEqual(pkt([]));
    expect(decodeOk('03')).toEqual(pkt([]));
  });
});

describe('message header', () => {
  it('every header field: originator, hop limit, hop count, seqno; MAL is length − 1', () => {
    const m = msg([], { type: 2, addrLength: 4, originator: bytes('0a000001'), hopLimit: 255, hopCount: 1, seqno: 12345 });
    expect(hex(encodeMessage(m))).toBe(clean('02 f3 000e 0a000001 ff 01 3039 0000'));
    const only = (extra: Partial<Message>) => hex(encodeMessage(msg([], { addrLength: 16, ...extra })));
    expect(only({})).toBe('010f00060000');
    expect(only({ hopLimit: 3 })).toBe('014f0007030000');
    expect(only({ hopCount: 3 })).toBe('012f0007030000');
    expect(only({ seqno: 0xabcd })).toBe('011f0008abcd0000');
    expect(decodeOk('00' + clean('02 f3 000e 0a000001 ff 01 3039 0000')).messages).toEqual([
      { type: 2, addrLength: 4, originator: bytes('0a000001'), hopLimit: 255, hopCount: 1, seqno: 12345, tlvs: [], addresses: [] },
    ]);
  });
});

describe('TLVs', () => {
  it('no value, empty value, value, type extension, extended length', () => {
    expect(hex(encodeTlvBlock([]))).toBe('0000');
    expect(hex(encodeTlvBlock([tlv(1, null)]))).toBe('00020100');
    expect(hex(encodeTlvBlock([tlv(2, '')]))).toBe('0003021000');
    expect(hex(encodeTlvBlock([tlv(2, '0102', 100)]))).toBe(clean('0006 02 90 64 02 0102'));
    const long = '5a'.repeat(300);
    expect(hex(encodeTlvBlock([tlv(7, long)]))).toBe(clean('0130 07 18 012c') + long);
    expect(hex(encodeTlvBlock([tlv(7, '5a'.repeat(255))]))).toBe(clean('0102 07 10 ff') + '5a'.repeat(255));
    // Message TLVs decode with their values; an explicit type extension 0 equals none.
    const m = decodeOk('00' + clean('01 03 0012 000c 02 10 00 02 90 64 02 0102 03 80 00')).messages[0]!;
    expect(m.tlvs).toEqual([tlv(2, ''), tlv(2, '0102', 100), tlv(3, null)]);
    // thasextlen with a short length is still a 16-bit length.
    expect(decodeOk('00' + clean('01 03 000b 0005 07 18 0001 ff')).messages[0]!.tlvs).toEqual([tlv(7, 'ff')]);
  });
});

describe('address blocks', () => {
  it('head compression', () => {
    expect(addressPart([addr('0a000001'), addr('0a000002'), addr('0a000003')])).toBe(clean('03 80 03 0a0000 01 02 03 0000'));
  });

  it('head and full tail', () => {
    expect(addressPart([addr('0a010001'), addr('0a020001'), addr('0a030001')])).toBe(clean('03 c0 01 0a 02 0001 01 02 03 0000'));
  });

  it('full tail only', () => {
    expect(addressPart([addr('01000009'), addr('02000009'), addr('03000009')])).toBe(clean('03 40 03 000009 01 02 03 0000'));
  });

  it('zero tail, with and without a head', () => {
    expect(addressPart([addr('0a000000'), addr('0b000000')])).toBe(clean('02 20 03 0a 0b 0000'));
    expect(addressPart([addr('0a010000'), addr('0a020000'), addr('0a030000')])).toBe(clean('03 a0 01 0a 02 01 02 03 0000'));
    expect(addressPart([addr('0a000000')])).toBe(clean('01 20 03 0a 0000'));
  });

  it('no compression where it does not pay; a single address', () => {
    expect(addressPart([addr('0a000001')])).toBe(clean('01 00 0a000001 0000'));
    expect(addressPart([addr('01020304'), addr('05060708')])).toBe(clean('02 00 01020304 05060708 0000'));
  });

  it('IPv6 with a 15-byte head; 1-byte addresses', () => {
    expect(addressPart([addr('fe80' + '00'.repeat(13) + '01'), addr('fe80' + '00'.repeat(13) + '02')])).toBe(
      clean('02 80 0f fe80' + '00'.repeat(13) + '01 02 0000'),
    );
    expect(addressPart([addr('01'), addr('02')])).toBe(clean('02 00 01 02 0000'));
  });

  it('identical addresses keep one mid byte', () => {
    // A 3-byte tail and a 3-byte head cost the same; the tail is tried first.
    expect(addressPart([addr('0a000001'), addr('0a000001')])).toBe(clean('02 40 03 000001 0a 0a 0000'));
  });

  it('prefix lengths: none when full, one when equal, else one per address', () => {
    expect(addressPart([addr('0a000000', [], 8), addr('0b000000', [], 8)])).toBe(clean('02 30 03 0a 0b 08 0000'));
    expect(addressPart([addr('0a000000', [], 8), addr('0b000000', [], 16)])).toBe(clean('02 28 03 0a 0b 08 10 0000'));
    expect(addressPart([addr('0a000000', [], 0)])).toBe(clean('01 30 03 0a 00 0000'));
  });

  it('splits into blocks only when that is smaller', () => {
    // interop2010_21's addresses: two blocks (12 + 7 bytes) beat one (20).
    expect(addressPart([addr('0a000002'), addr('0a010102'), addr('0a000000'), addr('0b000000')])).toBe(
      clean('02 00 0a000002 0a010102 0000  02 20 03 0a 0b 0000'),
    );
    // The same addresses with one TLV each: splitting would need the TLV twice, so one block.
    const t = [tlv(9, '0102030405060708')];
    expect(addressPart([addr('0a000002', t), addr('0a010102', t), addr('0a000000', t), addr('0b000000', t)])).toBe(
      clean('04 00 0a000002 0a010102 0a000000 0b000000 000b 09 10 08 0102030405060708'),
    );
  });

  it('more than 255 addresses go in several blocks', () => {
    const many = Array.from({ length: 600 }, (_, i) => addr('0a00' + (i >> 8).toString(16).padStart(2, '0') + (i & 0xff).toString(16).padStart(2, '0')));
    const body = bytes(addressPart(many));
    expect(body.length).toBeLessThan(600 * 2);
  });

  it('decodes what the encoder does not write: mid of length 0, explicit head length 0', () => {
    // head 3 + full tail 1 = the whole address: both addresses are 0a000001.
    const m = decodeOk('00' + clean('01 03 0010 0000 02 c0 03 0a0000 01 01 0000')).messages[0]!;
    expect(m.addresses.map((a) => hex(a.address))).toEqual(['0a000001', '0a000001']);
    const n = decodeOk('00' + clean('01 03 000f 0000 01 80 00 0a000001 0000')).messages[0]!;
    expect(n.addresses.map((a) => hex(a.address))).toEqual(['0a000001']);
  });
});

describe('address TLVs', () => {
  const three = (tlvs: Array<Tlv[]>) => [addr('0a000001', tlvs[0]), addr('0a000002', tlvs[1]), addr('0a000003', tlvs[2])];
  const block = '03 80 03 0a0000 01 02 03';

  it('one TLV over all addresses: no index', () => {
    const t = tlv(5, '01');
    expect(addressPart(three([[t], [t], [t]]))).toBe(clean(`${block} 0004 05 10 01 01`));
    expect(addressPart(three([[tlv(5, null, 9)], [tlv(5, null, 9)], [tlv(5, null, 9)]]))).toBe(clean(`${block} 0003 05 80 09`));
  });

  it('single index for one address, index range for several', () => {
    const t = tlv(5, '01');
    expect(addressPart(three([[], [t], []]))).toBe(clean(`${block} 0005 05 50 01 01 01`));
    expect(addressPart(three([[t], [t], []]))).toBe(clean(`${block} 0006 05 30 00 01 01 01`));
  });

  it('multivalue when equal-length values differ', () => {
    expect(addressPart(three([[tlv(5, '01')], [tlv(5, '02')], [tlv(5, '03')]]))).toBe(clean(`${block} 0008 05 34 00 02 03 010203`));
    expect(addressPart(three([[tlv(5, '01')], [tlv(5, '01')], [tlv(5, '02')]]))).toBe(clean(`${block} 0008 05 34 00 02 03 010102`));
  });

  it('single values over ranges when that is smaller than a multivalue', () => {
    const a = tlv(5, 'aaaaaaaa');
    const b = tlv(5, 'bbbbbbbb');
    const four = [addr('0a000001', [a]), addr('0a000002', [a]), addr('0a000003', [a]), addr('0a000004', [b])];
    expect(addressPart(four)).toBe(clean('04 80 03 0a0000 01 02 03 04 0011 05 30 00 02 04 aaaaaaaa 05 50 03 04 bbbbbbbb'));
  });

  it('values of different lengths: separate TLVs', () => {
    expect(addressPart(three([[tlv(5, '01')], [tlv(5, '0102')], [tlv(5, null)]]))).toBe(
      clean(`${block} 000e 05 50 00 01 01  05 50 01 02 0102  05 40 02`),
    );
  });

  it('keeps each address its own TLV order', () => {
    const p = pkt([msg(three([[tlv(1, '01'), tlv(2, '02')], [tlv(2, '02'), tlv(1, '01')], [tlv(1, '01'), tlv(1, '01')]]))]);
    const back = decodePacket(encodePacket(p));
    expect(back.ok && packetToJson(back.packet)).toEqual(packetToJson(p));
  });

  it('decodes multivalue without index or with a single index, and single values over ranges', () => {
    const m = decodeOk('00' + clean('01 03 001a 0000 02 80 03 0a0000 01 02 000a 05 14 02 0102 06 54 01 01 07')).messages[0]!;
    expect(m.addresses.map((a) => a.tlvs)).toEqual([[tlv(5, '01')], [tlv(5, '02'), tlv(6, '07')]]);
    // A value over a range: each address gets it.
    const r = decodeOk('00' + clean('01 03 0016 0000 02 80 03 0a0000 01 02 0006 05 30 00 01 01 09')).messages[0]!;
    expect(r.addresses.map((a) => a.tlvs)).toEqual([[tlv(5, '09')], [tlv(5, '09')]]);
  });
});

describe('encoder refuses what RFC 5444 cannot carry', () => {
  it('throws Rfc5444EncodeError (a RangeError)', () => {
    const bad: Array<() => unknown> = [
      () => encodeMessage(msg([], { addrLength: 0 })),
      () => encodeMessage(msg([], { addrLength: 17 })),
      () => encodeMessage(msg([addr('0a0000')], { addrLength: 4 })),
      () => encodeMessage(msg([], { originator: bytes('0a00') })),
      () => encodeMessage(msg([addr('0a000000', [], 33)])),
      () => encodeMessage(msg([], { hopLimit: 256 })),
      () => encodeMessage(msg([], { seqno: 65536 })),
      () => encodeMessage(msg([], { type: -1 })),
      () => encodeTlvBlock([tlv(256, null)]),
      () => encodeTlvBlock([{ type: 1, extType: 0, value: new Uint8Array(65536) }]),
      () => encodeMessage(msg([], { tlvs: [tlv(1, '00'.repeat(40000)), tlv(2, '00'.repeat(40000))] })),
      () => encodePacket({ ...pkt([]), version: 1 as 0 }),
      () => encodePacketHead(1.5, []),
    ];
    for (const f of bad) {
      expect(f).toThrow(Rfc5444EncodeError);
      expect(f).toThrow(RangeError);
    }
  });
});

describe('malformed input: typed errors with offsets', () => {
  const cases: Array<[string, string, number, string]> = [
    ['', 'truncated', 0, 'empty input'],
    ['10', 'bad-version', 0, 'version 1'],
    ['08 00', 'truncated', 1, 'packet seqno cut'],
    ['04 00', 'truncated', 1, 'packet TLV block length cut'],
    ['04 0005 0100', 'truncated', 1, 'packet TLV block longer than the packet'],
    ['00 01 03 00', 'truncated', 1, 'message header cut'],
    ['00 01 03 0010 0000', 'truncated', 3, 'message longer than the packet'],
    ['00 01 f3 0008 0a000001', 'message-size', 3, 'size smaller than the header'],
    ['00 01 03 0009 0003 01 40 00', 'bad-tlv-flags', 8, 'index on a message TLV'],
    ['00 01 03 0009 0003 01 14 00', 'bad-tlv-flags', 8, 'multivalue on a message TLV'],
    ['04 0003 01 60 00', 'bad-tlv-flags', 4, 'both index flags on a packet TLV'],
    ['00 01 03 0009 0003 01 10 05', 'overrun', 9, 'TLV value past its TLV block'],
    ['00 01 03 0008 0005 0100', 'overrun', 5, 'TLV block past its message'],
    ['00 01 03 000a 0000 00 00 0000', 'empty-address-block', 7, 'num-addr 0'],
    ['00 01 03 000a 0000 01 60 0000', 'bad-addr-flags', 8, 'full and zero tail'],
    ['00 01 03 000a 0000 01 18 0000', 'bad-addr-flags', 8, 'single and multi prefix length'],
    ['00 01 03 0009 0000 01 80 05', 'head-tail-too-long', 9, 'head longer than the address'],
    ['00 01 03 000c 0000 01 c0 02 0a00 03', 'head-tail-too-long', 12, 'head + tail longer than the address'],
    ['00 01 03 000d 0000 01 10 0a000001 21', 'bad-prefix-length', 13, 'prefix 33 of 32'],
    ['00 01 03 0015 0000 02 00 0a000001 0a000002 0003 05 40 02', 'index-out-of-range', 21, 'single index 2 of 2'],
    ['00 01 03 0016 0000 02 00 0a000001 0a000002 0004 05 20 01 00', 'index-out-of-range', 21, 'start > stop'],
    ['00 01 03 0016 0000 02 00 0a000001 0a000002 0004 05 20 00 02', 'index-out-of-range', 21, 'stop past the block'],
    ['00 01 03 001a 0000 02 00 0a000001 0a000002 0008 05 34 00 01 03 010203', 'bad-multivalue-length', 23, '3 bytes over 2 addresses'],
    ['00 01 03 000e 0000 02 00 0a000001 0a00', 'overrun', 9, 'mids past the message'],
  ];
  for (const [input, reason, offset, what] of cases) {
    it(`${what}: ${reason} at ${offset}`, () => {
      expect(decodeErr(input)).toEqual({ reason, offset });
    });
  }

  it('too many expanded items: a block of 255 addresses and 257 TLVs over all of them', () => {
    const u16 = (n: number) => n.toString(16).padStart(4, '0');
    const packet = (count: number) => {
      const size = 4 + 2 + 2 + 255 + 2 + 2 * count;
      return bytes('00 0100' + u16(size) + '0000 ff00' + '77'.repeat(255) + u16(2 * count) + '0100'.repeat(count));
    };
    expect(decodeErr(packet(257))).toEqual({ reason: 'too-many-items', offset: 266 + 256 * 2 });
    // One TLV fewer stays within MAX_DECODED_ITEMS and decodes.
    expect(255 + 256 * 255).toBeLessThanOrEqual(MAX_DECODED_ITEMS);
    const ok = decodePacket(packet(256));
    expect(ok.ok && ok.packet.messages[0]!.addresses[254]!.tlvs.length).toBe(256);
  });

  it('the worst case a 64 KiB packet can pack is refused, not expanded', () => {
    // One message of 65535 bytes: 255 one-byte addresses, then 2-byte TLVs that each cover all.
    const n = (65535 - 4 - 2 - 257 - 2) >> 1;
    const tlvBlock = (n * 2).toString(16).padStart(4, '0') + '0100'.repeat(n);
    const size = 4 + 2 + 257 + tlvBlock.length / 2;
    const p = '00' + '0100' + size.toString(16).padStart(4, '0') + '0000' + 'ff00' + '77'.repeat(255) + tlvBlock;
    expect(decodeErr(p).reason).toBe('too-many-items');
  });
});

// ---- a rich packet, truncated at every position ---------------------------------------------

const rich: Packet = pkt(
  [
    msg([], { type: 1, addrLength: 4, tlvs: [tlv(1, null)] }),
    msg(
      [
        addr('0a000001', [tlv(2, '01'), tlv(3, '0001')], 24),
        addr('0a000002', [tlv(2, '02'), tlv(3, '0001')], 24),
        addr('0a000103', [tlv(2, '02')], 24),
        addr('c0a80000', [tlv(9, null, 4)], 16),
      ],
      { type: 2, originator: bytes('0a000001'), hopLimit: 255, hopCount: 1, seqno: 12345, tlvs: [tlv(7, '5a'.repeat(300), 1)] },
    ),
    msg([addr('fe80' + '00'.repeat(13) + '01', [tlv(1, '')]), addr('fe80' + '00'.repeat(13) + '02')], { type: 3, addrLength: 16, hopLimit: 1 }),
  ],
  { seqno: 7, tlvs: [tlv(1, null), tlv(2, '0102', 3)] },
);

describe('truncation at every position', () => {
  it('each cut is a typed error at the field that does not fit, or a whole shorter packet', () => {
    const full = encodePacket(rich);
    const decoded = decodePacket(full);
    expect(decoded.ok).toBe(true);
    if (!decoded.ok) return;
    expect(packetToJson(decoded.packet)).toEqual(packetToJson(rich));
    const spans = decoded.messageSpans;
    const headEnd = spans[0]!.start;
    let errors = 0;
    for (let k = 0; k < full.length; k++) {
      const r = decodePacket(full.subarray(0, k));
      const whole = spans.findIndex((s) => s.end === k);
      if (k === headEnd || whole >= 0) {
        expect(r.ok, `cut at ${k}`).toBe(true);
        if (r.ok) expect(r.packet.messages.length).toBe(whole + 1);
        continue;
      }
      errors++;
      let offset: number;
      if (k < headEnd) offset = k < 1 ? 0 : k < 3 ? 1 : 3;
      else {
        const s = spans.find((x) => x.start < k && k < x.end)!;
        offset = k - s.start >= 4 ? s.start + 2 : s.start;
      }
      expect(r.ok ? null : r.error, `cut at ${k}`).toEqual({ reason: 'truncated', offset });
    }
    expect(errors).toBe(full.length - 3);
  });
});

// ---- properties -------------------------------------------------------------------------------

const VALUES = ['', '01', '02', '0102', 'ffff', '00000001', 'aa'.repeat(260)];
const tlvArb: fc.Arbitrary<Tlv> = fc.record({
  type: fc.constantFrom(1, 2, 3, 200),
  extType: fc.constantFrom(0, 0, 9),
  value: fc.oneof(fc.constant(null), fc.constantFrom(...VALUES).map(bytes)),
});

function addressesArb(L: number): fc.Arbitrary<Address[]> {
  const full = 8 * L;
  const prefixes = [full, Math.min(8, full), 0, Math.min(24, full)];
  const spec = fc.record({
    base: fc.nat(2),
    edits: fc.array(fc.tuple(fc.nat(L - 1), fc.constantFrom(0, 1, 2, 0xff)), { maxLength: 2 }),
    zeroTail: fc.constantFrom(0, 0, 0, 1, 2, L),
    prefix: fc.nat(3),
    tlvs: fc.array(tlvArb, { maxLength: 3 }),
    metric: fc.constantFrom('01', '02', '0a'),
  });
  return fc
    .tuple(
      fc.array(fc.uint8Array({ minLength: L, maxLength: L }), { minLength: 1, maxLength: 3 }),
      fc.constantFrom('full', 'same', 'mixed'),
      fc.boolean(),
      fc.array(spec, { maxLength: 24 }),
    )
    .map(([bases, prefixMode, template, specs]) =>
      specs.map((s) => {
        const address = bases[s.base % bases.length]!.slice();
        for (const [i, v] of s.edits) address[i] = v;
        address.fill(0, L - Math.min(s.zeroTail, L));
        const prefixLength = prefixMode === 'full' ? full : prefixMode === 'same' ? prefixes[1]! : prefixes[s.prefix]!;
        // Template: every address carries the same types in the same order, values of one length.
        const tlvs = template ? [tlv(1, s.metric), tlv(2, null, 5), ...s.tlvs.slice(0, 1)] : s.tlvs;
        return { address, prefixLength, tlvs };
      }),
    );
}

const messageArb: fc.Arbitrary<Message> = fc.constantFrom(4, 16, 1, 2, 6).chain((L) =>
  fc.record({
    type: fc.nat(255),
    addrLength: fc.constant(L),
    originator: fc.option(fc.uint8Array({ minLength: L, maxLength: L }), { nil: null }),
    hopLimit: fc.option(fc.nat(255), { nil: null }),
    hopCount: fc.option(fc.nat(255), { nil: null }),
    seqno: fc.option(fc.nat(0xffff), { nil: null }),
    tlvs: fc.array(tlvArb, { maxLength: 3 }),
    addresses: addressesArb(L),
  }),
);

const packetArb: fc.Arbitrary<Packet> = fc.record({
  version: fc.constant(0 as const),
  seqno: fc.option(fc.nat(0xffff), { nil: null }),
  tlvs: fc.array(tlvArb, { maxLength: 2 }),
  messages: fc.array(messageArb, { maxLength: 3 }),
});

/** decode → encode → decode gives the same model (for whatever decoded). */
function checkIdempotent(input: Uint8Array): void {
  const r = decodePacket(input);
  if (!r.ok) {
    expect(r.error.offset).toBeGreaterThanOrEqual(0);
    expect(r.error.offset).toBeLessThanOrEqual(input.length);
    return;
  }
  const again = decodePacket(encodePacket(r.packet));
  expect(again.ok).toBe(true);
  if (again.ok) expect(packetToJson(again.packet)).toEqual(packetToJson(r.packet));
}

describe('properties', () => {
  it('model → encode → decode is the identity (3000 packets)', () => {
    fc.assert(
      fc.property(packetArb, (p) => {
        const bytesOut = encodePacket(p);
        const r = decodePacket(bytesOut);
        expect(r.ok).toBe(true);
        if (!r.ok) return;
        expect(packetToJson(r.packet)).toEqual(packetToJson(p));
        expect(r.messageSpans.map((s) => s.end - s.start)).toEqual(p.messages.map((m) => encodeMessage(m).length));
      }),
      { numRuns: 3000 },
    );
  });

  it('random bytes: never throws; what decodes re-encodes to the same model (1000 inputs)', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 400 }), fc.constantFrom(0x00, 0x08, 0x04, 0x0c), (data, first) => {
        // Half the inputs get a valid version/flags byte so that the decoder goes deeper.
        const input = data.length > 0 && data[0]! & 1 ? Uint8Array.from([first, ...data.subarray(1)]) : data;
        checkIdempotent(input);
      }),
      { numRuns: 1000 },
    );
  });

  it('mutated valid packets: never throws; what decodes re-encodes to the same model (1500 inputs)', () => {
    fc.assert(
      fc.property(
        packetArb,
        fc.array(fc.tuple(fc.nat(), fc.nat(255)), { minLength: 1, maxLength: 4 }),
        fc.nat(),
        (p, edits, cut) => {
          const b = encodePacket(p).slice();
          if (b.length === 0) return;
          for (const [at, v] of edits) b[at % b.length] = v;
          checkIdempotent(b);
          checkIdempotent(b.subarray(0, cut % (b.length + 1)));
        },
      ),
      { numRuns: 1500 },
    );
  });
});
