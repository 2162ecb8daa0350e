/**
 * The RFC 5444 reader: decodes a packet (wire.ts) and hands its parts to registered consumers, so
 * that sub-protocols read overlapping parts of one packet without knowing of each other.
 *
 * Semantics follow the reference library (OONF rfc5444 reader):
 * - Packet consumers run in `order`: startPacket, then packetTlvs (or failedConstraints) over the
 *   packet TLVs they declared; after all messages, endPacket in reverse order for those started.
 * - For each message, the consumers of its type and the 'default' consumers run together in
 *   `order` (ties: registration order). Each consumer: block (or failedConstraints) with the
 *   message TLVs it declared, then address (or addressFailedConstraints) for each address not
 *   dropped, with the address TLVs it declared, then end(ctx, dropped).
 * - A constraint failure (a mandatory TLV missing, a duplicate not allowed, a value length out of
 *   range) calls failedConstraints instead of block; without that method nothing is called.
 * - Results, in rising strength: 'okay'; 'drop-tlv' (the TLVs marked with ctx.dropTlv, or if none
 *   is marked all TLVs the consumer matched, are hidden from later consumers); 'drop-address'
 *   (from an address callback: later consumers do not see the address; from a message callback it
 *   stops the message, as in the reference); 'drop-message-but-forward' (later consumers do not
 *   see the message, it is still forwarded); 'drop-message' (not processed further, not
 *   forwarded); 'drop-packet' (nothing more of the packet is processed or forwarded).
 *   An end callback may return a stronger result than the one it was given.
 * - Forwarding: a message not dropped (or dropped but forward), not marked with
 *   ctx.preventForwarding(), with a hop limit above 1, is handed to onForward with its bytes.
 *
 * Nothing escapes handlePacket: malformed bytes give { ok: false, error } with the offset; a
 * consumer that throws (or returns something that is not a ConsumerResult) is counted in
 * `counters.consumerErrors` and its message (packet, for packet consumers) dropped.
 */
import type { Message, Packet, Rfc5444Error, Tlv } from './model.js';
import { decodePacket } from './wire.js';

export type ConsumerResult =
  | 'okay'
  | 'drop-tlv'
  | 'drop-address'
  | 'drop-message-but-forward'
  | 'drop-message'
  | 'drop-packet';

const STRENGTH: Record<ConsumerResult, number> = {
  okay: 0,
  'drop-tlv': 1,
  'drop-address': 2,
  'drop-message-but-forward': 3,
  'drop-message': 4,
  'drop-packet': 5,
};

/** A TLV a consumer wants; lookups on the context take the entry object itself. */
export interface TlvEntry {
  type: number;
  /** Undefined: any type extension matches. */
  extType?: number;
  mandatory?: boolean;
  /** Default false: two matching TLVs fail the constraints. */
  duplicatesAllowed?: boolean;
  /** Value length bounds (a TLV without value has length 0). */
  minLength?: number;
  maxLength?: number;
}

/** The TLVs a callback sees, looked up by the consumer's entries. */
export interface TlvLookup {
  /** Every TLV visible to this consumer (not dropped by an earlier one). */
  readonly allTlvs: readonly Tlv[];
  /** The first TLV matching the entry. */
  tlv(entry: TlvEntry): Tlv | undefined;
  /** All TLVs matching the entry. */
  tlvsFor(entry: TlvEntry): readonly Tlv[];
  /** Marks the entry's TLVs to be dropped if the callback returns 'drop-tlv'. */
  dropTlv(entry: TlvEntry): void;
  /** Why the constraints failed (empty in block/address callbacks). */
  readonly constraintFailures: readonly string[];
}

export interface PacketContext extends TlvLookup {
  readonly iface: string;
  readonly packet: Packet;
  readonly seqno: number | null;
}

export interface MessageContext extends TlvLookup {
  readonly iface: string;
  readonly packet: Packet;
  readonly message: Message;
  /** The message as received (a view into the packet). */
  readonly bytes: Uint8Array;
  /** Keeps this message from being forwarded, whatever the results. */
  preventForwarding(): void;
}

