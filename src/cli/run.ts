/**
 * `meshgw [--port PATH | --kiss-tcp HOST:PORT | --udp IFACE | --sim] [...]`: the daemon. This file
 * only parses the flags into a DaemonConfig (src/gateway/config.ts) and hands it to
 * `startDaemon` (src/gateway/daemon.ts), which composes everything. It logs on stderr, or with
 * `--log-file FILE` to that file (events as log records with fields; with `--events` also one JSON
 * line per event on stdout, for scripts). Signals:
 * - SIGINT/SIGTERM let queued frames go (up to --shutdown-timeout, saying how many went), then
 *   close everything cleanly; a second one exits at once.
 * - SIGHUP reopens the log file and the --pcap capture at their paths, for logrotate (`mv
 *   meshgw.log meshgw.log.1; kill -HUP PID`). It never stops the daemon: a file that cannot be
 *   opened again is a warning, the log then goes to stderr and the capture stops, each until a
 *   later SIGHUP succeeds.
 */
import type { Command } from 'commander';
import { readFileSync } from 'node:fs';
import { isIPv4 } from 'node:net';
import { KISS_MAX_TIME_MS, type KissCsmaConfig } from '../link/csma.js';
import { dirname } from 'node:path';
import { parseRegionName, RegionError, type RegionName } from '../link/airtime/regions.js';
import { LoraParamError, validateLoraParams } from '../link/airtime/lora.js';
import { ConfigError, validateConfig, type DaemonConfig, type InterfaceSpec } from '../gateway/config.js';
import { startDaemon, type Daemon } from '../gateway/daemon.js';
// The config file's loader (yaml, zod: about 9 MB of heap) is imported only with --config.
import type { FileConfig } from '../gateway/config-file.js';
import { createDaemonLog, LOG_LEVELS, type DaemonLog, type LogLevel } from '../gateway/log.js';
import type { GatewayEvent } from '../gateway/gateway.js';
import { API_DEFAULT_PORT } from '../api/server.js';
import { defaultKeyFile } from '../mesh/identity.js';
import { UsageError, parseIntOption, parseNumberOption } from './usage-error.js';

export interface RunOptions {
  port?: string;
  driver: string;
  baud?: string;
  kissTcp?: string;
  udp?: string;
  udpPort: string;
  peer?: string[];
  mqtt?: string[];
  mqttCa?: string;
  mqttCert?: string;
  mqttKey?: string;
  mqttMesh?: string;
  tcpListen?: string[];
  tcpConnect?: string[];
  tcpToken?: string;
  minFirmware?: string;
  loraMtu?: string;
  sim?: boolean;
  region: string;
  frequency?: string;
  bw: string;
  sf: string;
  cr: string;
  txPower: string;
  callsign?: string;
  txdelay?: string;
  persist?: string;
  slottime?: string;
  txtail?: string;
  duplex?: string;
  airtimeCap?: string;
  pcap?: string;
  statusInterval: string;
  key: string;
  stateDir?: string;
  api?: string;
  apiToken?: string;
  config?: string;
  metrics?: string;
  shutdownTimeout: string;
  logLevel?: string;
  logFile?: string;
  events?: boolean;
}

