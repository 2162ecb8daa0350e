/**
 * Messi framing (src/messi/framing.ts): both header versions byte for byte against hand-made
 * frames as Messi peers send them, version detection by the first byte, streaming over random
 * TCP chunking, the frame cap (oversize: no body buffered) and random input.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  CurrentType,
  DEFAULT_MAX_FRAME,
  MessiFrameDecoder,
  SeedType,
  encodeFrame,
  encodeKind,
  frameKind,
  frameType,
  type MessiFrameEvent,
  type MessiVersion,
} from '../src/messi/framing.js';

const hex = (s: string): Uint8Array => Uint8Array.from(Buffer.from(s.replace(/\s+/g, ''), 'hex'));
const toHex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const framesOf = (events: MessiFrameEvent[]) =>
  events.flatMap((e) => ('frame' in e ? [{ type: e.frame.type, payload: toHex(e.frame.payload) }] : []));

function chunked(data: Uint8Array, sizes: number[]): Uint8Array[] {
  const out: Uint8Array[] = [];
  let i = 0;
  let k = 0;
  while (i < data.length) {
    const n = Math.max(1, sizes.length === 0 ? data.length : sizes[k++ % sizes.length]!);
    out.push(data.subarray(i, i + n));
    i += n;
  }
  return out;
}

describe('wire: hand-made frames as Messi peers send them', () => {
  it('current version: 1-byte type, 3-byte big-endian size', () => {
    // A 0.29 client's ping, and the server's pong: type 3 / 4, size 0.
    expect(toHex(encodeKind('current', 'ping'))).toBe('03000000');
    expect(toHex(encodeKind('current', 'pong'))).toBe('04000000');
    // ClientToServer { connect_req { user: "Eric" } } = 0a 06 0a 04 45 72 69 63
    const payload = hex('0a060a0445726963');
    expect(toHex(encodeKind('current', 'client-to-server', payload))).toBe('01000008' + '0a060a0445726963');
    expect(toHex(encodeKind('current', 'server-to-client', hex('0a00')))).toBe('020000020a00');
    // Size is 24 bits big-endian: 0x012345 bytes.
    expect(toHex(encodeFrame('current', 2, new Uint8Array(0x012345)).subarray(0, 4))).toBe('02012345');
  });

  it('seed version: 4-byte big-endian type, 4-byte big-endian size', () => {
    expect(toHex(encodeKind('seed', 'ping'))).toBe('0000000200000000');
    expect(toHex(encodeKind('seed', 'pong'))).toBe('0000000300000000');
    expect(toHex(encodeKind('seed', 'client-to-server', hex('0a00')))).toBe('00000001000000020a00');
    expect(toHex(encodeKind('seed', 'server-to-client', hex('0a00')))).toBe('00000001000000020a00');
  });

  it('type numbers of each version', () => {
    expect(CurrentType).toEqual({ CLIENT_TO_SERVER_USER: 1, SERVER_TO_CLIENT_USER: 2, PING: 3, PONG: 4 });
    expect(SeedType).toEqual({ USER: 1, PING: 2, PONG: 3 });
    expect(frameType('current', 'client-to-server')).toBe(1);
    expect(frameType('current', 'server-to-client')).toBe(2);
    expect(frameType('seed', 'server-to-client')).toBe(1);
    expect(frameKind('current', 3, 'to-server')).toBe('ping');
    expect(frameKind('current', 4, 'to-client')).toBe('pong');
    expect(frameKind('current', 2, 'to-server')).toBeUndefined();
    expect(frameKind('current', 1, 'to-client')).toBeUndefined();
    expect(frameKind('seed', 1, 'to-client')).toBe('server-to-client');
    expect(frameKind('seed', 1, 'to-server')).toBe('client-to-server');
    expect(frameKind('seed', 2, 'to-server')).toBe('ping');
    expect(frameKind('seed', 3, 'to-client')).toBe('pong');
    expect(frameKind('seed', 4, 'to-client')).toBeUndefined();
  });

  it('decodes a Messi 0.29 byte stream: ping, user message, ping', () => {
    const d = new MessiFrameDecoder({ version: 'current' });
    const events = d.push(hex('03000000 01000008 0a060a0445726963 03000000'));
    expect(framesOf(events)).toEqual([
      { type: 3, payload: '' },
      { type: 1, payload: '0a060a0445726963' },
      { type: 3, payload: '' },
    ]);
    expect(events.map((e) => ('frame' in e ? e.offset : -1))).toEqual([0, 4, 16]);
  });

  it('auto mode: a first byte 0 means the seed header, anything else the current one', () => {
    const seed = new MessiFrameDecoder({ version: 'auto' });
    expect(seed.version).toBeUndefined();
    expect(framesOf(seed.push(hex('00000002 00000000 00000001 00000002 0a00')))).toEqual([
      { type: 2, payload: '' },
      { type: 1, payload: '0a00' },
    ]);
    expect(seed.version).toBe('seed');
    const current = new MessiFrameDecoder({ version: 'auto' });
    expect(framesOf(current.push(hex('03000000')))).toEqual([{ type: 3, payload: '' }]);
    expect(current.version).toBe('current');
    // The seed decision survives chunking down to the first byte alone.
    const one = new MessiFrameDecoder({ version: 'auto' });
    expect(one.push(hex('00'))).toEqual([]);
    expect(one.version).toBe('seed');
    expect(framesOf(one.push(hex('00000200000000')))).toEqual([{ type: 2, payload: '' }]);
  });
});

describe('streaming and properties', () => {
  const frameArb = fc.record({
    type: fc.integer({ min: 1, max: 255 }),
    payload: fc.uint8Array({ maxLength: 300 }),
  });

  for (const version of ['current', 'seed'] as MessiVersion[]) {
    it(`${version}: random frames over random TCP chunking decode to the same frames`, () => {
      fc.assert(
        fc.property(
          fc.array(frameArb, { maxLength: 20 }),
          fc.array(fc.integer({ min: 1, max: 40 }), { maxLength: 10 }),
          fc.boolean(),
          (frames, sizes, auto) => {
            const wire = Buffer.concat(frames.map((f) => encodeFrame(version, f.type, f.payload)));
            const d = new MessiFrameDecoder({ version: auto ? 'auto' : version, maxFrame: 300 });
            const events = chunked(wire, sizes).flatMap((c) => d.push(c));
            expect(framesOf(events)).toEqual(frames.map((f) => ({ type: f.type, payload: toHex(f.payload) })));
            expect(d.end()).toEqual([]);
            expect(d.buffered).toBe(0);
            expect(d.position).toBe(wire.length);
            if (auto && frames.length > 0) expect(d.version).toBe(version);
          },
        ),
      );
    });
  }

  it('a partial frame waits across reads, then completes', () => {
    const d = new MessiFrameDecoder();
    const wire = encodeFrame('current', 2, hex('0a0412026869'));
    expect(d.push(wire.subarray(0, 2))).toEqual([]);
    expect(d.push(wire.subarray(2, 5))).toEqual([]);
    expect(d.buffered).toBe(5);
    expect(framesOf(d.push(wire.subarray(5)))).toEqual([{ type: 2, payload: '0a0412026869' }]);
  });

  it('end() inside a frame is a typed truncated error with the frame offset', () => {
    const d = new MessiFrameDecoder();
    d.push(hex('03000000 0100000a 0a0b'));
    const [e] = d.end();
    expect(e).toMatchObject({ error: { code: 'truncated', offset: 4, size: 6 } });
  });
});

describe('the frame cap', () => {
  it('defaults to 64 KiB; a size field one above is oversize at once, without the body', () => {
    expect(DEFAULT_MAX_FRAME).toBe(65536);
    const ok = new MessiFrameDecoder();
    expect(ok.push(hex('02010000'))).toEqual([]); // 65536: fits, waits for its body
    const d = new MessiFrameDecoder();
    const events = d.push(hex('03000000 02010001'));
    expect(framesOf(events)).toEqual([{ type: 3, payload: '' }]);
    const err = events[1];
    expect(err).toMatchObject({ error: { code: 'oversize', offset: 4, size: 65537, maxFrame: 65536 } });
    expect(err && 'error' in err && err.error.reason).toMatch(/65537.*65536/);
    expect(d.failed).toBe(true);
    expect(d.buffered).toBe(0);
    // Nothing more is read from a failed stream.
    expect(d.push(new Uint8Array(1000))).toEqual([]);
  });

  it('seed version: a 4 GiB size field is refused from the header alone', () => {
    const d = new MessiFrameDecoder({ version: 'auto', maxFrame: 1024 });
    const events = d.push(hex('00000001 ffffffff'));
    expect(events).toMatchObject([{ error: { code: 'oversize', offset: 0, size: 0xffffffff } }]);
  });

  it('fuzz: random bytes never throw, memory stays within header + cap', () => {
    fc.assert(
      fc.property(
        fc.array(fc.uint8Array({ maxLength: 200 }), { maxLength: 20 }),
        fc.constantFrom<'auto' | MessiVersion>('auto', 'seed', 'current'),
        fc.integer({ min: 0, max: 512 }),
        (chunks, version, maxFrame) => {
          const d = new MessiFrameDecoder({ version, maxFrame });
          for (const c of chunks) {
            const events = d.push(c);
            for (const e of events) {
              if ('error' in e) expect(e.error.code).toBe('oversize');
              else expect(e.frame.payload.length).toBeLessThanOrEqual(maxFrame);
            }
            expect(d.buffered).toBeLessThanOrEqual(8 + maxFrame);
          }
          for (const e of d.end()) expect('error' in e && e.error.code).toBe('truncated');
        },
      ),
      { numRuns: 300 },
    );
  });

  it('encodeFrame refuses what the header cannot carry', () => {
    expect(() => encodeFrame('current', 256)).toThrow(RangeError);
    expect(() => encodeFrame('current', 1, new Uint8Array(0x1000000))).toThrow(RangeError);
    expect(() => encodeFrame('seed', -1)).toThrow(RangeError);
  });
});
