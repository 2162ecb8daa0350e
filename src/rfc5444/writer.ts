/**
 * The RFC 5444 writer, sans-IO: messages are built by callbacks (one creator per message type, any
 * number of content providers), appended to one open packet per interface within that
 * interface's MTU, and handed to `sendPacket` when a packet is flushed or full. No timers: the
 * caller decides when to flush (aggregation is its business).
 *
 * Semantics and callback order follow the reference library (OONF rfc5444 writer):
 * - a packet is begun lazily, when the first message for an interface needs it: the packet
 *   creator's addPacketHeader, then every packet content provider's addPacketTLVs in order;
 * - a message: addMessageHeader, addMessageTLVs and addAddresses of the providers in priority
 *   order, then per fragment finishMessageTLVs in reverse order and finishMessageHeader last
 *   (writer-message.ts);
 * - a packet is finished when flushed: finishPacketTLVs in reverse order, finishPacketHeader last.
 * A fragment that does not fit the open packet flushes it and begins the next one.
 * The message size limit is the smaller of `maxMessageSize` and, for each selected interface,
 * its MTU less the open packet's header and packet TLVs.
 */
import { encodePacketHead } from './wire.js';
import { MSG_HAS_HOP_COUNT, MSG_HAS_HOP_LIMIT, MSG_HAS_ORIG, MSG_HAS_SEQNUM } from './wire-flags.js';
import {
  buildMessage,
  isU8,
  Rfc5444WriterError,
  TlvSlots,
  type MessageContentProvider,
  type MessageCreator,
} from './writer-message.js';

export {
  Rfc5444WriterError,
  type AddressContext,
  type AddressHandle,
  type FragmentInfo,
  type HeaderField,
  type MessageContentProvider,
  type MessageCreator,
  type MessageHeaderContext,
  type MessageHeaderFinishContext,
  type MessageTlvContext,
  type MessageTlvFinishContext,
} from './writer-message.js';

export interface WriterOptions {
  /** The largest message generated (bytes); default 1280. */
  maxMessageSize?: number;
  /** Called with each finished packet. */
  sendPacket(iface: string, bytes: Uint8Array): void;
}

export type InterfaceSelector = (iface: string) => boolean;

export interface PacketHeaderContext {
  readonly interface: string;
  /** Declares a packet sequence number, to be set now or in finishPacketHeader. */
  includeSeqno(): void;
  setSeqno(seqno: number): void;
}

export interface PacketHeaderFinishContext {
  readonly interface: string;
  readonly messageCount: number;
  /** Only when declared in addPacketHeader. */
  setSeqno(seqno: number): void;
}

export interface PacketCreator {
  addPacketHeader(ctx: PacketHeaderContext): void;
  finishPacketHeader?(ctx: PacketHeaderFinishContext): void;
}

export interface PacketTlvContext {
  readonly interface: string;
  addTlv(type: number, extType: number, value: Uint8Array | null): void;
  /** Reserves room for a TLV that finishPacketTLVs sets; left unset, it is omitted. */
  reserveTlv(type: number, extType: number, length: number): void;
}

export interface PacketTlvFinishContext {
  readonly interface: string;
  readonly messageCount: number;
  setReservedTlv(type: number, extType: number, value: Uint8Array | null): void;
}

export interface PacketContentProvider {
  addPacketTLVs?(ctx: PacketTlvContext): void;
  finishPacketTLVs?(ctx: PacketTlvFinishContext): void;
}

export interface MessageOptions {
  /** Generate the message once per selected interface (ctx.interface names it). */
  perInterface?: boolean;
  /** The address length unless addMessageHeader sets one; default 4. */
  addressLength?: number;
}

export type ForwardOutcome =
  | { ok: true; interfaces: string[]; tooLarge: string[] }
  | { ok: false; reason: 'malformed' | 'hop-limit' | 'hop-count'; detail: string };

/**
 * A packet creator that gives each interface's packets consecutive sequence numbers (mod 2^16),
 * set in finishPacketHeader so that only packets actually sent consume one.
 */