export function runOptions(cmd: Command): Command {
  return cmd
    .option('--port <path>', 'serial device of a radio modem or TNC, e.g. /dev/ttyUSB0')
    .option('--driver <kind>', 'what is on --port: lora (RNode-compatible modem), kiss (TNC) or slip', 'lora')
    .option('--baud <rate>', 'serial speed (default 115200 for lora and slip, 9600 for kiss)')
    .option('--kiss-tcp <host:port>', 'a soft TNC over TCP, e.g. 127.0.0.1:8001 (Direwolf)')
    .option('--udp <iface|addr[:port]>', 'Wi-Fi ad hoc interface name (e.g. wlan0), or an IPv4 bind address with an optional port')
    .option('--udp-port <port>', 'UDP port of the mesh on --udp (unless --udp gives one)', '4269')
    .option('--peer <addr:port>', 'a static UDP peer that gets every one-to-all frame (repeatable), for links without broadcast, e.g. two daemons on one host', (v: string, prev: string[] = []) => [...prev, v])
    .option('--mqtt <url>', 'bridge to other sites through an MQTT broker: mqtt[s]://[user[:pass]@]host[:port][/prefix] (repeatable); the password may come from $MESHGW_MQTT_PASSWORD instead', collect)
    .option('--mqtt-ca <file>', 'CA certificate (PEM) that signed the broker\'s, for mqtts://')
    .option('--mqtt-cert <file>', 'client certificate (PEM) for the broker, with --mqtt-key')
    .option('--mqtt-key <file>', 'client key (PEM) for the broker')
    .option('--mqtt-mesh <name>', 'the mesh\'s name in the topics (PREFIX/NAME/…); default mesh')
    .option('--tcp-listen <host:port>', 'a direct link to another site: listen here (repeatable); beyond loopback it needs --tcp-token', collect)
    .option('--tcp-connect <host:port>', 'a direct link to another site: connect there (repeatable)', collect)
    .option('--tcp-token <token>', 'the secret both ends of a TCP link share (or $MESHGW_TCP_TOKEN)')
    .option('--sim', 'a simulated radio with a simulated neighbour node, when no hardware is attached')
    .option('--region <name>', 'regional rules for radio interfaces: eu868, us915 or none', 'none')
    .option('--frequency <hz>', 'LoRa frequency in Hz (required with --driver lora)')
    .option('--bw <hz>', 'LoRa bandwidth in Hz', '125000')
    .option('--sf <n>', 'LoRa spreading factor', '9')
    .option('--cr <n>', 'LoRa coding rate 5..8', '5')
    .option('--tx-power <dbm>', 'LoRa TX power in dBm', '14')
    .option('--min-firmware <x.y>', 'the oldest LoRa modem firmware accepted, e.g. 1.74 (an older one is refused, and retried)')
    .option('--lora-mtu <bytes>', 'largest frame to the LoRa modem, 1..508 (default 507: RNode sends 255 and more as two packets; 254 keeps one)')
    .option('--callsign <call>', 'operator callsign-SSID for AX.25 UI framing on KISS TNCs')
    .option('--txdelay <ms>', 'KISS TNC keying delay to set, ms (default: leave the TNC\'s own)')
    .option('--persist <p>', 'KISS TNC CSMA persistence to set, 0..1 (default: leave the TNC\'s own)')
    .option('--slottime <ms>', 'KISS TNC CSMA slot time to set, ms (default: leave the TNC\'s own)')
    .option('--txtail <ms>', 'KISS TNC TX tail to set, ms (default: leave the TNC\'s own)')
    .option('--duplex <half|full>', 'KISS TNC duplex to set (default: leave the TNC\'s own)')
    .option('--airtime-cap <percent[,percent]>', 'your own airtime cap: percent of 15 s[, of 1 h]')
    .option('--pcap <file>', 'capture every frame in and out to a pcapng file (Wireshark)')
    .option('--status-interval <s>', 'print a status line every S seconds (0: never)', '60')
    .option('--key <file>', "this node's key file (created on first start)", defaultKeyFile())
    .option('--state-dir <dir>', 'where the boot epoch and the lock of each key live (default: ~/.meshgw)')
    .option('--api <host:port|off>', 'where the app API (Messi, meshgw.proto) listens, or off', `127.0.0.1:${API_DEFAULT_PORT}`)
    .option('--api-token <token>', 'the secret API clients must send first (required when --api is not loopback)')
    .option('--metrics <host:port|off>', 'serve Prometheus metrics at http://HOST:PORT/metrics (default off)')
    .option('--shutdown-timeout <s>', 'on SIGINT/SIGTERM, how long queued frames may take to go before the links close', '5')
    .option('--config <file>', 'a YAML config file (meshgw init writes a commented one); flags given override it')
    .option('--events', 'also print one JSON line per event on stdout (state, frame, neighbour, refused, status), for scripts')
    .option('--log-level <level>', 'least severe log lines written: trace, debug, info, warn, error or fatal (default info); JSON lines on stderr, short lines on a terminal')
    .option('--log-file <file>', 'append the log to FILE as JSON lines instead of stderr; SIGHUP reopens it and the --pcap file (logrotate)');
}

/** `--min-firmware 1.74` as [major, minor]. */
function parseFirmware(text: string): [number, number] {
  const m = /^(\d{1,3})\.(\d{1,3})$/.exec(text.trim());
  if (!m) throw new UsageError(`--min-firmware must be MAJOR.MINOR, e.g. 1.74, got '${text}'`);
  return [Number(m[1]), Number(m[2])];
}

