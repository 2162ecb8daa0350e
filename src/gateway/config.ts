/**
 * The daemon's configuration as data: what the command line's flags produce (and, later, a
 * config file). Plain values only, already parsed and range-checked by whoever produced them;
 * `validateConfig` checks what spans several values and throws ConfigError naming the problem.
 */
import type { KissCsmaConfig } from '../link/csma.js';
import type { AirtimeCap } from '../link/airtime-limits.js';
import type { RegionName } from '../link/airtime/regions.js';

export interface LoraRadio {
  frequency: number;
  bandwidth: number;
  sf: number;
  cr: number;
  txPower: number;
}

export type InterfaceSpec =
  | { kind: 'lora'; name?: string; path: string; baudRate?: number; radio: LoraRadio }
  /** `csma`: only the TNC parameters to set (none by default: the TNC keeps its own). */
  | { kind: 'kiss'; name?: string; path: string; baudRate?: number; callsign?: string; csma?: Partial<KissCsmaConfig> }
  | { kind: 'slip'; name?: string; path: string; baudRate?: number }
  | { kind: 'kiss-tcp'; name?: string; host: string; port: number; callsign?: string; csma?: Partial<KissCsmaConfig> }
  /**
   * `peers`: static unicast peers (for links without broadcast, or two daemons on one host).
   * `mtu`: largest datagram, default 1200 (safe on any IPv6 path); up to 65,507.
   */
  | { kind: 'udp'; name?: string; interface?: string; address?: string; port: number; peers?: Array<{ address: string; port: number }>; mtu?: number }
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
}

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

export function validateConfig(c: DaemonConfig): void {
  if (c.api !== undefined) {
    if (!Number.isInteger(c.api.port) || c.api.port < 0 || c.api.port > 65_535) throw new ConfigError(`the API port must be 0..65535, got ${c.api.port}`);
    if (c.api.host === '') throw new ConfigError('the API needs a host to listen on (--api HOST:PORT)');
    if (!isLoopback(c.api.host) && (c.apiToken === undefined || c.apiToken === '')) {
      throw new ConfigError(`--api ${c.api.host}:${c.api.port} listens beyond loopback: give --api-token TOKEN (clients must send it first)`);
    }
  }
  if (c.interfaces.length === 0) throw new ConfigError('no interface: give --port PATH, --kiss-tcp HOST:PORT, --udp IFACE or --sim');
  const names = new Set<string>();
  for (const i of c.interfaces) {
    const name = interfaceName(i, 0);
    if (names.has(name)) throw new ConfigError(`two interfaces are named '${name}'`);
    names.add(name);
    if ((i.kind === 'kiss' || i.kind === 'slip' || i.kind === 'kiss-tcp') && c.region !== 'none' && c.frequency === undefined) {
      throw new ConfigError(`--region ${c.region} needs --frequency for the ${i.kind} interface`);
    }
  }
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
    case 'sim':
      return `sim${n}`;
  }
}

/** Whether a listening address only accepts connections from this machine. */
export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || host === '[::1]' || /^127\.\d+\.\d+\.\d+$/.test(host);
}