export function sequencedPackets(first = 0): PacketCreator {
  const next = new Map<string, number>();
  return {
    addPacketHeader: (ctx) => ctx.includeSeqno(),
    finishPacketHeader: (ctx) => {
      const n = next.get(ctx.interface) ?? first;
      ctx.setSeqno(n);
      next.set(ctx.interface, (n + 1) & 0xffff);
    },
  };
}

interface Ranked<T> {
  item: T;
  priority: number;
  seq: number;
}

interface MessageRegistration {
  creator: MessageCreator;
  perInterface: boolean;
  addressLength: number;
  providers: Ranked<MessageContentProvider>[];
  addressTlvTypes: Set<number>;
}

interface OpenPacket {
  hasSeqno: boolean;
  seqno: number | null;
  tlvs: TlvSlots;
  /** Header plus packet TLVs (reservations at their reserved size). */
  headSize: number;
  messages: Uint8Array[];
  messageBytes: number;
}

interface InterfaceState {
  name: string;
  mtu: number;
  open: OpenPacket | null;
}

const DEFAULT_MAX_MESSAGE_SIZE = 1280;

export class Rfc5444Writer {
  private readonly maxMessageSize: number;
  private readonly sendPacket: (iface: string, bytes: Uint8Array) => void;
  private readonly interfaces = new Map<string, InterfaceState>();
  private readonly messages = new Map<number, MessageRegistration>();
  /** Address TLV (type << 8 | ext) registered for every message type. */
  private readonly globalAddressTlvTypes = new Set<number>();
  private packetCreator: PacketCreator | null = null;
  private readonly packetProviders: Ranked<PacketContentProvider>[] = [];
  private seq = 0;
  private busy = false;

  constructor(options: WriterOptions) {
    const max = options.maxMessageSize ?? DEFAULT_MAX_MESSAGE_SIZE;
    if (!Number.isInteger(max) || max < 4 || max > 0xffff) {
      throw new RangeError(`maxMessageSize ${max} is not 4..65535`);
    }
    this.maxMessageSize = max;
    this.sendPacket = options.sendPacket;
  }

  // --- interfaces ---------------------------------------------------------------------------

  registerInterface(name: string, mtu: number): void {
    if (this.interfaces.has(name)) throw new Rfc5444WriterError(`interface ${name} is already registered`);
    this.interfaces.set(name, { name, mtu: checkMtu(mtu), open: null });
  }

  /** A new MTU applies from the next packet: a pending packet is flushed first. */
  setInterfaceMtu(name: string, mtu: number): void {
    const st = this.iface(name);
    checkMtu(mtu);
    this.guarded(() => this.finishPacket(st, false));
    st.mtu = mtu;
  }

  /** Forgets the interface; a pending packet is discarded. Returns the messages discarded. */
  unregisterInterface(name: string): number {
    const st = this.iface(name);
    this.interfaces.delete(name);
    return st.open?.messages.length ?? 0;
  }

  get interfaceNames(): string[] {
    return [...this.interfaces.keys()];
  }

  /** Messages waiting in the interface's open packet. */
  pendingMessages(name: string): number {
    return this.iface(name).open?.messages.length ?? 0;
  }

  // --- registration -------------------------------------------------------------------------

  registerMessage(type: number, creator: MessageCreator, options: MessageOptions = {}): void {
    checkU8(type, 'message type');
    const existing = this.messages.get(type);
    if (existing && existing.creator !== placeholderCreator) {
      throw new Rfc5444WriterError(`message type ${type} already has a creator`);
    }
    const addressLength = options.addressLength ?? 4;
    if (!Number.isInteger(addressLength) || addressLength < 1 || addressLength > 16) {
      throw new RangeError(`address length ${addressLength} is not 1..16`);
    }
    const reg = existing ?? this.messageSlot(type);
    reg.creator = creator;
    reg.perInterface = options.perInterface ?? false;
    reg.addressLength = addressLength;
  }

  /** Removes the creator; the type's content providers and address TLV types stay registered. */
  unregisterMessage(type: number): void {
    const reg = this.messages.get(type);
    if (reg) reg.creator = placeholderCreator;
  }

