/**
 * The SHA-3 digests (byte 1's S bit): the header bits on the wire, keyed SHA3-256's exact input
 * (SPEC.md's vector, cross-checked against noble on bytes built here and against `openssl dgst`
 * where it is installed), node:crypto and noble agreeing, every digest round-tripping through
 * SendState/ReceiveState and the Receiver, wrong keys and a flipped S bit failing, reserved bits
 * dropped, the facade's option, and MESHGW_HASH=noble.
 */
import { execFileSync } from 'node:child_process';
import { describe, expect, it, vi } from 'vitest';
import fc from 'fast-check';
import { sha3_256 } from '@noble/hashes/sha3.js';
import { HASH_LENGTH, decodeChunk, encodeChunk, type Chunk, type ChunkHeader, type DigestAlgorithm } from '../src/strokkur/chunk.js';
import { KEYED_SHA3_LABEL, createDigest, defaultDigestImpl, digestOf, keyedSha3Prefix } from '../src/strokkur/code.js';
import { ReceiveState, Receiver, type ReceiverEvent } from '../src/strokkur/receive.js';
import { SendState } from '../src/strokkur/send.js';
import { Strokkur, type StrokkurTransport } from '../src/strokkur/strokkur.js';
import { allDatagrams, decoded, message } from './strokkur-helpers.js';

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const ascii = (s: string): Uint8Array => new TextEncoder().encode(s);
const delivered = (events: ReceiverEvent[]): Uint8Array[] => events.flatMap((e) => ('message' in e ? [e.message.bytes] : []));
const MODES: Array<{ digest: DigestAlgorithm; keyed: boolean; byte1: number }> = [
  { digest: 'sha256', keyed: false, byte1: 0x10 },
  { digest: 'sha256', keyed: true, byte1: 0x11 },
  { digest: 'sha3-256', keyed: false, byte1: 0x12 },
  { digest: 'sha3-256', keyed: true, byte1: 0x13 },
];
const KEY = ascii('a preshared secret of 32 bytes!!');

function feed(chunks: Chunk[]): ReceiveState {
  const state = ReceiveState.fromChunk(chunks[0]!);
  for (const c of chunks.slice(1)) state.addChunk(c);
  return state;
}