export interface AddressContext extends MessageContext {
  readonly address: Uint8Array;
  readonly prefixLength: number;
  /** Index of the address in the message. */
  readonly index: number;
}

type Callback<C> = (ctx: C) => ConsumerResult | void;

export interface PacketConsumer {
  tlvs?: readonly TlvEntry[];
  startPacket?: Callback<PacketContext>;
  packetTlvs?: Callback<PacketContext>;
  failedConstraints?: Callback<PacketContext>;
  endPacket?(ctx: PacketContext, dropped: boolean): void;
}

export interface MessageConsumer {
  messageTlvs?: readonly TlvEntry[];
  addressTlvs?: readonly TlvEntry[];
  block?: Callback<MessageContext>;
  failedConstraints?: Callback<MessageContext>;
  address?: Callback<AddressContext>;
  addressFailedConstraints?: Callback<AddressContext>;
  end?(ctx: MessageContext, dropped: boolean): ConsumerResult | void;
}

export type ForwardHook = (bytes: Uint8Array, message: Message, iface: string) => void;

export type HandleResult = { ok: true } | { ok: false; error: Rfc5444Error };

export interface ReaderCounters {
  packets: number;
  malformed: number;
  packetsDropped: number;
  messages: number;
  messagesDropped: number;
  forwarded: number;
  /** Consumer callbacks and forward hooks that threw. */
  consumerErrors: number;
}

interface Registered<C> {
  consumer: C;
  order: number;
  seq: number;
  msgType: number | 'default';
}

/** The TLVs of one block (packet, message, or one address) and which are dropped. */
class TlvBlock {
  readonly dropped = new Set<number>();
  constructor(readonly tlvs: readonly Tlv[]) {}

  visible(): Array<{ tlv: Tlv; i: number }> {
    return this.tlvs.map((tlv, i) => ({ tlv, i })).filter((x) => !this.dropped.has(x.i));
  }
}

interface Matched {
  byEntry: Map<TlvEntry, Array<{ tlv: Tlv; i: number }>>;
  failures: string[];
}

function match(entries: readonly TlvEntry[], block: TlvBlock): Matched {
  const visible = block.visible();
  const byEntry = new Map<TlvEntry, Array<{ tlv: Tlv; i: number }>>();
  const failures: string[] = [];
  for (const e of entries) {
    const found = visible.filter((x) => x.tlv.type === e.type && (e.extType === undefined || x.tlv.extType === e.extType));
    byEntry.set(e, found);
    const name = `TLV type ${e.type}${e.extType === undefined ? '' : ` ext ${e.extType}`}`;
    if (e.mandatory && found.length === 0) failures.push(`${name} missing`);
    if (!e.duplicatesAllowed && found.length > 1) failures.push(`${name} ${found.length} times`);
    for (const { tlv } of found) {
      const len = tlv.value?.length ?? 0;
      if ((e.minLength !== undefined && len < e.minLength) || (e.maxLength !== undefined && len > e.maxLength)) {
        failures.push(`${name} value of ${len} bytes outside ${e.minLength ?? 0}..${e.maxLength ?? 65535}`);
      }
    }
  }
  return { byEntry, failures };
}

/** A lookup over a block for one callback, and `commitDrops` to apply a 'drop-tlv' result. */
function lookup(block: TlvBlock, m: Matched, failed: boolean): { view: TlvLookup; commitDrops(): void } {
  const marked = new Set<TlvEntry>();
  return {
    view: {
      allTlvs: block.visible().map((x) => x.tlv),
      tlv: (e) => m.byEntry.get(e)?.[0]?.tlv,
      tlvsFor: (e) => (m.byEntry.get(e) ?? []).map((x) => x.tlv),
      dropTlv: (e) => void marked.add(e),
      constraintFailures: failed ? m.failures : [],
    },
    commitDrops: () => {
      const entries = marked.size > 0 ? [...marked] : [...m.byEntry.keys()];
      for (const e of entries) for (const x of m.byEntry.get(e) ?? []) block.dropped.add(x.i);
    },
  };
}

const stronger = (a: ConsumerResult, b: ConsumerResult): ConsumerResult => (STRENGTH[b] > STRENGTH[a] ? b : a);