  /**
   * A content provider for a message type; lower priority runs first (ties: registration order).
   * `addressTlvTypes` registers the address TLV types the provider uses for this message type.
   */
  registerContentProvider(
    type: number,
    provider: MessageContentProvider,
    priority = 0,
    addressTlvTypes: ReadonlyArray<{ type: number; extType?: number }> = [],
  ): void {
    checkU8(type, 'message type');
    const reg = this.messages.get(type) ?? this.messageSlot(type);
    for (const t of addressTlvTypes) this.registerAddressTlvType(t.type, t.extType ?? 0, type);
    insertRanked(reg.providers, { item: provider, priority, seq: this.seq++ });
  }

  unregisterContentProvider(type: number, provider: MessageContentProvider): void {
    const reg = this.messages.get(type);
    if (reg) reg.providers = reg.providers.filter((r) => r.item !== provider);
  }

  /** Registers an address TLV type for one message type, or for all when msgType is omitted. */
  registerAddressTlvType(type: number, extType = 0, msgType?: number): void {
    checkU8(type, 'address TLV type');
    checkU8(extType, 'address TLV type extension');
    const key = (type << 8) | extType;
    if (msgType === undefined) this.globalAddressTlvTypes.add(key);
    else (this.messages.get(msgType) ?? this.messageSlot(checkU8(msgType, 'message type'))).addressTlvTypes.add(key);
  }

  /** The one packet creator (replaces an earlier one). Without one, packets have no seqno. */
  setPacketCreator(creator: PacketCreator | null): void {
    this.packetCreator = creator;
  }

  /** A packet TLV provider; lower priority runs first (ties: registration order). */
  registerPacketContentProvider(provider: PacketContentProvider, priority = 0): void {
    insertRanked(this.packetProviders, { item: provider, priority, seq: this.seq++ });
  }

  unregisterPacketContentProvider(provider: PacketContentProvider): void {
    const i = this.packetProviders.findIndex((r) => r.item === provider);
    if (i >= 0) this.packetProviders.splice(i, 1);
  }

  // --- producing ----------------------------------------------------------------------------

  /**
   * Builds a message of `type` and appends it (or its fragments) to the open packet of each
   * selected interface. Returns the number of messages (fragments) generated.
   */
  createMessage(type: number, selector: InterfaceSelector = () => true): number {
    const reg = this.messages.get(type);
    if (!reg || reg.creator === placeholderCreator) {
      throw new Rfc5444WriterError(`no message creator registered for message type ${type}`);
    }
    return this.guarded(() => {
      const targets = [...this.interfaces.values()].filter((st) => selector(st.name));
      if (!reg.perInterface) return targets.length === 0 ? 0 : this.createFor(type, reg, targets, null);
      let count = 0;
      for (const st of targets) count += this.createFor(type, reg, [st], st.name);
      return count;
    });
  }

  /**
   * Appends a received message to the open packet of each selected interface, with its hop limit
   * decremented and hop count incremented. A message whose hop limit is 1 or less (it would reach
   * 0), or whose hop count is 255, is not forwarded. The bytes are copied.
   */
  forwardMessage(bytes: Uint8Array, selector: InterfaceSelector = () => true): ForwardOutcome {
    const fields = messageHopFields(bytes);
    if (typeof fields === 'string') return { ok: false, reason: 'malformed', detail: fields };
    const { hopLimitAt, hopCountAt } = fields;
    if (hopLimitAt >= 0 && bytes[hopLimitAt]! <= 1) {
      return { ok: false, reason: 'hop-limit', detail: `hop limit ${bytes[hopLimitAt]}` };
    }
    if (hopCountAt >= 0 && bytes[hopCountAt]! === 0xff) {
      return { ok: false, reason: 'hop-count', detail: 'hop count 255' };
    }
    const copy = bytes.slice();
    if (hopLimitAt >= 0) copy[hopLimitAt] = copy[hopLimitAt]! - 1;
    if (hopCountAt >= 0) copy[hopCountAt] = copy[hopCountAt]! + 1;
    return this.guarded(() => {
      const interfaces: string[] = [];
      const tooLarge: string[] = [];
      for (const st of this.interfaces.values()) {
        if (!selector(st.name)) continue;
        const open = st.open ?? this.beginPacket(st);
        if (open.headSize + copy.length > st.mtu) tooLarge.push(st.name);
        else {
          this.append(st, copy);
          interfaces.push(st.name);
        }
      }
      return { ok: true, interfaces, tooLarge };
    });
  }

