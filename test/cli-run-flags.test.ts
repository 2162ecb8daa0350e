/**
 * The daemon's interface flags parsed into a DaemonConfig (src/cli/run.ts): `--udp` as an
 * interface name or an IPv4 address with an optional port, `--peer` repeatable; malformed values
 * are usage errors naming the flag.
 */
import { describe, expect, it } from 'vitest';
import { configFromFlags, type RunOptions } from '../src/cli/run.js';
import { UsageError } from '../src/cli/usage-error.js';

const base = { driver: 'lora', udpPort: '4269', region: 'none', bw: '125000', sf: '9', cr: '5', txPower: '14', statusInterval: '0', key: '/tmp/k.json' } as RunOptions;

/** Each case's flags are a UsageError matching its pattern; returns the messages. */
function expectUsageErrors(cases: Array<[Partial<RunOptions>, RegExp]>): string[] {
  return cases.map(([flags, message]) => {
    let caught: unknown;
    try {
      configFromFlags({ ...base, ...flags });
    } catch (err) {
      caught = err;
    }
    expect(caught, JSON.stringify(flags)).toBeInstanceOf(UsageError);
    expect((caught as Error).message, JSON.stringify(flags)).toMatch(message);
    return (caught as Error).message;
  });
}

describe('--udp and --peer', () => {
  it('an interface name, an address, an address with its port, and peers', () => {
    expect(configFromFlags({ ...base, udp: 'wlan0' }).interfaces).toEqual([{ kind: 'udp', interface: 'wlan0', port: 4269 }]);
    expect(configFromFlags({ ...base, udp: '0.0.0.0', udpPort: '5000' }).interfaces).toEqual([{ kind: 'udp', address: '0.0.0.0', port: 5000 }]);
    expect(configFromFlags({ ...base, udp: '127.0.0.1:4270', peer: ['127.0.0.1:4271', '10.0.0.2:4269'] }).interfaces).toEqual([
      { kind: 'udp', address: '127.0.0.1', port: 4270, peers: [{ address: '127.0.0.1', port: 4271 }, { address: '10.0.0.2', port: 4269 }] },
    ]);
  });

  it('malformed addresses, ports and peers are usage errors', () => {
    const cases: Array<[Partial<RunOptions>, RegExp]> = [
      [{ udp: '300.1.2.3' }, /--udp: '300.1.2.3' is not an IPv4 address/],
      [{ udp: '127.0.0.1:99999' }, /--udp/],
      [{ udp: 'wlan0:4269' }, /--udp must be an interface name/],
      [{ udp: 'a b' }, /--udp must be an interface name/],
      [{ udp: '127.0.0.1', peer: ['localhost:4269'] }, /--peer must be an IPv4 ADDRESS:PORT/],
      [{ udp: '127.0.0.1', peer: ['127.0.0.1'] }, /--peer must be an IPv4 ADDRESS:PORT/],
      [{ sim: true, peer: ['127.0.0.1:4269'] }, /--peer needs --udp/],
    ];
    expectUsageErrors(cases);
  });
});

describe('KISS TNC parameters', () => {
  it('none by default; each flag sets only its own parameter; only for a KISS TNC', () => {
    expect(configFromFlags({ ...base, kissTcp: '127.0.0.1:8001' }).interfaces).toEqual([{ kind: 'kiss-tcp', host: '127.0.0.1', port: 8001 }]);
    expect(configFromFlags({ ...base, kissTcp: '127.0.0.1:8001', txtail: '50', duplex: 'full' }).interfaces).toEqual([
      { kind: 'kiss-tcp', host: '127.0.0.1', port: 8001, csma: { txTailMs: 50, fullDuplex: true } },
    ]);
    expect(configFromFlags({ ...base, port: '/dev/ttyUSB0', driver: 'kiss', txdelay: '300', persist: '0.25', slottime: '100' }).interfaces).toEqual([
      { kind: 'kiss', path: '/dev/ttyUSB0', csma: { txDelayMs: 300, persistence: 0.25, slotTimeMs: 100 } },
    ]);
    for (const [flags, message] of [
      [{ sim: true, txdelay: '300' }, /for a KISS TNC/],
      [{ kissTcp: '127.0.0.1:8001', duplex: 'both' }, /--duplex must be half or full/],
      [{ kissTcp: '127.0.0.1:8001', persist: '2' }, /--persist/],
      [{ kissTcp: '127.0.0.1:8001', txdelay: '3000' }, /--txdelay/],
    ] as Array<[Partial<RunOptions>, RegExp]>) {
      expect(() => configFromFlags({ ...base, ...flags }), JSON.stringify(flags)).toThrow(UsageError);
      expect(() => configFromFlags({ ...base, ...flags }), JSON.stringify(flags)).toThrow(message);
    }
  });
});

