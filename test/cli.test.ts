/**
 * The CLI as a user runs it: the built bin, its output and exit codes.
 * (`npm test` builds dist/ before vitest runs.)
 */
import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const bin = fileURLToPath(new URL('../dist/bin/meshgw.js', import.meta.url));
const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };

function meshgw(args: string[], input?: string | Buffer) {
  const r = spawnSync(process.execPath, [bin, ...args], { input, encoding: 'utf8' });
  if (r.error) throw r.error;
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('meshgw CLI frame', () => {
  it('--version prints the package version', () => {
    const r = meshgw(['--version']);
    expect(r.code).toBe(0);
    expect(r.stdout.trim()).toBe(pkg.version);
  });

  it('--help lists every subcommand with a description', () => {
    const r = meshgw(['--help']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/decode .*\n?.*decode a KISS or SLIP byte stream/);
    expect(r.stdout).toMatch(/modem-emulator .*run a simulated LoRa modem/);
  });

  it('a usage error prints one line on stderr and exits 2', () => {
    for (const args of [['--frob'], ['decode', 'bogus', '00'], ['decode', 'kiss', 'zz'], ['decode', 'kiss', '--max-frame', 'x', 'c0c0'], ['nosuchcommand']]) {
      const r = meshgw(args);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr.trim().split('\n'), args.join(' ')).toHaveLength(1);
      expect(r.stderr).not.toMatch(/\n\s+at /);
    }
  });
});

describe('meshgw decode', () => {
  it('prints one JSON line per KISS frame with command names from SPEC.md', () => {
    const r = meshgw(['decode', 'kiss', 'c0 00 41 db dc 42 c0 c0 c0 21 0a c0 c0 ff c0 c0 07 01 c0']);
    expect(r.code).toBe(0);
    expect(r.stdout.trim().split('\n').map((l) => JSON.parse(l))).toEqual([
      { port: 0, command: 'data', data: '41c042' },
      { port: 2, command: 'txdelay', data: '0a' },
      { port: 15, command: 'return', data: '' },
      { port: 0, command: 7, data: '01' },
    ]);
  });

  it('reads hex from stdin with -, and raw bytes with --raw', () => {
    expect(meshgw(['decode', 'kiss', '-'], 'c0 10 05 c0\n').stdout.trim()).toBe('{"port":1,"command":"data","data":"05"}');
    const raw = meshgw(['decode', 'slip', '--raw'], Buffer.from([0xc0, 0x01, 0xdb, 0xdd, 0xc0]));
    expect(raw.stdout.trim()).toBe('{"data":"01db"}');
  });

  it('reports malformed input as error lines with offsets and exits 1', () => {
    const r = meshgw(['decode', 'kiss', '41 c0 00 db 05 c0 c0 00 41']);
    expect(r.code).toBe(1);
    expect(r.stdout.trim().split('\n').map((l) => JSON.parse(l))).toEqual([
      { error: 'unframed', offset: 0 },
      { error: 'bad-escape', offset: 4 },
      { error: 'truncated', offset: 9 },
    ]);
  });

  it('drops an oversize frame and resynchronises', () => {
    const r = meshgw(['decode', 'kiss', '--max-frame', '2', 'c0 00 01 02 03 c0 00 04 c0']);
    expect(r.code).toBe(1);
    expect(r.stdout.trim().split('\n').map((l) => JSON.parse(l))).toEqual([
      { error: 'oversize', offset: 4 },
      { port: 0, command: 'data', data: '04' },
    ]);
  });

  it('modem-emulator without --serial is a usage error', () => {
    const r = meshgw(['modem-emulator']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--serial/);
  });

  it('modem-emulator on a missing device fails at run time with exit 1', () => {
    const r = meshgw(['modem-emulator', '--serial', '/dev/nonexistent-meshgw', '--medium', '127.0.0.1:46000']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/cannot open serial device \/dev\/nonexistent-meshgw/);
  });
});

