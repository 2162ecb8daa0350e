/**
 * Building one message for the RFC 5444 writer: the contexts handed to the message creator and the
 * content providers, the merging of addresses, and fragmentation. The packet side (interfaces,
 * open packets, flushing) is writer.ts; this file knows nothing of interfaces except their names
 * and the size limit they impose.
 *
 * The callback order follows the reference library (OONF rfc5444 writer): addMessageHeader, every
 * provider's addMessageTLVs in priority order, every provider's addAddresses in priority order;
 * then, per fragment, every provider's finishMessageTLVs in reverse priority order and the
 * creator's finishMessageHeader last. Each fragment is handed to `emit` as soon as its finish
 * callbacks have run, so the packet side may flush and begin packets between fragments.
 */
import type { Address, Message, Tlv } from './model.js';
import { encodeMessage } from './wire.js';

/** A writer misused (unknown type, unregistered TLV type, …) or a message that cannot fit. */
export class Rfc5444WriterError extends Error {
  override name = 'Rfc5444WriterError';
}

export type HeaderField = 'originator' | 'hopLimit' | 'hopCount' | 'seqno';

/** An address added by a provider; pass it back to `addAddressTlv`. */
export interface AddressHandle {
  readonly address: Uint8Array;
  readonly prefixLength: number;
}

/** The fragment that the finish callbacks are finishing. */
export interface FragmentInfo {
  /** 0-based. */
  readonly index: number;
  readonly count: number;
  /** true when the message was not fragmented (count is 1). */
  readonly complete: boolean;
  /** The addresses in this fragment, in message order. */
  readonly addresses: readonly AddressHandle[];
}

interface MessageHeaderSetters {
  readonly type: number;
  /** The interface this message is generated for (per-interface messages), else null. */
  readonly interface: string | null;
  readonly addressLength: number;
  setOriginator(address: Uint8Array): void;
  setHopLimit(hopLimit: number): void;
  setHopCount(hopCount: number): void;
  setSeqno(seqno: number): void;
}

/** Given to `addMessageHeader`: decides which header fields exist, and the address length. */
export interface MessageHeaderContext extends MessageHeaderSetters {
  /** 1..16 bytes; the default comes from the message registration (4 if none). */
  setAddressLength(length: number): void;
  /** Declares fields whose values `finishMessageHeader` sets. Setting a value also declares it. */
  include(...fields: HeaderField[]): void;
}

/** Given to `finishMessageHeader`: may set the values of declared fields, once per fragment. */
export interface MessageHeaderFinishContext extends MessageHeaderSetters {
  readonly fragment: FragmentInfo;
}

export interface MessageCreator {
  /** Return false to cancel the message (nothing is generated, no further callbacks). */
  addMessageHeader(ctx: MessageHeaderContext): void | false;
  finishMessageHeader?(ctx: MessageHeaderFinishContext): void;
}

interface ProviderContextBase {
  readonly type: number;
  readonly interface: string | null;
  readonly addressLength: number;
}

export interface MessageTlvContext extends ProviderContextBase {
  addTlv(type: number, extType: number, value: Uint8Array | null): void;
  /** Reserves room for a TLV that `finishMessageTLVs` sets; left unset, it is omitted. */
  reserveTlv(type: number, extType: number, length: number): void;
}

export interface AddressContext extends ProviderContextBase {
  /** Adds an address (prefix length default 8 × address length); the same address merges. */
  addAddress(address: Uint8Array, prefixLength?: number): AddressHandle;
  /** The (type, extType) must be registered for this message type beforehand. */
  addAddressTlv(
    address: AddressHandle,
    type: number,
    extType: number,
    value: Uint8Array | null,
    options?: { allowDuplicate?: boolean },
  ): void;
}

export interface MessageTlvFinishContext extends ProviderContextBase {
  readonly fragment: FragmentInfo;
  setReservedTlv(type: number, extType: number, value: Uint8Array | null): void;
}

export interface MessageContentProvider {
  addMessageTLVs?(ctx: MessageTlvContext): void;
  addAddresses?(ctx: AddressContext): void;
  finishMessageTLVs?(ctx: MessageTlvFinishContext): void;
}

// ---------------------------------------------------------------------------------------------
// TLVs added now or reserved for later (shared with the packet side)

