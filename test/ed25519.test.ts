/**
 * The two Ed25519 implementations behind src/mesh/ed25519.ts: the same signatures (the scheme is
 * deterministic), each verifying the other's, RFC 8032's test vectors, and the same answers for
 * what must be refused (a flipped bit, a wrong key, non-canonical S, a small-order key).
 */
import { describe, expect, it } from 'vitest';
import { ed25519 } from '@noble/curves/ed25519.js';
import { ed25519Impl, nobleEd25519, nodeEd25519 } from '../src/mesh/ed25519.js';
import { Prng } from '../src/link/prng.js';

const hex = (s: string): Uint8Array => Uint8Array.from(Buffer.from(s.replace(/\s+/g, ''), 'hex'));
const toHex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

/** RFC 8032 §7.1, tests 1–3 (secret, public key, message, signature). */
const VECTORS = [
  {
    secret: '9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60',
    public: 'd75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a',
    message: '',
    signature: 'e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b',
  },
  {
    secret: '4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb',
    public: '3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c',
    message: '72',
    signature: '92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00',
  },
  {
    secret: 'c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7',
    public: 'fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025',
    message: 'af82',
    signature: '6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac18ff9b538d16f290ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a',
  },
];

function impls() {
  if (nodeEd25519 === undefined) throw new Error("this Node's OpenSSL has no Ed25519: use a Node ≥ 20 built with OpenSSL 1.1.1 or later");
  return [nobleEd25519, nodeEd25519];
}

describe('Ed25519 through node:crypto and noble', () => {
  it('node:crypto is in use on this Node (MESHGW_ED25519=noble selects noble)', () => {
    expect(impls()).toHaveLength(2);
    expect(ed25519Impl.name).toBe(process.env.MESHGW_ED25519 === 'noble' ? 'noble' : 'node:crypto');
  });

  for (const [i, v] of VECTORS.entries()) {
    it(`RFC 8032 test ${i + 1}: both sign and verify it`, () => {
      expect(toHex(ed25519.getPublicKey(hex(v.secret)))).toBe(v.public);
      for (const impl of impls()) {
        expect(toHex(impl.sign(hex(v.message), hex(v.secret))), impl.name).toBe(v.signature);
        expect(impl.verify(hex(v.signature), hex(v.message), hex(v.public)), impl.name).toBe(true);
      }
    });
  }

  it('300 random keys and messages: identical signatures, each verifies the other, and both refuse the same forgeries', () => {
    const prng = new Prng(25519);
    const bytes = (n: number): Uint8Array => Uint8Array.from({ length: n }, () => prng.nextU32() & 0xff);
    const [noble, node] = impls() as [typeof nobleEd25519, typeof nobleEd25519];
    for (let i = 0; i < 300; i++) {
      const secret = bytes(32);
      const pub = ed25519.getPublicKey(secret);
      const message = bytes(prng.nextU32() % 600);
      const a = noble.sign(message, secret);
      const b = node.sign(message, secret);
      expect(toHex(b)).toBe(toHex(a));
      expect(noble.verify(b, message, pub)).toBe(true);
      expect(node.verify(a, message, pub)).toBe(true);
      // A flipped bit anywhere in the signature or the message, or another key: both refuse.
      const badSig = a.slice();
      badSig[prng.nextU32() % 64]! ^= 1 << prng.nextU32() % 8;
      const other = ed25519.getPublicKey(bytes(32));
      for (const impl of [noble, node]) {
        expect(impl.verify(badSig, message, pub), impl.name).toBe(false);
        expect(impl.verify(a, message, other), impl.name).toBe(false);
        if (message.length > 0) {
          const badMsg = message.slice();
          badMsg[prng.nextU32() % message.length]! ^= 1;
          expect(impl.verify(a, badMsg, pub), impl.name).toBe(false);
        }
      }
    }
  });

  it('non-canonical S, a small-order public key, wrong lengths: refused by both, never thrown', () => {
    const v = VECTORS[1]!;
    const sig = hex(v.signature);
    // S + L (the group order) is the same scalar, encoded non-canonically: RFC 8032 §5.1.7 refuses it.
    const L = 2n ** 252n + 27742317777372353535851937790883648493n;
    let s = 0n;
    for (let i = 31; i >= 0; i--) s = (s << 8n) | BigInt(sig[32 + i]!);
    let t = s + L;
    const malleable = sig.slice();
    for (let i = 0; i < 32; i++) {
      malleable[32 + i] = Number(t & 0xffn);
      t >>= 8n;
    }
    // The identity point (order 1), a valid encoding of a small-order key.
    const identity = new Uint8Array(32);
    identity[0] = 1;
    for (const impl of impls()) {
      expect(impl.verify(malleable, hex(v.message), hex(v.public)), impl.name).toBe(false);
      expect(impl.verify(sig, hex(v.message), identity), impl.name).toBe(false);
      expect(impl.verify(sig.subarray(0, 63), hex(v.message), hex(v.public)), impl.name).toBe(false);
      expect(impl.verify(sig, hex(v.message), hex(v.public).subarray(0, 31)), impl.name).toBe(false);
      expect(impl.verify(sig, hex(v.message), new Uint8Array(32).fill(0xff)), impl.name).toBe(false);
    }
  });
});
