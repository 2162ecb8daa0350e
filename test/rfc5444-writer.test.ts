/**
 * The RFC 5444 writer: callback order (as the reference library, OONF's rfc5444 writer, runs
 * them), fragmentation within 128- and 256-byte MTUs, per-interface messages, address merging,
 * forwarding, flushing and packet sequence numbers. Every packet sent is checked by decoding it.
 */
import { describe, expect, it } from 'vitest';
import type { Message, Packet } from '../src/rfc5444/model.js';
import { decodePacket, encodeMessage } from '../src/rfc5444/wire.js';
import {
  Rfc5444Writer,
  Rfc5444WriterError,
  sequencedPackets,
  type MessageContentProvider,
  type PacketContentProvider,
} from '../src/rfc5444/writer.js';

interface Sent {
  iface: string;
  bytes: Uint8Array;
}

function writerWithLog(maxMessageSize?: number): { writer: Rfc5444Writer; sent: Sent[] } {
  const sent: Sent[] = [];
  const writer = new Rfc5444Writer({ maxMessageSize, sendPacket: (iface, bytes) => sent.push({ iface, bytes }) });
  return { writer, sent };
}

function decode(bytes: Uint8Array): Packet {
  const r = decodePacket(bytes);
  if (!r.ok) throw new Error(`sent packet does not decode: ${r.error.reason} at ${r.error.offset}`);
  return r.packet;
}

const hex = (b: Uint8Array | null): string | null => (b === null ? null : Buffer.from(b).toString('hex'));
const ip = (n: number): Uint8Array => new Uint8Array([10, 0, n >> 8, n & 0xff]);

// NHDP-like numbers: HELLO is message type 0; INTERVAL_TIME 0 and VALIDITY_TIME 1 are message TLVs;
// LOCAL_IF 2, LINK_STATUS 3, OTHER_NEIGHB 4 are address TLVs.
const HELLO = 0;
const INTERVAL_TIME = 0;
const VALIDITY_TIME = 1;
const LOCAL_IF = 2;
const LINK_STATUS = 3;
const OTHER_NEIGHB = 4;

/** A HELLO with `n` addresses, each with LINK_STATUS and (every third) OTHER_NEIGHB. */
function registerHello(writer: Rfc5444Writer, n: number, opts: { perInterface?: boolean } = {}): void {
  writer.registerMessage(
    HELLO,
    {
      addMessageHeader: (ctx) => {
        ctx.setAddressLength(4);
        ctx.setOriginator(ip(1));
        ctx.setHopLimit(1);
        ctx.include('seqno');
      },
      finishMessageHeader: (ctx) => ctx.setSeqno(1000 + ctx.fragment.index),
    },
    { perInterface: opts.perInterface },
  );
  writer.registerContentProvider(
    HELLO,
    {
      addMessageTLVs: (ctx) => {
        ctx.addTlv(VALIDITY_TIME, 0, new Uint8Array([0x6a]));
        ctx.addTlv(INTERVAL_TIME, 0, new Uint8Array([0x5a]));
      },
      addAddresses: (ctx) => {
        for (let i = 0; i < n; i++) {
          const a = ctx.addAddress(ip(100 + i * 7));
          ctx.addAddressTlv(a, LINK_STATUS, 0, new Uint8Array([i % 3]));
          if (i % 3 === 0) ctx.addAddressTlv(a, OTHER_NEIGHB, 0, new Uint8Array([1]));
        }
      },
    },
    0,
    [{ type: LINK_STATUS }, { type: OTHER_NEIGHB }, { type: LOCAL_IF }],
  );
}