/** commander's accumulator for repeatable options. */
function collect(v: string, prev: string[] = []): string[] {
  return [...prev, v];
}

/** The contents of a PEM file a flag names; UsageError when it cannot be read. */
function pemFile(flag: string, path: string | undefined): string | undefined {
  if (path === undefined) return undefined;
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    throw new UsageError(`${flag}: cannot read ${path}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (err as Error).message}`);
  }
}

/** `--mqtt URL`s, `--tcp-listen`/`--tcp-connect HOST:PORT`s, with their shared options. */
function bridgeInterfaces(o: RunOptions): InterfaceSpec[] {
  const out: InterfaceSpec[] = [];
  const mqtts = o.mqtt ?? [];
  if (mqtts.length === 0 && (o.mqttCa ?? o.mqttCert ?? o.mqttKey ?? o.mqttMesh) !== undefined) throw new UsageError('--mqtt-ca, --mqtt-cert, --mqtt-key and --mqtt-mesh go with --mqtt URL');
  if ((o.mqttCert === undefined) !== (o.mqttKey === undefined)) throw new UsageError('--mqtt-cert and --mqtt-key go together');
  const ca = pemFile('--mqtt-ca', o.mqttCa);
  const cert = pemFile('--mqtt-cert', o.mqttCert);
  const key = pemFile('--mqtt-key', o.mqttKey);
  const password = process.env.MESHGW_MQTT_PASSWORD;
  for (const url of mqtts) {
    if (!/^mqtts?:\/\/[^/\s]+/.test(url)) throw new UsageError(`--mqtt must be mqtt://HOST[:PORT][/PREFIX] or mqtts://…, got '${url.replace(/:[^:@/]*@/, ':***@')}'`);
    out.push({
      kind: 'mqtt',
      url,
      ...(o.mqttMesh !== undefined ? { mesh: o.mqttMesh } : {}),
      ...(password !== undefined && password !== '' ? { password } : {}),
      ...(ca !== undefined ? { ca } : {}),
      ...(cert !== undefined ? { cert } : {}),
      ...(key !== undefined ? { key } : {}),
    });
  }
  const token = o.tcpToken ?? (process.env.MESHGW_TCP_TOKEN || undefined);
  for (const t of o.tcpListen ?? []) out.push({ kind: 'tcp-listen', ...hostPort('--tcp-listen', t, 0), ...(token !== undefined ? { token } : {}) });
  for (const t of o.tcpConnect ?? []) out.push({ kind: 'tcp-connect', ...hostPort('--tcp-connect', t), ...(token !== undefined ? { token } : {}) });
  if (token !== undefined && (o.tcpListen ?? o.tcpConnect) === undefined) throw new UsageError('--tcp-token goes with --tcp-listen or --tcp-connect');
  return out;
}

/** `--api HOST:PORT` (IPv6 in brackets) or `off`. */
function apiAddress(text: string): { host: string; port: number } | undefined {
  if (text === 'off') return undefined;
  const m = /^(\[[^\]]+\]|[^:]+):(\d+)$/.exec(text);
  if (!m) throw new UsageError(`--api must be HOST:PORT or off, got '${text}'`);
  return { host: m[1]!.replace(/^\[|\]$/g, ''), port: parseIntOption('--api', m[2]!, 0, 65_535) };
}

function hostPort(flag: string, text: string, minPort = 1): { host: string; port: number } {
  const m = /^(\[[^\]]+\]|[^:\s]+):(\d+)$/.exec(text);
  if (!m) throw new UsageError(`${flag} must be HOST:PORT, got '${text}'`);
  return { host: m[1]!.replace(/^\[|\]$/g, ''), port: parseIntOption(flag, m[2]!, minPort, 65_535) };
}

