/**
 * One name for a node, for people: its SID in hex; where a SID is taken, any unique prefix of
 * at least 8 hex digits (like git's abbreviated hashes), resolved against the SIDs the daemon
 * knows (its neighbours and routes).
 *
 * - fewer than 8 hex digits, or not hex: a UsageError (exit 2);
 * - a prefix that matches several known SIDs: a UsageError listing every candidate;
 * - a prefix that matches none: a SidNotFoundError (exit 1: the network, not the command line);
 * - all 64 digits: taken as is, known or not.
 */
import { UsageError } from './usage-error.js';

export const MIN_SID_PREFIX = 8;
export const SID_HEX_DIGITS = 64;
/** Digits shown in tables and ping lines (more when needed to stay unique among those shown). */
export const SHORT_SID_DIGITS = 12;

export class SidNotFoundError extends Error {
  override readonly name = 'SidNotFoundError';
}

export function hexOfSid(sid: Uint8Array | string): string {
  return typeof sid === 'string' ? sid.toLowerCase() : Buffer.from(sid.buffer, sid.byteOffset, sid.byteLength).toString('hex');
}

/** Validates a SID or a prefix as typed: lowercase hex, 8 to 64 digits. Throws UsageError. */
export function parseSidPrefix(text: string): string {
  const clean = text.trim().toLowerCase().replace(/…$/, '');
  if (!/^[0-9a-f]*$/.test(clean) || clean.length === 0) {
    throw new UsageError(`a SID is hex digits (a unique prefix of at least ${MIN_SID_PREFIX}), got '${text}'`);
  }
  if (clean.length < MIN_SID_PREFIX) {
    throw new UsageError(`SID prefix '${text}' is too short: give at least ${MIN_SID_PREFIX} hex digits`);
  }
  if (clean.length > SID_HEX_DIGITS) throw new UsageError(`a SID is ${SID_HEX_DIGITS} hex digits, got ${clean.length}`);
  return clean;
}

/** Resolves a SID or prefix against the known SIDs (duplicates are fine); returns 64 hex digits. */
export function resolveSidPrefix(text: string, known: Iterable<Uint8Array | string>): string {
  const prefix = parseSidPrefix(text);
  if (prefix.length === SID_HEX_DIGITS) return prefix;
  const matches = new Set<string>();
  for (const k of known) {
    const hex = hexOfSid(k);
    if (hex.startsWith(prefix)) matches.add(hex);
  }
  const list = [...matches].sort();
  if (list.length === 1) return list[0]!;
  if (list.length === 0) {
    throw new SidNotFoundError(`no known node has a SID starting with ${prefix} (not a neighbour, no route): give the full SID`);
  }
  throw new UsageError(`SID prefix ${prefix} is ambiguous: it matches ${list.join(', ')}`);
}

/**
 * The shortest length ≥ `min` at which every one of `sids` is told apart from every other, so a
 * table can show short SIDs that stay unique prefixes.
 */
export function uniquePrefixLength(sids: Iterable<Uint8Array | string>, min = SHORT_SID_DIGITS): number {
  const all = [...new Set([...sids].map(hexOfSid))].sort();
  let n = Math.min(min, SID_HEX_DIGITS);
  for (let i = 1; i < all.length; i++) {
    const a = all[i - 1]!;
    const b = all[i]!;
    let common = 0;
    while (common < a.length && a[common] === b[common]) common++;
    n = Math.max(n, Math.min(common + 1, SID_HEX_DIGITS));
  }
  return n;
}

/** A SID for people: the first `digits` hex digits and '…', or all 64. */
export function shortSid(sid: Uint8Array | string, digits = SHORT_SID_DIGITS): string {
  const hex = hexOfSid(sid);
  return digits >= hex.length ? hex : `${hex.slice(0, digits)}…`;
}
