/**
 * Sealing mesh datagrams: the primitives against published vectors, the key derivation against
 * SPEC.md, the frame budget, and every way a frame can be bad (tampered, forged, truncated,
 * replayed, reordered, from a past boot of either side, from a sender nobody knows), and the
 * replay table's refusal to be evicted into accepting a replay.
 */
import { describe, expect, it } from 'vitest';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chacha20poly1305 } from '@noble/ciphers/chacha.js';
import { ed25519, x25519 } from '@noble/curves/ed25519.js';
import { hkdf } from '@noble/hashes/hkdf.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { FrameSealer, type BootToken, type PeerDirectory, type SealerOptions, type UnicastRequest } from '../src/mesh/seal.js';
import { identityFromSecret, type Identity } from '../src/mesh/identity.js';
import { AddressForm, decodeHeader, forwardedFrame, frameOverhead, shortAddress } from '../src/mesh/frame.js';
import { epochFileFor, nextEpoch } from '../src/mesh/epoch.js';
import { DEFAULT_GRAVEYARD_SIZE, ReplayWindow } from '../src/mesh/replay.js';

const hex = (s: string): Uint8Array => Uint8Array.from(Buffer.from(s.replace(/\s/g, ''), 'hex'));
const toHex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const u32 = (n: number): Uint8Array => hex(n.toString(16).padStart(8, '0'));

/** A node as others see it: its identity and its current boot token. */
interface Peer {
  id: Identity;
  boot: BootToken;
}

function peer(seed: number, epoch = 1, nonceFill = 0x10 + seed): Peer {
  return { id: identityFromSecret(new Uint8Array(32).fill(seed)), boot: { epoch, nonce: new Uint8Array(8).fill(nonceFill) } };
}

/** What a receiver learned from HELLO/TC: these nodes' keys and boot tokens. */
function directory(...peers: Peer[]): PeerDirectory {
  const find = (sid: Uint8Array): Peer | undefined => peers.find((p) => toHex(p.id.sid) === toHex(sid));
  return {
    sidsWithShort: (short) => peers.filter((p) => p.id.sid[0] === short[0] && p.id.sid[1] === short[1]).map((p) => p.id.sid),
    signingKeyOf: (sid) => find(sid)?.id.ed25519Public,
    bootOf: (sid) => find(sid)?.boot,
  };
}

const sealer = (p: Peer, options?: SealerOptions): FrameSealer => new FrameSealer(p.id, p.boot, options);
const to = (p: Peer): Pick<UnicastRequest, 'dst' | 'dstBoot'> => ({ dst: p.id.sid, dstBoot: p.boot });