/** The flags as a DaemonConfig; throws UsageError for a flag that cannot work. */
export function configFromFlags(o: RunOptions): DaemonConfig {
  let region: RegionName;
  try {
    region = parseRegionName(o.region);
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const interfaces: InterfaceSpec[] = [];
  const baud = o.baud !== undefined ? { baudRate: parseIntOption('--baud', o.baud, 300, 4_000_000) } : {};
  const callsign = o.callsign ? { callsign: o.callsign } : {};
  const csma = kissCsmaFlags(o);
  const kissExtra = { ...callsign, ...(csma ? { csma } : {}) };
  if (csma && o.kissTcp === undefined && !(o.port !== undefined && o.driver === 'kiss')) {
    throw new UsageError('--txdelay, --persist, --slottime, --txtail and --duplex are for a KISS TNC (--driver kiss or --kiss-tcp)');
  }
  if (o.minFirmware !== undefined && !(o.port !== undefined && o.driver === 'lora')) throw new UsageError('--min-firmware is for a LoRa modem (--port PATH with --driver lora)');
  if (o.loraMtu !== undefined && !(o.port !== undefined && o.driver === 'lora')) throw new UsageError('--lora-mtu is for a LoRa modem (--port PATH with --driver lora)');
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
      interfaces.push({
        kind: 'lora',
        path: o.port,
        radio,
        ...baud,
        ...(o.minFirmware !== undefined ? { minFirmware: parseFirmware(o.minFirmware) } : {}),
        ...(o.loraMtu !== undefined ? { mtu: parseIntOption('--lora-mtu', o.loraMtu, 1, 508) } : {}),
      });
    } else if (o.driver === 'kiss') {
      interfaces.push({ kind: 'kiss', path: o.port, ...baud, ...kissExtra });
    } else if (o.driver === 'slip') {
      interfaces.push({ kind: 'slip', path: o.port, ...baud });
    } else {
      throw new UsageError(`--driver must be lora, kiss or slip, got '${o.driver}'`);
    }
  }
  if (o.kissTcp !== undefined) interfaces.push({ kind: 'kiss-tcp', ...hostPort('--kiss-tcp', o.kissTcp), ...kissExtra });
  if (o.udp !== undefined) interfaces.push(udpInterface(o.udp, o.udpPort, o.peer ?? []));
  else if (o.peer !== undefined) throw new UsageError('--peer needs --udp (the interface that sends to the peer)');
  interfaces.push(...bridgeInterfaces(o));
  if (o.sim) interfaces.push({ kind: 'sim' });
  // No interface at all: a simulated radio, so that `npx meshgw` shows a working node anywhere.
  if (interfaces.length === 0) interfaces.push({ kind: 'sim' });
  const cap = parseCap(o.airtimeCap);
  return {
    interfaces,
    region,
    ...(o.frequency !== undefined ? { frequency: parseIntOption('--frequency', o.frequency, 1, 10_000_000_000) } : {}),
    ...(cap ? { cap } : {}),
    keyFile: o.key,
    // The default ~/.meshgw is made on first start; the directory of an explicit --key must exist.
    createKeyDirectory: o.key === defaultKeyFile(),
    stateDir: o.stateDir ?? dirname(defaultKeyFile()),
    ...(o.pcap ? { pcap: o.pcap } : {}),
    statusIntervalMs: parseNumberOption('--status-interval', o.statusInterval, 0, 86_400) * 1000,
    api: apiAddress(o.api ?? `127.0.0.1:${API_DEFAULT_PORT}`),
    ...(o.apiToken !== undefined ? { apiToken: o.apiToken } : {}),
    ...(o.metrics !== undefined && o.metrics !== 'off' ? { metrics: hostPort('--metrics', o.metrics) } : {}),
  };
}

/** Flags that name interfaces: given on the command line, they replace the file's interfaces. */
const INTERFACE_FLAGS = ['port', 'driver', 'baud', 'minFirmware', 'loraMtu', 'kissTcp', 'udp', 'udpPort', 'peer', 'mqtt', 'mqttCa', 'mqttCert', 'mqttKey', 'mqttMesh', 'tcpListen', 'tcpConnect', 'tcpToken', 'sim', 'frequency', 'bw', 'sf', 'cr', 'txPower', 'callsign', 'txdelay', 'persist', 'slottime', 'txtail', 'duplex'];

/**
 * The config file under the flags: every setting the command line did not give comes from the
 * file (`explicit(flag)` says whether the user typed it; defaults do not count).
 */
