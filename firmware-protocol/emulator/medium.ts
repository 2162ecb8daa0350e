/**
 * The simulated radio "ether" shared by modem emulators: UDP datagrams on one host (loopback by
 * default). A medium is a block of SLOTS consecutive UDP ports starting at its base port; each
 * emulator binds the first free port of the block and sends every transmission to all the
 * others. No hub process, nothing to start first, and an emulator that exits simply leaves.
 *
 * Datagram (big-endian):
 *
 *    0       4       8      12   13   14            22            30            38
 *   +-------+-------+-------+----+----+-------------+-------------+-------------+----------------+
 *   | "MGE3"| freq  |  bw   | sf | cr | start (f64) |  air (f64)  | scale (f64) | packet bytes...|
 *   +-------+-------+-------+----+----+-------------+-------------+-------------+----------------+
 *
 * The medium runs on the wall clock, which every emulator on the host shares: `start` is when the
 * transmission began, as ms since the Unix epoch, and `air` how long it occupies the channel, in
 * wall-clock ms. Each emulator's radio time is the wall clock × its own --time-scale, so one
 * converts on the way out (radio ms ÷ scale) and the other on the way in (× its scale):
 * emulators at different scales agree on when the channel is busy, hence on collisions, half
 * duplex and carrier sense, while each counts airtime, locks and CSMA slots in its own radio
 * time. (A packet's radio airtime therefore reads differently at each end: at scale 10 a 100 ms
 * packet lasts 10 ms of wall clock, which a receiver at scale 1 sees as 10 ms.) `scale` is the
 * sender's, for diagnostics.
 */
import { createSocket, type Socket } from 'node:dgram';
import type { AirFrame } from './modem.js';

export const MEDIUM_SLOTS = 32;
export const DEFAULT_MEDIUM = { host: '127.0.0.1', port: 47_100 } as const;

const MAGIC = [0x4d, 0x47, 0x45, 0x33]; // "MGE3"
/** The previous format's magic ("MGE2", radio time shared by all): recognised only to say so. */
const MAGIC_V2 = [0x4d, 0x47, 0x45, 0x32];
const HEADER = 38;

/** A transmission `f` (in the sender's radio time, `timeScale` × wall clock) as a datagram. */
export function encodeAirFrame(f: AirFrame, timeScale: number): Uint8Array {
  const out = new Uint8Array(HEADER + f.data.length);
  const view = new DataView(out.buffer);
  out.set(MAGIC, 0);
  view.setUint32(4, f.frequency);
  view.setUint32(8, f.bandwidth);
  out[12] = f.sf;
  out[13] = f.cr;
  view.setFloat64(14, f.start / timeScale);
  view.setFloat64(22, f.airtimeMs / timeScale);
  view.setFloat64(30, timeScale);
  out.set(f.data, HEADER);
  return out;
}

export type DecodedAirFrame = AirFrame & { senderScale: number };

/**
 * Decodes a medium datagram into the receiver's radio time (`timeScale` × wall clock);
 * undefined for anything that is not one, 'old-format' for an emulator of the previous format
 * (never throws).
 */
export function decodeAirFrame(bytes: Uint8Array, timeScale: number): DecodedAirFrame | 'old-format' | undefined {
  if (bytes.length >= 4 && MAGIC_V2.every((b, i) => bytes[i] === b)) return 'old-format';
  if (bytes.length < HEADER || MAGIC.some((b, i) => bytes[i] !== b)) return undefined;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const start = view.getFloat64(14);
  const air = view.getFloat64(22);
  const senderScale = view.getFloat64(30);
  // A wall-clock start from 1970 to the year 5138 and at most an hour on air: anything else is
  // not a transmission (and could not be scaled to radio time without overflowing).
  if (!(start >= 0 && start < 1e14) || !(air >= 0 && air < 3_600_000) || !(senderScale > 0 && Number.isFinite(senderScale))) return undefined;
  return {
    frequency: view.getUint32(4),
    bandwidth: view.getUint32(8),
    sf: bytes[12]!,
    cr: bytes[13]!,
    start: start * timeScale,
    airtimeMs: air * timeScale,
    senderScale,
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
    readonly timeScale: number,
  ) {}

  /**
   * Joins the medium at `host:basePort`, binding the first free slot. Frames arrive and leave in
   * this member's radio time (`timeScale` × wall clock). `onOldFormat` hears of datagrams from
   * an emulator of the previous format, which are ignored.
   */
  static async join(
    address: { host: string; port: number },
    onFrame: (frame: DecodedAirFrame) => void,
    options: { timeScale?: number; onOldFormat?: () => void } = {},
  ): Promise<UdpMedium> {
    const timeScale = options.timeScale ?? 1;
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
        const frame = decodeAirFrame(new Uint8Array(msg.buffer, msg.byteOffset, msg.byteLength), timeScale);
        if (frame === 'old-format') options.onOldFormat?.();
        else if (frame) onFrame(frame);
      });
      return new UdpMedium(socket, address.host, address.port, port, timeScale);
    }
    throw new Error(
      `the medium at ${address.host}:${address.port} is full: all ${MEDIUM_SLOTS} ports up to ${address.port + MEDIUM_SLOTS - 1} are in use`,
    );
  }

  /** Puts a transmission on the air: one datagram to every other slot of the block. */
  transmit(frame: AirFrame): void {
    const bytes = encodeAirFrame(frame, this.timeScale);
    for (let slot = 0; slot < MEDIUM_SLOTS; slot++) {
      const port = this.basePort + slot;
      if (port !== this.port) this.socket.send(bytes, port, this.host);
    }
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.socket.close(() => resolve()));
  }
}
