/**
 * Writer → bytes → reader: a HELLO-like message (NHDP numbering: message type 0; INTERVAL_TIME and
 * VALIDITY_TIME message TLVs; LOCAL_IF, LINK_STATUS and OTHER_NEIGHB address TLVs) with 20
 * addresses, written through a creator and two content providers and read back through
 * registered consumers, arrives with identical content, fragmented or not.
 */
import { describe, expect, it } from 'vitest';
import { Rfc5444Reader, type TlvEntry } from '../src/rfc5444/reader.js';
import { Rfc5444Writer, sequencedPackets } from '../src/rfc5444/writer.js';

const HELLO = 0;
const INTERVAL_TIME = 0;
const VALIDITY_TIME = 1;
const LOCAL_IF = 2;
const LINK_STATUS = 3;
const OTHER_NEIGHB = 4;

interface Neighbour {
  address: string;
  prefixLength: number;
  localIf?: number;
  linkStatus?: number;
  otherNeighb?: number;
}

/** What the HELLO says: 20 addresses, 2 of them local interfaces, with three address-TLV types. */
const content = {
  originator: '0a010001',
  seqno: 4711,
  hopLimit: 1,
  hopCount: 0,
  validity: 0x6a,
  interval: 0x5a,
  neighbours: [...Array(20).keys()].map((i): Neighbour => {
    const n: Neighbour = {
      address: i < 2 ? `0a0100${(i + 1).toString(16).padStart(2, '0')}` : `0a${(2 + (i % 3)).toString(16).padStart(2, '0')}00${(i * 11).toString(16).padStart(2, '0')}`,
      prefixLength: i === 7 ? 24 : 32,
    };
    if (i < 2) n.localIf = i; // THIS_IF, OTHER_IF
    else {
      n.linkStatus = i % 4 === 0 ? 0 : i % 4 === 1 ? 1 : 2; // LOST, SYMMETRIC, HEARD
      if (i % 5 === 0) n.otherNeighb = 1;
    }
    return n;
  }),
};

const bytes = (h: string): Uint8Array => new Uint8Array(Buffer.from(h, 'hex'));
const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

function writeHello(mtu: number): Array<{ iface: string; bytes: Uint8Array }> {
  const sent: Array<{ iface: string; bytes: Uint8Array }> = [];
  const writer = new Rfc5444Writer({ sendPacket: (iface, b) => sent.push({ iface, bytes: b }) });
  writer.registerInterface('wlan0', mtu);
  writer.setPacketCreator(sequencedPackets(1));
  writer.registerMessage(HELLO, {
    addMessageHeader: (ctx) => {
      ctx.setAddressLength(4);
      ctx.setOriginator(bytes(content.originator));
      ctx.setHopLimit(content.hopLimit);
      ctx.setHopCount(content.hopCount);
      ctx.include('seqno');
    },
    finishMessageHeader: (ctx) => ctx.setSeqno(content.seqno),
  });
  // the "link" provider: local interfaces and link status, and the timing TLVs
  writer.registerContentProvider(
    HELLO,
    {
      addMessageTLVs: (ctx) => {
        ctx.addTlv(VALIDITY_TIME, 0, new Uint8Array([content.validity]));
        ctx.reserveTlv(INTERVAL_TIME, 0, 1);
      },
      addAddresses: (ctx) => {
        for (const n of content.neighbours) {
          const a = ctx.addAddress(bytes(n.address), n.prefixLength);
          if (n.localIf !== undefined) ctx.addAddressTlv(a, LOCAL_IF, 0, new Uint8Array([n.localIf]));
          if (n.linkStatus !== undefined) ctx.addAddressTlv(a, LINK_STATUS, 0, new Uint8Array([n.linkStatus]));
        }
      },
      finishMessageTLVs: (ctx) => ctx.setReservedTlv(INTERVAL_TIME, 0, new Uint8Array([content.interval])),
    },
    0,
    [{ type: LOCAL_IF }, { type: LINK_STATUS }],
  );
  // the "two-hop" provider adds OTHER_NEIGHB to addresses the first one already added (merged)
  writer.registerContentProvider(
    HELLO,
    {
      addAddresses: (ctx) => {
        for (const n of content.neighbours) {
          if (n.otherNeighb === undefined) continue;
          ctx.addAddressTlv(ctx.addAddress(bytes(n.address), n.prefixLength), OTHER_NEIGHB, 0, new Uint8Array([n.otherNeighb]));
        }
      },
    },
    1,
    [{ type: OTHER_NEIGHB }],
  );
  writer.createMessage(HELLO);
  writer.flushAll();
  return sent;
}

