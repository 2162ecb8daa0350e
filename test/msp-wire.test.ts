/**
 * The MSP packet codec (src/msp/wire.ts) against SPEC.md: the worked example byte for byte, round
 * trips of every frame, canonical decoding of arbitrary bytes, truncation, and ACK ranges over
 * the 16-bit wrap.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  DATA_OVERHEAD,
  MAX_ACK_RANGES,
  MAX_ACK_SPAN,
  MAX_REPAIR_COUNT,
  decodePacket,
  encodePacket,
  packetProblem,
  seqAdd,
  seqDiff,
  seqDistance,
  seqExpand,
  seqLe,
  seqLt,
  type AckFrame,
  type AckRange,
  type MspFrame,
  type MspPacket,
} from '../src/msp/wire.js';

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const unhex = (s: string): Uint8Array => Uint8Array.from(Buffer.from(s.replace(/[^0-9a-f]/gi, ''), 'hex'));
const ascii = (s: string): Uint8Array => Uint8Array.from(Buffer.from(s, 'latin1'));

function decodeOk(bytes: Uint8Array): MspPacket {
  const r = decodePacket(bytes);
  if (!r.ok) throw new Error(`decode failed: ${r.error.code} at ${r.error.offset}`);
  return r.packet;
}

/** Plain-object form (Uint8Array views become arrays) so toEqual compares content only. */
const plain = (p: MspPacket): unknown =>
  JSON.parse(JSON.stringify(p, (_k, v: unknown) => (v instanceof Uint8Array ? { bytes: Array.from(v) } : v)));

const base = { connectionId: 0x1a2b3c4d, open: false, fromResponder: false };

describe('SPEC.md worked example', () => {
  const exampleModel: MspPacket = {
    ...base,
    packetNumber: 0xfffe,
    frames: [
      { type: 'ack', cumulative: 0xfffd, ranges: [{ first: 0xffff, last: 0x0001 }] },
      { type: 'window', bytes: 1200 },
      { type: 'data', end: true, fin: false, data: ascii('hi') },
    ],
  };

  it('the hex line in SPEC.md is what the codec writes and reads', () => {
    const spec = readFileSync(new URL('../src/msp/SPEC.md', import.meta.url), 'utf8');
    const line = spec.split('\n').find((l) => l.startsWith('48 1a2b3c4d'));
    expect(line).toBeDefined();
    const bytes = unhex(line!);
    expect(bytes.length).toBe(18);
    expect(hex(encodePacket(exampleModel))).toBe(hex(bytes));
    expect(plain(decodeOk(bytes))).toEqual(plain(exampleModel));
  });

  it('decodes byte for byte as the table explains', () => {
    const bytes = unhex('48 1a2b3c4d fffe 21 fffd 01 02 03 b009 11 6869');
    expect(bytes[0]).toBe(0x48); // version 1, N
    const p = decodeOk(bytes);
    expect(p.connectionId).toBe(0x1a2b3c4d);
    expect(p.open).toBe(false);
    expect(p.fromResponder).toBe(false);
    expect(p.packetNumber).toBe(65534);
    const [ack, win, data] = p.frames;
    expect(ack).toEqual({ type: 'ack', cumulative: 65533, ranges: [{ first: 65535, last: 1 }] });
    expect(win).toEqual({ type: 'window', bytes: 1200 });
    expect(data!.type).toBe('data');
    if (data?.type !== 'data') return;
    expect(data.end).toBe(true);
    expect(data.fin).toBe(false);
    expect(Buffer.from(data.data).toString('latin1')).toBe('hi');
  });

  it('the example reset', () => {
    const p: MspPacket = { ...base, fromResponder: true, frames: [{ type: 'reset', code: 0 }] };
    expect(hex(encodePacket(p))).toBe('501a2b3c4d0400');
    expect(plain(decodeOk(unhex('50 1a2b3c4d 04 00')))).toEqual(plain(p));
  });
});

