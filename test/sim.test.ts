/**
 * `meshgw sim`: scenarios that cannot run are refused with the key and the problem; the radio
 * model and the independent duty-cycle count do what they say; every shipped scenario runs
 * through the CLI, as a planner runs it, keeps every duty cycle, and gives the figures a working
 * mesh gives; one seed, one result.
 */
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseScenarioText, ScenarioError, type MediumSpec } from '../src/sim/scenario.js';
import { radioPath, rangeFor } from '../src/sim/radio.js';
import { SimWorld, worstWindow, type SimReport } from '../src/sim/world.js';

const ROOT = join(import.meta.dirname, '..');
const CLI = join(ROOT, 'dist', 'bin', 'meshgw.js');
const EXAMPLES = join(ROOT, 'examples');

function refused(text: string): string {
  try {
    new SimWorld(parseScenarioText(text, 'plan.yaml'));
  } catch (err) {
    expect(err).toBeInstanceOf(ScenarioError);
    return (err as Error).message;
  }
  throw new Error('expected a ScenarioError');
}

const LORA = 'media:\n  lora: { kind: lora, frequency: 869525000 }\n';
const TWO = `${LORA}nodes:\n  - { name: a, interfaces: [lora] }\n  - { name: b, interfaces: [lora] }\n`;

