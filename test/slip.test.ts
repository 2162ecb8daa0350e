/**
 * Tests for the sans-IO SLIP codec (firmware-protocol/slip.ts): exact stuffing, the decoder's
 * error rules (unframed, bad-escape, oversize, truncated), streaming over arbitrary chunk
 * boundaries, robustness on random input, and a cross-check against node-serialport's
 * independent SLIP encoder and decoder.
 */
import type { Transform } from 'node:stream';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  SlipDecoder as SerialportSlipDecoder,
  SlipEncoder,
} from '@serialport/parser-slip-encoder';
import {
  DEFAULT_MAX_FRAME,
  END,
  ESC,
  ESC_END,
  ESC_ESC,
  SlipDecoder,
  encodeSlip,
  stuffInto,
  stuffedLength,
  type FramingEvent,
} from '../firmware-protocol/slip.js';

import { bytes, chunkBySizes, concat, decodeChunks, errorsOf, framesOf, hex } from './framing-helpers.js';
import { SPECIALS, biasedBytes, chunkSizes } from './framing-helpers.js';

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------


/** A readable, comparable picture of an event list: frames as hex, errors as `code@offset`. */
const describeEvents = (events: readonly FramingEvent[]): string[] =>
  events.map((e) => ('frame' in e ? `frame ${hex(e.frame)}` : `${e.error.code}@${e.error.offset}`));

/** Decodes one whole stream with a fresh decoder in a single push plus end(). */
function decodeAll(stream: Uint8Array, options?: { maxFrame?: number; synced?: boolean }) {
  const decoder = new SlipDecoder(options);
  const events = decodeChunks(decoder, [stream]);
  return { decoder, events, frames: framesOf(events), errors: errorsOf(events) };
}

/** Writes each input to a Transform stream and collects everything it emits. */
async function runTransform(transform: Transform, inputs: readonly Uint8Array[]): Promise<Buffer[]> {
  const out: Buffer[] = [];
  transform.on('data', (chunk: Buffer) => out.push(chunk));
  const finished = new Promise<void>((resolve, reject) => {
    transform.on('end', resolve);
    transform.on('error', reject);
  });
  for (const input of inputs) transform.write(Buffer.from(input));
  transform.end();
  await finished;
  return out;
}

// ---------------------------------------------------------------------------------------------
// Arbitraries
// ---------------------------------------------------------------------------------------------


// ---------------------------------------------------------------------------------------------
// Encoder
// ---------------------------------------------------------------------------------------------

