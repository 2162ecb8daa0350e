/**
 * ReceiveState's two places for slots: a slot per chunk for a message's first ⌈k/32⌉ independent
 * chunks, then one store of k slots. Elimination across the move (redundant rows before sources,
 * pivots moving, duplicates) stays exact against an independent rank; the accounting is what is
 * held; the message comes out as a view for aligned and unaligned chunk sizes.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { ReceiveState, Receiver } from '../src/strokkur/receive.js';
import { Prng } from '../src/link/prng.js';
import { Gf2Basis, allDatagrams, decoded, equalBytes, message, rowVector, shuffle } from './strokkur-helpers.js';

describe('slots before and after the store', () => {
  it('status is k − rank for any order across the move to the store, and full rank gives the message (fast-check)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 33, max: 300 }),
        fc.constantFrom(4, 5, 8, 13, 16),
        fc.integer({ min: 0, max: 40 }),
        fc.integer({ min: 1, max: 0xffffffff }),
        fc.boolean(),
        (k, cs, r, seed, redundantFirst) => {
          const size = k * cs - 32 - (seed % cs);
          if (size < 1) return;
          const data = message(size, seed);
          const chunks = allDatagrams(data, { chunkSize: cs, redundancy: r, seed }).map(decoded);
          const kk = chunks[0]!.header.k;
          const prng = new Prng(seed);
          let order = shuffle(chunks, prng).filter(() => prng.next() < 0.9);
          if (redundantFirst) order = [...order.filter((c) => c.header.index >= kk), ...order.filter((c) => c.header.index < kk)];
          order = [...order, ...order.slice(0, 5)]; // duplicates
          const basis = new Gf2Basis();
          let state: ReceiveState | undefined;
          const stride = Math.ceil(cs / 4) * 4;
          for (const c of order) {
            const independent = basis.add(rowVector(c));
            if (state === undefined) state = ReceiveState.fromChunk(c);
            else {
              const res = state.addChunk(c);
              expect(res.status).toBe(kk - basis.rank);
              expect(res.recycled === undefined).toBe(independent);
            }
            expect(state.needed).toBe(kk - basis.rank);
            // What is held, never less: before the store one slot per independent chunk; after, k.
            if (state.independent < Math.ceil(kk / 32)) expect(state.bufferedBytes).toBeLessThanOrEqual(state.independent * stride + 1024 * 4 * Math.ceil(kk / 32) + 4 * Math.ceil(kk / 32));
            expect(state.bufferedBytes).toBeGreaterThanOrEqual(Math.min(state.independent, kk) * stride);
          }
          if (state!.ready) {
            const view = state!.messageView();
            expect(view).toBeDefined();
            expect(equalBytes(view!, data)).toBe(true);
            const out = new Uint8Array(size);
            expect(state!.extract(out)).toBe(size);
            expect(equalBytes(out, data)).toBe(true);
          } else expect(state!.messageView()).toBeUndefined();
        },
      ),
      { numRuns: 150 },
    );
  });

  it('a state that stays below ⌈k/32⌉ chunks holds one slot per chunk, not the whole message', () => {
    const data = message(200 * 100 - 32, 3); // k = 200: the store comes with the 7th independent chunk
    const chunks = allDatagrams(data, { chunkSize: 100, redundancy: 4, seed: 3 }).map(decoded);
    const state = ReceiveState.fromChunk(chunks[0]!);
    const bitmap = Math.ceil(200 / 32) * 4;
    for (let i = 1; i < 6; i++) state.addChunk(chunks[i]!);
    expect(state.bufferedBytes).toBe(6 * 100 + bitmap);
    expect(state.nextChunkBytes(chunks[6]!.header)).toBe(194 * 100);
    state.addChunk(chunks[6]!);
    expect(state.bufferedBytes).toBe(200 * 100 + bitmap);
    expect(state.nextChunkBytes(chunks[7]!.header)).toBe(0);
    expect(state.nextChunkBytes(chunks[200]!.header)).toBe(2 * bitmap); // its coefficients and its pending sources
  });

  it('a source arriving after a redundant row that pivots on it, before and after the store', () => {
    for (const cs of [100, 101]) {
      const data = message(100 * cs - 32, cs);
      const chunks = allDatagrams(data, { chunkSize: cs, redundancy: 6, seed: 9 }).map(decoded);
      const k = chunks[0]!.header.k;
      // Redundant rows first (pivots on the lowest columns), then every source: each source displaces a pivot.
      const order = [...chunks.slice(k, k + 5), ...chunks.slice(0, k)];
      const state = ReceiveState.fromChunk(order[0]!);
      for (const c of order.slice(1)) state.addChunk(c);
      expect(state.ready).toBe(true);
      expect(equalBytes(state.messageView()!, data)).toBe(true);
    }
  });

  it('owed sources summed at full rank, four rows at a time: 1 to 41 lost sources of 512 (groups of 4 and their remainders)', () => {
    for (const lost of [1, 2, 3, 4, 5, 6, 9, 41]) {
      for (const cs of [16, 18]) {
        const data = message(512 * cs - 32, lost * 100 + cs);
        const chunks = allDatagrams(data, { chunkSize: cs, redundancy: 60, seed: lost }).map(decoded);
        const gone = new Set(Array.from({ length: lost }, (_, i) => Math.floor(((i + 0.5) * 512) / lost)));
        const order = [...chunks.slice(0, 512).filter((_, i) => !gone.has(i)), ...chunks.slice(512)];
        const state = ReceiveState.fromChunk(order[0]!);
        for (const c of order.slice(1)) if (state.addChunk(c).status === 0) break;
        expect(state.ready, `${lost} lost, chunk size ${cs}`).toBe(true);
        expect(equalBytes(state.messageView()!, data), `${lost} lost, chunk size ${cs}`).toBe(true);
      }
    }
  });

  it('the Receiver delivers the view and holds nothing afterwards', () => {
    const data = message(300 * 64 - 40, 4);
    const rx = new Receiver();
    const ds = allDatagrams(data, { chunkSize: 64, redundancy: 8, seed: 4 }).filter((_, i) => i >= 300 || i % 50 !== 7); // six sources lost, nine redundant rows
    const got = ds.flatMap((d) => rx.push('s', d)).flatMap((e) => ('message' in e ? [e.message.bytes] : []));
    expect(got.length).toBe(1);
    expect(equalBytes(got[0]!, data)).toBe(true);
    expect(rx.bufferedBytes).toBe(0);
    expect(rx.states).toBe(0);
  });
});
