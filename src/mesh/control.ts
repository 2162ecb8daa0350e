/**
 * The mesh control plane, sans-IO: neighbour discovery (HELLO, NHDP-like) and topology (TC,
 * OLSRv2-like) in RFC 5444 messages, written with the project's writer and read with its reader.
 *
 * HELLO (message type 0, hop limit 1), per interface: originator = the first 16 bytes of the SID;
 * message TLVs INTERVAL_TIME (0) and VALIDITY_TIME (1) (RFC 5497), BOOT (228), KEYS (224, the
 * Ed25519 key, while some neighbour on the interface may not know us, and every 4th HELLO), ICV
 * (5/1, RFC 7182, Ed25519); one address per heard neighbour with LINK_STATUS (3: 0 lost,
 * 1 symmetric, 2 heard) and IN_RATIO (225: how well we hear that neighbour's HELLOs, × 255). A
 * link is symmetric when each side hears the other. The HELLO interval adapts to the link's
 * airtime budget and to how many nodes share the channel (see helloInterval).
 *
 * A HELLO names at most `helloMaxNeighbours` (default 32) neighbours per interface, however many
 * are heard: the symmetric ones first (best IN_RATIO first, a link heard fewer than 4 times
 * counting that share of it, then the longest-standing), then those heard but not symmetric
 * (most recently heard first), then the LOST ones; the rest are left out. A neighbour left out
 * stops hearing itself in our HELLOs, so its side of the link ceases to be symmetric: past 32
 * nodes on one channel, the best links win. With the 255-byte LoRa MTU a full HELLO is at most
 * MAX_HELLO_FRAGMENTS_255 fragments.
 *
 * TC (message type 1, hop limit 255), flooded on every interface: originator, KEYS (always: far
 * nodes may never have heard a HELLO from it), VALIDITY_TIME, BOOT, ICV; one address per symmetric
 * neighbour (at most MAX_TC_EDGES, cheapest first) with LINK_COST (226, float32 ms per byte) and
 * LINK_MTU (227, u16), and TC_FRAGMENT (229: index, count) when it is split. Each node rebroadcasts a new TC fragment at most once, and only where a
 * neighbour may not have heard it (see forward): no MPR election, but no echo in a full mesh. A
 * change triggers an early TC at most four times per TC interval (see dirtyTcAt).
 *
 * An interface needs an MTU of at least MIN_CONTROL_MTU (191 bytes): a TC (with room for TC_FRAGMENT) or a HELLO with its
 * KEYS, BOOT and ICV and one address.
 *
 * BOOT (228, 12 bytes): the originator's boot token, epoch (u32, big-endian) ‖ nonce (8 bytes).
 * It is a message TLV, so the ICV signs it. `node(id).boot` is the latest authenticated one.
 *
 * Freshness, before any state changes: per originator and kind — HELLOs per (receiving
 * interface, originator), since HELLO sequence numbers count per sending interface; TCs per
 * originator — (epoch, seqno) must rise. A higher epoch is new (a restarted node is believed at
 * once); an epoch below the highest authenticated one of that node is stale on every interface;
 * within the epoch the seqno must be newer in 16-bit serial arithmetic; the same (epoch, seqno)
 * is another fragment of the current message, taken once per distinct fragment. Anything else
 * is dropped and counted (`stale`, `duplicate`) and changes nothing — not the link, not its
 * endpoint, not its validity. The check runs against stored state before the signature is
 * verified; the state moves only after. It lives in the known-node entry, so it outlives links
 * and TCs, and a forgotten node's freshness goes to a FIFO graveyard, so its old messages stay
 * stale. Serial arithmetic cannot order seqnos further apart than half the cycle, so a state
 * older than the time its sender needs for 32,767 messages (0.9 × minHelloMs each: ~16 h at 2 s,
 * assuming its minimum interval is not below ours) takes any other seqno of that epoch as new —
 * else a node unheard that long would be ignored for as long again; a replay older than that
 * passes once. Also residual: a HELLO of the current epoch replayed on another of our
 * interfaces, where we hold no state for its sender yet, is taken once there.
 *
 * Admission, before expensive work: a message from an originator we do not know costs a key
 * derivation and an Ed25519 verification, so each interface admits new identities from a token
 * bucket (`newIdentityRate` per second, `newIdentityBurst`); refused ones are counted
 * (`admissionRefused`). Known nodes are always verified. Verified fragments are remembered by
 * the SHA-256 of their canonical encoding and ICV (which covers originator, epoch and seqno), so a
 * fragment arriving over several paths is verified once, and a forged copy never matches.
 *
 * Validity from the air is capped to what a node of this code sends: a HELLO's to
 * [3 × minHelloMs, 3 × maxHelloMs], a TC's to [6 × minHelloMs, 6 × maxHelloMs]. A TC is also
 * kept for at least three of the receiver's own TC intervals: an originator on fast links
 * (Wi-Fi, a TC every few seconds, valid for seconds) reaches a node behind a slow one (LoRa at
 * 1 %, a TC through it every few minutes) only that often, and would otherwise expire there
 * before the next copy could arrive — the node would never route to it. A newer TC still
 * replaces the one held at once.
 *
 * Tables and their caps (the exported MAX_* constants; ARCHITECTURE.md copies them): no table
 * grows without bound, and no eviction scans a table. A known, useful node (one with a link or a
 * live TC) is never evicted for an unknown one: at the node cap a newcomer only takes the place
 * of the least recently heard idle node (an insertion-ordered map, so the pick is O(1)), else it
 * is refused before its signature is checked. Expiry runs from a min-heap of deadlines with one
 * live entry per link or TC, so neither a HELLO nor `nextDeadline` costs in proportion to the
 * tables.
 *
 * Routes use only confirmed edges (routing.ts's `confirmedTopology`): an edge a→b counts when b
 * advertises b→a too, or b is this node and a is a symmetric neighbour; a cost no real link can
 * have (below MIN_LINK_MS_PER_BYTE, or not finite) is refused when the TC is read.
 *
 * Output: each packet is tagged for the pacer with its kind — 'hello' (generation: that HELLO's
 * seqno), 'tc' for our own TCs (generation: the TC seqno), `tc:<originator>` for a forwarded TC
 * (generation: its seqno) — and holds messages of that one kind only, so a pacer may replace a
 * queued frame of a kind by one of another generation.
 *
 * Node ids in routing are the hex of the first 16 bytes of a SID (the RFC 5444 address).
 */
import { sha256 } from '@noble/hashes/sha2.js';
import { decodeTime, encodeTime } from '../rfc5444/time-tlv.js';
import { Rfc5444Reader, type MessageConsumer, type MessageContext } from '../rfc5444/reader.js';
import { Rfc5444Writer, sequencedPackets, type AddressHandle, type MessageTlvFinishContext } from '../rfc5444/writer.js';
import type { Message, Tlv } from '../rfc5444/model.js';
import type { Endpoint } from '../link/link.js';
import { DeadlineHeap } from './deadline-heap.js';
import { sidHex as hex, sidOfSigningKey, type Identity } from './identity.js';
import type { BootToken } from './seal.js';
import { ICV_EXT_GENERIC, ICV_LENGTH, TLV_ICV, TLV_KEYS, canonicalMessage, icvValue, verifyIcv } from './signing.js';
import { MIN_LINK_MS_PER_BYTE, confirmedTopology, linkCost, usableCost, type Advertised, type LocalLink, type TopologyEdge } from './routing.js';

export type { BootToken } from './seal.js';

export const MSG_HELLO = 0;
export const MSG_TC = 1;
const TLV_INTERVAL = 0;
const TLV_VALIDITY = 1;
const TLV_LINK_STATUS = 3;
const TLV_IN_RATIO = 225;
const TLV_LINK_COST = 226;
const TLV_LINK_MTU = 227;
/**
 * TC_FRAGMENT (229, 2 bytes: index, count; meshgw's own type) in each fragment of a TC that the
 * writer had to split; absent from a TC sent whole. A receiver keeps the edges of the previous
 * seqno until every fragment of the new one has come (or TC_FRAGMENT_GRACE_MS has passed), so a
 * TC's later fragments do not vanish from the topology each time the first of a new seqno lands.
 */
const TLV_TC_FRAGMENT = 229;
/** BOOT: epoch (u32, big-endian) ‖ boot nonce (8 bytes), in every HELLO and TC. meshgw's own type. */
export const TLV_BOOT = 228;
const BOOT_LENGTH = 12;
const BOOT_NONCE_LENGTH = 8;
/** HELLOs after which a link's IN_RATIO counts in full when ranking the neighbours a HELLO names. */
const PROVEN_HELLOS = 4;
const LOST = 0;
const SYMMETRIC = 1;
const HEARD = 2;

