/**
 * The daemon's configuration as data: what the command line's flags produce (and, later, a
 * config file). Plain values only, already parsed and range-checked by whoever produced them;
 * `validateConfig` checks what spans several values and throws ConfigError naming the problem.
 */
import type { KissCsmaConfig } from '../link/csma.js';
import { airtimeLimits, type AirtimeCap } from '../link/airtime-limits.js';
import { loraMaxPayloadWithin, type LoraParams } from '../link/airtime/lora.js';
import { bandRules, RegionError, type RegionName } from '../link/airtime/regions.js';
import { parseAx25Address } from '../link/ax25.js';
import { isLoopbackHost } from '../link/address.js';

export interface LoraRadio {
  frequency: number;
  bandwidth: number;
  sf: number;
  cr: number;
  txPower: number;
}

/** What both ends of a site-to-site TCP link are configured with. */
export interface TcpSpec {
  name?: string;
  host: string;
  port: number;
  token?: string;
  mtu?: number;
  framesPerSecond?: number;
  bytesPerSecond?: number;
}

export type InterfaceSpec =
  /**
   * `minFirmware`: the oldest modem firmware accepted, [major, minor] (an older one is refused at
   * open, and retried). `mtu`: largest frame, 1..508, default 507 (RNode splits frames of 255
   * bytes or more over two LoRa packets; 254 keeps each frame in one).
   */
  | { kind: 'lora'; name?: string; path: string; baudRate?: number; radio: LoraRadio; minFirmware?: [number, number]; mtu?: number }
  /** `csma`: only the TNC parameters to set (none by default: the TNC keeps its own). */
  | { kind: 'kiss'; name?: string; path: string; baudRate?: number; callsign?: string; csma?: Partial<KissCsmaConfig> }
  | { kind: 'slip'; name?: string; path: string; baudRate?: number }
  | { kind: 'kiss-tcp'; name?: string; host: string; port: number; callsign?: string; csma?: Partial<KissCsmaConfig> }
  /**
   * `peers`: static unicast peers (for links without broadcast, or two daemons on one host).
   * `mtu`: largest datagram, default 1200 (safe on any IPv6 path); up to 65,507.
   */
  | { kind: 'udp'; name?: string; interface?: string; address?: string; port: number; peers?: Array<{ address: string; port: number }>; mtu?: number }
  /**
   * A bridge to other sites through an MQTT broker (drivers/mqtt.ts). `url`:
   * mqtt[s]://[user[:pass]@]host[:port][/prefix]; credentials and TLS material as values (the
   * config file may read them from files or the environment). Rates: the outgoing caps.
   */
  | {
      kind: 'mqtt';
      name?: string;
      url: string;
      mesh?: string;
      username?: string;
      password?: string;
      ca?: string;
      cert?: string;
      key?: string;
      mtu?: number;
      framesPerSecond?: number;
      bytesPerSecond?: number;
      /** What each other gateway may send us (per sender topic); four senders' worth for all together. */
      inFramesPerSecond?: number;
      inBytesPerSecond?: number;
    }
  /** A direct TCP link between two sites (drivers/tcp.ts): one end listens, the other connects; `token` shared. */
  | ({ kind: 'tcp-listen' } & TcpSpec)
  | ({ kind: 'tcp-connect' } & TcpSpec)
  /** A simulated radio with a simulated neighbour node on it. */
  | { kind: 'sim' };

export interface DaemonConfig {
  interfaces: InterfaceSpec[];
  /** Regional rules for radio interfaces. */
  region: RegionName;
  /** Channel of non-LoRa radio interfaces (TNCs), for the regional rules. */
  frequency?: number;
  /** The operator's own airtime caps on radio interfaces. */
  cap?: AirtimeCap;
  /** The node's key file (created on first start). */
  keyFile: string;
  /** Whether a missing directory of the key file is made (the default location's is; an explicit --key's is not). Default true. */
  createKeyDirectory?: boolean;
  /** Where the boot epoch and the key lock live (one of each per key), e.g. ~/.meshgw. */
  stateDir: string;
  /** A pcapng file capturing every frame in and out. */
  pcap?: string;
  /** Interval of status events, ms (0: none). */
  statusIntervalMs: number;
  /** Where the app API (Messi, src/api/meshgw.proto) listens; undefined: no API (`--api off`). */
  api?: { host: string; port: number } | undefined;
  /** The API's token (`auth_req`); required when `api.host` is not loopback. */
  apiToken?: string | undefined;
  /** Where Prometheus metrics are served (GET /metrics); undefined: none. */
  metrics?: { host: string; port: number } | undefined;
}

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