interface TlvSlot {
  type: number;
  extType: number;
  /** The value of an added TLV; for a reservation, null until set. */
  value: Uint8Array | null;
  /** The reserved value length, or null for a TLV added outright. */
  reserved: number | null;
}

/** The TLVs of a block in the order they were added, reservations keeping their place. */
export class TlvSlots {
  private readonly slots: TlvSlot[] = [];

  constructor(private readonly what: string) {}

  add(type: number, extType: number, value: Uint8Array | null): void {
    checkTlvType(type, extType, this.what);
    checkValue(value, this.what);
    this.slots.push({ type, extType, value: value === null ? null : value.slice(), reserved: null });
  }

  reserve(type: number, extType: number, length: number): void {
    checkTlvType(type, extType, this.what);
    if (!Number.isInteger(length) || length < 0 || length > 0xffff) {
      throw new RangeError(`${this.what}: reserved TLV length ${length} is not 0..65535`);
    }
    this.slots.push({ type, extType, value: null, reserved: length });
  }

  /** The TLVs as sized: reservations as zero-filled values of their reserved length. */
  placeholders(): Tlv[] {
    return this.slots.map((s) => ({
      type: s.type,
      extType: s.extType,
      value: s.reserved !== null ? new Uint8Array(s.reserved) : s.value,
    }));
  }

  /** A fresh fill of the reservations (one per fragment or packet). */
  beginFill(): TlvFill {
    return new TlvFill(this.slots, this.what);
  }
}

export class TlvFill {
  private readonly values = new Map<number, Uint8Array | null>();

  constructor(
    private readonly slots: readonly TlvSlot[],
    private readonly what: string,
  ) {}

  set(type: number, extType: number, value: Uint8Array | null): void {
    checkValue(value, this.what);
    const len = value === null ? 0 : value.length;
    const i = this.slots.findIndex(
      (s, idx) => s.reserved !== null && s.type === type && s.extType === extType && !this.values.has(idx),
    );
    if (i < 0) {
      throw new Rfc5444WriterError(`${this.what}: no unset reservation for TLV type ${type} ext ${extType}`);
    }
    const reserved = this.slots[i]!.reserved!;
    if (len > reserved) {
      throw new Rfc5444WriterError(
        `${this.what}: TLV type ${type} ext ${extType} value of ${len} bytes exceeds the ${reserved} reserved`,
      );
    }
    this.values.set(i, value === null ? null : value.slice());
  }

  /** The final TLVs: reservations that were never set are omitted. */
  result(): Tlv[] {
    const out: Tlv[] = [];
    this.slots.forEach((s, i) => {
      if (s.reserved === null) out.push({ type: s.type, extType: s.extType, value: s.value });
      else if (this.values.has(i)) out.push({ type: s.type, extType: s.extType, value: this.values.get(i)! });
    });
    return out;
  }
}

function checkTlvType(type: number, extType: number, what: string): void {
  if (!isU8(type) || !isU8(extType)) {
    throw new RangeError(`${what}: TLV type ${type} ext ${extType} is not 0..255`);
  }
}

function checkValue(value: Uint8Array | null, what: string): void {
  if (value !== null && value.length > 0xffff) {
    throw new RangeError(`${what}: TLV value of ${value.length} bytes exceeds 65535`);
  }
}

export function isU8(n: number): boolean {
  return Number.isInteger(n) && n >= 0 && n <= 0xff;
}

function isU16(n: number): boolean {
  return Number.isInteger(n) && n >= 0 && n <= 0xffff;
}

/** "10.0.0.1", "fe80:0000:…" for 16 bytes, else hex; with "/len" when not a full-length prefix. */
export function formatAddress(address: Uint8Array, prefixLength: number): string {
  const hex = [...address].map((b) => b.toString(16).padStart(2, '0'));
  let s: string;
  if (address.length === 4) s = [...address].join('.');
  else if (address.length === 16) s = hex.reduce((acc, h, i) => acc + (i > 0 && i % 2 === 0 ? ':' : '') + h, '');
  else s = hex.join('');
  return prefixLength === address.length * 8 ? s : `${s}/${prefixLength}`;
}

// ---------------------------------------------------------------------------------------------
// Building a message

interface HeaderValues {
  originator: Uint8Array | null;
  hopLimit: number | null;
  hopCount: number | null;
  seqno: number | null;
}

interface WriterAddress extends AddressHandle {
  readonly tlvs: Tlv[];
}

