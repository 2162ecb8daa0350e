/**
 * `CaptureLink` wraps any Link and records every frame in and out into a pcapng file that several
 * links may share (each adds its own interface). Like smoltcp's `pcap_writer.rs`: the wrapper is
 * the Link, so whatever sits above it cannot tell. The frames recorded are those that cross this
 * wrapper: outside a `FaultLink` it shows what the mesh sent and received, inside one what the
 * driver did. The file may start anew under the wrapper (`PcapngFile.reopen`, on SIGHUP): it
 * describes every interface again in the same order, so `interfaceId` stays valid.
 *
 * Link types (tcpdump.org LINKTYPE_ list), by the inner link's kind:
 * - 'kiss-serial', 'kiss-tcp': LINKTYPE_AX25_KISS (202): the KISS frame without FENDs, i.e. the
 *   type byte (port << 4 | 0, a data frame) then the data the TNC got or gave — the AX.25 UI
 *   frame with a callsign, the pad-count frame without (the inner link's `wrap(frame)` going
 *   out, the received frame's `wire` coming in). The port is the inner link's `kissPort` if it
 *   has one, else 0. Wireshark dissects it as `ax25_kiss`.
 * - 'udp': LINKTYPE_IPV4 (228): a synthesized IPv4 header (RFC 791, with its header checksum)
 *   and UDP header (RFC 768; checksum 0, "none", which IPv4 allows) between the real endpoints
 *   where the inner link tells them (`localEndpoint()`, `broadcastEndpoint()`), else 0.0.0.0 and
 *   255.255.255.255. Non-IPv4 addresses are written as 0.0.0.0. RFC 5444 on port 269 dissects
 *   as `packetbb`.
 * - 'lora-serial', 'sim': LINKTYPE_LORATAP (270), the documented link type for LoRa: a LoRaTap
 *   version 0 header (15 bytes, big-endian; github.com/eriknl/LoRaTap `loratap.h`) then the
 *   payload. Wireshark ≥ 3.0, including Debian bookworm's tshark 4.0, dissects it as `loratap`:
 *     version u8 = 0 | padding u8 | header length u16 = 15 | frequency u32 (Hz) |
 *     bandwidth u8 (125 kHz steps) | sf u8 | packet_rssi u8 | max_rssi u8 | current_rssi u8 |
 *     snr u8 | sync_word u8
 *   RSSI bytes are dBm + 139 (0..254; 255 = not available, as in the LoRaTap v1 header);
 *   snr is dB × 4 in two's complement. Frequency, bandwidth and SF come from the inner link's
 *   `loraParams` ({frequency, bandwidth, sf, syncWord?}) when it has them, else 0.
 * - anything else: LINKTYPE_USER1 (148), the frame as is.
 */
import { LinkWrapper } from './link-wrapper.js';
import type { Endpoint, Link, ReceivedFrame, SendOptions } from './link.js';
import { LinkType, type Direction, type PcapngFile } from './pcap.js';

/** What a LoRa link may expose for its LoRaTap headers. */
export interface LoraCaptureParams {
  frequency: number;
  /** Hz. */
  bandwidth: number;
  sf: number;
  syncWord?: number;
}

/** KISS data frame as LINKTYPE_AX25_KISS records it: type byte (port << 4), then the data. */
export function kissRecord(port: number, data: Uint8Array): Uint8Array {
  if (!Number.isInteger(port) || port < 0 || port > 15) throw new RangeError(`KISS port must be 0..15, got ${port}`);
  const out = new Uint8Array(1 + data.length);
  out[0] = port << 4;
  out.set(data, 1);
  return out;
}

