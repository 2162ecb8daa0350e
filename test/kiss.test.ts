/**
 * Tests for the sans-IO KISS codec (firmware-protocol/kiss.ts): the type byte (port, command,
 * RETURN) and its stuffing, exact encodings, the decoder's error rules as seen through KISS
 * (maxFrame counts data bytes only), streaming over arbitrary chunk boundaries and robustness on
 * random input.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  FEND,
  KISS_RETURN,
  KissCommand,
  KissDecoder,
  encodeKiss,
  encodeKissData,
  encodeKissType,
  kissCommandName,
  kissType,
  type KissEvent,
  type KissFrame,
} from '../firmware-protocol/kiss.js';

import { bytes, chunkBySizes, concat, decodeChunks, errorsOf, framesOf, hex } from './framing-helpers.js';
import { SPECIALS, biasedBytes, chunkSizes } from './framing-helpers.js';

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------


/** A comparable picture of a frame: every field, data as hex. */
const describeFrame = (f: KissFrame) =>
  `type=${f.type} port=${f.port} command=${f.command} data=${hex(f.data)}`;

/** A readable, comparable picture of an event list: frames described, errors as `code@offset`. */
const describeEvents = (events: readonly KissEvent[]): string[] =>
  events.map((e) => ('frame' in e ? describeFrame(e.frame) : `${e.error.code}@${e.error.offset}`));

/** The frame the decoder should report for a type byte and data. */
const expectedFrame = (type: number, data: Uint8Array): KissFrame => ({
  type,
  port: type >> 4,
  command: type === KISS_RETURN ? KISS_RETURN : type & 0x0f,
  data,
});

function decodeAll(stream: Uint8Array, options?: { maxFrame?: number }) {
  const decoder = new KissDecoder(options);
  const events = decodeChunks(decoder, [stream]);
  return { decoder, events, frames: framesOf(events), errors: errorsOf(events) };
}

// ---------------------------------------------------------------------------------------------
// Arbitraries
// ---------------------------------------------------------------------------------------------


/**
 * A frame to send: a port and command (biased towards ports 12 and 13, whose type bytes include
 * C0, DB, DC and DD) or RETURN. Port 15 command 15 is left out: its type byte is RETURN's (see
 * the "port 15 command 15" tests).
 */
type Outgoing = { port: number; command: number; data: Uint8Array } | { type: 0xff; data: Uint8Array };

const outgoingArb: fc.Arbitrary<Outgoing> = fc.oneof(
  {
    arbitrary: fc
      .record({
        port: fc.oneof(fc.integer({ min: 0, max: 15 }), fc.constantFrom(12, 13)),
        command: fc.integer({ min: 0, max: 15 }),
        data: biasedBytes({ maxLength: 40 }),
      })
      .filter((f) => !(f.port === 15 && f.command === 15)),
    weight: 8,
  },
  { arbitrary: fc.record({ type: fc.constant(KISS_RETURN), data: biasedBytes({ maxLength: 8 }) }), weight: 1 },
);

const encodeOutgoing = (f: Outgoing): Uint8Array =>
  'type' in f ? encodeKissType(f.type, f.data) : encodeKiss(f);

const typeOf = (f: Outgoing): number => ('type' in f ? f.type : (f.port << 4) | f.command);

// ---------------------------------------------------------------------------------------------
// Type byte and command names
// ---------------------------------------------------------------------------------------------