describe('keyed SHA3-256', () => {
  const key = Uint8Array.from({ length: 32 }, (_, i) => i);
  const abc = ascii('abc');

  it("hashes label ‖ u16 BE key length ‖ key ‖ message: SPEC.md's vector, against noble on bytes built here", () => {
    expect(KEYED_SHA3_LABEL).toBe('strokkur-keyed-sha3-256-v1');
    const input = Uint8Array.from([...ascii('strokkur-keyed-sha3-256-v1'), 0x00, 0x20, ...key, ...abc]);
    expect(hex(keyedSha3Prefix(key))).toBe(hex(input.subarray(0, input.length - 3)));
    const vector = 'ba8b63b53a4aeefe7404c0df6cbad31f8a8874026ec8e2f01a74629102863c04';
    expect(hex(sha3_256(input))).toBe(vector);
    expect(hex(digestOf(abc, key, 'node', 'sha3-256'))).toBe(vector);
    expect(hex(digestOf(abc, key, 'noble', 'sha3-256'))).toBe(vector);
    // Unkeyed: FIPS 202's SHA3-256("abc").
    expect(hex(digestOf(abc, undefined, 'node', 'sha3-256'))).toBe('3a985da74fe225b2045c172d6bd390bd855f086e3e9d525b46bfe24511431532');
    expect(hex(digestOf(abc, undefined, 'noble', 'sha3-256'))).toBe('3a985da74fe225b2045c172d6bd390bd855f086e3e9d525b46bfe24511431532');
  });

  it('agrees with openssl dgst -sha3-256 on the prefixed bytes (where openssl is installed)', () => {
    const input = Buffer.from([...keyedSha3Prefix(key), ...abc]);
    let out: string;
    try {
      out = execFileSync('openssl', ['dgst', '-sha3-256', '-r'], { input, encoding: 'utf8' });
    } catch {
      return; // no openssl with SHA-3 here: the noble cross-check above stands
    }
    expect(out.split(/\s/)[0]).toBe(hex(digestOf(abc, key, undefined, 'sha3-256')));
  });

  it('the key length is part of the input: keys that are prefixes of each other, or differ only in length, give other digests', () => {
    const m = ascii('message');
    const a = hex(digestOf(m, Uint8Array.of(1, 2), undefined, 'sha3-256'));
    const b = hex(digestOf(m, Uint8Array.of(1, 2, 0x6d), undefined, 'sha3-256'));
    const c = hex(digestOf(ascii('essage'), Uint8Array.of(1, 2, 0x6d), undefined, 'sha3-256'));
    expect(new Set([a, b, c, hex(digestOf(m, undefined, undefined, 'sha3-256'))]).size).toBe(4);
    expect(() => keyedSha3Prefix(new Uint8Array(0))).toThrow(RangeError);
    expect(() => keyedSha3Prefix(new Uint8Array(0x10000))).toThrow(RangeError);
    expect(keyedSha3Prefix(new Uint8Array(0xffff)).length).toBe(26 + 2 + 0xffff);
  });

  it('node:crypto and noble give the same SHA3-256 and keyed SHA3-256, whole and incremental (fast-check)', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 3000 }), fc.option(fc.uint8Array({ minLength: 1, maxLength: 300 }), { nil: undefined }), fc.nat(3000), (data, k, cut) => {
        const a = digestOf(data, k, 'node', 'sha3-256');
        const b = digestOf(data, k, 'noble', 'sha3-256');
        expect(hex(a)).toBe(hex(b));
        expect(a.length).toBe(HASH_LENGTH);
        const at = Math.min(cut, data.length);
        expect(hex(createDigest(k, 'node', 'sha3-256').update(data.subarray(0, at)).update(data.subarray(at)).digest())).toBe(hex(b));
        expect(hex(createDigest(k, 'noble', 'sha3-256').update(data.subarray(0, at)).update(data.subarray(at)).digest())).toBe(hex(b));
        // Never the SHA-256 family's bytes.
        expect(hex(a)).not.toBe(hex(digestOf(data, k, 'node', 'sha256')));
      }),
      { numRuns: 200 },
    );
  });
});

describe('the S bit on the wire', () => {
  const header = (over: Partial<ChunkHeader> = {}): ChunkHeader => ({
    uuid: new Uint8Array(16).fill(7),
    messageSize: 100,
    k: 3,
    chunkSize: 48,
    rows: 6,
    index: 4,
    seed: 1,
    keyed: false,
    ...over,
  });

  it('byte 1 is 0x10, 0x11, 0x12, 0x13 for the four digests; decoding gives the digest back (absent for SHA-256)', () => {
    for (const m of MODES) {
      const bytes = encodeChunk({ header: header({ keyed: m.keyed, digest: m.digest }), payload: new Uint8Array(48) });
      expect(bytes[1]).toBe(m.byte1);
      const d = decodeChunk(bytes);
      expect(d.ok).toBe(true);
      if (!d.ok) continue;
      expect(d.chunk.header.keyed).toBe(m.keyed);
      expect(d.chunk.header.digest ?? 'sha256').toBe(m.digest);
      expect('digest' in d.chunk.header).toBe(m.digest !== 'sha256');
    }
    expect(() => encodeChunk({ header: header({ digest: 'md5' as DigestAlgorithm }), payload: new Uint8Array(48) })).toThrow(RangeError);
  });

  it('SendState sets the bit only for SHA-3, and the coded data is message ‖ SHA3-256(message) ‖ zeros', () => {
    const data = message(70);
    const plain = allDatagrams(data, { chunkSize: 40, redundancy: 1 });
    expect(plain.every((d) => d[1] === 0x10)).toBe(true);
    const chunks = allDatagrams(data, { chunkSize: 40, redundancy: 1, digest: 'sha3-256' });
    expect(chunks.every((d) => d[1] === 0x12)).toBe(true);
    expect(allDatagrams(data, { chunkSize: 40, redundancy: 1, digest: 'sha3-256', key: KEY }).every((d) => d[1] === 0x13)).toBe(true);
    const cs = chunks.map(decoded);
    const coded = new Uint8Array(cs[0]!.header.k * 40);
    for (let j = 0; j < cs[0]!.header.k; j++) coded.set(cs[j]!.payload, j * 40);
    expect(hex(coded.subarray(0, 70))).toBe(hex(data));
    expect(hex(coded.subarray(70, 70 + HASH_LENGTH))).toBe(hex(sha3_256(data)));
    expect(coded.subarray(70 + HASH_LENGTH).every((b) => b === 0)).toBe(true);
    expect(() => new SendState(data, { chunkSize: 40, redundancy: 1, digest: 'sha512' as DigestAlgorithm })).toThrow(RangeError);
    expect(() => new SendState(data, { chunkSize: 40, redundancy: 1, digest: 'sha3-256', key: new Uint8Array(0x10000) })).toThrow(RangeError);
  });
});