export function withConfigFile(flags: DaemonConfig, file: FileConfig, explicit: (flag: string) => boolean): DaemonConfig {
  const c: DaemonConfig = { ...flags };
  if (!INTERFACE_FLAGS.some(explicit) && file.interfaces !== undefined && file.interfaces.length > 0) c.interfaces = file.interfaces;
  if (!explicit('region') && file.region !== undefined) c.region = file.region;
  if (!explicit('frequency') && file.frequency !== undefined) c.frequency = file.frequency;
  if (!explicit('airtimeCap') && file.cap !== undefined) c.cap = file.cap;
  if (!explicit('key') && file.key !== undefined) {
    c.keyFile = file.key;
    c.createKeyDirectory = false;
    if (!explicit('stateDir') && file.stateDir === undefined) c.stateDir = dirname(file.key);
  }
  if (!explicit('stateDir') && file.stateDir !== undefined) c.stateDir = file.stateDir;
  if (!explicit('pcap') && file.pcap !== undefined) c.pcap = file.pcap;
  if (!explicit('statusInterval') && file.statusInterval !== undefined) c.statusIntervalMs = file.statusInterval * 1000;
  if (!explicit('api') && file.api !== undefined) c.api = file.api === 'off' ? undefined : file.api;
  if (!explicit('apiToken') && file.apiToken !== undefined) c.apiToken = file.apiToken;
  if (!explicit('metrics') && file.metrics !== undefined) c.metrics = file.metrics === 'off' ? undefined : file.metrics;
  return c;
}

/** `--udp wlan0`, `--udp 0.0.0.0`, `--udp 127.0.0.1:4270`, with `--peer ADDR:PORT`s. */
function udpInterface(text: string, udpPort: string, peerTexts: string[]): InterfaceSpec {
  const peers = peerTexts.map((p) => {
    const m = /^([^:]+):(\d+)$/.exec(p);
    if (!m || !isIPv4(m[1]!)) throw new UsageError(`--peer must be an IPv4 ADDRESS:PORT, got '${p}'`);
    return { address: m[1]!, port: parseIntOption('--peer', m[2]!, 1, 65_535) };
  });
  const withPort = /^([\d.]+):(\d+)$/.exec(text);
  const address = withPort ? withPort[1]! : text;
  const port = withPort ? parseIntOption('--udp', withPort[2]!, 1, 65_535) : parseIntOption('--udp-port', udpPort, 1, 65_535);
  const looksNumeric = /^[\d.]+$/.test(address);
  if (looksNumeric && !isIPv4(address)) throw new UsageError(`--udp: '${address}' is not an IPv4 address`);
  if (!looksNumeric && (withPort || !/^[A-Za-z0-9_.@-]{1,15}$/.test(text))) {
    throw new UsageError(`--udp must be an interface name (e.g. wlan0) or an IPv4 ADDRESS[:PORT], got '${text}'`);
  }
  return looksNumeric
    ? { kind: 'udp', address, port, ...(peers.length > 0 ? { peers } : {}) }
    : { kind: 'udp', interface: address, port, ...(peers.length > 0 ? { peers } : {}) };
}

/** The KISS parameters given as flags, or undefined for none. */
function kissCsmaFlags(o: RunOptions): Partial<KissCsmaConfig> | undefined {
  const c: Partial<KissCsmaConfig> = {};
  if (o.txdelay !== undefined) c.txDelayMs = parseNumberOption('--txdelay', o.txdelay, 0, KISS_MAX_TIME_MS);
  if (o.persist !== undefined) c.persistence = parseNumberOption('--persist', o.persist, 0, 1);
  if (o.slottime !== undefined) c.slotTimeMs = parseNumberOption('--slottime', o.slottime, 0, KISS_MAX_TIME_MS);
  if (o.txtail !== undefined) c.txTailMs = parseNumberOption('--txtail', o.txtail, 0, KISS_MAX_TIME_MS);
  if (o.duplex !== undefined) {
    if (o.duplex !== 'half' && o.duplex !== 'full') throw new UsageError(`--duplex must be half or full, got '${o.duplex}'`);
    c.fullDuplex = o.duplex === 'full';
  }
  return Object.keys(c).length > 0 ? c : undefined;
}

function parseCap(text: string | undefined): DaemonConfig['cap'] {
  if (text === undefined) return undefined;
  const [short, long, extra] = text.split(',');
  if (extra !== undefined || short === undefined) throw new UsageError(`--airtime-cap must be SHORT[,LONG] percentages, got '${text}'`);
  return {
    shortPercent: parseNumberOption('--airtime-cap', short, 0.01, 100),
    ...(long !== undefined ? { longPercent: parseNumberOption('--airtime-cap', long, 0.01, 100) } : {}),
  };
}

/**
 * An event as a log record with fields: neighbours at info, refusals as warnings (rate-limited
 * like any repeated line), frames and status at debug. State changes are not repeated here: each
 * link logs its own.
 */