describe('kissType', () => {
  it('puts the port in the high nibble and the command in the low nibble', () => {
    expect(kissType(0, 0)).toBe(0x00);
    expect(kissType(1, KissCommand.TXDELAY)).toBe(0x11);
    expect(kissType(12, KissCommand.DATA)).toBe(0xc0);
    expect(kissType(13, 11)).toBe(0xdb);
    expect(kissType(15, 14)).toBe(0xfe);
  });

  it('throws RangeError for out-of-range or non-integer port and command', () => {
    for (const [port, command] of [
      [16, 0],
      [-1, 0],
      [1.5, 0],
      [Number.NaN, 0],
      [0, 16],
      [0, -1],
      [0, 0.5],
      [0, Number.NaN],
      [0, 0xff],
    ] as const) {
      expect(() => kissType(port, command), `port ${port} command ${command}`).toThrow(RangeError);
      expect(() => encodeKiss({ port, command }), `port ${port} command ${command}`).toThrow(RangeError);
    }
  });

  it('encodeKissData checks its port', () => {
    expect(() => encodeKissData(bytes(1), 16)).toThrow(RangeError);
    expect(() => encodeKissData(bytes(1), -1)).toThrow(RangeError);
  });

  it('encodeKissType throws RangeError for a type outside 0..255', () => {
    for (const type of [-1, 256, 1.5, Number.NaN]) {
      expect(() => encodeKissType(type), `type ${type}`).toThrow(RangeError);
    }
  });

  // Port 15 command 15 would be type byte 0xFF, which is RETURN: on the wire the two cannot be
  // told apart, so the encoder must not produce it from a port and command.
  it('port 15 command 15 is refused because its type byte is RETURN (0xFF)', () => {
    expect(() => kissType(15, 15)).toThrow(RangeError);
    expect(() => encodeKiss({ port: 15, command: 15 })).toThrow(RangeError);
  });

  it('every port and command kissType accepts decodes to the same port and command', () => {
    const mismatches: string[] = [];
    for (let port = 0; port <= 15; port++) {
      for (let command = 0; command <= 15; command++) {
        let encoded: Uint8Array;
        try {
          encoded = encodeKiss({ port, command, data: bytes(0x42) });
        } catch {
          continue; // refused: fine, as long as it does not decode to something else
        }
        const [frame] = decodeAll(encoded).frames;
        if (frame?.port !== port || frame.command !== command) {
          mismatches.push(`port ${port} command ${command} -> ${frame && describeFrame(frame)}`);
        }
      }
    }
    expect(mismatches).toEqual([]);
  });
});

describe('kissCommandName', () => {
  const names = ['data', 'txdelay', 'p', 'slottime', 'txtail', 'fullduplex', 'sethardware'];

  it('names commands 0..6 on every port', () => {
    for (let port = 0; port <= 15; port++) {
      names.forEach((name, command) => {
        expect(kissCommandName({ type: (port << 4) | command, command })).toBe(name);
      });
    }
  });

  it('matches the KissCommand constants', () => {
    expect(
      [
        KissCommand.DATA,
        KissCommand.TXDELAY,
        KissCommand.P,
        KissCommand.SLOTTIME,
        KissCommand.TXTAIL,
        KissCommand.FULLDUPLEX,
        KissCommand.SETHARDWARE,
      ].map((command) => kissCommandName({ type: command, command })),
    ).toEqual(names);
  });

  it("is 'return' for type 0xFF", () => {
    expect(kissCommandName({ type: KISS_RETURN, command: KISS_RETURN })).toBe('return');
    const [frame] = decodeAll(encodeKissType(KISS_RETURN)).frames;
    expect(kissCommandName(frame!)).toBe('return');
  });

  it('is the number for commands 7..15 when the type is not 0xFF', () => {
    for (let command = 7; command <= 15; command++) {
      expect(kissCommandName({ type: command, command })).toBe(command);
      expect(kissCommandName({ type: 0xe0 | command, command })).toBe(command);
    }
    // 0xFE: port 15 command 14 is an ordinary unknown command, not RETURN.
    const [frame] = decodeAll(encodeKissType(0xfe)).frames;
    expect(kissCommandName(frame!)).toBe(14);
  });
});

// ---------------------------------------------------------------------------------------------
// Encoder: exact bytes
// ---------------------------------------------------------------------------------------------

