/**
 * Replay protection per sender: frames carry (epoch, counter). Within the newest epoch seen, a
 * 64-frame sliding window (as IPsec's) accepts each counter once and rejects counters older than
 * the window; a frame of an older epoch is rejected; a newer epoch (the sender restarted) starts
 * a fresh window. Update only after the frame authenticated, so forgeries cannot move it.
 */
const WINDOW = 64n;

interface State {
  epoch: number;
  highest: bigint;
  /** Bit i set: counter highest − i was seen. */
  seen: bigint;
}

export type ReplayVerdict = 'fresh' | 'replay' | 'too-old' | 'old-epoch';

export class ReplayWindow {
  private readonly senders = new Map<string, State>();

  constructor(private readonly maxSenders = 4096) {}

  check(sender: string, epoch: number, counter: number): ReplayVerdict {
    const s = this.senders.get(sender);
    if (!s || epoch > s.epoch) return 'fresh';
    if (epoch < s.epoch) return 'old-epoch';
    const c = BigInt(counter);
    if (c > s.highest) return 'fresh';
    const age = s.highest - c;
    if (age >= WINDOW) return 'too-old';
    return (s.seen >> age) & 1n ? 'replay' : 'fresh';
  }

  /** Records an authenticated frame (call only after `check` said fresh). */
  accept(sender: string, epoch: number, counter: number): void {
    const c = BigInt(counter);
    let s = this.senders.get(sender);
    if (!s || epoch > s.epoch) {
      s = { epoch, highest: c, seen: 1n };
    } else if (c > s.highest) {
      const shift = c - s.highest;
      s.seen = shift >= WINDOW ? 1n : ((s.seen << shift) | 1n) & ((1n << WINDOW) - 1n);
      s.highest = c;
    } else {
      s.seen |= 1n << (s.highest - c);
    }
    // Most recently heard last; the least recently heard sender is forgotten first.
    this.senders.delete(sender);
    this.senders.set(sender, s);
    if (this.senders.size > this.maxSenders) this.senders.delete(this.senders.keys().next().value!);
  }
}
