/** kiss-serial: a KISS TNC on a serial device (hardware TNC, or a soft TNC's pty). */
import { serialOpener } from '../src/link/byte-stream.js';
import { KissLink, type KissLinkOptions } from './kiss-link.js';

export interface KissSerialOptions extends Omit<KissLinkOptions, 'kind' | 'opener'> {
  path: string;
  baudRate?: number;
}

export function kissSerialLink(options: KissSerialOptions): KissLink {
  return new KissLink({ ...options, kind: 'kiss-serial', opener: serialOpener(options.path, options.baudRate ?? 9600) });
}