describe('--mqtt and --tcp-listen / --tcp-connect', () => {
  it('each flag one interface; the token and the MQTT options go with them', () => {
    expect(configFromFlags({ ...base, mqtt: ['mqtt://u:p@broker:1883/meshgw', 'mqtts://broker2'], mqttMesh: 'valley' }).interfaces).toEqual([
      { kind: 'mqtt', url: 'mqtt://u:p@broker:1883/meshgw', mesh: 'valley' },
      { kind: 'mqtt', url: 'mqtts://broker2', mesh: 'valley' },
    ]);
    expect(configFromFlags({ ...base, tcpListen: ['0.0.0.0:4400'], tcpConnect: ['north.example.org:4400', '[2001:db8::1]:4401'], tcpToken: 'a-long-shared-site-token' }).interfaces).toEqual([
      { kind: 'tcp-listen', host: '0.0.0.0', port: 4400, token: 'a-long-shared-site-token' },
      { kind: 'tcp-connect', host: 'north.example.org', port: 4400, token: 'a-long-shared-site-token' },
      { kind: 'tcp-connect', host: '2001:db8::1', port: 4401, token: 'a-long-shared-site-token' },
    ]);
  });

  it('malformed bridges are usage errors naming the flag, never echoing a password', () => {
    const cases: Array<[Partial<RunOptions>, RegExp]> = [
      [{ mqtt: ['http://broker'] }, /--mqtt must be mqtt:\/\/HOST/],
      [{ mqtt: ['mqtt//u:hunter2@broker'] }, /--mqtt must be/],
      [{ mqtt: ['mqtt://broker'], mqttCa: '/nonexistent/ca.pem' }, /--mqtt-ca: cannot read \/nonexistent\/ca\.pem: no such file/],
      [{ mqtt: ['mqtt://broker'], mqttCert: '/tmp/c.pem' }, /--mqtt-cert and --mqtt-key go together/],
      [{ mqttMesh: 'valley', sim: true }, /go with --mqtt URL/],
      [{ tcpListen: ['4400'] }, /--tcp-listen must be HOST:PORT/],
      [{ tcpConnect: ['host:0'] }, /--tcp-connect/],
      [{ tcpToken: 'x', sim: true }, /--tcp-token goes with --tcp-listen or --tcp-connect/],
    ];
    for (const message of expectUsageErrors(cases)) expect(message).not.toContain('hunter2');
  });
});

describe('--min-firmware', () => {
  it('MAJOR.MINOR for a LoRa modem; anything else, or without one, a usage error', () => {
    expect(configFromFlags({ ...base, port: '/dev/ttyUSB0', frequency: '869525000', minFirmware: '1.74' }).interfaces).toEqual([
      { kind: 'lora', path: '/dev/ttyUSB0', radio: { frequency: 869_525_000, bandwidth: 125_000, sf: 9, cr: 5, txPower: 14 }, minFirmware: [1, 74] },
    ]);
    expectUsageErrors([
      [{ port: '/dev/ttyUSB0', frequency: '869525000', minFirmware: '1' }, /--min-firmware must be MAJOR\.MINOR/],
      [{ sim: true, minFirmware: '1.74' }, /--min-firmware is for a LoRa modem/],
      [{ port: '/dev/ttyUSB0', driver: 'kiss', minFirmware: '1.74' }, /--min-firmware is for a LoRa modem/],
    ]);
  });
});

describe('--lora-mtu', () => {
  it('1..508 bytes for a LoRa modem; beyond, or without one, a usage error', () => {
    expect(configFromFlags({ ...base, port: '/dev/ttyUSB0', frequency: '869525000', loraMtu: '254' }).interfaces).toEqual([
      { kind: 'lora', path: '/dev/ttyUSB0', radio: { frequency: 869_525_000, bandwidth: 125_000, sf: 9, cr: 5, txPower: 14 }, mtu: 254 },
    ]);
    expectUsageErrors([
      [{ port: '/dev/ttyUSB0', frequency: '869525000', loraMtu: '509' }, /--lora-mtu/],
      [{ port: '/dev/ttyUSB0', frequency: '869525000', loraMtu: '0' }, /--lora-mtu/],
      [{ sim: true, loraMtu: '254' }, /--lora-mtu is for a LoRa modem/],
    ]);
  });
});
