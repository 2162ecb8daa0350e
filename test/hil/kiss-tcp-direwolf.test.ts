/**
 * kiss-tcp through two real Direwolf TNCs back to back (AFSK 1200 audio through named pipes, a
 * real modulator and demodulator): frames of every size arrive intact, in both directions, in
 * both encapsulations. Recipe: ../shared/peers/direwolf-pair/ (`.ci/run` installs direwolf).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { kissTcpLink } from '../../drivers/kiss-tcp.js';
import type { KissLink } from '../../drivers/kiss-link.js';
import { collect, frameOfSize, hex, until } from './link-helpers.js';

const recipe = fileURLToPath(new URL('../../../shared/peers/direwolf-pair/', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'meshgw-direwolf-'));
const portA = 21_000 + Math.floor(Math.random() * 10_000);
const portB = portA + 1;
const links: KissLink[] = [];

beforeAll(() => {
  if (spawnSync('direwolf', ['-h'], { stdio: 'ignore' }).error) {
    throw new Error('direwolf is required for the KISS TCP test: install it with `apt-get install -y direwolf`');
  }
  if (!existsSync(join(recipe, 'start.sh'))) throw new Error(`the Direwolf recipe is missing: expected ${recipe}start.sh (../shared/peers/direwolf-pair)`);
  execFileSync('sh', [join(recipe, 'start.sh'), dir, String(portA), String(portB)], { stdio: 'pipe', timeout: 20_000 });
});

afterAll(async () => {
  for (const l of links) await l.close();
  spawnSync('sh', [join(recipe, 'stop.sh'), dir]);
});

async function pair(callsigns: [string, string] | undefined): Promise<[KissLink, KissLink]> {
  const make = (port: number, name: string, callsign?: string): KissLink => {
    const l = kissTcpLink({ name, port, ...(callsign ? { callsign } : {}), csma: { txDelayMs: 100, txTailMs: 10, persistence: 1, slotTimeMs: 10, fullDuplex: true } });
    links.push(l);
    return l;
  };
  const a = make(portA, 'dw-a', callsigns?.[0]);
  const b = make(portB, 'dw-b', callsigns?.[1]);
  await a.open();
  await b.open();
  expect([a.state, b.state]).toEqual(['up', 'up']);
  return [a, b];
}

async function exchange(from: KissLink, to: KissLink, sizes: number[], seed: number): Promise<void> {
  const got = collect(to);
  const frames = sizes.map((n, i) => frameOfSize(n, seed + i));
  for (const f of frames) {
    from.send(f);
    const want = frames.indexOf(f) + 1;
    await until(() => got.length >= want, `${from.name} → ${to.name}: frame of ${f.length} bytes`, 20_000);
  }
  expect(got.map((f) => hex(f.data))).toEqual(frames.map(hex));
}

describe('kiss-tcp through two Direwolf TNCs', () => {
  const sizes = [0, 1, 13, 14, 15, 64, 200, 256];

  it('raw encapsulation: every size from 0 to the MTU, both directions', async () => {
    const [a, b] = await pair(undefined);
    await exchange(a, b, sizes, 1);
    await exchange(b, a, sizes, 50);
    await a.close();
    await b.close();
  });

  it('AX.25 UI with callsigns: every size from 0 to the MTU, both directions', async () => {
    const [a, b] = await pair(['N0CALL-1', 'N0CALL-2']);
    await exchange(a, b, sizes, 100);
    await exchange(b, a, sizes, 150);
  });
});
