/**
 * The RFC 5444 reader with consumers as the mesh registers them (HELLO type 0 and TC type 1, TLV
 * constraints on lengths and presence) plus a packet consumer and a default consumer whose
 * results (every ConsumerResult, a throw, a bogus value) are drawn per input. Invariants: never
 * throws; ok exactly when the decoder accepts; callbacks see consistent contexts (constraints
 * held in block/address, addresses in range); a forwarded message is the message's own bytes
 * with hop limit > 1; consumer errors are exactly the throws and bogus results we planted.
 */
import { Rfc5444Reader, type ConsumerResult, type MessageConsumer, type TlvEntry, type TlvLookup } from '../../../../src/rfc5444/reader.js';
import { decodePacket } from '../../../../src/rfc5444/wire.js';
import type { Packet } from '../../../../src/rfc5444/model.js';
import { invariant, type FuzzTarget, type Prng } from '../../harness.js';
import { rfc5444Equal } from './codecs.js';

const RESULTS: ConsumerResult[] = ['okay', 'okay', 'okay', 'drop-tlv', 'drop-address', 'drop-message-but-forward', 'drop-message', 'drop-packet'];

interface State {
  reader: Rfc5444Reader;
  rng: Prng | undefined;
  planted: number;
  packets: number;
  malformed: number;
  forwarded: Uint8Array[];
  current: { bytes: Uint8Array; packet: Packet | undefined } | undefined;
}

function pick(s: State): ConsumerResult {
  const r = s.rng!.int(40);
  if (r === 0) {
    s.planted++;
    throw new Error('planted consumer failure');
  }
  if (r === 1) {
    s.planted++;
    return 'bogus' as ConsumerResult;
  }
  return r < 30 ? 'okay' : RESULTS[r % RESULTS.length]!;
}

function checkEntries(ctx: TlvLookup, entries: readonly TlvEntry[], failed: boolean): void {
  for (const e of entries) {
    const found = ctx.tlvsFor(e);
    for (const t of found) invariant(t.type === e.type && (e.extType === undefined || t.extType === e.extType), 'tlvsFor gave a TLV of another type');
    invariant(found.every((t) => ctx.allTlvs.includes(t)), 'a matched TLV is not visible');
    if (failed) continue;
    if (e.mandatory) invariant(found.length > 0, `mandatory TLV ${e.type} missing in a callback that passed constraints`);
    if (!e.duplicatesAllowed) invariant(found.length <= 1, `TLV ${e.type} twice in a callback that passed constraints`);
    for (const t of found) {
      const len = t.value?.length ?? 0;
      invariant((e.minLength === undefined || len >= e.minLength) && (e.maxLength === undefined || len <= e.maxLength), `TLV ${e.type} length ${len} outside its constraint`);
    }
  }
  if (failed) invariant(ctx.constraintFailures.length > 0, 'failedConstraints called without a failure');
  else invariant(ctx.constraintFailures.length === 0, 'a passing callback reports failures');
}

function consumer(s: State, messageTlvs: TlvEntry[], addressTlvs: TlvEntry[]): MessageConsumer {
  return {
    messageTlvs,
    addressTlvs,
    block: (ctx) => (checkEntries(ctx, messageTlvs, false), pick(s)),
    failedConstraints: (ctx) => (checkEntries(ctx, messageTlvs, true), pick(s)),
    address: (ctx) => {
      checkEntries(ctx, addressTlvs, false);
      const a = ctx.message.addresses[ctx.index];
      invariant(a !== undefined && a.address === ctx.address && a.prefixLength === ctx.prefixLength, 'address context does not match the message');
      return pick(s);
    },
    addressFailedConstraints: (ctx) => (checkEntries(ctx, addressTlvs, true), pick(s)),
    end: () => pick(s),
  };
}

function setup(): State {
  const s: State = { reader: undefined as unknown as Rfc5444Reader, rng: undefined, planted: 0, packets: 0, malformed: 0, forwarded: [], current: undefined };
  s.reader = new Rfc5444Reader({
    onForward: (bytes, message) => {
      invariant(message.hopLimit !== null && message.hopLimit > 1, 'forwarded a message with hop limit ≤ 1');
      const alone = decodePacket(Uint8Array.of(0, ...bytes));
      invariant(alone.ok && alone.packet.messages.length === 1, 'forwarded bytes are not one message');
      invariant(rfc5444Equal({ ...alone.packet, messages: [message] }, alone.packet), 'forwarded bytes are not the message handled');
      if (s.rng!.int(50) === 0) {
        s.planted++;
        throw new Error('planted forward failure');
      }
    },
  });
  // As the control plane: HELLO (0) and TC (1) with their TLVs.
  s.reader.addMessageConsumer(0, consumer(s, [{ type: 0, maxLength: 1 }, { type: 1, mandatory: true, minLength: 1, maxLength: 1 }, { type: 228, minLength: 12, maxLength: 12 }, { type: 5, extType: 1, duplicatesAllowed: true }], [{ type: 3, minLength: 1, maxLength: 1 }, { type: 225 }]));
  s.reader.addMessageConsumer(1, consumer(s, [{ type: 1, mandatory: true, minLength: 1, maxLength: 1 }, { type: 224, minLength: 32, maxLength: 32 }], [{ type: 226, minLength: 4, maxLength: 4 }, { type: 227, minLength: 2, maxLength: 2 }]), 5);
  s.reader.addMessageConsumer('default', consumer(s, [{ type: 9 }], [{ type: 2, duplicatesAllowed: true }]), 1);
  s.reader.addPacketConsumer({
    tlvs: [{ type: 9, minLength: 1 }],
    startPacket: () => pick(s),
    packetTlvs: (ctx) => (checkEntries(ctx, [{ type: 9, minLength: 1 }], false), pick(s)),
    failedConstraints: (ctx) => (checkEntries(ctx, [{ type: 9, minLength: 1 }], true), pick(s)),
    endPacket: () => undefined,
  });
  return s;
}

export function rfc5444ReaderTarget(corpus: () => Uint8Array[]): FuzzTarget<State> {
  return {
    name: 'rfc5444-reader',
    maxLength: 2048,
    corpus,
    setup,
    resetEvery: 5000,
    one(input, s, rng) {
      s.rng = rng;
      const decoded = decodePacket(input).ok;
      const r = s.reader.handlePacket(input, 'if0');
      s.packets++;
      if (!r.ok) s.malformed++;
      invariant(r.ok === decoded, `reader says ${r.ok} where the decoder says ${decoded}`);
      const c = s.reader.counters;
      invariant(c.packets === s.packets && c.malformed === s.malformed, 'packet counters disagree');
      invariant(c.consumerErrors === s.planted, `${c.consumerErrors} consumer errors, ${s.planted} planted`);
      invariant(c.messagesDropped <= c.messages && c.forwarded <= c.messages && c.packetsDropped <= c.packets, 'counters out of proportion');
    },
  };
}
