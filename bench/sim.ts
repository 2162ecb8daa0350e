/**
 * The planner's simulator at scale (issue 14's goal: 100 nodes × 1 virtual hour in ≤ 60 s of wall
 * time on this 2-core machine): a random 100-node LoRa mesh with datagram, MSP and Strokkur
 * traffic, through the daemon's own loop, printed as wall time and the ratio virtual / wall.
 */
import { parseScenarioText } from '../src/sim/scenario.js';
import { runScenario } from '../src/sim/world.js';

const SCENARIO = `
name: bench-100
seed: 11
hours: 1
region: eu868
media:
  lora: { kind: lora, frequency: 869525000, bandwidth: 125000, sf: 8, pathLossExponent: 3.0 }
random: { count: 100, area: [28000, 28000], interfaces: [lora] }
traffic:
  - { kind: datagram, from: random, to: random, pairs: 20, every: 300, bytes: 24, start: 300 }
  - { kind: msp, from: random, to: random, pairs: 4, at: 900, bytes: 4096 }
  - { kind: strokkur, from: random, to: random, pairs: 4, at: 1500, bytes: 2048 }
`;

export async function simBench(): Promise<string[]> {
  const report = await runScenario(parseScenarioText(SCENARIO, 'bench-100'));
  const transmissions = report.media.reduce((n, m) => n + m.transmissions, 0);
  const sent = report.flows.filter((f) => f.kind === 'datagram').reduce((n, f) => n + f.sent, 0);
  const delivered = report.flows.filter((f) => f.kind === 'datagram').reduce((n, f) => n + f.delivered, 0);
  return [
    'simulator (meshgw sim; goal: 100 nodes × 1 virtual hour in ≤ 60 s of wall time):',
    `  100 LoRa nodes × 1 h   ${(report.wallMs / 1000).toFixed(1)} s wall (${(report.wallMs / 60_000).toFixed(2)} of the goal), virtual/wall ${report.speed.toFixed(0)}×; ${transmissions} transmissions, datagrams ${delivered}/${sent}, duty-cycle violations ${report.dutyCycleViolations.length}`,
  ];
}

if (import.meta.url === `file://${process.argv[1]}`) for (const line of await simBench()) console.log(line);