  /**
   * Finishes and sends the interface's open packet. A packet without messages is sent only with
   * forceEmpty (then one is begun if none is open). Returns whether a packet was sent.
   */
  flush(name: string, forceEmpty = false): boolean {
    const st = this.iface(name);
    return this.guarded(() => this.finishPacket(st, forceEmpty));
  }

  /** Flushes every interface; returns the names of those that sent a packet. */
  flushAll(forceEmpty = false): string[] {
    return this.guarded(() => [...this.interfaces.values()].filter((st) => this.finishPacket(st, forceEmpty)).map((st) => st.name));
  }

  // --- internals ----------------------------------------------------------------------------

  private createFor(type: number, reg: MessageRegistration, targets: InterfaceState[], iface: string | null): number {
    let maxSize = this.maxMessageSize;
    let limitedBy = 'maxMessageSize';
    for (const st of targets) {
      const open = st.open ?? this.beginPacket(st);
      const room = st.mtu - open.headSize;
      if (room < maxSize) {
        maxSize = room;
        limitedBy = `interface ${st.name}`;
      }
    }
    return buildMessage({
      type,
      interface: iface,
      defaultAddressLength: reg.addressLength,
      creator: reg.creator,
      providers: reg.providers.map((r) => r.item),
      isRegisteredAddressTlv: (t, e) => reg.addressTlvTypes.has((t << 8) | e) || this.globalAddressTlvTypes.has((t << 8) | e),
      maxSize,
      limitedBy,
      emit: (bytes) => {
        for (const st of targets) this.append(st, bytes);
      },
    });
  }

  private append(st: InterfaceState, bytes: Uint8Array): void {
    let open = st.open ?? this.beginPacket(st);
    if (open.headSize + open.messageBytes + bytes.length > st.mtu && open.messages.length > 0) {
      this.finishPacket(st, false);
      open = this.beginPacket(st);
    }
    if (open.headSize + open.messageBytes + bytes.length > st.mtu) {
      throw new Rfc5444WriterError(
        `MTU too small: a message of ${bytes.length} bytes after a packet head of ${open.headSize} ` +
          `exceeds interface ${st.name}'s MTU of ${st.mtu}`,
      );
    }
    open.messages.push(bytes);
    open.messageBytes += bytes.length;
  }

  private beginPacket(st: InterfaceState): OpenPacket {
    const open: OpenPacket = {
      hasSeqno: false,
      seqno: null,
      tlvs: new TlvSlots(`packet TLVs of interface ${st.name}`),
      headSize: 0,
      messages: [],
      messageBytes: 0,
    };
    let phase: 'header' | 'tlvs' = 'header';
    const inPhase = (p: typeof phase, call: string): void => {
      if (phase !== p) throw new Rfc5444WriterError(`${call} is only allowed in ${p === 'header' ? 'addPacketHeader' : 'addPacketTLVs'}`);
    };
    this.packetCreator?.addPacketHeader({
      interface: st.name,
      includeSeqno: () => {
        inPhase('header', 'includeSeqno');
        open.hasSeqno = true;
      },
      setSeqno: (n) => {
        inPhase('header', 'setSeqno');
        open.hasSeqno = true;
        open.seqno = checkSeqno(n);
      },
    });
    phase = 'tlvs';
    const ctx: PacketTlvContext = {
      interface: st.name,
      addTlv: (t, e, v) => open.tlvs.add(t, e, v),
      reserveTlv: (t, e, len) => open.tlvs.reserve(t, e, len),
    };
    for (const p of this.packetProviders) p.item.addPacketTLVs?.(ctx);
    open.headSize = encodePacketHead(open.hasSeqno ? 0 : null, open.tlvs.placeholders()).length;
    if (open.headSize > st.mtu) {
      throw new Rfc5444WriterError(
        `MTU too small: packet header and TLVs need ${open.headSize} bytes, interface ${st.name} allows ${st.mtu}`,
      );
    }
    st.open = open;
    return open;
  }