function sim(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [CLI, 'sim', ...args], { encoding: 'utf8', timeout: 300_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('meshgw sim: scenarios', () => {
  it('refuses what cannot run, naming the file, the key and the problem', () => {
    expect(refused(`${LORA}nodes:\n  - { name: a, interfaces: [lora], positon: [0, 0] }\n`)).toBe('plan.yaml: nodes[0].positon: unknown key');
    expect(refused('media:\n  lora: { kind: lora, frequncy: 869525000 }\nnodes: []\n')).toBe('plan.yaml: media.lora.frequncy: unknown key (did you mean frequency?)');
    expect(refused(`media:\n  lora: { kind: lora, frequency: 869525000, sf: 13 }\n`)).toBe('plan.yaml: media.lora.sf: spreading factor from 5 to 12, got 13');
    expect(refused(`media:\n  radio: { kind: zigbee }\n`)).toMatch(/^plan\.yaml: media\.radio(\.kind)?: .*lora, afsk or wifi/);
    expect(refused(`${LORA}nodes:\n  - { name: a, interfaces: [wifi] }\n`)).toBe('plan.yaml: nodes[0].interfaces[0]: no medium named "wifi"; media are lora');
    expect(refused(`${LORA}nodes:\n  - { name: a, interfaces: [lora] }\n  - { name: a, interfaces: [lora] }\n`)).toBe('plan.yaml: nodes[1].name: "a" is used twice');
    expect(refused(`${TWO}traffic:\n  - { kind: datagram, from: a, to: z, every: 60 }\n`)).toBe('plan.yaml: traffic[0].to: no node named "z"');
    expect(refused(`${TWO}traffic:\n  - { kind: msp, from: a, to: b }\n`)).toMatch(/^plan\.yaml: traffic\[0\]\.bytes: missing/);
    expect(refused(`${TWO}links:\n  - { between: [a, q], loss: 0.5 }\n`)).toBe('plan.yaml: links[0].between[1]: no node named "q"');
    expect(refused(`media:\n  lora: { kind: lora, frequency: 869525000 }\n  wifi: { kind: wifi }\nnodes:\n  - { name: a, interfaces: [lora] }\n  - { name: b, interfaces: [wifi] }\nlinks:\n  - { between: [a, b], loss: 0.1 }\n`)).toBe(
      'plan.yaml: links[0]: a and b share no medium',
    );
    expect(refused(`${LORA}nodes:\n  - { name: a, interfaces: [lora], at: [0, 0] }\n  - { name: b, interfaces: [lora] }\nmedia_: 1\n`)).toMatch(/^plan\.yaml: media_: unknown key \(did you mean media\?\)/);
    expect(refused(`media:\n  lora: { kind: lora, frequency: 869525000, reach: positions }\nnodes:\n  - { name: a, interfaces: [lora] }\n`)).toBe(
      'plan.yaml: media.lora.reach: positions, but node a has no position (at: [x, y])',
    );
    // Only once the radio is built: a channel outside the region, a setting that cannot send a HELLO.
    expect(refused(`media:\n  lora: { kind: lora, frequency: 902000000 }\nnodes:\n  - { name: a, interfaces: [lora] }\n`)).toMatch(/^plan\.yaml: media\.lora\.frequency: 902 MHz .* does not lie inside one eu868 band/);
    expect(refused(`region: us915\nmedia:\n  lora: { kind: lora, frequency: 915000000, sf: 12 }\nnodes:\n  - { name: a, interfaces: [lora] }\n`)).toMatch(/^plan\.yaml: media\.lora: SF12 at 125 kHz under us915 allows no frame at all, below the 128 a HELLO needs/);
    expect(refused('media: [1, 2\n')).toMatch(/^plan\.yaml:\d+:\d+: /);
  });

  it('random nodes are placed by the seed, and a scenario without traffic needs no second node', () => {
    const text = `${LORA}random: { count: 20, area: [5000, 3000], interfaces: [lora] }\n`;
    const a = parseScenarioText(text, 'r.yaml');
    const b = parseScenarioText(text, 'r.yaml');
    const c = parseScenarioText(`seed: 2\n${text}`, 'r.yaml');
    expect(a.nodes.map((n) => n.name)).toEqual(Array.from({ length: 20 }, (_, i) => `n${i}`));
    expect(a.nodes).toEqual(b.nodes);
    expect(a.nodes).not.toEqual(c.nodes);
    for (const n of a.nodes) {
      expect(n.at![0]).toBeGreaterThanOrEqual(0);
      expect(n.at![0]).toBeLessThan(5000);
      expect(n.at![1]).toBeLessThan(3000);
    }
    expect(a.media.get('lora')!.reach).toBe('positions');
  });
});

describe('meshgw sim: the radio model and the duty-cycle count', () => {
  const lora = (sf: number): MediumSpec => ({ kind: 'lora', frequency: 869_525_000, bandwidth: 125_000, sf, cr: 5, loss: 0, pathLossExponent: 3 });

  it('loss grows with distance; a higher SF reaches further; far beyond the range nothing is heard', () => {
    let last = 0;
    for (let d = 100; d < 50_000; d *= 1.5) {
      const p = radioPath(lora(9), [0, 0], [d, 0]);
      expect(p.loss).toBeGreaterThanOrEqual(last);
      last = p.loss;
    }
    expect(radioPath(lora(9), [0, 0], [200, 0]).loss).toBe(0);
    expect(radioPath(lora(9), [0, 0], [100_000, 0]).loss).toBe(1);
    const ranges = [7, 8, 9, 10, 11, 12].map((sf) => rangeFor(lora(sf)));
    for (let i = 1; i < ranges.length; i++) expect(ranges[i]).toBeGreaterThan(ranges[i - 1]!);
    // 2.5 dB per SF step with exponent 3: 10^(2.5/30) ≈ 1.21 times the range.
    expect(ranges[1]! / ranges[0]!).toBeCloseTo(10 ** (2.5 / 30), 2);
  });

  it('the worst window equals a brute-force sweep over every start', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.integer({ min: 0, max: 5000 }), fc.integer({ min: 1, max: 400 })), { maxLength: 40 }), fc.integer({ min: 50, max: 3000 }), (gaps, windowMs) => {
        const starts: number[] = [];
        const airtimes: number[] = [];
        let t = 0;
        for (const [gap, air] of gaps) {
          t += gap;
          starts.push(t);
          airtimes.push(air);
          t += air;
        }
        // Brute force: every window starting at any transmission's start or ending at any transmission's end.
        const within = (from: number): number => starts.reduce((sum, s, i) => sum + Math.max(0, Math.min(s + airtimes[i]!, from + windowMs) - Math.max(s, from)), 0);
        const candidates = [...starts, ...starts.map((s, i) => s + airtimes[i]! - windowMs)];
        const brute = candidates.reduce((best, from) => Math.max(best, within(from)), 0);
        expect(worstWindow(starts, airtimes, windowMs)).toBeCloseTo(brute, 6);
      }),
      { numRuns: 300 },
    );
  });
});

