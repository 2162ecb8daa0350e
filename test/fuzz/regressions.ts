/**
 * Reproducers kept as regression tests: test/fuzz/regressions/<target>/<name>.hex, each one input
 * in hex (whitespace ignored; lines starting with # are comments). `npm test` replays each
 * against its target; `npm run fuzz` writes new ones to fuzz-failures/ for a developer to move
 * here once the defect is fixed.
 */
import { readdirSync, readFileSync, existsSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { fromHex } from './harness.js';

/** test/fuzz/regressions, found from this file whether it runs from test/ (vitest) or dist/test/. */
export function regressionsDir(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  const direct = join(here, 'regressions');
  if (existsSync(direct)) return direct;
  // dist/test/fuzz → ../../../test/fuzz/regressions
  return join(here, '..', '..', '..', 'test', 'fuzz', 'regressions');
}

export interface Regression {
  readonly target: string;
  readonly file: string;
  readonly input: Uint8Array;
}

export function readReproducer(text: string): Uint8Array {
  return fromHex(
    text
      .split('\n')
      .filter((line) => !line.trimStart().startsWith('#'))
      .join(''),
  );
}

export function loadRegressions(): Regression[] {
  const dir = regressionsDir();
  if (!existsSync(dir)) return [];
  const out: Regression[] = [];
  for (const target of readdirSync(dir, { withFileTypes: true })) {
    if (!target.isDirectory()) continue;
    for (const file of readdirSync(join(dir, target.name)).sort()) {
      if (!file.endsWith('.hex')) continue;
      const path = join(dir, target.name, file);
      out.push({ target: target.name, file: path, input: readReproducer(readFileSync(path, 'utf8')) });
    }
  }
  return out;
}