describe('header overhead as SPEC.md states', () => {
  const data = (n: number): MspFrame => ({ type: 'data', end: true, fin: false, data: new Uint8Array(n) });
  it('DATA alone: 8 bytes', () => {
    expect(DATA_OVERHEAD).toBe(8);
    expect(encodePacket({ ...base, packetNumber: 7, frames: [data(100)] }).length).toBe(108);
  });
  it('DATA + cumulative ACK: 11; + one range: 13; + window: 16', () => {
    const ack0: AckFrame = { type: 'ack', cumulative: 5, ranges: [] };
    const ack1: AckFrame = { type: 'ack', cumulative: 5, ranges: [{ first: 7, last: 9 }] };
    expect(encodePacket({ ...base, packetNumber: 7, frames: [ack0, data(100)] }).length).toBe(111);
    expect(encodePacket({ ...base, packetNumber: 7, frames: [ack1, data(100)] }).length).toBe(113);
    expect(encodePacket({ ...base, packetNumber: 7, frames: [ack1, { type: 'window', bytes: 16383 }, data(100)] }).length).toBe(116);
    expect(encodePacket({ ...base, frames: [ack0] }).length).toBe(8);
  });
});

describe('round trips of every frame', () => {
  const cases: [string, MspPacket, string][] = [
    ['data, open', { connectionId: 1, open: true, fromResponder: false, packetNumber: 0, frames: [{ type: 'data', end: false, fin: false, data: ascii('abc') }] }, '6800000001000010616263'],
    ['data fin, empty', { connectionId: 0xffffffff, open: false, fromResponder: true, packetNumber: 0x1234, frames: [{ type: 'data', end: true, fin: true, data: new Uint8Array(0) }] }, '58ffffffff123413'],
    ['ack, two ranges', { ...base, frames: [{ type: 'ack', cumulative: 10, ranges: [{ first: 12, last: 12 }, { first: 20, last: 29 }] }] }, '401a2b3c4d22000a0100060 9'.replace(/ /g, '')],
    ['window', { ...base, frames: [{ type: 'window', bytes: 0xffffffff }] }, '401a2b3c4d03ffffffff0f'],
    ['ping', { ...base, frames: [{ type: 'ping', token: 0 }] }, '401a2b3c4d0100'],
    ['pong', { ...base, frames: [{ type: 'pong', token: 300 }] }, '401a2b3c4d02ac02'],
    ['reset', { ...base, frames: [{ type: 'reset', code: 255 }] }, '401a2b3c4d04ff'],
    ['repair + ack', { ...base, frames: [{ type: 'ack', cumulative: 0, ranges: [] }, { type: 'repair', first: 0xfff0, count: 64, seed: 0, payload: unhex('0003116869') }] }, '401a2b3c4d20000008fff04000000003116869'],
  ];
  for (const [name, model, wire] of cases) {
    it(name, () => {
      const bytes = encodePacket(model);
      expect(hex(bytes)).toBe(wire);
      expect(plain(decodeOk(bytes))).toEqual(plain(model));
    });
  }
});

describe('invalid models are RangeErrors', () => {
  const bad: [string, MspPacket][] = [
    ['no frames', { ...base, frames: [] }],
    ['open and responder', { ...base, open: true, fromResponder: true, frames: [{ type: 'ping', token: 1 }] }],
    ['data without number', { ...base, frames: [{ type: 'data', end: true, fin: false, data: new Uint8Array(1) }] }],
    ['number without data', { ...base, packetNumber: 1, frames: [{ type: 'ping', token: 1 }] }],
    ['data not last', { ...base, packetNumber: 1, frames: [{ type: 'data', end: true, fin: false, data: new Uint8Array(1) }, { type: 'ping', token: 1 }] }],
    ['two pings', { ...base, frames: [{ type: 'ping', token: 1 }, { type: 'ping', token: 2 }] }],
    ['reset not alone', { ...base, frames: [{ type: 'reset', code: 0 }, { type: 'ping', token: 2 }] }],
    ['16 ranges', { ...base, frames: [{ type: 'ack', cumulative: 0, ranges: Array.from({ length: 16 }, (_, i) => ({ first: 2 * i + 1, last: 2 * i + 1 })) }] }],
    ['adjacent ranges', { ...base, frames: [{ type: 'ack', cumulative: 0, ranges: [{ first: 1, last: 2 }, { first: 3, last: 4 }] }] }],
    ['range at cumulative', { ...base, frames: [{ type: 'ack', cumulative: 5, ranges: [{ first: 5, last: 6 }] }] }],
    ['span too wide', { ...base, frames: [{ type: 'ack', cumulative: 0, ranges: [{ first: 1, last: MAX_ACK_SPAN + 1 }] }] }],
    ['repair count 0', { ...base, frames: [{ type: 'repair', first: 0, count: 0, seed: 0, payload: new Uint8Array(2) }] }],
    ['repair count 65', { ...base, frames: [{ type: 'repair', first: 0, count: MAX_REPAIR_COUNT + 1, seed: 0, payload: new Uint8Array(2) }] }],
    ['repair payload 1', { ...base, frames: [{ type: 'repair', first: 0, count: 1, seed: 0, payload: new Uint8Array(1) }] }],
    ['connection id 2^32', { ...base, connectionId: 2 ** 32, frames: [{ type: 'ping', token: 1 }] }],
    ['window negative', { ...base, frames: [{ type: 'window', bytes: -1 }] }],
  ];
  for (const [name, model] of bad) {
    it(name, () => expect(() => encodePacket(model)).toThrow(RangeError));
  }
  it('the largest ack is accepted', () => {
    const ranges = Array.from({ length: MAX_ACK_RANGES }, (_, i) => ({ first: 2 * i + 1, last: 2 * i + 1 }));
    ranges[MAX_ACK_RANGES - 1] = { first: 29, last: MAX_ACK_SPAN };
    expect(packetProblem({ ...base, frames: [{ type: 'ack', cumulative: 0xff00, ranges: ranges.map((r) => ({ first: seqAdd(r.first, 0xff00), last: seqAdd(r.last, 0xff00) })) }] })).toBeUndefined();
  });
});

