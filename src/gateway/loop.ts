/**
 * The loop: one clock, one timer, and every sans-IO machine polled through one shape.
 *
 * A machine does what is due at `now` in `poll(now)` and says when it must run again in
 * `nextDeadline(now)`. The loop polls the machines in the order they were added (upper layers
 * first, the interface pacers last, so a frame produced in a pass leaves in the same pass), then
 * sleeps until the earliest deadline. Anything that makes work — a send, a received frame, a link
 * that is ready again — calls `wake()`, and the loop runs at the current time before it sleeps
 * again: no frame waits for somebody else's deadline.
 *
 * The clock is monotonic (MonotonicClock) in the daemon and virtual (VirtualClock) in tests and
 * simulations: the same loop, the same machines, deterministic under the virtual clock.
 */
import type { SimClock, TimerHandle } from '../link/clock.js';

export interface Machine {
  readonly name: string;
  /**
   * Does what is due at `now`, and whatever became possible since the last call. May return
   * whether it did something (true, or a count above 0): a run in which a machine made progress
   * is never taken for a spin, however soon its next deadline (a rate-capped link at thousands of
   * frames a second is due again before the run has ended).
   */
  poll(now: number): void | boolean | number;
  /** When `poll` must run next without a wake; undefined: only when woken. */
  nextDeadline(now: number): number | undefined;
}

export interface LoopOptions {
  /** A pass that wakes the loop again is repeated at once, at most this many times per run. */
  maxPasses?: number;
  log?: (line: string) => void;
}

export interface LoopCounters {
  runs: number;
  passes: number;
  /** Exceptions thrown out of a machine's poll or nextDeadline (a bug: logged, counted, survived). */
  machineErrors: number;
  /**
   * Runs that ended wanting to run again at once — a deadline a machine never passes, or a
   * machine that wakes the loop in every pass: after SPIN_LIMIT such runs in a row the loop
   * sleeps 1 ms between runs instead of spinning, and logs once.
   */
  spins: number;
}

const SPIN_LIMIT = 64;

export class Loop {
  readonly counters: LoopCounters = { runs: 0, passes: 0, machineErrors: 0, spins: 0 };
  private readonly machines: Machine[] = [];
  private readonly maxPasses: number;
  private readonly log: (line: string) => void;
  private timer: TimerHandle | undefined;
  private timerAt = Infinity;
  private running = false;
  private woken = false;
  private started = false;
  private readonly failed = new Set<string>();
  /** Consecutive runs that ended with a deadline at or before `now` and no wake. */
  private dueAgain = 0;

  constructor(
    readonly clock: SimClock,
    options: LoopOptions = {},
  ) {
    this.maxPasses = options.maxPasses ?? 16;
    this.log = options.log ?? (() => undefined);
  }

  /** Adds a machine; machines are polled in the order they were added. */
  add(machine: Machine): void {
    this.machines.push(machine);
    this.wake();
  }

  remove(machine: Machine): void {
    const i = this.machines.indexOf(machine);
    if (i >= 0) this.machines.splice(i, 1);
  }

  start(): void {
    this.started = true;
    this.wake();
  }

  stop(): void {
    this.started = false;
    this.timer?.cancel();
    this.timer = undefined;
    this.timerAt = Infinity;
  }

  /** Asks for a run at the current time (coalesced: many wakes, one run). */
  wake(): void {
    if (!this.started) return;
    if (this.running) {
      this.woken = true;
      return;
    }
    this.arm(this.clock.now());
  }

  /** When the loop will next run on its own; Infinity when it sleeps until woken. */
  get nextRunAt(): number {
    return this.timerAt;
  }

  /** One run: passes over every machine until none woke the loop, then the one timer is armed. */
  run(): void {
    if (this.running || !this.started) return;
    this.running = true;
    this.counters.runs++;
    let progress = false;
    try {
      let passes = 0;
      do {
        this.woken = false;
        const now = this.clock.now();
        for (const m of this.machines) if (this.guard(m, () => m.poll(now))) progress = true;
        passes++;
        this.counters.passes++;
      } while (this.woken && passes < this.maxPasses && this.started);
    } finally {
      this.running = false;
    }
    if (!this.started) return;
    const now = this.clock.now();
    let next = this.woken ? now : Infinity;
    for (const m of this.machines) {
      const d = this.guard(m, () => m.nextDeadline(now));
      if (d !== undefined && d < next) next = d;
    }
    this.timer?.cancel();
    this.timer = undefined;
    this.timerAt = Infinity;
    if (next <= now && !progress) {
      if (++this.dueAgain >= SPIN_LIMIT) {
        if (this.counters.spins++ === 0) {
          const late = this.machines.filter((m) => (this.guard(m, () => m.nextDeadline(now)) ?? Infinity) <= now).map((m) => m.name);
          const who = late.length > 0 ? late.join(', ') : 'a machine that wakes the loop in every pass';
          this.log(`loop: ${who} kept asking to run at ${now} without progress; sleeping 1 ms between runs (counted in spins, logged once)`);
        }
        next = now + 1;
      }
    } else {
      this.dueAgain = 0;
    }
    if (Number.isFinite(next)) this.arm(Math.max(now, next));
  }

  private arm(at: number): void {
    if (this.timer && this.timerAt <= at) return;
    this.timer?.cancel();
    this.timerAt = at;
    this.timer = this.clock.setTimer(at, () => {
      this.timer = undefined;
      this.timerAt = Infinity;
      this.run();
    });
  }

  private guard<T>(m: Machine, fn: () => T): T | undefined {
    try {
      return fn();
    } catch (err) {
      this.counters.machineErrors++;
      if (!this.failed.has(m.name)) {
        this.failed.add(m.name);
        this.log(`loop: ${m.name} threw (${(err as Error)?.stack ?? String(err)}); counted in machineErrors, logged once`);
      }
      return undefined;
    }
  }
}
