/**
 * RFC 5444: packets per second written and parsed for a HELLO-like message (20 addresses sharing
 * a prefix, three address-TLV types), beside JSON.stringify/JSON.parse of the same model; and the
 * bytes on the wire beside a naive encoding of the same content (no head/tail compression, one
 * single-index TLV per address and type).
 */
import { decodePacket, encodePacket } from '../src/rfc5444/wire.js';
import type { Packet } from '../src/rfc5444/model.js';
import { BENCH_MS, rate, sink, type Row } from './measure.js';

function helloLike(): Packet {
  const addresses = Array.from({ length: 20 }, (_, i) => ({
    address: Uint8Array.of(10, 0, 0, i + 1),
    prefixLength: 32,
    tlvs: [
      { type: 3, extType: 0, value: Uint8Array.of(i % 3 === 0 ? 2 : 1) },
      { type: 225, extType: 0, value: Uint8Array.of(200 + (i % 5)) },
      { type: 7, extType: 0, value: Uint8Array.of(0, 100) },
    ],
  }));
  return {
    version: 0,
    seqno: 7,
    tlvs: [],
    messages: [
      {
        type: 0,
        addrLength: 4,
        originator: Uint8Array.of(10, 0, 0, 254),
        hopLimit: 1,
        hopCount: 0,
        seqno: 42,
        tlvs: [
          { type: 0, extType: 0, value: Uint8Array.of(0x58) },
          { type: 1, extType: 0, value: Uint8Array.of(0x68) },
        ],
        addresses,
      },
    ],
  };
}

/** Size of the same content with no compression: full addresses, one TLV per address and type. */
function naiveSize(p: Packet): number {
  let size = 1 + 2; // packet flags, seqno
  for (const m of p.messages) {
    size += 4 + 4 + 1 + 1 + 2; // type/flags/size, originator, hop limit, hop count, seqno
    size += 2 + m.tlvs.reduce((n, t) => n + 2 + (t.value ? 1 + t.value.length : 0), 0);
    size += 2 + m.addresses.length * m.addrLength; // num-addr, flags, addresses
    size += 2; // address TLV block length
    for (const a of m.addresses) for (const t of a.tlvs) size += 3 + (t.value ? 1 + t.value.length : 0); // type, flags, index, length, value
  }
  return size;
}

export function rfc5444Bench(): { rows: Row[]; lines: string[] } {
  const packet = helloLike();
  const bytes = encodePacket(packet);
  const json = JSON.stringify(packet, (_k, v) => (v instanceof Uint8Array ? Array.from(v) : v));
  const N = 200;
  const rows: Row[] = [
    {
      name: 'rfc5444 write HELLO-like',
      unit: '/s',
      value: rate(N, BENCH_MS, () => {
        for (let i = 0; i < N; i++) sink.value += encodePacket(packet).length;
      }),
      baselineName: 'JSON.stringify',
      baseline: rate(N, BENCH_MS, () => {
        for (let i = 0; i < N; i++) sink.value += JSON.stringify(packet, (_k, v) => (v instanceof Uint8Array ? Array.from(v) : v)).length;
      }),
    },
    {
      name: 'rfc5444 parse HELLO-like',
      unit: '/s',
      value: rate(N, BENCH_MS, () => {
        for (let i = 0; i < N; i++) {
          const r = decodePacket(bytes);
          if (r.ok) sink.value += r.packet.messages.length;
        }
      }),
      baselineName: 'JSON.parse',
      baseline: rate(N, BENCH_MS, () => {
        for (let i = 0; i < N; i++) sink.value += (JSON.parse(json) as Packet).messages.length;
      }),
    },
  ];
  const naive = naiveSize(packet);
  return { rows, lines: [`rfc5444 HELLO-like, 20 addresses, 3 address-TLV types: ${bytes.length} bytes on the wire, naive ${naive} bytes (ratio ${(bytes.length / naive).toFixed(3)})`] };
}
