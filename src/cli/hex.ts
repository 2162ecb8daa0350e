import { UsageError } from './usage-error.js';

/** Parses hex text, ignoring white space, colons and a leading 0x; throws UsageError if malformed. */
export function parseHex(text: string): Uint8Array {
  const clean = text.replace(/^0x/i, '').replace(/[\s:]/g, '');
  if (clean.length % 2 !== 0 || /[^0-9a-fA-F]/.test(clean)) {
    throw new UsageError('input is not hex: expected pairs of hex digits like "c0 00 41 c0"');
  }
  return Uint8Array.from(Buffer.from(clean, 'hex'));
}

export function toHex(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex');
}