// --- caps (each with its overflow policy) -------------------------------------------------------
/** Known nodes (keys, boot tokens, freshness), this node included: a newcomer takes the place of the least recently heard idle node (no link, no live TC), else it is refused (`nodesRefused`). */
export const MAX_NODES = 4096;
/** Links per interface: a HELLO from a new neighbour at the cap is refused (`linksRefused`); existing links are kept. */
export const MAX_LINKS_PER_INTERFACE = 256;
/** TC entries: one per known node, so at most MAX_NODES; a TC whose originator cannot be known is refused with it. */
export const MAX_TCS = MAX_NODES;
/** Edges kept per TC (and advertised in ours, cheapest first): further ones are ignored (`edgesRefused`). */
export const MAX_TC_EDGES = 64;
/** TC copies held for their forwarding time at most; beyond, a copy is forwarded at once. */
export const MAX_PENDING_FORWARDS = 256;
/** (interface, originator) forwarding buckets kept, at most (the least recently used goes). */
const MAX_FORWARD_RECORDS = 4096;
/** TCs of one originator forwarded onto one interface at once, before one per spacing. */
const FORWARD_BURST = 3;
/** Other copies heard that cancel our forward. */
const FLOOD_COPIES = 2;
/** A forward waits up to this many full frames' airtime ÷ duty cycle (random), at most MAX_FLOOD_DELAY_MS. */
const FLOOD_WINDOW_FRAMES = 4;
const MAX_FLOOD_DELAY_MS = 30_000;
/**
 * How long the edges of a TC's previous seqno outlive its first new fragment: the fragments of
 * one TC go back to back, but each is forwarded on its own, with up to MAX_FLOOD_DELAY_MS of
 * flood delay per hop. Replacing the whole set at the first fragment made every multi-fragment
 * TC's later edges (and the routes over them) vanish until their fragment came, at every round.
 */
const TC_FRAGMENT_GRACE_MS = 2 * MAX_FLOOD_DELAY_MS;

interface PendingForward {
  bytes: Uint8Array;
  wanted: Set<string>;
  origin: string;
  seqno: number;
  at: number;
  /** Other copies heard, per interface they were heard on. */
  copies: Map<string, number>;
}
/** Advertised edges kept over all TCs (1,000 nodes of 16 neighbours; bounds a route computation): a TC's edges beyond it are ignored (`edgesRefused`); nobody's edges are evicted for them. */
export const MAX_TOPOLOGY_EDGES = 16_384;
/** The duplicate set: verified fragments by digest, FIFO; a forgotten one only costs another verification if it comes again. */
export const MAX_VERIFIED = 8192;
/** Freshness of forgotten nodes, FIFO: past it, a long-forgotten node's old HELLO or TC passes as fresh once. */
export const MAX_GRAVEYARD = 16_384;
/** Distinct fragments taken of one message (per originator and kind): more are dropped (`duplicate`). */
export const MAX_FRAGMENTS = 64;
/** Neighbours named in one HELLO per interface, by default; see the file comment for which. */
export const DEFAULT_HELLO_MAX_NEIGHBOURS = 32;
/** Fragments of a HELLO naming 32 neighbours on a 255-byte MTU, at most: a fragment with KEYS holds 4 addresses even when every address TLV differs (244 bytes), so ⌈32 ÷ 4⌉. */
export const MAX_HELLO_FRAGMENTS_255 = 8;
/** The smallest interface MTU that holds a HELLO or a TC with KEYS, BOOT, TC_FRAGMENT, ICV and one address (measured). */
export const MIN_CONTROL_MTU = 191;

export interface ControlLimits {
  nodes: number;
  linksPerInterface: number;
  tcEdges: number;
  topologyEdges: number;
  verified: number;
  graveyard: number;
}

const DEFAULT_LIMITS: ControlLimits = {
  nodes: MAX_NODES,
  linksPerInterface: MAX_LINKS_PER_INTERFACE,
  tcEdges: MAX_TC_EDGES,
  topologyEdges: MAX_TOPOLOGY_EDGES,
  verified: MAX_VERIFIED,
  graveyard: MAX_GRAVEYARD,
};

export interface ControlInterface {
  name: string;
  mtu: number;
  airtimeMs(bytes: number): number;
  /** Share of time the band allows this transmitter (EU868 g3: 0.1); default 1. */
  dutyFraction?: number;
  /** Every member hears every other (an MQTT topic): a TC is never flooded back onto it. */
  fullMesh?: boolean;
}

export interface ControlOptions {
  identity: Identity;
  /** This boot's token (seal.ts): the epoch and 8 random bytes, signed into every HELLO and TC. */
  boot: BootToken;
  random?: () => number;
  minHelloMs?: number;
  maxHelloMs?: number;
  /** Share of an interface's airtime budget HELLOs may use; default 0.1. */
  helloShare?: number;
  /** Share of an interface's airtime budget flooded TCs (ours and those we forward) may use; default 0.2. */
  tcShare?: number;
  /**
   * Forward a TC after a random delay of up to a few frames' airtime, and not at all when two
   * other copies of it were heard meanwhile (see forward). Default true; false forwards at once.
   */
  floodSuppression?: boolean;
  /** Neighbours named per HELLO per interface; default 32. */
  helloMaxNeighbours?: number;
  /** New identities (unknown originators) admitted per second per interface; default 2. */
  newIdentityRate?: number;
  /** Burst of that token bucket; default 16. */
  newIdentityBurst?: number;
  /** Called when a node leaves the known-node table (its sealing state may go too). */
  onNodeForgotten?: (id: string, sid: Uint8Array) => void;
  /** Smaller (or larger) tables than the MAX_* defaults: tests, small devices. */
  limits?: Partial<ControlLimits>;
}

export interface Neighbour {
  id: string;
  sid: Uint8Array | undefined;
  iface: string;
  symmetric: boolean;
  /** How well we hear its HELLOs (0..1). */
  inRatio: number;
  /** How well it hears ours, as it reports (0..1). */
  outRatio: number;
  endpoint: Endpoint | undefined;
  /** When we last heard one of its HELLOs (the control plane's `now`). */
  lastHeardAt: number;
  /** Signal of its last HELLO, where the link reports it (LoRa modems, the simulator). */
  rssiDbm?: number;
  snrDb?: number;
}

/** Received signal of a frame, where the link reports it. */
export interface FrameSignal {
  rssiDbm?: number;
  snrDb?: number;
}

/** One packet for the air, tagged for the pacer (see the file comment). */
export interface ControlOutput {
  iface: string;
  bytes: Uint8Array;
  kind: string;
  generation: number;
}

export interface KnownNode {
  id: string;
  sid: Uint8Array;
  edKey: Uint8Array;
  /** The latest authenticated boot token (ours for this node). */
  boot: BootToken | undefined;
}

/** Table sizes, for tests, status and benchmarks. */
export interface ControlTables {
  nodes: number;
  idleNodes: number;
  links: number;
  tcs: number;
  /** Advertised edges stored (before confirmation). */
  edges: number;
  graveyard: number;
  verified: number;
  deadlines: number;
}

export interface ControlCounters {
  hellosSent: number;
  hellosReceived: number;
  tcsSent: number;
  tcsReceived: number;
  tcsForwarded: number;
  /** TC forwards cancelled because enough neighbours were heard forwarding the same copy. */
  tcsSuppressed: number;
  noKey: number;
  badIcv: number;
  badKey: number;
  /** Packets that are not RFC 5444, and messages without a 16-byte originator or a seqno. */
  malformed: number;
  /** Messages without a valid BOOT TLV. */
  badBoot: number;
  /** Older than what this node already has from the originator: dropped, nothing changed. */
  stale: number;
  /** A fragment of the current message already taken (or one past MAX_FRAGMENTS). */
  duplicate: number;
  /** Unknown originators refused by the interface's new-identity token bucket. */
  admissionRefused: number;
  /** Unknown originators refused because the known-node table is full of useful nodes. */
  nodesRefused: number;
  /** New neighbours refused because their interface's link table is full. */
  linksRefused: number;
  /** Advertised edges ignored: over MAX_TC_EDGES per TC or MAX_TOPOLOGY_EDGES in all. */
  edgesRefused: number;
  /** Advertised edges ignored for a cost no real link has (below the floor, or not finite). */
  badCost: number;
  /** Signature checks saved by the verified set. */
  verifyCached: number;
  /** Nodes that left the known-node table. */
  forgotten: number;
}

/** Expiring entries (links, TCs) carry their place in the deadline heap. */
interface Timed {
  readonly kind: 'link' | 'tc';
  /** The deadline of this entry's one live heap entry (Infinity: none). */
  scheduledAt: number;
  alive: boolean;
}

