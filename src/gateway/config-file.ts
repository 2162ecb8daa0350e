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
 * stateDir, pcap) are returned as written.
 */
import { readFileSync } from 'node:fs';
import { isIPv4 } from 'node:net';
import { dirname, resolve } from 'node:path';
import { LineCounter, parseDocument } from 'yaml';
import { z } from 'zod';
import { KISS_MAX_TIME_MS } from '../link/csma.js';
import { parseAx25Address } from '../link/ax25.js';
import { parseRegionName, type RegionName } from '../link/airtime/regions.js';
import type { InterfaceSpec } from './config.js';

export class ConfigFileError extends Error {
  override readonly name = 'ConfigFileError';
}

export type LogLevel = 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal';

export const LOG_LEVELS: readonly LogLevel[] = Object.freeze(['trace', 'debug', 'info', 'warn', 'error', 'fatal'] as const);

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
  metrics?: { host: string; port: number } | 'off';
  /** Seconds the daemon waits for a clean stop, 0..300. */
  shutdownTimeout?: number;
  interfaces?: InterfaceSpec[];
}

// ---- messages ----

/** A value as the messages show it. */
function show(v: unknown): string {
  if (v === undefined) return 'nothing';
  if (v === null) return 'an empty value';
  if (typeof v === 'string') return JSON.stringify(v);
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a mapping';
  return String(v);
}

/** An error function for zod: `EXPECTATION, got VALUE`, or `missing (EXPECTATION)`. */
function expect(expectation: string) {
  return (iss: { input?: unknown }): string =>
    iss.input === undefined ? `missing (${expectation})` : `${expectation}, got ${show(iss.input)}`;
}

/** Optimal string alignment distance (Levenshtein with adjacent transpositions). */
function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let v = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) v = Math.min(v, d[i - 2]![j - 2]! + 1);
      d[i]![j] = v;
    }
  }
  return d[a.length]![b.length]!;
}

/** The known key closest to `key`, if it is close enough to be a typo of it. */
export function closestKey(key: string, known: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const k of known) {
    const distance = editDistance(key.toLowerCase(), k.toLowerCase());
    if (distance < bestDistance) {
      best = k;
      bestDistance = distance;
    }
  }
  const allowed = key.length <= 3 ? 1 : 2;
  return best !== undefined && bestDistance <= allowed ? best : undefined;
}

// ---- schema building blocks ----

/** A `.strict()` object: unknown keys are errors, with the closest known key as a suggestion. */
function strict<T extends z.ZodRawShape>(shape: T, what = 'a mapping') {
  const known = Object.keys(shape);
  return z
    .object(shape, {
      error: (iss) => {
        if (iss.code === 'unrecognized_keys') {
          const guess = closestKey(String(iss.keys[0]), known);
          return guess !== undefined ? `unknown key (did you mean ${guess}?)` : 'unknown key';
        }
        return expect(`must be ${what}`)(iss);
      },
    })
    .strict();
}

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

const INTERFACE_KINDS = ['lora', 'kiss', 'slip', 'kiss-tcp', 'udp', 'sim'] as const;

const lora = strict({ kind: z.literal('lora'), name: name.optional(), path, baudRate: baudRate.optional(), radio });
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

const interfaceSchema = z.discriminatedUnion('kind', [lora, kiss, slip, kissTcp, udp, sim], {
  error: (iss) => {
    const kinds = `must be one of ${INTERFACE_KINDS.join(', ')}`;
    if (iss.code === 'invalid_union') {
      const input = iss.input as { kind?: unknown } | undefined;
      return input?.kind === undefined ? `missing (${kinds})` : `${kinds}, got ${show(input.kind)}`;
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

// ---- errors ----

type Issue = z.core.$ZodIssue;

/** The issues with every `off | {host, port}` union replaced by its mapping side's issues. */
function flatten(issues: readonly Issue[], prefix: readonly PropertyKey[] = []): Array<{ path: PropertyKey[]; issue: Issue }> {
  const out: Array<{ path: PropertyKey[]; issue: Issue }> = [];
  for (const issue of issues) {
    const path = [...prefix, ...issue.path];
    const mappingSide = issue.code === 'invalid_union' ? issue.errors[1] : undefined;
    const input = (issue as { input?: unknown }).input;
    if (mappingSide !== undefined && typeof input === 'object' && input !== null && !Array.isArray(input)) {
      out.push(...flatten(mappingSide, path));
    } else {
      out.push({ path, issue });
    }
  }
  return out;
}

function formatPath(path: readonly PropertyKey[]): string {
  let s = '';
  for (const p of path) s += typeof p === 'number' ? `[${p}]` : s === '' ? String(p) : `.${String(p)}`;
  return s;
}

/** One line for the first problem, unknown keys first (a misspelt key also makes a key go missing). */
function describe(error: z.ZodError, file: string): ConfigFileError {
  const all = flatten(error.issues);
  const first = all.find((i) => i.issue.code === 'unrecognized_keys') ?? all[0];
  if (first === undefined) return new ConfigFileError(`${file}: invalid config`);
  const path = first.issue.code === 'unrecognized_keys' ? [...first.path, first.issue.keys[0]!] : first.path;
  const where = formatPath(path);
  return new ConfigFileError(where === '' ? `${file}: ${first.issue.message}` : `${file}: ${where}: ${first.issue.message}`);
}

// ---- entry points ----

/** The config in `text` (YAML), validated; `file` names it in messages. Throws ConfigFileError. */
export function parseConfigText(text: string, file: string): FileConfig {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false });
  const syntax = doc.errors[0];
  if (syntax !== undefined) {
    const { line, col } = lineCounter.linePos(syntax.pos[0]);
    throw new ConfigFileError(`${file}:${line}:${col}: ${syntax.message}`);
  }
  // An empty file (or one of only comments) is an empty config.
  const data: unknown = doc.toJS() ?? {};
  const result = fileSchema.safeParse(data, { reportInput: true });
  if (!result.success) throw describe(result.error, file);
  return result.data;
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
  return config;
}

/** The file's interfaces (none when it gives none). */
export function interfacesFromFile(c: FileConfig): InterfaceSpec[] {
  return c.interfaces ?? [];
}
