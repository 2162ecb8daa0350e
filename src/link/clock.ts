/**
 * Clocks for code that needs "now" and one-shot timers but must also run in virtual time: the
 * simulated radio medium (drivers/sim.ts) and, later, the gateway's one timer per event loop.
 *
 * - `VirtualClock`: time moves only when the caller says so (`advance`, `advanceTo`,
 *   `runUntilIdle`). Timers fire in order of their time, ties in order of creation, each with
 *   `now()` equal to its own time, so an hour of 1200-baud radio runs in milliseconds and the
 *   same inputs always give the same outputs.
 * - `MonotonicClock`: `performance.now()` (ms since the process started) and `setTimeout`. It
 *   never steps: a Raspberry Pi has no RTC, and NTP steps the wall clock at boot — forward would
 *   empty the pacer's duty-cycle windows (a burst over the legal limit), backward would stall every
 *   timer. `RealClock` is the same clock under its old name.
 *
 * Protocol and pacing time is always one of these clocks. Wall time (`Date.now()`) is for logs
 * and file names only (and pcapng capture timestamps, which are dates): never compare it with, or
 * feed it to, anything that paces, retries or expires.
 */

export interface TimerHandle {
  /** Stops the timer if it has not fired; a no-op otherwise. */
  cancel(): void;
}

export interface SimClock {
  /** Milliseconds; for `MonotonicClock`, since the process started (not a date). */
  now(): number;
  /** Calls `fn` once when the clock reaches `atMs` (at once, on the next turn, if it is past). */
  setTimer(atMs: number, fn: () => void): TimerHandle;
  /** How late a timer may fire, ms (Node's timers: about 1); 0 or absent for an exact clock. */
  readonly granularityMs?: number;
}

interface VirtualTimer {
  at: number;
  seq: number;
  fn: () => void;
  live: boolean;
}

/** Fires timers in (time, creation order): a binary min-heap. */
export class VirtualClock implements SimClock {
  private t: number;
  private seq = 0;
  private heap: VirtualTimer[] = [];
  private liveCount = 0;

  constructor(startMs = 0) {
    if (!Number.isFinite(startMs)) throw new RangeError(`start time must be finite, got ${startMs}`);
    this.t = startMs;
  }

  now(): number {
    return this.t;
  }

  /** Timers set for the past fire at the current time, on the next advance (even `advance(0)`). */
  setTimer(atMs: number, fn: () => void): TimerHandle {
    if (Number.isNaN(atMs)) throw new RangeError('timer time is NaN');
    const timer: VirtualTimer = { at: Math.max(atMs, this.t), seq: this.seq++, fn, live: true };
    this.push(timer);
    this.liveCount++;
    return {
      cancel: () => {
        if (!timer.live) return;
        timer.live = false;
        this.liveCount--;
      },
    };
  }

  /** Timers that have neither fired nor been cancelled. */
  get pending(): number {
    return this.liveCount;
  }

  /** Moves time forward by `ms`, firing every timer due on the way (including ones they set). */
  advance(ms: number): void {
    if (!(ms >= 0)) throw new RangeError(`cannot advance by ${ms} ms`);
    this.advanceTo(this.t + ms);
  }

  advanceTo(targetMs: number): void {
    if (!(targetMs >= this.t)) throw new RangeError(`cannot go back from ${this.t} to ${targetMs}`);
    for (;;) {
      const next = this.peekLive();
      if (!next || next.at > targetMs) break;
      this.fire();
    }
    this.t = targetMs;
  }

  /**
   * Fires timers until none is left, and returns how many fired. A process that re-arms itself
   * forever never goes idle: after `maxTimers` firings this throws instead of hanging.
   */
  runUntilIdle(maxTimers = 10_000_000): number {
    let fired = 0;
    while (this.peekLive()) {
      if (fired >= maxTimers) throw new Error(`clock not idle after ${maxTimers} timers (a timer re-arms itself?)`);
      this.fire();
      fired++;
    }
    return fired;
  }

  /** Pops the earliest live timer, moves time to it and runs it. */
  private fire(): void {
    const timer = this.pop();
    timer.live = false;
    this.liveCount--;
    this.t = timer.at;
    timer.fn();
  }

  /** The earliest live timer, discarding cancelled ones from the top of the heap. */
  private peekLive(): VirtualTimer | undefined {
    let top = this.heap[0];
    while (top && !top.live) {
      this.pop();
      top = this.heap[0];
    }
    return top;
  }

  private static before(a: VirtualTimer, b: VirtualTimer): boolean {
    return a.at < b.at || (a.at === b.at && a.seq < b.seq);
  }

  private push(timer: VirtualTimer): void {
    // Cancelled timers wait in the heap until they reach the top; rebuild when they dominate.
    if (this.heap.length > 1024 && this.liveCount < this.heap.length / 2) {
      this.heap = this.heap.filter((x) => x.live).sort((a, b) => (VirtualClock.before(a, b) ? -1 : 1));
    }
    const h = this.heap;
    h.push(timer);
    let i = h.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      const p = h[parent]!;
      if (!VirtualClock.before(timer, p)) break;
      h[i] = p;
      i = parent;
    }
    h[i] = timer;
  }

  private pop(): VirtualTimer {
    const h = this.heap;
    const top = h[0]!;
    const last = h.pop()!;
    if (h.length === 0) return top;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= h.length) break;
      const r = l + 1;
      const child = r < h.length && VirtualClock.before(h[r]!, h[l]!) ? r : l;
      if (!VirtualClock.before(h[child]!, last)) break;
      h[i] = h[child]!;
      i = child;
    }
    h[i] = last;
    return top;
  }
}

/** Node clamps setTimeout delays above 2^31 − 1 ms to 1 ms; longer waits are chained. */
const MAX_TIMEOUT_MS = 2 ** 31 - 1;

/** The daemon's clock: monotonic milliseconds since the process started, and real timers. */
export class MonotonicClock implements SimClock {
  /** Node's timers run on a millisecond loop clock. */
  readonly granularityMs = 1;

  now(): number {
    // The global (the same object as node:perf_hooks' `performance`), read at call time.
    return performance.now();
  }

  /**
   * Fires `fn` once `now()` has reached `atMs`, never before: a wait longer than setTimeout can
   * hold is chained, and a timeout that ends a fraction of a millisecond early (Node's timers run
   * on a millisecond loop clock) is re-armed for the rest. A time in the past fires on the next
   * turn. Infinity never fires.
   */
  setTimer(atMs: number, fn: () => void): TimerHandle {
    if (Number.isNaN(atMs)) throw new RangeError('timer time is NaN');
    let handle: NodeJS.Timeout | undefined;
    const delay = (): number => Math.min(MAX_TIMEOUT_MS, Math.max(0, Math.ceil(atMs - this.now())));
    const check = (): void => {
      if (this.now() >= atMs) {
        handle = undefined;
        fn();
      } else {
        handle = setTimeout(check, Math.max(1, delay()));
      }
    };
    handle = setTimeout(check, delay());
    return {
      cancel: () => {
        if (handle) clearTimeout(handle);
        handle = undefined;
      },
    };
  }
}

/** The old name of `MonotonicClock` (it used to read `Date.now`); new code says `MonotonicClock`. */
export class RealClock extends MonotonicClock {}
