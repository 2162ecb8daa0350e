/**
 * Messi keep-alive, sans-IO: `now` goes in, what to do and the next deadline come out.
 *
 * Client (Messi's rule): `intervalMs` (default 2 s) after connecting, and every `intervalMs`
 * after that, it sends a ping. When a ping's deadline comes and the pong of the previous ping has
 * not arrived, it disconnects instead (reason `keep-alive-timeout`). So a server has one
 * interval to answer each ping.
 *
 * Server: a connection has `timeoutMs` (default 3 s) from connecting, and again from each ping,
 * for the next ping to arrive; otherwise it is dropped (reason `keep-alive-timeout`). Each ping
 * is answered with a pong (the connection layer sends it).
 */

export const DEFAULT_PING_INTERVAL_MS = 2000;
export const DEFAULT_PING_TIMEOUT_MS = 3000;
export const DEFAULT_RECONNECT_DELAY_MS = 1000;

export type ClientKeepAliveAction = 'ping' | 'timeout';

function checkMs(name: string, ms: number): number {
  if (!Number.isFinite(ms) || ms <= 0) throw new RangeError(`${name} must be a positive number of ms, got ${ms}`);
  return ms;
}

export class ClientKeepAlive {
  private readonly intervalMs: number;
  private deadline: number;
  private pongReceived = true;
  private stopped = false;
  /** Pings sent and pongs received, for status. */
  pings = 0;
  pongs = 0;

  constructor(nowMs: number, options: { intervalMs?: number } = {}) {
    this.intervalMs = checkMs('ping interval', options.intervalMs ?? DEFAULT_PING_INTERVAL_MS);
    this.deadline = nowMs + this.intervalMs;
  }

  /** A pong arrived. */
  pong(): void {
    this.pongs++;
    this.pongReceived = true;
  }

  /**
   * Runs the machine at `nowMs`: `ping` when a ping is due (send it), `timeout` when the
   * previous ping went unanswered (disconnect; the machine then stops), else undefined.
   */
  poll(nowMs: number): ClientKeepAliveAction | undefined {
    if (this.stopped || nowMs < this.deadline) return undefined;
    if (!this.pongReceived) {
      this.stopped = true;
      return 'timeout';
    }
    this.pongReceived = false;
    this.pings++;
    this.deadline = Math.max(this.deadline + this.intervalMs, nowMs);
    return 'ping';
  }

  /** When `poll` next has something to do; Infinity after a timeout. */
  nextDeadline(): number {
    return this.stopped ? Infinity : this.deadline;
  }
}

export class ServerKeepAlive {
  private readonly timeoutMs: number;
  private deadline: number;
  private stopped = false;
  pings = 0;

  constructor(nowMs: number, options: { timeoutMs?: number } = {}) {
    this.timeoutMs = checkMs('ping timeout', options.timeoutMs ?? DEFAULT_PING_TIMEOUT_MS);
    this.deadline = nowMs + this.timeoutMs;
  }

  /** A ping arrived at `nowMs`: the caller answers with a pong; the timer restarts. */
  ping(nowMs: number): void {
    if (this.stopped) return;
    this.pings++;
    this.deadline = nowMs + this.timeoutMs;
  }

  /** `timeout` once no ping arrived for `timeoutMs` (the machine then stops), else undefined. */
  poll(nowMs: number): 'timeout' | undefined {
    if (this.stopped || nowMs < this.deadline) return undefined;
    this.stopped = true;
    return 'timeout';
  }

  nextDeadline(): number {
    return this.stopped ? Infinity : this.deadline;
  }
}
