/**
 * The RFC 5444 reader: consumer order and callbacks (packet → message → address), TLV
 * constraints, the drop results of the reference library (OONF's rfc5444 reader) and their effect
 * on later consumers and on forwarding, malformed input, and consumers that throw. Property: no
 * input makes handlePacket throw.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import type { Message, Packet, Tlv } from '../src/rfc5444/model.js';
import { decodePacket, encodePacket } from '../src/rfc5444/wire.js';
import {
  Rfc5444Reader,
  type ConsumerResult,
  type MessageConsumer,
  type TlvEntry,
} from '../src/rfc5444/reader.js';

const ip = (n: number): Uint8Array => new Uint8Array([10, 0, 0, n]);
const tlv = (type: number, value: number[] | null, extType = 0): Tlv => ({
  type,
  extType,
  value: value === null ? null : new Uint8Array(value),
});

function message(over: Partial<Message> = {}): Message {
  return {
    type: 1,
    addrLength: 4,
    originator: ip(1),
    hopLimit: 8,
    hopCount: 0,
    seqno: 17,
    tlvs: [tlv(1, [0x6a]), tlv(5, [1, 2])],
    addresses: [
      { address: ip(10), prefixLength: 32, tlvs: [tlv(2, [0]), tlv(3, [1])] },
      { address: ip(11), prefixLength: 32, tlvs: [tlv(3, [2])] },
      { address: ip(12), prefixLength: 24, tlvs: [tlv(2, [1])] },
    ],
    ...over,
  };
}

function packet(messages: Message[], tlvs: Tlv[] = [tlv(9, [7])]): Uint8Array {
  const p: Packet = { version: 0, seqno: 300, tlvs, messages };
  return encodePacket(p);
}

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

/** A reader whose forward hook records what it forwards (by message seqno). */
function readerWithForwarding(): { reader: Rfc5444Reader; forwarded: Array<number | null> } {
  const forwarded: Array<number | null> = [];
  const reader = new Rfc5444Reader({ onForward: (_bytes, m) => void forwarded.push(m.seqno) });
  return { reader, forwarded };
}