describe('callback order', () => {
  function setup(opts: { mtu: number; maxMessageSize?: number; addresses: number }) {
    const { writer, sent } = writerWithLog(opts.maxMessageSize);
    const log: string[] = [];
    writer.registerInterface('if0', opts.mtu);
    writer.setPacketCreator({
      addPacketHeader: (ctx) => {
        log.push(`addPacketHeader ${ctx.interface}`);
        ctx.includeSeqno();
      },
      finishPacketHeader: (ctx) => {
        log.push(`finishPacketHeader ${ctx.interface}`);
        ctx.setSeqno(7);
      },
    });
    const packetProvider = (name: string): PacketContentProvider => ({
      addPacketTLVs: (ctx) => {
        log.push(`addPacketTLVs ${name}`);
        ctx.addTlv(name === 'P1' ? 1 : 2, 0, null);
      },
      finishPacketTLVs: () => void log.push(`finishPacketTLVs ${name}`),
    });
    // registered out of priority order on purpose
    writer.registerPacketContentProvider(packetProvider('P2'), 5);
    writer.registerPacketContentProvider(packetProvider('P1'), 1);
    writer.registerMessage(9, {
      addMessageHeader: (ctx) => {
        log.push('addMessageHeader');
        ctx.include('seqno');
      },
      finishMessageHeader: (ctx) => {
        log.push(`finishMessageHeader ${ctx.fragment.index}/${ctx.fragment.count}`);
        ctx.setSeqno(ctx.fragment.index);
      },
    });
    const provider = (name: string, base: number): MessageContentProvider => ({
      addMessageTLVs: (ctx) => {
        log.push(`addMessageTLVs ${name}`);
        ctx.addTlv(base, 0, new Uint8Array([base]));
      },
      addAddresses: (ctx) => {
        log.push(`addAddresses ${name}`);
        for (let i = 0; i < opts.addresses; i++) {
          ctx.addAddressTlv(ctx.addAddress(new Uint8Array([base, 1, i, 1])), base, 0, new Uint8Array([i, base]));
        }
      },
      finishMessageTLVs: (ctx) => void log.push(`finishMessageTLVs ${name} ${ctx.fragment.index}`),
    });
    writer.registerContentProvider(9, provider('C-high', 30), 100, [{ type: 30 }]);
    writer.registerContentProvider(9, provider('C-low', 10), -5, [{ type: 10 }]);
    writer.registerContentProvider(9, provider('C-mid', 20), 3, [{ type: 20 }]);
    const send = (): void => void log.push('sendPacket');
    return { writer, sent, log, send };
  }

  const head = [
    'addPacketHeader if0',
    'addPacketTLVs P1',
    'addPacketTLVs P2',
    'addMessageHeader',
    'addMessageTLVs C-low',
    'addMessageTLVs C-mid',
    'addMessageTLVs C-high',
    'addAddresses C-low',
    'addAddresses C-mid',
    'addAddresses C-high',
  ];
  const finishFragment = (i: number, n: number): string[] => [
    `finishMessageTLVs C-high ${i}`,
    `finishMessageTLVs C-mid ${i}`,
    `finishMessageTLVs C-low ${i}`,
    `finishMessageHeader ${i}/${n}`,
  ];
  const finishPacket = ['finishPacketTLVs P2', 'finishPacketTLVs P1', 'finishPacketHeader if0'];

  it('packet header, packet TLVs, message header, message TLVs, addresses; finishes reversed', () => {
    const { writer, sent, log } = setup({ mtu: 1500, addresses: 2 });
    expect(writer.createMessage(9)).toBe(1);
    log.push('-- flush');
    writer.flush('if0');
    expect(log).toEqual([...head, ...finishFragment(0, 1), '-- flush', ...finishPacket]);
    expect(sent).toHaveLength(1);
    const p = decode(sent[0]!.bytes);
    expect(p.seqno).toBe(7);
    expect(p.tlvs.map((t) => t.type)).toEqual([1, 2]);
    expect(p.messages[0]!.tlvs.map((t) => t.type)).toEqual([10, 20, 30]);
  });

  it('fragments sharing a packet (maxMessageSize bound): finishes run per fragment', () => {
    const { writer, sent, log } = setup({ mtu: 1500, maxMessageSize: 64, addresses: 6 });
    const n = writer.createMessage(9);
    expect(n).toBeGreaterThanOrEqual(3);
    writer.flush('if0');
    const expected = [...head];
    for (let i = 0; i < n; i++) expected.push(...finishFragment(i, n));
    expect(log).toEqual([...expected, ...finishPacket]);
    expect(sent).toHaveLength(1);
    expect(decode(sent[0]!.bytes).messages.map((m) => m.seqno)).toEqual([...Array(n).keys()]);
  });

  it('fragments over packets (MTU bound): a full packet is finished and the next begun between fragments', () => {
    const { writer, sent, log } = setup({ mtu: 80, addresses: 6 });
    const n = writer.createMessage(9);
    expect(n).toBeGreaterThanOrEqual(3);
    writer.flush('if0');
    const expected = [...head, ...finishFragment(0, n)];
    for (let i = 1; i < n; i++) {
      expected.push(...finishFragment(i, n), ...finishPacket, 'addPacketHeader if0', 'addPacketTLVs P1', 'addPacketTLVs P2');
    }
    expect(log).toEqual([...expected, ...finishPacket]);
    expect(sent).toHaveLength(n);
    for (const s of sent) expect(s.bytes.length).toBeLessThanOrEqual(80);
  });
});

