/**
 * RFC 5444 conformance: the OONF interop vectors (shared/vectors/rfc5444) decode to their expected
 * content and survive encode → decode; and Wireshark's packetbb dissector (tshark), a decoder
 * nobody here wrote, reads the packets our encoder writes to the same structure: messages,
 * header fields, addresses with prefix lengths, and TLV types, extensions and values per address.
 */
import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Address, Message, Packet, Tlv } from '../src/rfc5444/model.js';
import { decodePacket, encodePacket } from '../src/rfc5444/wire.js';
import { packetToJson, type PacketJson } from '../src/rfc5444/json.js';
import { LinkType, PcapngFile } from '../src/link/pcap.js';
import { ipv4UdpRecord } from '../src/link/capture.js';

interface Vector {
  name: string;
  hex: string;
  expect?: PacketJson;
  tshark: string;
}

const vectorsUrl = new URL('../../shared/vectors/rfc5444/oonf-interop2010.json', import.meta.url);
function loadVectors(): Vector[] {
  const path = fileURLToPath(vectorsUrl);
  if (!existsSync(path)) throw new Error(`RFC 5444 vectors missing: ${path} (the shared vectors folder beside the repository)`);
  return JSON.parse(readFileSync(path, 'utf8')) as Vector[];
}
const vectors = loadVectors();

const bytes = (h: string): Uint8Array => Uint8Array.from(Buffer.from(h.replace(/\s+/g, ''), 'hex'));

function decodeOrThrow(b: Uint8Array, what: string): Packet {
  const r = decodePacket(b);
  if (!r.ok) throw new Error(`${what}: ${r.error.reason} at ${r.error.offset}`);
  return r.packet;
}

describe('OONF interop vectors', () => {
  it('the file holds the 39 vectors the README describes', () => {
    expect(vectors.length).toBe(39);
    expect(vectors.every((v) => v.expect !== undefined)).toBe(true);
  });

  for (const v of vectors) {
    it(`${v.name} decodes to its expected content, and encode(decode(x)) decodes to the same`, () => {
      const packet = decodeOrThrow(bytes(v.hex), v.name);
      if (v.expect) expect(packetToJson(packet)).toEqual(v.expect);
      const again = decodeOrThrow(encodePacket(packet), `${v.name} re-encoded`);
      expect(packetToJson(again)).toEqual(packetToJson(packet));
    });
  }
});

// ---- Wireshark ------------------------------------------------------------------------------

const tlv = (type: number, value: string | null, extType = 0): Tlv => ({ type, extType, value: value === null ? null : bytes(value) });
const addr = (h: string, tlvs: Tlv[] = [], prefixLength?: number): Address => ({ address: bytes(h), prefixLength: prefixLength ?? 4 * h.length, tlvs });
const msg = (type: number, addrLength: number, addresses: Address[], extra: Partial<Message> = {}): Message => ({
  type,
  addrLength,
  originator: null,
  hopLimit: null,
  hopCount: null,
  seqno: null,
  tlvs: [],
  addresses,
  ...extra,
});
const ip4 = (s: string): string => s.split('.').map((o) => Number(o).toString(16).padStart(2, '0')).join('');

