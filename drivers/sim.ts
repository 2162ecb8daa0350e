/**
 * An in-process simulated radio medium, and the links attached to it.
 *
 * Radio model (the same as the modem emulator's, firmware-protocol/emulator/modem.ts):
 * - A transmission occupies the channel for the airtime model's time; a link sends one frame at
 *   a time, the next when the previous one's airtime has ended.
 * - Every other open link on the same channel receives it over [start + delay, end + delay) —
 *   or, with `reach` (a planner's map: positions and path loss, src/sim/radio.ts), only those in
 *   range, each with its own loss, RSSI and SNR; out of range also means no carrier sensed, so
 *   hidden terminals collide as they do on the air.
 * - Collisions (on by default): receptions that overlap at one receiver are all lost — unless
 *   one is `captureDb` stronger than the other (the capture effect), which then survives it.
 * - Half duplex: a receiver that transmits at any time during a reception loses it.
 * - Random loss: a surviving reception is lost with probability `loss` (or the pair's).
 * - A frame that survives is delivered when its reception ends, with the pair's RSSI and SNR
 *   (default the receiving link's synthetic ones), and `at` = the clock's time.
 *
 * Nothing here reads a real clock or sets a real timer: everything goes through the `SimClock`,
 * so on a `VirtualClock` a run is deterministic (given a seeded `random`) and as fast as the CPU.
 */
import { Ax25AirtimeModel } from '../src/link/airtime/afsk.js';
import { FixedRateAirtimeModel } from '../src/link/airtime/fixed-rate.js';
import { LoraAirtimeModel } from '../src/link/airtime/lora-model.js';
import type { AirtimeModel } from '../src/link/airtime/model.js';
import type { SimClock, TimerHandle } from '../src/link/clock.js';
import { BaseLink, countDrop } from '../src/link/link.js';

export interface SimMediumOptions {
  clock: SimClock;
  /** Probability (0..1) that a frame which neither collided nor met half duplex is lost. */
  loss?: number;
  /** Propagation delay added to every reception, ms. */
  delayMs?: number;
  /** Whether overlapping receptions destroy each other; default true. */
  collisions?: boolean;
  /**
   * Capture effect, dB: of two overlapping receptions, one this much stronger (by RSSI) survives
   * and only the weaker is lost (LoRa about 6 dB within one SF, FM about 10 dB). Default: none,
   * every overlap destroys both.
   */
  captureDb?: number;
  /** Carrier-sense slot, ms: a link that hears the channel busy waits for it to clear plus 0–7 slots. 0 disables CSMA. Default 20. */
  csmaSlotMs?: number;
  /** Bits/s of a fixed-rate channel; used when `airtime` is not given. */
  bitRate?: number;
  /** Default: LoRa SF7 / 125 kHz / CR 4/5, or the fixed-rate model when `bitRate` is given. */
  airtime?: AirtimeModel;
  /** A number in [0, 1); tests pass a seeded one. Default Math.random. */
  random?: () => number;
  /**
   * Who hears whom (a planner's map): called for each sender–receiver pair at each transmission;
   * undefined means out of range (the receiver neither decodes nor senses the carrier). Default:
   * every link on the channel hears every other with the medium's `loss`.
   */
  reach?: (from: SimLink, to: SimLink) => SimReach | undefined;
  /** Called at the start of every transmission (an independent airtime count, a trace). */
  onTransmit?: (sender: SimLink, bytes: number, startMs: number, airtimeMs: number) => void;
}

/** One sender–receiver pair's radio path. */
export interface SimReach {
  /** Probability (0..1) that a reception which neither collided nor met half duplex is lost. */
  loss: number;
  /** Reported with the frame; default the receiving link's own. */
  rssiDbm?: number;
  snrDb?: number;
}

export interface SimLinkOptions {
  /** Only links on the same channel hear each other; default ''. */
  channel?: string;
  /** Largest frame, ≤ the airtime model's maxBytes (the default). */
  mtu?: number;
  /** Outgoing queue cap; default 16 frames. */
  queueCap?: number;
  /** Reported with every frame this link receives; default −90 dBm and 8.5 dB. */
  rssiDbm?: number;
  snrDb?: number;
  log?: (line: string) => void;
}

/** What happened on the medium as a whole, for tests and status. */
export interface SimMediumCounters {
  transmissions: number;
  delivered: number;
  collisions: number;
  halfDuplex: number;
  lost: number;
}

/** Receptions in flight per link; one more forgets the oldest (counted 'rx-overflow'). */
const MAX_RECEPTIONS = 64;

