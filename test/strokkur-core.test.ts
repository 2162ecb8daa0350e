/**
 * Strokkur's code: every loss pattern of up to R+1 chunks for small k decodes exactly when the
 * surviving rows have rank k (checked with an independent rank), random loss with reordering
 * and duplicates, a corrupted chunk never delivers, keyed mode, message sizes at the edges and
 * 4 MiB, and the redundant rows are the XOR sums their coefficients say.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { HASH_LENGTH, MAX_MESSAGE, type Chunk } from '../src/strokkur/chunk.js';
import { coefficientWords, createDigest, digestOf, rowCoefficients } from '../src/strokkur/code.js';
import { ReceiveState } from '../src/strokkur/receive.js';
import { SendState } from '../src/strokkur/send.js';
import { Prng } from '../src/link/prng.js';
import { Gf2Basis, allDatagrams, decoded, equalBytes, message, rank, rowVector, shuffle } from './strokkur-helpers.js';

/** Feeds chunks to a fresh state; returns the state and the last status. */
function feed(chunks: Chunk[]): { state: ReceiveState; status: number } {
  const state = ReceiveState.fromChunk(chunks[0]!);
  let status = state.needed;
  for (const c of chunks.slice(1)) status = state.addChunk(c).status;
  return { state, status };
}

function extracted(state: ReceiveState, key?: Uint8Array): Uint8Array | number {
  const size = state.extract(new Uint8Array(0), key);
  if (size < 0) return size;
  const out = new Uint8Array(size);
  expect(state.extract(out, key)).toBe(size);
  return out;
}

function* subsets(n: number, maxSize: number, start = 0, chosen: number[] = []): Generator<number[]> {
  yield chosen;
  if (chosen.length === maxSize) return;
  for (let i = start; i < n; i++) yield* subsets(n, maxSize, i + 1, [...chosen, i]);
}

describe('the message digest: node:crypto and noble', () => {
  it('give the same SHA-256 and HMAC-SHA-256, whole and incremental, on random inputs', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 3000 }), fc.option(fc.uint8Array({ minLength: 1, maxLength: 80 }), { nil: undefined }), fc.integer({ min: 0, max: 3000 }), (data, key, cut) => {
        const a = digestOf(data, key, 'node');
        const b = digestOf(data, key, 'noble');
        expect(Buffer.from(a).toString('hex')).toBe(Buffer.from(b).toString('hex'));
        expect(a.length).toBe(HASH_LENGTH);
        const at = Math.min(cut, data.length);
        const inc = createDigest(key, 'node').update(data.subarray(0, at)).update(data.subarray(at)).digest();
        expect(Buffer.from(inc).toString('hex')).toBe(Buffer.from(b).toString('hex'));
      }),
      { numRuns: 300 },
    );
    // FIPS 180-2's "abc".
    expect(Buffer.from(digestOf(Uint8Array.from(Buffer.from('abc')), undefined, 'node')).toString('hex')).toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
  });
});

describe('redundant rows', () => {
  it('each redundant payload is the XOR of the source chunks its coefficients select; row k is the parity of all', () => {
    for (const [size, cs] of [[1, 33], [100, 7], [1000, 64], [5000, 1021]] as const) {
      const chunks = allDatagrams(message(size), { chunkSize: cs, redundancy: 5, seed: 77 }).map(decoded);
      const k = chunks[0]!.header.k;
      for (const c of chunks.slice(k)) {
        const words = new Uint32Array(coefficientWords(k));
        rowCoefficients(77, c.header.index, k, words);
        const sum = new Uint8Array(cs);
        let selected = 0;
        for (let j = 0; j < k; j++) {
          if ((words[j >>> 5]! >>> (j & 31)) & 1) {
            selected++;
            for (let b = 0; b < cs; b++) sum[b]! ^= chunks[j]!.payload[b]!;
          }
        }
        expect(selected).toBeGreaterThan(0);
        if (c.header.index === k) expect(selected).toBe(k);
        expect(equalBytes(sum, c.payload)).toBe(true);
      }
    }
  });

  it('the coded data is message ‖ SHA-256(message) ‖ zeros, in the source chunks as they are', async () => {
    const { sha256 } = await import('@noble/hashes/sha2.js');
    const data = message(70);
    const chunks = allDatagrams(data, { chunkSize: 40, redundancy: 0 }).map(decoded);
    const coded = new Uint8Array(chunks[0]!.header.k * 40);
    for (let j = 0; j < chunks[0]!.header.k; j++) coded.set(chunks[j]!.payload, j * 40);
    expect(equalBytes(coded.subarray(0, 70), data)).toBe(true);
    expect(equalBytes(coded.subarray(70, 70 + HASH_LENGTH), sha256(data))).toBe(true);
    expect(coded.subarray(70 + HASH_LENGTH).every((b) => b === 0)).toBe(true);
  });

  it('each source chunk is in about half of the random rows', () => {
    const k = 64;
    const words = new Uint32Array(coefficientWords(k));
    const counts = new Array<number>(k).fill(0);
    const rowsN = 1000;
    for (let r = k + 1; r < k + 1 + rowsN; r++) {
      rowCoefficients(12345, r, k, words);
      for (let j = 0; j < k; j++) counts[j]! += (words[j >>> 5]! >>> (j & 31)) & 1;
    }
    for (const c of counts) expect(Math.abs(c / rowsN - 0.5)).toBeLessThan(0.07);
  });
});

