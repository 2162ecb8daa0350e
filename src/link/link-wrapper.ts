/**
 * The base of wrappers around any Link (capture, fault injection), as smoltcp's `phy` wrappers
 * wrap any device: everything is passed to the inner link unless the wrapper overrides it.
 */
import type { AirtimeModel } from './airtime/model.js';
import type { Link, LinkCounters, LinkEvents, LinkState, LinkStats, LoraChannel, SendOptions } from './link.js';

export abstract class LinkWrapper implements Link {
  constructor(protected readonly inner: Link) {}

  get name(): string {
    return this.inner.name;
  }
  get kind(): string {
    return this.inner.kind;
  }
  get mtu(): number {
    return this.inner.mtu;
  }
  get bitRate(): number | undefined {
    return this.inner.bitRate;
  }
  get airtime(): AirtimeModel {
    return this.inner.airtime;
  }
  get state(): LinkState {
    return this.inner.state;
  }
  get counters(): LinkCounters {
    return this.inner.counters;
  }
  get stats(): LinkStats {
    return this.inner.stats;
  }
  get fullMesh(): boolean {
    return this.inner.fullMesh === true;
  }

  get loraParams(): LoraChannel | undefined {
    return this.inner.loraParams;
  }

  open(): Promise<void> {
    return this.inner.open();
  }

  close(): Promise<void> {
    return this.inner.close();
  }

  send(frame: Uint8Array, options?: SendOptions): boolean {
    return this.inner.send(frame, options);
  }

  on<E extends keyof LinkEvents>(event: E, listener: (...args: LinkEvents[E]) => void): this {
    this.inner.on(event, listener);
    return this;
  }

  off<E extends keyof LinkEvents>(event: E, listener: (...args: LinkEvents[E]) => void): this {
    this.inner.off(event, listener);
    return this;
  }
}