/** Hand-made packets that use every feature, with TLV types whose Wireshark meaning fits. */
function richPackets(): Packet[] {
  // A HELLO-like message: 10.0.0.x and 192.168.1.x neighbours, link status (3, one byte) on all,
  // other-neighbour (4) on some, link metric (7, two bytes) differing: multivalue.
  const hello: Address[] = [];
  for (let i = 1; i <= 12; i++) {
    hello.push(addr(ip4(`10.0.0.${i}`), [tlv(3, '01'), tlv(7, (0x100 + i).toString(16).padStart(4, '0'))]));
  }
  for (let i = 1; i <= 8; i++) hello.push(addr(ip4(`192.168.1.${i * 10}`), [tlv(3, i % 2 ? '01' : '02'), ...(i < 4 ? [tlv(4, '01')] : [])], 24));
  const v6 = (last: string) => 'fd00000000000000' + '0000000000' + last;
  return [
    {
      version: 0,
      seqno: 1,
      tlvs: [tlv(200, '0102', 3), tlv(201, null)],
      messages: [
        msg(1, 4, hello, { originator: bytes(ip4('10.0.0.254')), hopLimit: 1, hopCount: 0, seqno: 4711, tlvs: [tlv(1, '5a'), tlv(20, '00'.repeat(300), 7)] }),
        msg(
          2,
          16,
          [
            addr(v6('000001'), [tlv(20, 'aa', 1)], 64),
            addr(v6('000002'), [tlv(20, 'bb', 1)], 64),
            addr(v6('010000'), [tlv(21, null)], 48),
            addr('fe80' + '00'.repeat(12) + '0100', [tlv(21, null)], 128),
            addr('2001' + '0db8' + '00'.repeat(12), [], 32),
          ],
          { hopLimit: 255, tlvs: [tlv(30, '')] },
        ),
      ],
    },
    {
      version: 0,
      seqno: null,
      tlvs: [],
      messages: [
        msg(3, 6, [addr('020000000001', [tlv(40, '01')]), addr('020000000002', [tlv(40, '02')]), addr('0a0b0c000000')], { originator: bytes('02000000ffff') }),
        msg(4, 1, [addr('01'), addr('02', [tlv(41, '0102')]), addr('ff')], { seqno: 9 }),
        msg(5, 4, Array.from({ length: 300 }, (_, i) => addr(ip4(`10.${i >> 8}.${i & 0xff}.1`), i % 3 ? [tlv(42, '07')] : [])), { hopCount: 3 }),
      ],
    },
  ];
}

/** What both sides must agree on, per packet. */
interface Structure {
  seqno: number | null;
  tlvs: string[];
  messages: Array<{
    type: number;
    addrLength: number;
    originator: string | null;
    hopLimit: number | null;
    hopCount: number | null;
    seqno: number | null;
    tlvs: string[];
    /** tlvs null: not compared (see WIRESHARK_MAX_BLOCK). */
    addresses: Array<{ address: string; prefixLength: number; tlvs: string[] | null }>;
  }>;
}

/**
 * Wireshark 4.0's dissect_pbb_tlvblock() takes the address count as a gint8: in an address block
 * of 128 or more addresses it skips the index fields of address TLVs and misreads the rest of that
 * TLV block. Such blocks are RFC 5444 (255 addresses are allowed); their addresses are compared,
 * their TLVs are not.
 */
const WIRESHARK_MAX_BLOCK = 127;

/** A TLV as `type/ext=value` (value: hex, or '-' for none). */
const tlvKey = (type: number, ext: number, value: string | null): string => `${type}/${ext}=${value ?? '-'}`;

/** The packet as the JSON model shows it, with each TLV as a `type/ext=value` key. */
function ourStructure(p: Packet): Structure {
  const json = packetToJson(p);
  const t = (x: { type: number; extType: number; value: string | null }) => tlvKey(x.type, x.extType, x.value);
  return {
    seqno: json.seqno,
    tlvs: json.tlvs.map(t),
    messages: json.messages.map((m) => ({
      ...m,
      tlvs: m.tlvs.map(t),
      addresses: m.addresses.map((a) => ({ ...a, tlvs: a.tlvs.map(t) })),
    })),
  };
}

type Node = Record<string, unknown>;
/** With --no-duplicate-keys a repeated field is an array, a single one is not. */
const all = (x: unknown): unknown[] => (x === undefined ? [] : Array.isArray(x) ? x : [x]);
const num = (x: unknown): number | null => (x === undefined ? null : Number(x));
const colonHex = (x: unknown): string => String(x).replace(/:/g, '');

/** IPv6 text (as Wireshark prints it) → 32 hex digits. */
function ipv6Hex(text: string): string {
  const [left, right] = text.includes('::') ? text.split('::') : [text, undefined];
  const groups = (s: string | undefined) => (s ? s.split(':') : []);
  const l = groups(left);
  const r = groups(right);
  const mid = right === undefined ? [] : new Array<string>(8 - l.length - r.length).fill('0');
  return [...l, ...mid, ...r].map((g) => g.padStart(4, '0')).join('');
}