export function validateConfig(c: DaemonConfig): void {
  if (c.api !== undefined) {
    if (!Number.isInteger(c.api.port) || c.api.port < 0 || c.api.port > 65_535) throw new ConfigError(`the API port must be 0..65535, got ${c.api.port}`);
    if (c.api.host === '') throw new ConfigError('the API needs a host to listen on (--api HOST:PORT)');
    if (!isLoopbackHost(c.api.host) && (c.apiToken === undefined || c.apiToken === '')) {
      throw new ConfigError(`--api ${c.api.host}:${c.api.port} listens beyond loopback: give --api-token TOKEN (clients must send it first)`);
    }
  }
  if (c.interfaces.length === 0) throw new ConfigError('no interface: give --port PATH, --kiss-tcp HOST:PORT, --udp IFACE or --sim');
  const names = new Set<string>();
  for (const i of c.interfaces) {
    const name = interfaceName(i, 0);
    if (names.has(name)) throw new ConfigError(`two interfaces are named '${name}'`);
    names.add(name);
    if (i.kind === 'tcp-listen' && !isLoopbackHost(i.host) && (i.token === undefined || i.token === '')) {
      throw new ConfigError(`--tcp-listen ${i.host.includes(':') ? `[${i.host}]` : i.host}:${i.port} listens beyond loopback: give --tcp-token TOKEN (the same at both ends), because anyone can connect to a TCP port`);
    }
    if (i.kind === 'mqtt' && !/^mqtts?:\/\/[^/\s]+/.test(i.url)) throw new ConfigError(`an MQTT interface needs a URL mqtt://HOST[:PORT][/PREFIX] or mqtts://…`);
    if ((i.kind === 'kiss' || i.kind === 'slip' || i.kind === 'kiss-tcp') && c.region !== 'none' && c.frequency === undefined) {
      throw new ConfigError(`--region ${c.region} needs --frequency for the ${i.kind} interface`);
    }
    if ((i.kind === 'kiss' || i.kind === 'kiss-tcp') && i.callsign !== undefined) {
      try {
        parseAx25Address(i.callsign);
      } catch (err) {
        throw new ConfigError(`--callsign: ${(err as Error).message}`);
      }
    }
    try {
      if (i.kind === 'lora') checkLoraCanSend(c, i.radio);
      else if ((i.kind === 'kiss' || i.kind === 'slip' || i.kind === 'kiss-tcp') && c.frequency !== undefined) bandRules(c.region, c.frequency);
    } catch (err) {
      if (err instanceof RegionError) throw new ConfigError(`--region ${c.region}: ${err.message}`);
      throw err;
    }
  }
}

/** The smallest frame the node must be able to send: a signed HELLO with a few neighbours. */
export const MIN_USEFUL_FRAME_BYTES = 128;

/**
 * The largest LoRa payload the region's dwell limit, duty cycle and the operator's caps allow for
 * one frame (−1: not even an empty one). Throws RegionError for a channel the region does not allow.
 */
export function loraLargestFrame(c: Pick<DaemonConfig, 'region' | 'cap'>, radio: { frequency: number }, p: LoraParams): number {
  const limits = airtimeLimits(bandRules(c.region, radio.frequency, p.bandwidth), c.cap ?? {});
  let most = 255;
  if (limits.dwellMs !== undefined) most = Math.min(most, loraMaxPayloadWithin(p, limits.dwellMs));
  for (const b of limits.budgets) most = Math.min(most, loraMaxPayloadWithin(p, b.windowMs * b.fraction));
  return most;
}

/**
 * Refuses a LoRa setting that could never send a HELLO (US915's 400 ms dwell at SF11–12 on
 * 125 kHz, a tiny airtime cap), naming the largest spreading factor per bandwidth that would.
 */
function checkLoraCanSend(c: DaemonConfig, radio: LoraRadio): void {
  const p: LoraParams = { sf: radio.sf, bandwidth: radio.bandwidth, cr: radio.cr };
  const most = loraLargestFrame(c, radio, p);
  if (most >= MIN_USEFUL_FRAME_BYTES) return;
  const options: string[] = [];
  for (const bandwidth of [...new Set([radio.bandwidth, 125_000, 250_000, 500_000])]) {
    for (let sf = 12; sf >= 7; sf--) {
      let fits = -1;
      try {
        fits = loraLargestFrame(c, radio, { ...p, sf, bandwidth });
      } catch {
        break; // this bandwidth is not allowed at this frequency
      }
      if (fits >= MIN_USEFUL_FRAME_BYTES) {
        options.push(`SF${sf} or lower at ${bandwidth / 1000} kHz (${fits} bytes)`);
        break;
      }
    }
  }
  const what = most < 0 ? 'not even an empty frame is allowed' : `at most ${most} bytes fit in one frame`;
  throw new ConfigError(
    `LoRa SF${radio.sf} at ${radio.bandwidth / 1000} kHz under ${c.region}${c.cap ? ' and the airtime cap' : ''}: ${what}, ` +
      `below the ${MIN_USEFUL_FRAME_BYTES} bytes a HELLO needs; ${options.length > 0 ? `use ${options.join(', or ')}` : 'no spreading factor fits: lower the cap'}`,
  );
}

/** The name an interface gets when the config gives none. */
export function interfaceName(spec: InterfaceSpec, index: number): string {
  if (spec.kind !== 'sim' && spec.name) return spec.name;
  const n = index;
  switch (spec.kind) {
    case 'lora':
      return `lora${n}`;
    case 'kiss':
      return `tnc${n}`;
    case 'slip':
      return `slip${n}`;
    case 'kiss-tcp':
      return `kisstcp${n}`;
    case 'udp':
      return spec.interface ?? `udp${n}`;
    case 'mqtt':
      return `mqtt${n}`;
    case 'tcp-listen':
      return `tcpl${n}`;
    case 'tcp-connect':
      return `tcp${n}`;
    case 'sim':
      return `sim${n}`;
  }
}

/** Whether a listening address only accepts connections from this machine (src/link/address.ts). */
export { isLoopbackHost as isLoopback };