function readHello(packets: Array<{ iface: string; bytes: Uint8Array }>) {
  const reader = new Rfc5444Reader();
  const validity: TlvEntry = { type: VALIDITY_TIME, mandatory: true, minLength: 1, maxLength: 1 };
  const interval: TlvEntry = { type: INTERVAL_TIME, mandatory: true, minLength: 1, maxLength: 1 };
  const localIf: TlvEntry = { type: LOCAL_IF, extType: 0, maxLength: 1 };
  const linkStatus: TlvEntry = { type: LINK_STATUS, extType: 0, maxLength: 1 };
  const otherNeighb: TlvEntry = { type: OTHER_NEIGHB, extType: 0, maxLength: 1 };
  const packetSeqnos: Array<number | null> = [];
  const messages: Array<Omit<typeof content, 'neighbours'>> = [];
  const neighbours: Neighbour[] = [];
  const failures: string[] = [];
  reader.addPacketConsumer({ startPacket: (ctx) => void packetSeqnos.push(ctx.seqno) });
  reader.addMessageConsumer(HELLO, {
    messageTlvs: [validity, interval],
    addressTlvs: [localIf, linkStatus, otherNeighb],
    block: (ctx) => {
      const m = ctx.message;
      messages.push({
        originator: hex(m.originator!),
        seqno: m.seqno!,
        hopLimit: m.hopLimit!,
        hopCount: m.hopCount!,
        validity: ctx.tlv(validity)!.value![0]!,
        interval: ctx.tlv(interval)!.value![0]!,
      });
    },
    failedConstraints: (ctx) => void failures.push(...ctx.constraintFailures),
    address: (ctx) => {
      const n: Neighbour = { address: hex(ctx.address), prefixLength: ctx.prefixLength };
      const v = (e: TlvEntry) => ctx.tlv(e)?.value?.[0];
      if (v(localIf) !== undefined) n.localIf = v(localIf);
      if (v(linkStatus) !== undefined) n.linkStatus = v(linkStatus);
      if (v(otherNeighb) !== undefined) n.otherNeighb = v(otherNeighb);
      neighbours.push(n);
    },
    addressFailedConstraints: (ctx) => void failures.push(...ctx.constraintFailures),
  });
  for (const p of packets) expect(reader.handlePacket(p.bytes, p.iface)).toEqual({ ok: true });
  return { packetSeqnos, messages, neighbours, failures };
}

describe('HELLO round trip through writer and reader', () => {
  it('in one packet', () => {
    const sent = writeHello(1500);
    expect(sent).toHaveLength(1);
    const got = readHello(sent);
    const { neighbours, ...header } = content;
    expect(got.failures).toEqual([]);
    expect(got.packetSeqnos).toEqual([1]);
    expect(got.messages).toEqual([header]);
    expect(got.neighbours).toEqual(neighbours);
  });

  for (const mtu of [64, 128]) {
    it(`fragmented within a ${mtu}-byte MTU`, () => {
      const sent = writeHello(mtu);
      for (const s of sent) expect(s.bytes.length).toBeLessThanOrEqual(mtu);
      const got = readHello(sent);
      const { neighbours, ...header } = content;
      expect(got.failures).toEqual([]);
      expect(got.messages.length).toBeGreaterThan(1);
      for (const m of got.messages) expect(m).toEqual(header);
      expect(got.neighbours).toEqual(neighbours);
      expect(got.packetSeqnos).toEqual(sent.map((_, i) => i + 1));
    });
  }
});
