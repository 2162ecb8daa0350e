/**
 * Sealing mesh datagrams: the primitives against published vectors, the frame budget, and every
 * way a frame can be bad (tampered, forged, truncated, replayed, reordered, from a past boot).
 */
import { describe, expect, it } from 'vitest';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chacha20poly1305 } from '@noble/ciphers/chacha.js';
import { ed25519, x25519 } from '@noble/curves/ed25519.js';
import { hkdf } from '@noble/hashes/hkdf.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { FrameSealer, type PeerDirectory } from '../src/mesh/seal.js';
import { identityFromSecret, type Identity } from '../src/mesh/identity.js';
import { AddressForm, decodeHeader, forwardedFrame, frameOverhead, shortAddress } from '../src/mesh/frame.js';
import { nextEpoch } from '../src/mesh/epoch.js';

const hex = (s: string): Uint8Array => Uint8Array.from(Buffer.from(s.replace(/\s/g, ''), 'hex'));
const toHex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

function node(seed: number): Identity {
  return identityFromSecret(new Uint8Array(32).fill(seed));
}

function directory(...ids: Identity[]): PeerDirectory {
  return {
    sidsWithShort: (short) => ids.filter((i) => i.sid[0] === short[0] && i.sid[1] === short[1]).map((i) => i.sid),
    signingKeyOf: (sid) => ids.find((i) => toHex(i.sid) === toHex(sid))?.ed25519Public,
  };
}

const alice = node(1);
const bob = node(2);
const carol = node(3);
const everyone = directory(alice, bob, carol);
const payload = new TextEncoder().encode('hello over the mesh');

describe('primitives against published vectors', () => {
  it('X25519 (RFC 7748 §6.1)', () => {
    const a = hex('77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a');
    const bPub = hex('de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f');
    expect(toHex(x25519.getSharedSecret(a, bPub))).toBe('4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742');
  });

  it('ChaCha20-Poly1305 (RFC 8439 §2.8.2)', () => {
    const key = hex('808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f');
    const nonce = hex('070000004041424344454647');
    const aad = hex('50515253c0c1c2c3c4c5c6c7');
    const text = new TextEncoder().encode("Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the future, sunscreen would be it.");
    const out = chacha20poly1305(key, nonce, aad).encrypt(text);
    expect(toHex(out.subarray(out.length - 16))).toBe('1ae10b594f09e26a7e902ecbd0600691');
    expect(toHex(out.subarray(0, 16))).toBe('d31a8d34648e60db7b86afbc53ef7ec2');
  });

  it('HKDF-SHA256 (RFC 5869 test case 1)', () => {
    const okm = hkdf(sha256, hex('0b'.repeat(22)), hex('000102030405060708090a0b0c'), hex('f0f1f2f3f4f5f6f7f8f9'), 42);
    expect(toHex(okm)).toBe('3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865');
  });

  it('Ed25519 (RFC 8032 §7.1 test 1)', () => {
    const sk = hex('9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60');
    expect(toHex(ed25519.getPublicKey(sk))).toBe('d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a');
    expect(toHex(ed25519.sign(new Uint8Array(0), sk))).toBe(
      'e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b',
    );
  });
});

