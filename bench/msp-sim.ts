/**
 * A virtual-time simulator for one MSP transfer between two ends over one first hop, for
 * bench/msp.ts. Deterministic: loss comes from a seeded Prng, nothing reads the wall clock.
 *
 * Link model, per transmitted packet: serialization time = the link's airtime model of (MSP packet
 * + 32 bytes of mesh frame overhead), then a propagation delay; independent loss per frame (both
 * directions). Half-duplex links are one shared channel: a transmission occupies it for its airtime
 * plus the propagation delay, and no end starts while it is busy; when it frees, the end that did
 * not transmit last is offered it first (fair contention, no collisions). Full-duplex links have one
 * transmitter per direction. A duty cycle is a per-transmitter SlidingBudget (the pacer's model);
 * the data sender's budget starts full, as if it had been sending at the limit for the past hour
 * (steady state, no first-hour burst).
 *
 * Pull model: an end is asked for a packet (`poll(now, maxBytes)`) only when its transmitter is
 * free and its budget allows a full-size frame now, so nothing is committed that cannot leave at
 * once.
 */
import { SlidingBudget } from '../src/link/sliding-budget.js';
import { Prng } from '../src/link/prng.js';

export const MESH_OVERHEAD = 32;

export interface SimLink {
  name: string;
  /** Mesh frame bytes at most (MSP packet + 32). */
  mtu: number;
  /** Airtime of a mesh frame of `bytes`, ms. */
  airtimeMs(bytes: number): number;
  propagationMs: number;
  /** 1 = no duty cycle. */
  dutyFraction: number;
  dutyWindowMs: number;
  halfDuplex: boolean;
}

/** One end as the simulator drives it. */
export interface SimEnd {
  poll(now: number, maxBytes: number): Uint8Array | undefined;
  receive(bytes: Uint8Array, now: number): void;
  deadline(): number | undefined;
}

export interface SimHooks {
  /** After every event batch: the applications act (queue more, take received). 'done' ends the run; 'queued' when the sender got new data. */
  step(now: number): 'done' | 'queued' | undefined;
  /** When the applications next act by themselves (a timed send), if ever. */
  nextAppEvent?(): number | undefined;
  /** Every packet an end transmits (before loss). */
  onTransmit?(from: 0 | 1, bytes: Uint8Array, now: number): void;
}

interface Arrival {
  at: number;
  order: number;
  to: 0 | 1;
  bytes: Uint8Array;
}

export interface SimResult {
  endMs: number;
  firstSendMs: number | undefined;
  steps: number;
  timedOut: boolean;
}

export function maxBytesOf(link: SimLink): number {
  return link.mtu - MESH_OVERHEAD;
}

export function runSim(link: SimLink, ends: [SimEnd, SimEnd], loss: number, seed: number, hooks: SimHooks, maxMs: number): SimResult {
  const prng = new Prng(seed);
  const maxBytes = maxBytesOf(link);
  const fullAir = link.airtimeMs(link.mtu);
  const budgets: (SlidingBudget | undefined)[] = [0, 1].map(() =>
    link.dutyFraction < 1 ? new SlidingBudget({ name: 'duty', windowMs: link.dutyWindowMs, fraction: link.dutyFraction }) : undefined,
  );
  // Steady state for the sender (end 0): the past window already used at the limit.
  const b0 = budgets[0];
  if (b0 !== undefined) {
    const gap = fullAir / link.dutyFraction;
    const n = Math.floor(link.dutyWindowMs / gap);
    for (let k = n; k >= 1; k--) b0.record(-k * gap, fullAir);
  }
  const txFree = [0, 0];
  const wants = [true, true];
  let lastTx: 0 | 1 = 1;
  const air: Arrival[] = [];
  let order = 0;
  let now = 0;
  let firstSend: number | undefined;
  let steps = 0;

  const readyAt = (e: 0 | 1): number => {
    const free = link.halfDuplex ? Math.max(txFree[0]!, txFree[1]!) : txFree[e]!;
    const t = Math.max(free, now);
    const b = budgets[e];
    if (b === undefined) return t;
    b.prune(t);
    return b.earliestStart(t, fullAir);
  };
  const put = (a: Arrival): void => {
    let i = air.length;
    while (i > 0 && (air[i - 1]!.at > a.at || (air[i - 1]!.at === a.at && air[i - 1]!.order > a.order))) i--;
    air.splice(i, 0, a);
  };

  for (;;) {
    steps++;
    if (steps > 20_000_000) throw new Error('simulation did not settle');
    while (air.length > 0 && air[0]!.at <= now) {
      const a = air.shift()!;
      ends[a.to].receive(a.bytes, now);
      wants[a.to] = true;
    }
    const app = hooks.step(now);
    if (app === 'done') return { endMs: now, firstSendMs: firstSend, steps, timedOut: false };
    if (app === 'queued') wants[0] = true;
    for (const e of [0, 1] as const) {
      const d = ends[e].deadline();
      if (d !== undefined && d <= now) wants[e] = true;
    }
    const orderOfEnds: (0 | 1)[] = link.halfDuplex ? (lastTx === 0 ? [1, 0] : [0, 1]) : [0, 1];
    for (const e of orderOfEnds) {
      if (!wants[e] || readyAt(e) > now) continue;
      const pkt = ends[e].poll(now, maxBytes);
      if (pkt === undefined) {
        wants[e] = false;
        continue;
      }
      if (pkt.length > maxBytes) throw new Error(`packet of ${pkt.length} bytes above maxBytes ${maxBytes}`);
      if (e === 0 && firstSend === undefined) firstSend = now;
      hooks.onTransmit?.(e, pkt, now);
      const t = link.airtimeMs(pkt.length + MESH_OVERHEAD);
      budgets[e]?.record(now, t);
      txFree[e] = now + t + (link.halfDuplex ? link.propagationMs : 0);
      lastTx = e;
      if (prng.next() >= loss) put({ at: now + t + link.propagationMs, order: order++, to: e === 0 ? 1 : 0, bytes: pkt });
      if (link.halfDuplex) break; // the channel is taken
    }
    let next = Infinity;
    if (air.length > 0) next = air[0]!.at;
    const appAt = hooks.nextAppEvent?.();
    if (appAt !== undefined && appAt > now) next = Math.min(next, appAt);
    for (const e of [0, 1] as const) {
      const d = ends[e].deadline();
      let w = wants[e] ? now : Infinity;
      if (d !== undefined) w = Math.min(w, d);
      if (w < Infinity) next = Math.min(next, Math.max(w, readyAt(e)));
    }
    if (!(next < Infinity) || next > maxMs) return { endMs: now, firstSendMs: firstSend, steps, timedOut: true };
    if (next <= now) {
      // Only a transmitter that just became free at `now` can do this; move on a hair.
      next = now + 1e-6;
    }
    now = next;
  }
}
