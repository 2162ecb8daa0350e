/**
 * The RFC 5444 wire codec, sans-IO: `encodePacket` / `encodeMessage` / `encodePacketHead` /
 * `encodeTlvBlock` turn the model of model.ts into compact bytes (wire-encode.ts says which
 * encodings it chooses), and `decodePacket` turns bytes back into the model or a typed error
 * with a byte offset (wire-decode.ts lists the reasons). The decoder never throws on input and
 * works in time linear in the input; decode → encode → decode gives the same model.
 */
export {
  encodePacket,
  encodePacketHead,
  encodeMessage,
  encodeTlvBlock,
  Rfc5444EncodeError,
} from './wire-encode.js';
export { decodePacket, MAX_DECODED_ITEMS, type DecodeResult } from './wire-decode.js';
