/**
 * Sealing and opening mesh datagrams (SPEC.md beside this file).
 *
 * Unicast: static–static X25519 between sender and receiver, then HKDF-SHA256 with the sender's
 * SID, the receiver's SID and the sender's boot epoch as info, gives a key per direction and
 * boot; ChaCha20-Poly1305 seals the payload with the header (TTL zeroed) as associated data and
 * nonce 0⁴ ‖ epoch ‖ counter. No handshake: the first datagram to a peer is already sealed.
 * Authenticate-only (amateur bands): the payload stays in clear and is authenticated with the
 * header (empty plaintext, AAD = header ‖ payload).
 *
 * Broadcast: an Ed25519 signature over header (TTL zeroed) ‖ payload. Signed rather than under a
 * network key: anyone who knows the sender's key can check it, there is no shared secret to hand
 * out or to leak, and no member can forge another's broadcasts. Payload in clear.
 *
 * Every rejection is counted by reason and nothing unauthenticated is ever returned.
 */
import { chacha20poly1305 } from '@noble/ciphers/chacha.js';
import { ed25519, x25519 } from '@noble/curves/ed25519.js';
import { hkdf } from '@noble/hashes/hkdf.js';
import { sha256 } from '@noble/hashes/sha2.js';
import {
  AddressForm,
  associatedData,
  decodeHeader,
  encodeHeader,
  isBroadcastForm,
  shortAddress,
  TAG_LENGTH,
} from './frame.js';
import { sidHex, type Identity } from './identity.js';
import { ReplayWindow } from './replay.js';

const SALT = new TextEncoder().encode('meshgw datagram v1');
const MAX_KEYS = 1024;

export interface Datagram {
  src: Uint8Array;
  /** Undefined for broadcast. */
  dst: Uint8Array | undefined;
  srcPort: number;
  dstPort: number;
  ttl: number;
  payload: Uint8Array;
  broadcast: boolean;
  authOnly: boolean;
}

export interface UnicastRequest {
  dst: Uint8Array;
  srcPort: number;
  dstPort: number;
  ttl: number;
  payload: Uint8Array;
  /** Short addresses: only when the receiver knows us (we have exchanged HELLOs). */
  compact?: boolean;
  authOnly?: boolean;
}

export interface BroadcastRequest {
  srcPort: number;
  dstPort: number;
  ttl: number;
  payload: Uint8Array;
  compact?: boolean;
}

/** What the receiver knows about other nodes. */
export interface PeerDirectory {
  /** Known SIDs whose short address is `short` (usually one). */
  sidsWithShort(short: Uint8Array): Uint8Array[];
  /** The Ed25519 key of a node, learned from its HELLO. */
  signingKeyOf(sid: Uint8Array): Uint8Array | undefined;
}

export type OpenFailure =
  | 'not-a-frame'
  | 'truncated'
  | 'not-for-us'
  | 'unknown-sender'
  | 'bad-tag'
  | 'bad-signature'
  | 'replay'
  | 'too-old'
  | 'old-epoch';

export type OpenResult = { ok: true; datagram: Datagram } | { ok: false; reason: OpenFailure };

const equal = (a: Uint8Array, b: Uint8Array): boolean => a.length === b.length && a.every((v, i) => v === b[i]);

export class FrameSealer {
  readonly rejected: Partial<Record<OpenFailure, number>> = {};
  opened = 0;
  private counter = 0;
  private readonly replay = new ReplayWindow();
  private readonly keys = new Map<string, Uint8Array>();
  private readonly shared = new Map<string, Uint8Array>();

  /**
   * @param epoch this boot's epoch (epoch.ts), strictly above every earlier boot's
   * @param nextEpoch called when the 32-bit counter is spent, for a fresh epoch
   */
  constructor(
    readonly identity: Identity,
    private epoch: number,
    private readonly nextEpoch: () => number = () => {
      throw new Error('frame counter exhausted and no way to raise the epoch');
    },
  ) {}

  sealUnicast(r: UnicastRequest): Uint8Array {
    const form = r.compact ? AddressForm.COMPACT : AddressForm.FULL;
    const me = this.identity.sid;
    const [epoch, counter] = this.nextNonce();
    const header = encodeHeader({
      form,
      authOnly: r.authOnly === true,
      ttl: r.ttl,
      dst: r.compact ? shortAddress(r.dst) : r.dst,
      src: r.compact ? shortAddress(me) : me,
      srcPort: r.srcPort,
      dstPort: r.dstPort,
      epoch,
      counter,
    });
    const key = this.key(me, r.dst, epoch);
    const aad = associatedData(header, header.length);
    const nonce = nonceOf(epoch, counter);
    const body = r.authOnly
      ? concat(r.payload, chacha20poly1305(key, nonce, concat(aad, r.payload)).encrypt(new Uint8Array(0)))
      : chacha20poly1305(key, nonce, aad).encrypt(r.payload);
    return concat(header, body);
  }

  sealBroadcast(r: BroadcastRequest): Uint8Array {
    const form = r.compact ? AddressForm.BROADCAST_COMPACT : AddressForm.BROADCAST;
    const [epoch, counter] = this.nextNonce();
    const header = encodeHeader({
      form,
      authOnly: true,
      ttl: r.ttl,
      dst: undefined,
      src: r.compact ? shortAddress(this.identity.sid) : this.identity.sid,
      srcPort: r.srcPort,
      dstPort: r.dstPort,
      epoch,
      counter,
    });
    const signed = concat(associatedData(header, header.length), r.payload);
    return concat(header, r.payload, ed25519.sign(signed, this.identity.ed25519Secret));
  }

