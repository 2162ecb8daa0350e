/**
 * The daemon's YAML config file: parsed with `yaml`, validated with zod into a FileConfig (plain
 * values, range-checked, every interface already an InterfaceSpec). Unknown keys are errors, with
 * a suggestion when one is close to a known key. Every problem is a ConfigFileError with one line
 * naming the file and the key: `/etc/meshgw.yaml: interfaces[1].radio.sf: must be an integer
 * 5..12, got 13`, or `FILE:LINE:COL: message` for YAML syntax. What spans several values (a
 * region's frequency for a TNC, a HELLO fitting the dwell limit) stays with `validateConfig`.
 *
 * `apiTokenFile` is read by loadConfigFile, relative to the config file's directory; its
 * trimmed contents become `apiToken` (and `apiTokenFile` the resolved path). Other paths (key,
 * stateDir, pcap, logFile) are returned as written.
 */
import { readFileSync } from 'node:fs';
import { isIPv4 } from 'node:net';
import { dirname, resolve } from 'node:path';
import { z } from 'zod';
import { KISS_MAX_TIME_MS } from '../link/csma.js';
import { parseAx25Address } from '../link/ax25.js';
import { parseRegionName, type RegionName } from '../link/airtime/regions.js';
import type { InterfaceSpec } from './config.js';
import { parseYamlWith, yamlExpect, yamlShow, yamlStrict, YamlConfigError } from './yaml-config.js';

export class ConfigFileError extends YamlConfigError {
  override name = 'ConfigFileError';
}

import { LOG_LEVELS, type LogLevel } from './log.js';
export { LOG_LEVELS, type LogLevel };

/** The LoRa bandwidths (Hz) of SX127x/SX126x modems. */
export const LORA_BANDWIDTHS: readonly number[] = Object.freeze([7800, 10400, 15600, 20800, 31250, 41700, 62500, 125000, 250000, 500000]);

export interface FileConfig {
  region?: RegionName;
  /** Channel of TNC interfaces (kiss, slip, kiss-tcp), Hz. */
  frequency?: number;
  cap?: { shortPercent?: number; longPercent?: number };
  key?: string;
  stateDir?: string;
  pcap?: string;
  api?: { host: string; port: number } | 'off';
  apiToken?: string;
  apiTokenFile?: string;
  /** Seconds between status events, 0..86400 (0: none). */
  statusInterval?: number;
  logLevel?: LogLevel;
  /** A file the log's JSON lines are appended to (reopened on SIGHUP), instead of stderr. */
  logFile?: string;
  metrics?: { host: string; port: number } | 'off';
  /** Seconds the daemon waits for a clean stop, 0..300. */
  shutdownTimeout?: number;
  interfaces?: InterfaceSpec[];
}

// ---- messages ----

const expect = yamlExpect;

// ---- schema building blocks ----

const strict = yamlStrict;

function int(min: number, max: number, unit = '') {
  const e = expect(`must be an integer ${min}..${max}${unit}`);
  return z.number({ error: e }).int({ error: e }).min(min, { error: e }).max(max, { error: e });
}

function num(min: number, max: number, unit = '') {
  const e = expect(`must be a number ${min}..${max}${unit}`);
  return z.number({ error: e }).min(min, { error: e }).max(max, { error: e });
}

function str(what = 'a non-empty string') {
  const e = expect(`must be ${what}`);
  return z.string({ error: e }).min(1, { error: e });
}

function bool() {
  return z.boolean({ error: expect('must be true or false') });
}

function list<T extends z.ZodType>(item: T, what: string) {
  return z.array(item, { error: expect(`must be a list of ${what}`) });
}

const hostPort = (minPort: number) => strict({ host: str('a host name or address'), port: int(minPort, 65_535) }, 'a mapping with host and port');

/** `off`, or `{host, port}` (a mismatch is reported from the mapping's side: see `flatten`). */
function offOr<T extends z.ZodType>(obj: T) {
  return z.union([z.literal('off'), obj], { error: expect('must be off or a mapping with host and port') });
}

