/**
 * The one AEAD (src/mesh/aead.ts): node:crypto and noble give the same bytes for the same key,
 * nonce, associated data and plaintext — each the independent check of the other — and both
 * meet RFC 8439's vector.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { aead, nobleAead, nodeAead, AEAD_TAG_LENGTH } from '../src/mesh/aead.js';

const hex = (h: string): Uint8Array => Uint8Array.from(Buffer.from(h, 'hex'));
const toHex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

describe('the AEAD behind every sealed frame', () => {
  it('node:crypto has chacha20-poly1305 here, and it is the one in use', () => {
    // Without it the daemon falls back to noble; this machine (Node ≥ 20 with OpenSSL) has it.
    expect(nodeAead, 'node:crypto lacks chacha20-poly1305: a Node built without OpenSSL 1.1+').toBeDefined();
    expect(aead.name).toBe(process.env.MESHGW_AEAD === 'noble' ? 'noble' : 'node:crypto');
  });

  for (const impl of [nobleAead, nodeAead!]) {
    it(`${impl.name}: RFC 8439 §2.8.2`, () => {
      const key = hex('808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f');
      const nonce = hex('070000004041424344454647');
      const aad = hex('50515253c0c1c2c3c4c5c6c7');
      const text = new TextEncoder().encode("Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the future, sunscreen would be it.");
      const out = impl.seal(key, nonce, aad, text);
      expect(out.length).toBe(text.length + AEAD_TAG_LENGTH);
      expect(toHex(out.subarray(0, 16))).toBe('d31a8d34648e60db7b86afbc53ef7ec2');
      expect(toHex(out.subarray(out.length - 16))).toBe('1ae10b594f09e26a7e902ecbd0600691');
      expect(toHex(impl.open(key, nonce, aad, out)!)).toBe(toHex(text));
    });
  }

  it('both seal to identical bytes, each opens the other, and both refuse any changed bit', () => {
    const node = nodeAead!;
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 32, maxLength: 32 }),
        fc.uint8Array({ minLength: 12, maxLength: 12 }),
        fc.uint8Array({ maxLength: 64 }),
        fc.uint8Array({ maxLength: 1500 }),
        fc.nat(),
        (key, nonce, aad, text, flip) => {
          const a = nobleAead.seal(key, nonce, aad, text);
          const b = node.seal(key, nonce, aad, text);
          expect(toHex(b)).toBe(toHex(a));
          expect(toHex(node.open(key, nonce, aad, a)!)).toBe(toHex(text));
          expect(toHex(nobleAead.open(key, nonce, aad, b)!)).toBe(toHex(text));
          const bad = a.slice();
          const bit = flip % (bad.length * 8);
          bad[bit >> 3]! ^= 1 << (bit & 7);
          expect(node.open(key, nonce, aad, bad)).toBeUndefined();
          expect(nobleAead.open(key, nonce, aad, bad)).toBeUndefined();
        },
      ),
      { numRuns: 300, seed: 8439 },
    );
  });

  it('an input shorter than a tag, a wrong key or wrong associated data opens to nothing', () => {
    const key = new Uint8Array(32).fill(7);
    const nonce = new Uint8Array(12).fill(1);
    for (const impl of [nobleAead, nodeAead!]) {
      expect(impl.open(key, nonce, new Uint8Array(0), new Uint8Array(15))).toBeUndefined();
      const sealed = impl.seal(key, nonce, Uint8Array.of(1, 2), Uint8Array.of(9, 9, 9));
      expect(impl.open(new Uint8Array(32), nonce, Uint8Array.of(1, 2), sealed)).toBeUndefined();
      expect(impl.open(key, nonce, Uint8Array.of(1, 3), sealed)).toBeUndefined();
      expect(Array.from(impl.open(key, nonce, Uint8Array.of(1, 2), sealed)!)).toEqual([9, 9, 9]);
    }
  });
});
