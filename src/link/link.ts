/**
 * The one interface every link driver implements (drivers/), and the pieces they share: state,
 * counters, events and the bounded outgoing queue.
 *
 * A link carries whole frames (the mesh layer's datagrams) over one medium. `send` never blocks
 * and never throws for a frame that fits: it queues the frame (bounded; the oldest frame is
 * dropped and counted when the queue is full, e.g. while a modem is unplugged) and returns
 * whether the link is ready for more. Received frames come as 'frame' events with their
 * metadata. State changes come as 'state' events, once per change.
 */
import { EventEmitter } from 'node:events';
import type { AirtimeModel } from './airtime/model.js';

export type LinkState = 'down' | 'opening' | 'up' | 'reconnecting' | 'closed';

/** A UDP (or other addressed) endpoint. */
export interface Endpoint {
  address: string;
  port: number;
}

export interface ReceivedFrame {
  data: Uint8Array;
  /** Time of reception on the link's clock, ms (wall clock since the epoch, or a virtual clock). */
  at: number;
  rssiDbm?: number;
  snrDb?: number;
  /** The sender's endpoint, on links that have one (UDP). */
  from?: Endpoint;
  /** The frame as the link carried it, where that differs from `data` (a KISS TNC's AX.25 UI frame): what a capture records. */
  wire?: Uint8Array;
}

export interface SendOptions {
  /** Unicast destination on addressed links (UDP); default: every neighbour (broadcast). */
  to?: Endpoint;
}

export interface LinkCounters {
  framesIn: number;
  bytesIn: number;
  framesOut: number;
  bytesOut: number;
  decodeErrors: number;
  reconnects: number;
  /** Frames dropped, by reason ('queue-full', 'too-large', 'fault-drop', 'modem-error', ...). */
  drops: Record<string, number>;
}

/** Link statistics beyond the counters, e.g. a LoRa modem's channel load. */
export type LinkStats = Record<string, number | string | undefined>;

export interface LinkEvents {
  frame: [ReceivedFrame];
  state: [LinkState, string | undefined];
  /** The link can take more frames after `send` returned false. */
  ready: [];
}

/** The channel of a LoRa link (lora-serial, sim), for regional rules and captures. */
export interface LoraChannel {
  frequency: number;
  bandwidth: number;
  sf: number;
}

export interface Link {
  readonly name: string;
  /** Driver kind: 'kiss-serial', 'kiss-tcp', 'lora-serial', 'slip-serial', 'udp', 'sim'. */
  readonly kind: string;
  /** Largest frame `send` accepts, bytes. */
  readonly mtu: number;
  /** Bits per second on the medium, when known. */
  readonly bitRate: number | undefined;
  readonly airtime: AirtimeModel;
  readonly state: LinkState;
  readonly counters: LinkCounters;
  readonly stats: LinkStats;
  /** Set on LoRa links. */
  readonly loraParams?: LoraChannel | undefined;
  /** Every member hears every other, with no radio between them (an MQTT topic): the mesh never sends back onto it what came from it. */
  readonly fullMesh?: boolean;
  /** Starts the link. A device missing at start is not an error: the link keeps trying. */
  open(): Promise<void>;
  close(): Promise<void>;
  /** Queues a frame; returns whether the link wants more now (false: wait for 'ready'). */
  send(frame: Uint8Array, options?: SendOptions): boolean;
  on<E extends keyof LinkEvents>(event: E, listener: (...args: LinkEvents[E]) => void): this;
  off<E extends keyof LinkEvents>(event: E, listener: (...args: LinkEvents[E]) => void): this;
}

export class FrameTooLargeError extends RangeError {
  override readonly name = 'FrameTooLargeError';
}

export function newCounters(): LinkCounters {
  return { framesIn: 0, bytesIn: 0, framesOut: 0, bytesOut: 0, decodeErrors: 0, reconnects: 0, drops: {} };
}

export function countDrop(counters: LinkCounters, reason: string, n = 1): void {
  counters.drops[reason] = (counters.drops[reason] ?? 0) + n;
}

/** A frame waiting to be written, with where it goes. */
export interface QueuedFrame {
  data: Uint8Array;
  options: SendOptions | undefined;
}

/**
 * The base of every driver: identity, state with one event per change, counters, and a bounded
 * outgoing queue (oldest dropped first, counted as 'queue-full').
 */
export abstract class BaseLink extends EventEmitter implements Link {
  readonly counters = newCounters();
  readonly stats: LinkStats = {};
  private current: LinkState = 'down';
  /** `send` returned false; 'ready' is due once the queue drains below the mark. */
  private owesReady = false;
  protected readonly queue: QueuedFrame[] = [];
  /** Over this many queued frames, `send` reports backpressure. */
  protected readonly readyBelow: number;

  constructor(
    readonly name: string,
    readonly kind: string,
    readonly mtu: number,
    readonly airtime: AirtimeModel,
    readonly bitRate: number | undefined,
    protected readonly queueCap: number,
    protected readonly log: (line: string) => void = () => undefined,
  ) {
    super();
    if (!Number.isInteger(mtu) || mtu < 1) throw new RangeError(`${name}: MTU must be a positive integer, got ${mtu}`);
    if (!Number.isInteger(queueCap) || queueCap < 1) throw new RangeError(`${name}: queue cap must be a positive integer, got ${queueCap}`);
    this.readyBelow = Math.max(1, Math.ceil(queueCap / 2));
  }

  get state(): LinkState {
    return this.current;
  }

  abstract open(): Promise<void>;
  abstract close(): Promise<void>;
  /** Writes queued frames while the transport can take them. */
  protected abstract pump(): void;

  send(frame: Uint8Array, options?: SendOptions): boolean {
    if (this.current === 'closed') throw new Error(`${this.name}: link is closed`);
    if (frame.length > this.mtu) {
      countDrop(this.counters, 'too-large');
      throw new FrameTooLargeError(`${this.name}: frame of ${frame.length} bytes exceeds the MTU of ${this.mtu} bytes`);
    }
    if (this.queue.length >= this.queueCap) {
      this.queue.shift();
      countDrop(this.counters, 'queue-full');
    }
    // A copy: the caller may reuse its buffer as soon as send returns.
    this.queue.push({ data: frame.slice(), options });
    this.pump();
    const ready = this.queue.length < this.readyBelow;
    if (!ready) this.owesReady = true;
    return ready;
  }

  /** Sets the state; logs and emits only when it changes. */
  protected setState(state: LinkState, reason?: string): void {
    if (state === this.current) return;
    this.current = state;
    this.log(`${this.name}: ${state}${reason ? ` (${reason})` : ''}`);
    this.emit('state', state, reason);
  }

  /** Counts and emits a received frame. */
  protected deliver(frame: ReceivedFrame): void {
    this.counters.framesIn++;
    this.counters.bytesIn += frame.data.length;
    this.emit('frame', frame);
  }

  /** Counts a frame written, and signals readiness when the queue has drained enough. */
  protected sent(bytes: number): void {
    this.counters.framesOut++;
    this.counters.bytesOut += bytes;
    if (this.owesReady && this.queue.length < this.readyBelow) {
      this.owesReady = false;
      this.emit('ready');
    }
  }

  override on<E extends keyof LinkEvents>(event: E, listener: (...args: LinkEvents[E]) => void): this {
    return super.on(event, listener as (...args: unknown[]) => void);
  }

  override off<E extends keyof LinkEvents>(event: E, listener: (...args: LinkEvents[E]) => void): this {
    return super.off(event, listener as (...args: unknown[]) => void);
  }
}
