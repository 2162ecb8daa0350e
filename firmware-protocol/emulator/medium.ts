/**
 * The simulated radio "ether" shared by modem emulators: UDP datagrams on one host (loopback by
 * default). A medium is a block of SLOTS consecutive UDP ports starting at its base port; each
 * emulator binds the first free port of the block and sends every transmission to all the
 * others. No hub process, nothing to start first, and an emulator that exits simply leaves.
 *
 * Datagram (big-endian):
 *
 *    0       4       8      12   13   14      18            26
 *   +-------+-------+-------+----+----+-------+-------------+-------------------+
 *   | "MGE2"| freq  |  bw   | sf | cr | air µs| start (f64) | frame bytes ...   |
 *   +-------+-------+-------+----+----+-------+-------------+-------------------+
 *
 * `start` is the transmission's start in the radio time every emulator on the host shares
 * (wall-clock epoch × time scale): emulators on one medium must run at the same --time-scale.
 */
import { createSocket, type Socket } from 'node:dgram';
import type { AirFrame } from './modem.js';

export const MEDIUM_SLOTS = 32;
export const DEFAULT_MEDIUM = { host: '127.0.0.1', port: 47_100 } as const;

const MAGIC = [0x4d, 0x47, 0x45, 0x32]; // "MGE2"
const HEADER = 26;

export function encodeAirFrame(f: AirFrame): Uint8Array {
  const out = new Uint8Array(HEADER + f.data.length);
  const view = new DataView(out.buffer);
  out.set(MAGIC, 0);
  view.setUint32(4, f.frequency);
  view.setUint32(8, f.bandwidth);
  out[12] = f.sf;
  out[13] = f.cr;
  view.setUint32(14, Math.min(0xffffffff, Math.round(f.airtimeMs * 1000)));
  view.setFloat64(18, f.start);
  out.set(f.data, HEADER);
  return out;
}

/** Decodes a medium datagram; undefined for anything that is not one (never throws). */
export function decodeAirFrame(bytes: Uint8Array): AirFrame | undefined {
  if (bytes.length < HEADER || MAGIC.some((b, i) => bytes[i] !== b)) return undefined;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return {
    frequency: view.getUint32(4),
    bandwidth: view.getUint32(8),
    sf: bytes[12]!,
    cr: bytes[13]!,
    airtimeMs: view.getUint32(14) / 1000,
    start: view.getFloat64(18),
    data: bytes.slice(HEADER),
  };
}

/** Parses "HOST:PORT" (or just "PORT"). */
export function parseMediumAddress(text: string): { host: string; port: number } {
  const m = /^(?:(.+):)?(\d+)$/.exec(text.trim());
  const port = m ? Number(m[2]) : NaN;
  if (!m || !Number.isInteger(port) || port < 1 || port + MEDIUM_SLOTS - 1 > 65_535) {
    throw new RangeError(`medium must be HOST:PORT with PORT from 1 to ${65_536 - MEDIUM_SLOTS}, got '${text}'`);
  }
  return { host: m[1] ?? DEFAULT_MEDIUM.host, port };
}

export class UdpMedium {
  private constructor(
    private readonly socket: Socket,
    readonly host: string,
    readonly basePort: number,
    /** The port this member bound, within the block. */
    readonly port: number,
  ) {}

  /** Joins the medium at `host:basePort`, binding the first free slot. */
  static async join(
    address: { host: string; port: number },
    onFrame: (frame: AirFrame) => void,
  ): Promise<UdpMedium> {
    for (let slot = 0; slot < MEDIUM_SLOTS; slot++) {
      const port = address.port + slot;
      const socket = createSocket({ type: 'udp4' });
      const bound = await new Promise<boolean>((resolve, reject) => {
        socket.once('error', (err: NodeJS.ErrnoException) => {
          if (err.code === 'EADDRINUSE') resolve(false);
          else reject(new Error(`cannot bind the medium at ${address.host}:${port}: ${err.message}`));
        });
        socket.bind(port, address.host, () => resolve(true));
      });
      if (!bound) {
        socket.close();
        continue;
      }
      socket.removeAllListeners('error');
      // Errors after binding (e.g. ICMP reports) are not fatal to a simulated radio.
      socket.on('error', () => undefined);
      socket.on('message', (msg) => {
        const frame = decodeAirFrame(new Uint8Array(msg.buffer, msg.byteOffset, msg.byteLength));
        if (frame) onFrame(frame);
      });
      return new UdpMedium(socket, address.host, address.port, port);
    }
    throw new Error(
      `the medium at ${address.host}:${address.port} is full: all ${MEDIUM_SLOTS} ports up to ${address.port + MEDIUM_SLOTS - 1} are in use`,
    );
  }

  /** Puts a transmission on the air: one datagram to every other slot of the block. */
  transmit(frame: AirFrame): void {
    const bytes = encodeAirFrame(frame);
    for (let slot = 0; slot < MEDIUM_SLOTS; slot++) {
      const port = this.basePort + slot;
      if (port !== this.port) this.socket.send(bytes, port, this.host);
    }
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.socket.close(() => resolve()));
  }
}