describe('KISS encoder: exact bytes', () => {
  const cases: [string, () => Uint8Array, number[]][] = [
    ['data frame on port 0', () => encodeKissData(bytes(1, 2, 3)), [0xc0, 0x00, 0x01, 0x02, 0x03, 0xc0]],
    ['data frame on port 1', () => encodeKissData(bytes(0xaa), 1), [0xc0, 0x10, 0xaa, 0xc0]],
    ['TXDELAY 50 on port 0', () => encodeKiss({ port: 0, command: 1, data: bytes(50) }), [0xc0, 0x01, 0x32, 0xc0]],
    ['empty data frame', () => encodeKissData(new Uint8Array(0)), [0xc0, 0x00, 0xc0]],
    ['RETURN', () => encodeKissType(KISS_RETURN), [0xc0, 0xff, 0xc0]],
    ['port 12 command 0: type C0 is stuffed', () => encodeKiss({ port: 12, command: 0 }), [0xc0, 0xdb, 0xdc, 0xc0]],
    ['port 13 command 11: type DB is stuffed', () => encodeKiss({ port: 13, command: 11 }), [0xc0, 0xdb, 0xdd, 0xc0]],
    ['port 13 command 12: type DC is literal', () => encodeKiss({ port: 13, command: 12 }), [0xc0, 0xdc, 0xc0]],
    ['port 13 command 13: type DD is literal', () => encodeKiss({ port: 13, command: 13 }), [0xc0, 0xdd, 0xc0]],
    [
      'type C0 and data C0 DB DC DD',
      () => encodeKissData(bytes(0xc0, 0xdb, 0xdc, 0xdd), 12),
      [0xc0, 0xdb, 0xdc, 0xdb, 0xdc, 0xdb, 0xdd, 0xdc, 0xdd, 0xc0],
    ],
    [
      'type DB and data DB C0',
      () => encodeKissType(0xdb, bytes(0xdb, 0xc0)),
      [0xc0, 0xdb, 0xdd, 0xdb, 0xdd, 0xdb, 0xdc, 0xc0],
    ],
    [
      'data FESC TFEND stays unambiguous',
      () => encodeKissData(bytes(0xdb, 0xdc)),
      [0xc0, 0x00, 0xdb, 0xdd, 0xdc, 0xc0],
    ],
  ];

  for (const [name, encode, expected] of cases) {
    it(`${name}: ${hex(bytes(...expected))}`, () => {
      expect(hex(encode())).toBe(hex(bytes(...expected)));
    });
  }

  it('decodes every hand-computed case back to its type and data', () => {
    const decoded = cases.map(([, encode]) => decodeAll(encode()));
    for (const { errors } of decoded) expect(errors).toEqual([]);
    expect(decoded.map(({ frames }) => frames.map(describeFrame))).toEqual([
      ['type=0 port=0 command=0 data=010203'],
      ['type=16 port=1 command=0 data=aa'],
      ['type=1 port=0 command=1 data=32'],
      ['type=0 port=0 command=0 data='],
      ['type=255 port=15 command=255 data='],
      ['type=192 port=12 command=0 data='],
      ['type=219 port=13 command=11 data='],
      ['type=220 port=13 command=12 data='],
      ['type=221 port=13 command=13 data='],
      ['type=192 port=12 command=0 data=c0dbdcdd'],
      ['type=219 port=13 command=11 data=dbc0'],
      ['type=0 port=0 command=0 data=dbdc'],
    ]);
  });

  it('every type byte 0..255 round-trips, alone and with special data', () => {
    const data = bytes(0xc0, 0xdb, 0xdc, 0xdd);
    for (let type = 0; type <= 0xff; type++) {
      for (const d of [new Uint8Array(0), data]) {
        expect(framesOf(decodeAll(encodeKissType(type, d)).events).map(describeFrame)).toEqual([
          describeFrame(expectedFrame(type, d)),
        ]);
      }
    }
  });
});

// ---------------------------------------------------------------------------------------------
// Decoder: round trip
// ---------------------------------------------------------------------------------------------