/** Dotted-quad IPv4 (also ::ffff:a.b.c.d) as 4 bytes, or undefined. */
export function parseIpv4(address: string): Uint8Array | undefined {
  const m = /^(?:::ffff:)?(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/i.exec(address);
  if (!m) return undefined;
  const octets = m.slice(1).map(Number);
  return octets.every((o) => o <= 255) ? Uint8Array.from(octets) : undefined;
}

/** RFC 1071 Internet checksum of `bytes` (even length). */
function internetChecksum(bytes: Uint8Array): number {
  let sum = 0;
  for (let i = 0; i < bytes.length; i += 2) sum += ((bytes[i] ?? 0) << 8) | (bytes[i + 1] ?? 0);
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

/** A UDP datagram as LINKTYPE_IPV4 records it: IPv4 header (20 bytes), UDP header, payload. */
export function ipv4UdpRecord(src: Endpoint, dst: Endpoint, payload: Uint8Array): Uint8Array {
  const total = 28 + payload.length;
  if (total > 0xffff) throw new RangeError(`a UDP payload of ${payload.length} bytes does not fit in IPv4`);
  const out = new Uint8Array(total);
  const view = new DataView(out.buffer);
  out[0] = 0x45; // version 4, IHL 5 words
  view.setUint16(2, total);
  out[8] = 64; // TTL
  out[9] = 17; // UDP
  out.set(parseIpv4(src.address) ?? new Uint8Array(4), 12);
  out.set(parseIpv4(dst.address) ?? new Uint8Array(4), 16);
  view.setUint16(10, internetChecksum(out.subarray(0, 20)));
  view.setUint16(20, src.port);
  view.setUint16(22, dst.port);
  view.setUint16(24, 8 + payload.length);
  out.set(payload, 28);
  return out;
}

const LORATAP_HEADER = 15;
const RSSI_NA = 255;

function rssiByte(dbm: number | undefined): number {
  if (dbm === undefined || !Number.isFinite(dbm)) return RSSI_NA;
  return Math.min(254, Math.max(0, Math.round(dbm + 139)));
}

/** A LoRa frame as LINKTYPE_LORATAP records it: the LoRaTap v0 header, then the payload. */
export function loraTapRecord(params: LoraCaptureParams | undefined, rx: Pick<ReceivedFrame, 'rssiDbm' | 'snrDb'>, payload: Uint8Array): Uint8Array {
  const out = new Uint8Array(LORATAP_HEADER + payload.length);
  const view = new DataView(out.buffer);
  view.setUint16(2, LORATAP_HEADER);
  if (params) {
    view.setUint32(4, Math.max(0, Math.min(0xffffffff, Math.round(params.frequency))));
    out[8] = Math.min(255, Math.round(params.bandwidth / 125_000));
    out[9] = params.sf & 0xff;
    out[14] = (params.syncWord ?? 0) & 0xff;
  }
  out[10] = rssiByte(rx.rssiDbm);
  out[11] = RSSI_NA;
  out[12] = RSSI_NA;
  const snr = rx.snrDb === undefined || !Number.isFinite(rx.snrDb) ? 0 : Math.max(-128, Math.min(127, Math.round(rx.snrDb * 4)));
  view.setInt8(13, snr);
  out.set(payload, LORATAP_HEADER);
  return out;
}

/** The link type a capture uses for a link of this kind. */
export function captureLinkType(kind: string): number {
  switch (kind) {
    case 'kiss-serial':
    case 'kiss-tcp':
      return LinkType.AX25_KISS;
    case 'udp':
      return LinkType.IPV4;
    case 'lora-serial':
    case 'sim':
      return LinkType.LORATAP;
    default:
      return LinkType.USER1;
  }
}

/** Optional extras a driver may expose for its captures. */
interface CaptureHints {
  kissPort?: unknown;
  wrap?: unknown;
  loraParams?: unknown;
  localEndpoint?: unknown;
  broadcastEndpoint?: unknown;
}

const ANY: Endpoint = { address: '0.0.0.0', port: 0 };

export class CaptureLink extends LinkWrapper {
  readonly interfaceId: number;
  /** Frames that could not be encoded for the capture (e.g. a bad timestamp). */
  recordErrors = 0;
  private readonly linkType: number;
  private readonly hints: CaptureHints;

  constructor(
    inner: Link,
    private readonly file: PcapngFile,
    private readonly now: () => number = Date.now,
  ) {
    super(inner);
    this.linkType = captureLinkType(inner.kind);
    this.hints = inner as unknown as CaptureHints;
    this.interfaceId = file.addInterface({ linkType: this.linkType, name: inner.name });
    inner.on('frame', (frame) => this.record('in', frame.data, frame.at, frame, undefined));
  }

  /** Passes the frame on, and records it once the inner link has taken it (not if it threw). */
  override send(frame: Uint8Array, options?: SendOptions): boolean {
    const more = this.inner.send(frame, options);
    this.record('out', frame, this.now(), undefined, options);
    return more;
  }

  /** Records one frame; a frame that cannot be recorded is counted, never thrown at the link. */
  private record(direction: Direction, data: Uint8Array, at: number, rx: ReceivedFrame | undefined, options: SendOptions | undefined): void {
    try {
      this.file.writePacket({ interfaceId: this.interfaceId, timestampMs: at, data: this.encode(direction, data, rx, options), direction });
    } catch {
      this.recordErrors++;
    }
  }

  private encode(direction: Direction, data: Uint8Array, rx: ReceivedFrame | undefined, options: SendOptions | undefined): Uint8Array {
    switch (this.linkType) {
      case LinkType.AX25_KISS: {
        const port = this.hints.kissPort;
        const wrap = this.hints.wrap;
        const tnc = direction === 'in' ? (rx?.wire ?? data) : typeof wrap === 'function' ? ((wrap as (d: Uint8Array) => Uint8Array).call(this.inner, data)) : data;
        return kissRecord(typeof port === 'number' && Number.isInteger(port) && port >= 0 && port <= 15 ? port : 0, tnc);
      }
      case LinkType.IPV4: {
        const local = this.endpoint('localEndpoint');
        if (direction === 'in') return ipv4UdpRecord(rx?.from ?? ANY, local ?? ANY, data);
        const to = options?.to ?? this.endpoint('broadcastEndpoint') ?? { address: '255.255.255.255', port: local?.port ?? 0 };
        return ipv4UdpRecord(local ?? ANY, to, data);
      }
      case LinkType.LORATAP:
        return loraTapRecord(this.captureLoraParams(), rx ?? {}, data);
      default:
        return data;
    }
  }

  private endpoint(method: 'localEndpoint' | 'broadcastEndpoint'): Endpoint | undefined {
    const fn = this.hints[method];
    if (typeof fn !== 'function') return undefined;
    const e = (fn as () => unknown).call(this.inner) as Partial<Endpoint> | undefined;
    return e && typeof e.address === 'string' && typeof e.port === 'number' ? { address: e.address, port: e.port } : undefined;
  }

  private captureLoraParams(): LoraCaptureParams | undefined {
    const p = this.hints.loraParams as Partial<LoraCaptureParams> | undefined;
    if (!p || typeof p.frequency !== 'number' || typeof p.bandwidth !== 'number' || typeof p.sf !== 'number') return undefined;
    return { frequency: p.frequency, bandwidth: p.bandwidth, sf: p.sf, ...(typeof p.syncWord === 'number' ? { syncWord: p.syncWord } : {}) };
  }
}
