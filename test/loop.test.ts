/** The loop (src/gateway/loop.ts) on a virtual clock: order, wakes, one timer, and its guards. */
import { describe, expect, it } from 'vitest';
import { VirtualClock } from '../src/link/clock.js';
import { Loop, type Machine } from '../src/gateway/loop.js';

function recorder(name: string, log: string[], deadline: () => number | undefined = () => undefined): Machine {
  return { name, poll: (now) => void log.push(`${name}@${now}`), nextDeadline: deadline };
}

describe('Loop', () => {
  it('polls machines in the order they were added, then sleeps until the earliest deadline', () => {
    const clock = new VirtualClock(0);
    const loop = new Loop(clock);
    const log: string[] = [];
    loop.add(recorder('a', log, () => (clock.now() < 500 ? 500 : undefined)));
    loop.add(recorder('b', log, () => (clock.now() < 200 ? 200 : undefined)));
    loop.start();
    clock.advance(0);
    expect(log).toEqual(['a@0', 'b@0']);
    clock.advance(199);
    expect(log).toHaveLength(2); // asleep: nothing due, no wake
    clock.advance(1);
    expect(log).toEqual(['a@0', 'b@0', 'a@200', 'b@200']);
    expect(clock.pending).toBe(1); // one timer, whatever the number of machines
    clock.advance(1000);
    expect(log).toEqual(['a@0', 'b@0', 'a@200', 'b@200', 'a@500', 'b@500']);
    expect(loop.counters.spins).toBe(0);
  });

  it('a wake runs the loop at the current time, coalesced', () => {
    const clock = new VirtualClock(0);
    const loop = new Loop(clock);
    const log: string[] = [];
    loop.add(recorder('a', log, () => 10_000));
    loop.start();
    clock.advance(100);
    log.length = 0;
    loop.wake();
    loop.wake();
    loop.wake();
    clock.advance(0);
    expect(log).toEqual(['a@100']);
  });

  it('a machine that wakes the loop during a pass gets another pass at once, bounded', () => {
    const clock = new VirtualClock(0);
    const loop = new Loop(clock, { maxPasses: 4 });
    let polls = 0;
    loop.add({ name: 'eager', poll: () => void (polls++, loop.wake()), nextDeadline: () => undefined });
    loop.start();
    clock.advance(0);
    // 4 passes a run, then re-armed at now; after 64 such runs in a row it sleeps 1 ms between runs.
    expect(polls).toBe(4 * 64);
    expect(loop.counters.spins).toBe(1);
    clock.advance(3);
    expect(polls).toBe(4 * 67);
  });

  it('a machine that throws is counted and logged once; the others still run', () => {
    const clock = new VirtualClock(0);
    const lines: string[] = [];
    const loop = new Loop(clock, { log: (l) => lines.push(l) });
    const log: string[] = [];
    loop.add({ name: 'broken', poll: () => { throw new Error('bug'); }, nextDeadline: () => undefined });
    loop.add(recorder('ok', log, () => undefined));
    loop.start();
    clock.advance(0);
    loop.wake();
    clock.advance(0);
    expect(log).toEqual(['ok@0', 'ok@0']);
    expect(loop.counters.machineErrors).toBe(2);
    expect(lines.filter((l) => l.includes('broken threw'))).toHaveLength(1);
  });

  it('a machine whose deadline never passes cannot make the loop spin at one instant', () => {
    const clock = new VirtualClock(0);
    const lines: string[] = [];
    const loop = new Loop(clock, { log: (l) => lines.push(l) });
    loop.add({ name: 'stuck', poll: () => undefined, nextDeadline: (now) => now });
    loop.start();
    clock.advance(10); // would never return if the loop re-armed at `now` forever
    expect(loop.counters.spins).toBeGreaterThan(0);
    expect(lines.filter((l) => l.includes('stuck kept asking'))).toHaveLength(1);
  });

  it('a machine that makes progress every run is never taken for a spin, however soon it is due again', () => {
    const clock = new VirtualClock(0);
    const lines: string[] = [];
    const loop = new Loop(clock, { log: (l) => lines.push(l) });
    // Due again at once after every frame (a link faster than the run), for 1,000 runs.
    let frames = 1000;
    loop.add({ name: 'fast', poll: () => (frames > 0 ? (frames--, 1) : 0), nextDeadline: (now) => (frames > 0 ? now : undefined) });
    loop.start();
    clock.advance(0);
    expect(frames).toBe(0);
    expect(loop.counters.spins).toBe(0);
    expect(lines).toEqual([]);
  });

  it('stop cancels the timer; a stopped loop ignores wakes', () => {
    const clock = new VirtualClock(0);
    const loop = new Loop(clock);
    const log: string[] = [];
    loop.add(recorder('a', log, () => 100));
    loop.start();
    clock.advance(0);
    loop.stop();
    loop.wake();
    clock.advance(1000);
    expect(log).toEqual(['a@0']);
    expect(clock.pending).toBe(0);
  });
});
