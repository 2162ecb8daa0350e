/**
 * The JSON model of an RFC 5444 packet (issue #5), for the CLI and tests:
 *
 *   {"version":0,"seqno":N|null,"tlvs":[{"type":T,"extType":E,"value":"<hex>"|null}],
 *    "messages":[{"type":T,"addrLength":L,"originator":"<hex>"|null,"hopLimit":N|null,
 *      "hopCount":N|null,"seqno":N|null,"tlvs":[...],
 *      "addresses":[{"address":"<hex>","prefixLength":N,"tlvs":[...]}]}]}
 *
 * Hex is written lower case and read in either case. `packetFromJson` checks everything the
 * encoder needs (ranges, address lengths) and names the JSON path of the first problem.
 */
import type { Address, Message, Packet, Tlv } from './model.js';

/** JSON that is not a packet of the model; the message names the path, e.g. `messages[0].type`. */
export class Rfc5444JsonError extends Error {
  override readonly name = 'Rfc5444JsonError';
}

export interface TlvJson {
  type: number;
  extType: number;
  value: string | null;
}

export interface AddressJson {
  address: string;
  prefixLength: number;
  tlvs: TlvJson[];
}

export interface MessageJson {
  type: number;
  addrLength: number;
  originator: string | null;
  hopLimit: number | null;
  hopCount: number | null;
  seqno: number | null;
  tlvs: TlvJson[];
  addresses: AddressJson[];
}

export interface PacketJson {
  version: 0;
  seqno: number | null;
  tlvs: TlvJson[];
  messages: MessageJson[];
}

function hex(bytes: Uint8Array): string {
  let s = '';
  for (const b of bytes) s += b.toString(16).padStart(2, '0');
  return s;
}

function tlvToJson(t: Tlv): TlvJson {
  return { type: t.type, extType: t.extType, value: t.value === null ? null : hex(t.value) };
}

export function packetToJson(p: Packet): PacketJson {
  return {
    version: 0,
    seqno: p.seqno,
    tlvs: p.tlvs.map(tlvToJson),
    messages: p.messages.map((m) => ({
      type: m.type,
      addrLength: m.addrLength,
      originator: m.originator === null ? null : hex(m.originator),
      hopLimit: m.hopLimit,
      hopCount: m.hopCount,
      seqno: m.seqno,
      tlvs: m.tlvs.map(tlvToJson),
      addresses: m.addresses.map((a) => ({ address: hex(a.address), prefixLength: a.prefixLength, tlvs: a.tlvs.map(tlvToJson) })),
    })),
  };
}

// ---- reading ----------------------------------------------------------------------------------

function fail(path: string, expected: string): never {
  throw new Rfc5444JsonError(`${path}: expected ${expected}`);
}

function object(value: unknown, path: string, keys: string[]): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) fail(path || 'packet', 'an object');
  const record = value as Record<string, unknown>;
  for (const key of Object.keys(record)) {
    if (!keys.includes(key)) throw new Rfc5444JsonError(`${path ? path + '.' : ''}${key}: unknown field`);
  }
  return record;
}

function field(record: Record<string, unknown>, key: string, path: string): unknown {
  if (!(key in record)) throw new Rfc5444JsonError(`${path ? path + '.' : ''}${key}: missing`);
  return record[key];
}

function int(value: unknown, path: string, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    fail(path, `an integer ${min}..${max}`);
  }
  return value;
}

function intOrNull(value: unknown, path: string, max: number): number | null {
  if (value === null) return null;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > max) fail(path, `null or an integer 0..${max}`);
  return value;
}

function bytes(value: unknown, path: string, length?: number): Uint8Array {
  const what = length === undefined ? 'hex' : `${length} bytes of hex`;
  if (typeof value !== 'string' || value.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(value)) fail(path, what);
  const out = new Uint8Array(value.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(value.slice(2 * i, 2 * i + 2), 16);
  if (length !== undefined && out.length !== length) fail(path, what);
  return out;
}

function array(value: unknown, path: string): unknown[] {
  if (!Array.isArray(value)) fail(path, 'an array');
  return value;
}

function tlvsFromJson(value: unknown, path: string): Tlv[] {
  return array(value, path).map((item, i) => {
    const p = `${path}[${i}]`;
    const r = object(item, p, ['type', 'extType', 'value']);
    const v = field(r, 'value', p);
    if (v !== null && typeof v === 'string' && v.length > 2 * 0xffff) fail(`${p}.value`, 'at most 65535 bytes of hex');
    return {
      type: int(field(r, 'type', p), `${p}.type`, 0, 255),
      extType: 'extType' in r ? int(r.extType, `${p}.extType`, 0, 255) : 0,
      value: v === null ? null : bytes(v, `${p}.value`),
    };
  });
}

function messageFromJson(value: unknown, path: string): Message {
  const r = object(value, path, ['type', 'addrLength', 'originator', 'hopLimit', 'hopCount', 'seqno', 'tlvs', 'addresses']);
  const addrLength = int(field(r, 'addrLength', path), `${path}.addrLength`, 1, 16);
  const originator = field(r, 'originator', path);
  const addresses: Address[] = array(field(r, 'addresses', path), `${path}.addresses`).map((item, i) => {
    const p = `${path}.addresses[${i}]`;
    const a = object(item, p, ['address', 'prefixLength', 'tlvs']);
    return {
      address: bytes(field(a, 'address', p), `${p}.address`, addrLength),
      prefixLength: 'prefixLength' in a ? int(a.prefixLength, `${p}.prefixLength`, 0, 8 * addrLength) : 8 * addrLength,
      tlvs: tlvsFromJson(field(a, 'tlvs', p), `${p}.tlvs`),
    };
  });
  return {
    type: int(field(r, 'type', path), `${path}.type`, 0, 255),
    addrLength,
    originator: originator === null ? null : bytes(originator, `${path}.originator`, addrLength),
    hopLimit: intOrNull(field(r, 'hopLimit', path), `${path}.hopLimit`, 255),
    hopCount: intOrNull(field(r, 'hopCount', path), `${path}.hopCount`, 255),
    seqno: intOrNull(field(r, 'seqno', path), `${path}.seqno`, 0xffff),
    tlvs: tlvsFromJson(field(r, 'tlvs', path), `${path}.tlvs`),
    addresses,
  };
}

/**
 * Reads the JSON model (already parsed) into a Packet, or throws Rfc5444JsonError naming the path.
 * Every field of the model is required except `extType` (default 0) and an address's
 * `prefixLength` (default 8 × addrLength), as the issue reads them; unknown fields are errors.
 */
export function packetFromJson(value: unknown): Packet {
  const r = object(value, '', ['version', 'seqno', 'tlvs', 'messages']);
  if (field(r, 'version', '') !== 0) fail('version', '0');
  return {
    version: 0,
    seqno: intOrNull(field(r, 'seqno', ''), 'seqno', 0xffff),
    tlvs: tlvsFromJson(field(r, 'tlvs', ''), 'tlvs'),
    messages: array(field(r, 'messages', ''), 'messages').map((m, i) => messageFromJson(m, `messages[${i}]`)),
  };
}
