/**
 * Ed25519 (RFC 8032) signatures, the one place every signed control message and signed frame
 * goes through.
 *
 * noble's implementation (`@noble/curves`) is the implementation of record, pure JavaScript and
 * present everywhere. Where Node's OpenSSL has Ed25519 (every Node ≥ 20), signing and verifying
 * run there instead: about twenty times the rate of noble on this project's machines, and what a
 * busy LoRa neighbourhood costs a Raspberry Pi (each HELLO and TC verified on arrival). Both
 * verify by RFC 8032's rules (noble with `zip215: false`: canonical S, no small-order tricks
 * accepted differently), and both give the same signature for the same key and message, as the
 * scheme is deterministic; test/ed25519.test.ts checks it on random inputs and on RFC 8032's
 * vectors. `MESHGW_ED25519=noble` in the environment selects noble.
 *
 * OpenSSL takes keys as KeyObjects; making one costs about as much as a verification, so the
 * objects of the most recently used keys are kept (at most 1,024 public and 256 secret keys: a daemon has one, a simulation one per node).
 */
import { createPrivateKey, createPublicKey, sign as nodeSign, verify as nodeVerify, type KeyObject } from 'node:crypto';
import { ed25519 } from '@noble/curves/ed25519.js';

export interface Ed25519 {
  readonly name: 'node:crypto' | 'noble';
  /** The 64-byte signature of `message` by the 32-byte secret (seed). */
  sign(message: Uint8Array, secret: Uint8Array): Uint8Array;
  /** Whether `signature` is a valid signature of `message` by `publicKey`. Never throws. */
  verify(signature: Uint8Array, message: Uint8Array, publicKey: Uint8Array): boolean;
}

export const nobleEd25519: Ed25519 = {
  name: 'noble',
  sign: (message, secret) => ed25519.sign(message, secret),
  verify: (signature, message, publicKey) => {
    try {
      return ed25519.verify(signature, message, publicKey, { zip215: false });
    } catch {
      return false;
    }
  },
};

/** DER prefixes of an Ed25519 key: PKCS #8 for the secret (RFC 8410 §7), SPKI for the public key (§4). */
const PKCS8_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');
const SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');
const MAX_PUBLIC_KEYS = 1024;
const MAX_SECRET_KEYS = 256;

/** A small map that forgets the least recently used entry beyond its cap. */
class KeyCache {
  private readonly map = new Map<string, KeyObject>();
  constructor(private readonly cap: number) {}

  get(raw: Uint8Array, make: (raw: Uint8Array) => KeyObject): KeyObject {
    const id = Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength).toString('latin1');
    let key = this.map.get(id);
    if (key !== undefined) {
      this.map.delete(id);
    } else {
      key = make(raw);
      if (this.map.size >= this.cap) this.map.delete(this.map.keys().next().value!);
    }
    this.map.set(id, key);
    return key;
  }
}

function nodeEd25519Available(): boolean {
  try {
    const secret = new Uint8Array(32).fill(7);
    const key = createPrivateKey({ key: Buffer.concat([PKCS8_PREFIX, secret]), format: 'der', type: 'pkcs8' });
    const sig = nodeSign(null, Uint8Array.of(1), key);
    return Buffer.from(sig).equals(Buffer.from(ed25519.sign(Uint8Array.of(1), secret)));
  } catch {
    return false;
  }
}

function makeNodeEd25519(): Ed25519 {
  const publics = new KeyCache(MAX_PUBLIC_KEYS);
  const secrets = new KeyCache(MAX_SECRET_KEYS);
  const publicKey = (raw: Uint8Array): KeyObject => createPublicKey({ key: Buffer.concat([SPKI_PREFIX, raw]), format: 'der', type: 'spki' });
  const secretKey = (raw: Uint8Array): KeyObject => createPrivateKey({ key: Buffer.concat([PKCS8_PREFIX, raw]), format: 'der', type: 'pkcs8' });
  return {
    name: 'node:crypto',
    sign: (message, secret) => {
      if (secret.length !== 32) throw new RangeError(`an Ed25519 secret is 32 bytes, got ${secret.length}`);
      const sig = nodeSign(null, message, secrets.get(secret, secretKey));
      return new Uint8Array(sig.buffer, sig.byteOffset, sig.byteLength);
    },
    verify: (signature, message, key) => {
      if (signature.length !== 64 || key.length !== 32) return false;
      try {
        return nodeVerify(null, message, publics.get(key, publicKey), signature);
      } catch {
        // OpenSSL refuses some encodings that are no point at all when the key object is made.
        return false;
      }
    },
  };
}

export const nodeEd25519: Ed25519 | undefined = nodeEd25519Available() ? makeNodeEd25519() : undefined;

/** The implementation in use: node:crypto where it has Ed25519, else noble (or noble when MESHGW_ED25519=noble). */
export const ed25519Impl: Ed25519 = process.env.MESHGW_ED25519 === 'noble' || nodeEd25519 === undefined ? nobleEd25519 : nodeEd25519;
