/**
 * ChaCha20-Poly1305 (RFC 8439), the one AEAD every sealed mesh frame goes through.
 *
 * noble's implementation (`@noble/ciphers`) is the implementation of record: audited, pure
 * JavaScript, and present everywhere. Where Node's OpenSSL offers the same cipher
 * (`chacha20-poly1305`, in every Node ≥ 20 built with OpenSSL 1.1 or later) the frames are sealed
 * and opened there instead — about four times the rate for a 1 KiB frame on this project's
 * machines, and the largest single cost of a fast transfer otherwise. Both give the same bytes
 * for the same key, nonce, associated data and plaintext (test/aead.test.ts checks it on random
 * inputs and on RFC 8439's vector); `MESHGW_AEAD=noble` in the environment selects noble.
 */
import { createCipheriv, createDecipheriv, getCiphers } from 'node:crypto';
import { chacha20poly1305 } from '@noble/ciphers/chacha.js';

export const AEAD_KEY_LENGTH = 32;
export const AEAD_NONCE_LENGTH = 12;
export const AEAD_TAG_LENGTH = 16;

export interface Aead {
  readonly name: 'node:crypto' | 'noble';
  /** ciphertext ‖ 16-byte tag. */
  seal(key: Uint8Array, nonce: Uint8Array, aad: Uint8Array, plaintext: Uint8Array): Uint8Array;
  /** The plaintext, or undefined when the tag does not verify (or the input is shorter than a tag). */
  open(key: Uint8Array, nonce: Uint8Array, aad: Uint8Array, sealed: Uint8Array): Uint8Array | undefined;
}

export const nobleAead: Aead = {
  name: 'noble',
  seal: (key, nonce, aad, plaintext) => chacha20poly1305(key, nonce, aad).encrypt(plaintext),
  open: (key, nonce, aad, sealed) => {
    if (sealed.length < AEAD_TAG_LENGTH) return undefined;
    try {
      return chacha20poly1305(key, nonce, aad).decrypt(sealed);
    } catch {
      return undefined;
    }
  },
};

const NODE_CIPHER = 'chacha20-poly1305';

export const nodeAead: Aead | undefined = getCiphers().includes(NODE_CIPHER)
  ? {
      name: 'node:crypto',
      seal: (key, nonce, aad, plaintext) => {
        const c = createCipheriv(NODE_CIPHER, key, nonce, { authTagLength: AEAD_TAG_LENGTH });
        c.setAAD(aad, { plaintextLength: plaintext.length });
        const head = c.update(plaintext);
        const tail = c.final();
        const out = new Uint8Array(head.length + tail.length + AEAD_TAG_LENGTH);
        out.set(head, 0);
        out.set(tail, head.length);
        out.set(c.getAuthTag(), head.length + tail.length);
        return out;
      },
      open: (key, nonce, aad, sealed) => {
        if (sealed.length < AEAD_TAG_LENGTH) return undefined;
        const body = sealed.subarray(0, sealed.length - AEAD_TAG_LENGTH);
        try {
          const d = createDecipheriv(NODE_CIPHER, key, nonce, { authTagLength: AEAD_TAG_LENGTH });
          d.setAAD(aad, { plaintextLength: body.length });
          d.setAuthTag(sealed.subarray(sealed.length - AEAD_TAG_LENGTH));
          const head = d.update(body);
          const tail = d.final(); // throws when the tag does not verify
          if (tail.length === 0) return new Uint8Array(head.buffer, head.byteOffset, head.length);
          const out = new Uint8Array(head.length + tail.length);
          out.set(head, 0);
          out.set(tail, head.length);
          return out;
        } catch {
          return undefined;
        }
      },
    }
  : undefined;

/** The AEAD in use: node:crypto where it has the cipher, else noble (or noble when MESHGW_AEAD=noble). */
export const aead: Aead = process.env.MESHGW_AEAD === 'noble' || nodeAead === undefined ? nobleAead : nodeAead;
