/**
 * The daemon's config file (src/gateway/config-file.ts over src/gateway/yaml-config.ts), parsed
 * from text as loadConfigFile does after reading it: either a ConfigFileError with a one-line
 * message naming the file, or a config that satisfies the schema. Never a TypeError, never
 * another error type.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ConfigFileError, LORA_BANDWIDTHS, LOG_LEVELS, parseConfigText, type FileConfig } from '../../../../src/gateway/config-file.js';
import { DEFAULT_CONFIG_YAML } from '../../../../src/cli/init.js';
import { expectRejection, invariant, type FuzzTarget } from '../../harness.js';

const FILE = 'fuzz.yaml';
const utf8 = new TextDecoder('utf-8', { fatal: false });
const enc = new TextEncoder();

/** examples/ from test/fuzz/targets/edge (vitest) or dist/test/fuzz/targets/edge (main.js). */
function examples(): string[] {
  const here = dirname(fileURLToPath(import.meta.url));
  for (const up of [['..', '..', '..', '..'], ['..', '..', '..', '..', '..']]) {
    const dir = join(here, ...up, 'examples');
    if (!existsSync(dir)) continue;
    return ['lora-chain.yaml', 'lora-wifi-gateway.yaml']
      .map((f) => join(dir, f))
      .filter((f) => existsSync(f))
      .map((f) => readFileSync(f, 'utf8'));
  }
  return [];
}

/** Comment lines off, so that a file fits in maxLength with its keys. */
const uncommented = (text: string): string =>
  text
    .split('\n')
    .filter((l) => !l.trimStart().startsWith('#') && l.trim() !== '')
    .join('\n') + '\n';

const inline = [
  '',
  'region: eu868\n',
  'region: us915\nfrequency: 915000000\ncap: {shortPercent: 10, longPercent: 1}\n',
  'api: off\nmetrics: {host: 127.0.0.1, port: 9100}\nlogLevel: debug\nstatusInterval: 0\nshutdownTimeout: 300\n',
  'api: {host: 0.0.0.0, port: 7840}\napiToken: s3cret\n',
  'interfaces:\n  - kind: lora\n    path: /dev/ttyUSB0\n    baudRate: 115200\n    minFirmware: "1.74"\n    radio: {frequency: 869525000, bandwidth: 125000, sf: 9, cr: 5, txPower: 14}\n',
  'interfaces:\n  - kind: kiss\n    path: /dev/ttyS0\n    callsign: N0CALL-1\n    csma: {txDelayMs: 300, persistence: 0.25, slotTimeMs: 100, txTailMs: 10, fullDuplex: false}\n  - kind: slip\n    path: /dev/ttyS1\n',
  'interfaces:\n  - kind: kiss-tcp\n    host: localhost\n    port: 8001\n  - kind: udp\n    interface: wlan0\n    port: 4269\n    peers: [{address: 10.0.0.2, port: 4269}]\n    mtu: 1400\n',
  'interfaces:\n  - kind: mqtt\n    url: mqtt://broker:1883/mesh\n    mesh: m1\n    username: u\n    passwordEnv: MQTT_PW\n    mtu: 256\n    framesPerSecond: 10\n  - kind: tcp-listen\n    host: 0.0.0.0\n    port: 0\n    token: t\n  - kind: tcp-connect\n    host: h\n    port: 65535\n  - {kind: sim}\n',
  // Anchors and aliases (a few; many are a resource attack the loader must refuse cleanly).
  'radio: &r {frequency: 869525000, bandwidth: 125000, sf: 7, cr: 5, txPower: 2}\ninterfaces:\n  - {kind: lora, path: /dev/a, radio: *r}\n  - {kind: lora, path: /dev/b, radio: *r}\n',
  'a: &a [x, x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\nc: [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\n',
  'interfaces: [{kind: lora, radio: {sf: 13}}]\nfrequncy: 1\n',
  '%YAML 1.2\n---\nregion: none\n...\n',
  '{region: eu868, interfaces: [], key: k.pem, stateDir: /var/lib/meshgw, pcap: out.pcap, logFile: /tmp/l}\n',
];

