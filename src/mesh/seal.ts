/**
 * Sealing and opening mesh datagrams (SPEC.md beside this file).
 *
 * Unicast: static–static X25519 between sender and receiver, then HKDF-SHA256 with both SIDs
 * and both sides' boot tokens as info, gives a key per direction and per pair of boots;
 * ChaCha20-Poly1305 seals the payload with the header (TTL zeroed) as associated data and
 * nonce 0⁴ ‖ epoch ‖ counter. No handshake: the first datagram to a peer is already sealed.
 * Authenticate-only (amateur bands): the payload stays in clear and is authenticated with the
 * header (empty plaintext, AAD = header ‖ payload).
 *
 * Why both boot tokens are in the key:
 * - the sender's boot nonce (random, once per boot) keeps (key, nonce) pairs unique even when
 *   an epoch repeats — an epoch file rolled back by a power cut or a backup, or the key file
 *   copied to a second machine;
 * - the receiver's boot token means a frame sealed before the receiver restarted never opens
 *   after it, so a restarted receiver refuses old captures without any replay state on disk.
 *
 * Broadcast: an Ed25519 signature over header (TTL zeroed) ‖ sender's boot nonce ‖ payload. The
 * boot nonce is not on the wire (receivers know it from the HELLO/TC) but is signed, so that after
 * an epoch file was rolled back a broadcast of the earlier boot cannot pass as the current boot's.
 * Signed rather than under a network key: anyone who knows the sender's key can check it, there
 * is no shared secret to hand out or to leak, and no member can forge another's broadcasts.
 * Payload in clear.
 *
 * Opening is ordered by cost: the directory decides first (an unknown sender costs a map
 * lookup, never a key agreement), then the replay window is consulted read-only, then the tag
 * or signature, and only an authenticated frame moves the window. Every rejection is counted by
 * reason and nothing unauthenticated is ever returned.
 */
import { randomBytes } from 'node:crypto';
import { x25519 } from '@noble/curves/ed25519.js';
import { ed25519Impl } from './ed25519.js';
import { hkdf } from '@noble/hashes/hkdf.js';
import { sha256 } from '@noble/hashes/sha2.js';
import {
  AddressForm,
  associatedData,
  decodeHeader,
  encodeHeader,
  isBroadcastForm,
  shortAddress,
  SIGNATURE_LENGTH,
  TAG_LENGTH,
  type DatagramPriority,
  type FrameHeader,
} from './frame.js';
import { aead } from './aead.js';
import { SID_LENGTH, sidHex, type Identity } from './identity.js';
import { ReplayWindow } from './replay.js';

const SALT = new TextEncoder().encode('meshgw datagram v1');
export const BOOT_NONCE_LENGTH = 8;
/** Shared secrets kept (one per peer). */
const MAX_SHARED = 4096;
/** Derived keys kept: one per direction and pair of boots, so two per peer. */
const MAX_KEYS = 2 * MAX_SHARED;
const MAX_U32 = 0xffffffff;

/**
 * Names one boot of a node: the epoch it started with (epoch.ts) and 8 random bytes chosen once
 * per boot. It travels in the node's signed HELLO/TC (the BOOT TLV), and is fixed for the whole
 * boot: when the frame counter is spent, frames carry a higher epoch, but the token stays.
 */
export interface BootToken {
  readonly epoch: number;
  readonly nonce: Uint8Array;
}

/** A fresh boot nonce: call once per boot. */
export function newBootNonce(): Uint8Array {
  return new Uint8Array(randomBytes(BOOT_NONCE_LENGTH));
}

function isBootToken(t: BootToken): boolean {
  return Number.isInteger(t.epoch) && t.epoch >= 0 && t.epoch <= MAX_U32 && t.nonce.length === BOOT_NONCE_LENGTH;
}

export interface SealerOptions {
  /** Called when the 32-bit counter is spent, for a fresh epoch above the current one. */
  nextEpoch?: () => number;
  /** Sees every (key, 12-byte nonce) used to seal a unicast; do not modify them (for tests). */
  onKeyUse?: (key: Uint8Array, nonce: Uint8Array) => void;
  /** Senders with replay windows (default 8192); beyond it new senders are refused. */
  maxSenders?: number;
}

export interface Datagram {
  src: Uint8Array;
  /** Undefined for broadcast. */
  dst: Uint8Array | undefined;
  srcPort: number;
  dstPort: number;
  ttl: number;
  /** The class the sender gave it (authenticated). */
  priority: DatagramPriority;
  payload: Uint8Array;
  broadcast: boolean;
  authOnly: boolean;
}

