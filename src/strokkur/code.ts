/**
 * The Strokkur erasure code, shared by the sender and the receiver: which source chunks each
 * redundant row sums (its coefficient bitmap, regenerated from (seed, index) so it never travels),
 * the XOR of payloads, and the message digest. Rules in SPEC.md beside this file.
 */
import { createHash, createHmac, getHashes } from 'node:crypto';
import { hmac } from '@noble/hashes/hmac.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { sha3_256 } from '@noble/hashes/sha3.js';
import { HASH_LENGTH, type DigestAlgorithm } from './chunk.js';

export type { DigestAlgorithm } from './chunk.js';

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

/** dst[d .. d+n) ^= src[s .. s+n) (word offsets; dst and src may be one array, the ranges apart). */
export function xorAt(dst: Uint32Array, d: number, src: Uint32Array, s: number, n: number): void {
  for (let i = 0; i < n; i++) dst[d + i]! ^= src[s + i]!;
}

/**
 * dst[d .. d+n) ^= the XOR of src[offsets[i] .. offsets[i]+n) for i < count: the hot loop of both
 * directions, eight sources per pass over dst (then four, then one). One source array at word
 * offsets (V8 keeps one base and one bounds check: twice the rate of as many separate arrays);
 * dst may be that array, its range apart from every source's.
 */
export function xorGather(dst: Uint32Array, d: number, src: Uint32Array, offsets: ArrayLike<number>, count: number, n: number): void {
  let i = 0;
  for (; i + 8 <= count; i += 8) {
    const a = offsets[i]!, b = offsets[i + 1]!, c = offsets[i + 2]!, e = offsets[i + 3]!;
    const f = offsets[i + 4]!, g = offsets[i + 5]!, h = offsets[i + 6]!, j = offsets[i + 7]!;
    for (let w = 0; w < n; w++) {
      dst[d + w]! ^= src[a + w]! ^ src[b + w]! ^ src[c + w]! ^ src[e + w]! ^ src[f + w]! ^ src[g + w]! ^ src[h + w]! ^ src[j + w]!;
    }
  }
  for (; i + 4 <= count; i += 4) {
    const a = offsets[i]!, b = offsets[i + 1]!, c = offsets[i + 2]!, e = offsets[i + 3]!;
    for (let w = 0; w < n; w++) dst[d + w]! ^= src[a + w]! ^ src[b + w]! ^ src[c + w]! ^ src[e + w]!;
  }
  for (; i < count; i++) xorAt(dst, d, src, offsets[i]!, n);
}

/** Incremental digest: SHA-256, HMAC-SHA-256, SHA3-256 or keyed SHA3-256 (keyedSha3Prefix). */
export interface Digest {
  update(bytes: Uint8Array): Digest;
  digest(): Uint8Array;
}

/** The digests a message may carry (byte 1's S bit: SHA-3 family). */
export const DIGEST_ALGORITHMS: readonly DigestAlgorithm[] = ['sha256', 'sha3-256'];

export function isDigestAlgorithm(v: unknown): v is DigestAlgorithm {
  return v === 'sha256' || v === 'sha3-256';
}

/**
 * The domain label of keyed SHA3-256 (SPEC.md, "The coded data"). Not NIST KMAC (SP 800-185 is
 * cSHAKE-based and absent from node:crypto): the prefix-key MAC that SHA-3's sponge allows, as
 * SHA3-256(label ‖ u16 BE key length ‖ key ‖ message). The label is fixed and the key length
 * explicit, so (key, message) ↦ input is injective.
 */
export const KEYED_SHA3_LABEL = 'strokkur-keyed-sha3-256-v1';
const KEYED_SHA3_LABEL_BYTES = new TextEncoder().encode(KEYED_SHA3_LABEL);
/** Longest key of keyed SHA3-256 (its length is a u16). */
export const MAX_SHA3_KEY = 0xffff;

/** label ‖ u16 BE key length ‖ key: what keyed SHA3-256 hashes before the message. Throws RangeError for an empty or longer key. */
export function keyedSha3Prefix(key: Uint8Array): Uint8Array {
  if (key.length < 1 || key.length > MAX_SHA3_KEY) throw new RangeError(`keyed SHA3-256 takes a key of 1..${MAX_SHA3_KEY} bytes, got ${key.length}`);
  const l = KEYED_SHA3_LABEL_BYTES.length;
  const out = new Uint8Array(l + 2 + key.length);
  out.set(KEYED_SHA3_LABEL_BYTES, 0);
  out[l] = key.length >>> 8;
  out[l + 1] = key.length & 0xff;
  out.set(key, l + 2);
  return out;
}

/**
 * The digest goes through Node's OpenSSL where it has the algorithm (SHA-256 and SHA3-256 in
 * every Node ≥ 20): several times noble's rate, which bounded a 4 MiB message's decode. noble
 * (`@noble/hashes`) is the implementation of record and the fallback; `MESHGW_HASH=noble`
 * selects it for both. Both give the same bytes (test/strokkur-core.test.ts).
 */
const NOBLE_ONLY = process.env.MESHGW_HASH === 'noble';
const NODE_HAS = ((hashes: string[]) => ({ sha256: hashes.includes('sha256'), 'sha3-256': hashes.includes('sha3-256') }))(getHashes());

/** The implementation used when none is asked for: node:crypto where it has the algorithm, unless MESHGW_HASH=noble. */
export function defaultDigestImpl(algorithm: DigestAlgorithm = 'sha256'): 'node' | 'noble' {
  return !NOBLE_ONLY && NODE_HAS[algorithm] ? 'node' : 'noble';
}

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

/**
 * A fresh digest: SHA-256 (HMAC-SHA-256 with `key`), or with algorithm 'sha3-256' SHA3-256
 * (keyed: SHA3-256 of keyedSha3Prefix(key) ‖ message). Throws RangeError for a key keyed
 * SHA3-256 cannot encode, and for an unknown algorithm.
 */
export function createDigest(key?: Uint8Array, impl?: 'node' | 'noble', algorithm: DigestAlgorithm = 'sha256'): Digest {
  const use = impl ?? defaultDigestImpl(algorithm);
  if (algorithm === 'sha256') {
    if (use === 'node') return nodeDigest(key === undefined ? createHash('sha256') : (createHmac('sha256', key) as unknown as ReturnType<typeof createHash>));
    return key === undefined ? sha256.create() : hmac.create(sha256, key);
  }
  if (algorithm !== 'sha3-256') throw new RangeError(`unknown digest ${String(algorithm)}`);
  const d: Digest = use === 'node' ? nodeDigest(createHash('sha3-256')) : sha3_256.create();
  if (key !== undefined) d.update(keyedSha3Prefix(key));
  return d;
}

export function digestOf(message: Uint8Array, key?: Uint8Array, impl?: 'node' | 'noble', algorithm: DigestAlgorithm = 'sha256'): Uint8Array {
  const use = impl ?? defaultDigestImpl(algorithm);
  if (use === 'noble' && algorithm === 'sha256') return key === undefined ? sha256(message) : hmac(sha256, key, message);
  return createDigest(key, use, algorithm).update(message).digest();
}

/** Equality of two digests, in time independent of where they differ. */
export function digestsEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== HASH_LENGTH || b.length !== HASH_LENGTH) return false;
  let diff = 0;
  for (let i = 0; i < HASH_LENGTH; i++) diff |= a[i]! ^ b[i]!;
  return diff === 0;
}