describe('every digest round-trips', () => {
  it('through ReceiveState, with a lost source made good by a redundant row; wrong or missing keys fail', () => {
    for (const m of MODES) {
      for (const cs of [64, 101]) {
        const data = message(3000, cs);
        const key = m.keyed ? KEY : undefined;
        const chunks = allDatagrams(data, { chunkSize: cs, redundancy: 2, digest: m.digest, ...(key ? { key } : {}) }).map(decoded);
        const k = chunks[0]!.header.k;
        const state = feed([...chunks.slice(0, 5), ...chunks.slice(6, k), chunks[k]!]);
        expect(state.ready).toBe(true);
        expect(state.digest).toBe(m.digest);
        const out = new Uint8Array(data.length);
        if (m.keyed) {
          expect(state.extract(out, ascii('another preshared secret'))).toBe(-1);
          expect(state.extract(out)).toBe(-1);
          expect(out.every((b) => b === 0)).toBe(true);
        } else expect(state.extract(out, KEY)).toBe(-1);
        expect(state.extract(out, key)).toBe(data.length);
        expect(hex(out)).toBe(hex(data));
        expect(hex(state.messageView(key)!)).toBe(hex(data));
      }
    }
  });

  it('through the Receiver: keyed modes with its key, unkeyed without; another key is a checksum failure', () => {
    for (const m of MODES) {
      const data = message(5000, 3);
      const key = m.keyed ? KEY : undefined;
      const ds = allDatagrams(data, { chunkSize: 200, redundancy: 3, digest: m.digest, ...(key ? { key } : {}) });
      const rx = new Receiver(key ? { key } : {});
      expect(delivered(ds.filter((_, i) => i !== 2).flatMap((d) => rx.push('s', d)))).toEqual([data]);
      expect(rx.counters.messages).toBe(1);
      if (m.keyed) {
        const wrong = new Receiver({ key: ascii('the wrong preshared secret!!!!!!') });
        for (const d of ds) wrong.push('s', d);
        expect(wrong.counters.checksumFailures).toBe(1);
        expect(wrong.counters.messages).toBe(0);
      }
    }
  });
});

describe('a wrong S bit', () => {
  it('flipped in every chunk: the message decodes, and fails its digest check (never delivered)', () => {
    for (const [digest, keyed] of [['sha256', false], ['sha3-256', false], ['sha256', true], ['sha3-256', true]] as const) {
      const data = message(2000, 9);
      const key = keyed ? KEY : undefined;
      const ds = allDatagrams(data, { chunkSize: 128, redundancy: 2, digest, ...(key ? { key } : {}) }).map((d) => {
        const b = d.slice();
        b[1]! ^= 0x02;
        return b;
      });
      const rx = new Receiver(key ? { key } : {});
      const events = ds.flatMap((d) => rx.push('s', d));
      expect(delivered(events)).toEqual([]);
      expect(rx.counters.checksumFailures).toBe(1);
      expect(rx.counters.malformed).toBe(0);
    }
  });

  it('flipped in one chunk: that chunk contradicts its message and is dropped as malformed; the message still arrives', () => {
    const data = message(2000, 10);
    const ds = allDatagrams(data, { chunkSize: 128, redundancy: 3, digest: 'sha3-256' });
    const bad = ds[4]!.slice();
    bad[1] = 0x10;
    const rx = new Receiver();
    const got = [ds[0]!, bad, ...ds.slice(1)].flatMap((d) => rx.push('s', d));
    expect(rx.counters.malformed).toBe(1);
    expect(delivered(got)).toEqual([data]);
  });

  it('reserved bits 3..2 are dropped, whatever the digest', () => {
    const ds = allDatagrams(message(500, 1), { chunkSize: 100, redundancy: 1, digest: 'sha3-256' });
    const rx = new Receiver();
    for (const bit of [0x04, 0x08]) {
      for (const d of ds) {
        const b = d.slice();
        b[1]! |= bit;
        rx.push('s', b);
      }
    }
    expect(rx.counters.malformed).toBe(2 * ds.length);
    expect(rx.states).toBe(0);
    expect(rx.counters.messages).toBe(0);
  });
});