const ipv4 = () => {
  const e = expect('must be an IPv4 address');
  return z.string({ error: e }).refine((s) => isIPv4(s), { error: e });
};

const region = z.string({ error: expect('must be eu868, us915 or none') }).transform((s, ctx): RegionName => {
  try {
    return parseRegionName(s);
  } catch (err) {
    ctx.issues.push({ code: 'custom', message: (err as Error).message, input: s });
    return z.NEVER;
  }
});

const callsign = z.string({ error: expect('must be a callsign, e.g. N0CALL-1') }).superRefine((s, ctx) => {
  try {
    parseAx25Address(s);
  } catch (err) {
    ctx.addIssue({ code: 'custom', message: (err as Error).message, input: s });
  }
});

const baudRate = int(300, 4_000_000, ' bit/s');
const frequency = int(100_000_000, 3_000_000_000, ' Hz');
const port = int(1, 65_535);
const name = str('a non-empty interface name');
const path = str('a device path, e.g. /dev/ttyUSB0');

const bandwidthError = expect(`must be one of ${LORA_BANDWIDTHS.join(', ')} Hz`);
const radio = strict({
  frequency,
  bandwidth: z.number({ error: bandwidthError }).refine((v) => LORA_BANDWIDTHS.includes(v), { error: bandwidthError }),
  sf: int(5, 12),
  cr: int(5, 8),
  txPower: int(0, 30, ' dBm'),
});

const csma = strict({
  txDelayMs: num(0, KISS_MAX_TIME_MS, ' ms'),
  persistence: num(0, 1),
  slotTimeMs: num(0, KISS_MAX_TIME_MS, ' ms'),
  txTailMs: num(0, KISS_MAX_TIME_MS, ' ms'),
  fullDuplex: bool(),
}).partial();

const INTERFACE_KINDS = ['lora', 'kiss', 'slip', 'kiss-tcp', 'udp', 'mqtt', 'tcp-listen', 'tcp-connect', 'sim'] as const;

const firmwareError = expect('must be a firmware version MAJOR.MINOR, e.g. "1.74"');
const firmware = z
  .string({ error: firmwareError })
  .regex(/^\d{1,3}\.\d{1,3}$/, { error: firmwareError })
  .transform((v): [number, number] => [Number(v.split('.')[0]), Number(v.split('.')[1])]);
const lora = strict({ kind: z.literal('lora'), name: name.optional(), path, baudRate: baudRate.optional(), radio, minFirmware: firmware.optional(), mtu: int(1, 508, ' bytes').optional() });
const kiss = strict({
  kind: z.literal('kiss'),
  name: name.optional(),
  path,
  baudRate: baudRate.optional(),
  callsign: callsign.optional(),
  csma: csma.optional(),
});
const slip = strict({ kind: z.literal('slip'), name: name.optional(), path, baudRate: baudRate.optional() });
const kissTcp = strict({
  kind: z.literal('kiss-tcp'),
  name: name.optional(),
  host: str('a host name or address'),
  port,
  callsign: callsign.optional(),
  csma: csma.optional(),
});
const udpIfaceError = expect('must be a network interface name, e.g. wlan0');
const udp = strict({
  kind: z.literal('udp'),
  name: name.optional(),
  interface: z.string({ error: udpIfaceError }).regex(/^[A-Za-z0-9_.@-]{1,15}$/, { error: udpIfaceError }).optional(),
  address: ipv4().optional(),
  port,
  peers: list(strict({ address: ipv4(), port }, 'a mapping with address and port'), 'peers ({address, port})').optional(),
  mtu: int(64, 65_507, ' bytes').optional(),
}).superRefine((u, ctx) => {
  if (u.interface !== undefined && u.address !== undefined) {
    ctx.addIssue({ code: 'custom', path: ['address'], message: 'give either interface or address, not both' });
  }
});
const sim = strict({ kind: z.literal('sim') });