describe('encodeSlip: exact bytes', () => {
  const cases: [string, number[], number[]][] = [
    ['empty datagram', [], [0xc0, 0xc0]],
    ['plain bytes', [0x01, 0x02, 0x03], [0xc0, 0x01, 0x02, 0x03, 0xc0]],
    ['END alone', [0xc0], [0xc0, 0xdb, 0xdc, 0xc0]],
    ['ESC alone', [0xdb], [0xc0, 0xdb, 0xdd, 0xc0]],
    ['ESC_END alone is literal', [0xdc], [0xc0, 0xdc, 0xc0]],
    ['ESC_ESC alone is literal', [0xdd], [0xc0, 0xdd, 0xc0]],
    [
      'all four specials',
      [0xc0, 0xdb, 0xdc, 0xdd],
      [0xc0, 0xdb, 0xdc, 0xdb, 0xdd, 0xdc, 0xdd, 0xc0],
    ],
    ['ESC then ESC_END (looks like an escape)', [0xdb, 0xdc], [0xc0, 0xdb, 0xdd, 0xdc, 0xc0]],
    ['two ENDs', [0x01, 0xc0, 0xc0, 0x02], [0xc0, 0x01, 0xdb, 0xdc, 0xdb, 0xdc, 0x02, 0xc0]],
    ['two ESCs', [0xdb, 0xdb], [0xc0, 0xdb, 0xdd, 0xdb, 0xdd, 0xc0]],
  ];

  for (const [name, datagram, encoded] of cases) {
    it(`${name}: ${hex(bytes(...datagram)) || '(none)'} -> ${hex(bytes(...encoded))}`, () => {
      expect(hex(encodeSlip(bytes(...datagram)))).toBe(hex(bytes(...encoded)));
    });
  }

  it('decodes each hand-computed case back to its datagram', () => {
    for (const [, datagram, encoded] of cases) {
      if (datagram.length === 0) continue; // empty frames are never produced (see below)
      const { frames, errors } = decodeAll(bytes(...encoded));
      expect(errors).toEqual([]);
      expect(frames.map(hex)).toEqual([hex(bytes(...datagram))]);
    }
  });

  it('stuffedLength counts one extra byte per END and ESC only', () => {
    expect(stuffedLength(bytes())).toBe(0);
    expect(stuffedLength(bytes(0xc0, 0xdb, 0xdc, 0xdd, 0x00))).toBe(7);
    expect(stuffedLength(new Uint8Array(10).fill(0xc0))).toBe(20);
  });

  it('stuffInto writes at the offset and returns the end offset', () => {
    const out = new Uint8Array(8).fill(0xee);
    const end = stuffInto(bytes(0x11, 0xc0, 0xdb), out, 2);
    expect(end).toBe(7);
    expect(hex(out)).toBe('eeee11dbdcdbddee');
  });

  it('encodes a subarray view, not its whole underlying buffer', () => {
    const backing = bytes(0xaa, 0xc0, 0xbb, 0xcc);
    expect(hex(encodeSlip(backing.subarray(1, 3)))).toBe('c0dbdcbbc0');
  });

  it('property: output is END-delimited and has no END inside', () => {
    fc.assert(
      fc.property(biasedBytes({ maxLength: 64 }), (datagram) => {
        const encoded = encodeSlip(datagram);
        expect(encoded.length).toBe(stuffedLength(datagram) + 2);
        expect(encoded[0]).toBe(END);
        expect(encoded[encoded.length - 1]).toBe(END);
        expect(encoded.subarray(1, -1).includes(END)).toBe(false);
      }),
      { numRuns: 500 },
    );
  });
});

// ---------------------------------------------------------------------------------------------
// Decoder: round trip
// ---------------------------------------------------------------------------------------------

describe('SlipDecoder: round trip over arbitrary chunking', () => {
  it('property: concatenated frames split anywhere decode to the originals, in order', () => {
    fc.assert(
      fc.property(
        fc.array(biasedBytes({ minLength: 1, maxLength: 48 }), { maxLength: 8 }),
        chunkSizes,
        (datagrams, sizes) => {
          const stream = concat(datagrams.map(encodeSlip));
          const decoder = new SlipDecoder();
          const events = decodeChunks(decoder, chunkBySizes(stream, sizes));
          expect(errorsOf(events)).toEqual([]);
          expect(framesOf(events).map(hex)).toEqual(datagrams.map(hex));
          expect(decoder.counters.frames).toBe(datagrams.length);
          expect(decoder.counters.bytes).toBe(datagrams.reduce((n, d) => n + d.length, 0));
          expect(decoder.position).toBe(stream.length);
        },
      ),
      { numRuns: 3000 },
    );
  });

  it('property: frames of exactly maxFrame bytes pass at any maxFrame', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 40 }).chain((maxFrame) =>
          fc.tuple(
            fc.constant(maxFrame),
            fc.array(biasedBytes({ minLength: maxFrame, maxLength: maxFrame }), {
              minLength: 1,
              maxLength: 4,
            }),
          ),
        ),
        chunkSizes,
        ([maxFrame, datagrams], sizes) => {
          const stream = concat(datagrams.map(encodeSlip));
          const events = decodeChunks(new SlipDecoder({ maxFrame }), chunkBySizes(stream, sizes));
          expect(describeEvents(events)).toEqual(datagrams.map((d) => `frame ${hex(d)}`));
        },
      ),
      { numRuns: 500 },
    );
  });

  it('property: the leading END flushes any line noise before a frame', () => {
    fc.assert(
      fc.property(
        biasedBytes({ maxLength: 24 }),
        fc.array(biasedBytes({ minLength: 1, maxLength: 32 }), { minLength: 1, maxLength: 4 }),
        chunkSizes,
        (noise, datagrams, sizes) => {
          const stream = concat([noise, ...datagrams.map(encodeSlip)]);
          const events = decodeChunks(new SlipDecoder(), chunkBySizes(stream, sizes));
          const frames = framesOf(events).map(hex);
          // Noise may itself look like frames, but the real datagrams come last and intact.
          expect(frames.slice(-datagrams.length)).toEqual(datagrams.map(hex));
          // Errors can only come from the noise, never from the clean frames after it.
          for (const error of errorsOf(events)) {
            expect(error.code).not.toBe('truncated');
            expect(error.offset).toBeLessThanOrEqual(noise.length);
          }
        },
      ),
      { numRuns: 1500 },
    );
  });

  it('returns frames that later pushes do not overwrite', () => {
    const decoder = new SlipDecoder({ maxFrame: 8 });
    const [first] = framesOf(decoder.push(encodeSlip(bytes(1, 2, 3))));
    decoder.push(encodeSlip(bytes(9, 9, 9, 9, 9, 9, 9, 9)));
    expect(hex(first!)).toBe('010203');
  });

  it('reads chunks that are views at an offset into a larger buffer', () => {
    const backing = bytes(0xc0, 0x01, 0xc0, /* view: */ 0xc0, 0x41, 0x42, 0xc0, /* end */ 0x02);
    const events = new SlipDecoder().push(backing.subarray(3, 7));
    expect(describeEvents(events)).toEqual(['frame 4142']);
  });
});