describe('Strokkur: the digest option', () => {
  /** Two facades joined in memory. */
  function pair(options: ConstructorParameters<typeof Strokkur<string>>[1] = {}) {
    const handlers: Record<string, (src: string, b: Uint8Array) => void> = {};
    const sent: Uint8Array[] = [];
    const transport = (me: string): StrokkurTransport<string> => ({
      send: (dst, bytes) => {
        sent.push(bytes);
        handlers[dst]?.(me, bytes);
        return true;
      },
      onDatagram: (h) => {
        handlers[me] = h;
      },
      key: (a) => a,
      mtu: () => 600,
    });
    const a = new Strokkur(transport('a'), options);
    const b = new Strokkur(transport('b'), { ...(options.key ? { key: options.key } : {}) });
    const got: Uint8Array[] = [];
    b.on('message', (_from, bytes) => got.push(bytes));
    return { a, b, got, sent };
  }

  it('default SHA-256; StrokkurOptions.digest and a send option choose SHA3-256; the receiver takes either', async () => {
    const { a, got, sent } = pair();
    const data = message(3000, 5);
    await a.send('b', data, { redundancy: 1 });
    expect(sent.every((d) => d[1] === 0x10)).toBe(true);
    sent.length = 0;
    await a.send('b', data, { redundancy: 1, digest: 'sha3-256' });
    expect(sent.every((d) => d[1] === 0x12)).toBe(true);
    expect(got).toEqual([data, data]);
    const keyed = pair({ key: KEY, digest: 'sha3-256' });
    await keyed.a.send('b', data, { redundancy: 0 });
    expect(keyed.sent.every((d) => d[1] === 0x13)).toBe(true);
    await keyed.a.send('b', data, { redundancy: 0, digest: 'sha256' });
    expect(keyed.sent.at(-1)![1]).toBe(0x11);
    expect(keyed.got).toEqual([data, data]);
  });

  it('an unknown digest: the constructor throws, a send rejects', async () => {
    expect(() => pair({ digest: 'sha1' as DigestAlgorithm })).toThrow(RangeError);
    const { a } = pair();
    await expect(a.send('b', message(10), { digest: 'md5' as DigestAlgorithm })).rejects.toThrow(/digest/);
    expect(a.counters.sendFailures).toBe(1);
  });
});

describe('MESHGW_HASH', () => {
  it('node:crypto by default where it has the algorithm; noble for both with MESHGW_HASH=noble', async () => {
    expect(defaultDigestImpl('sha256')).toBe('node');
    expect(defaultDigestImpl('sha3-256')).toBe('node');
    vi.stubEnv('MESHGW_HASH', 'noble');
    vi.resetModules();
    try {
      const code = await import('../src/strokkur/code.js');
      expect(code.defaultDigestImpl('sha256')).toBe('noble');
      expect(code.defaultDigestImpl('sha3-256')).toBe('noble');
      // And the bytes are the same either way.
      const m = message(1000, 2);
      expect(hex(code.digestOf(m, KEY, undefined, 'sha3-256'))).toBe(hex(digestOf(m, KEY, 'node', 'sha3-256')));
    } finally {
      vi.unstubAllEnvs();
      vi.resetModules();
    }
  });
});