describe('consumers and callbacks', () => {
  it('run in order: packet consumers, then per message its consumers with the defaults, addresses, ends', () => {
    const log: string[] = [];
    const reader = new Rfc5444Reader();
    const pkt = (name: string) => ({
      tlvs: [{ type: 9 }],
      startPacket: () => void log.push(`startPacket ${name}`),
      packetTlvs: (ctx: { tlv(e: TlvEntry): Tlv | undefined; seqno: number | null }) =>
        void log.push(`packetTlvs ${name} seqno ${ctx.seqno}`),
      endPacket: (_: unknown, dropped: boolean) => void log.push(`endPacket ${name} ${dropped}`),
    });
    reader.addPacketConsumer(pkt('P5'), 5);
    reader.addPacketConsumer(pkt('P1'), 1);
    const msg = (name: string): MessageConsumer => ({
      block: (ctx) => void log.push(`block ${name} type ${ctx.message.type}`),
      address: (ctx) => void log.push(`address ${name} ${ctx.index} ${hex(ctx.address)}/${ctx.prefixLength}`),
      end: (ctx, dropped) => void log.push(`end ${name} type ${ctx.message.type} ${dropped}`),
    });
    reader.addMessageConsumer(1, msg('T1-10'), 10);
    reader.addMessageConsumer('default', msg('D-5'), 5);
    reader.addMessageConsumer(1, msg('T1-1'), 1);
    reader.addMessageConsumer(2, msg('T2-0'), 0);
    const two = message({ addresses: message().addresses.slice(0, 2) });
    const r = reader.handlePacket(packet([two, message({ type: 3, addresses: [] })]), 'if0');
    expect(r).toEqual({ ok: true });
    const addrs = (name: string) => [`address ${name} 0 0a00000a/32`, `address ${name} 1 0a00000b/32`];
    expect(log).toEqual([
      'startPacket P1',
      'packetTlvs P1 seqno 300',
      'startPacket P5',
      'packetTlvs P5 seqno 300',
      'block T1-1 type 1',
      ...addrs('T1-1'),
      'end T1-1 type 1 false',
      'block D-5 type 1',
      ...addrs('D-5'),
      'end D-5 type 1 false',
      'block T1-10 type 1',
      ...addrs('T1-10'),
      'end T1-10 type 1 false',
      'block D-5 type 3',
      'end D-5 type 3 false',
      'endPacket P5 false',
      'endPacket P1 false',
    ]);
    expect(reader.counters).toMatchObject({ packets: 1, messages: 2, messagesDropped: 0, packetsDropped: 0 });
  });

  it('equal orders keep registration order; removed consumers are not called', () => {
    const log: string[] = [];
    const reader = new Rfc5444Reader();
    const c = (n: string): MessageConsumer => ({ block: () => void log.push(n) });
    const b = c('b');
    reader.addMessageConsumer(1, c('a'), 3);
    reader.addMessageConsumer('default', b, 3);
    reader.addMessageConsumer(1, c('c'), 3);
    reader.removeMessageConsumer(b);
    reader.handlePacket(packet([message()]), 'if0');
    expect(log).toEqual(['a', 'c']);
  });

  it('looks up matched TLVs by entry; an entry without extType matches any extension', () => {
    const reader = new Rfc5444Reader();
    const validity: TlvEntry = { type: 1 };
    const anyExt: TlvEntry = { type: 6, duplicatesAllowed: true };
    const ext2: TlvEntry = { type: 6, extType: 2 };
    const status: TlvEntry = { type: 3 };
    const got: unknown[] = [];
    reader.addMessageConsumer(1, {
      messageTlvs: [validity, anyExt, ext2],
      addressTlvs: [status],
      block: (ctx) => {
        got.push(hex(ctx.tlv(validity)!.value!), ctx.tlvsFor(anyExt).map((t) => t.extType), ctx.tlv(ext2)?.extType);
        got.push(ctx.allTlvs.length, ctx.message.originator && hex(ctx.message.originator), ctx.packet.seqno);
      },
      address: (ctx) => void got.push(`${ctx.index}:${ctx.tlv(status)?.value?.[0] ?? '-'}`),
    });
    reader.handlePacket(packet([message({ tlvs: [tlv(1, [0x6a]), tlv(6, null, 1), tlv(6, [4], 2)] })]), 'if0');
    expect(got).toEqual(['6a', [1, 2], 2, 3, '0a000001', 300, '0:1', '1:2', '2:-']);
  });
});