export class Rfc5444Reader {
  onForward: ForwardHook | undefined;
  readonly counters: ReaderCounters = {
    packets: 0,
    malformed: 0,
    packetsDropped: 0,
    messages: 0,
    messagesDropped: 0,
    forwarded: 0,
    consumerErrors: 0,
  };
  private readonly packetConsumers: Registered<PacketConsumer>[] = [];
  private readonly messageConsumers: Registered<MessageConsumer>[] = [];
  private seq = 0;

  constructor(options: { onForward?: ForwardHook } = {}) {
    this.onForward = options.onForward;
  }

  addPacketConsumer(consumer: PacketConsumer, order = 0): void {
    this.insert(this.packetConsumers, { consumer, order, seq: this.seq++, msgType: 'default' });
  }

  addMessageConsumer(msgType: number | 'default', consumer: MessageConsumer, order = 0): void {
    if (msgType !== 'default' && !(Number.isInteger(msgType) && msgType >= 0 && msgType <= 255)) {
      throw new RangeError(`message type ${msgType} is not 0..255`);
    }
    this.insert(this.messageConsumers, { consumer, order, seq: this.seq++, msgType });
  }

  removePacketConsumer(consumer: PacketConsumer): void {
    remove(this.packetConsumers, consumer);
  }

  removeMessageConsumer(consumer: MessageConsumer): void {
    remove(this.messageConsumers, consumer);
  }

  /** Decodes and processes one packet. Never throws. */
  handlePacket(bytes: Uint8Array, iface: string): HandleResult {
    this.counters.packets++;
    let decoded: ReturnType<typeof decodePacket>;
    try {
      decoded = decodePacket(bytes);
    } catch (e) {
      decoded = { ok: false, error: { reason: `decoder failed: ${(e as Error).message}`, offset: 0 } };
    }
    if (!decoded.ok) {
      this.counters.malformed++;
      return { ok: false, error: decoded.error };
    }
    const { packet, messageSpans } = decoded;
    const pktBlock = new TlvBlock(packet.tlvs);
    let result: ConsumerResult = 'okay';
    const started: Registered<PacketConsumer>[] = [];

    for (const reg of this.packetConsumers) {
      started.push(reg);
      result = this.runPacketConsumer(reg.consumer, pktBlock, packet, iface);
      if (result !== 'okay') break;
    }
    if (result === 'okay') {
      for (let i = 0; i < packet.messages.length; i++) {
        const span = messageSpans[i]!;
        const r = this.handleMessage(packet, packet.messages[i]!, bytes.subarray(span.start, span.end), iface);
        if (r === 'drop-packet') {
          result = r;
          break;
        }
      }
    }
    const dropped = result !== 'okay';
    for (let i = started.length - 1; i >= 0; i--) {
      const c = started[i]!.consumer;
      if (!c.endPacket) continue;
      const m = match(c.tlvs ?? [], pktBlock);
      this.call(() => c.endPacket!({ ...lookup(pktBlock, m, false).view, iface, packet, seqno: packet.seqno }, dropped));
    }
    if (dropped) this.counters.packetsDropped++;
    return { ok: true };
  }

  // --- internals ----------------------------------------------------------------------------

  /** Any result but 'okay' and 'drop-tlv' at packet level drops the packet. */
  private runPacketConsumer(c: PacketConsumer, block: TlvBlock, packet: Packet, iface: string): ConsumerResult {
    const base = { iface, packet, seqno: packet.seqno };
    if (c.startPacket) {
      const r = this.call(() => c.startPacket!({ ...lookup(block, match([], block), false).view, ...base }), 'drop-packet');
      if (r !== 'okay' && r !== 'drop-tlv') return 'drop-packet';
    }
    if (c.packetTlvs || c.failedConstraints) {
      const m = match(c.tlvs ?? [], block);
      const failed = m.failures.length > 0;
      const cb = failed ? c.failedConstraints : c.packetTlvs;
      if (cb) {
        const ctx = lookup(block, m, failed);
        const r = this.call(() => cb({ ...ctx.view, ...base }), 'drop-packet');
        if (r === 'drop-tlv') ctx.commitDrops();
        else if (r !== 'okay') return 'drop-packet';
      }
    }
    return 'okay';
  }

