/**
 * Seal + open of mesh datagrams (64 B and 1 KiB), beside the same AEAD done natively by
 * node:crypto (OpenSSL's ChaCha20-Poly1305) on the same payloads (the sealer itself goes through
 * src/mesh/aead.ts: node:crypto too where present, noble with MESHGW_AEAD=noble); the cost of refusing a frame
 * from an unknown sender (a flood of throwaway identities) beside one X25519 key agreement, which
 * is what it must not cost; and the per-frame overhead of each frame form beside the 32-byte budget.
 */
import { createCipheriv, createDecipheriv } from 'node:crypto';
import { x25519 } from '@noble/curves/ed25519.js';
import { ed25519Impl, nobleEd25519, type Ed25519 } from '../src/mesh/ed25519.js';
import { FrameSealer, newBootNonce, type BootToken, type PeerDirectory } from '../src/mesh/seal.js';
import { generateIdentity, identityFromSecret } from '../src/mesh/identity.js';
import { AddressForm, frameOverhead } from '../src/mesh/frame.js';
import { BENCH_MS, rate, sink, type Row } from './measure.js';

const alice = identityFromSecret(new Uint8Array(32).fill(1));
const bob = identityFromSecret(new Uint8Array(32).fill(3));
const aliceBoot: BootToken = { epoch: 1, nonce: newBootNonce() };
const bobBoot: BootToken = { epoch: 1, nonce: newBootNonce() };
const peers: PeerDirectory = {
  sidsWithShort: (s) => (s[0] === alice.sid[0] && s[1] === alice.sid[1] ? [alice.sid] : []),
  signingKeyOf: () => alice.ed25519Public,
  bootOf: () => aliceBoot,
};

function native(payload: Uint8Array, key: Buffer, nonce: Buffer, aad: Buffer): void {
  const c = createCipheriv('chacha20-poly1305', key, nonce, { authTagLength: 16 });
  c.setAAD(aad, { plaintextLength: payload.length });
  const ct = Buffer.concat([c.update(payload), c.final()]);
  const tag = c.getAuthTag();
  const d = createDecipheriv('chacha20-poly1305', key, nonce, { authTagLength: 16 });
  d.setAAD(aad, { plaintextLength: ct.length });
  d.setAuthTag(tag);
  sink.value += Buffer.concat([d.update(ct), d.final()]).length;
}

export function sealBench(): Row[] {
  const rows: Row[] = [];
  for (const size of [64, 1024]) {
    const payload = new Uint8Array(size).fill(7);
    const sender = new FrameSealer(alice, aliceBoot);
    const receiver = new FrameSealer(bob, bobBoot);
    const N = 200;
    const key = Buffer.alloc(32, 9);
    const aad = Buffer.alloc(16, 1);
    let n = 0;
    rows.push({
      name: `seal+open ${size} B`,
      unit: '/s',
      value: rate(N, BENCH_MS, () => {
        for (let i = 0; i < N; i++) {
          const f = sender.sealUnicast({ dst: bob.sid, dstBoot: bobBoot, srcPort: 1, dstPort: 2, ttl: 8, payload, compact: true });
          const r = receiver.open(f, peers);
          if (r.ok) sink.value += r.datagram.payload.length;
        }
      }),
      baselineName: 'node:crypto AEAD only',
      baseline: rate(N, BENCH_MS, () => {
        for (let i = 0; i < N; i++) {
          const nonce = Buffer.alloc(12);
          nonce.writeUInt32BE(n++, 8);
          native(payload, key, nonce, aad);
        }
      }),
    });
  }
  rows.push(unknownSenderRow(), ...ed25519Rows());
  return rows;
}

/** Ed25519 over a 180-byte message (a HELLO: what every control message heard costs), node:crypto beside noble. */
function ed25519Rows(): Row[] {
  const message = new Uint8Array(180).fill(7);
  const signature = nobleEd25519.sign(message, alice.ed25519Secret);
  const N = 50;
  const verify = (impl: Ed25519) => () => {
    for (let i = 0; i < N; i++) if (impl.verify(signature, message, alice.ed25519Public)) sink.value++;
  };
  const sign = (impl: Ed25519) => () => {
    for (let i = 0; i < N; i++) sink.value += impl.sign(message, alice.ed25519Secret)[0]!;
  };
  const noble = { verify: rate(N, BENCH_MS, verify(nobleEd25519)), sign: rate(N, BENCH_MS, sign(nobleEd25519)) };
  return [
    { name: `ed25519 verify ${ed25519Impl.name}`, unit: '/s', value: rate(N, BENCH_MS, verify(ed25519Impl)), baselineName: 'noble verify', baseline: noble.verify },
    { name: `ed25519 sign ${ed25519Impl.name}`, unit: '/s', value: rate(N, BENCH_MS, sign(ed25519Impl)), baselineName: 'noble sign', baseline: noble.sign },
  ];
}

/** Full-address frames from identities nobody has heard of: refused before any key agreement. */
function unknownSenderRow(): Row {
  const N = 200;
  const strangers = Array.from({ length: 16 }, () => new FrameSealer(generateIdentity(), { epoch: 1, nonce: newBootNonce() }));
  const flood = strangers.map((s) => s.sealUnicast({ dst: bob.sid, dstBoot: bobBoot, srcPort: 1, dstPort: 2, ttl: 8, payload: new Uint8Array(64) }));
  const nobody: PeerDirectory = { sidsWithShort: () => [], signingKeyOf: () => undefined, bootOf: () => undefined };
  const receiver = new FrameSealer(bob, bobBoot);
  return {
    name: 'refuse unknown sender',
    unit: '/s',
    value: rate(N, BENCH_MS, () => {
      for (let i = 0; i < N; i++) if (!receiver.open(flood[i % flood.length]!, nobody).ok) sink.value++;
    }),
    baselineName: 'one X25519 (noble)',
    baseline: rate(10, BENCH_MS, () => {
      for (let i = 0; i < 10; i++) sink.value += x25519.getSharedSecret(bob.x25519Secret, strangers[i]!.identity.sid)[0]!;
    }),
  };
}

export function overheadTable(): string[] {
  const forms: Array<[string, number]> = [
    ['compact unicast', AddressForm.COMPACT],
    ['full unicast', AddressForm.FULL],
    ['compact broadcast', AddressForm.BROADCAST_COMPACT],
    ['broadcast', AddressForm.BROADCAST],
  ];
  return [
    'frame form           overhead  budget',
    ...forms.map(([name, form]) => `${name.padEnd(21)}${String(frameOverhead(form as 0)).padEnd(10)}${form === AddressForm.COMPACT ? '32 (unicast between known peers)' : '-'}`),
  ];
}
