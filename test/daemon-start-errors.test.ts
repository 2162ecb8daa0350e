/**
 * What a new user hit when starting the daemon with a mistake in a flag (issue 14), as a user
 * runs it: the built `meshgw`, exit codes (2 usage, 1 runtime) and one clear line, and nothing
 * made on disk before the mistake is found.
 */
import { describe, expect, it } from 'vitest';
import { spawn, spawnSync } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { existsSync, mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const bin = fileURLToPath(new URL('../dist/bin/meshgw.js', import.meta.url));

function meshgw(args: string[]): { code: number | null; stderr: string } {
  const r = spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', timeout: 30_000 });
  return { code: r.status, stderr: r.stderr };
}

describe('the daemon refuses a start that cannot work, before it makes anything', () => {
  const dir = mkdtempSync(join(tmpdir(), 'meshgw-start-'));
  const key = join(dir, 'identity.json');
  const common = ['--key', key, '--state-dir', join(dir, 'state'), '--api', 'off', '--status-interval', '0'];

  it('a --pcap in a missing directory: exit 1 naming the file, no key made', () => {
    const r = meshgw(['--sim', '--pcap', join(dir, 'no', 'such', 'x.pcapng'), ...common]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/cannot write the capture file .*x\.pcapng: ENOENT/);
    expect(existsSync(key)).toBe(false);
  });

  it('a --key in a missing directory: exit 1, the directory not made', () => {
    const r = meshgw(['--sim', '--key', join(dir, 'typo', 'identity.json'), '--state-dir', join(dir, 'state'), '--api', 'off']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/directory .*typo does not exist/);
    expect(existsSync(join(dir, 'typo'))).toBe(false);
  });

  it('an invalid --callsign is a usage error (exit 2)', () => {
    const r = meshgw(['--kiss-tcp', '127.0.0.1:8001', '--callsign', 'NOT A CALL', ...common]);
    expect(r.code).toBe(2);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/--callsign/);
  });

  it('us915 at SF12 on 125 kHz can never send a HELLO: exit 2 with what would work, before any key line', () => {
    const r = meshgw(['--port', '/dev/null', '--frequency', '915000000', '--region', 'us915', '--sf', '12', ...common]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/SF12 at 125 kHz under us915: not even an empty frame is allowed/);
    expect(r.stderr).toMatch(/use SF8 or lower at 125 kHz/);
    expect(r.stderr).not.toMatch(/identity|node [0-9a-f]{64}/);
    expect(existsSync(key)).toBe(false);
  });

  it('a frequency outside the region: exit 2 before any key is made', () => {
    const r = meshgw(['--port', '/dev/null', '--frequency', '915000000', '--region', 'eu868', ...common]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/does not lie inside one eu868 band/);
    expect(readdirSync(dir)).toEqual([]);
  });

  it('a UDP port another program holds: exit 1 naming the port when nothing else is up; a warning when something is', async () => {
    const holder = createSocket('udp4');
    await new Promise<void>((r) => holder.bind(0, '127.0.0.1', r));
    const port = holder.address().port;
    try {
      const own = mkdtempSync(join(tmpdir(), 'meshgw-port-'));
      const flags = ['--key', join(own, 'identity.json'), '--state-dir', join(own, 'state'), '--api', 'off', '--status-interval', '0'];
      const alone = meshgw(['--udp', `127.0.0.1:${port}`, ...flags]);
      expect(alone.code).toBe(1);
      expect(alone.stderr).toMatch(new RegExp(`cannot bind 127\\.0\\.0\\.1:${port}: .*EADDRINUSE`));
      expect(alone.stderr).not.toMatch(/meshgw running/);
      // With a simulated radio beside it the daemon runs, and says what is wrong.
      const child = spawn(process.execPath, [bin, '--udp', `127.0.0.1:${port}`, '--sim', ...flags], { stdio: ['ignore', 'ignore', 'pipe'] });
      let stderr = '';
      child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
      const exited = new Promise<number | null>((r) => child.on('close', r));
      for (let i = 0; i < 300 && !/meshgw running/.test(stderr); i++) await new Promise((r) => setTimeout(r, 50));
      // A warning in the JSON log (stderr is not a terminal here).
      const warning = stderr.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as { level: number; msg: string }).find((r) => r.level === 40);
      expect(warning?.msg).toMatch(new RegExp(`^udp0: cannot bind 127\\.0\\.0\\.1:${port}`));
      expect(stderr).toMatch(/meshgw running/);
      child.kill('SIGINT');
      expect(await exited).toBe(0);
    } finally {
      holder.close();
    }
  }, 30_000);
});
