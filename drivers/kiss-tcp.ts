/** kiss-tcp: a KISS TNC over TCP (Direwolf's KISS port 8001, other soft TNCs). */
import { tcpOpener } from '../src/link/byte-stream.js';
import { KissLink, type KissLinkOptions } from './kiss-link.js';

export interface KissTcpOptions extends Omit<KissLinkOptions, 'kind' | 'opener'> {
  host?: string;
  /** Default 8001, Direwolf's KISS TCP port. */
  port?: number;
}

export function kissTcpLink(options: KissTcpOptions): KissLink {
  return new KissLink({ ...options, kind: 'kiss-tcp', opener: tcpOpener(options.host ?? '127.0.0.1', options.port ?? 8001) });
}
