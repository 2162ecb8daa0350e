/**
 * A lossy UDP proxy on loopback for tests between two processes or daemons: A sends to
 * `portForA`, B to `portForB`, and every datagram crosses over through a seeded FaultPlan of its
 * direction (20 % loss, 5 % duplication, 10 % reordering by default), so its decisions replay.
 */
import { createSocket, type Socket } from 'node:dgram';
import { FaultPlan, type FaultCounts } from '../src/link/faults.js';

/** Two UDP sockets on loopback: A talks to `forA`, B to `forB`; each datagram crosses over through a FaultPlan of its direction. */
export class LossyProxy {
  /** Datagrams into and out of the proxy, per direction (the faults are in the plans' counts). */
  private readonly seen = { aToB: { in: 0, out: 0 }, bToA: { in: 0, out: 0 } };
  private readonly plans: { aToB: FaultPlan<{ data: Uint8Array }>; bToA: FaultPlan<{ data: Uint8Array }> };
  private readonly flushTimers: Partial<Record<'aToB' | 'bToA', NodeJS.Timeout>> = {};
  /** Socket errors (none expected). */
  readonly errors: string[] = [];

  private constructor(
    readonly forA: Socket,
    readonly forB: Socket,
    private readonly portA: number,
    private readonly portB: number,
    seed: number,
  ) {
    const options = { seed, drop: 0.2, duplicate: 0.05, reorder: 0.1 };
    this.plans = { aToB: new FaultPlan(options, seed), bToA: new FaultPlan(options, seed + 1) };
    for (const s of [forA, forB]) s.on('error', (e) => this.errors.push(e.message)); // not to throw in the test process
    forA.on('message', (msg, rinfo) => rinfo.port === portA && this.pass('aToB', msg));
    forB.on('message', (msg, rinfo) => rinfo.port === portB && this.pass('bToA', msg));
  }

  static async open(portA: number, portB: number, seed: number): Promise<LossyProxy> {
    const [forA, forB] = await Promise.all([bindUdp(), bindUdp()]);
    return new LossyProxy(forA, forB, portA, portB, seed);
  }

  get portForA(): number {
    return this.forA.address().port;
  }
  get portForB(): number {
    return this.forB.address().port;
  }

  /** Counts of one direction. */
  counts(dir: 'aToB' | 'bToA'): FaultCounts & { in: number; out: number } {
    return { ...this.seen[dir], ...this.plans[dir].counts };
  }

  /** Counts of both directions. */
  totals(): FaultCounts & { in: number; out: number } {
    const [x, y] = [this.counts('aToB'), this.counts('bToA')];
    const t = { ...x };
    for (const k of Object.keys(t) as Array<keyof typeof t>) t[k] += y[k];
    return t;
  }

  close(): void {
    for (const t of Object.values(this.flushTimers)) clearTimeout(t);
    this.forA.close();
    this.forB.close();
  }

  private pass(dir: 'aToB' | 'bToA', msg: Buffer): void {
    this.seen[dir].in++;
    this.emit(dir, this.plans[dir].take({ data: Uint8Array.from(msg) }));
    // A datagram held back goes out after the next one; if none follows soon, it goes anyway
    // (late and still out of order with what went before it), so that a held last ACK is not a loss.
    clearTimeout(this.flushTimers[dir]);
    this.flushTimers[dir] = setTimeout(() => this.emit(dir, this.plans[dir].flush()), 50);
  }

  private emit(dir: 'aToB' | 'bToA', items: Array<{ data: Uint8Array }>): void {
    const [socket, port] = dir === 'aToB' ? [this.forB, this.portB] : [this.forA, this.portA];
    for (const { data } of items) {
      this.seen[dir].out++;
      socket.send(data, port, '127.0.0.1');
    }
  }
}

export function bindUdp(port = 0): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = createSocket('udp4');
    s.once('error', reject);
    s.bind(port, '127.0.0.1', () => {
      s.off('error', reject);
      resolve(s);
    });
  });
}
