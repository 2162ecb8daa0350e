/** Shared by the Strokkur tests: messages, all chunks of a message, and an independent GF(2) rank. */
import { decodeChunk, type Chunk } from '../src/strokkur/chunk.js';
import { coefficientWords, rowCoefficients } from '../src/strokkur/code.js';
import { SendState, type SendOptions } from '../src/strokkur/send.js';
import { Prng } from '../src/link/prng.js';

export function message(size: number, seed = size): Uint8Array {
  const prng = new Prng(seed);
  const m = new Uint8Array(size);
  for (let i = 0; i < size; i++) m[i] = prng.nextU32() & 0xff;
  return m;
}

/** Every datagram of a message, in row order. */
export function allDatagrams(data: Uint8Array, options: SendOptions): Uint8Array[] {
  const s = new SendState(data, options);
  const out: Uint8Array[] = [];
  for (let d = s.next(); d !== undefined; d = s.next()) out.push(d);
  return out;
}

export function decoded(bytes: Uint8Array): Chunk {
  const d = decodeChunk(bytes);
  if (!d.ok) throw new Error(d.reason);
  return d.chunk;
}

/** The coefficient vector of a row as a bigint (bit j: source chunk j). */
export function rowVector(chunk: Chunk): bigint {
  const { k, index, seed } = chunk.header;
  if (index < k) return 1n << BigInt(index);
  const words = new Uint32Array(coefficientWords(k));
  rowCoefficients(seed, index, k, words);
  let v = 0n;
  for (let w = words.length - 1; w >= 0; w--) v = (v << 32n) | BigInt(words[w]!);
  return v;
}

/** An echelon basis over GF(2) of bigint bit vectors, keyed by lowest set bit; independent of receive.ts. */
export class Gf2Basis {
  private readonly rows = new Map<bigint, bigint>();
  /** Adds v; true when it was independent of the vectors before. */
  add(v: bigint): boolean {
    while (v !== 0n) {
      const low = v & -v;
      const b = this.rows.get(low);
      if (b === undefined) {
        this.rows.set(low, v);
        return true;
      }
      v ^= b;
    }
    return false;
  }
  get rank(): number {
    return this.rows.size;
  }
}

export function rank(vectors: bigint[]): number {
  const basis = new Gf2Basis();
  for (const v of vectors) basis.add(v);
  return basis.rank;
}

/** Fisher–Yates with a seeded generator. */
export function shuffle<T>(items: T[], prng: Prng): T[] {
  const a = items.slice();
  for (let i = a.length - 1; i > 0; i--) {
    const j = prng.int(i + 1);
    [a[i], a[j]] = [a[j]!, a[i]!];
  }
  return a;
}

export function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && Buffer.from(a).equals(Buffer.from(b));
}