// ---------------------------------------------------------------------------------------------
// Decoder: special bytes
// ---------------------------------------------------------------------------------------------

describe('SlipDecoder: special bytes', () => {
  it('unstuffs ESC ESC_END to END and ESC ESC_ESC to ESC', () => {
    const { frames, errors } = decodeAll(bytes(0xc0, 0xdb, 0xdc, 0xdb, 0xdd, 0xc0));
    expect(errors).toEqual([]);
    expect(frames.map(hex)).toEqual(['c0db']);
  });

  it('passes bare ESC_END and ESC_ESC through as data', () => {
    const { frames, errors } = decodeAll(bytes(0xc0, 0xdc, 0xdd, 0xdc, 0xc0));
    expect(errors).toEqual([]);
    expect(frames.map(hex)).toEqual(['dcdddc']);
  });

  it('every combination of up to three special bytes round-trips', () => {
    const combos: number[][] = [[]];
    for (let len = 1; len <= 3; len++) {
      for (const prefix of combos.filter((c) => c.length === len - 1)) {
        for (const s of SPECIALS) combos.push([...prefix, s]);
      }
    }
    const datagrams = combos.filter((c) => c.length > 0).map((c) => bytes(...c));
    expect(datagrams).toHaveLength(4 + 16 + 64);
    const stream = concat(datagrams.map(encodeSlip));
    for (const sizes of [[1], [2], [3], [1 << 30]]) {
      const events = decodeChunks(new SlipDecoder(), chunkBySizes(stream, sizes));
      expect(describeEvents(events)).toEqual(datagrams.map((d) => `frame ${hex(d)}`));
    }
  });

  it('an escape pair split across two pushes still decodes', () => {
    const decoder = new SlipDecoder();
    expect(decoder.push(bytes(0xc0, 0x01, 0xdb))).toEqual([]);
    expect(describeEvents(decoder.push(bytes(0xdc, 0xc0)))).toEqual(['frame 01c0']);
  });
});

// ---------------------------------------------------------------------------------------------
// Decoder: errors
// ---------------------------------------------------------------------------------------------