describe('FrameSealer', () => {
  it('keeps a compact unicast frame within the 32-byte overhead budget', () => {
    expect(frameOverhead(AddressForm.COMPACT)).toBe(32);
    const frame = new FrameSealer(alice, 1).sealUnicast({ dst: bob.sid, srcPort: 20, dstPort: 21, ttl: 8, payload, compact: true });
    expect(frame.length - payload.length).toBe(32);
    const opened = new FrameSealer(bob, 1).open(frame, everyone);
    expect(opened).toMatchObject({ ok: true, datagram: { srcPort: 20, dstPort: 21, ttl: 8, broadcast: false } });
    expect(opened.ok && toHex(opened.datagram.src)).toBe(toHex(alice.sid));
    expect(opened.ok && new TextDecoder().decode(opened.datagram.payload)).toBe('hello over the mesh');
  });

  it('opens a full-address frame from a sender the receiver has never heard of', () => {
    const frame = new FrameSealer(alice, 1).sealUnicast({ dst: bob.sid, srcPort: 1, dstPort: 2, ttl: 4, payload });
    expect(frame.length - payload.length).toBe(frameOverhead(AddressForm.FULL));
    const r = new FrameSealer(bob, 1).open(frame, directory());
    expect(r.ok).toBe(true);
  });

  it('produces the same frame for the same keys, epoch and counter (golden vector)', () => {
    const frame = new FrameSealer(alice, 7).sealUnicast({ dst: bob.sid, srcPort: 20, dstPort: 21, ttl: 8, payload: new Uint8Array([1, 2, 3]), compact: true });
    // Header: 51 (datagram, compact), 08 (TTL), dst/src short, ports 14 15, epoch 7, counter 0.
    expect(toHex(frame.subarray(0, 16))).toBe(`5108${toHex(shortAddress(bob.sid))}${toHex(shortAddress(alice.sid))}14150000000700000000`);
    expect(frame.length).toBe(16 + 3 + 16);
    const again = new FrameSealer(alice, 7).sealUnicast({ dst: bob.sid, srcPort: 20, dstPort: 21, ttl: 8, payload: new Uint8Array([1, 2, 3]), compact: true });
    expect(toHex(again)).toBe(toHex(frame));
  });

  it('rejects every single-bit tamper except in the TTL, and counts it', () => {
    const frame = new FrameSealer(alice, 1).sealUnicast({ dst: bob.sid, srcPort: 1, dstPort: 2, ttl: 9, payload, compact: true });
    for (let i = 0; i < frame.length; i++) {
      const bad = frame.slice();
      bad[i]! ^= 0x01;
      const receiver = new FrameSealer(bob, 1);
      const r = receiver.open(bad, everyone);
      if (i === 1) expect(r.ok, 'the TTL is not authenticated: forwarders change it').toBe(true);
      else expect(r.ok, `byte ${i}`).toBe(false);
    }
  });

  it('rejects forged and truncated frames', () => {
    const sealer = new FrameSealer(alice, 1);
    const frame = sealer.sealUnicast({ dst: bob.sid, srcPort: 1, dstPort: 2, ttl: 9, payload, compact: true });
    const receiver = new FrameSealer(bob, 1);
    const forged = frame.slice();
    forged.set(new Uint8Array(16).fill(0xaa), forged.length - 16);
    expect(receiver.open(forged, everyone)).toEqual({ ok: false, reason: 'bad-tag' });
    // Carol cannot speak as Alice: her key gives another tag.
    const byCarol = new FrameSealer(carol, 1).sealUnicast({ dst: bob.sid, srcPort: 1, dstPort: 2, ttl: 9, payload });
    const asAlice = byCarol.slice();
    asAlice.set(alice.sid, 2 + 32);
    expect(receiver.open(asAlice, everyone)).toEqual({ ok: false, reason: 'bad-tag' });
    for (let n = 0; n < frame.length; n++) expect(receiver.open(frame.subarray(0, n), everyone).ok).toBe(false);
    expect(receiver.open(frame, everyone).ok).toBe(true);
    expect(receiver.rejected['truncated']).toBeGreaterThan(0);
  });

  it('rejects replays, accepts reordering within the window, rejects frames older than it', () => {
    const sealer = new FrameSealer(alice, 1);
    const frames = Array.from({ length: 100 }, () => sealer.sealUnicast({ dst: bob.sid, srcPort: 1, dstPort: 2, ttl: 1, payload, compact: true }));
    const receiver = new FrameSealer(bob, 1);
    expect(receiver.open(frames[10]!, everyone).ok).toBe(true);
    expect(receiver.open(frames[10]!, everyone)).toEqual({ ok: false, reason: 'replay' });
    expect(receiver.open(frames[5]!, everyone).ok).toBe(true); // late but within the window
    expect(receiver.open(frames[99]!, everyone).ok).toBe(true);
    expect(receiver.open(frames[50]!, everyone).ok).toBe(true); // 49 behind the newest: in the window
    expect(receiver.open(frames[30]!, everyone)).toEqual({ ok: false, reason: 'too-old' }); // 69 behind
  });

  it('does not reuse a nonce across a restart, and refuses frames from the previous boot', () => {
    const dir = mkdtempSync(join(tmpdir(), 'meshgw-epoch-'));
    const epochFile = join(dir, 'epoch');
    const first = new FrameSealer(alice, nextEpoch(epochFile));
    const before = Array.from({ length: 3 }, () => first.sealUnicast({ dst: bob.sid, srcPort: 1, dstPort: 2, ttl: 1, payload, compact: true }));
    // Restart: a new sealer, a new epoch from the file.
    const second = new FrameSealer(alice, nextEpoch(epochFile));
    const after = Array.from({ length: 3 }, () => second.sealUnicast({ dst: bob.sid, srcPort: 1, dstPort: 2, ttl: 1, payload, compact: true }));
    const nonces = [...before, ...after].map((f) => toHex(f.subarray(8, 16)));
    expect(new Set(nonces).size).toBe(6);
    expect(nonces[0]).toBe('0000000100000000');
    expect(nonces[3]).toBe('0000000200000000');
    const receiver = new FrameSealer(bob, 1);
    expect(receiver.open(after[0]!, everyone).ok).toBe(true);
    expect(receiver.open(before[2]!, everyone)).toEqual({ ok: false, reason: 'old-epoch' });
    writeFileSync(epochFile, 'garbage');
    expect(() => nextEpoch(epochFile)).toThrow(/epoch file .* is corrupt/);
  });

  it('authenticate-only mode leaves the payload in clear and still rejects tampering', () => {
    const frame = new FrameSealer(alice, 1).sealUnicast({ dst: bob.sid, srcPort: 1, dstPort: 2, ttl: 3, payload, compact: true, authOnly: true });
    expect(Buffer.from(frame).includes(Buffer.from(payload))).toBe(true);
    expect(frame.length - payload.length).toBe(32);
    expect(new FrameSealer(bob, 1).open(frame, everyone)).toMatchObject({ ok: true, datagram: { authOnly: true } });
    const bad = frame.slice();
    bad[20]! ^= 0x20;
    expect(new FrameSealer(bob, 1).open(bad, everyone)).toEqual({ ok: false, reason: 'bad-tag' });
  });

  it('signs broadcasts: anyone with the sender key verifies, nobody can forge or alter them', () => {
    const frame = new FrameSealer(alice, 1).sealBroadcast({ srcPort: 3, dstPort: 3, ttl: 2, payload, compact: true });
    expect(new FrameSealer(bob, 1).open(frame, everyone)).toMatchObject({ ok: true, datagram: { broadcast: true, dst: undefined } });
    expect(new FrameSealer(carol, 1).open(frame, everyone).ok).toBe(true);
    expect(new FrameSealer(carol, 1).open(frame, directory())).toEqual({ ok: false, reason: 'unknown-sender' });
    const bad = frame.slice();
    bad[18]! ^= 1;
    expect(new FrameSealer(bob, 1).open(bad, everyone)).toEqual({ ok: false, reason: 'bad-signature' });
  });

  it('does not open frames for someone else', () => {
    const frame = new FrameSealer(alice, 1).sealUnicast({ dst: carol.sid, srcPort: 1, dstPort: 2, ttl: 3, payload });
    expect(new FrameSealer(bob, 1).open(frame, everyone)).toEqual({ ok: false, reason: 'not-for-us' });
  });

  it('still opens after forwarders set, rewrite and drop the via field and decrement the TTL', () => {
    const frame = new FrameSealer(alice, 1).sealUnicast({ dst: carol.sid, srcPort: 1, dstPort: 2, ttl: 3, payload, compact: true });
    const hop1 = forwardedFrame(frame, shortAddress(bob.sid))!;
    expect(hop1.length).toBe(frame.length + 2);
    const h = decodeHeader(hop1);
    expect(h.ok && [h.header.ttl, Buffer.from(h.header.via!).equals(Buffer.from(shortAddress(bob.sid)))]).toEqual([2, true]);
    const hop2 = forwardedFrame(hop1, undefined)!;
    expect(hop2.length).toBe(frame.length);
    expect(new FrameSealer(carol, 1).open(hop2, everyone)).toMatchObject({ ok: true, datagram: { ttl: 1 } });
    expect(new FrameSealer(carol, 1).open(hop1, everyone).ok).toBe(true);
    expect(forwardedFrame(hop2, undefined)).toBeUndefined(); // TTL spent
  });
});
