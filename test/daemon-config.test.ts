/**
 * The daemon with a config file, as a user runs it: `meshgw init FILE`, then `meshgw --config
 * FILE` (flags override it), metrics on `--metrics`, a config error naming the file and key
 * (exit 2), SIGTERM → exit 0. And `withConfigFile`, the merge, on its own.
 */
import { describe, expect, it } from 'vitest';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import parsePrometheusTextFormat from 'parse-prometheus-text-format';
import { configFromFlags, withConfigFile, type RunOptions } from '../src/cli/run.js';
import { freeTcpPort } from './free-ports.js';

const bin = fileURLToPath(new URL('../dist/bin/meshgw.js', import.meta.url));


describe('meshgw --config', () => {
  it('init writes a file the daemon runs from; metrics are served; SIGTERM exits 0', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'meshgw-config-'));
    const file = join(dir, 'meshgw.yaml');
    const init = spawnSync(process.execPath, [bin, 'init', file], { encoding: 'utf8' });
    expect(init.status, init.stderr).toBe(0);
    const [api, metrics] = [await freeTcpPort(), await freeTcpPort()];
    const child = spawn(process.execPath, [bin, '--config', file, '--key', join(dir, 'identity.json'), '--state-dir', join(dir, 'state'), '--api', `127.0.0.1:${api}`, '--metrics', `127.0.0.1:${metrics}`], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    const exited = new Promise<number | null>((r) => child.on('close', r));
    try {
      for (let i = 0; i < 300 && !/meshgw running/.test(stderr); i++) {
        if (child.exitCode !== null) break;
        await new Promise((r) => setTimeout(r, 50));
      }
      expect(stderr).toMatch(/meshgw running on sim0 \(sim\)/); // the file's one interface
      expect(stderr).toMatch(new RegExp(`metrics http://127\\.0\\.0\\.1:${metrics}/metrics`));
      const res = await fetch(`http://127.0.0.1:${metrics}/metrics`);
      expect(res.status).toBe(200);
      const families = parsePrometheusTextFormat(await res.text());
      const up = families.find((f) => f.name === 'meshgw_interface_up');
      expect(up?.type).toBe('GAUGE');
      expect(up?.metrics).toEqual([{ labels: { interface: 'sim0', kind: 'sim' }, value: '1' }]);
      child.kill('SIGTERM');
      expect(await exited).toBe(0);
      expect(stderr).toMatch(/meshgw stopped/);
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  }, 60_000);

  it('an error in the file names the file and the key, exit 2', () => {
    const dir = mkdtempSync(join(tmpdir(), 'meshgw-config-'));
    const file = join(dir, 'bad.yaml');
    writeFileSync(file, 'api:\n  hots: 127.0.0.1\n  port: 7840\n');
    const r = spawnSync(process.execPath, [bin, '--config', file, '--key', join(dir, 'k.json'), '--state-dir', dir], { encoding: 'utf8' });
    expect(r.status).toBe(2);
    expect(r.stderr.trim()).toBe(`meshgw: ${file}: api.hots: unknown key (did you mean host?)`);
  });
});

describe('withConfigFile', () => {
  const base = { driver: 'lora', udpPort: '4269', region: 'none', bw: '125000', sf: '9', cr: '5', txPower: '14', statusInterval: '60', key: '/home/u/.meshgw/identity.json', shutdownTimeout: '5' } as RunOptions;
  const file = {
    region: 'eu868' as const,
    frequency: 869_525_000,
    key: '/var/lib/meshgw/identity.json',
    api: 'off' as const,
    statusInterval: 0,
    metrics: { host: '127.0.0.1', port: 9469 },
    interfaces: [{ kind: 'udp' as const, interface: 'wlan0', port: 4269 }],
  };

  it('takes what the flags did not give from the file', () => {
    const c = withConfigFile(configFromFlags(base), file, () => false);
    expect(c).toMatchObject({ region: 'eu868', frequency: 869_525_000, keyFile: '/var/lib/meshgw/identity.json', stateDir: '/var/lib/meshgw', api: undefined, statusIntervalMs: 0, metrics: { host: '127.0.0.1', port: 9469 } });
    expect(c.interfaces).toEqual(file.interfaces);
    expect(c.createKeyDirectory).toBe(false);
  });

  it('a flag given on the command line wins; an interface flag replaces all the file’s interfaces', () => {
    const flags = { ...base, sim: true, region: 'none', api: '127.0.0.1:7000' };
    const given = new Set(['sim', 'region', 'api']);
    const c = withConfigFile(configFromFlags(flags), file, (f) => given.has(f));
    expect(c.interfaces).toEqual([{ kind: 'sim' }]);
    expect(c.region).toBe('none');
    expect(c.api).toEqual({ host: '127.0.0.1', port: 7000 });
    expect(c.keyFile).toBe('/var/lib/meshgw/identity.json'); // not given: the file's
  });
});