describe('SlipDecoder: oversize', () => {
  it('drops a frame over maxFrame, reports the offset of the first byte too many, resyncs', () => {
    //                            0     1     2     3     4     5     6     7     8     9    10
    const stream = bytes(0xc0, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0xc0, 0xaa, 0xbb, 0xc0);
    const { decoder, events } = decodeAll(stream, { maxFrame: 4 });
    expect(describeEvents(events)).toEqual(['oversize@5', 'frame aabb']);
    expect(decoder.counters).toEqual({
      frames: 1,
      bytes: 2,
      unframed: 0,
      badEscape: 0,
      oversize: 1,
      truncated: 0,
    });
  });

  it('counts maxFrame in unstuffed bytes: maxFrame escaped ENDs pass, one more is dropped', () => {
    const fits = encodeSlip(new Uint8Array(4).fill(0xc0)); // c0 (db dc)x4 c0
    const over = encodeSlip(new Uint8Array(5).fill(0xc0)); // c0 (db dc)x5 c0
    expect(describeEvents(decodeAll(fits, { maxFrame: 4 }).events)).toEqual(['frame c0c0c0c0']);
    // The fifth END is revealed by its ESC_END byte at offset 1 + 4*2 + 1 = 10.
    expect(describeEvents(decodeAll(over, { maxFrame: 4 }).events)).toEqual(['oversize@10']);
  });

  it('the oversize frame does not swallow the next frame when split across pushes', () => {
    const decoder = new SlipDecoder({ maxFrame: 3 });
    const stream = concat([encodeSlip(bytes(1, 2, 3, 4, 5, 6, 7)), encodeSlip(bytes(8, 9))]);
    const events = decodeChunks(decoder, chunkBySizes(stream, [1]));
    expect(describeEvents(events)).toEqual(['oversize@4', 'frame 0809']);
  });

  it('uses DEFAULT_MAX_FRAME when none is given', () => {
    const decoder = new SlipDecoder();
    expect(decoder.maxFrame).toBe(DEFAULT_MAX_FRAME);
    const fits = new Uint8Array(DEFAULT_MAX_FRAME).fill(0x41);
    const over = new Uint8Array(DEFAULT_MAX_FRAME + 1).fill(0x41);
    const events = decoder.push(concat([encodeSlip(fits), encodeSlip(over)]));
    expect(events.map((e) => ('frame' in e ? e.frame.length : e.error.code))).toEqual([
      DEFAULT_MAX_FRAME,
      'oversize',
    ]);
  });

  it('rejects a maxFrame that is not a positive integer', () => {
    for (const maxFrame of [0, -1, 1.5, Number.NaN, Number.POSITIVE_INFINITY]) {
      expect(() => new SlipDecoder({ maxFrame })).toThrow(RangeError);
    }
  });

  it('memory bound: 1 MiB without a delimiter after END is one oversize, then it resyncs', () => {
    const maxFrame = 256;
    const decoder = new SlipDecoder({ maxFrame });
    const flood = new Uint8Array(1 << 20).fill(0x55);
    const events: FramingEvent[] = [...decoder.push(bytes(END))];
    // Half the flood in 4 KiB chunks, the other half in one push.
    const half = flood.length / 2;
    for (let i = 0; i < half; i += 4096) events.push(...decoder.push(flood.subarray(i, i + 4096)));
    events.push(...decoder.push(flood.subarray(half)));
    expect(describeEvents(events)).toEqual([`oversize@${1 + maxFrame}`]);
    expect(decoder.counters.oversize).toBe(1);
    expect(decoder.counters.frames).toBe(0);
    expect(decoder.position).toBe(1 + flood.length);

    expect(describeEvents(decoder.push(encodeSlip(bytes(0x01, 0x02))))).toEqual(['frame 0102']);
    expect(decoder.counters.oversize).toBe(1);
  });

  it('memory bound: a flood of valid escape pairs is also one oversize', () => {
    const decoder = new SlipDecoder({ maxFrame: 256 });
    const pairs = new Uint8Array(1 << 20);
    for (let i = 0; i < pairs.length; i += 2) pairs.set([ESC, ESC_END], i);
    const events = [...decoder.push(bytes(END)), ...decoder.push(pairs)];
    // The 257th pair's ESC_END is at 1 + 256*2 + 1.
    expect(describeEvents(events)).toEqual(['oversize@514']);
    expect(decoder.counters.oversize).toBe(1);
  });
});