describe('malformed packets are rejected with a code and an offset', () => {
  const cases: [string, string, string, number][] = [
    ['empty', '', 'empty', 0],
    ['version 0', '001a2b3c4d0100', 'version', 0],
    ['reserved bit', '411a2b3c4d0100', 'reserved-bits', 0],
    ['O and R', '701a2b3c4d0100', 'open-and-responder', 0],
    ['short header', '401a2b3c', 'truncated', 1],
    ['no frames', '401a2b3c4d', 'no-frames', 5],
    ['unknown frame', '401a2b3c4d0100ee', 'unknown-frame', 7],
    ['duplicate', '401a2b3c4d01000101', 'duplicate-frame', 7],
    ['reset then ping', '401a2b3c4d04000100', 'reset-not-alone', 7],
    ['ping then reset', '401a2b3c4d01000400', 'reset-not-alone', 7],
    ['data without N', '401a2b3c4d1161', 'data-without-number', 5],
    ['N without data', '481a2b3c4d00010100', 'number-without-data', 5],
    ['overlong varint', '401a2b3c4d018000', 'varint-overlong', 6],
    ['varint 2^32', '401a2b3c4d0180808080 10'.replace(/ /g, ''), 'varint-too-large', 6],
    ['varint 6 bytes', '401a2b3c4d01808080808000', 'varint-too-large', 6],
    ['ack span', '401a2b3c4d210000 00 ffff01'.replace(/ /g, ''), 'ack-span', 8],
    ['ack range count beyond bytes', '401a2b3c4d2f0000', 'truncated', 8],
    ['repair count 0', '401a2b3c4d08000000000000', 'repair-count', 8],
    ['repair count 65', '401a2b3c4d08000041000000', 'repair-count', 8],
    ['repair short', '401a2b3c4d08000001000000', 'repair-short', 11],
  ];
  for (const [name, h, code, offset] of cases) {
    it(name, () => {
      const r = decodePacket(unhex(h));
      expect(r.ok).toBe(false);
      if (r.ok) return;
      expect(r.error).toEqual({ code, offset });
    });
  }
});

describe('serial arithmetic', () => {
  it('compares across the wrap', () => {
    expect(seqLt(0xffff, 0)).toBe(true);
    expect(seqLt(0, 0xffff)).toBe(false);
    expect(seqDiff(0xfff0, 0x0010)).toBe(0x20);
    expect(seqDiff(0x0010, 0xfff0)).toBe(-0x20);
    expect(seqLe(5, 5)).toBe(true);
    expect(seqAdd(0xffff, 2)).toBe(1);
    expect(seqDistance(0xffff, 1)).toBe(2);
    expect(seqExpand(0x0002, 0x1fffe)).toBe(0x20002);
    expect(seqExpand(0xfffe, 0x20001)).toBe(0x1fffe);
  });
  it('seqDiff is antisymmetric within half the circle', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 0xffff }), fc.integer({ min: -0x7fff, max: 0x7fff }), (a, d) => {
        const b = seqAdd(a, d);
        expect(seqDiff(a, b)).toBe(d);
        expect(seqDiff(b, a) + d).toBe(0);
        expect(seqLt(a, b)).toBe(d > 0);
      }),
      { numRuns: 1000 },
    );
  });
});

