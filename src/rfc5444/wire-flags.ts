/**
 * The flag bits of RFC 5444 §5, shared by the encoder (wire-encode.ts) and the decoder
 * (wire-decode.ts). The RFC numbers bits from the most significant: "bit 0" of an octet is 0x80,
 * and of the 4-bit packet and message flag fields it is 0x08 of the nibble.
 */

/** <pkt-flags> (low nibble of the first octet; the high nibble is <version>, which must be 0). */
export const PKT_HAS_SEQNUM = 0x08;
export const PKT_HAS_TLV = 0x04;

/** <msg-flags> (high nibble of the second message octet; the low nibble is address length − 1). */
export const MSG_HAS_ORIG = 0x80;
export const MSG_HAS_HOP_LIMIT = 0x40;
export const MSG_HAS_HOP_COUNT = 0x20;
export const MSG_HAS_SEQNUM = 0x10;

/** <tlv-flags>. Bits 6–7 are reserved. */
export const TLV_HAS_TYPE_EXT = 0x80;
export const TLV_HAS_SINGLE_INDEX = 0x40;
export const TLV_HAS_MULTI_INDEX = 0x20;
export const TLV_HAS_VALUE = 0x10;
export const TLV_HAS_EXT_LEN = 0x08;
export const TLV_IS_MULTIVALUE = 0x04;

/** <addr-flags>. Bits 5–7 are reserved. */
export const ADDR_HAS_HEAD = 0x80;
export const ADDR_HAS_FULL_TAIL = 0x40;
export const ADDR_HAS_ZERO_TAIL = 0x20;
export const ADDR_HAS_SINGLE_PRELEN = 0x10;
export const ADDR_HAS_MULTI_PRELEN = 0x08;

/** Largest value of a 16-bit length field: a message, a TLV block, a TLV value. */
export const MAX_U16 = 0xffff;