describe('SlipDecoder: bad escape', () => {
  it('ESC + ordinary byte drops the frame and discards until the next END', () => {
    //                           0     1     2     3     4     5     6     7     8
    const stream = bytes(0xc0, 0x01, 0xdb, 0x02, 0x03, 0xc0, 0xaa, 0xc0);
    const { decoder, events } = decodeAll(stream);
    expect(describeEvents(events)).toEqual(['bad-escape@3', 'frame aa']);
    expect(decoder.counters.badEscape).toBe(1);
    expect(decoder.counters.frames).toBe(1);
  });

  it('bytes after a bad escape are discarded even if they look like escapes', () => {
    //                           0     1     2     3     4     5     6     7     8
    const stream = bytes(0xc0, 0x01, 0xdb, 0xdb, 0xdc, 0xdb, 0x00, 0xc0, 0xaa, 0xc0);
    const { decoder, events } = decodeAll(stream);
    expect(describeEvents(events)).toEqual(['bad-escape@3', 'frame aa']);
    expect(decoder.counters.badEscape).toBe(1);
  });

  it('ESC + END drops the frame and that END opens the next frame', () => {
    //                           0     1     2     3     4     5
    const stream = bytes(0xc0, 0x01, 0xdb, 0xc0, 0xaa, 0xc0);
    const { decoder, events } = decodeAll(stream);
    expect(describeEvents(events)).toEqual(['bad-escape@3', 'frame aa']);
    expect(decoder.counters.badEscape).toBe(1);
  });

  it('ESC + END at a chunk boundary behaves the same', () => {
    const decoder = new SlipDecoder();
    const events = decodeChunks(decoder, [bytes(0xc0, 0x01, 0xdb), bytes(0xc0), bytes(0xaa, 0xc0)]);
    expect(describeEvents(events)).toEqual(['bad-escape@3', 'frame aa']);
  });

  it('ESC as the first byte of a frame', () => {
    const { events } = decodeAll(bytes(0xc0, 0xdb, 0x41, 0xc0, 0x42, 0xc0));
    expect(describeEvents(events)).toEqual(['bad-escape@2', 'frame 42']);
  });

  it('each bad frame is counted', () => {
    const bad = bytes(0xc0, 0xdb, 0x00, 0xc0);
    const { decoder, events } = decodeAll(concat([bad, bad, bad, encodeSlip(bytes(7))]));
    expect(describeEvents(events)).toEqual([
      'bad-escape@2',
      'bad-escape@6',
      'bad-escape@10',
      'frame 07',
    ]);
    expect(decoder.counters.badEscape).toBe(3);
  });
});

describe('SlipDecoder: delimiters, unframed bytes and truncation', () => {
  it('back-to-back ENDs make no empty frames', () => {
    const { decoder, events } = decodeAll(bytes(0xc0, 0xc0, 0xc0, 0x41, 0xc0, 0xc0, 0xc0, 0x42, 0xc0));
    expect(describeEvents(events)).toEqual(['frame 41', 'frame 42']);
    expect(decoder.counters.frames).toBe(2);
  });

  it('an empty datagram encodes to END END and decodes to nothing', () => {
    const { events, decoder } = decodeAll(encodeSlip(new Uint8Array(0)));
    expect(events).toEqual([]);
    expect(decoder.counters.frames).toBe(0);
  });

  it('a frame needs no leading END after the previous frame', () => {
    const { events } = decodeAll(bytes(0xc0, 0x41, 0xc0, 0x42, 0xc0));
    expect(describeEvents(events)).toEqual(['frame 41', 'frame 42']);
  });

  it('stray bytes before the first END are one unframed error at the first stray byte', () => {
    const { decoder, events } = decodeAll(bytes(0x01, 0xdb, 0x02, 0x03, 0xc0, 0xaa, 0xc0));
    expect(describeEvents(events)).toEqual(['unframed@0', 'frame aa']);
    expect(decoder.counters.unframed).toBe(1);
  });

  it('a stray run split over many pushes is still reported once', () => {
    const decoder = new SlipDecoder();
    const stray = bytes(0x01, 0x02, 0x03, 0x04, 0x05);
    const events = decodeChunks(decoder, chunkBySizes(concat([stray, encodeSlip(bytes(0xaa))]), [1, 0]));
    expect(describeEvents(events)).toEqual(['unframed@0', 'frame aa']);
    expect(decoder.counters.unframed).toBe(1);
  });

  it('bytes between frames after sync are frames, not unframed noise', () => {
    const { events, decoder } = decodeAll(bytes(0xc0, 0x41, 0xc0, 0x42, 0x43, 0xc0));
    expect(describeEvents(events)).toEqual(['frame 41', 'frame 4243']);
    expect(decoder.counters.unframed).toBe(0);
  });

  it('synced: true treats the first bytes as a frame', () => {
    const { events } = decodeAll(bytes(0x41, 0x42, 0xc0), { synced: true });
    expect(describeEvents(events)).toEqual(['frame 4142']);
  });

  it('end() on an open frame reports truncated at the end of the stream', () => {
    const { decoder, events } = decodeAll(bytes(0xc0, 0x41, 0xc0, 0x01, 0x02));
    expect(describeEvents(events)).toEqual(['frame 41', 'truncated@5']);
    expect(decoder.counters.truncated).toBe(1);
  });

  it('end() right after an ESC reports truncated', () => {
    const { events } = decodeAll(bytes(0xc0, 0xdb));
    expect(describeEvents(events)).toEqual(['truncated@2']);
  });

  it('end() with nothing open reports nothing', () => {
    for (const stream of [bytes(), bytes(0xc0), bytes(0xc0, 0x41, 0xc0), bytes(0xc0, 0x41, 0xc0, 0xc0)]) {
      const { decoder, errors } = decodeAll(stream);
      expect(errors).toEqual([]);
      expect(decoder.counters.truncated).toBe(0);
    }
  });

  it('end() while discarding a bad frame reports nothing more', () => {
    const { events } = decodeAll(bytes(0xc0, 0xdb, 0x00, 0x01));
    expect(describeEvents(events)).toEqual(['bad-escape@2']);
  });

  it('after end() the decoder waits for a new END, and a new stray run counts again', () => {
    const decoder = new SlipDecoder();
    const events = decodeChunks(decoder, [bytes(0xc0, 0x41, 0xc0)]);
    events.push(...decodeChunks(decoder, [bytes(0x01, 0x02, 0xc0, 0x42, 0xc0)]));
    expect(describeEvents(events)).toEqual(['frame 41', 'unframed@3', 'frame 42']);
    expect(decoder.counters.unframed).toBe(1);
    expect(decoder.position).toBe(8);
  });
});