describe('KissDecoder: round trip over arbitrary chunking', () => {
  it('property: concatenated frames split anywhere decode to the originals, in order', () => {
    fc.assert(
      fc.property(fc.array(outgoingArb, { maxLength: 8 }), chunkSizes, (outgoing, sizes) => {
        const stream = concat(outgoing.map(encodeOutgoing));
        const decoder = new KissDecoder();
        const events = decodeChunks(decoder, chunkBySizes(stream, sizes));
        expect(errorsOf(events)).toEqual([]);
        expect(framesOf(events).map(describeFrame)).toEqual(
          outgoing.map((f) => describeFrame(expectedFrame(typeOf(f), f.data))),
        );
        expect(decoder.counters.frames).toBe(outgoing.length);
        expect(decoder.position).toBe(stream.length);
      }),
      { numRuns: 4000 },
    );
  });

  it('property: any raw type byte round-trips through encodeKissType', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.tuple(
            fc.oneof(fc.integer({ min: 0, max: 255 }), fc.constantFrom(...SPECIALS, KISS_RETURN)),
            biasedBytes({ maxLength: 24 }),
          ),
          { maxLength: 6 },
        ),
        chunkSizes,
        (frames, sizes) => {
          const stream = concat(frames.map(([type, data]) => encodeKissType(type, data)));
          const events = decodeChunks(new KissDecoder(), chunkBySizes(stream, sizes));
          expect(describeEvents(events)).toEqual(
            frames.map(([type, data]) => describeFrame(expectedFrame(type, data))),
          );
        },
      ),
      { numRuns: 1500 },
    );
  });

  it('returns data that later pushes do not overwrite', () => {
    const decoder = new KissDecoder({ maxFrame: 8 });
    const [first] = framesOf(decoder.push(encodeKissData(bytes(1, 2, 3))));
    decoder.push(encodeKissData(bytes(9, 9, 9, 9, 9, 9, 9, 9), 3));
    expect(describeFrame(first!)).toBe('type=0 port=0 command=0 data=010203');
  });
});

// ---------------------------------------------------------------------------------------------
// Decoder: errors
// ---------------------------------------------------------------------------------------------

describe('KissDecoder: oversize (maxFrame counts data bytes)', () => {
  it('a frame with exactly maxFrame data bytes passes; one more is dropped', () => {
    const maxFrame = 8;
    const fits = encodeKissData(new Uint8Array(maxFrame).fill(0x41));
    const over = encodeKissData(new Uint8Array(maxFrame + 1).fill(0x41));
    expect(describeEvents(decodeAll(fits, { maxFrame }).events)).toEqual([
      `type=0 port=0 command=0 data=${'41'.repeat(maxFrame)}`,
    ]);
    const { decoder, events } = decodeAll(over, { maxFrame });
    // FEND, type, 8 data bytes: the ninth data byte is at offset 10.
    expect(describeEvents(events)).toEqual(['oversize@10']);
    expect(decoder.counters.oversize).toBe(1);
    expect(decoder.counters.frames).toBe(0);
  });

  it('a stuffed type byte and stuffed data count once each', () => {
    const maxFrame = 3;
    const fits = encodeKissData(bytes(0xc0, 0xdb, 0xc0), 12); // c0 dbdc dbdc dbdd dbdc c0
    const over = encodeKissData(bytes(0xc0, 0xdb, 0xc0, 0xdb), 12);
    expect(describeEvents(decodeAll(fits, { maxFrame }).events)).toEqual([
      'type=192 port=12 command=0 data=c0dbc0',
    ]);
    // The fourth data byte's TFESC is at 1 + 2 + 3*2 + 1 = 10.
    expect(describeEvents(decodeAll(over, { maxFrame }).events)).toEqual(['oversize@10']);
  });

  it('the next frame after the oversize one decodes', () => {
    const maxFrame = 4;
    const stream = concat([
      encodeKissData(bytes(1, 2, 3, 4, 5, 6)),
      encodeKissData(bytes(7, 8), 2),
    ]);
    for (const sizes of [[1], [1 << 30], [0, 3]]) {
      const decoder = new KissDecoder({ maxFrame });
      const events = decodeChunks(decoder, chunkBySizes(stream, sizes));
      // FEND, type, 4 data bytes: the fifth data byte is at offset 6.
      expect(describeEvents(events)).toEqual(['oversize@6', 'type=32 port=2 command=0 data=0708']);
      expect(decoder.counters.oversize).toBe(1);
      expect(decoder.counters.frames).toBe(1);
    }
  });

  it('defaults to 2048 data bytes', () => {
    const fits = encodeKissData(new Uint8Array(2048));
    const over = encodeKissData(new Uint8Array(2049));
    const events = new KissDecoder().push(concat([fits, over]));
    expect(events.map((e) => ('frame' in e ? e.frame.data.length : e.error.code))).toEqual([
      2048,
      'oversize',
    ]);
  });

  it('rejects a negative or fractional maxFrame', () => {
    for (const maxFrame of [-1, -5, 1.5, Number.NaN]) {
      expect(() => new KissDecoder({ maxFrame }), `maxFrame ${maxFrame}`).toThrow(RangeError);
    }
  });

  it('memory bound: 1 MiB without a delimiter after FEND is one oversize, then it resyncs', () => {
    const maxFrame = 256;
    const decoder = new KissDecoder({ maxFrame });
    const flood = new Uint8Array(1 << 20).fill(0x55);
    const events: KissEvent[] = [...decoder.push(bytes(FEND))];
    for (let i = 0; i < flood.length; i += 8192) events.push(...decoder.push(flood.subarray(i, i + 8192)));
    // FEND, type byte (0x55), 256 data bytes: the 257th data byte is at offset 258.
    expect(describeEvents(events)).toEqual(['oversize@258']);
    expect(decoder.counters.oversize).toBe(1);
    expect(decoder.counters.frames).toBe(0);
    expect(decoder.position).toBe(1 + flood.length);

    expect(describeEvents(decoder.push(encodeKissData(bytes(0x01))))).toEqual([
      'type=0 port=0 command=0 data=01',
    ]);
    expect(decoder.counters.oversize).toBe(1);
  });
});

