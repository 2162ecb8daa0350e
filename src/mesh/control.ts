/**
 * The mesh control plane, sans-IO: neighbour discovery (HELLO, NHDP-like) and topology (TC,
 * OLSRv2-like) in RFC 5444 messages, written with the project's writer and read with its reader.
 *
 * HELLO (message type 0, hop limit 1), per interface: originator = the first 16 bytes of the SID;
 * message TLVs INTERVAL_TIME (0) and VALIDITY_TIME (1) (RFC 5497), KEYS (224, the Ed25519 key,
 * while some neighbour on the interface may not know us, and every 4th HELLO), ICV (5/1, RFC
 * 7182, Ed25519); one address per heard neighbour with LINK_STATUS (3: 0 lost, 1 symmetric,
 * 2 heard) and IN_RATIO (225: how well we hear that neighbour's HELLOs, × 255). A link is
 * symmetric when each side hears the other. The HELLO interval adapts to the link's airtime
 * budget and to how many nodes share the channel (see helloInterval).
 *
 * TC (message type 1, hop limit 255), flooded on every interface with duplicate suppression by
 * ICV: originator, KEYS (always: far nodes may never have heard a HELLO from it), VALIDITY_TIME,
 * ICV; one address per symmetric neighbour with LINK_COST (226, float32 ms per byte) and LINK_MTU
 * (227, u16). Each node rebroadcasts a new TC at most once, and only where a neighbour may not
 * have heard it (see forward): no MPR election, but no echo in a full mesh either.
 *
 * Node ids in routing are the hex of the first 16 bytes of a SID (the RFC 5444 address).
 */
import { decodeTime, encodeTime } from '../rfc5444/time-tlv.js';
import { Rfc5444Reader, type MessageConsumer, type MessageContext } from '../rfc5444/reader.js';
import { Rfc5444Writer, sequencedPackets, type AddressHandle, type MessageTlvFinishContext } from '../rfc5444/writer.js';
import type { Message, Tlv } from '../rfc5444/model.js';
import type { Endpoint } from '../link/link.js';
import { sidHex as hex, sidOfSigningKey, type Identity } from './identity.js';
import { ICV_EXT_GENERIC, ICV_LENGTH, TLV_ICV, TLV_KEYS, icvValue, verifyIcv } from './signing.js';
import { linkCost, type LocalLink, type TopologyEdge } from './routing.js';

export const MSG_HELLO = 0;
export const MSG_TC = 1;
const TLV_INTERVAL = 0;
const TLV_VALIDITY = 1;
const TLV_LINK_STATUS = 3;
const TLV_IN_RATIO = 225;
const TLV_LINK_COST = 226;
const TLV_LINK_MTU = 227;
const LOST = 0;
const SYMMETRIC = 1;
const HEARD = 2;
/** ms per byte assumed for a link with no rate cap (10 Mbit/s), so Wi-Fi hops still cost a little. */
const UNCAPPED_MS_PER_BYTE = 8 / 10_000;
const MAX_NODES = 4096;
const MAX_DUPLICATES = 8192;

export interface ControlInterface {
  name: string;
  mtu: number;
  airtimeMs(bytes: number): number;
  /** Share of time the band allows this transmitter (EU868 g3: 0.1); default 1. */
  dutyFraction?: number;
}

export interface ControlOptions {
  identity: Identity;
  random?: () => number;
  minHelloMs?: number;
  maxHelloMs?: number;
  /** Share of an interface's airtime budget HELLOs may use; default 0.1. */
  helloShare?: number;
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
}

interface LinkState {
  id: string;
  iface: string;
  lastSeq: number | undefined;
  inRatio: number;
  outRatio: number;
  heardUntil: number;
  theyHearUsUntil: number;
  /** Advertised as LOST until then, after it stopped being heard. */
  lostUntil: number;
  validityMs: number;
  endpoint: Endpoint | undefined;
}

interface IfaceState {
  cfg: ControlInterface;
  seq: number;
  helloCount: number;
  nextHello: number;
}

interface TcState {
  seqno: number;
  validUntil: number;
  edges: Map<string, { cost: number; mtu: number }>;
}

export interface ControlCounters {
  hellosSent: number;
  hellosReceived: number;
  tcsSent: number;
  tcsReceived: number;
  tcsForwarded: number;
  noKey: number;
  badIcv: number;
  badKey: number;
  malformed: number;
}

const u16 = (v: number): Uint8Array => Uint8Array.of(v >> 8, v & 0xff);

export function nodeIdOf(sid: Uint8Array): string {
  return hex(sid.subarray(0, 16));
}