describe('fragmentation', () => {
  for (const mtu of [128, 256]) {
    it(`a 100-address HELLO within a ${mtu}-byte MTU: every fragment has the message TLVs, every address once`, () => {
      const { writer, sent } = writerWithLog();
      writer.registerInterface('radio', mtu);
      writer.setPacketCreator(sequencedPackets());
      registerHello(writer, 100);
      const fragments = writer.createMessage(HELLO);
      writer.flush('radio');
      expect(fragments).toBeGreaterThan(1);
      const messages: Message[] = [];
      for (const s of sent) {
        expect(s.bytes.length).toBeLessThanOrEqual(mtu);
        messages.push(...decode(s.bytes).messages);
      }
      expect(messages).toHaveLength(fragments);
      const seen: string[] = [];
      for (const m of messages) {
        expect(m.tlvs.map((t) => [t.type, hex(t.value)])).toEqual([
          [VALIDITY_TIME, '6a'],
          [INTERVAL_TIME, '5a'],
        ]);
        expect(hex(m.originator)).toBe('0a000001');
        expect(m.hopLimit).toBe(1);
        expect(m.addresses.length).toBeGreaterThan(0);
        for (const a of m.addresses) {
          const i = (((a.address[2]! << 8) | a.address[3]!) - 100) / 7;
          const tlvs = a.tlvs.map((t) => `${t.type}:${hex(t.value)}`).sort();
          expect(tlvs).toEqual(i % 3 === 0 ? [`3:0${i % 3}`, '4:01'] : [`3:0${i % 3}`]);
          seen.push(hex(a.address)!);
        }
      }
      expect(messages.map((m) => m.seqno)).toEqual([...Array(fragments).keys()].map((i) => 1000 + i));
      const expected = [...Array(100).keys()].map((i) => hex(ip(100 + i * 7)));
      expect(seen).toEqual(expected); // each once, in order
    });
  }

  it('reserved message TLVs are set per fragment, unset reservations are omitted', () => {
    const { writer, sent } = writerWithLog(90);
    writer.registerInterface('if0', 1500);
    registerHello(writer, 30);
    writer.registerContentProvider(HELLO, {
      addMessageTLVs: (ctx) => {
        ctx.reserveTlv(200, 1, 2);
        ctx.reserveTlv(201, 0, 4);
      },
      finishMessageTLVs: (ctx) => ctx.setReservedTlv(200, 1, new Uint8Array([ctx.fragment.index, ctx.fragment.count])),
    });
    const n = writer.createMessage(HELLO);
    writer.flush('if0');
    const msgs = sent.flatMap((s) => decode(s.bytes).messages);
    expect(msgs).toHaveLength(n);
    msgs.forEach((m, i) => {
      expect(m.tlvs.filter((t) => t.type >= 200).map((t) => [t.type, t.extType, hex(t.value)])).toEqual([
        [200, 1, hex(new Uint8Array([i, n]))],
      ]);
    });
  });

  it('an address whose TLVs cannot fit is an error naming the address and the limit, and nothing is sent', () => {
    const { writer, sent } = writerWithLog();
    writer.registerInterface('small', 128);
    writer.registerMessage(5, { addMessageHeader: () => {} });
    writer.registerAddressTlvType(9, 0, 5);
    writer.registerContentProvider(5, {
      addAddresses: (ctx) => {
        ctx.addAddress(ip(1));
        ctx.addAddressTlv(ctx.addAddress(ip(2)), 9, 0, new Uint8Array(200));
      },
    });
    expect(() => writer.createMessage(5)).toThrow(Rfc5444WriterError);
    expect(() => writer.createMessage(5)).toThrow(
      /^MTU too small: address 10\.0\.0\.2 with its TLVs needs \d+ bytes, interface small allows \d+$/,
    );
    expect(writer.pendingMessages('small')).toBe(0);
    expect(writer.flush('small')).toBe(false);
    expect(sent).toHaveLength(0);
  });

  it('message TLVs too large for the MTU are an error too', () => {
    const { writer } = writerWithLog();
    writer.registerInterface('small', 64);
    writer.registerMessage(5, { addMessageHeader: () => {} });
    writer.registerContentProvider(5, { addMessageTLVs: (ctx) => ctx.addTlv(1, 0, new Uint8Array(100)) });
    expect(() => writer.createMessage(5)).toThrow(/^MTU too small: message type 5 header and message TLVs need \d+ bytes/);
  });
});