interface LinkState extends Timed {
  readonly kind: 'link';
  id: string;
  iface: string;
  lastEpoch: number | undefined;
  lastSeq: number | undefined;
  inRatio: number;
  outRatio: number;
  /** When the link was created, and how many HELLOs (not fragments) it has heard. */
  since: number;
  hellos: number;
  heardAt: number;
  heardUntil: number;
  theyHearUsUntil: number;
  /** Advertised as LOST until then, after it stopped being heard. */
  lostUntil: number;
  validityMs: number;
  endpoint: Endpoint | undefined;
  rssiDbm?: number;
  snrDb?: number;
}

interface TcState extends Timed {
  readonly kind: 'tc';
  id: string;
  validUntil: number;
  edges: Map<string, { cost: number; mtu: number }>;
  /**
   * Edges of the previous seqno that no fragment of the current one has named yet: kept until
   * `sweepAt` (the later fragments may still be on their way), then dropped.
   */
  carried: Set<string>;
  sweepAt: number;
  /** Fragment indexes of the current seqno seen, and how many it has (1: sent whole). */
  fragmentsSeen: Set<number>;
  fragmentCount: number;
  /** When its current seqno first arrived, and the recent longest gap between new seqnos here (decaying; 0: none yet). */
  newAt: number;
  gapMs: number;
}

interface IfaceState {
  cfg: ControlInterface;
  seq: number;
  helloCount: number;
  nextHello: number;
  /** When a HELLO was last brought forward for a new neighbour (see triggerHello). */
  triggeredAt: number;
  links: Map<string, LinkState>;
  /** New-identity token bucket. */
  tokens: number;
  tokensAt: number;
}

/** Where one originator's messages of one kind have got to. */
interface Fresh {
  epoch: number;
  seqno: number;
  /** When that (epoch, seqno) was first taken. */
  at: number;
  /** Digests of the fragments taken; undefined once forgotten (then the same seqno is stale). */
  frags: Set<string> | undefined;
}

interface NodeEntry {
  id: string;
  sid: Uint8Array;
  edKey: Uint8Array;
  boot: BootToken | undefined;
  /** The highest epoch authenticated from this node: anything below is stale. */
  floor: number | undefined;
  tc: Fresh | undefined;
  hello: Map<string, Fresh>;
  /** Link states this node has, over all interfaces. */
  links: number;
}

interface Grave {
  floor: number | undefined;
  tc: Fresh | undefined;
  hello: Map<string, Fresh> | undefined;
}

interface Inbound {
  id: string;
  m: Message;
  epoch: number;
  nonce: Uint8Array;
  seqno: number;
  icv: Uint8Array;
  digest: string | undefined;
}

type Verdict = 'new' | 'fragment' | 'stale' | 'duplicate';

const u16 = (v: number): Uint8Array => Uint8Array.of(v >> 8, v & 0xff);

export function nodeIdOf(sid: Uint8Array): string {
  return hex(sid.subarray(0, 16));
}

/**
 * Periodic HELLOs and TCs go a random 0–25 % early (RFC 5148's MAXJITTER = interval / 4): with
 * less, two nodes whose HELLOs collided once on a channel without carrier sense keep colliding
 * for rounds on end and lose each other.
 */
const MAX_JITTER_FRACTION = 0.25;
/** The first HELLOs on an interface after it is added (the fast start). */
const FAST_START_HELLOS = 3;
/** Their spacing, ms (at least minHelloMs, at most the steady interval). */
const FAST_START_GAP_MS = 4_000;
/** TCs sent as soon as something changed after start (FAST_START_GAP_MS apart), before the steady spacing. */
const FAST_START_TCS = 3;
/** A HELLO brought forward for a new neighbour goes within this, ms (jitter against collisions). */
const TRIGGERED_HELLO_JITTER_MS = 1_000;

export class ControlPlane {
  readonly id: string;
  readonly counters: ControlCounters = {
    hellosSent: 0,
    hellosReceived: 0,
    tcsSent: 0,
    tcsReceived: 0,
    tcsForwarded: 0,
    tcsSuppressed: 0,
    noKey: 0,
    badIcv: 0,
    badKey: 0,
    malformed: 0,
    badBoot: 0,
    stale: 0,
    duplicate: 0,
    admissionRefused: 0,
    nodesRefused: 0,
    linksRefused: 0,
    edgesRefused: 0,
    badCost: 0,
    verifyCached: 0,
    forgotten: 0,
  };
  /** Raised whenever something that routes depend on changed. */
  version = 0;
  private readonly identity: Identity;
  private readonly boot: BootToken;
  private readonly bootValue: Uint8Array;
  private readonly random: () => number;
  private readonly minHelloMs: number;
  private readonly maxHelloMs: number;
  private readonly helloShare: number;
  private readonly tcShare: number;
  private readonly floodSuppression: boolean;
  /** TC copies waiting for their forwarding time, by message digest (insertion order: arrival). */
  private readonly pendingForwards = new Map<string, PendingForward>();
  private nextForwardAt = Infinity;
  /** Forwarding tokens per interface and originator (`iface/originator`), least recently used first. */
  private readonly forwardBuckets = new Map<string, { tokens: number; at: number; seqno: number }>();
  /** The digest of the TC the reader is handling now (set by the TC consumer, read by forward). */
  private currentTcDigest: string | undefined;
  private readonly helloMaxNeighbours: number;
  private readonly identityRate: number;
  private readonly identityBurst: number;
  private readonly onNodeForgotten: ((id: string, sid: Uint8Array) => void) | undefined;
  private readonly limits: ControlLimits;
  /** Beyond this age a freshness state no longer orders seqnos (see the file comment). */
  private readonly serialHorizonMs: number;
  private readonly writer: Rfc5444Writer;
  private readonly reader: Rfc5444Reader;
  private readonly ifaces = new Map<string, IfaceState>();
  private readonly nodes = new Map<string, NodeEntry>();
  /** Known nodes with no link and no TC, least recently heard first. */
  private readonly idle = new Map<string, NodeEntry>();
  private readonly graveyard = new Map<string, Grave>();
  private readonly tcs = new Map<string, TcState>();
  private edgeCount = 0;
  private readonly verified = new Set<string>();
  private readonly deadlines = new DeadlineHeap<LinkState | TcState>();
  private timedCount = 0;
  private output: ControlOutput[] = [];
  /** The kind and generation of the packets the writer is producing now. */
  private tag: { kind: string; generation: number } = { kind: 'tc', generation: 0 };
  private now = 0;
  private from: Endpoint | undefined;
  /** Signal of the packet being read (from `receive`). */
  private signal: FrameSignal | undefined;
  private tcSeq = 0;
  /** TCs sent since start (the fast start counts them). */
  private tcSeqSent = 0;
  private nextTc = 0;
  private lastTcAt = -Infinity;
  private tcDirty = true;
  /** What the current message being written holds, for signing each fragment. */
  private building: { header: Pick<Message, 'type' | 'originator' | 'seqno'>; tlvs: Tlv[]; addressTlvs: Map<string, Tlv[]> } | undefined;

  constructor(options: ControlOptions) {
    const boot = options.boot;
    if (!boot || !Number.isInteger(boot.epoch) || boot.epoch < 0 || boot.epoch > 0xffffffff || boot.nonce?.length !== BOOT_NONCE_LENGTH) {
      throw new RangeError(`boot token needs an epoch 0..4294967295 and an ${BOOT_NONCE_LENGTH}-byte nonce`);
    }
    this.identity = options.identity;
    this.id = nodeIdOf(options.identity.sid);
    this.boot = { epoch: boot.epoch, nonce: boot.nonce.slice() };
    this.bootValue = new Uint8Array(BOOT_LENGTH);
    new DataView(this.bootValue.buffer).setUint32(0, boot.epoch);
    this.bootValue.set(boot.nonce, 4);
    this.random = options.random ?? Math.random;
    this.minHelloMs = options.minHelloMs ?? 2_000;
    this.maxHelloMs = options.maxHelloMs ?? 1_800_000;
    this.helloShare = options.helloShare ?? 0.1;
    this.tcShare = options.tcShare ?? 0.2;
    this.floodSuppression = options.floodSuppression ?? true;
    if (!(this.helloShare > 0 && this.helloShare <= 1) || !(this.tcShare > 0 && this.tcShare <= 1)) throw new RangeError('helloShare and tcShare must be in (0, 1]');
    this.helloMaxNeighbours = positive(options.helloMaxNeighbours ?? DEFAULT_HELLO_MAX_NEIGHBOURS, 'helloMaxNeighbours');
    this.identityRate = options.newIdentityRate ?? 2;
    this.identityBurst = options.newIdentityBurst ?? 16;
    if (!(this.identityRate >= 0) || !(this.identityBurst >= 0)) throw new RangeError('newIdentityRate and newIdentityBurst must be ≥ 0');
    this.onNodeForgotten = options.onNodeForgotten;
    this.limits = { ...DEFAULT_LIMITS, ...options.limits };
    for (const [k, v] of Object.entries(this.limits)) positive(v, `limits.${k}`);
    this.serialHorizonMs = 0x7fff * 0.9 * this.minHelloMs;
    this.nodes.set(this.id, {
      id: this.id,
      sid: options.identity.sid,
      edKey: options.identity.ed25519Public,
      boot: this.boot,
      floor: undefined,
      tc: undefined,
      hello: new Map(),
      links: 0,
    });
    this.writer = new Rfc5444Writer({ sendPacket: (iface, bytes) => this.output.push({ iface, bytes, ...this.tag }) });
    this.writer.setPacketCreator(sequencedPackets());
    this.registerMessages();
    this.reader = new Rfc5444Reader({ onForward: (bytes, message, iface) => this.forward(bytes, message, iface) });
    this.reader.addMessageConsumer(MSG_HELLO, this.helloConsumer());
    this.reader.addMessageConsumer(MSG_TC, this.tcConsumer());
  }