// ---------------------------------------------------------------------------------------------
// Generators of valid models

const u16 = fc.integer({ min: 0, max: 0xffff });
const u32 = fc.integer({ min: 0, max: 0xffffffff });
const bytes = (min: number, max: number) => fc.uint8Array({ minLength: min, maxLength: max });

/** Ranges from (gap, length) pairs, so they are valid by construction, across any wrap. */
const ackArb: fc.Arbitrary<AckFrame> = fc
  .tuple(u16, fc.array(fc.tuple(fc.integer({ min: 0, max: 3000 }), fc.integer({ min: 0, max: 3000 })), { maxLength: MAX_ACK_RANGES }))
  .map(([cumulative, pairs]) => {
    const ranges: AckRange[] = [];
    let prevEnd = 0;
    for (const [gap, len] of pairs) {
      const first = prevEnd + gap + 1;
      const last = first + len;
      if (last > MAX_ACK_SPAN) break;
      ranges.push({ first: seqAdd(cumulative, first), last: seqAdd(cumulative, last) });
      prevEnd = last + 1;
    }
    return { type: 'ack' as const, cumulative, ranges };
  });

const controlArb: fc.Arbitrary<MspFrame> = fc.oneof(
  ackArb,
  u32.map((bytes) => ({ type: 'window' as const, bytes })),
  u32.map((token) => ({ type: 'ping' as const, token })),
  u32.map((token) => ({ type: 'pong' as const, token })),
);

const packetArb: fc.Arbitrary<MspPacket> = fc
  .record({
    connectionId: u32,
    role: fc.constantFrom('open', 'initiator', 'responder'),
    controls: fc.uniqueArray(controlArb, { maxLength: 4, selector: (f) => f.type }),
    last: fc.oneof(
      fc.constant(undefined),
      fc.record({ type: fc.constant('data' as const), end: fc.boolean(), fin: fc.boolean(), data: bytes(0, 40) }),
      fc.record({ type: fc.constant('repair' as const), first: u16, count: fc.integer({ min: 1, max: MAX_REPAIR_COUNT }), seed: u16, payload: bytes(2, 40) }),
      fc.record({ type: fc.constant('reset' as const), code: fc.integer({ min: 0, max: 255 }) }),
    ),
    packetNumber: u16,
  })
  .filter((r) => r.controls.length > 0 || r.last !== undefined)
  .map((r) => {
    const frames: MspFrame[] = r.last?.type === 'reset' ? [r.last] : r.last ? [...r.controls, r.last] : r.controls;
    const p: MspPacket = { connectionId: r.connectionId, open: r.role === 'open', fromResponder: r.role === 'responder', frames };
    if (r.last?.type === 'data') p.packetNumber = r.packetNumber;
    return p;
  });