function logEvent(log: DaemonLog, e: GatewayEvent): void {
  switch (e.event) {
    case 'neighbour':
      return log.write('info', `neighbour ${e.id.slice(0, 8)} ${e.state} on ${e.interface}`, { event: 'neighbour', neighbour: e.id, interface: e.interface, state: e.state });
    case 'refused':
      return log.write('warn', `${e.interface}: a frame was refused (${e.reason}): ${e.message}`, { event: 'refused', interface: e.interface, reason: e.reason });
    case 'frame':
      return log.write('debug', `${e.interface}: frame of ${e.bytes} bytes in`, { event: 'frame', interface: e.interface, bytes: e.bytes, ...(e.rssiDbm !== undefined ? { rssiDbm: e.rssiDbm } : {}), ...(e.snrDb !== undefined ? { snrDb: e.snrDb } : {}), ...(e.from !== undefined ? { from: e.from } : {}) });
    case 'status':
      return log.write('debug', 'status', { event: 'status', interfaces: e.interfaces, ...(e.mesh ? { mesh: e.mesh } : {}) });
    case 'state':
      return;
  }
}

/**
 * The last resort: an exception nobody caught means a bug; a daemon that limps on half-dead is
 * worse than one that says why and exits non-zero (systemd restarts it).
 */
function installLastResort(log: (line: string) => void): void {
  const die = (what: string) => (err: unknown): void => {
    log(`meshgw: ${what}: ${(err as Error)?.stack ?? String(err)}`);
    process.exit(1);
  };
  process.on('uncaughtException', die('uncaught exception'));
  process.on('unhandledRejection', die('unhandled rejection'));
}

/** Frames every interface's pacer has released to its link so far. */
function pacerSent(daemon: Daemon): number {
  return daemon.gateway.registry.list().reduce((n, e) => n + e.pacer.counters.sent, 0);
}

/** What SIGHUP reopens, filled in as the start goes on. */
interface HangupTargets {
  log?: DaemonLog;
  daemon?: Daemon;
  pcap?: string;
}

/**
 * SIGHUP, as logrotate expects: the log file and the capture start anew at their paths. Node's
 * default for SIGHUP is to exit; this handler replaces it for the whole run, start-up and stop
 * included (before the log exists a SIGHUP does nothing; before the daemon runs only the log is
 * reopened). Reopens run one after another; an error is a warning and the daemon carries on. The
 * answers bypass the repeat limit: an operator's signal is never answered by silence.
 */
function installHangup(): HangupTargets {
  const targets: HangupTargets = {};
  let reopening = Promise.resolve();
  const reopen = async (): Promise<void> => {
    const { log: daemonLog, daemon, pcap } = targets;
    if (daemonLog === undefined) return;
    let ok = true;
    try {
      daemonLog.reopen();
    } catch (err) {
      ok = false;
      daemonLog.pino.warn({ event: 'reopen', file: daemonLog.file }, `SIGHUP: ${(err as Error).message}; the log goes to stderr until a SIGHUP can reopen it`);
    }
    try {
      await daemon?.reopen();
    } catch (err) {
      ok = false;
      daemonLog.pino.warn({ event: 'reopen', file: pcap }, `SIGHUP: ${(err as Error).message}; a later SIGHUP tries again`);
    }
    if (ok) daemonLog.pino.info({ event: 'reopen', ...(daemonLog.file !== undefined ? { logFile: daemonLog.file } : {}), ...(pcap !== undefined ? { pcap } : {}) }, 'reopened log and capture files');
  };
  process.on('SIGHUP', () => {
    reopening = reopening.then(reopen, reopen);
  });
  return targets;
}