  addInterface(cfg: ControlInterface, now: number): void {
    if (!(cfg.mtu >= MIN_CONTROL_MTU)) throw new RangeError(`interface ${cfg.name}: MTU ${cfg.mtu} is below the control plane's minimum of ${MIN_CONTROL_MTU}`);
    this.writer.registerInterface(cfg.name, cfg.mtu);
    // The first HELLO goes soon, jittered so that nodes started together do not collide.
    this.ifaces.set(cfg.name, {
      cfg,
      seq: 0,
      helloCount: 0,
      nextHello: now + this.random() * 500,
      triggeredAt: -Infinity,
      links: new Map(),
      tokens: this.identityBurst,
      tokensAt: now,
    });
  }

  removeInterface(name: string): void {
    const s = this.ifaces.get(name);
    if (!s) return;
    this.writer.unregisterInterface(name);
    this.ifaces.delete(name);
    for (const l of s.links.values()) this.dropLink(s, l);
    this.changed();
  }

  /** An RFC 5444 packet received on `iface`. */
  receive(iface: string, bytes: Uint8Array, now: number, from?: Endpoint, signal?: FrameSignal): void {
    if (!this.ifaces.has(iface)) return;
    this.now = now;
    this.from = from;
    this.signal = signal;
    const r = this.reader.handlePacket(bytes, iface);
    if (!r.ok) this.counters.malformed++;
    this.writer.flushAll();
  }

  /** Packets to put on the air since the last call, tagged for the pacer. */
  takeOutput(): ControlOutput[] {
    const out = this.output;
    this.output = [];
    return out;
  }

  poll(now: number): void {
    this.now = now;
    this.expire(now);
    if (now >= this.nextForwardAt) this.forwardDue(now);
    for (const s of this.ifaces.values()) {
      if (now < s.nextHello) continue;
      this.sendHello(s);
      // The first HELLOs go a few seconds apart (the pacer still holds them to the duty cycle), so
      // that neighbours meet in seconds, not after one airtime-derived interval (minutes on LoRa).
      const steady = this.helloInterval(s);
      const interval = s.helloCount <= FAST_START_HELLOS ? Math.min(steady, Math.max(this.minHelloMs, FAST_START_GAP_MS)) : steady;
      s.nextHello = now + interval * (1 - MAX_JITTER_FRACTION * this.random());
    }
    if (now >= this.nextTc || (this.tcDirty && now >= this.dirtyTcAt())) {
      this.sendTc();
      this.lastTcAt = now;
      this.nextTc = now + this.tcInterval() * (1 - MAX_JITTER_FRACTION * this.random());
    }
  }

  nextDeadline(): number {
    let next = this.nextTc;
    if (this.tcDirty) next = Math.min(next, this.dirtyTcAt());
    for (const s of this.ifaces.values()) next = Math.min(next, s.nextHello);
    next = Math.min(next, this.deadlines.peek(), this.nextForwardAt);
    return Math.max(next, this.now);
  }

  neighbours(): Neighbour[] {
    const out: Neighbour[] = [];
    for (const s of this.ifaces.values()) {
      for (const l of s.links.values()) {
        if (l.heardUntil <= this.now) continue;
        out.push({
          id: l.id,
          sid: this.nodes.get(l.id)?.sid,
          iface: l.iface,
          symmetric: this.symmetric(l),
          inRatio: l.inRatio,
          outRatio: l.outRatio,
          endpoint: l.endpoint,
          lastHeardAt: l.heardAt,
          ...(l.rssiDbm !== undefined ? { rssiDbm: l.rssiDbm } : {}),
          ...(l.snrDb !== undefined ? { snrDb: l.snrDb } : {}),
        });
      }
    }
    return out;
  }

  /** This node's symmetric links, costed, for routing. */
  localLinks(): LocalLink[] {
    const out: LocalLink[] = [];
    for (const s of this.ifaces.values()) {
      const perByte = this.msPerByte(s.cfg);
      for (const l of s.links.values()) {
        if (!this.symmetric(l)) continue;
        out.push({ neighbour: l.id, iface: l.iface, cost: linkCost(perByte, l.outRatio), mtu: s.cfg.mtu });
      }
    }
    return out;
  }

  /** Edges advertised by other nodes' TCs that their other end confirms (see the file comment). */
  topology(): TopologyEdge[] {
    const advertised = new Map<string, Advertised>();
    for (const [id, t] of this.tcs) advertised.set(id, t.edges);
    const symmetric = new Set<string>();
    for (const s of this.ifaces.values()) for (const l of s.links.values()) if (this.symmetric(l)) symmetric.add(l.id);
    return confirmedTopology(this.id, advertised, symmetric);
  }

  /** The full SID, signing key and latest authenticated boot token of a node, once learned. */
  node(id: string): KnownNode | undefined {
    const n = this.nodes.get(id);
    return n ? { id: n.id, sid: n.sid, edKey: n.edKey, boot: n.boot } : undefined;
  }

  knownNodes(): KnownNode[] {
    return [...this.nodes.values()].map((n) => ({ id: n.id, sid: n.sid, edKey: n.edKey, boot: n.boot }));
  }

  /** The endpoint a neighbour's HELLOs came from on `iface` (UDP unicast). */
  endpointOf(id: string, iface: string): Endpoint | undefined {
    return this.ifaces.get(iface)?.links.get(id)?.endpoint;
  }

  helloIntervalOf(iface: string): number | undefined {
    const s = this.ifaces.get(iface);
    return s ? this.helloInterval(s) : undefined;
  }

  tables(): ControlTables {
    let links = 0;
    for (const s of this.ifaces.values()) links += s.links.size;
    return {
      nodes: this.nodes.size,
      idleNodes: this.idle.size,
      links,
      tcs: this.tcs.size,
      edges: this.edgeCount,
      graveyard: this.graveyard.size,
      verified: this.verified.size,
      deadlines: this.deadlines.size,
    };
  }

  // -------------------------------------------------------------------------------------------

  private msPerByte(cfg: ControlInterface): number {
    const perByte = cfg.airtimeMs(cfg.mtu) / cfg.mtu;
    return perByte > MIN_LINK_MS_PER_BYTE ? perByte : MIN_LINK_MS_PER_BYTE;
  }

  /**
   * HELLOs may use `helloShare` of this node's budget (its duty cycle), and, since every node
   * heard on the interface shares the channel, the channel's HELLO load stays within that share:
   * interval = HELLO airtime × (1 + nodes heard) ÷ (duty cycle × share), within [min, max], with
   * the nodes heard counted up to helloMaxNeighbours (the most a HELLO names).
   */
  private helloInterval(s: IfaceState): number {
    const heard = Math.min(s.links.size, this.helloMaxNeighbours);
    const size = Math.min(s.cfg.mtu, 100 + 20 * heard);
    const airtime = s.cfg.airtimeMs(size);
    const budget = (s.cfg.dutyFraction ?? 1) * this.helloShare;
    return Math.min(this.maxHelloMs, Math.max(this.minHelloMs, (airtime * (1 + heard)) / budget));
  }

  /**
   * The spacing that keeps the flood within `tcShare` of each interface's budget: every TC is
   * flooded, so a node sends about one copy of each originator's TC per interval — its own and
   * those it forwards. With the originators counted from the TCs held (nodes that flood, not
   * throwaway identities that only say HELLO):
   *   spacing ≥ TC airtime × (1 + originators) ÷ (duty cycle × tcShare).
   * Fifty LoRa nodes on one 10 % channel thus flood their topology every few minutes, not every
   * few tens of seconds, which fills the channel with TCs and their collisions.
   */
  private tcFloodSpacing(): number {
    let flood = 0;
    const originators = 1 + this.tcs.size;
    for (const s of this.ifaces.values()) {
      const size = Math.min(s.cfg.mtu, 100 + 20 * Math.min(s.links.size, MAX_TC_EDGES));
      flood = Math.max(flood, (s.cfg.airtimeMs(size) * originators) / ((s.cfg.dutyFraction ?? 1) * this.tcShare));
    }
    return flood;
  }

