/**
 * A binary min-heap of deadlines for the control plane's timed entries (links, TCs), so neither a
 * received HELLO nor `nextDeadline` scans a table. An entry whose owner was rescheduled or removed
 * stays in the heap until it comes up (its owner's `scheduledAt` no longer matches, or `alive` is
 * false) and is then skipped; `compact` drops such entries when they pile up.
 */

/** What the heap orders: an owner with one live deadline. */
export interface Scheduled {
  /** The deadline of this owner's one live heap entry (Infinity: none). */
  scheduledAt: number;
  alive: boolean;
}

/** A binary min-heap of deadlines; entries whose owner moved on are skipped when they come up. */
export class DeadlineHeap<T extends Scheduled> {
  private at: number[] = [];
  private items: T[] = [];

  get size(): number {
    return this.at.length;
  }

  peek(): number {
    return this.at.length > 0 ? this.at[0]! : Infinity;
  }

  push(at: number, item: T): void {
    this.at.push(at);
    this.items.push(item);
    this.up(this.at.length - 1);
  }

  /** The earliest entry if it is due by `now`. */
  popDue(now: number): { at: number; item: T } | undefined {
    if (this.at.length === 0 || this.at[0]! > now) return undefined;
    const top = { at: this.at[0]!, item: this.items[0]! };
    const lastAt = this.at.pop()!;
    const lastItem = this.items.pop()!;
    if (this.at.length > 0) {
      this.at[0] = lastAt;
      this.items[0] = lastItem;
      this.down(0);
    }
    return top;
  }

  /** Drops entries that no longer stand for their owner's schedule. */
  compact(): void {
    const at: number[] = [];
    const items: T[] = [];
    for (let i = 0; i < this.at.length; i++) {
      const it = this.items[i]!;
      if (it.alive && it.scheduledAt === this.at[i]) {
        at.push(this.at[i]!);
        items.push(it);
      }
    }
    this.at = at;
    this.items = items;
    for (let i = (this.at.length >> 1) - 1; i >= 0; i--) this.down(i);
  }

  private swap(i: number, j: number): void {
    [this.at[i], this.at[j]] = [this.at[j]!, this.at[i]!];
    [this.items[i], this.items[j]] = [this.items[j]!, this.items[i]!];
  }

  private up(i: number): void {
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (this.at[p]! <= this.at[i]!) break;
      this.swap(i, p);
      i = p;
    }
  }

  private down(i: number): void {
    const n = this.at.length;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < n && this.at[l]! < this.at[m]!) m = l;
      if (r < n && this.at[r]! < this.at[m]!) m = r;
      if (m === i) return;
      this.swap(i, m);
      i = m;
    }
  }
}
