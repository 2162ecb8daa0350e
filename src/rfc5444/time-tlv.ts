/**
 * Time values in one byte (RFC 5497 §5), as INTERVAL_TIME and VALIDITY_TIME TLVs carry them:
 * the high five bits b and low three bits a stand for (1 + a/8) · 2^b · C, with C = 1/1024 s.
 * Encoding rounds up, so a receiver never sees a shorter validity than the sender meant.
 */
const C_MS = 1000 / 1024;

export function decodeTime(byte: number): number {
  const b = byte >> 3;
  const a = byte & 7;
  return (1 + a / 8) * 2 ** b * C_MS;
}

/** The smallest code whose time is ≥ `ms` (clamped to the representable range). */
export function encodeTime(ms: number): number {
  if (!(ms > C_MS)) return 0;
  let b = Math.floor(Math.log2(ms / C_MS));
  let a = Math.ceil(8 * (ms / (C_MS * 2 ** b) - 1) - 1e-9);
  if (a >= 8) {
    b += 1;
    a = 0;
  }
  if (b > 31) return 0xff;
  return (b << 3) | a;
}