  /** Twice the longest HELLO interval, or the flood spacing; at most 2 × maxHelloMs (a TC's validity is capped at 6 × maxHelloMs where it is received). */
  private tcInterval(): number {
    let longest = this.minHelloMs;
    for (const s of this.ifaces.values()) longest = Math.max(longest, this.helloInterval(s));
    return Math.min(2 * this.maxHelloMs, Math.max(2 * longest, this.tcFloodSpacing()));
  }

  /**
   * A triggered TC goes early, but at most four times per TC interval and never sooner than
   * minHelloMs after the last one, so a churning neighbourhood (or a sybil flood) cannot make
   * this node sign and send a TC on every change. The first FAST_START_TCS go as soon as their
   * change (first neighbours), FAST_START_GAP_MS apart, as the first HELLOs do: otherwise a node
   * on a 1 % channel would advertise its neighbours only after a flood interval of most of an hour.
   */
  private dirtyTcAt(): number {
    const interval = this.tcInterval();
    if (this.tcSeqSent < FAST_START_TCS) return this.lastTcAt + Math.min(interval, Math.max(this.minHelloMs, FAST_START_GAP_MS));
    return Math.max(this.lastTcAt + Math.max(this.minHelloMs, interval / 4), this.nextTc - interval + this.minHelloMs);
  }



  private symmetric(l: LinkState): boolean {
    return l.heardUntil > this.now && l.theyHearUsUntil > this.now;
  }

  private changed(): void {
    this.version++;
    this.tcDirty = true;
  }

  private registerMessages(): void {
    const w = this.writer;
    for (const [type, perInterface] of [[MSG_HELLO, true], [MSG_TC, false]] as const) {
      w.registerMessage(
        type,
        {
          addMessageHeader: (ctx) => {
            ctx.setAddressLength(16);
            ctx.setOriginator(this.identity.sid.subarray(0, 16));
            ctx.setHopLimit(type === MSG_HELLO ? 1 : 255);
            ctx.setHopCount(0);
            const seqno = type === MSG_HELLO ? this.ifaces.get(ctx.interface!)!.seq : this.tcSeq;
            ctx.setSeqno(seqno);
            this.building = { header: { type, originator: this.identity.sid.subarray(0, 16), seqno }, tlvs: [], addressTlvs: new Map() };
          },
        },
        { perInterface, addressLength: 16 },
      );
    }
    for (const [type, ext, msg] of [[TLV_LINK_STATUS, 0, MSG_HELLO], [TLV_IN_RATIO, 0, MSG_HELLO], [TLV_LINK_COST, 0, MSG_TC], [TLV_LINK_MTU, 0, MSG_TC]] as const) {
      w.registerAddressTlvType(type, ext, msg);
    }
    w.registerContentProvider(MSG_HELLO, {
      addMessageTLVs: (ctx) => {
        const s = this.ifaces.get(ctx.interface!)!;
        const interval = this.helloInterval(s);
        this.addTlv(ctx, TLV_INTERVAL, Uint8Array.of(encodeTime(interval)));
        this.addTlv(ctx, TLV_VALIDITY, Uint8Array.of(encodeTime(3 * interval)));
        this.addTlv(ctx, TLV_BOOT, this.bootValue);
        // Alone, or with a neighbour that may not know us yet: carry the key.
        let unsure = s.links.size === 0;
        for (const l of s.links.values()) if (!unsure && !this.symmetric(l)) unsure = true;
        if (unsure || s.helloCount % 4 === 0) this.addTlv(ctx, TLV_KEYS, this.identity.ed25519Public);
        ctx.reserveTlv(TLV_ICV, ICV_EXT_GENERIC, ICV_LENGTH);
      },
      addAddresses: (ctx) => {
        const s = this.ifaces.get(ctx.interface!)!;
        for (const { l, status } of this.helloNeighbours(s)) {
          const a = ctx.addAddress(hexToBytes(l.id));
          this.addAddressTlv(ctx, a, TLV_LINK_STATUS, Uint8Array.of(status));
          this.addAddressTlv(ctx, a, TLV_IN_RATIO, Uint8Array.of(Math.round(l.inRatio * 255)));
        }
      },
      finishMessageTLVs: (ctx) => this.sign(ctx),
    });
    w.registerContentProvider(MSG_TC, {
      addMessageTLVs: (ctx) => {
        this.addTlv(ctx, TLV_VALIDITY, Uint8Array.of(encodeTime(3 * this.tcInterval())));
        this.addTlv(ctx, TLV_BOOT, this.bootValue);
        this.addTlv(ctx, TLV_KEYS, this.identity.ed25519Public);
        ctx.reserveTlv(TLV_TC_FRAGMENT, 0, 2);
        ctx.reserveTlv(TLV_ICV, ICV_EXT_GENERIC, ICV_LENGTH);
      },
      addAddresses: (ctx) => {
        const best = new Map<string, LocalLink>();
        for (const l of this.localLinks()) if (!best.has(l.neighbour) || l.cost < best.get(l.neighbour)!.cost) best.set(l.neighbour, l);
        const chosen = [...best.values()].sort((a, b) => a.cost - b.cost).slice(0, this.limits.tcEdges);
        for (const l of chosen) {
          const a = ctx.addAddress(hexToBytes(l.neighbour));
          const cost = new Uint8Array(4);
          new DataView(cost.buffer).setFloat32(0, l.cost);
          this.addAddressTlv(ctx, a, TLV_LINK_COST, cost);
          this.addAddressTlv(ctx, a, TLV_LINK_MTU, u16(l.mtu));
        }
      },
      finishMessageTLVs: (ctx) => this.sign(ctx),
    });
  }

  /** The neighbours one HELLO on `s` names, in the order of the file comment, at most helloMaxNeighbours. */
  private helloNeighbours(s: IfaceState): Array<{ l: LinkState; status: number }> {
    const symmetric: LinkState[] = [];
    const heard: LinkState[] = [];
    const lost: LinkState[] = [];
    for (const l of s.links.values()) {
      if (l.heardUntil > this.now) (this.symmetric(l) ? symmetric : heard).push(l);
      else if (l.lostUntil > this.now) lost.push(l);
    }
    // A link heard fewer than PROVEN_HELLOS times counts that share of its ratio: one HELLO
    // proves nothing, so throwaway identities do not push long-standing neighbours out.
    const rank = (l: LinkState): number => l.inRatio * Math.min(1, l.hellos / PROVEN_HELLOS);
    symmetric.sort((a, b) => rank(b) - rank(a) || a.since - b.since);
    heard.sort((a, b) => b.heardAt - a.heardAt);
    lost.sort((a, b) => b.heardAt - a.heardAt);
    const out: Array<{ l: LinkState; status: number }> = [];
    const max = this.helloMaxNeighbours;
    for (const [list, status] of [[symmetric, SYMMETRIC], [heard, HEARD], [lost, LOST]] as const) {
      for (const l of list) {
        if (out.length >= max) return out;
        out.push({ l, status });
      }
    }
    return out;
  }

  private addTlv(ctx: { addTlv(type: number, ext: number, value: Uint8Array | null): void }, type: number, value: Uint8Array): void {
    ctx.addTlv(type, 0, value);
    this.building!.tlvs.push({ type, extType: 0, value });
  }

  private addAddressTlv(ctx: { addAddressTlv(a: AddressHandle, type: number, ext: number, value: Uint8Array | null): void }, a: AddressHandle, type: number, value: Uint8Array): void {
    ctx.addAddressTlv(a, type, 0, value);
    const key = hex(a.address);
    const list = this.building!.addressTlvs.get(key) ?? [];
    list.push({ type, extType: 0, value });
    this.building!.addressTlvs.set(key, list);
  }

  /** Signs one fragment: the model it will carry, as the receiver will decode it. */
  private sign(ctx: MessageTlvFinishContext): void {
    const b = this.building!;
    let tlvs = b.tlvs;
    if (b.header.type === MSG_TC && ctx.fragment.count > 1) {
      const value = Uint8Array.of(ctx.fragment.index, Math.min(255, ctx.fragment.count));
      ctx.setReservedTlv(TLV_TC_FRAGMENT, 0, value);
      tlvs = [...tlvs, { type: TLV_TC_FRAGMENT, extType: 0, value }];
    }
    const model: Message = {
      type: b.header.type,
      addrLength: 16,
      originator: b.header.originator,
      hopLimit: null,
      hopCount: null,
      seqno: b.header.seqno,
      tlvs,
      addresses: ctx.fragment.addresses.map((a) => ({ address: a.address, prefixLength: a.prefixLength, tlvs: b.addressTlvs.get(hex(a.address)) ?? [] })),
    };
    ctx.setReservedTlv(TLV_ICV, ICV_EXT_GENERIC, icvValue(model, this.identity.ed25519Secret));
  }