// ---------------------------------------------------------------------------------------------
// Decoder: robustness on arbitrary input
// ---------------------------------------------------------------------------------------------

describe('SlipDecoder: arbitrary byte streams', () => {
  const streamArb = biasedBytes({ maxLength: 200 });
  const maxFrameArb = fc.oneof(fc.integer({ min: 1, max: 16 }), fc.constant(DEFAULT_MAX_FRAME));

  it('property: never throws, frames fit, counters match the events', () => {
    fc.assert(
      fc.property(streamArb, maxFrameArb, chunkSizes, fc.boolean(), (stream, maxFrame, sizes, synced) => {
        const decoder = new SlipDecoder({ maxFrame, synced });
        const events = decodeChunks(decoder, chunkBySizes(stream, sizes));
        const frames = framesOf(events);
        const errors = errorsOf(events);
        const count = (code: string) => errors.filter((e) => e.code === code).length;

        for (const f of frames) {
          expect(f.length).toBeGreaterThan(0);
          expect(f.length).toBeLessThanOrEqual(maxFrame);
        }
        expect(decoder.counters).toEqual({
          frames: frames.length,
          bytes: frames.reduce((n, f) => n + f.length, 0),
          unframed: count('unframed'),
          badEscape: count('bad-escape'),
          oversize: count('oversize'),
          truncated: count('truncated'),
        });
        expect(count('unframed')).toBeLessThanOrEqual(1);
        expect(count('truncated')).toBeLessThanOrEqual(1);
        // Offsets are in the stream and in stream order.
        const offsets = errors.map((e) => e.offset);
        expect(offsets).toEqual([...offsets].sort((a, b) => a - b));
        for (const o of offsets) expect(o).toBeLessThanOrEqual(stream.length);
        expect(decoder.position).toBe(stream.length);
      }),
      { numRuns: 3000 },
    );
  });

  it('property: chunking never changes the events', () => {
    fc.assert(
      fc.property(streamArb, maxFrameArb, chunkSizes, (stream, maxFrame, sizes) => {
        const whole = decodeChunks(new SlipDecoder({ maxFrame }), [stream]);
        const chunked = decodeChunks(new SlipDecoder({ maxFrame }), chunkBySizes(stream, sizes));
        expect(describeEvents(chunked)).toEqual(describeEvents(whole));
      }),
      { numRuns: 2000 },
    );
  });

  it('property: the error offset points at the byte that revealed it', () => {
    fc.assert(
      fc.property(streamArb, maxFrameArb, (stream, maxFrame) => {
        for (const error of decodeAll(stream, { maxFrame }).errors) {
          const b = stream[error.offset];
          if (error.code === 'unframed') expect(b).not.toBe(END);
          if (error.code === 'bad-escape') {
            expect(stream[error.offset - 1]).toBe(ESC);
            expect(b === ESC_END || b === ESC_ESC).toBe(false);
          }
          if (error.code === 'oversize') expect(b).not.toBe(END);
          if (error.code === 'truncated') expect(error.offset).toBe(stream.length);
        }
      }),
      { numRuns: 1000 },
    );
  });
});

