/**
 * `npx meshgw` with no interface on a machine with no radio: a simulated radio and neighbour,
 * said in the first lines with how to attach hardware; the neighbour appears (within 30 s), as a
 * log record (stdout stays empty without --events),
 * `status` answers through the API, and SIGINT ends it with exit 0. Only the key, state and API
 * address are given, so that the test does not touch ~/.meshgw or a daemon the user runs.
 */
import { describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { MeshgwClient } from '../src/index.js';
import { freeTcpPort } from './free-ports.js';

const bin = fileURLToPath(new URL('../dist/bin/meshgw.js', import.meta.url));


describe('meshgw with no interface', () => {
  it('runs on a simulated radio, its neighbour appears, status answers, SIGINT exits 0', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'meshgw-default-'));
    const api = await freeTcpPort();
    const child = spawn(process.execPath, [bin, '--key', join(dir, 'identity.json'), '--state-dir', join(dir, 'state'), '--api', `127.0.0.1:${api}`], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
    let stderr = '';
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    const exited = new Promise<number | null>((r) => child.on('close', r));
    try {
      for (let i = 0; i < 300 && !/meshgw running/.test(stderr); i++) {
        if (child.exitCode !== null) break;
        await new Promise((r) => setTimeout(r, 50));
      }
      expect(stderr).toMatch(/meshgw running/);
      const lines = stderr.split('\n');
      expect(lines[0]).toMatch(/simulated radio \(no interface given\)/);
      expect(lines[1]).toMatch(/attach real hardware with --port/);
      const client = await MeshgwClient.connect({ port: api });
      try {
        const status = await client.status();
        expect(status.interfaces.map((i) => i.kind)).toEqual(['sim']);
        let neighbours = 0;
        for (let i = 0; i < 300 && neighbours === 0; i++) {
          neighbours = (await client.neighbours()).length;
          if (neighbours === 0) await new Promise((r) => setTimeout(r, 100));
        }
        expect(neighbours, 'the simulated neighbour within 30 s').toBe(1);
        // Without --events the event is a log record with fields, and stdout stays empty.
        for (let i = 0; i < 100 && !/"event":"neighbour"/.test(stderr); i++) await new Promise((r) => setTimeout(r, 50));
        const record = stderr.split('\n').filter((l) => l.includes('"event":"neighbour"')).map((l) => JSON.parse(l) as Record<string, unknown>)[0];
        expect(record).toMatchObject({ level: 30, event: 'neighbour', interface: 'sim0', state: 'up' });
        expect(stdout).toBe('');
      } finally {
        await client.close();
      }
      child.kill('SIGINT');
      expect(await exited).toBe(0);
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  }, 60_000);
});
