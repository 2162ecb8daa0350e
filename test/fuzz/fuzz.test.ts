/**
 * Every fuzz target for ≥ 10⁴ seeded inputs (FUZZ_ITERATIONS overrides), and every kept
 * reproducer in test/fuzz/regressions/. `npm run fuzz` is the long run.
 */
import { describe, expect, it } from 'vitest';
import { replay, runFuzz, type FuzzResult } from './harness.js';
import { targets } from './targets/index.js';
import { loadRegressions } from './regressions.js';

const ITERATIONS = Number(process.env.FUZZ_ITERATIONS ?? 10_000);

function report(result: FuzzResult): string {
  return result.failures
    .map((f) => `${f.target} input #${f.index} (${f.kind}): ${f.message}\n  input: ${f.inputHex.slice(0, 400)}\n${f.stack.split('\n').slice(1, 6).join('\n')}`)
    .join('\n\n');
}

describe('fuzz targets', () => {
  it('has a unique name per target', () => {
    const names = targets.map((t) => t.name);
    expect(new Set(names).size).toBe(names.length);
  });

  for (const target of targets) {
    it(`${target.name}: ${ITERATIONS} inputs without a crash or a broken invariant`, { timeout: 120_000 }, () => {
      const result = runFuzz(target, { seed: 0x5eed, iterations: ITERATIONS });
      expect(report(result)).toBe('');
      expect(result.tried).toBe(ITERATIONS);
    });
  }
});

describe('fuzz regressions', () => {
  const regressions = loadRegressions();
  it('every reproducer names a known target', () => {
    const names = new Set(targets.map((t) => t.name));
    expect(regressions.filter((r) => !names.has(r.target)).map((r) => r.file)).toEqual([]);
  });
  for (const r of regressions) {
    const target = targets.find((t) => t.name === r.target);
    if (!target) continue;
    it(`${r.target}: ${r.file.split('/').slice(-1)[0]}`, () => {
      expect(() => replay(target, r.input)).not.toThrow();
    });
  }
});