interface Reception {
  data: Uint8Array;
  path: SimReach;
  start: number;
  end: number;
  collided: boolean;
  lostHalfDuplex: boolean;
  timer: TimerHandle;
}

export class SimMedium {
  readonly clock: SimClock;
  readonly airtime: AirtimeModel;
  readonly loss: number;
  readonly delayMs: number;
  readonly collisions: boolean;
  readonly captureDb: number;
  readonly csmaSlotMs: number;
  readonly bitRate: number | undefined;
  readonly counters: SimMediumCounters = { transmissions: 0, delivered: 0, collisions: 0, halfDuplex: 0, lost: 0 };
  private readonly random: () => number;
  private readonly links = new Set<SimLink>();
  private readonly reach: SimMediumOptions['reach'];
  private readonly onTransmit: SimMediumOptions['onTransmit'];
  private readonly everywhere: SimReach;

  constructor(options: SimMediumOptions) {
    this.clock = options.clock;
    this.loss = options.loss ?? 0;
    this.delayMs = options.delayMs ?? 0;
    this.collisions = options.collisions ?? true;
    this.captureDb = options.captureDb ?? Infinity;
    if (!(this.captureDb >= 0)) throw new RangeError(`captureDb must be ≥ 0, got ${this.captureDb}`);
    this.csmaSlotMs = options.csmaSlotMs ?? 20;
    if (!(this.csmaSlotMs >= 0 && Number.isFinite(this.csmaSlotMs))) throw new RangeError(`csmaSlotMs must be ≥ 0, got ${this.csmaSlotMs}`);
    this.random = options.random ?? Math.random;
    this.reach = options.reach;
    this.onTransmit = options.onTransmit;
    if (!(this.loss >= 0 && this.loss <= 1)) throw new RangeError(`loss must be from 0 to 1, got ${this.loss}`);
    if (!(this.delayMs >= 0 && Number.isFinite(this.delayMs))) throw new RangeError(`delayMs must be ≥ 0, got ${this.delayMs}`);
    this.airtime =
      options.airtime ??
      (options.bitRate !== undefined
        ? new FixedRateAirtimeModel({ bitRate: options.bitRate })
        : new LoraAirtimeModel({ sf: 7, bandwidth: 125_000, cr: 5 }));
    this.bitRate = options.bitRate ?? nominalBitRate(this.airtime);
    this.everywhere = Object.freeze({ loss: this.loss });
  }

  /** A new link on this medium, state 'down' until opened. */
  /** @internal A draw from the medium's random source (CSMA backoff). */
  randomValue(): number {
    return this.random();
  }

  attach(name: string, options: SimLinkOptions = {}): SimLink {
    return new SimLink(this, name, options);
  }

  /** @internal SimLink.open/close. */
  join(link: SimLink): void {
    this.links.add(link);
  }

  /** @internal */
  leave(link: SimLink): void {
    this.links.delete(link);
  }

  /** @internal A link started sending `data` now, lasting `airtimeMs`. */
  transmit(sender: SimLink, data: Uint8Array, airtimeMs: number): void {
    this.counters.transmissions++;
    const now = this.clock.now();
    this.onTransmit?.(sender, data.length, now, airtimeMs);
    const start = now + this.delayMs;
    for (const link of this.links) {
      if (link === sender || link.channel !== sender.channel) continue;
      const path = this.reach ? this.reach(sender, link) : this.everywhere;
      if (path !== undefined) link.hear(data, path, start, start + airtimeMs);
    }
  }

  /** @internal Decides the fate of a finished reception; true if it is delivered. */
  survives(r: Reception): boolean {
    if (r.collided) this.counters.collisions++;
    else if (r.lostHalfDuplex) this.counters.halfDuplex++;
    else if (r.path.loss > 0 && this.random() < r.path.loss) this.counters.lost++;
    else {
      this.counters.delivered++;
      return true;
    }
    return false;
  }
}

export class SimLink extends BaseLink {
  readonly channel: string;
  private readonly rssiDbm: number;
  private readonly snrDb: number;
  private receptions: Reception[] = [];
  /** The current transmission's interval and end timer, while sending. */
  private tx: { start: number; end: number; timer: TimerHandle } | undefined;
  private deferred: TimerHandle | undefined;

  constructor(
    private readonly medium: SimMedium,
    name: string,
    options: SimLinkOptions = {},
  ) {
    const mtu = options.mtu ?? medium.airtime.maxBytes;
    if (mtu > medium.airtime.maxBytes) {
      throw new RangeError(`${name}: MTU ${mtu} exceeds the airtime model's largest frame, ${medium.airtime.maxBytes}`);
    }
    super(name, 'sim', mtu, medium.airtime, medium.bitRate, options.queueCap ?? 16, options.log);
    this.channel = options.channel ?? '';
    this.rssiDbm = options.rssiDbm ?? -90;
    this.snrDb = options.snrDb ?? 8.5;
  }

