/**
 * Replay protection per sender. Frames carry (epoch, counter); the receiver also knows which
 * boot of the sender it is talking to (the boot nonce from the sender's signed HELLO/TC).
 * Within one boot and its newest epoch, a 64-frame sliding window (as IPsec's) accepts each
 * counter once and rejects counters older than the window; a frame of an older epoch is
 * rejected; a newer epoch (the counter was spent) or another boot starts a fresh window.
 *
 * The table must never be talked into forgetting a sender it still needs, or a replay of that
 * sender's frames would be fresh again. So:
 * - state exists only for senders the caller authenticated (a frame that passed its tag or
 *   signature), and only `accept` creates it;
 * - a full table refuses new senders ('sender-table-full') instead of evicting a known one;
 * - `forget` (the control plane forgot the node) moves a sender's state into a bounded
 *   graveyard, from which it comes back when the sender does, so its old frames stay replays.
 */
const WINDOW = 64n;
const WINDOW_MASK = (1n << WINDOW) - 1n;

/** Senders with live windows; at this size new senders are refused. */
export const DEFAULT_MAX_SENDERS = 8192;
/** Forgotten senders whose windows are kept; the oldest are dropped first beyond it. */
export const DEFAULT_GRAVEYARD_SIZE = 16_384;

interface State {
  /** The sender's boot this window belongs to (an opaque id, e.g. its boot nonce in hex). */
  boot: string;
  epoch: number;
  highest: bigint;
  /** Bit i set: counter highest − i was seen. */
  seen: bigint;
}

export type ReplayVerdict = 'fresh' | 'replay' | 'too-old' | 'old-epoch' | 'sender-table-full';

export interface ReplayOptions {
  maxSenders?: number;
  graveyardSize?: number;
}

export class ReplayWindow {
  private readonly live = new Map<string, State>();
  private readonly graveyard = new Map<string, State>();
  private readonly maxSenders: number;
  private readonly graveyardSize: number;

  constructor(options: ReplayOptions = {}) {
    this.maxSenders = options.maxSenders ?? DEFAULT_MAX_SENDERS;
    this.graveyardSize = options.graveyardSize ?? DEFAULT_GRAVEYARD_SIZE;
  }

  /** Senders with a live window. */
  get senders(): number {
    return this.live.size;
  }

  /** Forgotten senders whose windows are kept for their return. */
  get forgotten(): number {
    return this.graveyard.size;
  }

  /** What `accept` would say, without changing anything (safe before authentication). */
  check(sender: string, boot: string, epoch: number, counter: number): ReplayVerdict {
    if (!this.live.has(sender) && this.live.size >= this.maxSenders) return 'sender-table-full';
    const s = this.live.get(sender) ?? this.graveyard.get(sender);
    return s ? verdict(s, boot, epoch, counter) : 'fresh';
  }

  /**
   * Records an authenticated frame. Call only after the frame authenticated; returns the
   * verdict, and moves the window only when it is 'fresh'.
   */
  accept(sender: string, boot: string, epoch: number, counter: number): ReplayVerdict {
    const v = this.check(sender, boot, epoch, counter);
    if (v !== 'fresh') return v;
    const s = this.revive(sender);
    if (!s || s.boot !== boot || epoch > s.epoch) {
      this.live.set(sender, { boot, epoch, highest: BigInt(counter), seen: 1n });
    } else {
      mark(s, BigInt(counter));
    }
    return 'fresh';
  }

  /** The node was forgotten: keep its window aside (bounded) until it comes back. */
  forget(sender: string): void {
    const s = this.live.get(sender);
    if (!s) return;
    this.live.delete(sender);
    this.graveyard.set(sender, s);
    if (this.graveyard.size > this.graveyardSize) this.graveyard.delete(this.graveyard.keys().next().value!);
  }

  /** The sender's state, moved back from the graveyard into the live table if it was there. */
  private revive(sender: string): State | undefined {
    const live = this.live.get(sender);
    if (live) return live;
    const buried = this.graveyard.get(sender);
    if (buried) {
      this.graveyard.delete(sender);
      this.live.set(sender, buried);
    }
    return buried;
  }
}

function verdict(s: State, boot: string, epoch: number, counter: number): ReplayVerdict {
  // Another boot's frames only authenticate under that boot's key, so its window starts afresh.
  if (boot !== s.boot || epoch > s.epoch) return 'fresh';
  if (epoch < s.epoch) return 'old-epoch';
  const c = BigInt(counter);
  if (c > s.highest) return 'fresh';
  const age = s.highest - c;
  if (age >= WINDOW) return 'too-old';
  return (s.seen >> age) & 1n ? 'replay' : 'fresh';
}

/** Marks counter `c` seen in the window's epoch, sliding the window forward when it is newer. */
function mark(s: State, c: bigint): void {
  if (c > s.highest) {
    const shift = c - s.highest;
    s.seen = shift >= WINDOW ? 1n : ((s.seen << shift) | 1n) & WINDOW_MASK;
    s.highest = c;
  } else {
    s.seen |= 1n << (s.highest - c);
  }
}