// ---------------------------------------------------------------------------------------------
// Cross-check against node-serialport's SLIP implementation
// ---------------------------------------------------------------------------------------------

describe('cross-check with @serialport/parser-slip-encoder', () => {
  const datagramsArb = fc.array(biasedBytes({ minLength: 0, maxLength: 40 }), { maxLength: 6 });

  it('property: our decoder reads SlipEncoder output (no leading END) when synced', async () => {
    await fc.assert(
      fc.asyncProperty(datagramsArb, chunkSizes, async (datagrams, sizes) => {
        const stream = concat(await runTransform(new SlipEncoder(), datagrams));
        const events = decodeChunks(new SlipDecoder({ synced: true }), chunkBySizes(stream, sizes));
        expect(errorsOf(events)).toEqual([]);
        expect(framesOf(events).map(hex)).toEqual(datagrams.filter((d) => d.length > 0).map(hex));
      }),
      { numRuns: 300 },
    );
  });

  it('an unsynced decoder drops SlipEncoder’s first datagram as unframed (no leading END)', async () => {
    const datagrams = [bytes(0x01, 0x02), bytes(0x03)];
    const stream = concat(await runTransform(new SlipEncoder(), datagrams));
    expect(describeEvents(decodeAll(stream).events)).toEqual(['unframed@0', 'frame 03']);
  });

  it('property: encodeSlip equals SlipEncoder with bluetoothQuirk (leading END)', async () => {
    await fc.assert(
      fc.asyncProperty(biasedBytes({ minLength: 1, maxLength: 64 }), async (datagram) => {
        const theirs = concat(await runTransform(new SlipEncoder({ bluetoothQuirk: true }), [datagram]));
        expect(hex(encodeSlip(datagram))).toBe(hex(theirs));
      }),
      { numRuns: 300 },
    );
  });

  it('property: our decoder reads SlipEncoder bluetoothQuirk output unsynced', async () => {
    await fc.assert(
      fc.asyncProperty(datagramsArb, chunkSizes, async (datagrams, sizes) => {
        const encoder = new SlipEncoder({ bluetoothQuirk: true });
        const stream = concat(await runTransform(encoder, datagrams));
        const events = decodeChunks(new SlipDecoder(), chunkBySizes(stream, sizes));
        expect(errorsOf(events)).toEqual([]);
        expect(framesOf(events).map(hex)).toEqual(datagrams.filter((d) => d.length > 0).map(hex));
      }),
      { numRuns: 300 },
    );
  });

  it('property: serialport’s SlipDecoder reads encodeSlip output', async () => {
    await fc.assert(
      fc.asyncProperty(datagramsArb, chunkSizes, async (datagrams, sizes) => {
        const stream = concat(datagrams.map(encodeSlip));
        const decoder = new SerialportSlipDecoder({ readableObjectMode: true });
        const out = await runTransform(decoder, chunkBySizes(stream, sizes).filter((c) => c.length > 0));
        // It emits an empty buffer for every empty END-to-END span; ours never does.
        expect(out.filter((b) => b.length > 0).map(hex)).toEqual(
          datagrams.filter((d) => d.length > 0).map(hex),
        );
      }),
      { numRuns: 300 },
    );
  });
});
