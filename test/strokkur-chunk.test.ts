/**
 * The chunk wire format (byte for byte, as SPEC.md draws it), its validation, decodeChunk never
 * throwing on random or mutated bytes, the row generator's published vector, SendState's checks,
 * and the seed's functional interface.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  CHUNK_OVERHEAD,
  MAX_MESSAGE,
  STROKKUR_MAGIC,
  chunkSizeFor,
  decodeChunk,
  encodeChunk,
  type Chunk,
  type ChunkHeader,
} from '../src/strokkur/chunk.js';
import { rowCoefficients } from '../src/strokkur/code.js';
import { SendState } from '../src/strokkur/send.js';
import { addChunk, extract, pump, ready, recvInit, sendDeinit, sendInit, sendInitialised, type RecvHolder, type SendHolder } from '../src/strokkur/seed.js';
import { allDatagrams, message } from './strokkur-helpers.js';

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const uuid = Uint8Array.from({ length: 16 }, (_, i) => 0xa0 + i);
const header = (over: Partial<ChunkHeader> = {}): ChunkHeader => ({
  uuid,
  messageSize: 100,
  k: 3,
  chunkSize: 48,
  rows: 6,
  index: 4,
  seed: 0x01020304,
  keyed: false,
  ...over,
});

describe('wire format', () => {
  it('encodes the header as SPEC.md draws it', () => {
    const bytes = encodeChunk({ header: header({ keyed: true }), payload: new Uint8Array(48).fill(0xee) });
    expect(bytes.length).toBe(CHUNK_OVERHEAD + 48);
    expect(CHUNK_OVERHEAD).toBe(31);
    expect(hex(bytes.subarray(0, CHUNK_OVERHEAD))).toBe(
      '73' + '11' + 'a0a1a2a3a4a5a6a7a8a9aaabacadaeaf' + '000064' + '0030' + '0006' + '0004' + '01020304',
    );
    expect(bytes[0]).toBe(STROKKUR_MAGIC);
    expect(STROKKUR_MAGIC >>> 4).not.toBe(0);
    expect(STROKKUR_MAGIC >>> 4).not.toBe(5);
    const d = decodeChunk(bytes);
    expect(d.ok).toBe(true);
    if (d.ok) {
      expect(d.chunk.header).toEqual(header({ keyed: true }));
      expect(d.chunk.payload).toEqual(new Uint8Array(48).fill(0xee));
    }
  });

  it('round-trips every valid header (fast-check)', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 16, maxLength: 16 }),
        fc.integer({ min: 1, max: MAX_MESSAGE }),
        fc.integer({ min: 65, max: 2000 }),
        fc.integer({ min: 0, max: 1023 }),
        fc.nat(),
        fc.integer({ min: 0, max: 0xffffffff }),
        fc.boolean(),
        (id, messageSize, chunkSize, r, at, seed, keyed) => {
          const k = Math.ceil((messageSize + 32) / chunkSize);
          const rows = Math.min(0xffff, k + 1 + r);
          const h: ChunkHeader = { uuid: id, messageSize, k, chunkSize, rows, index: at % rows, seed, keyed };
          const payload = Uint8Array.from({ length: chunkSize }, (_, i) => i);
          const d = decodeChunk(encodeChunk({ header: h, payload }));
          expect(d.ok && d.chunk.header).toEqual(h);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('rejects each malformed field with a reason', () => {
    const good = encodeChunk({ header: header(), payload: new Uint8Array(48) });
    const bad = (mutate: (b: Uint8Array) => Uint8Array): string => {
      const d = decodeChunk(mutate(good.slice()));
      expect(d.ok).toBe(false);
      return d.ok ? '' : d.reason;
    };
    expect(bad((b) => b.subarray(0, 20))).toMatch(/shorter/);
    expect(bad((b) => b.subarray(0, b.length - 1))).toMatch(/payload bytes/);
    expect(bad((b) => Uint8Array.of(...b, 0))).toMatch(/payload bytes/);
    expect(bad((b) => ((b[0] = 0x51), b))).toMatch(/magic/);
    expect(bad((b) => ((b[1] = 0x21), b))).toMatch(/version/);
    // Bits 3..2 of byte 1 are reserved (bit 1, S, is the SHA-3 digest since; bit 0, K, keyed).
    for (const b1 of [0x14, 0x18, 0x1c, 0x16, 0x1f]) expect(bad((b) => ((b[1] = b1), b))).toMatch(/reserved/);
    expect(bad((b) => ((b[18] = 0), (b[19] = 0), (b[20] = 0), b))).toMatch(/message size/);
    expect(bad((b) => ((b[18] = 0x40), (b[20] = 1), b))).toMatch(/message size/);
    expect(bad((b) => ((b[21] = 0), (b[22] = 0), b))).toMatch(/chunk size 0/);
    expect(bad((b) => ((b[23] = 0), (b[24] = 3), b))).toMatch(/below k \+ 1/);
    expect(bad((b) => ((b[23] = 0x04), (b[24] = 0x05), b))).toMatch(/redundant rows/);
    expect(bad((b) => ((b[25] = 0), (b[26] = 6), b))).toMatch(/index/);
  });

  it('encodeChunk throws RangeError for what cannot be valid', () => {
    const p = new Uint8Array(48);
    expect(() => encodeChunk({ header: header({ k: 4 }), payload: p })).toThrow(RangeError);
    expect(() => encodeChunk({ header: header({ index: 6 }), payload: p })).toThrow(RangeError);
    expect(() => encodeChunk({ header: header({ uuid: new Uint8Array(15) }), payload: p })).toThrow(RangeError);
    expect(() => encodeChunk({ header: header({ seed: -1 }), payload: p })).toThrow(RangeError);
    expect(() => encodeChunk({ header: header(), payload: new Uint8Array(47) })).toThrow(RangeError);
  });

  it('decodeChunk never throws on random bytes or on mutations of valid chunks (fast-check)', () => {
    const valid = allDatagrams(message(300), { chunkSize: 64, redundancy: 2, seed: 1 });
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (b) => {
        const d = decodeChunk(b);
        expect(typeof d.ok).toBe('boolean');
        if (b.length > 0) {
          b[0] = STROKKUR_MAGIC;
          decodeChunk(b);
        }
      }),
      { numRuns: 2000 },
    );
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: valid.length - 1 }),
        fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 6 }),
        fc.integer({ min: -5, max: 5 }),
        (which, edits, lengthChange) => {
          let b = valid[which]!.slice();
          for (const [at, v] of edits) b[at % b.length] = v;
          if (lengthChange < 0) b = b.subarray(0, b.length + lengthChange);
          else if (lengthChange > 0) b = Uint8Array.of(...b, ...new Uint8Array(lengthChange));
          const d = decodeChunk(b);
          if (d.ok) expect(d.chunk.payload.length).toBe(d.chunk.header.chunkSize);
        },
      ),
      { numRuns: 2000 },
    );
    expect(decodeChunk(undefined as unknown as Uint8Array).ok).toBe(false);
  });

  it('chunkSizeFor leaves room for the header', () => {
    expect(chunkSizeFor(1472)).toBe(1472 - CHUNK_OVERHEAD);
    expect(chunkSizeFor(CHUNK_OVERHEAD + 1)).toBe(1);
    expect(chunkSizeFor(100_000)).toBe(0xffff);
    expect(() => chunkSizeFor(CHUNK_OVERHEAD)).toThrow(RangeError);
  });
});

describe('row coefficients', () => {
  it('match the vector published in SPEC.md', () => {
    const out = new Uint32Array(2);
    rowCoefficients(0x01020304, 41, 40, out);
    expect([...out].map((w) => w.toString(16).padStart(8, '0'))).toEqual(['ec7119cf', '00000085']);
    rowCoefficients(0x01020304, 40, 40, out);
    expect([...out].map((w) => w.toString(16))).toEqual(['ffffffff', 'ff']);
  });

  it('an empty bitmap is replaced by one chunk (k = 1: every redundant row is the message)', () => {
    const out = new Uint32Array(1);
    for (let r = 1; r < 200; r++) {
      rowCoefficients(7, r, 1, out);
      expect(out[0]).toBe(1);
    }
  });
});

describe('SendState', () => {
  it('throws RangeError for empty or oversized data and bad options', () => {
    const ok = { chunkSize: 100, redundancy: 2 };
    expect(() => new SendState(new Uint8Array(0), ok)).toThrow(RangeError);
    expect(() => new SendState(new Uint8Array(MAX_MESSAGE + 1), ok)).toThrow(RangeError);
    expect(() => new SendState(new Uint8Array(10), { chunkSize: 0, redundancy: 0 })).toThrow(RangeError);
    expect(() => new SendState(new Uint8Array(10), { chunkSize: 65536, redundancy: 0 })).toThrow(RangeError);
    expect(() => new SendState(new Uint8Array(10), { chunkSize: 10, redundancy: -1 })).toThrow(RangeError);
    expect(() => new SendState(new Uint8Array(10), { chunkSize: 10, redundancy: 1024 })).toThrow(RangeError);
    expect(() => new SendState(new Uint8Array(10), { chunkSize: 10, redundancy: 1.5 })).toThrow(RangeError);
    expect(() => new SendState(new Uint8Array(MAX_MESSAGE), { chunkSize: 64, redundancy: 0 })).toThrow(/rows/);
    expect(() => new SendState(new Uint8Array(10), { ...ok, uuid: new Uint8Array(3) })).toThrow(RangeError);
    expect(() => new SendState(new Uint8Array(10), { ...ok, key: new Uint8Array(0) })).toThrow(RangeError);
    expect(() => new SendState(new Uint8Array(10), { ...ok, seed: 2 ** 32 })).toThrow(RangeError);
  });

  it('produces k + 1 + R rows, then undefined; remaining and done follow', () => {
    const s = new SendState(message(1000), { chunkSize: 100, redundancy: 3 });
    expect(s.k).toBe(11);
    expect(s.rows).toBe(15);
    expect(s.uuid.length).toBe(16);
    let n = 0;
    while (!s.done) {
      expect(s.remaining).toBe(15 - n);
      expect(s.next()).toBeDefined();
      n++;
    }
    expect(n).toBe(15);
    expect(s.next()).toBeUndefined();
    expect(s.remaining).toBe(0);
  });

  it('a random source makes uuid and seed deterministic; without one they differ per message', () => {
    const mk = (): SendState => {
      let x = 0;
      return new SendState(message(10), { chunkSize: 50, redundancy: 0, random: () => ((x = (x * 16807 + 7) % 2147483647) / 2147483647) });
    };
    expect(mk().uuid).toEqual(mk().uuid);
    expect(mk().seed).toBe(mk().seed);
    const a = new SendState(message(10), { chunkSize: 50, redundancy: 0 });
    const b = new SendState(message(10), { chunkSize: 50, redundancy: 0 });
    expect(a.uuid).not.toEqual(b.uuid);
    expect(a.uuid[6]! >>> 4).toBe(4);
  });
});

describe('the seed interface', () => {
  it('sendInit / pump over a transport that sometimes refuses; recvInit / addChunk / ready / extract', () => {
    const sent: Uint8Array[] = [];
    let calls = 0;
    const transport = {
      mtu: 100,
      send: (dst: string, bytes: Uint8Array): boolean => {
        expect(dst).toBe('peer');
        if (++calls % 3 === 0) return false; // backpressure: offered again on the next pump
        sent.push(bytes);
        return true;
      },
    };
    const holder: SendHolder = {};
    expect(sendInitialised(holder)).toBe(false);
    expect(pump(holder)).toBe(-1);
    expect(sendInit(holder, transport, 'peer', new Uint8Array(0), 2)).toBeLessThan(0);
    const data = message(1000, 5);
    expect(sendInit(holder, transport, 'peer', data, 2)).toBe(0);
    expect(sendInitialised(holder)).toBe(true);
    let r: number;
    let pumps = 0;
    while ((r = pump(holder)) === 1) pumps++;
    expect(r).toBe(0);
    expect(pump(holder)).toBe(0);
    const k = Math.ceil(1032 / (100 - CHUNK_OVERHEAD));
    expect(sent.length).toBe(k + 3);
    expect(pumps).toBeGreaterThan(sent.length - 1);
    sendDeinit(holder);
    expect(sendInitialised(holder)).toBe(false);

    const rx: RecvHolder = {};
    expect(addChunk(rx, sent[1]!).status).toBeLessThan(0);
    expect(recvInit(rx, new Uint8Array(5))).toBeLessThan(0);
    expect(recvInit(rx, sent[1]!)).toBe(0);
    expect(addChunk(rx, sent[1]!).recycled).toBeDefined();
    expect(extract(rx, new Uint8Array(0))).toBe(-2);
    let status = 1;
    for (const d of sent.slice(2)) status = addChunk(rx, d).status;
    expect(status).toBe(0);
    expect(ready(rx)).toBe(true);
    const out = new Uint8Array(extract(rx, new Uint8Array(0)));
    expect(extract(rx, out)).toBe(1000);
    expect(out).toEqual(data);
  });

  it('chunks as objects work too', () => {
    const chunks = allDatagrams(message(50), { chunkSize: 100, redundancy: 0 });
    const d = decodeChunk(chunks[0]!);
    const rx: RecvHolder = {};
    expect(recvInit(rx, (d as { chunk: Chunk }).chunk)).toBe(0);
    expect(ready(rx)).toBe(true);
  });
});
