/**
 * The YAML config file (src/gateway/config-file.ts) and `meshgw init` (src/cli/init.ts): the
 * default config parses to its documented defaults and loads back unchanged once written, its
 * commented examples are valid, every interface kind parses to its exact InterfaceSpec, and
 * every error names the file and the key.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Command } from 'commander';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { API_DEFAULT_PORT } from '../src/api/server.js';
import { DEFAULT_CONFIG_YAML, initCommand, writeDefaultConfig } from '../src/cli/init.js';
import { validateConfig, type InterfaceSpec } from '../src/gateway/config.js';
import { ConfigFileError, interfacesFromFile, loadConfigFile, parseConfigText, type FileConfig } from '../src/gateway/config-file.js';

const FILE = '/etc/meshgw.yaml';

/** The defaults DEFAULT_CONFIG_YAML documents, written out. */
const DEFAULTS: FileConfig = {
  region: 'none',
  api: { host: '127.0.0.1', port: 7840 },
  statusInterval: 60,
  logLevel: 'info',
  metrics: 'off',
  shutdownTimeout: 5,
  interfaces: [{ kind: 'sim' }],
};

function errorOf(text: string): string {
  try {
    parseConfigText(text, FILE);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigFileError);
    expect((err as Error).name).toBe('ConfigFileError');
    return (err as Error).message;
  }
  throw new Error('expected a ConfigFileError');
}

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'meshgw-config-'));
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
  vi.restoreAllMocks();
  process.exitCode = undefined;
});