function wiresharkTlvs(block: unknown, kind: 'pkttlv' | 'msgtlv' | 'addrtlv'): Array<{ key: (slice: number) => string; start: number; stop: number }> {
  const b = block as Node | undefined;
  return all(b?.['packetbb.tlv']).map((x) => {
    const t = x as Node;
    const flags = t['packetbb.tlv.flags_tree'] as Node;
    const type = Number(t[`packetbb.${kind}.type`]);
    const ext = Number(t['packetbb.tlv.typeext'] ?? 0);
    const hasValue = flags['packetbb.tlv.hasvalue'] === '1';
    const multi = flags['packetbb.tlv.hasmultivalue'] === '1';
    const value = hasValue ? (t['packetbb.tlv.value'] === undefined ? '' : colonHex(t['packetbb.tlv.value'])) : null;
    const slices = multi ? all((t['packetbb.tlv.value_tree'] as Node | undefined)?.['packetbb.tlv.multivalue']).map(colonHex) : [];
    return {
      key: (slice: number) => tlvKey(type, ext, multi ? (slices[slice] ?? '?') : value),
      start: Number(t['packetbb.tlv.indexstart'] ?? 0),
      stop: Number(t['packetbb.tlv.indexend'] ?? 0),
    };
  });
}

function wiresharkStructure(pb: Node): Structure {
  const header = pb['packetbb.header'] as Node;
  return {
    seqno: num(header['packetbb.seqnr']),
    tlvs: wiresharkTlvs(pb['packetbb.tlvblock'], 'pkttlv').map((t) => t.key(0)),
    messages: all(pb['packetbb.msg']).map((x) => {
      const m = x as Node;
      const h = m['packetbb.msg.header'] as Node;
      const L = Number(h['packetbb.msg.addrsize']);
      const origKey = Object.keys(h).find((k) => k.startsWith('packetbb.msg.origaddr'));
      const addresses: Structure['messages'][number]['addresses'] = [];
      for (const y of all(m['packetbb.msg.addr'])) {
        const block = y as Node;
        const flags = block['packetbb.msg.addr.flags_tree'] as Node;
        const head = flags['packetbb.msg.addr.hashead'] === '1' ? colonHex(block['packetbb.msg.addr.head']).slice(2) : '';
        const tailField = colonHex(block['packetbb.msg.addr.tail'] ?? '');
        const tail =
          flags['packetbb.msg.addr.hasfulltail'] === '1'
            ? tailField.slice(2)
            : flags['packetbb.msg.addr.haszerotail'] === '1'
              ? '00'.repeat(parseInt(tailField.slice(0, 2), 16))
              : '';
        const valueKey = Object.keys(block).find((k) => /^packetbb\.msg\.addr\.value[a-z0-9]*$/.test(k))!;
        const shown = all(block[valueKey]).map(String);
        const trees = all(block[`${valueKey}_tree`]) as Node[];
        const first = addresses.length;
        const reliable = trees.length <= WIRESHARK_MAX_BLOCK;
        trees.forEach((tree, i) => {
          const address = head + colonHex(tree['packetbb.msg.addr.value.mid']) + tail;
          // Where Wireshark formats the address itself, that must agree too.
          const text = shown[i]!;
          if (valueKey.endsWith('value4')) expect(text.split('.').map((o) => Number(o).toString(16).padStart(2, '0')).join('')).toBe(address);
          if (valueKey.endsWith('value6')) expect(ipv6Hex(text)).toBe(address);
          if (valueKey.endsWith('valuemac')) expect(colonHex(text)).toBe(address);
          const prefix = tree['packetbb.msg.addr.value.prefix'];
          addresses.push({ address, prefixLength: prefix === undefined ? 8 * L : Number(prefix), tlvs: reliable ? [] : null });
        });
        if (!reliable) continue;
        for (const t of wiresharkTlvs(block['packetbb.tlvblock'], 'addrtlv')) {
          for (let i = t.start; i <= t.stop; i++) addresses[first + i]!.tlvs!.push(t.key(i - t.start));
        }
      }
      return {
        type: Number(h['packetbb.msg.type']),
        addrLength: L,
        originator:
          origKey === undefined
            ? null
            : origKey.endsWith('4')
              ? ip4(String(h[origKey]))
              : origKey.endsWith('6')
                ? ipv6Hex(String(h[origKey]))
                : colonHex(h[origKey]),
        hopLimit: num(h['packetbb.msg.hoplimit']),
        hopCount: num(h['packetbb.msg.hopcount']),
        seqno: num(h['packetbb.msg.seqnum']),
        tlvs: wiresharkTlvs(m['packetbb.tlvblock'], 'msgtlv').map((t) => t.key(0)),
        addresses,
      };
    }),
  };
}