export interface MessageBuildSpec {
  type: number;
  interface: string | null;
  defaultAddressLength: number;
  creator: MessageCreator;
  /** In priority order (ascending). */
  providers: readonly MessageContentProvider[];
  isRegisteredAddressTlv(type: number, extType: number): boolean;
  /** The largest message allowed, and what imposes it (for the error message). */
  maxSize: number;
  limitedBy: string;
  /** Receives each fragment's bytes right after its finish callbacks. */
  emit(bytes: Uint8Array): void;
}

type Phase = 'add-header' | 'add-tlvs' | 'add-addresses' | 'finish-tlvs' | 'finish-header' | 'done';

/**
 * Runs the creator's and the providers' callbacks for one message (once per interface for
 * per-interface messages), splits the addresses into fragments and emits each fragment.
 * Returns the number of fragments emitted (0 when the creator cancelled).
 */
export function buildMessage(spec: MessageBuildSpec): number {
  return new MessageBuild(spec).run();
}

class MessageBuild {
  private phase: Phase = 'add-header';
  private addressLength: number;
  private readonly included = new Set<HeaderField>();
  private readonly header: HeaderValues = { originator: null, hopLimit: null, hopCount: null, seqno: null };
  private readonly tlvs: TlvSlots;
  private readonly addresses: WriterAddress[] = [];
  private readonly addressIndex = new Map<string, WriterAddress>();
  private readonly what: string;

  constructor(private readonly spec: MessageBuildSpec) {
    this.addressLength = spec.defaultAddressLength;
    this.what = `message type ${spec.type}`;
    this.tlvs = new TlvSlots(this.what);
  }

  run(): number {
    const { spec } = this;
    if (spec.creator.addMessageHeader(this.headerContext()) === false) return 0;
    if (this.header.originator !== null && this.header.originator.length !== this.addressLength) {
      throw new Rfc5444WriterError(
        `${this.what}: originator of ${this.header.originator.length} bytes, address length is ${this.addressLength}`,
      );
    }
    this.phase = 'add-tlvs';
    const tlvCtx = this.tlvContext();
    for (const p of spec.providers) p.addMessageTLVs?.(tlvCtx);
    this.phase = 'add-addresses';
    const addrCtx = this.addressContext();
    for (const p of spec.providers) p.addAddresses?.(addrCtx);

    const fragments = this.split();
    fragments.forEach((addrs, index) => {
      const fragment: FragmentInfo = { index, count: fragments.length, complete: fragments.length === 1, addresses: addrs };
      this.phase = 'finish-tlvs';
      const fill = this.tlvs.beginFill();
      const finishCtx = this.finishTlvContext(fragment, fill);
      for (let i = spec.providers.length - 1; i >= 0; i--) spec.providers[i]!.finishMessageTLVs?.(finishCtx);
      this.phase = 'finish-header';
      spec.creator.finishMessageHeader?.(this.finishHeaderContext(fragment));
      this.phase = 'done';
      const bytes = encodeMessage(this.message(fill.result(), addrs, false));
      if (bytes.length > spec.maxSize) {
        throw new Rfc5444WriterError(`${this.what}: fragment of ${bytes.length} bytes exceeds its measured ${spec.maxSize}`);
      }
      spec.emit(bytes);
    });
    return fragments.length;
  }

  /** The message as the model has it; `placeholder` fills declared-but-unset header fields. */
  private message(tlvs: Tlv[], addrs: readonly WriterAddress[], placeholder: boolean): Message {
    const field = <T>(f: HeaderField, v: T | null, zero: T): T | null => {
      if (!this.included.has(f)) return null;
      if (v !== null) return v;
      if (placeholder) return zero;
      throw new Rfc5444WriterError(`${this.what}: header field ${f} declared but never set`);
    };
    const h = this.header;
    return {
      type: this.spec.type,
      addrLength: this.addressLength,
      originator: field('originator', h.originator, new Uint8Array(this.addressLength)),
      hopLimit: field('hopLimit', h.hopLimit, 0),
      hopCount: field('hopCount', h.hopCount, 0),
      seqno: field('seqno', h.seqno, 0),
      tlvs,
      addresses: addrs.map((a): Address => ({ address: a.address, prefixLength: a.prefixLength, tlvs: a.tlvs })),
    };
  }