export class ControlPlane {
  readonly id: string;
  readonly counters: ControlCounters = { hellosSent: 0, hellosReceived: 0, tcsSent: 0, tcsReceived: 0, tcsForwarded: 0, noKey: 0, badIcv: 0, badKey: 0, malformed: 0 };
  /** Raised whenever something that routes depend on changed. */
  version = 0;
  private readonly identity: Identity;
  private readonly random: () => number;
  private readonly minHelloMs: number;
  private readonly maxHelloMs: number;
  private readonly helloShare: number;
  private readonly writer: Rfc5444Writer;
  private readonly reader: Rfc5444Reader;
  private readonly ifaces = new Map<string, IfaceState>();
  private readonly links = new Map<string, LinkState>();
  private readonly nodes = new Map<string, { sid: Uint8Array; edKey: Uint8Array }>();
  private readonly tcs = new Map<string, TcState>();
  private readonly duplicates = new Map<string, number>();
  private output: Array<{ iface: string; bytes: Uint8Array }> = [];
  private now = 0;
  private from: Endpoint | undefined;
  private tcSeq = 0;
  private nextTc = 0;
  private tcDirty = true;
  /** What the current message being written holds, for signing each fragment. */
  private building: { header: Pick<Message, 'type' | 'originator' | 'seqno'>; tlvs: Tlv[]; addressTlvs: Map<string, Tlv[]> } | undefined;

  constructor(options: ControlOptions) {
    this.identity = options.identity;
    this.id = nodeIdOf(options.identity.sid);
    this.random = options.random ?? Math.random;
    this.minHelloMs = options.minHelloMs ?? 2_000;
    this.maxHelloMs = options.maxHelloMs ?? 1_800_000;
    this.helloShare = options.helloShare ?? 0.1;
    this.nodes.set(this.id, { sid: options.identity.sid, edKey: options.identity.ed25519Public });
    this.writer = new Rfc5444Writer({ sendPacket: (iface, bytes) => this.output.push({ iface, bytes }) });
    this.writer.setPacketCreator(sequencedPackets());
    this.registerMessages();
    this.reader = new Rfc5444Reader({ onForward: (bytes, message) => this.forward(bytes, message) });
    this.reader.addMessageConsumer(MSG_HELLO, this.helloConsumer());
    this.reader.addMessageConsumer(MSG_TC, this.tcConsumer());
  }

  addInterface(cfg: ControlInterface, now: number): void {
    this.writer.registerInterface(cfg.name, cfg.mtu);
    // The first HELLO goes soon, jittered so that nodes started together do not collide.
    this.ifaces.set(cfg.name, { cfg, seq: 0, helloCount: 0, nextHello: now + this.random() * 500 });
  }

  removeInterface(name: string): void {
    this.writer.unregisterInterface(name);
    this.ifaces.delete(name);
    for (const [key, l] of this.links) if (l.iface === name) this.links.delete(key);
    this.changed();
  }

  /** An RFC 5444 packet received on `iface`. */
  receive(iface: string, bytes: Uint8Array, now: number, from?: Endpoint): void {
    if (!this.ifaces.has(iface)) return;
    this.now = now;
    this.from = from;
    const r = this.reader.handlePacket(bytes, iface);
    if (!r.ok) this.counters.malformed++;
    this.writer.flushAll();
  }

  /** Packets to put on the air since the last call. */
  takeOutput(): Array<{ iface: string; bytes: Uint8Array }> {
    const out = this.output;
    this.output = [];
    return out;
  }

  poll(now: number): void {
    this.now = now;
    this.expire(now);
    for (const s of this.ifaces.values()) {
      if (now < s.nextHello) continue;
      this.sendHello(s);
      const interval = this.helloInterval(s);
      s.nextHello = now + interval * (0.9 + 0.1 * this.random());
    }
    if (now >= this.nextTc || (this.tcDirty && now >= this.nextTc - this.tcInterval() + this.minHelloMs)) {
      this.sendTc();
      this.nextTc = now + this.tcInterval() * (0.9 + 0.1 * this.random());
    }
  }

  nextDeadline(): number {
    let next = this.nextTc;
    if (this.tcDirty) next = Math.min(next, this.nextTc - this.tcInterval() + this.minHelloMs);
    for (const s of this.ifaces.values()) next = Math.min(next, s.nextHello);
    for (const l of this.links.values()) next = Math.min(next, l.heardUntil > this.now ? l.heardUntil : l.lostUntil);
    for (const t of this.tcs.values()) next = Math.min(next, t.validUntil);
    return Math.max(next, this.now);
  }

