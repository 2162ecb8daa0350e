/**
 * The monotonic clock: it must not follow the wall clock when NTP steps it, and its timers must
 * fire whatever the wall clock does. No durations are asserted: the tests wait on the timers.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { MonotonicClock, RealClock } from '../src/link/clock.js';

const HOUR = 3_600_000;

/** Resolves when a timer set for `at` on `clock` fires, with the clock's time then. */
function fired(clock: MonotonicClock, at: number): Promise<number> {
  return new Promise((resolve) => clock.setTimer(at, () => resolve(clock.now())));
}

afterEach(() => {
  vi.useRealTimers();
  vi.restoreAllMocks();
});

describe('MonotonicClock', () => {
  it('does not follow the wall clock when it steps an hour forward and back, and its timers still fire', async () => {
    const clock = new MonotonicClock();
    const realNow = Date.now.bind(Date);
    let step = 0;
    vi.spyOn(Date, 'now').mockImplementation(() => realNow() + step);

    const t0 = clock.now();
    step = HOUR; // NTP at boot: the wall clock jumps an hour ahead
    expect(Date.now() - realNow()).toBeGreaterThanOrEqual(HOUR - 1_000);
    const t1 = clock.now();
    expect(t1).toBeGreaterThanOrEqual(t0);
    expect(t1 - t0).toBeLessThan(HOUR / 2); // it moved by the real time elapsed, not by the step

    // A timer set now, then the wall clock steps back two hours (an hour behind the truth).
    const at = clock.now() + 5;
    const whenFired = fired(clock, at);
    step = -HOUR;
    const t2 = clock.now();
    expect(t2).toBeGreaterThanOrEqual(t1);
    expect(t2 - t1).toBeLessThan(HOUR / 2);
    const firedAt = await whenFired; // a Date-based timer would now wait an hour and time the test out
    expect(firedAt).toBeGreaterThanOrEqual(at);
    expect(firedAt - t0).toBeLessThan(HOUR / 2);
    expect(Date.now).toHaveBeenCalled(); // the stub was live throughout
  });

  it('RealClock is the monotonic clock under its old name', () => {
    const clock = new RealClock();
    expect(clock).toBeInstanceOf(MonotonicClock);
    const realNow = Date.now.bind(Date);
    vi.spyOn(Date, 'now').mockImplementation(() => realNow() + 10 * HOUR);
    const before = performance.now();
    const t = clock.now();
    expect(t).toBeGreaterThanOrEqual(before);
    expect(t).toBeLessThan(performance.now() + 1);
  });

  it('fires a timer set in the past on a later turn, never synchronously', async () => {
    const clock = new MonotonicClock();
    let ran = false;
    const done = new Promise<void>((resolve) =>
      clock.setTimer(clock.now() - 1_000, () => {
        ran = true;
        resolve();
      }),
    );
    expect(ran).toBe(false);
    await done;
    expect(ran).toBe(true);
  });

  it('a cancelled timer never fires', async () => {
    const clock = new MonotonicClock();
    let cancelledRan = false;
    const handle = clock.setTimer(clock.now() + 1, () => {
      cancelledRan = true;
    });
    handle.cancel();
    handle.cancel(); // a no-op
    await fired(clock, clock.now() + 20); // a later timer: by now the cancelled one would have run
    expect(cancelledRan).toBe(false);
  });

  it('chains waits longer than setTimeout can hold, and fires only once the time is reached (fake timers)', () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'performance'] });
    const delays: number[] = [];
    const fakeSetTimeout = globalThis.setTimeout;
    vi.spyOn(globalThis, 'setTimeout').mockImplementation(((fn: () => void, ms?: number) => {
      delays.push(ms ?? 0);
      return fakeSetTimeout(fn, ms);
    }) as typeof setTimeout);
    const clock = new MonotonicClock();
    const at = clock.now() + 3 * 2 ** 31; // 9.9 weeks: one setTimeout would be clamped to 1 ms
    let firedAt: number | undefined;
    clock.setTimer(at, () => {
      firedAt = clock.now();
    });
    expect(Math.max(...delays)).toBeLessThanOrEqual(2 ** 31 - 1);
    vi.advanceTimersByTime(2 ** 31);
    expect(firedAt).toBeUndefined();
    vi.advanceTimersByTime(2 ** 31);
    expect(firedAt).toBeUndefined();
    vi.advanceTimersByTime(2 ** 31 - 2);
    expect(firedAt).toBeUndefined();
    vi.advanceTimersByTime(10);
    expect(firedAt).toBeGreaterThanOrEqual(at);
    expect(Math.max(...delays)).toBeLessThanOrEqual(2 ** 31 - 1);
    expect(delays.length).toBeGreaterThanOrEqual(3);
  });

  it('refuses a NaN time', () => {
    expect(() => new MonotonicClock().setTimer(Number.NaN, () => undefined)).toThrow(RangeError);
  });
});
