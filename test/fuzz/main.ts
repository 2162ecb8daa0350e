/**
 * `npm run fuzz`: the long fuzz run. Every target (or those named) for 10⁶ inputs each, or for a
 * time budget per target; prints inputs tried, crashes, broken invariants, the slowest input and
 * the heap before and after (after a forced GC: the script runs node with --expose-gc), and
 * writes a reproducer (hex) for every failure to fuzz-failures/<target>/.
 *
 *   npm run fuzz                                  # 10⁶ inputs per target
 *   npm run fuzz -- --seconds 60                  # at most 60 s per target
 *   npm run fuzz -- --target kiss,rfc5444-reader --iterations 100000 --seed 7
 *   npm run fuzz -- --replay fuzz-failures/kiss/…hex --target kiss
 *
 * Exit status 1 if anything failed. A fixed failure's reproducer goes in
 * test/fuzz/regressions/<target>/ so that `npm test` replays it.
 */
import { mkdirSync, writeFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { createHash } from 'node:crypto';
import { replay, runFuzz, type FuzzResult } from './harness.js';
import { targets } from './targets/index.js';
import { readReproducer } from './regressions.js';

/** Heap growth across a run (after GC) above which the run counts as leaking. */
const HEAP_GROWTH_LIMIT = 64 * 1024 * 1024;

function usage(message: string): never {
  console.error(`meshgw fuzz: ${message}`);
  console.error('usage: npm run fuzz -- [--target a,b] [--iterations N] [--seconds S] [--seed N] [--out DIR] [--replay FILE]');
  process.exit(2);
}

function positiveInt(name: string, text: string | undefined, fallback: number): number {
  if (text === undefined) return fallback;
  const n = Number(text);
  if (!Number.isSafeInteger(n) || n <= 0) usage(`--${name} must be a positive integer, got ${JSON.stringify(text)}`);
  return n;
}

let args;
try {
  args = parseArgs({
    options: {
      target: { type: 'string', multiple: true },
      iterations: { type: 'string' },
      seconds: { type: 'string' },
      seed: { type: 'string' },
      out: { type: 'string' },
      replay: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  }).values;
} catch (err) {
  usage((err as Error).message);
}
if (args.help) {
  console.log(`targets: ${targets.map((t) => t.name).join(', ')}`);
  process.exit(0);
}

const wanted = (args.target ?? []).flatMap((t) => t.split(',')).filter((t) => t !== '');
const unknown = wanted.filter((w) => !targets.some((t) => t.name === w));
if (unknown.length > 0) usage(`unknown target ${unknown.join(', ')}; targets: ${targets.map((t) => t.name).join(', ')}`);
const chosen = wanted.length > 0 ? targets.filter((t) => wanted.includes(t.name)) : targets;

if (args.replay !== undefined) {
  if (chosen.length !== 1) usage('--replay needs exactly one --target');
  const text = readFileSync(args.replay, 'utf8');
  const input = readReproducer(text);
  try {
    replay(chosen[0]!, input);
    console.log(`${chosen[0]!.name}: ${input.length}-byte input passes`);
  } catch (err) {
    console.log(`${chosen[0]!.name}: ${input.length}-byte input fails`);
    console.log((err as Error).stack);
    process.exit(1);
  }
  process.exit(0);
}

const iterations = positiveInt('iterations', args.iterations, args.seconds === undefined ? 1_000_000 : Number.MAX_SAFE_INTEGER);
const seconds = args.seconds === undefined ? undefined : positiveInt('seconds', args.seconds, 0);
const seed = args.seed === undefined ? 1 : positiveInt('seed', args.seed, 1);
const outDir = args.out ?? 'fuzz-failures';
if ((globalThis as { gc?: unknown }).gc === undefined) {
  console.log('(heap figures are without a forced GC: run with node --expose-gc, as npm run fuzz does)');
}

const mb = (b: number): string => (b / 1048576).toFixed(1);
const rows: string[][] = [['target', 'inputs', 'inputs/s', 'crashes', 'invariants', 'slowest', 'heap MB (start → end)']];
let failed = 0;
const results: FuzzResult[] = [];
for (const target of chosen) {
  process.stdout.write(`${target.name} … `);
  const result = runFuzz(target, {
    seed,
    iterations,
    ...(seconds !== undefined ? { seconds } : {}),
    maxFailures: 20,
    onProgress: (tried, ms) => process.stdout.write(`${tried} (${(ms / 1000).toFixed(0)} s) … `),
  });
  results.push(result);
  const crashes = result.failures.filter((f) => f.kind === 'crash').length;
  const broken = result.failures.length - crashes;
  const growth = result.heapEndBytes - result.heapStartBytes;
  const leak = result.gcForced && growth > HEAP_GROWTH_LIMIT;
  console.log(`${result.failures.length === 0 && !leak ? 'ok' : 'FAILED'}`);
  rows.push([
    target.name,
    String(result.tried),
    String(Math.round(result.tried / (result.elapsedMs / 1000))),
    String(crashes),
    String(broken),
    `${result.slowest.ms.toFixed(2)} ms (#${result.slowest.index}, ${result.slowest.inputHex.length / 2} B)`,
    `${mb(result.heapStartBytes)} → ${mb(result.heapEndBytes)}${leak ? ' LEAK' : ''}`,
  ]);
  if (leak) {
    failed++;
    console.log(`  heap grew by ${mb(growth)} MB after GC (limit ${mb(HEAP_GROWTH_LIMIT)} MB)`);
  }
  for (const f of result.failures) {
    failed++;
    const dir = join(outDir, f.target);
    mkdirSync(dir, { recursive: true });
    const name = createHash('sha256').update(f.inputHex).digest('hex').slice(0, 12);
    const file = join(dir, `${name}.hex`);
    writeFileSync(file, `# ${f.target}, seed ${result.seed}, input #${f.index}: ${f.message.split('\n')[0]}\n${f.inputHex}\n`);
    console.log(`  ${f.kind}: ${f.message.split('\n')[0]}\n    reproducer: ${file}\n    ${f.stack.split('\n').slice(1, 3).join('\n    ')}`);
  }
}

const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
console.log('');
for (const r of rows) console.log(r.map((cell, c) => (c === 0 || c === 5 || c === 6 ? cell.padEnd(widths[c]!) : cell.padStart(widths[c]!))).join('  '));
const total = results.reduce((s, r) => s + r.tried, 0);
console.log(`\n${total} inputs over ${results.length} targets, seed ${seed}: ${failed === 0 ? 'no failures' : `${failed} failures (reproducers in ${outDir}/)`}`);
process.exit(failed === 0 ? 0 : 1);
