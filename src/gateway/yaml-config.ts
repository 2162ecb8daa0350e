/**
 * What every YAML file meshgw reads shares (the daemon's config, a simulator scenario): parsing
 * with `yaml`, checking with a zod schema, and one-line errors that name the file, the key path
 * and the problem — `FILE: interfaces[1].radio.sf: must be an integer 5..12, got 13`, or
 * `FILE:LINE:COL: message` for YAML syntax. Unknown keys are errors, with the closest known key
 * as a suggestion.
 */
import { LineCounter, parseDocument } from 'yaml';
import { z } from 'zod';

/** A YAML file that cannot be used; the message is one line naming the file and the key. */
export class YamlConfigError extends Error {
  override name = 'YamlConfigError';
}

/** A value as the messages show it. */
export function yamlShow(v: unknown): string {
  if (v === undefined) return 'nothing';
  if (v === null) return 'an empty value';
  if (typeof v === 'string') return JSON.stringify(v);
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a mapping';
  return String(v);
}

/** An error function for zod: `EXPECTATION, got VALUE`, or `missing (EXPECTATION)`. */
export function yamlExpect(expectation: string) {
  return (iss: { input?: unknown }): string => (iss.input === undefined ? `missing (${expectation})` : `${expectation}, got ${yamlShow(iss.input)}`);
}

/** Optimal string alignment distance (Levenshtein with adjacent transpositions). */
function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let v = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) v = Math.min(v, d[i - 2]![j - 2]! + 1);
      d[i]![j] = v;
    }
  }
  return d[a.length]![b.length]!;
}

/** The known key closest to `key`, if it is close enough to be a typo of it. */
export function closestKey(key: string, known: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const k of known) {
    const distance = editDistance(key.toLowerCase(), k.toLowerCase());
    if (distance < bestDistance) {
      best = k;
      bestDistance = distance;
    }
  }
  const allowed = key.length <= 3 ? 1 : 2;
  return best !== undefined && bestDistance <= allowed ? best : undefined;
}

/** A strict object: unknown keys are errors, with the closest known key as a suggestion. */
export function yamlStrict<T extends z.ZodRawShape>(shape: T, what = 'a mapping') {
  const known = Object.keys(shape);
  return z
    .object(shape, {
      error: (iss) => {
        if (iss.code === 'unrecognized_keys') {
          const guess = closestKey(String(iss.keys[0]), known);
          return guess !== undefined ? `unknown key (did you mean ${guess}?)` : 'unknown key';
        }
        return yamlExpect(`must be ${what}`)(iss);
      },
    })
    .strict();
}

type Issue = z.core.$ZodIssue;

/** The issues with every `off | {host, port}`-style union replaced by its mapping side's issues. */
function flatten(issues: readonly Issue[], prefix: readonly PropertyKey[] = []): Array<{ path: PropertyKey[]; issue: Issue }> {
  const out: Array<{ path: PropertyKey[]; issue: Issue }> = [];
  for (const issue of issues) {
    const path = [...prefix, ...issue.path];
    const mappingSide = issue.code === 'invalid_union' ? issue.errors[1] : undefined;
    const input = (issue as { input?: unknown }).input;
    if (mappingSide !== undefined && typeof input === 'object' && input !== null && !Array.isArray(input)) {
      out.push(...flatten(mappingSide, path));
    } else {
      out.push({ path, issue });
    }
  }
  return out;
}

function formatPath(path: readonly PropertyKey[]): string {
  let s = '';
  for (const p of path) s += typeof p === 'number' ? `[${p}]` : s === '' ? String(p) : `.${String(p)}`;
  return s;
}

/** One line for the first problem, unknown keys first (a misspelt key also makes a key go missing). */
function describe(error: z.ZodError, file: string): string {
  const all = flatten(error.issues);
  const first = all.find((i) => i.issue.code === 'unrecognized_keys') ?? all[0];
  if (first === undefined) return `${file}: invalid`;
  const path = first.issue.code === 'unrecognized_keys' ? [...first.path, first.issue.keys[0]!] : first.path;
  const where = formatPath(path);
  return where === '' ? `${file}: ${first.issue.message}` : `${file}: ${where}: ${first.issue.message}`;
}

/**
 * The YAML in `text`, checked by `schema`; `file` names it in messages, `error` makes the
 * thrown error from the one-line message. An empty file (or one of only comments) is `{}`.
 */
export function parseYamlWith<S extends z.ZodType>(schema: S, text: string, file: string, error: (message: string) => Error): z.output<S> {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false });
  const syntax = doc.errors[0];
  if (syntax !== undefined) {
    const { line, col } = lineCounter.linePos(syntax.pos[0]);
    throw error(`${file}:${line}:${col}: ${syntax.message}`);
  }
  let data: unknown;
  try {
    data = doc.toJS() ?? {};
  } catch (err) {
    // `yaml` throws a ReferenceError for too many alias expansions (a "billion laughs" file).
    throw error(`${file}: ${(err as Error)?.message ?? String(err)}`);
  }
  const result = schema.safeParse(data, { reportInput: true });
  if (!result.success) throw error(describe(result.error, file));
  return result.data;
}