const alice = peer(1);
const bob = peer(2);
const carol = peer(3);
const dave = peer(4);
const everyone = directory(alice, bob, carol, dave);
const payload = new TextEncoder().encode('hello over the mesh');
const compactTo = (p: Peer) => ({ ...to(p), srcPort: 1, dstPort: 2, ttl: 1, payload, compact: true });

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
    const frame = sealer(alice).sealUnicast({ ...to(bob), srcPort: 20, dstPort: 21, ttl: 8, payload, compact: true });
    expect(frame.length - payload.length).toBe(32);
    const opened = sealer(bob).open(frame, everyone);
    expect(opened).toMatchObject({ ok: true, datagram: { srcPort: 20, dstPort: 21, ttl: 8, priority: 'bulk', broadcast: false } });
    expect(opened.ok && toHex(opened.datagram.src)).toBe(toHex(alice.id.sid));
    expect(opened.ok && new TextDecoder().decode(opened.datagram.payload)).toBe('hello over the mesh');
  });

  it('produces the same frame for the same keys, boots and counter (golden vector)', () => {
    const boot7: BootToken = { epoch: 7, nonce: alice.boot.nonce };
    const request = { ...to(bob), srcPort: 20, dstPort: 21, ttl: 8, payload: new Uint8Array([1, 2, 3]), compact: true };
    const frame = new FrameSealer(alice.id, boot7).sealUnicast(request);
    // Header: 51 (datagram, compact), 08 (bulk, TTL 8), dst/src short, ports 14 15, epoch 7, counter 0.
    expect(toHex(frame.subarray(0, 16))).toBe(`5108${toHex(shortAddress(bob.id.sid))}${toHex(shortAddress(alice.id.sid))}14150000000700000000`);
    expect(frame.length).toBe(16 + 3 + 16);
    expect(toHex(new FrameSealer(alice.id, boot7).sealUnicast(request))).toBe(toHex(frame));
  });

  it('derives the key as SPEC.md says: HKDF(ss, salt, src ‖ dst ‖ src epoch ‖ src nonce ‖ dst epoch ‖ dst nonce)', () => {
    const bob9 = peer(2, 9, 0xb0);
    const used: string[] = [];
    const s = new FrameSealer(alice.id, { epoch: 7, nonce: alice.boot.nonce }, { onKeyUse: (k, n) => used.push(toHex(k), toHex(n)) });
    const frame = s.sealUnicast({ ...to(bob9), srcPort: 20, dstPort: 21, ttl: 8, payload, compact: true });
    // Independently of the sealer: the receiver's side of the X25519, the documented info layout.
    const ss = x25519.getSharedSecret(bob9.id.x25519Secret, alice.id.sid);
    const info = Buffer.concat([alice.id.sid, bob9.id.sid, u32(7), alice.boot.nonce, u32(9), bob9.boot.nonce]);
    expect(info.length).toBe(88);
    const key = hkdf(sha256, ss, new TextEncoder().encode('meshgw datagram v1'), info, 32);
    const nonce = hex('00000000 00000007 00000000');
    const aad = frame.slice(0, 16);
    aad[1] = 0; // TTL bits zeroed (priority bulk is 0 too)
    expect(toHex(chacha20poly1305(key, nonce, aad).decrypt(frame.subarray(16)))).toBe(toHex(payload));
    expect(used).toEqual([toHex(key), toHex(nonce)]);
  });

  it('rejects every single-bit tamper except in the six TTL bits, and counts it', () => {
    const frame = sealer(alice).sealUnicast({ ...to(bob), srcPort: 1, dstPort: 2, ttl: 9, payload, compact: true, priority: 'interactive' });
    const receiver = sealer(bob);
    for (let i = 0; i < frame.length; i++) {
      for (let bit = 0; bit < 8; bit++) {
        const bad = frame.slice();
        bad[i]! ^= 1 << bit;
        if (i === 1 && bit < 6) {
          // The TTL is not authenticated: forwarders change it. (A fresh receiver: it is the same counter.)
          expect(sealer(bob).open(bad, everyone), `TTL bit ${bit}`).toMatchObject({ ok: true, datagram: { ttl: 9 ^ (1 << bit) } });
        } else {
          expect(receiver.open(bad, everyone).ok, `byte ${i} bit ${bit}`).toBe(false);
        }
      }
    }
    expect(Object.values(receiver.rejected).reduce((a, b) => a + b, 0)).toBe(frame.length * 8 - 6);
    expect(receiver.open(frame, everyone)).toMatchObject({ ok: true, datagram: { priority: 'interactive' } }); // rejections moved nothing
  });

  it('carries the priority class, authenticated, in the top bits of byte 1', () => {
    const frame = sealer(alice).sealUnicast({ ...to(bob), srcPort: 1, dstPort: 2, ttl: 5, payload, priority: 'ack' });
    expect(frame[1]).toBe((2 << 6) | 5);
    expect(sealer(bob).open(frame, everyone)).toMatchObject({ ok: true, datagram: { priority: 'ack', ttl: 5 } });
    const demoted = frame.slice();
    demoted[1] = 5; // bulk, same TTL
    expect(sealer(bob).open(demoted, everyone)).toEqual({ ok: false, reason: 'bad-tag' });
    const broadcast = sealer(alice).sealBroadcast({ srcPort: 1, dstPort: 2, ttl: 1, payload, priority: 'interactive' });
    expect(sealer(bob).open(broadcast, everyone)).toMatchObject({ ok: true, datagram: { priority: 'interactive' } });
  });

  it('rejects forged and truncated frames', () => {
    const frame = sealer(alice).sealUnicast({ ...compactTo(bob), ttl: 9 });
    const receiver = sealer(bob);
    const forged = frame.slice();
    forged.set(new Uint8Array(16).fill(0xaa), forged.length - 16);
    expect(receiver.open(forged, everyone)).toEqual({ ok: false, reason: 'bad-tag' });
    // Carol cannot speak as Alice: her key gives another tag.
    const byCarol = sealer(carol).sealUnicast({ ...to(bob), srcPort: 1, dstPort: 2, ttl: 9, payload });
    const asAlice = byCarol.slice();
    asAlice.set(alice.id.sid, 2 + 32);
    expect(receiver.open(asAlice, everyone)).toEqual({ ok: false, reason: 'bad-tag' });
    for (let n = 0; n < frame.length; n++) expect(receiver.open(frame.subarray(0, n), everyone).ok).toBe(false);
    expect(receiver.open(frame, everyone).ok).toBe(true);
    expect(receiver.rejected['truncated']).toBeGreaterThan(0);
  });

  it('rejects replays, accepts reordering within the window, rejects frames older than it', () => {
    const s = sealer(alice);
    const frames = Array.from({ length: 100 }, () => s.sealUnicast(compactTo(bob)));
    const receiver = sealer(bob);
    expect(receiver.open(frames[10]!, everyone).ok).toBe(true);
    expect(receiver.open(frames[10]!, everyone)).toEqual({ ok: false, reason: 'replay' });
    expect(receiver.open(frames[5]!, everyone).ok).toBe(true); // late but within the window
    expect(receiver.open(frames[99]!, everyone).ok).toBe(true);
    expect(receiver.open(frames[50]!, everyone).ok).toBe(true); // 49 behind the newest: in the window
    expect(receiver.open(frames[30]!, everyone)).toEqual({ ok: false, reason: 'too-old' }); // 69 behind
  });

  it('does not reuse a nonce across a restart, and refuses frames from the previous boot', () => {
    const epochFile = epochFileFor(mkdtempSync(join(tmpdir(), 'meshgw-epoch-')), alice.id);
    const first: Peer = { id: alice.id, boot: { epoch: nextEpoch(epochFile), nonce: new Uint8Array(8).fill(0xf1) } };
    const s1 = sealer(first);
    const before = Array.from({ length: 3 }, () => s1.sealUnicast(compactTo(bob)));
    // Restart: a new sealer, a new epoch from the file, a new boot nonce.
    const second: Peer = { id: alice.id, boot: { epoch: nextEpoch(epochFile), nonce: new Uint8Array(8).fill(0xf2) } };
    const s2 = sealer(second);
    const after = Array.from({ length: 3 }, () => s2.sealUnicast(compactTo(bob)));
    expect(toHex(before[0]!.subarray(8, 16))).toBe('0000000100000000');
    expect(toHex(after[0]!.subarray(8, 16))).toBe('0000000200000000');
    // Bob has heard Alice's new HELLO: her old boot's frames are refused before any crypto.
    const receiver = sealer(bob);
    const relearned = directory(second, bob);
    expect(receiver.open(after[0]!, relearned).ok).toBe(true);
    const agreements = receiver.keyAgreements;
    expect(receiver.open(before[2]!, relearned)).toEqual({ ok: false, reason: 'old-epoch' });
    expect(receiver.keyAgreements).toBe(agreements);
    writeFileSync(epochFile, 'garbage');
    expect(() => nextEpoch(epochFile)).toThrow(/epoch file .* is corrupt/);
  });

  it('refuses, after the receiver restarted, a frame captured before; frames sealed to its new boot open', () => {
    const captured = sealer(alice).sealUnicast(compactTo(bob));
    expect(sealer(bob).open(captured, everyone).ok).toBe(true); // what Bob accepted before the restart
    const bobAgain: Peer = { id: bob.id, boot: { epoch: 2, nonce: new Uint8Array(8).fill(0xb2) } };
    const restarted = sealer(bobAgain); // no replay state survived the restart
    expect(restarted.open(captured, everyone)).toEqual({ ok: false, reason: 'bad-tag' });
    // Same epoch after a rolled-back epoch file: the boot nonce alone still refuses it.
    const rolledBack = new FrameSealer(bob.id, { epoch: bob.boot.epoch, nonce: new Uint8Array(8).fill(0xb3) });
    expect(rolledBack.open(captured, everyone)).toEqual({ ok: false, reason: 'bad-tag' });
    // Alice hears Bob's new HELLO and seals to his new token.
    const fresh = sealer(alice).sealUnicast(compactTo(bobAgain));
    expect(restarted.open(fresh, everyone).ok).toBe(true);
  });

  it('refuses a sender the directory does not know before any key agreement', () => {
    const mallory = peer(66);
    const receiver = sealer(bob);
    const m = sealer(mallory);
    const full = m.sealUnicast({ ...to(bob), srcPort: 1, dstPort: 2, ttl: 4, payload });
    const compact = m.sealUnicast(compactTo(bob));
    const broadcast = m.sealBroadcast({ srcPort: 1, dstPort: 2, ttl: 1, payload });
    for (const f of [full, compact, broadcast]) expect(receiver.open(f, everyone)).toEqual({ ok: false, reason: 'unknown-sender' });
    // Known key but no authenticated boot token yet: unknown too.
    const bootless: PeerDirectory = { ...directory(mallory), bootOf: () => undefined };
    expect(receiver.open(full, bootless)).toEqual({ ok: false, reason: 'unknown-sender' });
    expect(receiver.keyAgreements).toBe(0);
    expect(receiver.rejected['unknown-sender']).toBe(4);
    // The counter does count: a known sender costs one agreement, cached afterwards.
    expect(receiver.open(full, directory(mallory)).ok).toBe(true);
    expect(receiver.open(m.sealUnicast(compactTo(bob)), directory(mallory)).ok).toBe(true);
    expect(receiver.keyAgreements).toBe(1);
  });

  it('refuses a frame whose epoch is below the sender boot epoch, before any key agreement', () => {
    const frame = new FrameSealer(alice.id, { epoch: 4, nonce: alice.boot.nonce }).sealUnicast(compactTo(bob));
    const receiver = sealer(bob);
    expect(receiver.open(frame, directory({ id: alice.id, boot: { epoch: 5, nonce: alice.boot.nonce } }))).toEqual({ ok: false, reason: 'old-epoch' });
    expect(receiver.keyAgreements).toBe(0);
  });

  it('authenticate-only mode leaves the payload in clear and still rejects tampering', () => {
    const frame = sealer(alice).sealUnicast({ ...to(bob), srcPort: 1, dstPort: 2, ttl: 3, payload, compact: true, authOnly: true });
    expect(Buffer.from(frame).includes(Buffer.from(payload))).toBe(true);
    expect(frame.length - payload.length).toBe(32);
    expect(sealer(bob).open(frame, everyone)).toMatchObject({ ok: true, datagram: { authOnly: true } });
    const bad = frame.slice();
    bad[20]! ^= 0x20;
    expect(sealer(bob).open(bad, everyone)).toEqual({ ok: false, reason: 'bad-tag' });
  });

  it('signs broadcasts: anyone with the sender key verifies, nobody can forge or alter them', () => {
    const frame = sealer(alice).sealBroadcast({ srcPort: 3, dstPort: 3, ttl: 2, payload, compact: true });
    expect(sealer(bob).open(frame, everyone)).toMatchObject({ ok: true, datagram: { broadcast: true, dst: undefined } });
    expect(sealer(carol).open(frame, everyone).ok).toBe(true);
    expect(sealer(carol).open(frame, directory())).toEqual({ ok: false, reason: 'unknown-sender' });
    const bad = frame.slice();
    bad[18]! ^= 1;
    expect(sealer(bob).open(bad, everyone)).toEqual({ ok: false, reason: 'bad-signature' });
  });

  it('refuses a replayed broadcast, through the same window as unicasts', () => {
    const s = sealer(alice);
    const b1 = s.sealBroadcast({ srcPort: 3, dstPort: 3, ttl: 1, payload });
    const u = s.sealUnicast(compactTo(bob));
    const b2 = s.sealBroadcast({ srcPort: 3, dstPort: 3, ttl: 1, payload });
    const receiver = sealer(bob);
    expect(receiver.open(b2, everyone).ok).toBe(true);
    expect(receiver.open(b2, everyone)).toEqual({ ok: false, reason: 'replay' });
    expect(receiver.open(u, everyone).ok).toBe(true);
    expect(receiver.open(b1, everyone).ok).toBe(true); // late, within the window
    expect(receiver.open(b1, everyone)).toEqual({ ok: false, reason: 'replay' });
    // A forged copy of a fresh counter does not move the window: the real frame still opens.
    const b3 = s.sealBroadcast({ srcPort: 3, dstPort: 3, ttl: 1, payload });
    const forged = b3.slice();
    forged[forged.length - 1]! ^= 1;
    expect(receiver.open(forged, everyone)).toEqual({ ok: false, reason: 'bad-signature' });
    expect(receiver.open(b3, everyone).ok).toBe(true);
    // The documented cost: a restarted receiver has no window, and accepts it once more.
    const restarted = new FrameSealer(bob.id, { epoch: 2, nonce: new Uint8Array(8).fill(0xb9) });
    expect(restarted.open(b3, everyone).ok).toBe(true);
    expect(restarted.open(b3, everyone)).toEqual({ ok: false, reason: 'replay' });
  });

  it('binds a broadcast signature to the sender boot: a rolled-back epoch does not revive old broadcasts', () => {
    const oldBoot: Peer = { id: alice.id, boot: { epoch: 42, nonce: new Uint8Array(8).fill(0xa1) } };
    const newBoot: Peer = { id: alice.id, boot: { epoch: 42, nonce: new Uint8Array(8).fill(0xa2) } }; // same epoch: file rolled back
    const before = sealer(oldBoot);
    const captured = Array.from({ length: 6 }, () => before.sealBroadcast({ srcPort: 3, dstPort: 3, ttl: 1, payload }))[5]!;
    const receiver = sealer(bob);
    expect(receiver.open(sealer(newBoot).sealBroadcast({ srcPort: 3, dstPort: 3, ttl: 1, payload }), directory(newBoot)).ok).toBe(true);
    // Epoch 42, counter 5: ahead of the new boot's window, and Alice's own signature …
    expect(receiver.open(captured, directory(newBoot))).toEqual({ ok: false, reason: 'bad-signature' });
    expect(receiver.open(captured, directory(oldBoot)).ok).toBe(true); // … which holds for the boot it was made in
  });

  it('does not open frames for someone else', () => {
    const frame = sealer(alice).sealUnicast({ ...to(carol), srcPort: 1, dstPort: 2, ttl: 3, payload });
    expect(sealer(bob).open(frame, everyone)).toEqual({ ok: false, reason: 'not-for-us' });
  });

  it('still opens after forwarders set, rewrite and drop the via field and decrement the TTL', () => {
    const frame = sealer(alice).sealUnicast({ ...to(carol), srcPort: 1, dstPort: 2, ttl: 3, payload, compact: true });
    const hop1 = forwardedFrame(frame, shortAddress(bob.id.sid))!;
    expect(hop1.length).toBe(frame.length + 2);
    const h = decodeHeader(hop1);
    expect(h.ok && [h.header.ttl, Buffer.from(h.header.via!).equals(Buffer.from(shortAddress(bob.id.sid)))]).toEqual([2, true]);
    const hop2 = forwardedFrame(hop1, undefined)!;
    expect(hop2.length).toBe(frame.length);
    expect(sealer(carol).open(hop2, everyone)).toMatchObject({ ok: true, datagram: { ttl: 1 } });
    expect(sealer(carol).open(hop1, everyone).ok).toBe(true);
    expect(forwardedFrame(hop2, undefined)).toBeUndefined(); // TTL spent
  });
});