  private finishPacket(st: InterfaceState, forceEmpty: boolean): boolean {
    if (st.open && st.open.messages.length === 0 && !forceEmpty) {
      st.open = null; // begun for a message that was cancelled or did not fit: nothing to send
      return false;
    }
    if (!st.open && !forceEmpty) return false;
    const open = st.open ?? this.beginPacket(st);
    const fill = open.tlvs.beginFill();
    const messageCount = open.messages.length;
    const tlvCtx: PacketTlvFinishContext = {
      interface: st.name,
      messageCount,
      setReservedTlv: (t, e, v) => fill.set(t, e, v),
    };
    for (let i = this.packetProviders.length - 1; i >= 0; i--) this.packetProviders[i]!.item.finishPacketTLVs?.(tlvCtx);
    this.packetCreator?.finishPacketHeader?.({
      interface: st.name,
      messageCount,
      setSeqno: (n) => {
        if (!open.hasSeqno) throw new Rfc5444WriterError('setSeqno: the packet seqno was not included in addPacketHeader');
        open.seqno = checkSeqno(n);
      },
    });
    if (open.hasSeqno && open.seqno === null) {
      throw new Rfc5444WriterError(`packet for interface ${st.name}: seqno included but never set`);
    }
    const head = encodePacketHead(open.hasSeqno ? open.seqno : null, fill.result());
    const bytes = new Uint8Array(head.length + open.messageBytes);
    bytes.set(head, 0);
    let at = head.length;
    for (const m of open.messages) {
      bytes.set(m, at);
      at += m.length;
    }
    st.open = null;
    this.sendPacket(st.name, bytes);
    return true;
  }

  private iface(name: string): InterfaceState {
    const st = this.interfaces.get(name);
    if (!st) throw new Rfc5444WriterError(`interface ${name} is not registered`);
    return st;
  }

  private messageSlot(type: number): MessageRegistration {
    const reg: MessageRegistration = {
      creator: placeholderCreator,
      perInterface: false,
      addressLength: 4,
      providers: [],
      addressTlvTypes: new Set(),
    };
    this.messages.set(type, reg);
    return reg;
  }

  /** Runs a public operation; a callback may not call back into the writer. */
  private guarded<T>(f: () => T): T {
    if (this.busy) throw new Rfc5444WriterError('the writer may not be called from its own callbacks');
    this.busy = true;
    try {
      return f();
    } finally {
      this.busy = false;
    }
  }
}

/** Stands in for the creator of a type that has providers or TLV types but no creator yet. */
const placeholderCreator: MessageCreator = { addMessageHeader: () => false };

function insertRanked<T>(list: Ranked<T>[], r: Ranked<T>): void {
  list.push(r);
  list.sort((a, b) => a.priority - b.priority || a.seq - b.seq);
}

function checkU8(n: number, what: string): number {
  if (!isU8(n)) throw new RangeError(`${what} ${n} is not 0..255`);
  return n;
}

function checkSeqno(n: number): number {
  if (!Number.isInteger(n) || n < 0 || n > 0xffff) throw new RangeError(`packet seqno ${n} is not 0..65535`);
  return n;
}

function checkMtu(mtu: number): number {
  if (!Number.isInteger(mtu) || mtu < 1 || mtu > 0xffff) throw new RangeError(`MTU ${mtu} is not 1..65535`);
  return mtu;
}

/** Where the hop limit and hop count bytes of an encoded message are (-1: absent), or why not. */
function messageHopFields(m: Uint8Array): { hopLimitAt: number; hopCountAt: number } | string {
  if (m.length < 4) return `message of ${m.length} bytes is shorter than a message header`;
  const flags = m[1]!;
  const size = (m[2]! << 8) | m[3]!;
  if (size !== m.length) return `message size field ${size} but ${m.length} bytes`;
  let at = 4;
  if (flags & MSG_HAS_ORIG) at += (flags & 0x0f) + 1; // low nibble: address length - 1
  const hopLimitAt = flags & MSG_HAS_HOP_LIMIT ? at++ : -1;
  const hopCountAt = flags & MSG_HAS_HOP_COUNT ? at++ : -1;
  if (flags & MSG_HAS_SEQNUM) at += 2;
  if (at + 2 > m.length) return `message header of ${at} bytes and TLV block length exceed ${m.length} bytes`;
  return { hopLimitAt, hopCountAt };
}