export async function runGateway(o: RunOptions, cmd?: Command): Promise<void> {
  const hangup = installHangup();
  if (o.logLevel !== undefined && !LOG_LEVELS.includes(o.logLevel as LogLevel)) {
    throw new UsageError(`--log-level must be one of ${LOG_LEVELS.join(', ')}, got '${o.logLevel}'`);
  }
  let config = configFromFlags(o);
  let shutdownMs = parseNumberOption('--shutdown-timeout', o.shutdownTimeout, 0, 300) * 1000;
  if (o.config !== undefined) {
    let file: FileConfig;
    const { ConfigFileError, loadConfigFile } = await import('../gateway/config-file.js');
    try {
      file = loadConfigFile(o.config);
    } catch (err) {
      if (err instanceof ConfigFileError) throw new UsageError(err.message);
      throw err;
    }
    const explicit = (flag: string): boolean => cmd?.getOptionValueSource(flag) === 'cli';
    config = withConfigFile(config, file, explicit);
    if (!explicit('shutdownTimeout') && file.shutdownTimeout !== undefined) shutdownMs = file.shutdownTimeout * 1000;
    if (o.logLevel === undefined && file.logLevel !== undefined) o.logLevel = file.logLevel;
    if (o.logFile === undefined && file.logFile !== undefined) o.logFile = file.logFile;
  }
  // A config that can never work is refused before the log file is made (startDaemon checks again).
  try {
    validateConfig(config);
  } catch (err) {
    if (err instanceof RegionError || err instanceof ConfigError) throw new UsageError(err.message);
    throw err;
  }
  // A log file that cannot be written is a LogFileError (exit 1) before anything else is made.
  const daemonLog = createDaemonLog({ level: (o.logLevel as LogLevel | undefined) ?? 'info', ...(o.logFile !== undefined ? { file: o.logFile } : {}) });
  const log = daemonLog.line;
  process.once('exit', () => daemonLog.close());
  installLastResort(log);
  hangup.log = daemonLog;
  if (config.pcap !== undefined) hangup.pcap = config.pcap;
  let daemon: Daemon;
  if (config.interfaces.every((i) => i.kind === 'sim')) {
    log(`meshgw: simulated radio${o.sim ? '' : ' (no interface given)'}, with a simulated neighbour node on it; nothing is transmitted`);
    log('meshgw: attach real hardware with --port /dev/ttyUSB0 --frequency HZ --region eu868 (a LoRa modem; --driver kiss for a TNC), --kiss-tcp 127.0.0.1:8001 (Direwolf) or --udp wlan0 (Wi-Fi); meshgw --help for all');
  }
  try {
    const toStdout = o.events === true;
    daemon = await startDaemon(config, {
      log,
      onEvent: (e) => {
        logEvent(daemonLog, e);
        if (toStdout) process.stdout.write(JSON.stringify(e) + '\n');
      },
    });
  } catch (err) {
    // The reason goes to stderr (bin/meshgw.ts); a log file gets it too, for whoever reads only that.
    if (daemonLog.file !== undefined) daemonLog.write('error', `meshgw: ${(err as Error)?.message ?? String(err)}`);
    if (err instanceof RegionError || err instanceof ConfigError) throw new UsageError(err.message);
    throw err;
  }
  const running = daemon;
  hangup.daemon = daemon;
  // However the process ends (the last-resort handler exits at once), the key lock goes with it.
  process.once('exit', () => running.releaseLock());
  const gateway = daemon.gateway;
  log(`meshgw running on ${gateway.registry.list().map((e) => `${e.name} (${e.link.kind})`).join(', ')}; Ctrl-C to stop`);
  await new Promise<void>((resolve) => {
    let stopping = false;
    const stop = (): void => {
      if (stopping) {
        // A second signal: no more waiting.
        log('meshgw: second signal; exiting at once');
        process.exit(1);
      }
      stopping = true;
      resolve();
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
    // Whoever read the events went away (`meshgw | head`): stop cleanly rather than die on EPIPE.
    let closed = false;
    process.stdout.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'EPIPE') {
        // Once: every later write fails the same way, and is not a second signal.
        if (closed) return;
        log('meshgw: standard output was closed; stopping');
        closed = true;
        stop();
      } else {
        throw err;
      }
    });
  });
  // Say what the stop waits for and what went, so a log shows whether queued data was lost.
  const queued = gateway.status().reduce((n, s) => n + s.pacer.queuedFrames, 0);
  const sentBefore = pacerSent(running);
  if (queued > 0) daemonLog.write('info', `meshgw: stopping: ${queued} queued frame(s) may take up to ${shutdownMs / 1000} s to go`, { queuedFrames: queued });
  const left = await daemon.drain(shutdownMs);
  if (queued > 0 || left > 0) {
    const sent = pacerSent(running) - sentBefore;
    daemonLog.write('info', `meshgw: sent ${sent} frame(s) while stopping; ${left} still queued`, { sentFrames: sent, leftFrames: left });
  }
  if (left > 0) log(`warning: meshgw: ${left} queued frame(s) not sent within the ${shutdownMs / 1000} s shutdown timeout`);
  await daemon.stop();
  log('meshgw stopped');
}