  private handleMessage(packet: Packet, message: Message, bytes: Uint8Array, iface: string): ConsumerResult {
    this.counters.messages++;
    const msgBlock = new TlvBlock(message.tlvs);
    const addrBlocks = message.addresses.map((a) => new TlvBlock(a.tlvs));
    const droppedAddresses = new Set<number>();
    let noForward = false;
    const base = { iface, packet, message, bytes, preventForwarding: () => void (noForward = true) };

    let result: ConsumerResult = 'okay';
    for (const reg of this.messageConsumers) {
      if (reg.msgType !== 'default' && reg.msgType !== message.type) continue;
      const c = reg.consumer;
      let r: ConsumerResult = 'okay';
      const m = match(c.messageTlvs ?? [], msgBlock);
      if (c.block || c.failedConstraints) {
        const failed = m.failures.length > 0;
        const cb = failed ? c.failedConstraints : c.block;
        if (cb) {
          const ctx = lookup(msgBlock, m, failed);
          r = this.call(() => cb({ ...ctx.view, ...base }), 'drop-message');
          if (r === 'drop-tlv') {
            ctx.commitDrops();
            r = 'okay';
          }
        }
      }
      if (r === 'okay' && (c.address || c.addressFailedConstraints)) {
        r = this.runAddresses(c, message, addrBlocks, droppedAddresses, base);
      }
      if (c.end) {
        const given = r;
        const ended = this.call(() => c.end!({ ...lookup(msgBlock, m, false).view, ...base }, given !== 'okay'), 'drop-message');
        r = stronger(r, ended === 'drop-tlv' || ended === 'drop-address' ? 'okay' : ended);
      }
      if (r !== 'okay') {
        result = r;
        break;
      }
    }
    if (result !== 'okay') this.counters.messagesDropped++;
    const forward = result === 'okay' || result === 'drop-message-but-forward';
    if (forward && !noForward && this.onForward && message.hopLimit !== null && message.hopLimit > 1) {
      const hook = this.onForward;
      if (this.call(() => void hook(bytes, message, iface), 'drop-message') === 'okay') this.counters.forwarded++;
    }
    return result;
  }

  private runAddresses(
    c: MessageConsumer,
    message: Message,
    blocks: TlvBlock[],
    droppedAddresses: Set<number>,
    base: Omit<MessageContext, keyof TlvLookup>,
  ): ConsumerResult {
    for (let j = 0; j < message.addresses.length; j++) {
      if (droppedAddresses.has(j)) continue;
      const a = message.addresses[j]!;
      const block = blocks[j]!;
      const m = match(c.addressTlvs ?? [], block);
      const failed = m.failures.length > 0;
      const cb = failed ? c.addressFailedConstraints : c.address;
      if (!cb) continue;
      const ctx = lookup(block, m, failed);
      const r = this.call(
        () => cb({ ...ctx.view, ...base, address: a.address, prefixLength: a.prefixLength, index: j }),
        'drop-message',
      );
      if (r === 'drop-tlv') ctx.commitDrops();
      else if (r === 'drop-address') droppedAddresses.add(j);
      else if (r !== 'okay') return r;
    }
    return 'okay';
  }

  /** Runs a consumer callback; a throw is counted and becomes `onThrow`. */
  private call(f: () => ConsumerResult | void, onThrow: ConsumerResult = 'okay'): ConsumerResult {
    try {
      const r = f();
      if (r === undefined) return 'okay';
      if (typeof r === 'string' && Object.hasOwn(STRENGTH, r)) return r;
    } catch {
      // counted below
    }
    this.counters.consumerErrors++;
    return onThrow;
  }

  private insert<C>(list: Registered<C>[], r: Registered<C>): void {
    list.push(r);
    list.sort((a, b) => a.order - b.order || a.seq - b.seq);
  }
}

function remove<C>(list: Registered<C>[], consumer: C): void {
  const i = list.findIndex((r) => r.consumer === consumer);
  if (i >= 0) list.splice(i, 1);
}
