/**
 * slip-serial: raw datagrams framed in SLIP (RFC 1055) on a serial device — for modems that carry
 * datagrams and need no commands. No flow control or telemetry: the pacer above paces by the
 * airtime model (a fixed bit rate when given).
 */
import { SlipDecoder, encodeSlip } from '../firmware-protocol/slip.js';
import { FixedRateAirtimeModel } from '../src/link/airtime/fixed-rate.js';
import type { BackoffOptions } from '../src/link/backoff.js';
import { serialOpener } from '../src/link/byte-stream.js';
import type { QueuedFrame } from '../src/link/link.js';
import { StreamLink } from './stream-link.js';

export interface SlipSerialOptions {
  name: string;
  path: string;
  baudRate?: number;
  /** Largest datagram; default 1006 (RFC 1055's suggested SLIP MTU). */
  mtu?: number;
  /** The radio's bit rate, for airtime; default none (uncapped). */
  bitRate?: number;
  queueCap?: number;
  backoff?: BackoffOptions;
  log?: (line: string) => void;
}

export class SlipSerialLink extends StreamLink {
  private decoder: SlipDecoder;

  constructor(options: SlipSerialOptions) {
    const mtu = options.mtu ?? 1006;
    super({
      name: options.name,
      kind: 'slip-serial',
      mtu,
      airtime: new FixedRateAirtimeModel({ maxBytes: mtu, ...(options.bitRate !== undefined ? { bitRate: options.bitRate } : {}) }),
      ...(options.bitRate !== undefined ? { bitRate: options.bitRate } : {}),
      opener: serialOpener(options.path, options.baudRate ?? 115_200),
      ...(options.queueCap !== undefined ? { queueCap: options.queueCap } : {}),
      ...(options.backoff ? { backoff: options.backoff } : {}),
      ...(options.log ? { log: options.log } : {}),
    });
    this.decoder = new SlipDecoder({ maxFrame: mtu });
  }

  protected resetConnection(): void {
    this.decoder = new SlipDecoder({ maxFrame: this.mtu });
  }

  protected encodeFrame(frame: QueuedFrame): Uint8Array {
    return encodeSlip(frame.data);
  }

  protected onBytes(bytes: Uint8Array): void {
    for (const e of this.decoder.push(bytes)) {
      if ('error' in e) this.counters.decodeErrors++;
      else this.deliver({ data: e.frame, at: Date.now() });
    }
  }
}
