/** What the links and the daemon's checks need to know of an address. */
import { isIPv4, isIPv6 } from 'node:net';

/**
 * Whether `host` only reaches this machine: 127/8, `::1` (any spelling, bracketed or not), an
 * IPv4-mapped 127 address, or `localhost`. Every other address or name counts as reachable from
 * elsewhere (a listener there needs a token).
 */
export function isLoopbackHost(host: string): boolean {
  let h = host.trim().toLowerCase();
  if (h.startsWith('[') && h.endsWith(']')) h = h.slice(1, -1);
  if (h === 'localhost') return true;
  if (h.startsWith('::ffff:')) h = h.slice('::ffff:'.length);
  if (isIPv4(h)) return h.startsWith('127.');
  if (isIPv6(h)) return h === '::1' || /^(0{0,4}:){2,7}0{0,3}1$/.test(h);
  return false;
}