describe('per-interface messages', () => {
  it('one message per interface, each knowing its interface, each within its own MTU', () => {
    const { writer, sent } = writerWithLog();
    const mtus: Record<string, number> = { a: 128, b: 256, c: 1500 };
    for (const [name, mtu] of Object.entries(mtus)) writer.registerInterface(name, mtu);
    registerHello(writer, 30, { perInterface: true });
    const seen: Array<string | null> = [];
    writer.registerContentProvider(HELLO, {
      addMessageTLVs: (ctx) => {
        seen.push(ctx.interface);
        ctx.addTlv(250, 0, new TextEncoder().encode(ctx.interface ?? '?'));
      },
    });
    writer.createMessage(HELLO);
    writer.flushAll();
    expect(seen).toEqual(['a', 'b', 'c']);
    for (const name of Object.keys(mtus)) {
      const mine = sent.filter((s) => s.iface === name);
      expect(mine.length).toBeGreaterThan(0);
      let addresses = 0;
      for (const s of mine) {
        expect(s.bytes.length).toBeLessThanOrEqual(mtus[name]!);
        for (const m of decode(s.bytes).messages) {
          expect(new TextDecoder().decode(m.tlvs.find((t) => t.type === 250)!.value!)).toBe(name);
          addresses += m.addresses.length;
        }
      }
      expect(addresses).toBe(30);
    }
    expect(sent.filter((s) => s.iface === 'a').length).toBeGreaterThan(sent.filter((s) => s.iface === 'c').length);
  });

  it('only selected interfaces; a shared message is sized for the smallest selected MTU', () => {
    const { writer, sent } = writerWithLog();
    writer.registerInterface('a', 128);
    writer.registerInterface('b', 1500);
    writer.registerInterface('c', 1500);
    registerHello(writer, 30);
    writer.createMessage(HELLO, (name) => name !== 'c');
    writer.flushAll();
    expect(new Set(sent.map((s) => s.iface))).toEqual(new Set(['a', 'b']));
    const perIface = (name: string) => sent.filter((s) => s.iface === name).flatMap((s) => decode(s.bytes).messages);
    expect(perIface('a').length).toBeGreaterThan(1);
    expect(perIface('b')).toEqual(perIface('a')); // the same fragments on both…
    for (const s of sent.filter((x) => x.iface === 'a')) expect(s.bytes.length).toBeLessThanOrEqual(128);
    // …which b, with its larger MTU, packs into fewer packets
    expect(sent.filter((x) => x.iface === 'b').length).toBeLessThan(sent.filter((x) => x.iface === 'a').length);
  });
});