  private sendHello(s: IfaceState): void {
    this.tag = { kind: 'hello', generation: s.seq };
    this.writer.createMessage(MSG_HELLO, (i) => i === s.cfg.name);
    this.writer.flush(s.cfg.name);
    s.seq = (s.seq + 1) & 0xffff;
    s.helloCount++;
    this.counters.hellosSent++;
  }

  private sendTc(): void {
    this.tcDirty = false;
    if (this.ifaces.size === 0) return;
    this.tcSeq = (this.tcSeq + 1) & 0xffff;
    this.tag = { kind: 'tc', generation: this.tcSeq };
    this.writer.createMessage(MSG_TC);
    this.writer.flushAll();
    this.counters.tcsSent++;
    this.tcSeqSent++;
  }

  /**
   * Rebroadcasts a new TC fragment only on interfaces where a symmetric neighbour of ours is
   * neither its originator nor one of the originator's own neighbours (those heard the originator
   * directly): a cheap stand-in for OLSR's MPR selection that keeps a full mesh from echoing every
   * TC. Each forwarded message goes in its own packet, tagged with its originator.
   *
   * With flood suppression (the default) the copy waits a random time of up to
   * FLOOD_WINDOW_FRAMES full frames' airtime ÷ duty cycle on the slowest of those interfaces (the
   * time the interface needs per frame it may send; at most 30 s), and is dropped if
   * FLOOD_COPIES other copies of it (same digest: the signed message, whatever its hop count) were
   * heard meanwhile on an interface, which then needs no copy from us: that neighbourhood has
   * been covered (counter-based flooding, as in Ni et al.,
   * "The broadcast storm problem in a mobile ad hoc network", 1999). Copies heard on one
   * interface never cancel the forward onto another: a gateway between a busy LoRa channel and
   * Wi-Fi is the only one to carry a TC onto Wi-Fi. Where a channel is dense this
   * cuts the forwards to a few per neighbourhood; a sparse chain still forwards every copy. A
   * neighbour replaying copies could suppress our forward; it could as well jam the channel, and
   * the next periodic TC floods again.
   */
  private forward(bytes: Uint8Array, message: Message, from: string): void {
    const digest = this.currentTcDigest;
    this.currentTcDigest = undefined;
    if (message.type !== MSG_TC || !message.originator) return;
    const origin = hex(message.originator);
    const covered = new Set(message.addresses.map((a) => hex(a.address)));
    const wanted = new Set<string>();
    let slowestFrameMs = 0;
    const spacing = Math.max(this.minHelloMs, this.tcInterval() / 4);
    for (const s of this.ifaces.values()) {
      // Everyone on a full-mesh interface heard the copy we got there.
      if (s.cfg.fullMesh && s.cfg.name === from) continue;
      // TCs of one originator onto one interface: a burst of FORWARD_BURST (a node's fast start),
      // then one per spacing. An originator on fast links floods every few seconds, which a slow
      // interface (LoRa) cannot carry; its neighbours keep a TC for three of their own TC
      // intervals (updateTc), so the latest one every spacing is enough.
      if (!this.forwardAllowed(`${s.cfg.name}/${origin}`, message.seqno ?? 0, spacing, false)) continue;
      for (const l of s.links.values()) {
        if (l.id !== origin && !covered.has(l.id) && this.symmetric(l)) {
          wanted.add(s.cfg.name);
          // A full frame's share of the duty cycle: how long the interface needs per frame it sends.
          slowestFrameMs = Math.max(slowestFrameMs, s.cfg.airtimeMs(s.cfg.mtu) / (s.cfg.dutyFraction ?? 1));
          break;
        }
      }
    }
    if (wanted.size === 0) return;
    for (const name of wanted) this.forwardAllowed(`${name}/${origin}`, message.seqno ?? 0, spacing, true);
    const forward: PendingForward = { bytes, wanted, origin, seqno: message.seqno ?? 0, at: this.now, copies: new Map() };
    if (!this.floodSuppression || digest === undefined || this.pendingForwards.has(digest) || this.pendingForwards.size >= MAX_PENDING_FORWARDS) {
      this.sendForward(forward);
      return;
    }
    forward.bytes = bytes.slice();
    forward.at = this.now + this.random() * Math.min(MAX_FLOOD_DELAY_MS, FLOOD_WINDOW_FRAMES * slowestFrameMs);
    this.pendingForwards.set(digest, forward);
    this.nextForwardAt = Math.min(this.nextForwardAt, forward.at);
  }

  /**
   * Whether the (interface, originator) bucket lets this TC through; `take` spends a token. The
   * fragments of one TC (one seqno) pass on the token its first fragment spent.
   */
  private forwardAllowed(key: string, seqno: number, spacing: number, take: boolean): boolean {
    const b = this.forwardBuckets.get(key);
    if (b !== undefined && b.seqno === seqno) return true;
    const tokens = b === undefined ? FORWARD_BURST : Math.min(FORWARD_BURST, b.tokens + (this.now - b.at) / spacing);
    if (tokens < 1) return false;
    if (take) {
      this.forwardBuckets.delete(key);
      this.forwardBuckets.set(key, { tokens: tokens - 1, at: this.now, seqno });
      if (this.forwardBuckets.size > MAX_FORWARD_RECORDS) this.forwardBuckets.delete(this.forwardBuckets.keys().next().value!);
    }
    return true;
  }

  /** Another copy of a TC fragment we hold for forwarding was heard on `iface`. */
  private overheard(digest: string, iface: string): void {
    const f = this.pendingForwards.get(digest);
    if (f === undefined || !f.wanted.has(iface)) return;
    const copies = (f.copies.get(iface) ?? 0) + 1;
    f.copies.set(iface, copies);
    if (copies < FLOOD_COPIES) return;
    f.wanted.delete(iface);
    if (f.wanted.size > 0) return;
    this.pendingForwards.delete(digest);
    this.counters.tcsSuppressed++;
  }

  private forwardDue(now: number): void {
    let next = Infinity;
    for (const [digest, f] of this.pendingForwards) {
      if (f.at <= now) {
        this.pendingForwards.delete(digest);
        this.sendForward(f);
      } else {
        next = Math.min(next, f.at);
      }
    }
    this.nextForwardAt = next;
  }

  private sendForward(f: PendingForward): void {
    this.writer.flushAll();
    this.tag = { kind: `tc:${f.origin}`, generation: f.seqno };
    this.writer.forwardMessage(f.bytes, (iface) => f.wanted.has(iface));
    this.writer.flushAll();
    this.counters.tcsForwarded++;
  }

  // --- reading ---------------------------------------------------------------------------------

  /** The parts every HELLO and TC must have, or undefined (counted) when it lacks them. */
  private inspect(m: Message): Inbound | undefined {
    if (!m.originator || m.originator.length !== 16 || m.seqno === null) {
      this.counters.malformed++;
      return undefined;
    }
    const id = hex(m.originator);
    if (id === this.id) return undefined; // our own, echoed by a neighbour
    let boot: Uint8Array | null | undefined;
    let bootCount = 0;
    let icv: Uint8Array | null | undefined;
    for (const t of m.tlvs) {
      if (t.type === TLV_BOOT && t.extType === 0) {
        boot = t.value;
        bootCount++;
      } else if (icv === undefined && t.type === TLV_ICV && t.extType === ICV_EXT_GENERIC) {
        icv = t.value;
      }
    }
    if (bootCount !== 1 || !boot || boot.length !== BOOT_LENGTH) {
      this.counters.badBoot++;
      return undefined;
    }
    if (!icv || icv.length !== ICV_LENGTH) {
      this.counters.badIcv++;
      return undefined;
    }
    const epoch = new DataView(boot.buffer, boot.byteOffset, 4).getUint32(0);
    return { id, m, epoch, nonce: boot.slice(4), seqno: m.seqno, icv, digest: undefined };
  }

  /** SHA-256 of the canonical message and its ICV: covers originator, epoch, seqno and content. */
  private digestOf(inb: Inbound): string {
    if (inb.digest === undefined) {
      const canonical = canonicalMessage(inb.m);
      const all = new Uint8Array(canonical.length + inb.icv.length);
      all.set(canonical);
      all.set(inb.icv, canonical.length);
      inb.digest = hex(sha256(all));
    }
    return inb.digest;
  }

  private judge(state: Fresh | undefined, floor: number | undefined, inb: Inbound): Verdict {
    if (floor !== undefined && inb.epoch < floor) return 'stale';
    if (!state || inb.epoch > state.epoch) return 'new';
    if (inb.epoch < state.epoch) return 'stale';
    if (inb.seqno === state.seqno) {
      if (!state.frags) return 'stale';
      if (state.frags.size >= MAX_FRAGMENTS || state.frags.has(this.digestOf(inb))) return 'duplicate';
      return 'fragment';
    }
    const ahead = (inb.seqno - state.seqno) & 0xffff;
    if (ahead < 0x8000) return 'new';
    return this.now - state.at > this.serialHorizonMs ? 'new' : 'stale';
  }