describe('KissDecoder: bad escape', () => {
  it('FESC + ordinary byte in the data drops the frame; decoding resumes at the next FEND', () => {
    //                           0     1     2     3     4     5     6     7     8     9
    const stream = bytes(0xc0, 0x00, 0x01, 0xdb, 0x02, 0x03, 0xc0, 0x10, 0xaa, 0xc0);
    const { decoder, events } = decodeAll(stream);
    expect(describeEvents(events)).toEqual(['bad-escape@4', 'type=16 port=1 command=0 data=aa']);
    expect(decoder.counters.badEscape).toBe(1);
    expect(decoder.counters.frames).toBe(1);
  });

  it('FESC + ordinary byte in the type byte drops the frame', () => {
    const stream = concat([bytes(0xc0, 0xdb, 0x00, 0x41, 0xc0), encodeKissData(bytes(0x42))]);
    expect(describeEvents(decodeAll(stream).events)).toEqual([
      'bad-escape@2',
      'type=0 port=0 command=0 data=42',
    ]);
  });

  it('FESC + FEND drops the frame and that FEND opens the next frame', () => {
    //                           0     1     2     3     4     5     6
    const stream = bytes(0xc0, 0x00, 0x01, 0xdb, 0xc0, 0x30, 0x07, 0xc0);
    for (const sizes of [[1], [4], [1 << 30]]) {
      const decoder = new KissDecoder();
      const events = decodeChunks(decoder, chunkBySizes(stream, sizes));
      expect(describeEvents(events)).toEqual(['bad-escape@4', 'type=48 port=3 command=0 data=07']);
      expect(decoder.counters.badEscape).toBe(1);
    }
  });
});