  neighbours(): Neighbour[] {
    return [...this.links.values()]
      .filter((l) => l.heardUntil > this.now)
      .map((l) => ({
        id: l.id,
        sid: this.nodes.get(l.id)?.sid,
        iface: l.iface,
        symmetric: this.symmetric(l),
        inRatio: l.inRatio,
        outRatio: l.outRatio,
        endpoint: l.endpoint,
      }));
  }

  /** This node's symmetric links, costed, for routing. */
  localLinks(): LocalLink[] {
    const out: LocalLink[] = [];
    for (const l of this.links.values()) {
      if (!this.symmetric(l)) continue;
      const iface = this.ifaces.get(l.iface);
      if (!iface) continue;
      out.push({ neighbour: l.id, iface: l.iface, cost: linkCost(this.msPerByte(iface.cfg), l.outRatio), mtu: iface.cfg.mtu });
    }
    return out;
  }

  /** Edges advertised by other nodes' TCs. */
  topology(): TopologyEdge[] {
    const out: TopologyEdge[] = [];
    for (const [from, t] of this.tcs) for (const [to, e] of t.edges) out.push({ from, to, cost: e.cost, mtu: e.mtu });
    return out;
  }

  /** The full SID and signing key of a node, once learned. */
  node(id: string): { sid: Uint8Array; edKey: Uint8Array } | undefined {
    return this.nodes.get(id);
  }

  knownNodes(): Array<{ id: string; sid: Uint8Array; edKey: Uint8Array }> {
    return [...this.nodes].map(([id, n]) => ({ id, ...n }));
  }

  /** The endpoint a neighbour's HELLOs came from on `iface` (UDP unicast). */
  endpointOf(id: string, iface: string): Endpoint | undefined {
    return this.links.get(`${iface}|${id}`)?.endpoint;
  }

  helloIntervalOf(iface: string): number | undefined {
    const s = this.ifaces.get(iface);
    return s ? this.helloInterval(s) : undefined;
  }

  // -------------------------------------------------------------------------------------------

  private msPerByte(cfg: ControlInterface): number {
    const perByte = cfg.airtimeMs(cfg.mtu) / cfg.mtu;
    return perByte > 0 ? perByte : UNCAPPED_MS_PER_BYTE;
  }

  /**
   * HELLOs may use `helloShare` of this node's budget (its duty cycle), and, since every node
   * heard on the interface shares the channel, the channel's HELLO load stays within that share:
   * interval = HELLO airtime × (1 + nodes heard) ÷ (duty cycle × share), within [min, max].
   */
  private helloInterval(s: IfaceState): number {
    let heard = 0;
    for (const l of this.links.values()) if (l.iface === s.cfg.name) heard++;
    const size = Math.min(s.cfg.mtu, 100 + 20 * heard);
    const airtime = s.cfg.airtimeMs(size);
    const budget = (s.cfg.dutyFraction ?? 1) * this.helloShare;
    return Math.min(this.maxHelloMs, Math.max(this.minHelloMs, (airtime * (1 + heard)) / budget));
  }