  /** Immediate: the link joins the medium and is 'up'. */
  async open(): Promise<void> {
    if (this.state === 'closed') throw new Error(`${this.name}: link is closed`);
    this.medium.join(this);
    this.setState('up');
    this.pump();
  }

  /** Leaves the medium: receptions in flight are forgotten, a transmission under way ends. */
  async close(): Promise<void> {
    if (this.state === 'closed') return;
    this.medium.leave(this);
    for (const r of this.receptions) r.timer.cancel();
    this.receptions = [];
    this.tx?.timer.cancel();
    this.tx = undefined;
    this.deferred?.cancel();
    this.deferred = undefined;
    this.setState('closed');
  }

  /** Starts the next queued frame when the radio is free. */
  protected pump(): void {
    if (this.state !== 'up' || this.tx || this.deferred) return;
    if (this.queue.length === 0) return;
    const clock = this.medium.clock;
    // Carrier sense (as LoRa modems and TNCs do): while this radio hears a transmission, wait
    // for its end plus a random number of slots.
    if (this.medium.csmaSlotMs > 0) {
      const now = clock.now();
      const busyUntil = this.receptions.reduce((t, r) => (r.start <= now && r.end > now ? Math.max(t, r.end) : t), -Infinity);
      if (busyUntil > now) {
        const wait = busyUntil + this.medium.csmaSlotMs * Math.floor(this.medium.randomValue() * 8);
        this.deferred = clock.setTimer(wait, () => {
          this.deferred = undefined;
          this.pump();
        });
        return;
      }
    }
    const next = this.queue.shift()!;
    const airtimeMs = this.airtime.airtimeMs(next.data.length);
    const start = clock.now();
    const end = start + airtimeMs;
    // Half duplex: whatever this radio is receiving during its transmission is lost.
    for (const r of this.receptions) if (r.start < end && start < r.end) r.lostHalfDuplex = true;
    this.tx = {
      start,
      end,
      timer: clock.setTimer(end, () => {
        this.tx = undefined;
        this.pump();
      }),
    };
    this.sent(next.data.length);
    // One copy: the caller may reuse its buffer once `send` returns.
    this.medium.transmit(this, next.data.slice(), airtimeMs);
  }

  /** @internal A transmission reaches this link over [start, end). */
  hear(data: Uint8Array, path: SimReach, start: number, end: number): void {
    if (this.state !== 'up') return;
    const tx = this.tx;
    const reception: Reception = {
      data,
      path,
      start,
      end,
      collided: false,
      lostHalfDuplex: tx !== undefined && tx.start < end && start < tx.end,
      timer: this.medium.clock.setTimer(end, () => this.finish(reception)),
    };
    if (this.medium.collisions) {
      const capture = this.medium.captureDb;
      const mine = path.rssiDbm ?? this.rssiDbm;
      for (const other of this.receptions) {
        if (other.start < end && start < other.end) {
          const theirs = other.path.rssiDbm ?? this.rssiDbm;
          if (mine < theirs + capture) reception.collided = true;
          if (theirs < mine + capture) other.collided = true;
        }
      }
    }
    if (this.receptions.length >= MAX_RECEPTIONS) {
      this.receptions.shift()?.timer.cancel();
      countDrop(this.counters, 'rx-overflow');
    }
    this.receptions.push(reception);
  }

  private finish(r: Reception): void {
    this.receptions = this.receptions.filter((x) => x !== r);
    if (!this.medium.survives(r)) {
      countDrop(this.counters, r.collided ? 'collision' : r.lostHalfDuplex ? 'half-duplex' : 'loss');
      return;
    }
    // Each receiver gets its own copy, so one listener's changes cannot reach another's.
    this.deliver({ data: r.data.slice(), at: this.medium.clock.now(), rssiDbm: r.path.rssiDbm ?? this.rssiDbm, snrDb: r.path.snrDb ?? this.snrDb });
  }
}

/** The bit rate a model implies, when it has one (LoRa: SF · BW / 2^SF · 4 / CR). */
function nominalBitRate(model: AirtimeModel): number | undefined {
  if (model instanceof FixedRateAirtimeModel) return Number.isFinite(model.bitRate) ? model.bitRate : undefined;
  if (model instanceof Ax25AirtimeModel) return model.baud;
  if (model instanceof LoraAirtimeModel) {
    const { sf, bandwidth, cr } = model.params;
    return (sf * bandwidth * 4) / (2 ** sf * cr);
  }
  return undefined;
}