  /** Authenticates and opens a frame addressed to this node (or a broadcast). Never throws. */
  open(frame: Uint8Array, peers: PeerDirectory): OpenResult {
    const h = decodeHeader(frame);
    if (!h.ok) return this.reject(h.reason);
    const { header, length } = h;
    const me = this.identity.sid;
    const broadcast = isBroadcastForm(header.form);
    if (!broadcast && !equal(header.dst!, header.form === AddressForm.COMPACT ? shortAddress(me) : me)) {
      return this.reject('not-for-us');
    }
    const candidates = header.src.length === me.length ? [header.src] : peers.sidsWithShort(header.src);
    if (candidates.length === 0) return this.reject('unknown-sender');
    const aad = associatedData(frame, length);
    let failure: OpenFailure | undefined;
    for (const src of candidates) {
      const verdict = this.replay.check(sidHex(src), header.epoch, header.counter);
      if (verdict !== 'fresh') {
        failure ??= verdict;
        continue;
      }
      const payload = broadcast
        ? this.verifyBroadcast(frame, length, aad, src, peers)
        : this.openUnicast(frame, length, aad, header.authOnly, src, header.epoch, header.counter);
      if (!payload) {
        failure ??= broadcast ? (peers.signingKeyOf(src) ? 'bad-signature' : 'unknown-sender') : 'bad-tag';
        continue;
      }
      this.replay.accept(sidHex(src), header.epoch, header.counter);
      this.opened++;
      return {
        ok: true,
        datagram: { src, dst: broadcast ? undefined : me, srcPort: header.srcPort, dstPort: header.dstPort, ttl: header.ttl, payload, broadcast, authOnly: header.authOnly },
      };
    }
    return this.reject(failure ?? 'bad-tag');
  }

  private openUnicast(frame: Uint8Array, length: number, aad: Uint8Array, authOnly: boolean, src: Uint8Array, epoch: number, counter: number): Uint8Array | undefined {
    const nonce = nonceOf(epoch, counter);
    const body = frame.subarray(length);
    try {
      // Inside the try: a SID from the air may be a low-order point, which key() refuses.
      const key = this.key(src, this.identity.sid, epoch);
      if (authOnly) {
        const payload = body.subarray(0, body.length - TAG_LENGTH);
        chacha20poly1305(key, nonce, concat(aad, payload)).decrypt(body.subarray(body.length - TAG_LENGTH));
        return payload.slice();
      }
      return chacha20poly1305(key, nonce, aad).decrypt(body);
    } catch {
      return undefined;
    }
  }

  private verifyBroadcast(frame: Uint8Array, length: number, aad: Uint8Array, src: Uint8Array, peers: PeerDirectory): Uint8Array | undefined {
    const edKey = peers.signingKeyOf(src);
    if (!edKey) return undefined;
    const payload = frame.subarray(length, frame.length - 64);
    const signature = frame.subarray(frame.length - 64);
    try {
      return ed25519.verify(signature, concat(aad, payload), edKey) ? payload.slice() : undefined;
    } catch {
      return undefined;
    }
  }

  private reject(reason: OpenFailure): OpenResult {
    this.rejected[reason] = (this.rejected[reason] ?? 0) + 1;
    return { ok: false, reason };
  }

  private nextNonce(): [number, number] {
    if (this.counter > 0xffffffff) {
      const epoch = this.nextEpoch();
      if (!(epoch > this.epoch)) throw new Error(`new epoch ${epoch} is not above ${this.epoch}`);
      this.epoch = epoch;
      this.counter = 0;
    }
    return [this.epoch, this.counter++];
  }

  /** The key for frames from `src` to `dst` sealed in the sender's `epoch`; cached, bounded. */
  private key(src: Uint8Array, dst: Uint8Array, epoch: number): Uint8Array {
    const me = this.identity.sid;
    const peer = equal(src, me) ? dst : src;
    const id = `${sidHex(src)}>${sidHex(dst)}@${epoch}`;
    let key = this.keys.get(id);
    if (key) return key;
    const peerHex = sidHex(peer);
    let ss = this.shared.get(peerHex);
    if (!ss) {
      ss = x25519.getSharedSecret(this.identity.x25519Secret, peer);
      if (ss.every((b) => b === 0)) throw new RangeError(`peer key ${peerHex.slice(0, 8)} is a low-order point`);
      remember(this.shared, peerHex, ss);
    }
    const info = new Uint8Array(32 + 32 + 4);
    info.set(src, 0);
    info.set(dst, 32);
    new DataView(info.buffer).setUint32(64, epoch);
    key = hkdf(sha256, ss, SALT, info, 32);
    remember(this.keys, id, key);
    return key;
  }
}

function remember(map: Map<string, Uint8Array>, id: string, value: Uint8Array): void {
  map.set(id, value);
  if (map.size > MAX_KEYS) map.delete(map.keys().next().value!);
}

function nonceOf(epoch: number, counter: number): Uint8Array {
  const n = new Uint8Array(12);
  const v = new DataView(n.buffer);
  v.setUint32(4, epoch);
  v.setUint32(8, counter);
  return n;
}

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}