describe('meshgw airtime', () => {
  const json = (args: string[]) => {
    const r = meshgw(['airtime', ...args, '--json']);
    expect(r.code, r.stderr).toBe(0);
    return JSON.parse(r.stdout) as Record<string, unknown>;
  };

  it('prints the LoRa airtime as one JSON object', () => {
    expect(json(['--sf', '9', '--bw', '125000', '--cr', '5', '--bytes', '51'])).toEqual({
      airtimeMs: 328.704,
      symbolMs: 4.096,
      symbols: 80.25,
      ldro: false,
    });
  });

  it('takes 4/5 style coding rates, implicit header, no CRC and forced LDRO', () => {
    const a = json(['--sf', '12', '--bw', '125000', '--cr', '4/8', '--bytes', '100', '--implicit', '--no-crc', '--ldro', 'off']);
    expect(a.ldro).toBe(false);
    const b = json(['--sf', '12', '--bw', '125000', '--cr', '8', '--bytes', '100', '--implicit', '--no-crc']);
    expect(b.ldro).toBe(true);
    expect(b.airtimeMs as number).toBeGreaterThan(a.airtimeMs as number);
  });

  it('adds the EU868 sub-band, duty cycle and frames per hour', () => {
    expect(json(['--sf', '9', '--bw', '125000', '--cr', '5', '--bytes', '51', '--region', 'eu868', '--frequency', '869525000'])).toMatchObject({
      subBand: '869.4-869.65',
      dutyCycle: 0.1,
      framesPerHour: 1095,
    });
    expect(json(['--sf', '9', '--bw', '125000', '--cr', '5', '--bytes', '51', '--region', 'eu868', '--frequency', '868100000']).framesPerHour).toBe(109);
  });

  it('reports the US915 dwell limit and the largest payload within it', () => {
    expect(json(['--sf', '10', '--bw', '125000', '--cr', '5', '--bytes', '51', '--region', 'us915', '--frequency', '903900000'])).toMatchObject({
      dwellMs: 400,
      maxBytesWithinDwell: 24,
      framesPerHour: 0,
    });
  });

  it('costs a DATA frame through an RNode as its packets, with their headers, at the firmware\'s preamble', () => {
    const one = json(['--modem', 'rnode', '--sf', '9', '--bw', '125000', '--cr', '5', '--bytes', '51']);
    // 52 bytes with 18 preamble symbols: (18 + 4.25 + 68) × 4.096 ms, where plain LoRa says 328.704.
    expect(one).toEqual({ airtimeMs: 369.664, packets: [52], preambleSymbols: 18, symbolMs: 4.096, csmaSlotMs: 49, difsMs: 98 });
    const two = json(['--modem', 'rnode', '--sf', '9', '--bw', '125000', '--cr', '5', '--bytes', '300']);
    expect(two.packets).toEqual([255, 47]);
    const p255 = json(['--modem', 'lora', '--sf', '9', '--bw', '125000', '--cr', '5', '--preamble', '18', '--bytes', '255']).airtimeMs as number;
    const p47 = json(['--modem', 'lora', '--sf', '9', '--bw', '125000', '--cr', '5', '--preamble', '18', '--bytes', '47']).airtimeMs as number;
    expect(two.airtimeMs as number).toBeCloseTo(p255 + p47, 9);
    const r = meshgw(['airtime', '--modem', 'rnode', '--sf', '9', '--bw', '125000', '--cr', '5', '--bytes', '509']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/an RNode takes DATA frames of 1 to 508 bytes, got 509/);
  });

  it('costs an AX.25 frame for a 1200 baud TNC', () => {
    const r = json(['--modem', 'afsk1200', '--bytes', '100']);
    // 300 ms TXDELAY + (16 + 816 + 163) bits / 1200 baud + 100 ms TXTAIL
    expect(r.airtimeMs as number).toBeCloseTo(400 + (995 * 1000) / 1200, 9);
  });

  it('an impossible combination prints a clear error and exits 2', () => {
    const cases: Array<[string[], RegExp]> = [
      [['--sf', '13', '--bw', '125000', '--cr', '5', '--bytes', '5'], /sf must be/],
      [['--sf', '9', '--bw', '100000', '--cr', '5', '--bytes', '5'], /bandwidth must be one of/],
      [['--sf', '9', '--bw', '125000', '--cr', '4/9', '--bytes', '5'], /--cr must be/],
      [['--sf', '9', '--bw', '125000', '--cr', '5', '--bytes', '256'], /at most 255 bytes/],
      [['--sf', '9', '--bw', '125000', '--cr', '5', '--bytes', '5', '--region', 'eu868', '--frequency', '868650000'], /does not lie inside one eu868 band/],
      [['--sf', '9', '--bw', '125000', '--cr', '5', '--bytes', '5', '--region', 'mars'], /unknown region/],
      [['--sf', '9', '--bw', '125000', '--cr', '5'], /--bytes is required/],
    ];
    for (const [args, message] of cases) {
      const r = meshgw(['airtime', ...args]);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr).toMatch(message);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
    }
  });
});