describe('every loss pattern of up to R+1 chunks (k 1..8, R 0..3)', () => {
  it('decodes exactly when the surviving rows have rank k, in any order; otherwise reports how many are missing', () => {
    const cs = 40;
    let patterns = 0;
    let undecodable = 0;
    const prng = new Prng(99);
    for (let k = 1; k <= 8; k++) {
      for (let R = 0; R <= 3; R++) {
        for (const seed of [1, 0xdeadbeef, 4242]) {
          const size = k * cs - HASH_LENGTH - (k % 3);
          if (size < 1) continue;
          const data = message(size, k * 100 + R);
          const chunks = allDatagrams(data, { chunkSize: cs, redundancy: R, seed }).map(decoded);
          expect(chunks[0]!.header.k).toBe(k);
          const n = chunks.length;
          expect(n).toBe(k + 1 + R);
          for (const lost of subsets(n, R + 1)) {
            const survivors = chunks.filter((_, i) => !lost.includes(i));
            const expectedRank = rank(survivors.map(rowVector));
            const { state, status } = feed(shuffle(survivors, prng));
            patterns++;
            expect(status).toBe(k - expectedRank);
            if (expectedRank === k) {
              expect(state.ready).toBe(true);
              expect(extracted(state)).toEqual(data);
            } else {
              undecodable++;
              expect(state.ready).toBe(false);
              expect(state.extract(new Uint8Array(8))).toBe(-2);
            }
            if (lost.length === 1) expect(state.ready).toBe(true); // the parity row covers any one loss
          }
        }
      }
    }
    expect(patterns).toBeGreaterThan(10_000);
    expect(undecodable).toBeGreaterThan(0); // some patterns are genuinely undecodable
  });
});