describe('KissDecoder: delimiters, unframed bytes and truncation', () => {
  it('back-to-back FENDs make no empty frames', () => {
    const { decoder, events } = decodeAll(bytes(0xc0, 0xc0, 0xc0, 0x00, 0x41, 0xc0, 0xc0, 0x01, 0x0a, 0xc0));
    expect(describeEvents(events)).toEqual([
      'type=0 port=0 command=0 data=41',
      'type=1 port=0 command=1 data=0a',
    ]);
    expect(decoder.counters.frames).toBe(2);
  });

  it('a frame of only a type byte has empty data', () => {
    expect(describeEvents(decodeAll(bytes(0xc0, 0x11, 0xc0)).events)).toEqual([
      'type=17 port=1 command=1 data=',
    ]);
  });

  it('stray bytes before the first FEND are one unframed error at the first stray byte', () => {
    const decoder = new KissDecoder();
    const stream = concat([bytes(0x00, 0x41, 0xdb, 0x42), encodeKissData(bytes(0x43))]);
    const events = decodeChunks(decoder, chunkBySizes(stream, [1, 0, 2]));
    expect(describeEvents(events)).toEqual(['unframed@0', 'type=0 port=0 command=0 data=43']);
    expect(decoder.counters.unframed).toBe(1);
  });

  it('end() on an open frame reports truncated at the end of the stream', () => {
    const { decoder, events } = decodeAll(bytes(0xc0, 0x00, 0x41, 0xc0, 0x00, 0x42));
    expect(describeEvents(events)).toEqual(['type=0 port=0 command=0 data=41', 'truncated@6']);
    expect(decoder.counters.truncated).toBe(1);
  });

  it('end() after only an escaped type byte start reports truncated', () => {
    expect(describeEvents(decodeAll(bytes(0xc0, 0xdb)).events)).toEqual(['truncated@2']);
  });

  it('end() with nothing open reports nothing', () => {
    const { decoder, errors } = decodeAll(concat([encodeKissData(bytes(1)), bytes(0xc0)]));
    expect(errors).toEqual([]);
    expect(decoder.counters.truncated).toBe(0);
  });
});

// ---------------------------------------------------------------------------------------------
// Decoder: robustness on arbitrary input
// ---------------------------------------------------------------------------------------------

describe('KissDecoder: arbitrary byte streams', () => {
  const streamArb = biasedBytes({ maxLength: 200 });
  const maxFrameArb = fc.oneof(fc.integer({ min: 0, max: 16 }), fc.constant(2048));

  it('property: never throws, data fits maxFrame, frames are well formed, counters match', () => {
    fc.assert(
      fc.property(streamArb, maxFrameArb, chunkSizes, (stream, maxFrame, sizes) => {
        const decoder = new KissDecoder({ maxFrame });
        const events = decodeChunks(decoder, chunkBySizes(stream, sizes));
        const frames = framesOf(events);
        const errors = errorsOf(events);
        const count = (code: string) => errors.filter((e) => e.code === code).length;

        for (const f of frames) {
          expect(f.data.length).toBeLessThanOrEqual(maxFrame);
          expect(describeFrame(f)).toBe(describeFrame(expectedFrame(f.type, f.data)));
          expect(f.port).toBeGreaterThanOrEqual(0);
          expect(f.port).toBeLessThanOrEqual(15);
        }
        expect(decoder.counters.frames).toBe(frames.length);
        expect(decoder.counters.unframed).toBe(count('unframed'));
        expect(decoder.counters.badEscape).toBe(count('bad-escape'));
        expect(decoder.counters.oversize).toBe(count('oversize'));
        expect(decoder.counters.truncated).toBe(count('truncated'));
        const offsets = errors.map((e) => e.offset);
        expect(offsets).toEqual([...offsets].sort((a, b) => a - b));
        for (const o of offsets) expect(o).toBeLessThanOrEqual(stream.length);
        expect(decoder.position).toBe(stream.length);
      }),
      { numRuns: 3500 },
    );
  });

  it('property: chunking never changes the events', () => {
    fc.assert(
      fc.property(streamArb, maxFrameArb, chunkSizes, (stream, maxFrame, sizes) => {
        const whole = decodeChunks(new KissDecoder({ maxFrame }), [stream]);
        const chunked = decodeChunks(new KissDecoder({ maxFrame }), chunkBySizes(stream, sizes));
        expect(describeEvents(chunked)).toEqual(describeEvents(whole));
      }),
      { numRuns: 2000 },
    );
  });
});