/** Secrets and PEM files may be given inline, as a file (relative to the config file) or as an environment variable's name. */
const envName = z.string({ error: expect('must be an environment variable name') }).regex(/^[A-Za-z_][A-Za-z0-9_]*$/, { error: expect('must be an environment variable name') });
const bridgeRates = {
  mtu: int(256, 65_535, ' bytes').optional(),
  framesPerSecond: num(0.1, 100_000, ' frames/s').optional(),
  bytesPerSecond: num(100, 1e9, ' bytes/s').optional(),
};
const mqtt = strict({
  kind: z.literal('mqtt'),
  name: name.optional(),
  url: z.string({ error: expect('must be mqtt://HOST[:PORT][/PREFIX] or mqtts://…') }).regex(/^mqtts?:\/\/[^/\s]+/, { error: expect('must be mqtt://HOST[:PORT][/PREFIX] or mqtts://…') }),
  mesh: z.string({ error: expect('must be a mesh name of letters, digits, _ and -') }).regex(/^[A-Za-z0-9_-]{1,64}$/, { error: expect('must be a mesh name of letters, digits, _ and -') }).optional(),
  username: str('a user name').optional(),
  password: str('a password').optional(),
  passwordFile: str('a file holding the password').optional(),
  passwordEnv: envName.optional(),
  caFile: str('a PEM file').optional(),
  certFile: str('a PEM file').optional(),
  keyFile: str('a PEM file').optional(),
  inFramesPerSecond: num(0.1, 100_000, ' frames/s').optional(),
  inBytesPerSecond: num(100, 1e9, ' bytes/s').optional(),
  ...bridgeRates,
});
const tcpCommon = {
  name: name.optional(),
  host: str('a host name or address'),
  port: int(0, 65_535),
  token: str('a shared secret').optional(),
  tokenFile: str('a file holding the shared secret').optional(),
  tokenEnv: envName.optional(),
  ...bridgeRates,
};
const tcpListen = strict({ kind: z.literal('tcp-listen'), ...tcpCommon });
const tcpConnect = strict({ kind: z.literal('tcp-connect'), ...tcpCommon });

const interfaceSchema = z.discriminatedUnion('kind', [lora, kiss, slip, kissTcp, udp, mqtt, tcpListen, tcpConnect, sim], {
  error: (iss) => {
    const kinds = `must be one of ${INTERFACE_KINDS.join(', ')}`;
    if (iss.code === 'invalid_union') {
      const input = iss.input as { kind?: unknown } | undefined;
      return input?.kind === undefined ? `missing (${kinds})` : `${kinds}, got ${yamlShow(input.kind)}`;
    }
    return expect(`must be a mapping with kind: ${INTERFACE_KINDS.join(', ')}`)(iss);
  },
});

const fileSchema = strict(
  {
    region,
    frequency,
    cap: strict({ shortPercent: num(0.01, 100, ' %'), longPercent: num(0.01, 100, ' %') }).partial(),
    key: str('a file path'),
    stateDir: str('a directory path'),
    pcap: str('a file path'),
    api: offOr(hostPort(0)),
    apiToken: str(),
    apiTokenFile: str('a file path'),
    statusInterval: num(0, 86_400, ' s'),
    logLevel: z.enum(LOG_LEVELS as [LogLevel, ...LogLevel[]], { error: expect(`must be one of ${LOG_LEVELS.join(', ')}`) }),
    logFile: str('a file path'),
    metrics: offOr(hostPort(0)),
    shutdownTimeout: num(0, 300, ' s'),
    interfaces: list(interfaceSchema, 'interfaces'),
  },
  'a mapping of config keys',
)
  .partial()
  .superRefine((c, ctx) => {
    if (c.apiToken !== undefined && c.apiTokenFile !== undefined) {
      ctx.addIssue({ code: 'custom', path: ['apiTokenFile'], message: 'give either apiToken or apiTokenFile, not both' });
    }
  });

// The schema's output must be a FileConfig (and its interfaces InterfaceSpecs) as declared.
type Parsed = z.output<typeof fileSchema>;
const _outputIsFileConfig = (p: Parsed): FileConfig => p;
void _outputIsFileConfig;