  /**
   * Fragments: each holds as many addresses (in order, each with all its TLVs) as fit in maxSize
   * with all message TLVs, measured with encodeMessage. The count is searched, not estimated;
   * see largestFitting. The previous fragment's count bounds the next search, so a long message
   * is not re-encoded whole for every fragment.
   */
  private split(): WriterAddress[][] {
    const { maxSize, limitedBy } = this.spec;
    const base = this.tlvs.placeholders();
    const size = (addrs: readonly WriterAddress[]): number => encodeMessage(this.message(base, addrs, true)).length;
    const empty = size([]);
    if (empty > maxSize) {
      throw new Rfc5444WriterError(
        `MTU too small: ${this.what} header and message TLVs need ${empty} bytes, ${limitedBy} allows ${maxSize}`,
      );
    }
    const all = this.addresses;
    if (all.length === 0) return [[]];
    const fragments: WriterAddress[][] = [];
    let start = 0;
    let previous = 0;
    while (start < all.length) {
      const rest = all.slice(start);
      const sizeOf = (k: number): number => size(rest.slice(0, k));
      let lo = { k: 0, size: empty };
      let hi: { k: number; size: number } | null = null;
      if (previous > 0 && 2 * previous < rest.length) {
        const probe = { k: 2 * previous, size: sizeOf(2 * previous) };
        if (probe.size > maxSize) hi = probe;
        else lo = probe;
      }
      if (hi === null) {
        hi = { k: rest.length, size: sizeOf(rest.length) };
        if (hi.size <= maxSize) {
          fragments.push(rest);
          break;
        }
      }
      const fits = largestFitting(sizeOf, maxSize, lo, hi);
      if (fits === 0) {
        const a = rest[0]!;
        throw new Rfc5444WriterError(
          `MTU too small: address ${formatAddress(a.address, a.prefixLength)} with its TLVs needs ` +
            `${size([a])} bytes, ${limitedBy} allows ${maxSize}`,
        );
      }
      fragments.push(rest.slice(0, fits));
      start += fits;
      previous = fits;
    }
    return fragments;
  }

  private expect(phases: Phase[], call: string): void {
    if (!phases.includes(this.phase)) {
      throw new Rfc5444WriterError(`${this.what}: ${call} is not allowed during ${this.phase}`);
    }
  }

  private setters(allowed: Phase[]): Omit<MessageHeaderSetters, 'type' | 'interface' | 'addressLength'> {
    const set = <K extends HeaderField>(f: K, v: HeaderValues[K], call: string): void => {
      this.expect(allowed, call);
      if (this.phase !== 'add-header' && !this.included.has(f)) {
        throw new Rfc5444WriterError(`${this.what}: ${call}: field ${f} was not declared in addMessageHeader`);
      }
      this.included.add(f);
      this.header[f] = v;
    };
    return {
      setOriginator: (a) => {
        if (this.phase !== 'add-header' && a.length !== this.addressLength) {
          throw new Rfc5444WriterError(`${this.what}: originator of ${a.length} bytes, address length is ${this.addressLength}`);
        }
        set('originator', a.slice(), 'setOriginator');
      },
      setHopLimit: (n) => set('hopLimit', checked(n, isU8, 'hop limit'), 'setHopLimit'),
      setHopCount: (n) => set('hopCount', checked(n, isU8, 'hop count'), 'setHopCount'),
      setSeqno: (n) => set('seqno', checked(n, isU16, 'sequence number'), 'setSeqno'),
    };
  }

  private base(): ProviderContextBase {
    const self = this;
    return {
      type: this.spec.type,
      interface: this.spec.interface,
      get addressLength() {
        return self.addressLength;
      },
    };
  }

  private headerContext(): MessageHeaderContext {
    return Object.assign(this.base(), this.setters(['add-header']), {
      setAddressLength: (n: number) => {
        this.expect(['add-header'], 'setAddressLength');
        if (!Number.isInteger(n) || n < 1 || n > 16) throw new RangeError(`${this.what}: address length ${n} is not 1..16`);
        this.addressLength = n;
      },
      include: (...fields: HeaderField[]) => {
        this.expect(['add-header'], 'include');
        for (const f of fields) this.included.add(f);
      },
    });
  }

  private finishHeaderContext(fragment: FragmentInfo): MessageHeaderFinishContext {
    return Object.assign(this.base(), this.setters(['finish-header']), { fragment });
  }