describe('random loss, reordering and duplicates', () => {
  it('status is always k − rank(received), and full rank decodes to the original (fast-check)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 3000 }),
        fc.integer({ min: 1, max: 200 }),
        fc.integer({ min: 0, max: 24 }),
        fc.double({ min: 0, max: 0.5, noNaN: true }),
        fc.integer({ min: 0, max: 0xffffffff }),
        fc.integer(),
        (size, kTarget, R, loss, seed, order) => {
          const cs = Math.ceil((size + HASH_LENGTH) / kTarget);
          const data = message(size, seed);
          const chunks = allDatagrams(data, { chunkSize: cs, redundancy: R, seed }).map(decoded);
          const prng = new Prng(order);
          const survivors = chunks.filter(() => prng.next() >= loss);
          if (survivors.length === 0) return;
          // Duplicates: some chunks twice, at random places.
          const withDuplicates = [...survivors, ...survivors.filter(() => prng.next() < 0.2)];
          const shuffled = shuffle(withDuplicates, prng);
          const k = chunks[0]!.header.k;
          const state = ReceiveState.fromChunk(shuffled[0]!);
          const basis = new Gf2Basis();
          basis.add(rowVector(shuffled[0]!));
          for (const c of shuffled.slice(1)) {
            const independent = basis.add(rowVector(c));
            const r = state.addChunk(c);
            expect(r.status).toBe(k - basis.rank);
            expect(r.recycled === undefined).toBe(independent);
            if (r.recycled !== undefined) expect(r.recycled).toBe(c);
          }
          if (state.ready) expect(extracted(state)).toEqual(data);
          else expect(state.needed).toBe(k - basis.rank);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('a repeated chunk comes back recycled and changes nothing', () => {
    const chunks = allDatagrams(message(500), { chunkSize: 64, redundancy: 3, seed: 5 }).map(decoded);
    const state = ReceiveState.fromChunk(chunks[2]!);
    const again = state.addChunk(chunks[2]!);
    expect(again.recycled).toBe(chunks[2]);
    expect(again.status).toBe(state.k - 1);
    const bytes = state.bufferedBytes;
    expect(state.addChunk(chunks[2]!).recycled).toBe(chunks[2]);
    expect(state.bufferedBytes).toBe(bytes);
    // A redundant row twice: the second is dependent.
    const r = chunks[state.k + 1]!;
    expect(state.addChunk(r).recycled).toBeUndefined();
    expect(state.addChunk(r).recycled).toBe(r);
  });

  it('chunks of another message are refused with a negative status', () => {
    const a = allDatagrams(message(500), { chunkSize: 64, redundancy: 1, seed: 5 }).map(decoded);
    const b = allDatagrams(message(500), { chunkSize: 64, redundancy: 1, seed: 6 }).map(decoded);
    const state = ReceiveState.fromChunk(a[0]!);
    expect(state.addChunk(b[1]!).status).toBeLessThan(0);
    const wrongLength: Chunk = { header: a[1]!.header, payload: new Uint8Array(10) };
    expect(state.addChunk(wrongLength).status).toBeLessThan(0);
  });

  it('sources arriving after redundant rows that already pivot on them: still exact', () => {
    // Redundant rows first, then the sources in reverse: exercises the pivot-replacement path.
    for (const seed of [1, 2, 3, 4, 5]) {
      const data = message(2000, seed);
      const chunks = allDatagrams(data, { chunkSize: 50, redundancy: 12, seed }).map(decoded);
      const k = chunks[0]!.header.k;
      const order = [...chunks.slice(k), ...chunks.slice(0, k).reverse()];
      const state = ReceiveState.fromChunk(order[0]!);
      const basis = new Gf2Basis();
      basis.add(rowVector(order[0]!));
      for (const c of order.slice(1)) {
        basis.add(rowVector(c));
        expect(state.addChunk(c).status).toBe(k - basis.rank);
      }
      expect(extracted(state)).toEqual(data);
    }
  });
});

describe('the checksum', () => {
  it('a corrupted payload in any chunk used for decoding is a checksum failure: -1, nothing written', () => {
    const data = message(3000, 8);
    const chunks = allDatagrams(data, { chunkSize: 128, redundancy: 4, seed: 8 }).map(decoded);
    const k = chunks[0]!.header.k;
    // Lose source 3, decode with a redundant row; corrupt each used chunk in turn.
    const used = [...chunks.slice(0, 3), ...chunks.slice(4, k), chunks[k]!];
    for (let victim = 0; victim < used.length; victim++) {
      const corrupted = used.map((c, i) => {
        if (i !== victim) return c;
        const payload = c.payload.slice();
        payload[(victim * 37) % payload.length]! ^= 0x20;
        return { header: c.header, payload };
      });
      const { state } = feed(corrupted);
      expect(state.ready).toBe(true);
      const buf = new Uint8Array(data.length);
      expect(state.extract(buf)).toBe(-1);
      expect(buf.every((b) => b === 0)).toBe(true);
      expect(state.extract(new Uint8Array(0))).toBe(-1);
    }
  });

  it('a corrupted zero padding fails too', () => {
    const data = message(10, 3);
    const chunks = allDatagrams(data, { chunkSize: 64, redundancy: 0 }).map(decoded);
    const payload = chunks[0]!.payload.slice();
    payload[63] = 1;
    const { state } = feed([{ header: chunks[0]!.header, payload }]);
    expect(state.extract(new Uint8Array(10))).toBe(-1);
  });

  it('keyed mode: the right key delivers; a wrong key, no key, or a key for an unkeyed message fail', () => {
    const key = new TextEncoder().encode('preshared secret');
    const data = message(1000, 4);
    const chunks = allDatagrams(data, { chunkSize: 100, redundancy: 2, key }).map(decoded);
    expect(chunks.every((c) => c.header.keyed)).toBe(true);
    const { state } = feed(chunks.slice(1));
    expect(state.extract(new Uint8Array(0), new TextEncoder().encode('another secret'))).toBe(-1);
    expect(state.extract(new Uint8Array(0))).toBe(-1);
    expect(extracted(state, key)).toEqual(data);
    const plain = feed(allDatagrams(data, { chunkSize: 100, redundancy: 0 }).map(decoded)).state;
    expect(plain.extract(new Uint8Array(0), key)).toBe(-1);
    expect(extracted(plain)).toEqual(data);
  });
});

describe('message sizes', () => {
  const cs = 256;
  it.each([
    ['1 byte', 1],
    ['exactly chunkSize', cs],
    ['chunkSize + 1', cs + 1],
    ['chunkSize − digest (digest fills the chunk)', cs - HASH_LENGTH],
    ['chunkSize − digest + 1 (digest straddles)', cs - HASH_LENGTH + 1],
  ])('%s', (_name, size) => {
    const data = message(size, size);
    const chunks = allDatagrams(data, { chunkSize: cs, redundancy: 1, seed: size }).map(decoded);
    expect(chunks[0]!.header.k).toBe(Math.ceil((size + HASH_LENGTH) / cs));
    // All sources, then decode again with the first source lost.
    expect(extracted(feed(chunks).state)).toEqual(data);
    const { state } = feed(chunks.slice(1));
    expect(state.ready).toBe(true);
    expect(extracted(state)).toEqual(data);
    // A short buffer receives the start, the size is still returned.
    const part = new Uint8Array(Math.max(0, size - 1));
    expect(state.extract(part)).toBe(size);
    expect(part).toEqual(data.subarray(0, part.length));
  });

  it('digests that span several chunks (chunkSize 1 and 7)', () => {
    for (const cs of [1, 7]) {
      const data = message(20, cs);
      const chunks = allDatagrams(data, { chunkSize: cs, redundancy: 3, seed: cs }).map(decoded);
      expect(extracted(feed([...chunks.slice(0, 4), ...chunks.slice(5)]).state)).toEqual(data);
    }
  });

  it('unaligned data and odd chunk sizes encode the same bytes as aligned data', () => {
    const data = message(5000, 11);
    const backing = new Uint8Array(5003);
    backing.set(data, 3);
    const unaligned = backing.subarray(3, 5003);
    for (const cs of [100, 101]) {
      const a = allDatagrams(data, { chunkSize: cs, redundancy: 4, seed: 1, uuid: new Uint8Array(16) });
      const b = allDatagrams(unaligned, { chunkSize: cs, redundancy: 4, seed: 1, uuid: new Uint8Array(16) });
      expect(b).toEqual(a);
    }
  });

  it('4 MiB with three lost source chunks', () => {
    const data = message(MAX_MESSAGE, 4);
    const sender = new SendState(data, { chunkSize: 1024, redundancy: 8, seed: 4 });
    expect(sender.k).toBe(Math.ceil((MAX_MESSAGE + HASH_LENGTH) / 1024));
    let state: ReceiveState | undefined;
    let status = -1;
    for (let d = sender.next(); d !== undefined; d = sender.next()) {
      const c = decoded(d);
      if ([0, 1000, sender.k - 1].includes(c.header.index)) continue;
      if (state === undefined) state = ReceiveState.fromChunk(c);
      else status = state.addChunk(c).status;
      if (status === 0) break;
    }
    expect(status).toBe(0);
    const out = new Uint8Array(MAX_MESSAGE);
    expect(state!.extract(out)).toBe(MAX_MESSAGE);
    expect(equalBytes(out, data)).toBe(true);
    // Memory: the slots (k chunks) plus a bitmap; the coefficient vectors are gone at full rank.
    expect(state!.bufferedBytes).toBeLessThanOrEqual(sender.k * 1024 + sender.k / 8 + 4);
  });
});