  private tcInterval(): number {
    let longest = this.minHelloMs;
    for (const s of this.ifaces.values()) longest = Math.max(longest, this.helloInterval(s));
    return 2 * longest;
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
        // Alone, or with a neighbour that may not know us yet: carry the key.
        const here = [...this.links.values()].filter((l) => l.iface === s.cfg.name);
        const unsure = here.length === 0 || here.some((l) => !this.symmetric(l));
        if (unsure || s.helloCount % 4 === 0) this.addTlv(ctx, TLV_KEYS, this.identity.ed25519Public);
        ctx.reserveTlv(TLV_ICV, ICV_EXT_GENERIC, ICV_LENGTH);
      },
      addAddresses: (ctx) => {
        for (const l of this.links.values()) {
          if (l.iface !== ctx.interface) continue;
          const heard = l.heardUntil > this.now;
          if (!heard && l.lostUntil <= this.now) continue;
          const a = ctx.addAddress(hexToBytes(l.id));
          this.addAddressTlv(ctx, a, TLV_LINK_STATUS, Uint8Array.of(!heard ? LOST : this.symmetric(l) ? SYMMETRIC : HEARD));
          this.addAddressTlv(ctx, a, TLV_IN_RATIO, Uint8Array.of(Math.round(l.inRatio * 255)));
        }
      },
      finishMessageTLVs: (ctx) => this.sign(ctx),
    });
    w.registerContentProvider(MSG_TC, {
      addMessageTLVs: (ctx) => {
        this.addTlv(ctx, TLV_VALIDITY, Uint8Array.of(encodeTime(3 * this.tcInterval())));
        this.addTlv(ctx, TLV_KEYS, this.identity.ed25519Public);
        ctx.reserveTlv(TLV_ICV, ICV_EXT_GENERIC, ICV_LENGTH);
      },
      addAddresses: (ctx) => {
        const best = new Map<string, LocalLink>();
        for (const l of this.localLinks()) if (!best.has(l.neighbour) || l.cost < best.get(l.neighbour)!.cost) best.set(l.neighbour, l);
        for (const l of best.values()) {
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
    const model: Message = {
      type: b.header.type,
      addrLength: 16,
      originator: b.header.originator,
      hopLimit: null,
      hopCount: null,
      seqno: b.header.seqno,
      tlvs: b.tlvs,
      addresses: ctx.fragment.addresses.map((a) => ({ address: a.address, prefixLength: a.prefixLength, tlvs: b.addressTlvs.get(hex(a.address)) ?? [] })),
    };
    ctx.setReservedTlv(TLV_ICV, ICV_EXT_GENERIC, icvValue(model, this.identity.ed25519Secret));
  }

  private sendHello(s: IfaceState): void {
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
    this.writer.createMessage(MSG_TC);
    this.writer.flushAll();
    this.counters.tcsSent++;
  }

  /**
   * Rebroadcasts a new TC only on interfaces where a symmetric neighbour of ours is neither its
   * originator nor one of the originator's own neighbours (those heard the originator directly):
   * a cheap stand-in for OLSR's MPR selection that keeps a full mesh from echoing every TC.
   */
  private forward(bytes: Uint8Array, message: Message): void {
    if (message.type !== MSG_TC || !message.originator) return;
    const origin = hex(message.originator);
    const covered = new Set(message.addresses.map((a) => hex(a.address)));
    const wanted = new Set<string>();
    for (const l of this.links.values()) if (l.id !== origin && !covered.has(l.id) && this.symmetric(l)) wanted.add(l.iface);
    if (wanted.size === 0) return;
    this.writer.forwardMessage(bytes, (iface) => wanted.has(iface));
    this.counters.tcsForwarded++;
  }

  /** The sender's keys, from its KEYS TLV (checked against the originator) or from memory. */
  private keysFor(m: Message): { id: string; edKey: Uint8Array } | undefined {
    if (!m.originator || m.originator.length !== 16) return undefined;
    const id = hex(m.originator);
    const keys = m.tlvs.find((t) => t.type === TLV_KEYS && t.extType === 0)?.value;
    if (keys) {
      if (keys.length !== 32) return undefined;
      let sid: Uint8Array;
      try {
        sid = sidOfSigningKey(keys);
      } catch {
        this.counters.badKey++;
        return undefined;
      }
      if (nodeIdOf(sid) !== id) {
        this.counters.badKey++;
        return undefined;
      }
      return { id, edKey: keys.slice() };
    }
    const known = this.nodes.get(id);
    if (!known) this.counters.noKey++;
    return known ? { id, edKey: known.edKey } : undefined;
  }

  /** Authenticates a message; remembers the sender's keys when it checks out. */
  private authenticate(m: Message): string | undefined {
    const keys = this.keysFor(m);
    if (!keys || keys.id === this.id) return undefined;
    if (!verifyIcv(m, keys.edKey)) {
      this.counters.badIcv++;
      return undefined;
    }
    if (!this.nodes.has(keys.id)) {
      this.nodes.set(keys.id, { sid: sidOfSigningKey(keys.edKey), edKey: keys.edKey });
      if (this.nodes.size > MAX_NODES) this.forgetOneNode();
      this.version++; // a new node can now be resolved by its short address
    }
    return keys.id;
  }

  private forgetOneNode(): void {
    for (const id of this.nodes.keys()) {
      if (id === this.id || [...this.links.values()].some((l) => l.id === id)) continue;
      this.nodes.delete(id);
      return;
    }
  }

  private helloConsumer(): MessageConsumer {
    return {
      block: (ctx: MessageContext) => {
        const m = ctx.message;
        const id = this.authenticate(m);
        if (!id) return 'drop-message';
        this.counters.hellosReceived++;
        const validity = decodeTimeTlv(m, TLV_VALIDITY) ?? 3 * this.minHelloMs;
        const key = `${ctx.iface}|${id}`;
        let l = this.links.get(key);
        const wasSymmetric = l ? this.symmetric(l) : false;
        if (!l) {
          l = { id, iface: ctx.iface, lastSeq: undefined, inRatio: 1, outRatio: 1, heardUntil: 0, theyHearUsUntil: 0, lostUntil: 0, validityMs: validity, endpoint: undefined };
          this.links.set(key, l);
        }
        if (m.seqno !== null) {
          if (l.lastSeq !== undefined) {
            const gap = (m.seqno - l.lastSeq) & 0xffff;
            if (gap >= 1 && gap <= 64) l.inRatio = 0.75 * l.inRatio + 0.25 * (1 / gap);
          }
          l.lastSeq = m.seqno;
        }
        l.heardUntil = this.now + validity;
        l.lostUntil = l.heardUntil + validity;
        l.validityMs = validity;
        if (this.from) l.endpoint = this.from;
        const me = this.identity.sid.subarray(0, 16);
        const mine = m.addresses.find((a) => a.address.length === 16 && a.address.every((v, i) => v === me[i]));
        if (mine) {
          const status = mine.tlvs.find((t) => t.type === TLV_LINK_STATUS)?.value?.[0];
          l.theyHearUsUntil = status === HEARD || status === SYMMETRIC ? this.now + validity : 0;
          const ratio = mine.tlvs.find((t) => t.type === TLV_IN_RATIO)?.value?.[0];
          if (ratio !== undefined) l.outRatio = ratio / 255;
        }
        if (this.symmetric(l) !== wasSymmetric) this.changed();
        return 'okay';
      },
    };
  }

  private tcConsumer(): MessageConsumer {
    return {
      block: (ctx: MessageContext) => {
        const m = ctx.message;
        // A copy already seen (by its signature) is dropped before paying for a verification;
        // only verified signatures enter the set, so a forgery cannot suppress a real TC.
        const icv = m.tlvs.find((t) => t.type === TLV_ICV && t.extType === ICV_EXT_GENERIC)?.value;
        if (!icv || icv.length !== ICV_LENGTH) return 'drop-message';
        const dup = hex(icv.subarray(3, 27));
        if (this.duplicates.has(dup)) return 'drop-message';
        const id = this.authenticate(m);
        if (!id || m.seqno === null) return 'drop-message';
        this.duplicates.set(dup, this.now + 3 * this.tcInterval());
        if (this.duplicates.size > MAX_DUPLICATES) this.duplicates.delete(this.duplicates.keys().next().value!);
        this.counters.tcsReceived++;
        const validity = decodeTimeTlv(m, TLV_VALIDITY) ?? 3 * this.tcInterval();
        let t = this.tcs.get(id);
        const newer = !t || ((m.seqno - t.seqno) & 0xffff) > 0 && ((m.seqno - t.seqno) & 0xffff) < 0x8000;
        if (!t || newer) {
          t = { seqno: m.seqno, validUntil: 0, edges: new Map() };
          this.tcs.set(id, t);
        } else if (m.seqno !== t.seqno) {
          return 'drop-message'; // older than what we have
        }
        t.validUntil = this.now + validity;
        for (const a of m.addresses) {
          const cost = a.tlvs.find((x) => x.type === TLV_LINK_COST)?.value;
          const mtu = a.tlvs.find((x) => x.type === TLV_LINK_MTU)?.value;
          if (!cost || cost.length !== 4 || !mtu || mtu.length !== 2) continue;
          const c = new DataView(cost.buffer, cost.byteOffset, 4).getFloat32(0);
          if (!(c >= 0 && Number.isFinite(c))) continue;
          t.edges.set(hex(a.address), { cost: c, mtu: (mtu[0]! << 8) | mtu[1]! });
        }
        this.version++;
        return 'okay';
      },
    };
  }

  private expire(now: number): void {
    for (const [key, l] of this.links) {
      if (l.heardUntil <= now && l.lostUntil <= now) {
        this.links.delete(key);
        this.changed();
      } else if (l.heardUntil <= now && l.theyHearUsUntil > 0) {
        l.theyHearUsUntil = 0;
        this.changed();
      }
    }
    for (const [id, t] of this.tcs) {
      if (t.validUntil <= now) {
        this.tcs.delete(id);
        this.version++;
      }
    }
    for (const [k, until] of this.duplicates) if (until <= now) this.duplicates.delete(k);
  }
}

function decodeTimeTlv(m: Message, type: number): number | undefined {
  const v = m.tlvs.find((t) => t.type === type && t.extType === 0)?.value;
  return v && v.length === 1 ? decodeTime(v[0]!) : undefined;
}

function hexToBytes(h: string): Uint8Array {
  return Uint8Array.from(Buffer.from(h, 'hex'));
}
