/**
 * The daemon's composition (src/gateway/daemon.ts): the boot epoch bound to the key, the key
 * lock against a second daemon, and the CLI's exit code when it is refused.
 */
import { describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startDaemon } from '../src/gateway/daemon.js';
import type { DaemonConfig } from '../src/gateway/config.js';

const bin = fileURLToPath(new URL('../dist/bin/meshgw.js', import.meta.url));

function config(dir: string, keyFile: string): DaemonConfig {
  return { interfaces: [{ kind: 'sim' }], region: 'none', keyFile, stateDir: join(dir, 'state'), statusIntervalMs: 0 };
}

describe('the daemon', () => {
  it('the same key started from another key directory gets a new epoch', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'meshgw-daemon-'));
    const first = await startDaemon(config(dir, join(dir, 'a', 'identity.json')));
    const epoch1 = first.node.boot.epoch;
    await first.stop();
    mkdirSync(join(dir, 'b'), { mode: 0o700 });
    copyFileSync(join(dir, 'a', 'identity.json'), join(dir, 'b', 'identity.json'));
    const second = await startDaemon(config(dir, join(dir, 'b', 'identity.json')));
    try {
      expect(Buffer.from(second.identity.sid)).toEqual(Buffer.from(first.identity.sid));
      expect(second.node.boot.epoch).toBe(epoch1 + 1);
      expect(Buffer.from(second.node.boot.nonce)).not.toEqual(Buffer.from(first.node.boot.nonce));
    } finally {
      await second.stop();
    }
  });

  it('refuses a second daemon on the same key while the first runs', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'meshgw-daemon-'));
    const first = await startDaemon(config(dir, join(dir, 'identity.json')));
    try {
      await expect(startDaemon(config(dir, join(dir, 'identity.json')))).rejects.toThrow(/already running with key/);
    } finally {
      await first.stop();
    }
    const again = await startDaemon(config(dir, join(dir, 'identity.json')));
    await again.stop();
  });

  it('meshgw exits 1 with a clear error when another meshgw holds the key', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'meshgw-daemon-'));
    const args = [bin, '--sim', '--api', 'off', '--status-interval', '0', '--key', join(dir, 'identity.json'), '--state-dir', join(dir, 'state')];
    const first = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let firstErr = '';
    await new Promise<void>((resolve, reject) => {
      first.stderr.on('data', (b: Buffer) => {
        firstErr += b.toString();
        if (firstErr.includes('running on')) resolve();
      });
      first.on('exit', (code) => reject(new Error(`first daemon exited ${code}: ${firstErr}`)));
    });
    const second = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let err = '';
    second.stderr.on('data', (b: Buffer) => (err += b.toString()));
    const code = await new Promise<number | null>((resolve) => second.on('exit', resolve));
    first.kill('SIGTERM');
    await new Promise((resolve) => first.on('exit', resolve));
    expect(code).toBe(1);
    expect(err).toMatch(/meshgw: another meshgw \(pid \d+\) is already running with key/);
  });

  it('stops cleanly, releasing its key lock, when whoever reads its events goes away', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'meshgw-daemon-'));
    const state = join(dir, 'state');
    const child = spawn(process.execPath, [bin, '--sim', '--events', '--api', 'off', '--status-interval', '0', '--key', join(dir, 'identity.json'), '--state-dir', state], { stdio: ['ignore', 'pipe', 'pipe'] });
    let err = '';
    child.stderr.on('data', (b: Buffer) => (err += b.toString()));
    await new Promise<void>((resolve) => child.stdout.once('data', () => resolve()));
    expect(readdirSync(state).some((f) => f.startsWith('lock-'))).toBe(true);
    child.stdout.destroy(); // as `meshgw | head -1` does once head has its line
    const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
    expect(err).toMatch(/standard output was closed; stopping/);
    expect(code).toBe(0);
    expect(readdirSync(state).some((f) => f.startsWith('lock-'))).toBe(false);
    expect(existsSync(join(dir, 'identity.json'))).toBe(true);
  });
});
