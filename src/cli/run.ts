/**
 * `meshgw [--port PATH | --kiss-tcp HOST:PORT | --udp IFACE | --sim] [...]`: the daemon. Opens
 * the interfaces, paces what they send, prints one JSON line per event on stdout (state changes,
 * received frames, periodic status) and logs on stderr. SIGINT/SIGTERM close everything cleanly.
 */
import type { Command } from 'commander';
import { kissSerialLink } from '../../drivers/kiss-serial.js';
import { kissTcpLink } from '../../drivers/kiss-tcp.js';
import { LoraSerialLink } from '../../drivers/lora-serial.js';
import { SlipSerialLink } from '../../drivers/slip-serial.js';
import { SimMedium } from '../../drivers/sim.js';
import { UdpLink } from '../../drivers/udp.js';
import { RealClock } from '../link/clock.js';
import { PcapngFile } from '../link/pcap.js';
import type { Link } from '../link/link.js';
import type { InterfaceConfig } from '../link/registry.js';
import { parseRegionName, RegionError, type RegionName } from '../link/airtime/regions.js';
import { LoraParamError, validateLoraParams } from '../link/airtime/lora.js';
import { Gateway } from '../gateway/gateway.js';
import { dirname, join } from 'node:path';
import { defaultKeyFile, generateIdentity, loadOrCreateIdentity, sidHex } from '../mesh/identity.js';
import { MeshRunner } from '../gateway/mesh-runner.js';
import { nextEpoch } from '../mesh/epoch.js';
import { MeshNode } from '../mesh/node.js';
import { UsageError, parseIntOption, parseNumberOption } from './usage-error.js';

export interface RunOptions {
  port?: string;
  driver: string;
  baud?: string;
  kissTcp?: string;
  udp?: string;
  udpPort: string;
  sim?: boolean;
  region: string;
  frequency?: string;
  bw: string;
  sf: string;
  cr: string;
  txPower: string;
  callsign?: string;
  airtimeCap?: string;
  pcap?: string;
  statusInterval: string;
  key: string;
}

export function runOptions(cmd: Command): Command {
  return cmd
    .option('--port <path>', 'serial device of a radio modem or TNC, e.g. /dev/ttyUSB0')
    .option('--driver <kind>', 'what is on --port: lora (RNode-compatible modem), kiss (TNC) or slip', 'lora')
    .option('--baud <rate>', 'serial speed (default 115200 for lora and slip, 9600 for kiss)')
    .option('--kiss-tcp <host:port>', 'a soft TNC over TCP, e.g. 127.0.0.1:8001 (Direwolf)')
    .option('--udp <iface>', 'Wi-Fi ad hoc interface name (e.g. wlan0) or bind address')
    .option('--udp-port <port>', 'UDP port of the mesh on --udp', '4269')
    .option('--sim', 'a simulated radio with a simulated neighbour node, when no hardware is attached')
    .option('--region <name>', 'regional rules for radio interfaces: eu868, us915 or none', 'none')
    .option('--frequency <hz>', 'LoRa frequency in Hz (required with --driver lora)')
    .option('--bw <hz>', 'LoRa bandwidth in Hz', '125000')
    .option('--sf <n>', 'LoRa spreading factor', '9')
    .option('--cr <n>', 'LoRa coding rate 5..8', '5')
    .option('--tx-power <dbm>', 'LoRa TX power in dBm', '14')
    .option('--callsign <call>', 'operator callsign-SSID for AX.25 UI framing on KISS TNCs')
    .option('--airtime-cap <percent[,percent]>', 'your own airtime cap: percent of 15 s[, of 1 h]')
    .option('--pcap <file>', 'capture every frame in and out to a pcapng file (Wireshark)')
    .option('--status-interval <s>', 'print a status line every S seconds (0: never)', '60')
    .option('--key <file>', "this node's key file (created on first start)", defaultKeyFile());
}

interface Built {
  interfaces: Array<{ link: Link; config: InterfaceConfig; authOnly?: boolean }>;
  /** Links that are not part of the gateway (the simulated neighbour), with what they do. */
  extras: Array<{ link: Link; start(): void; stop(): void }>;
}

function hostPort(flag: string, text: string): { host: string; port: number } {
  const m = /^(.+):(\d+)$/.exec(text);
  if (!m) throw new UsageError(`${flag} must be HOST:PORT, got '${text}'`);
  return { host: m[1]!, port: parseIntOption(flag, m[2]!, 1, 65_535) };
}