  /**
   * Freshness, admission, keys and signature, in that order (cheapest first); on success the
   * freshness state moves and the sender is known. Undefined (counted) when the message is to be
   * dropped, with nothing changed but the counters and, for a stranger, the token bucket.
   */
  private accept(inb: Inbound, kind: 'hello' | 'tc', s: IfaceState): { node: NodeEntry; verdict: 'new' | 'fragment' } | undefined {
    let node = this.nodes.get(inb.id);
    const grave = node ? undefined : this.graveyard.get(inb.id);
    const holder = node ?? grave;
    const state = kind === 'tc' ? holder?.tc : holder?.hello?.get(s.cfg.name);
    const verdict = this.judge(state, holder?.floor, inb);
    if (verdict === 'stale' || verdict === 'duplicate') {
      this.counters[verdict]++;
      if (verdict === 'duplicate' && kind === 'tc') this.overheard(this.digestOf(inb), s.cfg.name);
      return undefined;
    }
    const keys = inb.m.tlvs.find((t) => t.type === TLV_KEYS && t.extType === 0)?.value;
    let edKey: Uint8Array;
    let sid: Uint8Array | undefined;
    if (node) {
      if (keys && !equalBytes(keys, node.edKey)) {
        this.counters.badKey++;
        return undefined;
      }
      edKey = node.edKey;
    } else {
      if (this.nodes.size >= this.limits.nodes && this.idle.size === 0) {
        this.counters.nodesRefused++;
        return undefined;
      }
      if (!keys) {
        this.counters.noKey++;
        return undefined;
      }
      if (keys.length !== 32) {
        this.counters.badKey++;
        return undefined;
      }
      if (!this.takeToken(s)) {
        this.counters.admissionRefused++;
        return undefined;
      }
      try {
        sid = sidOfSigningKey(keys);
      } catch {
        this.counters.badKey++;
        return undefined;
      }
      if (nodeIdOf(sid) !== inb.id) {
        this.counters.badKey++;
        return undefined;
      }
      edKey = keys.slice();
    }
    const digest = this.digestOf(inb);
    if (this.verified.has(digest)) {
      this.counters.verifyCached++;
    } else {
      if (!verifyIcv(inb.m, edKey)) {
        this.counters.badIcv++;
        return undefined;
      }
      this.verified.add(digest);
      if (this.verified.size > this.limits.verified) this.verified.delete(this.verified.values().next().value!);
    }
    if (!node) node = this.learn(inb.id, sid!, edKey, grave);
    else this.touch(node);
    if (verdict === 'new') {
      const fresh: Fresh = { epoch: inb.epoch, seqno: inb.seqno, at: this.now, frags: new Set([digest]) };
      if (kind === 'tc') node.tc = fresh;
      else node.hello.set(s.cfg.name, fresh);
      if (node.floor === undefined || inb.epoch >= node.floor) {
        node.floor = inb.epoch;
        if (!node.boot || node.boot.epoch !== inb.epoch || !equalBytes(node.boot.nonce, inb.nonce)) node.boot = { epoch: inb.epoch, nonce: inb.nonce };
      }
    } else {
      state!.frags!.add(digest);
    }
    return { node, verdict };
  }

  private takeToken(s: IfaceState): boolean {
    s.tokens = Math.min(this.identityBurst, s.tokens + (Math.max(0, this.now - s.tokensAt) / 1000) * this.identityRate);
    s.tokensAt = this.now;
    if (s.tokens < 1) return false;
    s.tokens -= 1;
    return true;
  }

  /** Enters a newly authenticated node, in the place of the least recently heard idle one at the cap. */
  private learn(id: string, sid: Uint8Array, edKey: Uint8Array, grave: Grave | undefined): NodeEntry {
    const forgotten = this.nodes.size >= this.limits.nodes ? this.evictIdle() : undefined;
    if (grave) this.graveyard.delete(id);
    const node: NodeEntry = { id, sid, edKey, boot: undefined, floor: grave?.floor, tc: grave?.tc, hello: grave?.hello ?? new Map(), links: 0 };
    this.nodes.set(id, node);
    this.idle.set(id, node);
    this.version++; // a new node can now be resolved by its short address
    if (forgotten) this.onNodeForgotten?.(forgotten.id, forgotten.sid);
    return node;
  }

  private evictIdle(): NodeEntry | undefined {
    const first = this.idle.values().next();
    if (first.done) return undefined;
    const n = first.value;
    this.idle.delete(n.id);
    this.nodes.delete(n.id);
    const seal = (f: Fresh): Fresh => ({ epoch: f.epoch, seqno: f.seqno, at: f.at, frags: undefined });
    const hello = n.hello.size > 0 ? new Map([...n.hello].map(([k, f]) => [k, seal(f)])) : undefined;
    this.graveyard.set(n.id, { floor: n.floor, tc: n.tc && seal(n.tc), hello });
    if (this.graveyard.size > this.limits.graveyard) this.graveyard.delete(this.graveyard.keys().next().value!);
    this.counters.forgotten++;
    this.version++;
    return n;
  }

  /** Idle: no link and no TC (never this node). */
  private updateIdle(n: NodeEntry): void {
    if (n.id !== this.id && n.links === 0 && !this.tcs.has(n.id)) {
      if (!this.idle.has(n.id)) this.idle.set(n.id, n);
    } else {
      this.idle.delete(n.id);
    }
  }

  /** Heard again: an idle node moves to the back of the eviction order. */
  private touch(n: NodeEntry): void {
    if (this.idle.delete(n.id)) this.idle.set(n.id, n);
  }

  /** Validity from the message, or `fallback`, kept within [min, max]. */
  private validity(m: Message, fallback: number, min: number, max: number): number {
    const v = m.tlvs.find((t) => t.type === TLV_VALIDITY && t.extType === 0)?.value;
    const claimed = v && v.length === 1 ? decodeTime(v[0]!) : fallback;
    return Math.min(max, Math.max(min, claimed));
  }

  private helloConsumer(): MessageConsumer {
    return {
      block: (ctx: MessageContext) => {
        const s = this.ifaces.get(ctx.iface);
        const inb = s && this.inspect(ctx.message);
        if (!s || !inb) return 'drop-message';
        const ok = this.accept(inb, 'hello', s);
        if (!ok) return 'drop-message';
        this.counters.hellosReceived++;
        this.updateLink(s, ok.node, inb, ok.verdict);
        return 'okay';
      },
    };
  }

  private updateLink(s: IfaceState, node: NodeEntry, inb: Inbound, verdict: 'new' | 'fragment'): void {
    const m = inb.m;
    const validity = this.validity(m, 3 * this.minHelloMs, 3 * this.minHelloMs, 3 * this.maxHelloMs);
    let l = s.links.get(node.id);
    const wasSymmetric = l ? this.symmetric(l) : false;
    if (!l) {
      if (s.links.size >= this.limits.linksPerInterface) {
        this.counters.linksRefused++;
        return;
      }
      l = {
        kind: 'link',
        scheduledAt: Infinity,
        alive: true,
        id: node.id,
        iface: s.cfg.name,
        lastEpoch: undefined,
        lastSeq: undefined,
        inRatio: 1,
        outRatio: 1,
        since: this.now,
        hellos: 0,
        heardAt: this.now,
        heardUntil: 0,
        theyHearUsUntil: 0,
        lostUntil: 0,
        validityMs: validity,
        endpoint: undefined,
      };
      s.links.set(node.id, l);
      this.timedCount++;
      node.links++;
      this.updateIdle(node);
    }
    if (verdict === 'new') {
      if (l.lastSeq !== undefined && l.lastEpoch === inb.epoch) {
        const gap = (inb.seqno - l.lastSeq) & 0xffff;
        if (gap >= 1 && gap <= 64) l.inRatio = 0.75 * l.inRatio + 0.25 * (1 / gap);
      }
      l.lastSeq = inb.seqno;
      l.lastEpoch = inb.epoch;
      l.hellos++;
      if (this.from) l.endpoint = this.from;
    } else if (!l.endpoint && this.from) {
      l.endpoint = this.from;
    }
    l.heardAt = this.now;
    if (this.signal?.rssiDbm !== undefined) l.rssiDbm = this.signal.rssiDbm;
    if (this.signal?.snrDb !== undefined) l.snrDb = this.signal.snrDb;
    l.heardUntil = this.now + validity;
    l.lostUntil = l.heardUntil + validity;
    l.validityMs = validity;
    const me = this.identity.sid.subarray(0, 16);
    const mine = m.addresses.find((a) => a.address.length === 16 && equalBytes(a.address, me));
    let theySeeUsSymmetric = false;
    if (mine) {
      const status = mine.tlvs.find((t) => t.type === TLV_LINK_STATUS)?.value?.[0];
      theySeeUsSymmetric = status === SYMMETRIC;
      l.theyHearUsUntil = status === HEARD || status === SYMMETRIC ? this.now + validity : 0;
      const ratio = mine.tlvs.find((t) => t.type === TLV_IN_RATIO)?.value?.[0];
      if (ratio !== undefined) l.outRatio = ratio / 255;
    }
    this.schedule(l);
    if (this.symmetric(l) !== wasSymmetric) this.changed();
    // A neighbour that does not see the link as symmetric yet learns that we hear it from our next
    // HELLO: bring that forward, at most once per half interval per interface (a stream of new
    // neighbours, each admitted within the new-identity budget, costs at most one extra HELLO per
    // half interval).
    if (!theySeeUsSymmetric) this.triggerHello(s);
  }

