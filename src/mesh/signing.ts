/**
 * Integrity of control messages: RFC 7182 ICV TLVs carrying an Ed25519 signature, and the KEYS
 * TLV that carries a node's signing key on first contact.
 *
 * ICV TLV (message TLV type 5, type extension 1, RFC 7182 §12.1):
 *   crypto function (1) = 252 (experimental range: Ed25519) | hash function (1) = 0 (none: Ed25519
 *   hashes internally) | key-id length (1) = 0 | signature (64)
 *
 * What is signed: a canonical encoding of the message, so that neither the writer's layout
 * choices nor forwarding change it — the message with hop limit and hop count absent, the ICV TLV
 * removed, message TLVs and each address's TLVs sorted by (type, type extension, value), encoded
 * by wire.ts (deterministic for a given model). Forwarders may change hop limit and hop count.
 */
import { ed25519Impl } from './ed25519.js';
import { encodeMessage } from '../rfc5444/wire.js';
import type { Message, Tlv } from '../rfc5444/model.js';

export const TLV_ICV = 5;
export const ICV_EXT_GENERIC = 1;
export const ICV_CRYPTO_ED25519 = 252;
export const ICV_LENGTH = 3 + 64;
/** KEYS: the originator's Ed25519 public key (the SID derives from it). meshgw's own type. */
export const TLV_KEYS = 224;

function compareBytes(a: Uint8Array | null, b: Uint8Array | null): number {
  if (a === null || b === null) return (a === null ? 0 : 1) - (b === null ? 0 : 1);
  for (let i = 0; i < Math.min(a.length, b.length); i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
  return a.length - b.length;
}

const byTlv = (x: Tlv, y: Tlv): number => x.type - y.type || x.extType - y.extType || compareBytes(x.value, y.value);

/** The bytes an ICV signs (see the file comment). */
export function canonicalMessage(m: Message): Uint8Array {
  return encodeMessage({
    ...m,
    hopLimit: null,
    hopCount: null,
    tlvs: m.tlvs.filter((t) => !(t.type === TLV_ICV && t.extType === ICV_EXT_GENERIC)).sort(byTlv),
    addresses: m.addresses.map((a) => ({ ...a, tlvs: [...a.tlvs].sort(byTlv) })),
  });
}

export function icvValue(m: Message, ed25519Secret: Uint8Array): Uint8Array {
  const out = new Uint8Array(ICV_LENGTH);
  out[0] = ICV_CRYPTO_ED25519;
  out[1] = 0;
  out[2] = 0;
  out.set(ed25519Impl.sign(canonicalMessage(m), ed25519Secret), 3);
  return out;
}

/** Whether the message carries a valid ICV by `ed25519Public`. Never throws. */
export function verifyIcv(m: Message, ed25519Public: Uint8Array): boolean {
  const icv = m.tlvs.find((t) => t.type === TLV_ICV && t.extType === ICV_EXT_GENERIC);
  const v = icv?.value;
  if (!v || v.length !== ICV_LENGTH || v[0] !== ICV_CRYPTO_ED25519 || v[1] !== 0 || v[2] !== 0) return false;
  return ed25519Impl.verify(v.subarray(3), canonicalMessage(m), ed25519Public);
}
