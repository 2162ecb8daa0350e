/**
 * `meshgw decode rfc5444` and `meshgw encode rfc5444` as a user runs them: the built bin
 * (`npm test` builds dist/ first), its output and exit codes.
 */
import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { decodePacket } from '../src/rfc5444/wire.js';
import { packetToJson, type PacketJson } from '../src/rfc5444/json.js';

const bin = fileURLToPath(new URL('../dist/bin/meshgw.js', import.meta.url));
const vectors = JSON.parse(readFileSync(new URL('../../shared/vectors/rfc5444/oonf-interop2010.json', import.meta.url), 'utf8')) as Array<{
  name: string;
  hex: string;
  expect: PacketJson;
}>;

function meshgw(args: string[], input?: string) {
  const r = spawnSync(process.execPath, [bin, ...args], { input, encoding: 'utf8' });
  if (r.error) throw r.error;
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

const vector = (name: string) => vectors.find((v) => v.name === name)!;

describe('meshgw decode rfc5444', () => {
  for (const name of ['interop2010_15', 'interop2010_27', 'nhdp_3']) {
    it(`prints the expected JSON of ${name} on one line`, () => {
      const v = vector(name);
      const r = meshgw(['decode', 'rfc5444', v.hex]);
      expect(r.code).toBe(0);
      expect(r.stdout.endsWith('\n')).toBe(true);
      expect(r.stdout.trim().split('\n')).toHaveLength(1);
      expect(JSON.parse(r.stdout)).toEqual(v.expect);
    });
  }

  it('reads hex from stdin with -, and raw bytes with --raw', () => {
    const v = vector('interop2010_19');
    expect(JSON.parse(meshgw(['decode', 'rfc5444', '-'], v.hex.replace(/../g, '$& ') + '\n').stdout)).toEqual(v.expect);
    const raw = spawnSync(process.execPath, [bin, 'decode', 'rfc5444', '--raw'], { input: Buffer.from(v.hex, 'hex'), encoding: 'utf8' });
    expect(JSON.parse(raw.stdout)).toEqual(v.expect);
  });

  it('malformed packets print {"error","offset"} and exit 1', () => {
    const v = vector('interop2010_15');
    const cut = meshgw(['decode', 'rfc5444', v.hex.slice(0, -4)]);
    expect(cut.code).toBe(1);
    expect(JSON.parse(cut.stdout)).toEqual({ error: 'truncated', offset: 17 });
    const version = meshgw(['decode', 'rfc5444', '10']);
    expect(version.code).toBe(1);
    expect(JSON.parse(version.stdout)).toEqual({ error: 'bad-version', offset: 0 });
  });

  it('text that is not hex is a usage error (exit 2)', () => {
    const r = meshgw(['decode', 'rfc5444', 'xyz']);
    expect(r.code).toBe(2);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
  });
});

describe('meshgw encode rfc5444', () => {
  it('encodes the decoded JSON (file or stdin) to hex that decodes back to it', () => {
    const dir = mkdtempSync(join(tmpdir(), 'meshgw-encode-'));
    try {
      for (const [name, stdinArgs] of [['interop2010_27', []], ['nhdp_3', ['-']]] as const) {
        const v = vector(name);
        const json = meshgw(['decode', 'rfc5444', v.hex]).stdout;
        const file = join(dir, `${name}.json`);
        writeFileSync(file, json);
        const fromFile = meshgw(['encode', 'rfc5444', file]);
        expect(fromFile.code, name).toBe(0);
        expect(fromFile.stdout, name).toMatch(/^[0-9a-f]+\n$/);
        const back = decodePacket(Uint8Array.from(Buffer.from(fromFile.stdout.trim(), 'hex')));
        expect(back.ok && packetToJson(back.packet), name).toEqual(v.expect);
        expect(meshgw(['encode', 'rfc5444', ...stdinArgs], json).stdout, name).toBe(fromFile.stdout);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('compacts what it encodes: interop2010_35 comes out shorter than OONF wrote it', () => {
    const v = vector('interop2010_35');
    const hex = meshgw(['encode', 'rfc5444'], JSON.stringify(v.expect)).stdout.trim();
    expect(hex.length).toBeLessThan(v.hex.length);
  });

  it('bad content prints one line "meshgw: <reason>" and exits 1', () => {
    const cases: Array<[string, RegExp]> = [
      ['{"version":0', /^meshgw: input is not JSON: /],
      ['{"version":0,"seqno":null,"tlvs":[]}', /^meshgw: not an RFC 5444 packet: messages: missing$/],
      [
        JSON.stringify({ ...vector('interop2010_15').expect, messages: [{ ...vector('interop2010_15').expect.messages[1], addresses: [{ address: '0a00', prefixLength: 32, tlvs: [] }] }] }),
        /^meshgw: not an RFC 5444 packet: messages\[0\]\.addresses\[0\]\.address: expected 4 bytes of hex$/,
      ],
      [
        JSON.stringify({ version: 0, seqno: null, tlvs: [{ type: 1, extType: 0, value: '00'.repeat(40000) }, { type: 1, extType: 0, value: '00'.repeat(40000) }], messages: [] }),
        /^meshgw: cannot encode: packet TLV block of \d+ bytes is over 65535$/,
      ],
    ];
    for (const [input, message] of cases) {
      const r = meshgw(['encode', 'rfc5444'], input);
      expect(r.code, input.slice(0, 60)).toBe(1);
      expect(r.stdout).toBe('');
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.stderr.trim()).toMatch(message);
    }
    const missing = meshgw(['encode', 'rfc5444', '/nonexistent/packet.json']);
    expect(missing.code).toBe(1);
    expect(missing.stderr.trim()).toBe('meshgw: cannot read /nonexistent/packet.json: ENOENT');
  });

  it('an unknown format is a usage error (exit 2); --help has one-line descriptions', () => {
    const r = meshgw(['encode', 'json', '-'], '{}');
    expect(r.code).toBe(2);
    expect(r.stderr.trim()).toBe("meshgw: unknown format 'json': expected rfc5444");
    const help = meshgw(['--help']);
    expect(help.stdout).toMatch(/encode <format> \[input\]\s+encode an RFC 5444 packet from its JSON/);
    expect(help.stdout).toMatch(/decode .*\n?.*decode a KISS or SLIP byte stream/);
  });
});