  private triggerHello(s: IfaceState): void {
    const guard = Math.max(this.minHelloMs, this.helloInterval(s) / 2);
    if (this.now - s.triggeredAt < guard || s.nextHello <= this.now + TRIGGERED_HELLO_JITTER_MS) return;
    s.triggeredAt = this.now;
    s.nextHello = this.now + this.random() * TRIGGERED_HELLO_JITTER_MS;
  }

  private tcConsumer(): MessageConsumer {
    return {
      block: (ctx: MessageContext) => {
        const s = this.ifaces.get(ctx.iface);
        const inb = s && this.inspect(ctx.message);
        if (!s || !inb) return 'drop-message';
        const ok = this.accept(inb, 'tc', s);
        if (!ok) return 'drop-message';
        this.currentTcDigest = this.digestOf(inb);
        this.counters.tcsReceived++;
        this.updateTc(ok.node, inb, ok.verdict);
        return 'okay';
      },
    };
  }

  private updateTc(node: NodeEntry, inb: Inbound, verdict: 'new' | 'fragment'): void {
    const ownTcs = 3 * this.tcInterval();
    const cap = 6 * this.maxHelloMs;
    let validity = this.validity(inb.m, ownTcs, Math.min(cap, Math.max(6 * this.minHelloMs, ownTcs)), cap);
    let t = this.tcs.get(node.id);
    let changed = false;
    if (t && verdict === 'new') {
      // The originator's interval is not how often its TCs arrive here: each forwarder on the
      // way passes one per its own spacing (slower interfaces, slower forwarders), and some are
      // lost. Hold it for three of the longest recent gaps seen here (a maximum that decays by a
      // quarter per TC), but never more than four times what it claims, nor the cap.
      const gap = this.now - t.newAt;
      t.gapMs = Math.max(gap, 0.75 * t.gapMs);
      t.newAt = this.now;
      validity = Math.max(validity, Math.min(cap, 4 * validity, 3 * t.gapMs));
    }
    if (!t) {
      t = { kind: 'tc', scheduledAt: Infinity, alive: true, id: node.id, validUntil: 0, edges: new Map(), carried: new Set(), sweepAt: Infinity, fragmentsSeen: new Set(), fragmentCount: 1, newAt: this.now, gapMs: 0 };
      this.tcs.set(node.id, t);
      this.timedCount++;
      this.updateIdle(node);
      changed = true;
    }
    const frag = inb.m.tlvs.find((x) => x.type === TLV_TC_FRAGMENT && x.extType === 0)?.value;
    const [index, count] = frag && frag.length === 2 && frag[0]! < frag[1]! ? [frag[0]!, frag[1]!] : [0, 1];
    if (verdict === 'new') {
      // Edges carried from two seqnos ago were named by no fragment of the last one: gone.
      if (this.dropCarried(t)) changed = true;
      for (const to of t.edges.keys()) t.carried.add(to);
      t.sweepAt = t.carried.size > 0 ? this.now + TC_FRAGMENT_GRACE_MS : Infinity;
      t.fragmentsSeen.clear();
      t.fragmentCount = count;
    }
    t.fragmentsSeen.add(index);
    for (const a of inb.m.addresses) {
      const to = hex(a.address);
      if (to === node.id) continue;
      const known = t.edges.get(to);
      if (known && !t.carried.has(to)) continue; // named twice in this seqno
      const cost = a.tlvs.find((x) => x.type === TLV_LINK_COST && x.extType === 0)?.value;
      const mtu = a.tlvs.find((x) => x.type === TLV_LINK_MTU && x.extType === 0)?.value;
      if (!cost || cost.length !== 4 || !mtu || mtu.length !== 2) continue;
      const c = new DataView(cost.buffer, cost.byteOffset, 4).getFloat32(0);
      if (!usableCost(c)) {
        this.counters.badCost++;
        continue;
      }
      const edge = { cost: c, mtu: (mtu[0]! << 8) | mtu[1]! };
      if (known) {
        // Named again by the new seqno: no longer carried; a change of cost or MTU is a change.
        t.carried.delete(to);
        if (known.cost !== edge.cost || known.mtu !== edge.mtu) changed = true;
        t.edges.set(to, edge);
        continue;
      }
      if (t.edges.size >= this.limits.tcEdges || this.edgeCount >= this.limits.topologyEdges) {
        // Room first from this TC's own carried edges, then refused.
        const stale = t.carried.values().next();
        if (stale.done) {
          this.counters.edgesRefused++;
          continue;
        }
        t.carried.delete(stale.value);
        t.edges.delete(stale.value);
        this.edgeCount--;
      }
      t.edges.set(to, edge);
      this.edgeCount++;
      changed = true;
    }
    // Every fragment of this seqno is in (or it came whole): what it did not name is gone now.
    if (t.fragmentsSeen.size >= t.fragmentCount && this.dropCarried(t)) changed = true;
    if (t.carried.size === 0) t.sweepAt = Infinity;
    t.validUntil = this.now + validity;
    this.schedule(t);
    if (changed) this.version++;
  }

  // --- expiry ----------------------------------------------------------------------------------

  /** The next time something happens to this entry by itself (Infinity: never). */
  private nextEventOf(e: LinkState | TcState): number {
    if (e.kind === 'tc') return Math.min(e.validUntil, e.sweepAt);
    let next = e.lostUntil;
    if (e.heardUntil > this.now) next = Math.min(next, e.heardUntil);
    if (e.theyHearUsUntil > this.now) next = Math.min(next, e.theyHearUsUntil);
    return next;
  }

  /** Makes sure the heap holds an entry no later than the entry's next event. */
  private schedule(e: LinkState | TcState): void {
    const at = this.nextEventOf(e);
    if (at >= e.scheduledAt) return; // an earlier heap entry will come up and reschedule
    e.scheduledAt = at;
    this.deadlines.push(at, e);
    if (this.deadlines.size > 2 * this.timedCount + 64) this.deadlines.compact();
  }

  /** Drops a TC's carried edges (see TcState.carried); true if there were any. */
  private dropCarried(t: TcState): boolean {
    t.sweepAt = Infinity;
    if (t.carried.size === 0) return false;
    for (const to of t.carried) t.edges.delete(to);
    this.edgeCount -= t.carried.size;
    t.carried.clear();
    return true;
  }

  private dropLink(s: IfaceState, l: LinkState): void {
    s.links.delete(l.id);
    l.alive = false;
    this.timedCount--;
    const n = this.nodes.get(l.id);
    if (n) {
      n.links--;
      this.updateIdle(n);
    }
  }

  private expire(now: number): void {
    for (let due = this.deadlines.popDue(now); due; due = this.deadlines.popDue(now)) {
      const e = due.item;
      if (!e.alive || e.scheduledAt !== due.at) continue;
      e.scheduledAt = Infinity;
      if (e.kind === 'tc') {
        if (e.validUntil <= now) {
          this.tcs.delete(e.id);
          e.alive = false;
          this.timedCount--;
          this.edgeCount -= e.edges.size;
          const n = this.nodes.get(e.id);
          if (n) this.updateIdle(n);
          this.version++;
          continue;
        }
        if (e.sweepAt <= now && this.dropCarried(e)) this.version++;
      } else {
        const s = this.ifaces.get(e.iface);
        if (!s || s.links.get(e.id) !== e) continue;
        if (e.heardUntil <= now && e.lostUntil <= now) {
          this.dropLink(s, e);
          this.changed();
          continue;
        }
        if (e.theyHearUsUntil > 0 && (e.heardUntil <= now || e.theyHearUsUntil <= now)) {
          e.theyHearUsUntil = 0;
          this.changed();
        }
      }
      this.schedule(e);
    }
  }
}

function positive(v: number, what: string): number {
  if (!(Number.isInteger(v) && v >= 1)) throw new RangeError(`${what} must be a positive integer, got ${v}`);
  return v;
}

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function hexToBytes(h: string): Uint8Array {
  return Uint8Array.from(Buffer.from(h, 'hex'));
}
