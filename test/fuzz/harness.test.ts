/** The fuzz harness finds what it should: a planted crash, a broken invariant, a growing state. */
import { describe, expect, it } from 'vitest';
import { expectRejection, generate, invariant, InvariantError, Prng, replay, runFuzz, toHex, type FuzzTarget } from './harness.js';
import { readReproducer } from './regressions.js';

const corpus = (): Uint8Array[] => [Uint8Array.of(0x73, 0x10, 1, 2, 3, 4, 5, 6), Uint8Array.of(0xc0, 0x00, 0xc0)];

describe('fuzz harness', () => {
  it('is deterministic for a seed and differs between seeds', () => {
    const run = (seed: number): string[] => {
      const rng = new Prng(seed);
      return Array.from({ length: 200 }, () => toHex(generate(rng, corpus(), 512)));
    };
    expect(run(3)).toEqual(run(3));
    expect(run(3)).not.toEqual(run(4));
  });

  it('generates mutants, random inputs and corpus entries, within maxLength', () => {
    const rng = new Prng(9);
    const seen = new Set<string>();
    let longest = 0;
    for (let i = 0; i < 5000; i++) {
      const input = generate(rng, corpus(), 64);
      longest = Math.max(longest, input.length);
      seen.add(toHex(input));
    }
    expect(longest).toBeLessThanOrEqual(64);
    expect(seen.size).toBeGreaterThan(2500);
    expect(seen.has(toHex(corpus()[0]!))).toBe(true);
    expect(seen.has('')).toBe(true);
  });

  it('reports a planted crash with its input, and the input replays', () => {
    const target: FuzzTarget = {
      name: 'planted',
      corpus,
      one(input) {
        // A decoder that trusts a length byte: crashes when byte 2 is 0xff and the input is short.
        if (input[2] === 0xff && input.length < 6) (undefined as unknown as { x: number }).x = 1;
      },
    };
    const result = runFuzz(target, { seed: 1, iterations: 20_000, maxFailures: 1 });
    expect(result.failures).toHaveLength(1);
    const failure = result.failures[0]!;
    expect(failure.kind).toBe('crash');
    expect(failure.message).toMatch(/^TypeError/);
    const input = readReproducer(`# planted\n${failure.inputHex}\n`);
    expect(input[2]).toBe(0xff);
    expect(() => replay(target, input)).toThrow(TypeError);
  });

  it('tells a broken invariant from a crash, and checks state caps', () => {
    const invariantTarget: FuzzTarget = {
      name: 'round-trip',
      corpus,
      one(input) {
        invariant(input.length !== 5, 'a 5-byte input does not round-trip');
      },
    };
    const broken = runFuzz(invariantTarget, { seed: 2, iterations: 20_000, maxFailures: 1 });
    expect(broken.failures[0]?.kind).toBe('invariant');

    const growing: FuzzTarget<{ held: Uint8Array[] }> = {
      name: 'unbounded',
      corpus,
      setup: () => ({ held: [] }),
      one(input, state) {
        state.held.push(input);
      },
      check(state) {
        invariant(state.held.length <= 1500, `holds ${state.held.length} inputs, cap 1500`);
      },
    };
    const leak = runFuzz(growing, { seed: 3, iterations: 5_000, maxFailures: 1 });
    expect(leak.failures[0]?.message).toMatch(/holds 2000 inputs/);

    const bounded = runFuzz({ ...growing, resetEvery: 1000 }, { seed: 3, iterations: 5_000 });
    expect(bounded.failures).toEqual([]);
    expect(bounded.tried).toBe(5_000);
  });

  it('expectRejection swallows documented rejections only', () => {
    class DecodeError extends Error {}
    const isDecodeError = (e: unknown): boolean => e instanceof DecodeError;
    expect(expectRejection(() => 7, isDecodeError)).toBe(7);
    expect(
      expectRejection(() => {
        throw new DecodeError('bad length');
      }, isDecodeError),
    ).toBeUndefined();
    expect(() => expectRejection(() => JSON.parse('{') as unknown, isDecodeError)).toThrow(SyntaxError);
    expect(() => expectRejection(() => (null as unknown as { a: number }).a, () => true)).toThrow(TypeError);
    expect(() => expectRejection(() => invariant(false, 'x'), () => true)).toThrow(InvariantError);
    const documented = (): never => {
      throw new RangeError('port must be 0..15');
    };
    expect(() => expectRejection(documented, () => true)).toThrow(RangeError);
    expect(expectRejection(documented, () => true, { allowRangeError: true })).toBeUndefined();
    // The engine's own RangeErrors are defects even where a decoder documents RangeError.
    expect(() => expectRejection(() => new Array(-1), () => true, { allowRangeError: true })).toThrow(/Invalid array length/);
  });
});