describe('properties', () => {
  it('every generated model is valid, and encode → decode is the identity', () => {
    fc.assert(
      fc.property(packetArb, (p) => {
        expect(packetProblem(p)).toBeUndefined();
        const wire = encodePacket(p);
        expect(plain(decodeOk(wire))).toEqual(plain(p));
      }),
      { numRuns: 2000 },
    );
  });

  it('decode never throws on arbitrary bytes, and what it accepts re-encodes to the same bytes', () => {
    const arbitrary = fc.oneof(
      bytes(0, 64),
      // bytes that start like a packet, so the frame decoder is reached often
      fc.tuple(fc.constantFrom(0x40, 0x48, 0x50, 0x58, 0x60, 0x68), bytes(4, 6), bytes(0, 40)).map(([b0, cid, rest]) => Uint8Array.from([b0, ...cid, ...rest])),
      // ... and whose body is made of plausible frames: a known (or random) type byte, then a few small bytes
      fc
        .tuple(
          fc.constantFrom(0x40, 0x48, 0x50, 0x58, 0x60, 0x68),
          bytes(4, 4),
          fc.constantFrom(0, 2),
          fc.array(
            fc.tuple(
              fc.oneof(fc.constantFrom(0x01, 0x02, 0x03, 0x04, 0x08, 0x10, 0x11, 0x12, 0x13, 0x20, 0x21, 0x22, 0x2f), fc.integer({ min: 0, max: 255 })),
              fc.array(fc.oneof(fc.integer({ min: 0, max: 0x7f }), fc.integer({ min: 0, max: 255 })), { maxLength: 6 }),
            ),
            { minLength: 1, maxLength: 4 },
          ),
        )
        .map(([b0, cid, pn, frames]) => Uint8Array.from([b0, ...cid, ...new Array<number>(pn).fill(7), ...frames.flatMap(([t, body]) => [t, ...body])])),
    );
    let accepted = 0;
    fc.assert(
      fc.property(arbitrary, (b) => {
        const r = decodePacket(b);
        if (r.ok) {
          accepted++;
          expect(packetProblem(r.packet)).toBeUndefined();
          expect(hex(encodePacket(r.packet))).toBe(hex(b));
        } else {
          expect(r.error.offset).toBeGreaterThanOrEqual(0);
          expect(r.error.offset).toBeLessThanOrEqual(b.length);
        }
      }),
      { numRuns: 5000 },
    );
    expect(accepted).toBeGreaterThan(50);
  });

  it('single-byte mutations of valid packets never throw and stay canonical', () => {
    fc.assert(
      fc.property(packetArb, fc.nat(), fc.integer({ min: 0, max: 255 }), (p, at, v) => {
        const wire = encodePacket(p);
        wire[at % wire.length] = v;
        const r = decodePacket(wire);
        if (r.ok) expect(hex(encodePacket(r.packet))).toBe(hex(wire));
      }),
      { numRuns: 2000 },
    );
  });

  it('truncations are rejected with an offset, except at a frame boundary of an unnumbered packet or inside a final body', () => {
    fc.assert(
      fc.property(packetArb, fc.nat(), (p, n) => {
        const wire = encodePacket(p);
        const last = p.frames[p.frames.length - 1]!;
        const body = last.type === 'data' ? last.data.length : last.type === 'repair' ? last.payload.length - 2 : 0;
        const cut = n % wire.length; // 0 .. length − 1: a strict prefix
        const r = decodePacket(wire.subarray(0, cut));
        // Without a packet number, a cut between two frames leaves a shorter valid packet.
        const boundaries = new Map<number, number>();
        if (p.packetNumber === undefined) {
          for (let i = 1; i < p.frames.length; i++) boundaries.set(encodePacket({ ...p, frames: p.frames.slice(0, i) }).length, i);
        }
        if (boundaries.has(cut)) {
          expect(r.ok).toBe(true);
          if (r.ok) expect(plain(r.packet)).toEqual(plain({ ...p, frames: p.frames.slice(0, boundaries.get(cut)) }));
        } else if (cut >= wire.length - body) {
          // the cut falls inside an unframed body: the datagram's sealed length is authoritative
          expect(r.ok).toBe(true);
          if (r.ok) expect(r.packet.frames.length).toBe(p.frames.length);
        } else {
          expect(r.ok).toBe(false);
          if (!r.ok) {
            expect(r.error.offset).toBeLessThanOrEqual(cut);
          }
        }
      }),
      { numRuns: 2000 },
    );
  });

  it('ack ranges across the wrap: the received set round-trips', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0xff00, max: 0xffff }),
        fc.uniqueArray(fc.integer({ min: 1, max: 600 }), { minLength: 1, maxLength: 60 }),
        (cumulative, offsets) => {
          // received numbers above cumulative → maximal ranges, lowest 15 kept
          const sorted = [...offsets].sort((a, b) => a - b);
          const ranges: AckRange[] = [];
          for (const d of sorted) {
            const r = ranges[ranges.length - 1];
            if (r && seqAdd(r.last, 1) === seqAdd(cumulative, d)) r.last = seqAdd(cumulative, d);
            else ranges.push({ first: seqAdd(cumulative, d), last: seqAdd(cumulative, d) });
          }
          const kept = ranges.slice(0, MAX_ACK_RANGES);
          const p: MspPacket = { ...base, frames: [{ type: 'ack', cumulative, ranges: kept }] };
          const back = decodeOk(encodePacket(p)).frames[0] as AckFrame;
          const set = (rs: AckRange[]): number[] => rs.flatMap((r) => Array.from({ length: seqDistance(r.first, r.last) + 1 }, (_, i) => seqAdd(r.first, i)));
          expect(set(back.ranges)).toEqual(set(kept));
          for (const x of set(back.ranges)) expect(seqLt(cumulative, x)).toBe(true);
          if (ranges.length <= MAX_ACK_RANGES) expect(set(back.ranges).length).toBe(offsets.length);
        },
      ),
      { numRuns: 1000 },
    );
  });
});
