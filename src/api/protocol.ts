/**
 * The meshgw app API's protocol (meshgw.proto beside this file), loaded once with the Messi
 * runtime. The .proto is the contract; this file only finds it: beside this module when running
 * from `src/` (vitest, tsx), or in `src/api/` of the package when running from `dist/src/api/`
 * (the package ships `src/api/meshgw.proto`).
 */
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { loadProtocol, type MessiProtocol } from '../messi/index.js';
import { MAX_MESSAGE } from '../strokkur/chunk.js';

/** Largest Messi frame either way: a 4 MiB Strokkur message and its fields. */
export const API_MAX_FRAME_BYTES = MAX_MESSAGE + 64 * 1024;

const CANDIDATES = [new URL('./meshgw.proto', import.meta.url), new URL('../../../src/api/meshgw.proto', import.meta.url)];

/** The path of meshgw.proto; throws naming every place looked at when it is in none. */
export function meshgwProtoPath(): string {
  for (const url of CANDIDATES) {
    const path = fileURLToPath(url);
    if (existsSync(path)) return path;
  }
  throw new Error(`meshgw.proto not found (looked at ${CANDIDATES.map((u) => fileURLToPath(u)).join(' and ')})`);
}

let cached: MessiProtocol | undefined;

/** The meshgw protocol (parsed once). */
export function meshgwProtocol(): MessiProtocol {
  if (cached === undefined) {
    const path = meshgwProtoPath();
    cached = loadProtocol({ text: readFileSync(path, 'utf8'), file: path });
  }
  return cached;
}

let version: string | undefined;

/** The package's version (package.json beside `src/` or above `dist/`); "unknown" when not found. */
export function meshgwVersion(): string {
  if (version !== undefined) return version;
  version = 'unknown';
  for (const rel of ['../../package.json', '../../../package.json']) {
    try {
      const path = fileURLToPath(new URL(rel, import.meta.url));
      if (!existsSync(path)) continue;
      const pkg = JSON.parse(readFileSync(path, 'utf8')) as { name?: unknown; version?: unknown };
      if (pkg.name === 'meshgw' && typeof pkg.version === 'string') {
        version = pkg.version;
        break;
      }
    } catch {
      // An unreadable file is not the package's: try the next place.
    }
  }
  return version;
}
