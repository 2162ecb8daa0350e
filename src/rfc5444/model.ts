/**
 * The RFC 5444 data model shared by the wire codec (wire.ts), the reader and the writer, and the
 * JSON model of the CLI. Values are as the RFC defines them; encodings (compression, index
 * ranges, multivalue) are the wire codec's business and do not show here.
 */

export interface Tlv {
  type: number;
  /** Type extension; 0 when absent on the wire. */
  extType: number;
  /** null: no value field; an empty array: a value of length 0. */
  value: Uint8Array | null;
}

export interface Address {
  /** Exactly the message's addrLength bytes. */
  address: Uint8Array;
  /** 0..8 × addrLength; 8 × addrLength when the wire has none. */
  prefixLength: number;
  /** Address TLVs, with TLVs over index ranges expanded onto each address they cover. */
  tlvs: Tlv[];
}

export interface Message {
  type: number;
  /** 1..16 bytes. */
  addrLength: number;
  originator: Uint8Array | null;
  hopLimit: number | null;
  hopCount: number | null;
  seqno: number | null;
  tlvs: Tlv[];
  addresses: Address[];
}

export interface Packet {
  version: 0;
  seqno: number | null;
  tlvs: Tlv[];
  messages: Message[];
}

/** Why bytes are not RFC 5444, and where (offset from the start of the packet). */
export interface Rfc5444Error {
  reason: string;
  offset: number;
}
