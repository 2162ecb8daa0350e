/**
 * A mistake in how the command line was written. The CLI prints its message on one line of
 * stderr and exits 2; anything else that goes wrong at run time exits 1.
 */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

/** Parses an integer option, or throws a UsageError naming the option. */
export function parseIntOption(name: string, value: string, min: number, max: number): number {
  const n = Number(value);
  if (!/^-?\d+$/.test(value.trim()) || !Number.isSafeInteger(n) || n < min || n > max) {
    throw new UsageError(`${name} must be an integer from ${min} to ${max}, got '${value}'`);
  }
  return n;
}

/** Parses a number option, or throws a UsageError naming the option. */
export function parseNumberOption(name: string, value: string, min: number, max: number): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n < min || n > max) {
    throw new UsageError(`${name} must be a number from ${min} to ${max}, got '${value}'`);
  }
  return n;
}
