/**
 * `meshgw sim --scenario FILE [--hours H] [--seed N] [--json]`: runs a planner's scenario in
 * virtual time through the daemon's own loop and code (src/sim/), and prints per-node and
 * per-traffic figures. Exit 0 when the run kept every duty-cycle budget, 1 when it did not (that
 * would be a bug in meshgw's pacing), 2 for a scenario that cannot be run (named key, problem).
 */
import type { Command } from 'commander';
import { UsageError, parseIntOption, parseNumberOption } from './usage-error.js';

export interface SimCommandOptions {
  scenario?: string;
  hours?: string;
  seed?: string;
  json?: boolean;
}

export function simOptions(cmd: Command): Command {
  return cmd
    .option('--scenario <file>', 'the scenario (YAML; see docs/sim.md and examples/)')
    .option('--hours <h>', "virtual hours to run (default: the scenario's, else 1)")
    .option('--seed <n>', "overrides the scenario's seed")
    .option('--json', 'print the figures as one JSON document');
}

export async function runSimCommand(opts: SimCommandOptions): Promise<void> {
  if (opts.scenario === undefined) throw new UsageError('sim needs --scenario FILE (examples/ has some: meshgw sim --scenario examples/lora-chain.yaml)');
  const { MAX_HOURS, ScenarioError, loadScenario } = await import('../sim/scenario.js');
  const hours = opts.hours !== undefined ? parseNumberOption('--hours', opts.hours, 0.001, MAX_HOURS) : undefined;
  const seed = opts.seed !== undefined ? parseIntOption('--seed', opts.seed, 0, 2 ** 31 - 1) : undefined;
  let scenario;
  try {
    scenario = loadScenario(opts.scenario);
  } catch (err) {
    if (err instanceof ScenarioError) throw new UsageError(err.message);
    throw err;
  }
  if (seed !== undefined) scenario.seed = seed;
  const { runScenario } = await import('../sim/world.js');
  const { formatReport } = await import('../sim/report.js');
  const total = hours ?? scenario.hours;
  const progress = !opts.json && process.stderr.isTTY;
  let report;
  try {
    report = await runScenario(scenario, {
      ...(hours !== undefined ? { hours } : {}),
      ...(progress ? { onHour: (h: number, wallMs: number) => process.stderr.write(`\rmeshgw sim: hour ${h} of ${Math.ceil(total)} (${(wallMs / 1000).toFixed(1)} s)   `) } : {}),
    });
  } catch (err) {
    if (err instanceof ScenarioError) throw new UsageError(err.message);
    throw err;
  }
  if (progress) process.stderr.write('\r\x1b[K');
  if (opts.json) process.stdout.write(JSON.stringify(report, null, 2) + '\n');
  else process.stdout.write(formatReport(report).join('\n') + '\n');
  if (report.dutyCycleViolations.length > 0) {
    process.stderr.write(`meshgw sim: the duty cycle was exceeded on ${report.dutyCycleViolations.length} interface(s)\n`);
    process.exitCode = 1;
  }
}
