/**
 * The Strokkur erasure code, shared by the sender and the receiver: which source chunks each
 * redundant row sums (its coefficient bitmap, regenerated from (seed, index) so it never travels),
 * the XOR of payloads, and the message digest. Rules in SPEC.md beside this file.
 */
import { createHash, createHmac, getHashes } from 'node:crypto';
import { hmac } from '@noble/hashes/hmac.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { HASH_LENGTH } from './chunk.js';

/** The murmur3 finaliser: a bijection on u32 with full avalanche. */
export function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** Words of a k-bit coefficient vector (bit j of word j >> 5, weight 1 << (j & 31): source chunk j). */
export function coefficientWords(k: number): number {
  return (k + 31) >>> 5;
}

/**
 * Fills `out` (coefficientWords(k) words) with the coefficients of redundant row `index` (k ≤
 * index < rows): row k sums every source chunk (parity, so any one lost chunk is recovered); each
 * later row sums the source chunks whose bit is set in a pseudo-random bitmap, each bit set with
 * probability ½; a bitmap that comes out empty is replaced by the single chunk rowKey mod k.
 */
export function rowCoefficients(seed: number, index: number, k: number, out: Uint32Array): void {
  const words = coefficientWords(k);
  const tailBits = k & 31;
  const lastMask = tailBits === 0 ? 0xffffffff : ((1 << tailBits) - 1) >>> 0;
  if (index === k) {
    out.fill(0xffffffff, 0, words);
    out[words - 1] = lastMask;
    return;
  }
  const rowKey = fmix32((seed ^ Math.imul(index + 1, 0x9e3779b9)) >>> 0);
  let any = 0;
  for (let w = 0; w < words; w++) {
    let bits = fmix32((rowKey + Math.imul(w + 1, 0x85ebca6b)) >>> 0);
    if (w === words - 1) bits = (bits & lastMask) >>> 0;
    out[w] = bits;
    any |= bits;
  }
  if (any === 0) {
    const j = rowKey % k;
    out[j >>> 5] = (1 << (j & 31)) >>> 0;
  }
}

/** dst[0..n) ^= src[0..n). */
export function xorInto(dst: Uint32Array, src: Uint32Array, n: number): void {
  for (let i = 0; i < n; i++) dst[i]! ^= src[i]!;
}

/** dst[0..n) ^= a ^ b ^ c ^ d: one pass over dst for four sources. */
export function xorInto4(dst: Uint32Array, a: Uint32Array, b: Uint32Array, c: Uint32Array, d: Uint32Array, n: number): void {
  for (let i = 0; i < n; i++) dst[i]! ^= a[i]! ^ b[i]! ^ c[i]! ^ d[i]!;
}

/** dst ^= each of srcs[0..count), four at a time. */
export function xorAll(dst: Uint32Array, srcs: Uint32Array[], count: number, n: number): void {
  let i = 0;
  for (; i + 4 <= count; i += 4) xorInto4(dst, srcs[i]!, srcs[i + 1]!, srcs[i + 2]!, srcs[i + 3]!, n);
  for (; i < count; i++) xorInto(dst, srcs[i]!, n);
}

/** Incremental digest: SHA-256, or HMAC-SHA-256 with `key`. */
export interface Digest {
  update(bytes: Uint8Array): Digest;
  digest(): Uint8Array;
}

/**
 * The digest goes through Node's OpenSSL where it has SHA-256 (every Node ≥ 20): several times
 * noble's rate, which bounded a 4 MiB message's decode. noble (`@noble/hashes`) is the
 * implementation of record and the fallback; `MESHGW_HASH=noble` selects it. Both give the same
 * bytes (test/strokkur-core.test.ts).
 */
const NODE_HASH = process.env.MESHGW_HASH !== 'noble' && getHashes().includes('sha256');

/** A node:crypto hash as a Digest (its output as a Uint8Array view). */
function nodeDigest(h: ReturnType<typeof createHash>): Digest {
  const d: Digest = {
    update: (bytes) => {
      h.update(bytes);
      return d;
    },
    digest: () => {
      const b = h.digest();
      return new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
    },
  };
  return d;
}

export function createDigest(key?: Uint8Array, impl: 'node' | 'noble' = NODE_HASH ? 'node' : 'noble'): Digest {
  if (impl === 'node') return nodeDigest(key === undefined ? createHash('sha256') : (createHmac('sha256', key) as unknown as ReturnType<typeof createHash>));
  return key === undefined ? sha256.create() : hmac.create(sha256, key);
}

export function digestOf(message: Uint8Array, key?: Uint8Array, impl: 'node' | 'noble' = NODE_HASH ? 'node' : 'noble'): Uint8Array {
  if (impl === 'node') return createDigest(key, 'node').update(message).digest();
  return key === undefined ? sha256(message) : hmac(sha256, key, message);
}

/** Equality of two digests, in time independent of where they differ. */
export function digestsEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== HASH_LENGTH || b.length !== HASH_LENGTH) return false;
  let diff = 0;
  for (let i = 0; i < HASH_LENGTH; i++) diff |= a[i]! ^ b[i]!;
  return diff === 0;
}
