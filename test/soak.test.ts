/**
 * The soak's own checks (bench/soak.ts): its window count finds what a pacer bug would leave,
 * and one virtual hour of the soak mesh passes every check. `npm run soak` is the 24-hour run.
 */
import { describe, expect, it } from 'vitest';
import { maxWindowAirtime, runSoak } from '../bench/soak.js';
import { worstWindow } from '../src/sim/world.js';
import { Prng } from '../src/link/prng.js';

/** The most airtime in any window, by sampling window ends every 0.5 ms (slow, obviously right). */
function bruteForce(starts: number[], airtimes: number[], windowMs: number): number {
  const last = starts.length === 0 ? 0 : starts[starts.length - 1]! + airtimes[airtimes.length - 1]!;
  let best = 0;
  for (let end = 0; end <= last + windowMs; end += 0.5) {
    let sum = 0;
    for (let i = 0; i < starts.length; i++) sum += Math.max(0, Math.min(end, starts[i]! + airtimes[i]!) - Math.max(end - windowMs, starts[i]!));
    best = Math.max(best, sum);
  }
  return best;
}

function randomRecord(seed: number): { starts: number[]; airtimes: number[] } {
  const rng = new Prng(seed);
  const starts: number[] = [];
  const airtimes: number[] = [];
  let t = 0;
  for (let i = 0; i < 40; i++) {
    t += rng.int(30);
    const a = 1 + rng.int(20);
    starts.push(t);
    airtimes.push(a);
    t += a;
  }
  return { starts, airtimes };
}

describe('soak checks', () => {
  it('the window count finds the maximum over every sliding window (against a brute force)', () => {
    for (let seed = 1; seed <= 30; seed++) {
      const { starts, airtimes } = randomRecord(seed);
      const exact = bruteForce(starts, airtimes, 100);
      expect(maxWindowAirtime(starts, airtimes, 100)).toBeCloseTo(exact, 6);
    }
  });

  it('counts a window that ends at a transmission’s end, which a count from starts alone misses', () => {
    // Window 100: [0, 60) then [150, 190); the window (90, 190] holds 10 + 40 = 50, while any
    // window starting at a start holds at most 40 + … : from 0 → 60 (covers [0,100)), from 150 → 40.
    const starts = [0, 150];
    const airtimes = [100, 40];
    expect(maxWindowAirtime(starts, airtimes, 100)).toBe(100);
    const s2 = [0, 120];
    const a2 = [60, 40];
    // (60, 160]: 0 + 40; (20, 120]: 40 + 0; (60,160] ... the best is a window [20,120]? 40; [60,160]: 40; [50,150]: 10+30 = 40
    expect(maxWindowAirtime(s2, a2, 100)).toBeCloseTo(bruteForce(s2, a2, 100), 6);
    // A planted overrun is found: 11 s in a 100 s window at a 10 % budget.
    const starts3 = [0, 20, 40, 60, 80];
    const air3 = [2.2, 2.2, 2.2, 2.2, 2.2];
    expect(maxWindowAirtime(starts3, air3, 100)).toBeCloseTo(11, 6);
    expect(worstWindow(starts3, air3, 100)).toBeCloseTo(11, 6);
  });

  it('one virtual hour of the soak mesh keeps every rule and completes every transfer', async () => {
    const result = await runSoak({ hours: 1, seed: 1 });
    expect(result.failures).toEqual([]);
    expect(result.transfers.length).toBeGreaterThanOrEqual(2);
    expect(result.transfers.every((t) => t.ok)).toBe(true);
    expect(result.worst.some((w) => w.medium === 'lora' && w.worstMs > 0)).toBe(true);
    expect(result.silentTimers).toEqual([]);
    expect(result.datagrams.delivered).toBeGreaterThan(0.9 * result.datagrams.sent);
  }, 180_000);
});
