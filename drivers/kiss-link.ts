/**
 * A KISS TNC link, over a serial device (kiss-serial.ts) or TCP (kiss-tcp.ts).
 *
 * On every (re)connect it sends the CSMA parameters from config (TXDELAY, P, SLOTTIME, TXTAIL,
 * FULLDUPLEX) to its KISS port. Frames go as KISS DATA frames on that port, in one of two
 * encapsulations, because TNCs reject data frames shorter than an AX.25 header (Direwolf: under
 * 15 bytes):
 *
 * - `ax25` (when a callsign is configured): each frame is the information field of an AX.25 UI
 *   frame from the operator's callsign to `destination` (default MESH), PID 0xF0 — the station
 *   identifies itself in every frame, as the amateur bands require. Always ≥ 16 bytes.
 * - `raw`: one pad-count byte, the frame, then that many zero bytes so the whole is at least
 *   15 bytes: `[n] frame 00×n`. Costs one byte per frame; decodes unambiguously.
 *
 * Received frames in the other encapsulation, or other stations' AX.25 traffic, are counted
 * (`drops['not-mesh']`) and dropped.
 */
import { KissCommand, KissDecoder, encodeKissData } from '../firmware-protocol/kiss.js';
import { AX25_DEFAULT_MAX_BYTES, Ax25AirtimeModel, type Ax25Modem } from '../src/link/airtime/afsk.js';
import { withOverhead } from '../src/link/airtime/overhead.js';
import { AX25_UI_HEADER, decodeAx25Ui, encodeAx25Ui, parseAx25Address, type Ax25Address } from '../src/link/ax25.js';
import type { BackoffOptions } from '../src/link/backoff.js';
import type { ByteStream, StreamOpener } from '../src/link/byte-stream.js';
import { kissCsmaConfig, kissCsmaFramesFor, type KissCsmaConfig } from '../src/link/csma.js';
import { countDrop, type QueuedFrame } from '../src/link/link.js';
import { StreamLink } from './stream-link.js';

/** Room for digipeater addresses in frames we receive. */
const DECODER_SLACK = 64;

/** Direwolf rejects KISS data frames shorter than this. */
export const TNC_MIN_FRAME = 15;

export interface KissLinkOptions {
  name: string;
  kind: 'kiss-serial' | 'kiss-tcp';
  opener: StreamOpener;
  /** KISS port 0–15 on the TNC; default 0. */
  kissPort?: number;
  /**
   * CSMA parameters to send the TNC on every connect: only those given (the TNC keeps its own
   * settings for the rest). The airtime model assumes the defaults for TXDELAY and TXTAIL where
   * none are given.
   */
  csma?: Partial<KissCsmaConfig>;
  modem?: Ax25Modem;
  /** Operator callsign with SSID (e.g. "N0CALL-7"): turns on AX.25 UI encapsulation. */
  callsign?: string;
  /** Destination of the UI frames; default "MESH". */
  destination?: string;
  /** Largest mesh frame carried; default 256 (AX.25's default information field, N1). */
  mtu?: number;
  queueCap?: number;
  backoff?: BackoffOptions;
  log?: (line: string) => void;
}

export class KissLink extends StreamLink {
  readonly kissPort: number;
  readonly encapsulation: 'ax25' | 'raw';
  private readonly csmaSet: Partial<KissCsmaConfig>;
  private readonly source: Ax25Address | undefined;
  private readonly destination: Ax25Address;
  /** Largest TNC data frame accepted: ours, plus room for other stations' longer headers. */
  private readonly maxKissData: number;
  private decoder: KissDecoder;

  constructor(options: KissLinkOptions) {
    const kissPort = options.kissPort ?? 0;
    if (!Number.isInteger(kissPort) || kissPort < 0 || kissPort > 15) {
      throw new RangeError(`${options.name}: KISS port must be 0..15, got ${kissPort}`);
    }
    const csma = kissCsmaConfig(options.csma ?? {});
    const source = options.callsign === undefined ? undefined : parseAx25Address(options.callsign);
    const overhead = source ? AX25_UI_HEADER : 1;
    const modem = options.modem ?? 'afsk1200';
    const mtu = options.mtu ?? 256;
    // Raw frames are not bound by AX.25's address rules, so the model admits the MTU plus overhead.
    const model = new Ax25AirtimeModel({
      modem,
      txDelayMs: csma.txDelayMs,
      txTailMs: csma.txTailMs,
      maxBytes: Math.max(AX25_DEFAULT_MAX_BYTES, mtu + overhead),
    });
    super({
      name: options.name,
      kind: options.kind,
      mtu,
      airtime: withOverhead(model, overhead),
      bitRate: model.baud,
      opener: options.opener,
      ...(options.queueCap !== undefined ? { queueCap: options.queueCap } : {}),
      ...(options.backoff ? { backoff: options.backoff } : {}),
      ...(options.log ? { log: options.log } : {}),
    });
    this.kissPort = kissPort;
    this.csmaSet = { ...(options.csma ?? {}) };
    this.source = source;
    this.encapsulation = source ? 'ax25' : 'raw';
    this.destination = parseAx25Address(options.destination ?? 'MESH');
    this.maxKissData = mtu + overhead + DECODER_SLACK;
    this.decoder = new KissDecoder({ maxFrame: this.maxKissData });
  }

  protected override async handshake(stream: ByteStream): Promise<void> {
    for (const frame of kissCsmaFramesFor(this.csmaSet, this.kissPort)) stream.write(frame);
  }

  protected resetConnection(): void {
    this.decoder = new KissDecoder({ maxFrame: this.maxKissData });
  }

  protected encodeFrame(frame: QueuedFrame): Uint8Array {
    return encodeKissData(this.wrap(frame.data), this.kissPort);
  }

  /** The TNC's data for one mesh frame. */
  wrap(data: Uint8Array): Uint8Array {
    if (this.source) return encodeAx25Ui(this.destination, this.source, data);
    const pad = Math.max(0, TNC_MIN_FRAME - 1 - data.length);
    const out = new Uint8Array(1 + data.length + pad);
    out[0] = pad;
    out.set(data, 1);
    return out;
  }

  /** The mesh frame in the TNC's data, or undefined for anything that is not one of ours. */
  unwrap(data: Uint8Array): Uint8Array | undefined {
    if (this.source) {
      const ui = decodeAx25Ui(data);
      if (!ui.ok) return undefined;
      if (ui.destination.callsign !== this.destination.callsign || ui.destination.ssid !== this.destination.ssid) return undefined;
      return ui.info;
    }
    const pad = data[0];
    if (pad === undefined || pad > TNC_MIN_FRAME || 1 + pad > data.length) return undefined;
    for (let i = data.length - pad; i < data.length; i++) if (data[i] !== 0) return undefined;
    return data.subarray(1, data.length - pad);
  }

  protected onBytes(bytes: Uint8Array): void {
    for (const e of this.decoder.push(bytes)) {
      if ('error' in e) {
        this.counters.decodeErrors++;
        continue;
      }
      const f = e.frame;
      if (f.port !== this.kissPort || f.command !== KissCommand.DATA) continue;
      const data = this.unwrap(f.data);
      if (!data) {
        countDrop(this.counters, 'not-mesh');
        continue;
      }
      this.deliver({ data: data.slice(), at: Date.now(), wire: f.data.slice() });
    }
  }
}