/** Every value of `key` anywhere in the tree, as numbers. */
function collect(tree: unknown, key: string): number[] {
  const out: number[] = [];
  const walk = (x: unknown): void => {
    if (Array.isArray(x)) x.forEach(walk);
    else if (typeof x === 'object' && x !== null) {
      for (const [k, v] of Object.entries(x)) {
        if (k === key) out.push(...all(v).map((f) => Number(f)));
        else walk(v);
      }
    }
  };
  walk(tree);
  return out;
}

function tshark(args: string[]): string {
  const r = spawnSync('tshark', args, { encoding: 'utf8', maxBuffer: 256 << 20 });
  if (r.error) {
    throw new Error(
      `tshark is needed for this test (Wireshark's packetbb dissector): ` +
        `echo wireshark-common wireshark-common/install-setuid boolean false | debconf-set-selections && ` +
        `DEBIAN_FRONTEND=noninteractive apt-get install -y tshark (${r.error.message})`,
    );
  }
  if (r.status !== 0) throw new Error(`tshark exited ${r.status}: ${r.stderr}`);
  return r.stdout;
}

describe("Wireshark's packetbb dissector reads what the encoder writes", () => {
  it('vectors (re-encoded) and hand-made packets: same messages, addresses, prefixes, TLVs', async () => {
    const packets: Array<{ name: string; packet: Packet }> = [
      ...vectors.map((v) => ({ name: v.name, packet: decodeOrThrow(bytes(v.hex), v.name) })),
      ...richPackets().map((packet, i) => ({ name: `rich_${i}`, packet })),
    ];
    const encoded = packets.map((p) => encodePacket(p.packet));

    const dir = mkdtempSync(join(tmpdir(), 'meshgw-rfc5444-'));
    try {
      const file = join(dir, 'rfc5444.pcapng');
      const pcap = new PcapngFile(file);
      const iface = pcap.addInterface({ linkType: LinkType.IPV4, name: 'udp0' });
      for (const b of encoded) {
        const record = ipv4UdpRecord({ address: '10.0.0.1', port: 269 }, { address: '10.0.0.2', port: 269 }, b);
        expect(pcap.writePacket({ interfaceId: iface, timestampMs: 0, data: record })).toBe(true);
      }
      await pcap.close();
      const frames = JSON.parse(tshark(['-r', file, '-T', 'json', '-J', 'packetbb', '--no-duplicate-keys'])) as Array<{
        _source: { layers: Node };
      }>;
      expect(frames.length).toBe(packets.length);
      let blind = 0;
      frames.forEach((frame, i) => {
        const pb = frame._source.layers.packetbb as Node | undefined;
        expect(pb, packets[i]!.name).toBeDefined();
        const theirs = wiresharkStructure(pb!);
        const ours = ourStructure(packets[i]!.packet);
        // Where Wireshark cannot read address TLVs (a block of 128+ addresses), neither side counts.
        theirs.messages.forEach((m, j) =>
          m.addresses.forEach((a, k) => {
            const mine = ours.messages[j]?.addresses[k];
            if (a.tlvs === null && mine) {
              mine.tlvs = null;
              blind++;
            }
          }),
        );
        expect(theirs, packets[i]!.name).toEqual(ours);
      });
      // Only the 300-address message has such a block (255 addresses; the rest are compared).
      expect(blind).toBe(255);

      // The hand-made packets use every encoding, as Wireshark saw the flags.
      const rich = frames.slice(vectors.length).map((f) => f._source.layers.packetbb);
      const addrFlags = collect(rich, 'packetbb.msg.addr.flags');
      const tlvFlags = collect(rich, 'packetbb.tlv.flags');
      const any = (set: number[], bit: number) => set.some((f) => (f & bit) !== 0);
      for (const bit of [0x80, 0x40, 0x20, 0x10, 0x08]) expect(any(addrFlags, bit), `address flag ${bit}`).toBe(true);
      for (const bit of [0x80, 0x40, 0x20, 0x10, 0x08, 0x04]) expect(any(tlvFlags, bit), `TLV flag ${bit}`).toBe(true);
      expect(tlvFlags.some((f) => (f & 0x60) === 0 && (f & 0x10) !== 0), 'an address TLV with no index').toBe(true);
      const blocksPerMessage = rich.flatMap((pb) => all((pb as Node)['packetbb.msg']).map((m) => all((m as Node)['packetbb.msg.addr']).length));
      expect(Math.max(...blocksPerMessage), 'a message split into address blocks').toBeGreaterThan(1);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