describe('constraints', () => {
  function run(entries: TlvEntry[], tlvs: Tlv[]): { called: string; failures: readonly string[] } {
    const reader = new Rfc5444Reader();
    let called = 'none';
    let failures: readonly string[] = [];
    reader.addMessageConsumer(1, {
      messageTlvs: entries,
      block: () => void (called = 'block'),
      failedConstraints: (ctx) => {
        called = 'failedConstraints';
        failures = ctx.constraintFailures;
      },
    });
    reader.handlePacket(packet([message({ tlvs })]), 'if0');
    return { called, failures };
  }

  it('mandatory, duplicates and value length', () => {
    expect(run([{ type: 1, mandatory: true }], [tlv(1, [1])]).called).toBe('block');
    expect(run([{ type: 1, mandatory: true }], [tlv(2, [1])])).toEqual({ called: 'failedConstraints', failures: ['TLV type 1 missing'] });
    expect(run([{ type: 1, mandatory: true, extType: 3 }], [tlv(1, [1])]).called).toBe('failedConstraints');
    expect(run([{ type: 1 }], [tlv(1, [1]), tlv(1, [2])])).toEqual({
      called: 'failedConstraints',
      failures: ['TLV type 1 2 times'],
    });
    expect(run([{ type: 1, duplicatesAllowed: true }], [tlv(1, [1]), tlv(1, [2])]).called).toBe('block');
    expect(run([{ type: 1, minLength: 2, maxLength: 2 }], [tlv(1, [1, 2])]).called).toBe('block');
    expect(run([{ type: 1, minLength: 2 }], [tlv(1, [1])]).called).toBe('failedConstraints');
    expect(run([{ type: 1, maxLength: 1 }], [tlv(1, [1, 2])]).failures).toEqual(['TLV type 1 value of 2 bytes outside 0..1']);
    expect(run([{ type: 1, minLength: 1 }], [tlv(1, null)]).called).toBe('failedConstraints');
    expect(run([{ type: 1, minLength: 1 }], []).called).toBe('block'); // absent and optional: no length to check
  });

  it('address and packet constraints; without failedConstraints nothing is called', () => {
    const reader = new Rfc5444Reader();
    const log: string[] = [];
    reader.addPacketConsumer({
      tlvs: [{ type: 99, mandatory: true }],
      packetTlvs: () => void log.push('packetTlvs'),
      failedConstraints: (ctx) => void log.push(`packet failed: ${ctx.constraintFailures.join()}`),
    });
    reader.addMessageConsumer(1, {
      addressTlvs: [{ type: 2, mandatory: true, maxLength: 1 }],
      address: (ctx) => void log.push(`address ${ctx.index}`),
      addressFailedConstraints: (ctx) => void log.push(`address ${ctx.index} failed`),
    });
    reader.addMessageConsumer(1, {
      messageTlvs: [{ type: 42, mandatory: true }],
      addressTlvs: [{ type: 3, mandatory: true }],
      block: () => void log.push('never'),
      address: (ctx) => void log.push(`second address ${ctx.index}`),
    });
    reader.handlePacket(packet([message()]), 'if0');
    expect(log).toEqual([
      'packet failed: TLV type 99 missing',
      'address 0',
      'address 1 failed',
      'address 2',
      'second address 0',
      'second address 1',
    ]);
  });
});