describe('the default config', () => {
  it('parses to the documented defaults with one sim interface', () => {
    const c = parseConfigText(DEFAULT_CONFIG_YAML, 'meshgw.yaml');
    expect(c).toEqual(DEFAULTS);
    expect(c.interfaces).toEqual([{ kind: 'sim' }]);
    expect(interfacesFromFile(c)).toEqual([{ kind: 'sim' }]);
    expect(API_DEFAULT_PORT).toBe(7840);
  });

  it('shows every key, set or commented out', () => {
    const topLevel = ['region', 'frequency', 'cap', 'key', 'stateDir', 'pcap', 'api', 'apiToken', 'apiTokenFile', 'statusInterval', 'logLevel', 'metrics', 'shutdownTimeout', 'interfaces'];
    for (const k of topLevel) expect(DEFAULT_CONFIG_YAML).toMatch(new RegExp(`^#?${k}:`, 'm'));
    const nested = ['shortPercent', 'longPercent', 'host', 'port', 'kind', 'name', 'path', 'baudRate', 'radio', 'frequency', 'bandwidth', 'sf', 'cr', 'txPower', 'callsign', 'csma', 'txDelayMs', 'persistence', 'slotTimeMs', 'txTailMs', 'fullDuplex', 'interface', 'peers', 'address', 'mtu'];
    for (const k of nested) expect(DEFAULT_CONFIG_YAML).toMatch(new RegExp(`^ *#?[ -]*${k}:`, 'm'));
    for (const kind of ['lora', 'kiss', 'slip', 'kiss-tcp', 'udp', 'mqtt', 'tcp-listen', 'tcp-connect', 'sim']) expect(DEFAULT_CONFIG_YAML).toMatch(new RegExp(`kind: ${kind}$`, 'm'));
    for (const k of ['url', 'mesh', 'passwordFile', 'caFile', 'tokenFile', 'logFile']) expect(DEFAULT_CONFIG_YAML).toMatch(new RegExp(`^ *#?[ -]*${k}:`, 'm'));
    expect(DEFAULT_CONFIG_YAML).toContain('region: eu868');
    expect(DEFAULT_CONFIG_YAML).toContain('frequency: 869525000');
    expect(DEFAULT_CONFIG_YAML).toContain('frequency: 915000000');
    expect(DEFAULT_CONFIG_YAML).toContain('400 ms');
    expect(DEFAULT_CONFIG_YAML).toContain('port: 8001');
    expect(DEFAULT_CONFIG_YAML).toContain('interface: wlan0');
  });

  it('has interface examples that are valid once uncommented', () => {
    const at = DEFAULT_CONFIG_YAML.indexOf('\ninterfaces:\n');
    // Commented-out settings are `#` right before the key or list item (prose is `# Text`).
    const uncommented = DEFAULT_CONFIG_YAML.slice(at).replace(/^(\s*)#(?=[-A-Za-z]|  )/gm, '$1');
    const c = parseConfigText(uncommented, 'examples.yaml');
    const eu: InterfaceSpec = { kind: 'lora', name: 'lora0', path: '/dev/ttyUSB0', baudRate: 115200, radio: { frequency: 869_525_000, bandwidth: 125_000, sf: 9, cr: 5, txPower: 14 } };
    const us: InterfaceSpec = { kind: 'lora', path: '/dev/ttyUSB0', radio: { frequency: 915_000_000, bandwidth: 125_000, sf: 8, cr: 5, txPower: 14 } };
    expect(c.interfaces).toEqual([
      eu,
      us,
      { kind: 'kiss', path: '/dev/ttyACM0', baudRate: 9600, callsign: 'N0CALL-1', csma: { txDelayMs: 300, persistence: 0.25, slotTimeMs: 100, txTailMs: 50, fullDuplex: false } },
      { kind: 'slip', path: '/dev/ttyUSB1' },
      { kind: 'kiss-tcp', host: '127.0.0.1', port: 8001, callsign: 'N0CALL-2' },
      { kind: 'udp', interface: 'wlan0', port: 4269, peers: [{ address: '192.168.1.20', port: 4269 }], mtu: 1200 },
      // Secrets and PEM files by file name: loadConfigFile reads them (parseConfigText leaves them).
      { kind: 'mqtt', url: 'mqtts://gateway-north@broker.example.org:8883/meshgw', mesh: 'valley', passwordFile: 'mqtt-password', caFile: 'broker-ca.pem' },
      { kind: 'tcp-listen', host: '0.0.0.0', port: 4400, tokenFile: 'site-token' },
      { kind: 'tcp-connect', host: 'north.example.org', port: 4400, tokenFile: 'site-token' },
      { kind: 'sim' },
    ]);
    // The LoRa examples can send a HELLO under their regions (US915: the 400 ms dwell at SF8).
    const base = { keyFile: 'k', stateDir: 's', statusIntervalMs: 0 };
    expect(() => validateConfig({ ...base, region: 'eu868', interfaces: [eu] })).not.toThrow();
    expect(() => validateConfig({ ...base, region: 'us915', interfaces: [us] })).not.toThrow();
    expect(() => validateConfig({ ...base, region: 'us915', interfaces: [{ ...us, radio: { ...us.radio, sf: 11 } }] })).toThrow(/SF8 or lower/);
  });
});

describe('writeDefaultConfig', () => {
  it('writes a file with mode 0644 that loads back unchanged', () => {
    const path = join(dir, 'meshgw.yaml');
    writeDefaultConfig(path);
    expect(readFileSync(path, 'utf8')).toBe(DEFAULT_CONFIG_YAML);
    expect(statSync(path).mode & 0o777).toBe(0o644);
    expect(loadConfigFile(path)).toEqual(parseConfigText(DEFAULT_CONFIG_YAML, path));
    expect(loadConfigFile(path)).toEqual(DEFAULTS);
  });

  it('refuses to overwrite without force, and overwrites with it', () => {
    const path = join(dir, 'meshgw.yaml');
    writeFileSync(path, 'region: eu868\n');
    expect(() => writeDefaultConfig(path)).toThrow(/already exists.*--force/);
    expect(readFileSync(path, 'utf8')).toBe('region: eu868\n');
    writeDefaultConfig(path, { force: true });
    expect(readFileSync(path, 'utf8')).toBe(DEFAULT_CONFIG_YAML);
    expect(statSync(path).mode & 0o777).toBe(0o644);
  });

  it('does not create a missing directory', () => {
    const path = join(dir, 'nope', 'meshgw.yaml');
    expect(() => writeDefaultConfig(path)).toThrow(/directory .*nope does not exist/);
  });

  it('meshgw init writes FILE and says so; a second run fails with exit code 1', async () => {
    const path = join(dir, 'init.yaml');
    const stderr: string[] = [];
    vi.spyOn(process.stderr, 'write').mockImplementation((s: string | Uint8Array) => (stderr.push(String(s)), true));
    const program = (): Command => {
      const p = new Command('meshgw').exitOverride();
      initCommand(p);
      return p;
    };
    await program().parseAsync(['init', path], { from: 'user' });
    expect(stderr).toEqual([`wrote ${path}\n`]);
    expect(process.exitCode).toBeUndefined();
    await program().parseAsync(['init', path], { from: 'user' });
    expect(stderr[1]).toMatch(/^meshgw: .*already exists.*\n$/);
    expect(process.exitCode).toBe(1);
    process.exitCode = undefined;
    await program().parseAsync(['init', path, '--force'], { from: 'user' });
    expect(stderr[2]).toBe(`wrote ${path}\n`);
    expect(process.exitCode).toBeUndefined();
  });
});

describe('every interface kind', () => {
  it('parses to the exact InterfaceSpec objects, with the top-level keys', () => {
    const text = `
region: EU-868
frequency: 869525000
cap: { shortPercent: 5, longPercent: 0.5 }
key: /var/lib/meshgw/id.json
stateDir: /var/lib/meshgw
pcap: /tmp/x.pcapng
api: { host: 0.0.0.0, port: 0 }
apiToken: s3cret
statusInterval: 2.5
logLevel: debug
metrics: { host: 127.0.0.1, port: 9464 }
shutdownTimeout: 0
interfaces:
  - kind: lora
    name: radio
    path: /dev/ttyUSB0
    baudRate: 115200
    radio: { frequency: 869525000, bandwidth: 125000, sf: 9, cr: 5, txPower: 14 }
  - kind: kiss
    path: /dev/ttyACM0
    callsign: N0CALL-7
    csma: { persistence: 1, fullDuplex: true }
  - { kind: slip, name: s, path: /dev/ttyS0, baudRate: 300 }
  - { kind: kiss-tcp, host: localhost, port: 8001, csma: { txDelayMs: 2550 } }
  - { kind: udp, address: 127.0.0.1, port: 4270, peers: [{ address: 127.0.0.1, port: 4271 }], mtu: 65507 }
  - { kind: udp, name: wifi, interface: wlan0, port: 4269 }
  - kind: sim
`;
    const expected: FileConfig = {
      region: 'eu868',
      frequency: 869_525_000,
      cap: { shortPercent: 5, longPercent: 0.5 },
      key: '/var/lib/meshgw/id.json',
      stateDir: '/var/lib/meshgw',
      pcap: '/tmp/x.pcapng',
      api: { host: '0.0.0.0', port: 0 },
      apiToken: 's3cret',
      statusInterval: 2.5,
      logLevel: 'debug',
      metrics: { host: '127.0.0.1', port: 9464 },
      shutdownTimeout: 0,
      interfaces: [
        { kind: 'lora', name: 'radio', path: '/dev/ttyUSB0', baudRate: 115200, radio: { frequency: 869_525_000, bandwidth: 125_000, sf: 9, cr: 5, txPower: 14 } },
        { kind: 'kiss', path: '/dev/ttyACM0', callsign: 'N0CALL-7', csma: { persistence: 1, fullDuplex: true } },
        { kind: 'slip', name: 's', path: '/dev/ttyS0', baudRate: 300 },
        { kind: 'kiss-tcp', host: 'localhost', port: 8001, csma: { txDelayMs: 2550 } },
        { kind: 'udp', address: '127.0.0.1', port: 4270, peers: [{ address: '127.0.0.1', port: 4271 }], mtu: 65507 },
        { kind: 'udp', name: 'wifi', interface: 'wlan0', port: 4269 },
        { kind: 'sim' },
      ],
    };
    const c = parseConfigText(text, FILE);
    expect(c).toStrictEqual(expected);
    expect(interfacesFromFile(c)).toStrictEqual(expected.interfaces);
  });

  it('accepts an empty file and api/metrics off', () => {
    expect(parseConfigText('', FILE)).toEqual({});
    expect(parseConfigText('# nothing\n', FILE)).toEqual({});
    expect(interfacesFromFile({})).toEqual([]);
    expect(parseConfigText('api: off\nmetrics: off\n', FILE)).toEqual({ api: 'off', metrics: 'off' });
  });
});

describe('errors name the file and the key', () => {
  it('an unknown top-level key, with a suggestion when one is close', () => {
    expect(errorOf('bogus: 1\n')).toBe(`${FILE}: bogus: unknown key`);
    expect(errorOf('statusIntreval: 5\n')).toBe(`${FILE}: statusIntreval: unknown key (did you mean statusInterval?)`);
  });

  it('an unknown nested key, with a suggestion', () => {
    expect(errorOf('api: { hots: 127.0.0.1, port: 1 }\n')).toBe(`${FILE}: api.hots: unknown key (did you mean host?)`);
    expect(errorOf('interfaces:\n  - kind: lora\n    path: /dev/x\n    radio: { frequency: 869525000, bandwidth: 125000, sf: 9, cr: 5, txPowr: 14 }\n')).toBe(
      `${FILE}: interfaces[0].radio.txPowr: unknown key (did you mean txPower?)`,
    );
    expect(errorOf('interfaces: [{ kind: kiss, path: /dev/x, csma: { slottime: 10 } }]\n')).toBe(
      `${FILE}: interfaces[0].csma.slottime: unknown key (did you mean slotTimeMs?)`,
    );
    expect(errorOf('interfaces: [{ kind: kiss, path: /dev/x, csma: { colour: 1 } }]\n')).toBe(`${FILE}: interfaces[0].csma.colour: unknown key`);
    expect(errorOf('interfaces: [{ kind: sim, name: x }]\n')).toBe(`${FILE}: interfaces[0].name: unknown key`);
  });

  it('a wrong type', () => {
    const radio = (sf: string): string => `interfaces:\n  - kind: sim\n  - kind: lora\n    path: /dev/x\n    radio: { frequency: 869525000, bandwidth: 125000, sf: ${sf}, cr: 5, txPower: 14 }\n`;
    expect(errorOf(radio('"nine"'))).toBe(`${FILE}: interfaces[1].radio.sf: must be an integer 5..12, got "nine"`);
    expect(errorOf('api: 5\n')).toBe(`${FILE}: api: must be off or a mapping with host and port, got 5`);
    expect(errorOf('interfaces: { kind: sim }\n')).toBe(`${FILE}: interfaces: must be a list of interfaces, got a mapping`);
    expect(errorOf('cap:\n')).toBe(`${FILE}: cap: must be a mapping, got an empty value`);
    expect(errorOf('- a\n')).toBe(`${FILE}: must be a mapping of config keys, got a list`);
    expect(errorOf('interfaces: [{ kind: lora, radio: { frequency: 869525000, bandwidth: 125000, sf: 9, cr: 5, txPower: 14 } }]\n')).toBe(
      `${FILE}: interfaces[0].path: missing (must be a device path, e.g. /dev/ttyUSB0)`,
    );
  });

  it('an out-of-range value', () => {
    const radio = (k: string, v: string): string => {
      const r: Record<string, string> = { frequency: '869525000', bandwidth: '125000', sf: '9', cr: '5', txPower: '14', [k]: v };
      return `interfaces:\n  - kind: sim\n  - kind: lora\n    path: /dev/x\n    radio: { ${Object.entries(r).map(([a, b]) => `${a}: ${b}`).join(', ')} }\n`;
    };
    expect(errorOf(radio('sf', '13'))).toBe(`${FILE}: interfaces[1].radio.sf: must be an integer 5..12, got 13`);
    expect(errorOf(radio('sf', '8.5'))).toBe(`${FILE}: interfaces[1].radio.sf: must be an integer 5..12, got 8.5`);
    expect(errorOf(radio('cr', '9'))).toBe(`${FILE}: interfaces[1].radio.cr: must be an integer 5..8, got 9`);
    expect(errorOf(radio('bandwidth', '125'))).toMatch(new RegExp(`^${FILE}: interfaces\\[1\\]\\.radio\\.bandwidth: must be one of 7800, .*500000 Hz, got 125$`));
    expect(errorOf(radio('frequency', '50000000'))).toBe(`${FILE}: interfaces[1].radio.frequency: must be an integer 100000000..3000000000 Hz, got 50000000`);
    expect(errorOf('statusInterval: 90000\n')).toBe(`${FILE}: statusInterval: must be a number 0..86400 s, got 90000`);
    expect(errorOf('shutdownTimeout: -1\n')).toBe(`${FILE}: shutdownTimeout: must be a number 0..300 s, got -1`);
    expect(errorOf('api: { host: localhost, port: 65536 }\n')).toBe(`${FILE}: api.port: must be an integer 0..65535, got 65536`);
    expect(errorOf('interfaces: [{ kind: kiss-tcp, host: h, port: 0 }]\n')).toBe(`${FILE}: interfaces[0].port: must be an integer 1..65535, got 0`);
    expect(errorOf('interfaces: [{ kind: slip, path: /dev/x, baudRate: 299 }]\n')).toBe(`${FILE}: interfaces[0].baudRate: must be an integer 300..4000000 bit/s, got 299`);
    expect(errorOf('interfaces: [{ kind: udp, interface: wlan0, port: 1, mtu: 63 }]\n')).toBe(`${FILE}: interfaces[0].mtu: must be an integer 64..65507 bytes, got 63`);
    expect(errorOf('interfaces: [{ kind: kiss, path: /dev/x, csma: { persistence: 1.5 } }]\n')).toBe(`${FILE}: interfaces[0].csma.persistence: must be a number 0..1, got 1.5`);
    expect(errorOf('interfaces: [{ kind: kiss, path: /dev/x, csma: { txTailMs: 2560 } }]\n')).toBe(`${FILE}: interfaces[0].csma.txTailMs: must be a number 0..2550 ms, got 2560`);
    expect(errorOf('logLevel: verbose\n')).toBe(`${FILE}: logLevel: must be one of trace, debug, info, warn, error, fatal, got "verbose"`);
    expect(errorOf('interfaces: [{ kind: radio }]\n')).toBe(`${FILE}: interfaces[0].kind: must be one of lora, kiss, slip, kiss-tcp, udp, mqtt, tcp-listen, tcp-connect, sim, got "radio"`);
    expect(errorOf('interfaces: [{ kind: udp, interface: wlan0, address: 10.0.0.1, port: 1 }]\n')).toBe(`${FILE}: interfaces[0].address: give either interface or address, not both`);
    expect(errorOf('interfaces: [{ kind: udp, address: 10.0.0.300, port: 1 }]\n')).toBe(`${FILE}: interfaces[0].address: must be an IPv4 address, got "10.0.0.300"`);
    expect(errorOf('interfaces: [{ kind: kiss, path: /dev/x, callsign: TOOLONGCALL }]\n')).toMatch(new RegExp(`^${FILE}: interfaces\\[0\\]\\.callsign: .+`));
  });

  it('a bad region, through parseRegionName', () => {
    expect(parseConfigText('region: " US_915 "\n', FILE).region).toBe('us915');
    expect(errorOf('region: mars\n')).toBe(`${FILE}: region: unknown region "mars"; expected one of eu868, us915, none`);
  });

  it('a YAML syntax error, with line and column', () => {
    expect(errorOf('region: none\napi: [1, 2\n')).toMatch(new RegExp(`^${FILE}:3:1: \\S`));
    expect(errorOf('region: none\n\tlogLevel: info\n')).toBe(`${FILE}:2:1: Tabs are not allowed as indentation`);
    expect(errorOf('region: none\nregion: eu868\n')).toBe(`${FILE}:2:1: Map keys must be unique`);
    expect(errorOf('a: b\n c\nd: : e\n')).toBe(`${FILE}:3:4: Nested mappings are not allowed in compact mappings`);
  });

  it('apiToken and apiTokenFile both set', () => {
    expect(errorOf('apiToken: a\napiTokenFile: t\n')).toBe(`${FILE}: apiTokenFile: give either apiToken or apiTokenFile, not both`);
  });

  it('a missing or unreadable file', () => {
    const path = join(dir, 'missing.yaml');
    expect(() => loadConfigFile(path)).toThrow(ConfigFileError);
    expect(() => loadConfigFile(path)).toThrow(`${path}: cannot read: no such file`);
    expect(() => loadConfigFile(dir)).toThrow(`${dir}: cannot read: it is a directory`);
  });

  it('loadConfigFile names the file in validation errors', () => {
    const path = join(dir, 'bad.yaml');
    writeFileSync(path, 'interfaces:\n  - kind: lora\n    path: /dev/x\n    radio: { frequency: 869525000, bandwidth: 125000, sf: 13, cr: 5, txPower: 14 }\n');
    expect(() => loadConfigFile(path)).toThrow(`${path}: interfaces[0].radio.sf: must be an integer 5..12, got 13`);
  });
});

describe('apiTokenFile', () => {
  it('is read relative to the config file, trimmed, into apiToken', () => {
    const etc = join(dir, 'etc');
    mkdirSync(join(etc, 'secrets'), { recursive: true });
    writeFileSync(join(etc, 'secrets', 'token'), '  t0ken-42\n\n');
    const path = join(etc, 'meshgw.yaml');
    writeFileSync(path, 'api: { host: 0.0.0.0, port: 7840 }\napiTokenFile: secrets/token\n');
    const c = loadConfigFile(path);
    expect(c.apiToken).toBe('t0ken-42');
    expect(c.apiTokenFile).toBe(join(etc, 'secrets', 'token'));
    expect(parseConfigText('apiTokenFile: secrets/token\n', path)).toEqual({ apiTokenFile: 'secrets/token' });
  });

  it('a missing or empty token file is an error naming both files', () => {
    const path = join(dir, 'meshgw.yaml');
    writeFileSync(path, 'apiTokenFile: token\n');
    expect(() => loadConfigFile(path)).toThrow(`${path}: apiTokenFile: cannot read ${join(dir, 'token')}: no such file`);
    writeFileSync(join(dir, 'token'), ' \n');
    expect(() => loadConfigFile(path)).toThrow(`${path}: apiTokenFile: ${join(dir, 'token')} is empty`);
  });
});

describe('bridge interfaces (mqtt, tcp): secrets from files and the environment', () => {
  it('passwordFile, caFile and tokenFile are read relative to the config file; passwordEnv from the environment', () => {
    const dir = mkdtempSync(join(tmpdir(), 'meshgw-cfg-bridge-'));
    try {
      writeFileSync(join(dir, 'pw'), 's3cret\n');
      writeFileSync(join(dir, 'ca.pem'), '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n');
      writeFileSync(join(dir, 'token'), 'a-long-shared-site-token\n');
      process.env.MESHGW_TEST_MQTT_PW = 'from-env';
      const path = join(dir, 'meshgw.yaml');
      writeFileSync(
        path,
        [
          'interfaces:',
          '  - { kind: mqtt, url: "mqtts://north@broker:8883/m", passwordFile: pw, caFile: ca.pem, framesPerSecond: 20 }',
          '  - { kind: mqtt, url: "mqtt://broker", passwordEnv: MESHGW_TEST_MQTT_PW }',
          '  - { kind: tcp-listen, host: 0.0.0.0, port: 4400, tokenFile: token }',
        ].join('\n'),
      );
      const c = loadConfigFile(path);
      expect(c.interfaces).toEqual([
        { kind: 'mqtt', url: 'mqtts://north@broker:8883/m', password: 's3cret', ca: '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n', framesPerSecond: 20 },
        { kind: 'mqtt', url: 'mqtt://broker', password: 'from-env' },
        { kind: 'tcp-listen', host: '0.0.0.0', port: 4400, token: 'a-long-shared-site-token' },
      ]);
      const bad = (yaml: string): string => {
        writeFileSync(path, yaml);
        try {
          loadConfigFile(path);
        } catch (err) {
          return (err as Error).message;
        }
        return 'no error';
      };
      expect(bad('interfaces:\n  - { kind: mqtt, url: "mqtt://b", password: x, passwordFile: pw }\n')).toBe(`${path}: interfaces[0]: give one of password, passwordFile, not several`);
      expect(bad('interfaces:\n  - { kind: mqtt, url: "mqtt://b", passwordEnv: MESHGW_NOT_SET_ANYWHERE }\n')).toBe(`${path}: interfaces[0].passwordEnv: the environment variable MESHGW_NOT_SET_ANYWHERE is not set`);
      expect(bad('interfaces:\n  - { kind: tcp-connect, host: h, port: 1, tokenFile: nope }\n')).toBe(`${path}: interfaces[0].tokenFile: cannot read ${join(dir, 'nope')}: no such file`);
      expect(bad('interfaces:\n  - { kind: mqtt, url: "http://b" }\n')).toMatch(/interfaces\[0\]\.url: must be mqtt:\/\/HOST/);
      expect(bad('interfaces:\n  - { kind: mqtt, url: "mqtt://b", certFile: ca.pem }\n')).toBe(`${path}: interfaces[0]: certFile and keyFile go together`);
    } finally {
      delete process.env.MESHGW_TEST_MQTT_PW;
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a TCP listener beyond loopback needs a token', () => {
    const base = { keyFile: 'k', stateDir: 's', statusIntervalMs: 0, region: 'none' as const };
    expect(() => validateConfig({ ...base, interfaces: [{ kind: 'tcp-listen', host: '0.0.0.0', port: 4400 }] })).toThrow(/--tcp-listen 0\.0\.0\.0:4400 listens beyond loopback: give --tcp-token/);
    expect(() => validateConfig({ ...base, interfaces: [{ kind: 'tcp-listen', host: '127.0.0.1', port: 4400 }] })).not.toThrow();
    expect(() => validateConfig({ ...base, interfaces: [{ kind: 'tcp-listen', host: '0.0.0.0', port: 4400, token: 'a-long-shared-site-token' }] })).not.toThrow();
  });
});

describe('minFirmware', () => {
  it('"MAJOR.MINOR" on a lora interface; anything else names the key', () => {
    const c = parseConfigText('interfaces:\n  - { kind: lora, path: /dev/ttyUSB0, minFirmware: "1.74", radio: { frequency: 869525000, bandwidth: 125000, sf: 9, cr: 5, txPower: 14 } }\n', 'f.yaml');
    expect(c.interfaces![0]).toMatchObject({ kind: 'lora', minFirmware: [1, 74] });
    expect(() => parseConfigText('interfaces:\n  - { kind: lora, path: /dev/ttyUSB0, minFirmware: 1, radio: { frequency: 869525000, bandwidth: 125000, sf: 9, cr: 5, txPower: 14 } }\n', 'f.yaml')).toThrow(
      /^f\.yaml: interfaces\[0\]\.minFirmware: must be a firmware version MAJOR\.MINOR/,
    );
  });
});

describe('a lora interface\'s mtu', () => {
  const text = (mtu: string): string =>
    `interfaces:\n  - { kind: lora, path: /dev/ttyUSB0, mtu: ${mtu}, radio: { frequency: 869525000, bandwidth: 125000, sf: 9, cr: 5, txPower: 14 } }\n`;
  it('is 1..508 bytes (what an RNode takes)', () => {
    expect(parseConfigText(text('254'), 'f.yaml').interfaces![0]).toMatchObject({ kind: 'lora', mtu: 254 });
    expect(() => parseConfigText(text('509'), 'f.yaml')).toThrow(/^f\.yaml: interfaces\[0\]\.mtu: must be an integer 1\.\.508 bytes/);
  });
});