  private tlvContext(): MessageTlvContext {
    return Object.assign(this.base(), {
      addTlv: (type: number, extType: number, value: Uint8Array | null) => {
        this.expect(['add-tlvs'], 'addTlv');
        this.tlvs.add(type, extType, value);
      },
      reserveTlv: (type: number, extType: number, length: number) => {
        this.expect(['add-tlvs'], 'reserveTlv');
        this.tlvs.reserve(type, extType, length);
      },
    });
  }

  private finishTlvContext(fragment: FragmentInfo, fill: TlvFill): MessageTlvFinishContext {
    return Object.assign(this.base(), {
      fragment,
      setReservedTlv: (type: number, extType: number, value: Uint8Array | null) => {
        this.expect(['finish-tlvs'], 'setReservedTlv');
        fill.set(type, extType, value);
      },
    });
  }

  private addressContext(): AddressContext {
    const handles = new WeakSet<AddressHandle>();
    return Object.assign(this.base(), {
      addAddress: (address: Uint8Array, prefixLength = this.addressLength * 8): AddressHandle => {
        this.expect(['add-addresses'], 'addAddress');
        if (address.length !== this.addressLength) {
          throw new Rfc5444WriterError(
            `${this.what}: address of ${address.length} bytes, address length is ${this.addressLength}`,
          );
        }
        if (!Number.isInteger(prefixLength) || prefixLength < 0 || prefixLength > this.addressLength * 8) {
          throw new RangeError(`${this.what}: prefix length ${prefixLength} is not 0..${this.addressLength * 8}`);
        }
        const key = `${[...address].join(',')}/${prefixLength}`;
        let a = this.addressIndex.get(key);
        if (a === undefined) {
          a = { address: address.slice(), prefixLength, tlvs: [] };
          this.addressIndex.set(key, a);
          this.addresses.push(a);
          handles.add(a);
        }
        return a;
      },
      addAddressTlv: (
        handle: AddressHandle,
        type: number,
        extType: number,
        value: Uint8Array | null,
        options?: { allowDuplicate?: boolean },
      ) => {
        this.expect(['add-addresses'], 'addAddressTlv');
        if (!handles.has(handle)) throw new Rfc5444WriterError(`${this.what}: addAddressTlv with a foreign address handle`);
        checkTlvType(type, extType, this.what);
        checkValue(value, this.what);
        if (!this.spec.isRegisteredAddressTlv(type, extType)) {
          throw new Rfc5444WriterError(
            `${this.what}: address TLV type ${type} ext ${extType} is not registered for this message type`,
          );
        }
        const a = handle as WriterAddress;
        if (!options?.allowDuplicate && a.tlvs.some((t) => t.type === type && t.extType === extType)) {
          throw new Rfc5444WriterError(
            `${this.what}: address ${formatAddress(a.address, a.prefixLength)} already has TLV type ${type} ext ${extType}`,
          );
        }
        a.tlvs.push({ type, extType, value: value === null ? null : value.slice() });
      },
    });
  }
}

/**
 * The largest count in [lo.k, hi.k) whose size fits `max`, given that lo fits and hi does not.
 * Sizes grow nearly linearly with the count, so each step interpolates between the bracket's
 * ends (regula falsi); a step that fails to halve the bracket is followed by a bisection, so the
 * search never takes more than twice the steps of plain bisection, and usually two or three.
 */
function largestFitting(
  sizeOf: (k: number) => number,
  max: number,
  lo: { k: number; size: number },
  hi: { k: number; size: number },
): number {
  let bisect = false;
  while (hi.k - lo.k > 1) {
    const width = hi.k - lo.k;
    const guess = bisect
      ? (lo.k + hi.k) >> 1
      : lo.k + Math.floor(((max - lo.size) * width) / Math.max(1, hi.size - lo.size));
    const k = Math.min(hi.k - 1, Math.max(lo.k + 1, guess));
    const probe = { k, size: sizeOf(k) };
    if (probe.size <= max) lo = probe;
    else hi = probe;
    bisect = !bisect && hi.k - lo.k > width / 2;
  }
  return lo.k;
}

function checked(n: number, ok: (n: number) => boolean, what: string): number {
  if (!ok(n)) throw new RangeError(`${what} ${n} is out of range`);
  return n;
}