// ---- entry points ----

/** The config in `text` (YAML), validated; `file` names it in messages. Throws ConfigFileError. */
export function parseConfigText(text: string, file: string): FileConfig {
  return parseYamlWith(fileSchema, text, file, (m) => new ConfigFileError(m));
}

function readReason(err: unknown): string {
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'ENOENT' || code === 'ENOTDIR') return 'no such file';
  if (code === 'EISDIR') return 'it is a directory';
  if (code === 'EACCES' || code === 'EPERM') return 'permission denied';
  return (err as Error).message;
}

/** Reads and validates the config file at `path`, and the API token file it names. Throws ConfigFileError. */
export function loadConfigFile(path: string): FileConfig {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigFileError(`${path}: cannot read: ${readReason(err)}`);
  }
  const config = parseConfigText(text, path);
  if (config.apiTokenFile !== undefined) {
    const tokenFile = resolve(dirname(path), config.apiTokenFile);
    let token: string;
    try {
      token = readFileSync(tokenFile, 'utf8').trim();
    } catch (err) {
      throw new ConfigFileError(`${path}: apiTokenFile: cannot read ${tokenFile}: ${readReason(err)}`);
    }
    if (token === '') throw new ConfigFileError(`${path}: apiTokenFile: ${tokenFile} is empty`);
    config.apiTokenFile = tokenFile;
    config.apiToken = token;
  }
  (config.interfaces ?? []).forEach((spec, i) => resolveSecrets(spec as unknown as Record<string, unknown>, `interfaces[${i}]`, path));
  return config;
}

/**
 * An MQTT or TCP interface's secrets and PEM files from where the file says: `passwordFile` /
 * `tokenFile` (trimmed) and `caFile`, `certFile`, `keyFile` (relative to the config file's
 * directory), `passwordEnv` / `tokenEnv` (an environment variable). One source per secret.
 */
function resolveSecrets(spec: Record<string, unknown>, where: string, configPath: string): void {
  const read = (key: string, file: unknown, trim: boolean): string => {
    const full = resolve(dirname(configPath), String(file));
    let text: string;
    try {
      text = readFileSync(full, 'utf8');
    } catch (err) {
      throw new ConfigFileError(`${configPath}: ${where}.${key}: cannot read ${full}: ${readReason(err)}`);
    }
    if (trim) text = text.trim();
    if (text === '') throw new ConfigFileError(`${configPath}: ${where}.${key}: ${full} is empty`);
    return text;
  };
  for (const [secret, fileKey, envKey] of [['password', 'passwordFile', 'passwordEnv'], ['token', 'tokenFile', 'tokenEnv']] as const) {
    const given = [secret, fileKey, envKey].filter((k) => spec[k] !== undefined);
    if (given.length > 1) throw new ConfigFileError(`${configPath}: ${where}: give one of ${given.join(', ')}, not several`);
    if (spec[fileKey] !== undefined) spec[secret] = read(fileKey, spec[fileKey], true);
    if (spec[envKey] !== undefined) {
      const value = process.env[String(spec[envKey])];
      if (value === undefined || value === '') throw new ConfigFileError(`${configPath}: ${where}.${envKey}: the environment variable ${String(spec[envKey])} is not set`);
      spec[secret] = value;
    }
    delete spec[fileKey];
    delete spec[envKey];
  }
  for (const [pem, fileKey] of [['ca', 'caFile'], ['cert', 'certFile'], ['key', 'keyFile']] as const) {
    if (spec[fileKey] === undefined) continue;
    spec[pem] = read(fileKey, spec[fileKey], false);
    delete spec[fileKey];
  }
  if ((spec.cert === undefined) !== (spec.key === undefined) && spec.kind === 'mqtt') throw new ConfigFileError(`${configPath}: ${where}: certFile and keyFile go together`);
}

/** The file's interfaces (none when it gives none). */
export function interfacesFromFile(c: FileConfig): InterfaceSpec[] {
  return c.interfaces ?? [];
}