describe('addresses', () => {
  it('the same address from two providers is one address with both providers\' TLVs', () => {
    const { writer, sent } = writerWithLog();
    writer.registerInterface('if0', 1500);
    writer.registerMessage(3, { addMessageHeader: () => {} });
    writer.registerContentProvider(3, {
      addAddresses: (ctx) => {
        ctx.addAddressTlv(ctx.addAddress(ip(5)), LOCAL_IF, 0, new Uint8Array([0]));
        ctx.addAddress(ip(6));
      },
    }, 0, [{ type: LOCAL_IF }]);
    writer.registerContentProvider(3, {
      addAddresses: (ctx) => {
        ctx.addAddressTlv(ctx.addAddress(ip(5)), LINK_STATUS, 0, new Uint8Array([2]));
        ctx.addAddress(ip(5), 24); // another prefix length: another address
      },
    }, 1, [{ type: LINK_STATUS }]);
    writer.createMessage(3);
    writer.flush('if0');
    const m = decode(sent[0]!.bytes).messages[0]!;
    const tlvs = (a: Message['addresses'][number]) => a.tlvs.map((t) => `${t.type}:${hex(t.value)}`).sort();
    expect(m.addresses.map((a) => [hex(a.address), a.prefixLength, tlvs(a)])).toEqual([
      ['0a000005', 32, ['2:00', '3:02']],
      ['0a000006', 32, []],
      ['0a000005', 24, []],
    ]);
  });

  it('an unregistered address TLV type, a duplicate TLV, a wrong address length are errors', () => {
    const { writer } = writerWithLog();
    writer.registerInterface('if0', 1500);
    writer.registerMessage(3, { addMessageHeader: () => {} });
    let step = 0;
    writer.registerAddressTlvType(LOCAL_IF); // for all message types
    writer.registerContentProvider(3, {
      addAddresses: (ctx) => {
        const a = ctx.addAddress(ip(5));
        if (step === 0) ctx.addAddressTlv(a, 77, 0, null);
        if (step === 1) {
          ctx.addAddressTlv(a, LOCAL_IF, 0, new Uint8Array([0]));
          ctx.addAddressTlv(a, LOCAL_IF, 0, new Uint8Array([1]));
        }
        if (step === 2) ctx.addAddress(new Uint8Array(16));
        if (step === 3) {
          ctx.addAddressTlv(a, LOCAL_IF, 0, new Uint8Array([0]));
          ctx.addAddressTlv(a, LOCAL_IF, 0, new Uint8Array([1]), { allowDuplicate: true });
        }
      },
    });
    expect(() => writer.createMessage(3)).toThrow(/address TLV type 77 ext 0 is not registered/);
    step = 1;
    expect(() => writer.createMessage(3)).toThrow(/already has TLV type 2 ext 0/);
    step = 2;
    expect(() => writer.createMessage(3)).toThrow(/address of 16 bytes, address length is 4/);
    step = 3;
    expect(writer.createMessage(3)).toBe(1);
  });

  it('one creator per message type; a writer call from a callback is refused', () => {
    const { writer } = writerWithLog();
    writer.registerInterface('if0', 1500);
    writer.registerMessage(3, { addMessageHeader: () => void writer.flush('if0') });
    expect(() => writer.registerMessage(3, { addMessageHeader: () => {} })).toThrow(/already has a creator/);
    expect(() => writer.createMessage(3)).toThrow(/may not be called from its own callbacks/);
    expect(() => writer.createMessage(4)).toThrow(/no message creator registered for message type 4/);
  });
});

describe('forwardMessage', () => {
  const received: Message = {
    type: 11,
    addrLength: 4,
    originator: ip(77),
    hopLimit: 5,
    hopCount: 2,
    seqno: 4242,
    tlvs: [{ type: 1, extType: 0, value: new Uint8Array([9]) }],
    addresses: [{ address: ip(8), prefixLength: 32, tlvs: [] }],
  };

  it('appends the message after the writer\'s own, hop limit decremented and hop count incremented', () => {
    const { writer, sent } = writerWithLog();
    writer.registerInterface('a', 1500);
    writer.registerInterface('b', 1500);
    registerHello(writer, 2);
    writer.createMessage(HELLO, (n) => n === 'a');
    const bytes = encodeMessage(received);
    const before = bytes.slice();
    const out = writer.forwardMessage(bytes);
    expect(out).toEqual({ ok: true, interfaces: ['a', 'b'], tooLarge: [] });
    expect(bytes).toEqual(before); // the caller's bytes are untouched
    writer.flushAll();
    const a = decode(sent.find((s) => s.iface === 'a')!.bytes);
    expect(a.messages.map((m) => m.type)).toEqual([HELLO, 11]);
    expect(a.messages[1]).toEqual({ ...received, hopLimit: 4, hopCount: 3 });
    const b = decode(sent.find((s) => s.iface === 'b')!.bytes);
    expect(b.messages).toEqual([{ ...received, hopLimit: 4, hopCount: 3 }]);
  });

  it('a message with hop limit 1 is not forwarded; malformed bytes are refused; too large is reported', () => {
    const { writer, sent } = writerWithLog();
    writer.registerInterface('a', 1500);
    writer.registerInterface('tiny', 16);
    expect(writer.forwardMessage(encodeMessage({ ...received, hopLimit: 1 }))).toMatchObject({ ok: false, reason: 'hop-limit' });
    expect(writer.forwardMessage(encodeMessage({ ...received, hopCount: 255 }))).toMatchObject({ ok: false, reason: 'hop-count' });
    expect(writer.forwardMessage(new Uint8Array([1, 2, 3]))).toMatchObject({ ok: false, reason: 'malformed' });
    const good = encodeMessage(received);
    const lying = good.slice();
    lying[3] = lying[3]! + 1;
    expect(writer.forwardMessage(lying)).toMatchObject({ ok: false, reason: 'malformed' });
    expect(writer.flushAll()).toEqual([]);
    expect(sent).toHaveLength(0);
    expect(writer.forwardMessage(good)).toEqual({ ok: true, interfaces: ['a'], tooLarge: ['tiny'] });
    // without a hop limit it is forwarded, hop count still incremented
    expect(writer.forwardMessage(encodeMessage({ ...received, hopLimit: null }), (n) => n === 'a')).toMatchObject({ ok: true });
    writer.flushAll();
    expect(sent.map((s) => s.iface)).toEqual(['a']);
    expect(decode(sent[0]!.bytes).messages.map((m) => [m.hopLimit, m.hopCount])).toEqual([
      [4, 3],
      [null, 3],
    ]);
  });

  it('a forwarded message that does not fit the open packet flushes it first', () => {
    const { writer, sent } = writerWithLog();
    writer.registerInterface('a', 60);
    const m = encodeMessage(received);
    for (let i = 0; i < 3; i++) writer.forwardMessage(m);
    writer.flush('a');
    const per = Math.floor((60 - 1) / m.length);
    expect(sent).toHaveLength(Math.ceil(3 / per));
    expect(sent.flatMap((s) => decode(s.bytes).messages)).toHaveLength(3);
  });
});