const inRange = (v: unknown, min: number, max: number): boolean => typeof v === 'number' && Number.isFinite(v) && v >= min && v <= max;

/** What the schema promises of a config it accepts (spot checks of every kind of rule). */
function checkConfig(c: FileConfig): void {
  invariant(typeof c === 'object' && c !== null && !Array.isArray(c), 'the config is not a mapping');
  if (c.frequency !== undefined) invariant(Number.isInteger(c.frequency) && inRange(c.frequency, 100_000_000, 3_000_000_000), `frequency ${c.frequency}`);
  if (c.statusInterval !== undefined) invariant(inRange(c.statusInterval, 0, 86_400), `statusInterval ${c.statusInterval}`);
  if (c.shutdownTimeout !== undefined) invariant(inRange(c.shutdownTimeout, 0, 300), `shutdownTimeout ${c.shutdownTimeout}`);
  if (c.logLevel !== undefined) invariant((LOG_LEVELS as readonly string[]).includes(c.logLevel), `logLevel ${c.logLevel}`);
  if (c.cap?.shortPercent !== undefined) invariant(inRange(c.cap.shortPercent, 0.01, 100), 'cap.shortPercent');
  if (c.cap?.longPercent !== undefined) invariant(inRange(c.cap.longPercent, 0.01, 100), 'cap.longPercent');
  for (const hp of [c.api, c.metrics]) {
    if (hp === undefined || hp === 'off') continue;
    invariant(typeof hp.host === 'string' && hp.host.length > 0 && Number.isInteger(hp.port) && inRange(hp.port, 0, 65_535), 'api/metrics host:port');
  }
  invariant(!(c.apiToken !== undefined && c.apiTokenFile !== undefined), 'both apiToken and apiTokenFile');
  for (const s of [c.key, c.stateDir, c.pcap, c.apiToken, c.apiTokenFile, c.logFile]) {
    invariant(s === undefined || (typeof s === 'string' && s.length > 0), 'an empty string setting');
  }
  if (c.interfaces === undefined) return;
  invariant(Array.isArray(c.interfaces), 'interfaces is not a list');
  for (const spec of c.interfaces) {
    const i = spec as unknown as Record<string, unknown>;
    invariant(typeof i === 'object' && i !== null && typeof i['kind'] === 'string', 'an interface without a kind');
    if (i['kind'] === 'lora') {
      const r = i['radio'] as Record<string, unknown>;
      invariant(typeof i['path'] === 'string' && (i['path'] as string).length > 0, 'lora without a path');
      invariant(Number.isInteger(r['sf']) && inRange(r['sf'], 5, 12), `sf ${String(r['sf'])}`);
      invariant(Number.isInteger(r['cr']) && inRange(r['cr'], 5, 8), `cr ${String(r['cr'])}`);
      invariant(LORA_BANDWIDTHS.includes(r['bandwidth'] as number), `bandwidth ${String(r['bandwidth'])}`);
      const fw = i['minFirmware'];
      invariant(fw === undefined || (Array.isArray(fw) && fw.length === 2 && fw.every((n) => Number.isInteger(n))), 'minFirmware');
    }
    if (i['port'] !== undefined) invariant(Number.isInteger(i['port']) && inRange(i['port'], 0, 65_535), `port ${String(i['port'])}`);
  }
}

export const configFileTarget: FuzzTarget = {
  name: 'config-file',
  maxLength: 2048,
  corpus: () => [...inline, ...examples().map(uncommented), uncommented(DEFAULT_CONFIG_YAML)].map((t) => enc.encode(t)),
  one(input) {
    const text = utf8.decode(input);
    const config = expectRejection(
      () => parseConfigText(text, FILE),
      (err) => {
        if (!(err instanceof ConfigFileError)) return false;
        invariant(err.message.startsWith(FILE), `error message does not name the file: ${err.message}`);
        invariant(err.message.length > FILE.length + 2, `error without a message: ${err.message}`);
        return true;
      },
    );
    if (config !== undefined) checkConfig(config);
  },
};