describe('drop results', () => {
  const seqnoEntry: TlvEntry = { type: 5 };
  const validity: TlvEntry = { type: 1 };

  function twoConsumers(first: MessageConsumer) {
    const { reader, forwarded } = readerWithForwarding();
    const later: string[] = [];
    reader.addMessageConsumer(1, first, 1);
    reader.addMessageConsumer('default', {
      messageTlvs: [validity, seqnoEntry],
      addressTlvs: [{ type: 2 }, { type: 3 }],
      block: (ctx) => void later.push(`block ${ctx.message.seqno} tlvs ${ctx.allTlvs.map((t) => t.type).join(',')}`),
      address: (ctx) => void later.push(`address ${ctx.message.seqno}.${ctx.index} tlvs ${ctx.allTlvs.map((t) => t.type).join(',')}`),
    }, 2);
    const handle = () => reader.handlePacket(packet([message({ seqno: 1 }), message({ seqno: 2 })]), 'if0');
    return { reader, forwarded, later, handle };
  }

  const untouched = (seqno: number) => [
    `block ${seqno} tlvs 1,5`,
    `address ${seqno}.0 tlvs 2,3`,
    `address ${seqno}.1 tlvs 3`,
    `address ${seqno}.2 tlvs 2`,
  ];

  it('okay: later consumers see everything, messages are forwarded', () => {
    const t = twoConsumers({ block: () => 'okay' });
    expect(t.handle()).toEqual({ ok: true });
    expect(t.later).toEqual([...untouched(1), ...untouched(2)]);
    expect(t.forwarded).toEqual([1, 2]);
  });

  it('drop-tlv: the marked TLVs (or all matched) are hidden from later consumers', () => {
    const marked = twoConsumers({
      messageTlvs: [validity, seqnoEntry],
      block: (ctx) => {
        ctx.dropTlv(seqnoEntry);
        return 'drop-tlv';
      },
    });
    marked.handle();
    expect(marked.later[0]).toBe('block 1 tlvs 1');
    const all = twoConsumers({ messageTlvs: [validity, seqnoEntry], block: () => 'drop-tlv' });
    all.handle();
    expect(all.later[0]).toBe('block 1 tlvs ');
    expect(all.forwarded).toEqual([1, 2]); // a TLV drop does not stop the message
    const addressTlv = twoConsumers({
      addressTlvs: [{ type: 3 }],
      address: (ctx) => (ctx.index === 0 ? 'drop-tlv' : 'okay'),
    });
    addressTlv.handle();
    expect(addressTlv.later.slice(0, 4)).toEqual(['block 1 tlvs 1,5', 'address 1.0 tlvs 2', 'address 1.1 tlvs 3', 'address 1.2 tlvs 2']);
  });

  it('drop-address: later consumers skip the address; the message is still forwarded', () => {
    const t = twoConsumers({ address: (ctx) => (ctx.index === 1 ? 'drop-address' : 'okay') });
    t.handle();
    expect(t.later).toEqual(['block 1 tlvs 1,5', 'address 1.0 tlvs 2,3', 'address 1.2 tlvs 2', 'block 2 tlvs 1,5', 'address 2.0 tlvs 2,3', 'address 2.2 tlvs 2']);
    expect(t.forwarded).toEqual([1, 2]);
  });

  it('drop-message: later consumers skip it, it is not forwarded; the next message goes on', () => {
    const ends: string[] = [];
    const t = twoConsumers({
      block: (ctx) => (ctx.message.seqno === 1 ? 'drop-message' : 'okay'),
      address: () => void ends.push('first consumer address'),
      end: (ctx, dropped) => void ends.push(`end ${ctx.message.seqno} ${dropped}`),
    });
    t.handle();
    expect(t.later).toEqual(untouched(2));
    expect(t.forwarded).toEqual([2]);
    expect(ends).toEqual(['end 1 true', 'first consumer address', 'first consumer address', 'first consumer address', 'end 2 false']);
    expect(t.reader.counters.messagesDropped).toBe(1);
  });

  it('drop-message from an address callback, and drop-address from a message callback, drop the message', () => {
    const fromAddress = twoConsumers({ address: (ctx) => (ctx.message.seqno === 1 && ctx.index === 1 ? 'drop-message' : 'okay') });
    fromAddress.handle();
    expect(fromAddress.later).toEqual(untouched(2));
    expect(fromAddress.forwarded).toEqual([2]);
    const fromBlock = twoConsumers({ block: (ctx) => (ctx.message.seqno === 2 ? 'drop-address' : 'okay') });
    fromBlock.handle();
    expect(fromBlock.later).toEqual(untouched(1));
    expect(fromBlock.forwarded).toEqual([1]);
  });

  it('drop-message-but-forward: later consumers skip it, it is forwarded', () => {
    const t = twoConsumers({ block: (ctx) => (ctx.message.seqno === 1 ? 'drop-message-but-forward' : 'okay') });
    t.handle();
    expect(t.later).toEqual(untouched(2));
    expect(t.forwarded).toEqual([1, 2]);
  });

  it('drop-packet: nothing more of the packet is processed or forwarded; packet consumers end as dropped', () => {
    const t = twoConsumers({ block: (ctx) => (ctx.message.seqno === 1 ? 'drop-packet' : 'okay') });
    const ends: boolean[] = [];
    t.reader.addPacketConsumer({ endPacket: (_ctx, dropped) => void ends.push(dropped) });
    expect(t.handle()).toEqual({ ok: true });
    expect(t.later).toEqual([]);
    expect(t.forwarded).toEqual([]);
    expect(ends).toEqual([true]);
    expect(t.reader.counters.packetsDropped).toBe(1);
  });

  it('a packet consumer can drop the packet; drop-tlv hides packet TLVs from later packet consumers', () => {
    const t = twoConsumers({});
    const seen: string[] = [];
    t.reader.addPacketConsumer({ startPacket: (ctx) => (ctx.seqno === 300 ? 'drop-packet' : 'okay') }, 5);
    t.reader.addPacketConsumer({ tlvs: [{ type: 9 }], packetTlvs: () => 'drop-tlv' }, 1);
    t.reader.addPacketConsumer({ packetTlvs: (ctx) => void seen.push(`tlvs ${ctx.allTlvs.length}`) }, 2);
    t.handle();
    expect(seen).toEqual(['tlvs 0']);
    expect(t.later).toEqual([]);
    expect(t.forwarded).toEqual([]);
  });

  it('an end callback may strengthen the result; preventForwarding and hop limits stop forwarding', () => {
    const t = twoConsumers({ end: (ctx) => (ctx.message.seqno === 2 ? 'drop-message' : 'okay') });
    t.handle();
    expect(t.later).toEqual(untouched(1));
    expect(t.forwarded).toEqual([1]);

    const { reader, forwarded } = readerWithForwarding();
    reader.addMessageConsumer('default', { block: (ctx) => void (ctx.message.seqno === 1 && ctx.preventForwarding()) });
    reader.handlePacket(
      packet([
        message({ seqno: 1 }),
        message({ seqno: 2, hopLimit: 1 }),
        message({ seqno: 3, hopLimit: null }),
        message({ seqno: 4, hopLimit: 2 }),
      ]),
      'if0',
    );
    expect(forwarded).toEqual([4]);
  });

  it('the forward hook gets the message bytes as received', () => {
    const got: Uint8Array[] = [];
    const reader = new Rfc5444Reader();
    reader.onForward = (bytes, m, iface) => {
      expect(iface).toBe('eth1');
      expect(m.seqno).toBe(got.length + 1);
      got.push(bytes.slice());
    };
    const msgs = [message({ seqno: 1 }), message({ seqno: 2, type: 7, addresses: [] })];
    reader.handlePacket(packet(msgs), 'eth1');
    expect(got).toHaveLength(2);
    got.forEach((bytes, i) => {
      const again = decodePacket(new Uint8Array([0, ...bytes]));
      expect(again.ok && again.packet.messages).toEqual([msgs[i]]);
    });
  });
});