export interface UnicastRequest {
  dst: Uint8Array;
  /** The destination's current boot token, from its signed HELLO/TC. */
  dstBoot: BootToken;
  srcPort: number;
  dstPort: number;
  ttl: number;
  payload: Uint8Array;
  /** Default bulk. */
  priority?: DatagramPriority;
  /** Short addresses: only when the receiver knows us (we have exchanged HELLOs). */
  compact?: boolean;
  authOnly?: boolean;
}

export interface BroadcastRequest {
  srcPort: number;
  dstPort: number;
  ttl: number;
  payload: Uint8Array;
  /** Default bulk. */
  priority?: DatagramPriority;
  compact?: boolean;
}

/** What the receiver knows about other nodes, all of it authenticated by the control plane. */
export interface PeerDirectory {
  /** Known SIDs whose short address is `short` (usually one). */
  sidsWithShort(short: Uint8Array): Uint8Array[];
  /** The Ed25519 key of a node, learned from its HELLO/TC; undefined for a node we do not know. */
  signingKeyOf(sid: Uint8Array): Uint8Array | undefined;
  /** The node's latest boot token from its signed HELLO/TC. It must never go back to an older boot. */
  bootOf(sid: Uint8Array): BootToken | undefined;
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
  | 'old-epoch'
  | 'sender-table-full';

export type OpenResult = { ok: true; datagram: Datagram } | { ok: false; reason: OpenFailure };

/** A decoded frame on its way through `open`. */
interface Incoming {
  frame: Uint8Array;
  header: FrameHeader;
  /** Header length. */
  length: number;
  aad: Uint8Array;
  broadcast: boolean;
}

function equal(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
const toHex = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');

export class FrameSealer {
  readonly rejected: Partial<Record<OpenFailure, number>> = {};
  opened = 0;
  /** X25519 computations so far: what a flood would make us spend (cached per peer). */
  keyAgreements = 0;
  private epoch: number;
  private counter = 0;
  private readonly replay: ReplayWindow;
  private readonly keys = new Map<string, Uint8Array>();
  /** The last two keys used, with their HKDF info (see key()). */
  private readonly lastKeys: Array<{ info: Uint8Array; key: Uint8Array } | undefined> = [undefined, undefined];
  private lastKeyTurn = 0;
  private readonly shared = new Map<string, Uint8Array>();
  private readonly nextEpoch: () => number;
  private readonly onKeyUse: ((key: Uint8Array, nonce: Uint8Array) => void) | undefined;

  /**
   * @param boot this boot's token: its epoch (epoch.ts), strictly above every earlier boot's
   * when the epoch file is intact, and a nonce from `newBootNonce()`
   */
  constructor(
    readonly identity: Identity,
    readonly boot: BootToken,
    options: SealerOptions = {},
  ) {
    if (!isBootToken(boot)) throw new RangeError(`boot token needs an epoch 0..${MAX_U32} and a ${BOOT_NONCE_LENGTH}-byte nonce`);
    this.epoch = boot.epoch;
    this.nextEpoch =
      options.nextEpoch ??
      (() => {
        throw new Error('frame counter exhausted and no way to raise the epoch');
      });
    this.onKeyUse = options.onKeyUse;
    this.replay = new ReplayWindow(options.maxSenders === undefined ? {} : { maxSenders: options.maxSenders });
  }

  /** Senders with a live replay window. */
  get senders(): number {
    return this.replay.senders;
  }

  sealUnicast(r: UnicastRequest): Uint8Array {
    if (!isBootToken(r.dstBoot)) throw new RangeError(`dstBoot needs an epoch 0..${MAX_U32} and a ${BOOT_NONCE_LENGTH}-byte nonce`);
    const me = this.identity.sid;
    const [epoch, counter] = this.nextNonce();
    const header = encodeHeader({
      form: r.compact ? AddressForm.COMPACT : AddressForm.FULL,
      authOnly: r.authOnly === true,
      ttl: r.ttl,
      priority: r.priority ?? 'bulk',
      dst: r.compact ? shortAddress(r.dst) : r.dst,
      src: r.compact ? shortAddress(me) : me,
      srcPort: r.srcPort,
      dstPort: r.dstPort,
      epoch,
      counter,
    });
    const key = this.key(me, { epoch, nonce: this.boot.nonce }, r.dst, r.dstBoot);
    const nonce = nonceOf(epoch, counter);
    this.onKeyUse?.(key, nonce);
    const aad = associatedData(header, header.length);
    const body = r.authOnly
      ? concat(r.payload, aead.seal(key, nonce, concat(aad, r.payload), EMPTY))
      : aead.seal(key, nonce, aad, r.payload);
    return concat(header, body);
  }

  sealBroadcast(r: BroadcastRequest): Uint8Array {
    const [epoch, counter] = this.nextNonce();
    const header = encodeHeader({
      form: r.compact ? AddressForm.BROADCAST_COMPACT : AddressForm.BROADCAST,
      authOnly: true,
      ttl: r.ttl,
      priority: r.priority ?? 'bulk',
      dst: undefined,
      src: r.compact ? shortAddress(this.identity.sid) : this.identity.sid,
      srcPort: r.srcPort,
      dstPort: r.dstPort,
      epoch,
      counter,
    });
    const signed = concat(associatedData(header, header.length), this.boot.nonce, r.payload);
    return concat(header, r.payload, ed25519Impl.sign(signed, this.identity.ed25519Secret));
  }

  /** Authenticates and opens a frame addressed to this node (or a broadcast). Never throws. */
  open(frame: Uint8Array, peers: PeerDirectory): OpenResult {
    const h = decodeHeader(frame);
    if (!h.ok) return this.reject(h.reason);
    const { header, length } = h;
    const broadcast = isBroadcastForm(header.form);
    if (!broadcast && !this.addressedToMe(header)) return this.reject('not-for-us');
    const input: Incoming = { frame, header, length, aad: associatedData(frame, length), broadcast };
    const candidates = header.src.length === SID_LENGTH ? [header.src] : peers.sidsWithShort(header.src);
    let failure: OpenFailure | undefined;
    // A short source may match several known nodes: each one's key is tried, the tag decides.
    for (const src of candidates) {
      const r = this.openFrom(src, input, peers);
      if (typeof r === 'string') failure ??= r;
      else return this.delivered(src, header, r, broadcast);
    }
    return this.reject(failure ?? 'unknown-sender');
  }

  /**
   * The control plane forgot this node: its replay window moves to the graveyard (it comes
   * back, with its old frames still replays, if the node does) and its shared secret is dropped.
   */
  forget(sid: Uint8Array): void {
    this.replay.forget(sidHex(sid));
    this.shared.delete(sidHex(sid));
  }

  // -------------------------------------------------------------------------------------------

  /** The payload of a frame from `src`, or why not; cheapest checks first. */
  private openFrom(src: Uint8Array, input: Incoming, peers: PeerDirectory): Uint8Array | OpenFailure {
    const { header } = input;
    const known = this.knownSender(src, header, peers);
    if (typeof known === 'string') return known;
    const { edKey, boot } = known;
    const sender = sidHex(src);
    const bootId = toHex(boot.nonce);
    const seen = this.replay.check(sender, bootId, header.epoch, header.counter);
    if (seen !== 'fresh') return seen;
    const payload = input.broadcast ? this.verifyBroadcast(input, edKey, boot) : this.openUnicast(input, src, boot);
    if (!payload) return input.broadcast ? 'bad-signature' : 'bad-tag';
    const moved = this.replay.accept(sender, bootId, header.epoch, header.counter);
    return moved === 'fresh' ? payload : moved;
  }

  /**
   * The directory's verdict on a sender, before any key agreement: floods from throwaway
   * identities (never authenticated through HELLO/TC) cost a map lookup and nothing more.
   */
  private knownSender(src: Uint8Array, header: FrameHeader, peers: PeerDirectory): { edKey: Uint8Array; boot: BootToken } | OpenFailure {
    const edKey = peers.signingKeyOf(src);
    if (!edKey) return 'unknown-sender';
    const boot = peers.bootOf(src);
    if (!boot || !isBootToken(boot)) return 'unknown-sender';
    // A boot never seals below the epoch it started with: this is an earlier boot's frame.
    if (header.epoch < boot.epoch) return 'old-epoch';
    return { edKey, boot };
  }

  private addressedToMe(header: FrameHeader): boolean {
    const me = this.identity.sid;
    return equal(header.dst!, header.form === AddressForm.COMPACT ? shortAddress(me) : me);
  }

  private delivered(src: Uint8Array, header: FrameHeader, payload: Uint8Array, broadcast: boolean): OpenResult {
    this.opened++;
    const datagram: Datagram = {
      src,
      dst: broadcast ? undefined : this.identity.sid,
      srcPort: header.srcPort,
      dstPort: header.dstPort,
      ttl: header.ttl,
      priority: header.priority ?? 'bulk',
      payload,
      broadcast,
      authOnly: header.authOnly,
    };
    return { ok: true, datagram };
  }

  private openUnicast(input: Incoming, src: Uint8Array, srcBoot: BootToken): Uint8Array | undefined {
    const { frame, header, length, aad } = input;
    const nonce = nonceOf(header.epoch, header.counter);
    const body = frame.subarray(length);
    try {
      // Inside the try: a SID may be a low-order point, which key() refuses.
      const key = this.key(src, { epoch: header.epoch, nonce: srcBoot.nonce }, this.identity.sid, this.boot);
      if (header.authOnly) {
        const payload = body.subarray(0, body.length - TAG_LENGTH);
        if (aead.open(key, nonce, concat(aad, payload), body.subarray(body.length - TAG_LENGTH)) === undefined) return undefined;
        return payload.slice();
      }
      return aead.open(key, nonce, aad, body);
    } catch {
      return undefined;
    }
  }

  private verifyBroadcast(input: Incoming, edKey: Uint8Array, srcBoot: BootToken): Uint8Array | undefined {
    const { frame, length, aad } = input;
    const payload = frame.subarray(length, frame.length - SIGNATURE_LENGTH);
    const signature = frame.subarray(frame.length - SIGNATURE_LENGTH);
    return ed25519Impl.verify(signature, concat(aad, srcBoot.nonce, payload), edKey) ? payload.slice() : undefined;
  }

  private reject(reason: OpenFailure): OpenResult {
    this.rejected[reason] = (this.rejected[reason] ?? 0) + 1;
    return { ok: false, reason };
  }

  private nextNonce(): [number, number] {
    if (this.counter > MAX_U32) {
      const epoch = this.nextEpoch();
      if (!(epoch > this.epoch)) throw new Error(`new epoch ${epoch} is not above ${this.epoch}`);
      this.epoch = epoch;
      this.counter = 0;
    }
    return [this.epoch, this.counter++];
  }

  /**
   * The key for frames from `src` to `dst`. `srcBoot` is the sender's boot nonce with the epoch
   * in the frame header (which may be above its boot epoch); `dstBoot` is the receiver's token.
   * Cached, bounded.
   */
  private key(src: Uint8Array, srcBoot: BootToken, dst: Uint8Array, dstBoot: BootToken): Uint8Array {
    const info = keyInfo(src, srcBoot, dst, dstBoot);
    // A stream of frames uses one key a direction: the last two are compared byte for byte
    // before the cache's hex id is made.
    for (const last of this.lastKeys) if (last !== undefined && equal(last.info, info)) return last.key;
    const id = toHex(info);
    let key = this.keys.get(id);
    if (!key) {
      const ss = this.sharedWith(equal(src, this.identity.sid) ? dst : src);
      key = hkdf(sha256, ss, SALT, info, 32);
      remember(this.keys, id, key, MAX_KEYS);
    }
    this.lastKeys[this.lastKeyTurn] = { info, key };
    this.lastKeyTurn ^= 1;
    return key;
  }

  /** X25519 with a peer, cached per peer; throws on a low-order point. */
  private sharedWith(peer: Uint8Array): Uint8Array {
    const peerHex = sidHex(peer);
    let ss = this.shared.get(peerHex);
    if (ss) return ss;
    this.keyAgreements++;
    ss = x25519.getSharedSecret(this.identity.x25519Secret, peer);
    if (ss.every((b) => b === 0)) throw new RangeError(`peer key ${peerHex.slice(0, 8)} is a low-order point`);
    remember(this.shared, peerHex, ss, MAX_SHARED);
    return ss;
  }
}

/** HKDF info: src SID ‖ dst SID ‖ src epoch (u32 BE) ‖ src boot nonce ‖ dst epoch (u32 BE) ‖ dst boot nonce. */
function keyInfo(src: Uint8Array, srcBoot: BootToken, dst: Uint8Array, dstBoot: BootToken): Uint8Array {
  const info = new Uint8Array(2 * SID_LENGTH + 2 * (4 + BOOT_NONCE_LENGTH));
  const view = new DataView(info.buffer);
  let o = 0;
  info.set(src, o);
  o += SID_LENGTH;
  info.set(dst, o);
  o += SID_LENGTH;
  for (const boot of [srcBoot, dstBoot]) {
    view.setUint32(o, boot.epoch);
    info.set(boot.nonce, o + 4);
    o += 4 + BOOT_NONCE_LENGTH;
  }
  return info;
}

/** Insertion-order cache: the oldest entry goes first. */
function remember(map: Map<string, Uint8Array>, id: string, value: Uint8Array, max: number): void {
  map.set(id, value);
  if (map.size > max) map.delete(map.keys().next().value!);
}

const EMPTY = new Uint8Array(0);

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