/** Builds the interfaces the flags ask for; throws UsageError for a flag that cannot work. */
export function buildInterfaces(o: RunOptions, log: (line: string) => void): Built {
  const built: Built = { interfaces: [], extras: [] };
  let region: RegionName;
  try {
    region = parseRegionName(o.region);
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const cap = parseCap(o.airtimeCap);
  const radioConfig: InterfaceConfig = { region, ...(cap ? { cap } : {}) };
  if (o.port !== undefined) {
    if (o.driver === 'lora') {
      if (o.frequency === undefined) throw new UsageError('--frequency is required with --driver lora');
      const radio = {
        frequency: parseIntOption('--frequency', o.frequency, 100_000_000, 3_000_000_000),
        bandwidth: parseIntOption('--bw', o.bw, 1, 1_000_000),
        sf: parseIntOption('--sf', o.sf, 0, 99),
        cr: parseIntOption('--cr', o.cr, 0, 99),
        txPower: parseIntOption('--tx-power', o.txPower, 0, 30),
      };
      try {
        validateLoraParams(radio);
      } catch (err) {
        if (err instanceof LoraParamError) throw new UsageError(err.message);
        throw err;
      }
      const link = new LoraSerialLink({
        name: 'lora0',
        path: o.port,
        radio,
        ...(o.baud ? { baudRate: parseIntOption('--baud', o.baud, 300, 4_000_000) } : {}),
        ...(cap?.shortPercent !== undefined ? { shortAirtimeLockPercent: cap.shortPercent } : {}),
        ...(cap?.longPercent !== undefined ? { longAirtimeLockPercent: cap.longPercent } : {}),
        log,
      });
      built.interfaces.push({ link, config: radioConfig });
    } else if (o.driver === 'kiss') {
      const link = kissSerialLink({
        name: 'tnc0',
        path: o.port,
        ...(o.baud ? { baudRate: parseIntOption('--baud', o.baud, 300, 4_000_000) } : {}),
        ...(o.callsign ? { callsign: o.callsign } : {}),
        log,
      });
      // A TNC is amateur radio: datagrams are authenticated, not encrypted, on the air.
      built.interfaces.push({ link, config: withFrequency(radioConfig, o), authOnly: true });
    } else if (o.driver === 'slip') {
      const link = new SlipSerialLink({ name: 'slip0', path: o.port, ...(o.baud ? { baudRate: parseIntOption('--baud', o.baud, 300, 4_000_000) } : {}), log });
      built.interfaces.push({ link, config: withFrequency(radioConfig, o) });
    } else {
      throw new UsageError(`--driver must be lora, kiss or slip, got '${o.driver}'`);
    }
  }
  if (o.kissTcp !== undefined) {
    const { host, port } = hostPort('--kiss-tcp', o.kissTcp);
    built.interfaces.push({ link: kissTcpLink({ name: 'kisstcp0', host, port, ...(o.callsign ? { callsign: o.callsign } : {}), log }), config: withFrequency(radioConfig, o), authOnly: true });
  }
  if (o.udp !== undefined) {
    const port = parseIntOption('--udp-port', o.udpPort, 1, 65_535);
    const byAddress = /^[\d.]+$/.test(o.udp);
    const link = new UdpLink({ name: byAddress ? 'udp0' : o.udp, port, ...(byAddress ? { address: o.udp } : { interface: o.udp }), log });
    built.interfaces.push({ link, config: {} });
  }
  if (o.sim) {
    // A simulated radio with one simulated neighbour: a second mesh node on the same medium, so
    // the gateway has someone to discover and route to.
    const clock = new RealClock();
    const medium = new SimMedium({ clock });
    const link = medium.attach('sim0', { log });
    const neighbourLink = medium.attach('sim-neighbour');
    const neighbour = new MeshNode({ identity: generateIdentity(), epoch: 1 });
    neighbour.addInterface({ name: 'sim', mtu: neighbourLink.mtu, airtimeMs: (b) => neighbourLink.airtime.airtimeMs(Math.min(b, 255)) }, clock.now());
    const runner = new MeshRunner({ node: neighbour, clock, links: new Map([['sim', neighbourLink]]) });
    built.interfaces.push({ link, config: {} });
    built.extras.push({
      link: neighbourLink,
      start: () => {
        void neighbourLink.open();
        runner.start();
      },
      stop: () => {
        runner.stop();
        void neighbourLink.close();
      },
    });
  }
  if (built.interfaces.length === 0) {
    throw new UsageError('no interface: give --port PATH, --kiss-tcp HOST:PORT, --udp IFACE or --sim');
  }
  return built;
}

function withFrequency(config: InterfaceConfig, o: RunOptions): InterfaceConfig {
  if (o.frequency === undefined) {
    if (config.region !== 'none') throw new UsageError(`--region ${config.region} needs --frequency for this interface`);
    return config;
  }
  return { ...config, frequency: parseIntOption('--frequency', o.frequency, 1, 10_000_000_000) };
}

function parseCap(text: string | undefined): InterfaceConfig['cap'] {
  if (text === undefined) return undefined;
  const [short, long, extra] = text.split(',');
  if (extra !== undefined || short === undefined) throw new UsageError(`--airtime-cap must be SHORT[,LONG] percentages, got '${text}'`);
  return {
    shortPercent: parseNumberOption('--airtime-cap', short, 0.01, 100),
    ...(long !== undefined ? { longPercent: parseNumberOption('--airtime-cap', long, 0.01, 100) } : {}),
  };
}

export async function runGateway(o: RunOptions): Promise<void> {
  const log = (line: string): void => void process.stderr.write(`${new Date().toISOString()} ${line}\n`);
  const built = buildInterfaces(o, log);
  const statusIntervalMs = parseNumberOption('--status-interval', o.statusInterval, 0, 86_400) * 1000;
  const { identity, created } = loadOrCreateIdentity(o.key);
  if (created) log(`created a new identity in ${o.key}`);
  const epochFile = join(dirname(o.key), 'epoch');
  const node = new MeshNode({ identity, epoch: nextEpoch(epochFile), nextEpoch: () => nextEpoch(epochFile) });
  log(`node ${sidHex(identity.sid)}`);
  let gateway: Gateway;
  try {
    gateway = new Gateway({
      interfaces: built.interfaces,
      mesh: node,
      ...(o.pcap ? { capture: new PcapngFile(o.pcap) } : {}),
      onEvent: (e) => void process.stdout.write(JSON.stringify(e) + '\n'),
      statusIntervalMs,
    });
  } catch (err) {
    if (err instanceof RegionError) throw new UsageError(err.message);
    throw err;
  }
  await gateway.start();
  for (const x of built.extras) x.start();
  log(`meshgw running on ${gateway.registry.list().map((e) => `${e.name} (${e.link.kind})`).join(', ')}; Ctrl-C to stop`);
  await new Promise<void>((resolve) => {
    const stop = (): void => resolve();
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
  for (const x of built.extras) x.stop();
  await gateway.stop();
  log('meshgw stopped');
}