describe('bad input and bad consumers', () => {
  it('malformed packets give the decoder\'s typed error with its offset', () => {
    const reader = new Rfc5444Reader();
    let called = false;
    reader.addPacketConsumer({ startPacket: () => void (called = true) });
    const good = packet([message()]);
    for (const bad of [new Uint8Array([0x10]), new Uint8Array([]), good.subarray(0, good.length - 3)]) {
      const r = reader.handlePacket(bad, 'if0');
      const d = decodePacket(bad);
      expect(d.ok).toBe(false);
      expect(r).toEqual({ ok: false, error: !d.ok && d.error });
      expect(!r.ok && typeof r.error.offset).toBe('number');
    }
    const truncated = reader.handlePacket(good.subarray(0, good.length - 3), 'if0');
    expect(!truncated.ok && truncated.error.offset).toBeGreaterThan(0);
    expect(called).toBe(false);
    expect(reader.counters).toMatchObject({ packets: 4, malformed: 4 });
  });

  it('a throwing consumer is contained: its message is dropped and counted, the rest goes on', () => {
    const { reader, forwarded } = readerWithForwarding();
    const later: Array<number | null> = [];
    reader.addMessageConsumer(1, { block: (ctx) => { if (ctx.message.seqno === 1) throw new Error('boom'); } }, 1);
    reader.addMessageConsumer(1, { address: (ctx) => { if (ctx.message.seqno === 2) throw new Error('bang'); } }, 2);
    reader.addMessageConsumer(1, { block: (ctx) => void later.push(ctx.message.seqno) }, 3);
    reader.addMessageConsumer(1, { block: () => 'nonsense' as ConsumerResult }, 4);
    const r = reader.handlePacket(packet([message({ seqno: 1 }), message({ seqno: 2 }), message({ seqno: 3 })]), 'if0');
    expect(r).toEqual({ ok: true });
    expect(later).toEqual([3]);
    expect(forwarded).toEqual([]); // 3 is dropped by the consumer returning nonsense
    expect(reader.counters).toMatchObject({ consumerErrors: 3, messagesDropped: 3 });
  });

  it('a throwing packet consumer drops the packet; a throwing forward hook is counted', () => {
    const reader = new Rfc5444Reader({ onForward: () => { throw new Error('hook'); } });
    reader.handlePacket(packet([message()]), 'if0');
    expect(reader.counters).toMatchObject({ consumerErrors: 1, forwarded: 0 });
    const seen: number[] = [];
    reader.addMessageConsumer('default', { block: () => void seen.push(1) });
    reader.addPacketConsumer({ startPacket: () => { throw new Error('pkt'); }, endPacket: () => { throw new Error('end'); } });
    expect(reader.handlePacket(packet([message()]), 'if0')).toEqual({ ok: true });
    expect(seen).toEqual([]);
    expect(reader.counters).toMatchObject({ consumerErrors: 3, packetsDropped: 1 });
  });

  it('property: random and mutated bytes never make handlePacket throw', () => {
    const results: ConsumerResult[] = ['okay', 'drop-tlv', 'drop-address', 'drop-message-but-forward', 'drop-message', 'drop-packet'];
    let calls = 0;
    const pick = (): ConsumerResult => results[calls++ % results.length]!;
    const reader = new Rfc5444Reader({ onForward: () => {} });
    const all: TlvEntry = { type: 1, mandatory: true };
    reader.addPacketConsumer({ tlvs: [{ type: 9 }], packetTlvs: pick, endPacket: () => {} });
    for (const t of [1, 'default'] as const) {
      reader.addMessageConsumer(t, {
        messageTlvs: [all, { type: 5, minLength: 2 }],
        addressTlvs: [{ type: 2 }, { type: 3, duplicatesAllowed: true }],
        block: (ctx) => {
          ctx.dropTlv(all);
          void ctx.allTlvs.map((x) => x.value?.length);
          return pick();
        },
        failedConstraints: pick,
        address: (ctx) => (ctx.address.length > 0 ? pick() : 'okay'),
        addressFailedConstraints: () => {
          if (calls++ % 7 === 0) throw new Error('x');
        },
        end: () => pick(),
      });
    }
    const valid = [
      packet([message(), message({ type: 3, seqno: null, originator: null })]),
      packet([message({ addrLength: 16, originator: null, addresses: [{ address: new Uint8Array(16).fill(0xfe), prefixLength: 64, tlvs: [tlv(3, [1])] }] })], []),
    ];
    const check = (bytes: Uint8Array): void => {
      const r = reader.handlePacket(bytes, 'if0');
      expect(typeof r.ok).toBe('boolean');
      if (!r.ok) expect(Number.isInteger(r.error.offset)).toBe(true);
    };
    fc.assert(fc.property(fc.uint8Array({ maxLength: 200 }), (b) => check(b)), { numRuns: 1000 });
    const mutated = fc
      .tuple(
        fc.constantFrom(...valid),
        fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 }), fc.constantFrom('set', 'insert', 'delete')), {
          minLength: 1,
          maxLength: 6,
        }),
        fc.option(fc.nat(), { nil: undefined }),
      )
      .map(([base, edits, cut]) => {
        const b = [...base];
        for (const [at, v, op] of edits) {
          const i = at % (b.length + 1);
          if (op === 'set' && i < b.length) b[i] = v;
          else if (op === 'insert') b.splice(i, 0, v);
          else b.splice(i, 1);
        }
        return new Uint8Array(cut === undefined ? b : b.slice(0, cut % (b.length + 1)));
      });
    fc.assert(fc.property(mutated, (b) => check(b)), { numRuns: 2000 });
    expect(reader.counters.packets).toBe(3000);
    expect(reader.counters.malformed).toBeGreaterThan(0);
    expect(reader.counters.messages).toBeGreaterThan(0);
  });
});