describe('replay state cannot be evicted into accepting a replay', () => {
  it('keeps a known sender window through 5,000 other senders', () => {
    // At the window itself: 5,000 authenticated senders through the sealer would take half a
    // minute of X25519; the sealer's only part (it calls check, then accept) is tested below.
    const w = new ReplayWindow();
    expect(w.accept('alice', 'boot-a', 1, 10)).toBe('fresh');
    for (let i = 0; i < 5000; i++) expect(w.accept(`sender-${i}`, 'boot', 1, 0), `sender ${i}`).toBe('fresh');
    expect(w.senders).toBe(5001);
    expect(w.check('alice', 'boot-a', 1, 10)).toBe('replay');
    expect(w.accept('alice', 'boot-a', 1, 10)).toBe('replay');
  });

  it('a forgotten, then relearned sender: its captured frame is still a replay', () => {
    const s = sealer(alice);
    const captured = s.sealUnicast(compactTo(bob));
    const receiver = sealer(bob);
    expect(receiver.open(captured, everyone).ok).toBe(true);
    receiver.forget(alice.id.sid); // the control plane forgot Alice …
    expect(receiver.senders).toBe(0);
    expect(receiver.open(captured, everyone)).toEqual({ ok: false, reason: 'replay' }); // … and relearned her
    expect(receiver.open(s.sealUnicast(compactTo(bob)), everyone).ok).toBe(true);
    expect(receiver.senders).toBe(1);
  });

  it('refuses new senders when the table is full instead of evicting a known one', () => {
    const receiver = sealer(bob, { maxSenders: 2 });
    const fromAlice = sealer(alice).sealUnicast(compactTo(bob));
    const carols = sealer(carol);
    const fromCarol = carols.sealUnicast(compactTo(bob));
    const fromDave = sealer(dave).sealUnicast(compactTo(bob));
    expect(receiver.open(fromAlice, everyone).ok).toBe(true);
    expect(receiver.open(fromCarol, everyone).ok).toBe(true);
    const agreements = receiver.keyAgreements;
    expect(receiver.open(fromDave, everyone)).toEqual({ ok: false, reason: 'sender-table-full' });
    expect(receiver.keyAgreements).toBe(agreements); // refused before any crypto
    expect(receiver.open(fromAlice, everyone)).toEqual({ ok: false, reason: 'replay' }); // not evicted
    receiver.forget(carol.id.sid);
    expect(receiver.open(fromDave, everyone).ok).toBe(true);
    expect(receiver.open(fromCarol, everyone)).toEqual({ ok: false, reason: 'sender-table-full' }); // Carol is new to the full table
    receiver.forget(alice.id.sid);
    expect(receiver.open(fromCarol, everyone)).toEqual({ ok: false, reason: 'replay' }); // back from the graveyard
    expect(receiver.open(carols.sealUnicast(compactTo(bob)), everyone).ok).toBe(true);
    expect(receiver.rejected['sender-table-full']).toBe(2);
  });

  it('keeps the last 16,384 forgotten senders, dropping the oldest first', () => {
    const w = new ReplayWindow({ maxSenders: 4 });
    expect(DEFAULT_GRAVEYARD_SIZE).toBe(16_384);
    for (let i = 0; i <= DEFAULT_GRAVEYARD_SIZE; i++) {
      w.accept(`s${i}`, 'b', 1, 7);
      w.forget(`s${i}`);
    }
    expect(w.forgotten).toBe(DEFAULT_GRAVEYARD_SIZE);
    expect(w.check('s0', 'b', 1, 7)).toBe('fresh'); // dropped: the oldest
    expect(w.check('s1', 'b', 1, 7)).toBe('replay');
    expect(w.check(`s${DEFAULT_GRAVEYARD_SIZE}`, 'b', 1, 7)).toBe('replay');
  });

  it('starts a fresh window for a new boot of the sender, even at the same epoch', () => {
    const w = new ReplayWindow();
    w.accept('alice', 'boot-1', 3, 500);
    expect(w.check('alice', 'boot-1', 3, 0)).toBe('too-old');
    expect(w.check('alice', 'boot-1', 2, 900)).toBe('old-epoch');
    // The epoch file was rolled back: same epoch, counter from 0, another boot nonce.
    expect(w.accept('alice', 'boot-2', 3, 0)).toBe('fresh');
    expect(w.check('alice', 'boot-2', 3, 0)).toBe('replay');
  });
});