describe('flush and packet sequence numbers', () => {
  it('flush sends only packets with messages, unless forceEmpty', () => {
    const { writer, sent } = writerWithLog();
    const log: string[] = [];
    writer.registerInterface('if0', 1500);
    writer.setPacketCreator({ addPacketHeader: () => void log.push('add'), finishPacketHeader: () => void log.push('finish') });
    expect(writer.flush('if0')).toBe(false);
    expect(sent).toHaveLength(0);
    expect(log).toEqual([]);
    expect(writer.flush('if0', true)).toBe(true);
    expect(log).toEqual(['add', 'finish']);
    expect(decode(sent[0]!.bytes)).toEqual({ version: 0, seqno: null, tlvs: [], messages: [] });
    // a cancelled message leaves nothing to send
    writer.registerMessage(3, { addMessageHeader: () => false });
    expect(writer.createMessage(3)).toBe(0);
    expect(writer.flush('if0')).toBe(false);
    expect(sent).toHaveLength(1);
    expect(() => writer.flush('nope')).toThrow(/interface nope is not registered/);
  });

  it('packet seqno counts per interface, wrapping at 2^16', () => {
    const { writer, sent } = writerWithLog();
    writer.registerInterface('a', 1500);
    writer.registerInterface('b', 1500);
    writer.setPacketCreator(sequencedPackets(65534));
    registerHello(writer, 1);
    for (let i = 0; i < 3; i++) {
      writer.createMessage(HELLO, (n) => n === 'a');
      writer.flush('a');
    }
    writer.createMessage(HELLO);
    writer.flushAll();
    writer.flush('b', true);
    const seqnos = (name: string) => sent.filter((s) => s.iface === name).map((s) => decode(s.bytes).seqno);
    expect(seqnos('a')).toEqual([65534, 65535, 0, 1]);
    expect(seqnos('b')).toEqual([65534, 65535]);
  });

  it('reserved packet TLVs are set when the packet is finished', () => {
    const { writer, sent } = writerWithLog();
    writer.registerInterface('if0', 1500);
    registerHello(writer, 1);
    writer.registerPacketContentProvider({
      addPacketTLVs: (ctx) => ctx.reserveTlv(12, 0, 1),
      finishPacketTLVs: (ctx) => ctx.setReservedTlv(12, 0, new Uint8Array([ctx.messageCount])),
    });
    writer.createMessage(HELLO);
    writer.createMessage(HELLO);
    writer.flush('if0');
    const p = decode(sent[0]!.bytes);
    expect(p.tlvs).toEqual([{ type: 12, extType: 0, value: new Uint8Array([2]) }]);
    expect(p.messages).toHaveLength(2);
  });

  it('unregistering an interface discards its pending packet; a new MTU flushes first', () => {
    const { writer, sent } = writerWithLog();
    writer.registerInterface('a', 1500);
    registerHello(writer, 1);
    writer.createMessage(HELLO);
    writer.setInterfaceMtu('a', 200);
    expect(sent).toHaveLength(1);
    writer.createMessage(HELLO);
    expect(writer.unregisterInterface('a')).toBe(1);
    expect(writer.interfaceNames).toEqual([]);
    expect(writer.createMessage(HELLO)).toBe(0);
    expect(sent).toHaveLength(1);
  });
});