describe('meshgw sim: the shipped scenarios, through the CLI', () => {
  const reports = new Map<string, SimReport>();
  const files = readdirSync(EXAMPLES).filter((f) => f.endsWith('.yaml'));

  it('examples/ has the three scenarios the docs describe', () => {
    expect(files.sort()).toEqual(['lora-chain.yaml', 'lora-wifi-gateway.yaml', 'random-50.yaml']);
  });

  for (const file of ['lora-chain.yaml', 'lora-wifi-gateway.yaml', 'random-50.yaml']) {
    it(`${file}: runs, exit 0, and no interface exceeds its duty cycle (counted from the medium)`, { timeout: 180_000 }, () => {
      const r = sim(['--scenario', join(EXAMPLES, file), '--json']);
      expect(r.stderr).toBe('');
      expect(r.status).toBe(0);
      const report = JSON.parse(r.stdout) as SimReport;
      reports.set(file, report);
      expect(report.dutyCycleViolations).toEqual([]);
      for (const n of report.nodes) {
        for (const i of n.interfaces) {
          if (i.budgetMs !== undefined) expect(i.worstWindowAirtimeMs).toBeLessThanOrEqual(i.budgetMs + 0.001);
          expect(i.frames.sent).toBeGreaterThan(0);
        }
        expect(n.neighbours, `${file}: ${n.name} has a neighbour`).toBeGreaterThan(0);
      }
    });
  }

  it('lora-chain: b relays; nearly every datagram, the MSP transfer and the Strokkur message arrive', () => {
    const r = reports.get('lora-chain.yaml')!;
    const byName = new Map(r.nodes.map((n) => [n.name, n]));
    expect(byName.get('a')!.neighbours).toBe(1);
    expect(byName.get('b')!.neighbours).toBe(2);
    expect(byName.get('c')!.neighbours).toBe(1);
    const [datagrams, msp, strokkur] = r.flows;
    expect(datagrams!.delivered / datagrams!.sent).toBeGreaterThan(0.85);
    expect(msp).toMatchObject({ kind: 'msp', delivered: 1 });
    expect(strokkur).toMatchObject({ kind: 'strokkur', delivered: 1 });
  });

  it('lora-wifi-gateway: every flow crosses the gateway; the Wi-Fi side has no duty cycle, LoRa 10 %', () => {
    const r = reports.get('lora-wifi-gateway.yaml')!;
    for (const f of r.flows) {
      if (f.kind === 'datagram') expect(f.delivered / f.sent, `${f.from}→${f.to}`).toBeGreaterThan(0.9);
      else expect(f.delivered, `${f.kind} ${f.from}→${f.to}: ${f.error ?? ''}`).toBe(1);
    }
    const gateway = r.nodes.find((n) => n.name === 'gateway')!;
    expect(gateway.interfaces.map((i) => [i.medium, i.budgetMs])).toEqual([
      ['lora', 360_000],
      ['wifi', undefined],
    ]);
  });

  it('the same seed gives the same figures; another seed other ones', () => {
    const strip = (out: string): unknown => {
      const { wallMs: _w, speed: _s, ...rest } = JSON.parse(out) as SimReport;
      return rest;
    };
    const chain = join(EXAMPLES, 'lora-chain.yaml');
    const a = sim(['--scenario', chain, '--json', '--hours', '0.3']);
    const b = sim(['--scenario', chain, '--json', '--hours', '0.3']);
    const c = sim(['--scenario', chain, '--json', '--hours', '0.3', '--seed', '99']);
    expect(a.status).toBe(0);
    expect(strip(a.stdout)).toEqual(strip(b.stdout));
    expect(strip(c.stdout)).not.toEqual(strip(a.stdout));
  });

  it('the text report names every node and says the duty cycle was kept; bad flags are usage errors', () => {
    const r = sim(['--scenario', join(EXAMPLES, 'lora-chain.yaml'), '--hours', '0.2']);
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^scenario lora-chain \(seed 1\): 3 nodes, 0.2 h of virtual time/);
    for (const n of ['a', 'b', 'c']) expect(r.stdout).toMatch(new RegExp(`^${n}\\s+lora`, 'm'));
    expect(r.stdout).toMatch(/duty cycle: kept on every interface/);
    expect(sim([])).toMatchObject({ status: 2, stderr: expect.stringMatching(/sim needs --scenario FILE/) });
    expect(sim(['--scenario', join(EXAMPLES, 'lora-chain.yaml'), '--hours', '0'])).toMatchObject({ status: 2, stderr: expect.stringMatching(/--hours must be a number/) });
    expect(sim(['--scenario', '/nonexistent.yaml'])).toMatchObject({ status: 2, stderr: expect.stringMatching(/\/nonexistent\.yaml: cannot read: no such file/) });
  });
});
