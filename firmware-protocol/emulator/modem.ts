/**
 * The firmware side of the LoRa modem protocol (SPEC.md), as a sans-IO state machine.
 *
 * Bytes from the host and frames from the simulated air go in with the current radio time;
 * bytes for the host and frames for the air come out, with the next deadline. The runner
 * (runner.ts) owns the serial port, the medium socket and the one timer.
 *
 * Radio model: a transmission occupies the channel for its LoRa time-on-air. A packet is received
 * when it ends, if the receiver listens on the same frequency, bandwidth and spreading factor,
 * its radio is on, it did not transmit meanwhile (half duplex), no other reception overlapped it
 * (collision: both are lost) and the random loss spared it.
 *
 * In 'lora' mode it behaves as RNode firmware does (src/link/airtime/lora-rnode.ts has the
 * facts): every packet carries a one-byte header (sequence nibble, split flag); DATA frames of up
 * to 508 bytes are split over two packets (three for exactly 508) and joined again by the
 * receiving modem by the firmware's rules; longer frames are dropped silently; the preamble is
 * the firmware's (≥ 18 symbols); and a frame waits for the channel by RNode's CSMA: the medium
 * free for DIFS (2 slots), then a contention window of random slots counted only while it stays
 * free. Promiscuous mode sends and delivers raw packets of at most 255 bytes, without header.
 */
import { KISS_RETURN, KissCommand, KissDecoder, encodeKissData, kissCommandName, type KissFrame } from '../kiss.js';
import {
  DETECT_REQUEST,
  DETECT_RESPONSE,
  LoraModemError,
  QUERY_U32,
  QUERY_U8,
  RadioState,
  decodeLoraFrame,
  encodeLoraMessage,
  type LoraCommandName,
  type LoraMessage,
} from '../lora-modem.js';
import { loraAirtime, validateLoraParams } from '../../src/link/airtime/lora.js';
import {
  RNODE_HOST_MTU,
  RNODE_PACKET_MAX,
  RNODE_SPLIT_FLAG,
  rnodeContentionWindow,
  rnodePhy,
  rnodeSplit,
  type RNodePhy,
} from '../../src/link/airtime/lora-rnode.js';
import { AirtimeBins } from './airtime-bins.js';

/** A transmission on the simulated medium. */
export interface AirFrame {
  frequency: number;
  bandwidth: number;
  sf: number;
  cr: number;
  airtimeMs: number;
  /** When the transmission started, in the radio time all emulators share (see runner.ts). */
  start: number;
  data: Uint8Array;
}

/**
 * 'lora': the LoRa modem command set of SPEC.md (the type byte is the command).
 * 'kiss-tnc': a plain KISS TNC: the type byte is port + KISS command; DATA frames on any port go
 * on the air, TXDELAY/P/SLOTTIME/TXTAIL/FULLDUPLEX are recorded, and the radio is on from the
 * start with the preset channel (no configuration commands, no telemetry, no READY).
 */
export type EmulatorMode = 'lora' | 'kiss-tnc';

/** The channel a KISS TNC emulator transmits on, and its default bit rate (frames may exceed a LoRa packet). */
export const KISS_TNC_BIT_RATE = 9600;
export const KISS_TNC_CHANNEL = { frequency: 144_800_000, bandwidth: 125_000, sf: 7, cr: 5 } as const;

export interface EmulatedModemOptions {
  mode?: EmulatorMode;
  firmwareVersion?: readonly [number, number];
  platform?: number;
  mcu?: number;
  /** RSSI and SNR this modem reports for every frame it receives. */
  rssiDbm?: number;
  snrDb?: number;
  /** Probability (0..1) that a frame on this modem's channel is lost before it is received. */
  loss?: number;
  /** Propagation delay added to every reception, in ms of radio time. */
  delayMs?: number;
  /** Replaces the LoRa airtime formula by a fixed bit rate (bits/s) when set. */
  bitRate?: number;
  /**
   * Frames and bytes the modem buffers for transmission (lora: 200 frames and 6,144 bytes, as an
   * ESP32 RNode; kiss-tnc: 64 frames). A frame beyond either is dropped and counted.
   */
  txQueueFrames?: number;
  txQueueBytes?: number;
  /**
   * Whether a dropped frame is answered with ERROR 04 (queue full), as SPEC.md allows. Default
   * false: RNode drops it without a word (Reticulum takes an interface offline on that error).
   */
  queueFullError?: boolean;
  /**
   * Send READY by itself when a transmission ends (default true). False behaves as current RNode
   * firmware, which answers READY only when the host asks.
   */
  readyAfterTx?: boolean;
  /**
   * Largest DATA frame taken from the host, bytes (lora: at most 508, the default; kiss-tnc:
   * 2048). A longer frame is dropped without an answer, as RNode firmware does.
   */
  maxPayload?: number;
  /** RNode's carrier sense before each channel access (lora mode; default true). */
  csma?: boolean;
  /** A number in [0, 1); tests pass a seeded one. */
  random?: () => number;
}

export interface ModemCounters {
  rxFrames: number;
  txFrames: number;
  collisions: number;
  lostToNoise: number;
  lostHalfDuplex: number;
  offChannel: number;
  queueFull: number;
  /** DATA frames over maxPayload, dropped without an answer. */
  oversize: number;
  /** Empty DATA frames, ignored. */
  emptyData: number;
  /** Split halves thrown away: a first half replaced by another, or followed by a whole packet. */
  splitDiscarded: number;
  /** Channel accesses that found the medium busy and waited for it. */
  csmaDeferrals: number;
  /** Transmissions from the medium no radio could have sent: empty, or longer than a LoRa packet (255; KISS TNC: 2048). */
  malformedOnAir: number;
  decodeErrors: number;
  unknownCommands: number;
}

interface Reception {
  frame: AirFrame;
  start: number;
  end: number;
  collided: boolean;
  lostHalfDuplex: boolean;
}

interface CsmaState {
  /** idle: no access under way; wait-free: the medium was busy; difs, cw: counting. */
  phase: 'idle' | 'wait-free' | 'difs' | 'cw';
  cwSlots: number | undefined;
  difsStart: number;
  cwStart: number;
  /** Contention-window time counted before the medium last went busy. */
  cwPassed: number;
  /** When the access should be looked at again. */
  wakeAt: number | undefined;
}

/**
 * How much two intervals may overlap and still count as back to back. Radio times are the wall
 * clock's epoch × the time scale (about 3.4 × 10¹³ ms at scale 20), where a double's rounding is a
 * few µs, and the medium converts each start and duration to wall-clock time and back: a packet
 * that follows another at once may then seem to begin before the other ends, by up to 4.4 × 10⁻¹⁶
 * of the time (15 µs at 3.4 × 10¹³ ms; 13 % of back-to-back packets, measured). A margin of 10⁻¹⁵
 * of the time plus 1 ns keeps them apart; a real collision overlaps by symbols (64 µs and more at
 * the fastest LoRa setting, more than the margin up to a time scale of about 40).
 */
const slack = (t: number): number => Math.abs(t) * 1e-15 + 1e-6;

const SHORT_WINDOW_MS = 15_000;
const LONG_WINDOW_MS = 3_600_000;
const MAX_RECEPTIONS = 64;
const FREQ_MIN = 137_000_000;
const FREQ_MAX = 1_020_000_000;
const TXPOWER_MAX = 22;

export class EmulatedModem {
  readonly settings = {
    frequency: 0,
    bandwidth: 0,
    txPower: 0,
    sf: 0,
    cr: 0,
    implicitLength: 0,
    promiscuous: false,
    radioOn: false,
    shortLockPercent: 0,
    longLockPercent: 0,
  };
  /** KISS parameters received in kiss-tnc mode, by command name (raw byte values). */
  readonly kissParams: Record<string, number> = {};
  readonly mode: EmulatorMode;
  readonly counters: ModemCounters = {
    rxFrames: 0,
    txFrames: 0,
    collisions: 0,
    lostToNoise: 0,
    lostHalfDuplex: 0,
    offChannel: 0,
    queueFull: 0,
    oversize: 0,
    emptyData: 0,
    splitDiscarded: 0,
    csmaDeferrals: 0,
    malformedOnAir: 0,
    decodeErrors: 0,
    unknownCommands: 0,
  };

  private readonly opts: Required<Omit<EmulatedModemOptions, 'bitRate' | 'mode'>> & { bitRate?: number };
  private readonly decoder = new KissDecoder({ maxFrame: 2048 });
  private readonly txQueue: Uint8Array[] = [];
  private txQueuedBytes = 0;
  private txEnd: number | undefined;
  /** The packets of the frame on air that are still to go, back to back. */
  private txPackets: Uint8Array[] = [];
  /** Frames that may still go without a new channel access (RNode flushes its queue at low rates). */
  private burst = 0;
  private csma: CsmaState = { phase: 'idle', cwSlots: undefined, difsStart: 0, cwStart: 0, cwPassed: 0, wakeAt: undefined };
  /**
   * The contention window band, as last reported. RNode starts in band 1 with a window of 0..14
   * slots (its initial cw_max is 15); after any band change band 1 is 0..13.
   */
  private cw = { band: 1, minSlots: 0, maxSlots: 15 };
  private phyCache: { key: string; phy: RNodePhy } | undefined;
  /** The first half of a split frame, waiting for its second (RNode keeps one, whoever sent it). */
  private rxSplit: { sequence: number; data: Uint8Array } | undefined;
  private receptions: Reception[] = [];
  private readonly shortAirtime = new AirtimeBins(SHORT_WINDOW_MS, 1_000);
  private readonly longAirtime = new AirtimeBins(LONG_WINDOW_MS, 60_000);
  private hostOut: Uint8Array[] = [];
  private airOut: AirFrame[] = [];

  constructor(options: EmulatedModemOptions = {}) {
    this.mode = options.mode ?? 'lora';
    if (this.mode === 'kiss-tnc') Object.assign(this.settings, KISS_TNC_CHANNEL, { radioOn: true });
    this.opts = {
      firmwareVersion: options.firmwareVersion ?? [1, 74],
      platform: options.platform ?? 0x80,
      mcu: options.mcu ?? 0x81,
      rssiDbm: options.rssiDbm ?? -90,
      snrDb: options.snrDb ?? 8.5,
      loss: options.loss ?? 0,
      delayMs: options.delayMs ?? 0,
      txQueueFrames: options.txQueueFrames ?? (this.mode === 'kiss-tnc' ? 64 : 200),
      txQueueBytes: options.txQueueBytes ?? (this.mode === 'kiss-tnc' ? 64 * 2048 : 6144),
      queueFullError: options.queueFullError ?? false,
      maxPayload: options.maxPayload ?? (this.mode === 'kiss-tnc' ? 2048 : RNODE_HOST_MTU),
      csma: options.csma ?? this.mode === 'lora',
      random: options.random ?? Math.random,
      readyAfterTx: options.readyAfterTx ?? true,
      ...(options.bitRate !== undefined ? { bitRate: options.bitRate } : this.mode === 'kiss-tnc' ? { bitRate: KISS_TNC_BIT_RATE } : {}),
    };
    if (!(this.opts.loss >= 0 && this.opts.loss <= 1)) {
      throw new RangeError(`loss must be from 0 to 1, got ${this.opts.loss}`);
    }
    const most = this.mode === 'lora' ? RNODE_HOST_MTU : 2048;
    if (!(Number.isInteger(this.opts.maxPayload) && this.opts.maxPayload >= 1 && this.opts.maxPayload <= most)) {
      throw new RangeError(`maxPayload must be 1 to ${most} bytes in ${this.mode} mode, got ${this.opts.maxPayload}`);
    }
  }

  /** Encoded KISS frames for the host, in order; the caller writes them to the serial line. */
  takeHostOutput(): Uint8Array[] {
    const out = this.hostOut;
    this.hostOut = [];
    return out;
  }

  /** Transmissions that started; the caller puts them on the medium. */
  takeAirOutput(): AirFrame[] {
    const out = this.airOut;
    this.airOut = [];
    return out;
  }

  /** Bytes from the serial line. */
  fromHost(bytes: Uint8Array, now: number): void {
    for (const event of this.decoder.push(bytes)) {
      if ('error' in event) {
        this.counters.decodeErrors++;
        continue;
      }
      if (this.mode === 'kiss-tnc') {
        this.handleKiss(event.frame);
        continue;
      }
      const result = decodeLoraFrame(event.frame);
      if ('error' in result) {
        if (result.error.code === 'unknown-command') this.counters.unknownCommands++;
        else this.counters.decodeErrors++;
        continue;
      }
      this.handleCommand(result.message, now);
    }
    this.poll(now);
  }

  /** A transmission from another modem started reaching this one's antenna at `now`. */
  fromAir(frame: AirFrame, now: number): void {
    const s = this.settings;
    if (frame.data.length === 0 || frame.data.length > (this.mode === 'lora' ? RNODE_PACKET_MAX : 2048)) {
      this.counters.malformedOnAir++;
      return;
    }
    if (frame.frequency !== s.frequency || frame.bandwidth !== s.bandwidth || frame.sf !== s.sf) {
      this.counters.offChannel++;
      return;
    }
    // The sender's start time, not the datagram's arrival: loopback and event-loop jitter would
    // otherwise turn back-to-back frames into false collisions when time runs scaled.
    const start = Math.min(frame.start, now) + this.opts.delayMs;
    const reception: Reception = {
      frame,
      start,
      end: start + frame.airtimeMs,
      collided: false,
      lostHalfDuplex: this.txEnd !== undefined,
    };
    for (const other of this.receptions) {
      if (other.start < reception.end - slack(reception.end) && reception.start < other.end - slack(other.end)) {
        other.collided = true;
        reception.collided = true;
      }
    }
    if (this.receptions.length >= MAX_RECEPTIONS) this.receptions.shift();
    this.receptions.push(reception);
    this.poll(now);
  }

  /** Runs everything due at `now`. */
  poll(now: number): void {
    this.finishReceptions(now);
    while (this.txEnd !== undefined && now >= this.txEnd) {
      const end = this.txEnd;
      this.txEnd = undefined;
      const next = this.txPackets.shift();
      // The packets of one frame follow each other at once: the firmware waits for the end of
      // one and starts the next without a new channel access.
      if (next) {
        this.sendPacket(next, end);
        continue;
      }
      this.counters.txFrames++;
      if (this.mode === 'lora' && this.opts.readyAfterTx) this.reply({ command: 'ready', value: 0x01 });
      if (this.mode === 'lora') this.updateContentionWindow(end);
      if (this.burst > 0) this.startFrame(end);
    }
    this.startTransmission(now);
  }

  /** When `poll` next has something to do, or undefined when nothing is pending. */
  nextDeadline(now: number): number | undefined {
    let next: number | undefined = this.txEnd;
    const earlier = (t: number | undefined): void => {
      if (t !== undefined && (next === undefined || t < next)) next = t;
    };
    for (const r of this.receptions) earlier(r.end);
    if (this.txEnd === undefined && this.txQueue.length > 0 && this.settings.radioOn) {
      if (!this.withinLocks(now)) earlier(Math.min(this.shortAirtime.nextRelease(now), this.longAirtime.nextRelease(now)));
      else earlier(this.csma.wakeAt);
    }
    return next;
  }

  /**
   * The firmware's timing for the current settings (CSMA slot, DIFS, preamble), computed once per
   * setting: every packet's airtime and every channel access ask for it. The settings were
   * validated when set.
   */
  phy(): RNodePhy | undefined {
    const s = this.settings;
    if (!this.configured()) return undefined;
    const key = `${s.sf}/${s.bandwidth}/${s.cr}`;
    if (this.phyCache?.key !== key) this.phyCache = { key, phy: rnodePhy({ sf: s.sf, bandwidth: s.bandwidth, cr: s.cr }) };
    return this.phyCache.phy;
  }

  private reply(msg: LoraMessage): void {
    this.hostOut.push(encodeLoraMessage(msg));
  }

  private error(code: number): void {
    // A KISS TNC has no way to report errors: it drops the frame silently.
    if (this.mode === 'lora') this.reply({ command: 'error', value: code });
  }

  private handleCommand(msg: LoraMessage, now: number): void {
    const s = this.settings;
    switch (msg.command) {
      case 'data':
        this.queueTransmission(msg.data);
        return;
      case 'detect':
        if (msg.value === DETECT_REQUEST) this.reply({ command: 'detect', value: DETECT_RESPONSE });
        return;
      case 'frequency':
        if (msg.value !== QUERY_U32 && msg.value >= FREQ_MIN && msg.value <= FREQ_MAX) s.frequency = msg.value;
        this.reply({ command: 'frequency', value: s.frequency });
        return;
      case 'bandwidth':
        if (msg.value !== QUERY_U32 && this.validBandwidth(msg.value)) s.bandwidth = msg.value;
        this.reply({ command: 'bandwidth', value: s.bandwidth });
        return;
      case 'txpower':
        if (msg.value !== QUERY_U8 && msg.value <= TXPOWER_MAX) s.txPower = msg.value;
        this.reply({ command: 'txpower', value: s.txPower });
        return;
      case 'sf':
        if (msg.value !== QUERY_U8 && msg.value >= 5 && msg.value <= 12) s.sf = msg.value;
        this.reply({ command: 'sf', value: s.sf });
        return;
      case 'cr':
        if (msg.value !== QUERY_U8 && msg.value >= 5 && msg.value <= 8) s.cr = msg.value;
        this.reply({ command: 'cr', value: s.cr });
        return;
      case 'implicit':
        s.implicitLength = msg.value;
        this.reply({ command: 'implicit', value: s.implicitLength });
        return;
      case 'promisc':
        if (msg.value === 0 || msg.value === 1) s.promiscuous = msg.value === 1;
        this.reply({ command: 'promisc', value: s.promiscuous ? 1 : 0 });
        return;
      case 'radio-state':
        this.setRadioState(msg.value);
        return;
      case 'st-alock':
        // 100 % or more is no limit, answered as 0 (as RNode does).
        s.shortLockPercent = msg.percent >= 100 ? 0 : msg.percent;
        this.reply({ command: 'st-alock', percent: s.shortLockPercent });
        return;
      case 'lt-alock':
        s.longLockPercent = msg.percent >= 100 ? 0 : msg.percent;
        this.reply({ command: 'lt-alock', percent: s.longLockPercent });
        return;
      case 'ready':
        // RNode: 1 while its queue is not full.
        this.reply({ command: 'ready', value: this.txQueue.length < this.opts.txQueueFrames && this.txQueuedBytes < this.opts.txQueueBytes ? 1 : 0 });
        return;
      case 'leave':
        // The host is going away; the radio stays as it is and nothing is answered.
        return;
      case 'fw-version':
        this.replyToQuery('fw-version', now);
        return;
      case 'platform':
        this.reply({ command: 'platform', value: this.opts.platform });
        return;
      case 'mcu':
        this.reply({ command: 'mcu', value: this.opts.mcu });
        return;
      case 'random':
        this.reply({ command: 'random', value: Math.floor(this.opts.random() * 256) });
        return;
      case 'query':
        this.replyToQuery(msg.target, now);
        return;
      default:
        // Telemetry and READY only flow from modem to host; a host sending them is ignored.
        return;
    }
  }

  private replyToQuery(target: LoraCommandName, now: number): void {
    const s = this.settings;
    switch (target) {
      case 'fw-version':
        this.reply({ command: 'fw-version', major: this.opts.firmwareVersion[0], minor: this.opts.firmwareVersion[1] });
        return;
      case 'frequency':
      case 'bandwidth':
        this.reply({ command: target, value: s[target] });
        return;
      case 'stat-rx':
        this.reply({ command: 'stat-rx', value: this.counters.rxFrames >>> 0 });
        return;
      case 'stat-tx':
        this.reply({ command: 'stat-tx', value: this.counters.txFrames >>> 0 });
        return;
      case 'st-alock':
        this.reply({ command: 'st-alock', percent: s.shortLockPercent });
        return;
      case 'lt-alock':
        this.reply({ command: 'lt-alock', percent: s.longLockPercent });
        return;
      case 'stat-chtm': {
        const pct = (used: number, window: number): number => Math.min(100, Math.round((used / window) * 10_000) / 100);
        const airShort = pct(this.shortAirtime.used(now), SHORT_WINDOW_MS);
        const airLong = pct(this.longAirtime.used(now), LONG_WINDOW_MS);
        this.reply({
          command: 'stat-chtm',
          airtimeShortPercent: airShort,
          airtimeLongPercent: airLong,
          channelLoadShortPercent: airShort,
          channelLoadLongPercent: airLong,
          currentRssiDbm: -120,
          noiseFloorDbm: -120,
        });
        return;
      }
      case 'stat-phyprm':
        if (this.phy()) this.reply({ command: 'stat-phyprm', ...this.phyParams() });
        return;
      default:
        return;
    }
  }

  private validBandwidth(hz: number): boolean {
    try {
      validateLoraParams({ sf: 7, bandwidth: hz, cr: 5 });
      return true;
    } catch {
      return false;
    }
  }

  private configured(): boolean {
    const s = this.settings;
    return s.frequency !== 0 && s.bandwidth !== 0 && s.sf !== 0 && s.cr !== 0;
  }

  /** An unconfigured radio stays off and the answer says so (SPEC.md, RADIO_STATE). */
  private setRadioState(value: number): void {
    if (value === RadioState.ON && this.configured()) {
      this.settings.radioOn = true;
    } else if (value === RadioState.OFF) {
      this.settings.radioOn = false;
      this.txQueue.length = 0;
      this.txQueuedBytes = 0;
      // The packet on air ends; the rest of its frame does not follow.
      this.txPackets = [];
      this.burst = 0;
      this.rxSplit = undefined;
    }
    this.reply({ command: 'radio-state', value: this.settings.radioOn ? RadioState.ON : RadioState.OFF });
    // RNode reports its physical-layer timing by itself when the radio comes up.
    if (this.mode === 'lora' && this.settings.radioOn && this.phy()) this.reply({ command: 'stat-phyprm', ...this.phyParams() });
  }

  /** STAT_PHYPRM's fields as the firmware fills them (u16 each: the symbol time truncated to µs). */
  private phyParams() {
    const p = this.phy()!;
    return {
      symbolTimeMs: Math.min(0xffff, Math.trunc(p.symbolMs * 1000)) / 1000,
      symbolRate: Math.min(0xffff, p.symbolRate),
      preambleSymbols: p.preambleSymbols,
      preambleTimeMs: Math.min(0xffff, p.preambleMs),
      csmaSlotMs: p.csmaSlotMs,
      difsMs: p.difsMs,
    };
  }

  /** Time on air of one packet of `bytes` (header included), ms. */
  airtimeMs(bytes: number): number {
    if (this.opts.bitRate !== undefined) return (bytes * 8 * 1000) / this.opts.bitRate;
    const s = this.settings;
    const preamble = this.mode === 'lora' ? this.phy()?.preambleSymbols : undefined;
    return loraAirtime({ sf: s.sf, bandwidth: s.bandwidth, cr: s.cr, ...(preamble !== undefined ? { preamble } : {}) }, bytes).airtimeMs;
  }

  private queueTransmission(data: Uint8Array): void {
    if (!this.settings.radioOn) {
      this.error(LoraModemError.TX_FAILED);
      return;
    }
    if (data.length === 0) {
      // RNode queues nothing shorter than one byte, and says nothing.
      this.counters.emptyData++;
      return;
    }
    if (data.length > this.opts.maxPayload) {
      // RNode queues it and drops it when its turn comes, without a word to the host.
      this.counters.oversize++;
      return;
    }
    if (this.txQueue.length >= this.opts.txQueueFrames || this.txQueuedBytes + data.length > this.opts.txQueueBytes) {
      this.counters.queueFull++;
      if (this.opts.queueFullError) this.error(LoraModemError.QUEUE_FULL);
      return;
    }
    this.txQueue.push(data.slice());
    this.txQueuedBytes += data.length;
  }

  /** SPEC.md: queued frames are held while the airtime used in a window is at or above its lock. */
  private withinLocks(now: number): boolean {
    const s = this.settings;
    const below = (bins: AirtimeBins, percent: number): boolean =>
      percent <= 0 || bins.used(now) < (bins.windowMs * percent) / 100;
    return below(this.shortAirtime, s.shortLockPercent) && below(this.longAirtime, s.longLockPercent);
  }

  /** A channel access: the airtime locks, then (lora mode) CSMA, then the queue goes. */
  private startTransmission(now: number): void {
    this.csma.wakeAt = undefined;
    if (this.txEnd !== undefined || !this.settings.radioOn || this.txQueue.length === 0) return;
    if (!this.withinLocks(now)) return;
    if (this.opts.csma && !this.channelClear(now)) return;
    const phy = this.mode === 'lora' ? this.phy() : undefined;
    this.burst = phy?.flushQueue ? this.txQueue.length : 1;
    this.startFrame(now);
  }

  /**
   * RNode's channel access (its tx_queue_handler), run on events instead of a busy loop: a
   * contention window of random slots is drawn once per access; the medium must then be free for
   * DIFS, after which the window counts down only while it stays free. A busy medium restarts
   * the DIFS wait but keeps the slots already counted. True when the frame may go now.
   */
  private channelClear(now: number): boolean {
    const c = this.csma;
    const phy = this.phy();
    if (!phy) return true;
    if (c.cwSlots === undefined) {
      // Arduino's random(min, max) is min..max−1.
      c.cwSlots = this.cw.minSlots + Math.floor(this.opts.random() * (this.cw.maxSlots - this.cw.minSlots));
    }
    const target = c.cwSlots * phy.csmaSlotMs;
    const busy = this.busyAt(now);
    if (busy) {
      if (c.phase === 'cw') c.cwPassed += Math.max(0, Math.min(now, busy.since) - c.cwStart);
      if (c.phase !== 'wait-free') this.counters.csmaDeferrals++;
      c.phase = 'wait-free';
      c.wakeAt = busy.until;
      return false;
    }
    if (c.phase === 'idle' || c.phase === 'wait-free') {
      c.phase = 'difs';
      c.difsStart = now;
    }
    if (c.phase === 'difs') {
      const difsEnd = c.difsStart + phy.difsMs;
      if (now < difsEnd) {
        c.wakeAt = this.nextStartBefore(now, difsEnd);
        return false;
      }
      c.phase = 'cw';
      c.cwStart = difsEnd;
    }
    const passed = c.cwPassed + (now - c.cwStart);
    if (passed < target) {
      c.wakeAt = this.nextStartBefore(now, now + (target - passed));
      return false;
    }
    this.csma = { phase: 'idle', cwSlots: undefined, difsStart: 0, cwStart: 0, cwPassed: 0, wakeAt: undefined };
    return true;
  }

  /**
   * After each transmission RNode recomputes its contention-window band from its own airtime of
   * the last few seconds, and tells the host (STAT_CSMA) when the band changed.
   */
  private updateContentionWindow(now: number): void {
    const cw = rnodeContentionWindow((this.shortAirtime.used(now) / SHORT_WINDOW_MS) * 100);
    if (cw.band === this.cw.band) return;
    this.cw = cw;
    this.reply({ command: 'stat-csma', band: cw.band, cwMin: cw.minSlots, cwMax: cw.maxSlots });
  }

  /** Whether a reception is under way at `now` (carrier detected), since when and until when. */
  private busyAt(now: number): { since: number; until: number } | undefined {
    let busy: { since: number; until: number } | undefined;
    for (const r of this.receptions) {
      if (r.start <= now && now < r.end) busy = { since: Math.min(busy?.since ?? r.start, r.start), until: Math.min(busy?.until ?? r.end, r.end) };
    }
    return busy;
  }

  /** `deadline`, or earlier if a reception already known begins before it (a delayed one). */
  private nextStartBefore(now: number, deadline: number): number {
    let t = deadline;
    for (const r of this.receptions) if (r.start > now && r.start < t) t = r.start;
    return t;
  }

  /** Takes the next frame off the queue and puts its first packet on air at `at`. */
  private startFrame(at: number): void {
    const data = this.txQueue.shift();
    if (!data) {
      this.burst = 0;
      return;
    }
    this.txQueuedBytes -= data.length;
    this.burst = Math.max(0, this.burst - 1);
    const packets =
      this.mode === 'lora' ? rnodeSplit(data, Math.floor(this.opts.random() * 16), this.settings.promiscuous) : [data];
    this.txPackets = packets.slice(1);
    this.sendPacket(packets[0]!, at);
  }

  private sendPacket(data: Uint8Array, at: number): void {
    const airtimeMs = this.airtimeMs(data.length);
    this.txEnd = at + airtimeMs;
    this.shortAirtime.add(at, airtimeMs);
    this.longAirtime.add(at, airtimeMs);
    // Receptions under way are lost: this radio is half duplex.
    for (const r of this.receptions) if (r.end - slack(r.end) > at) r.lostHalfDuplex = true;
    const s = this.settings;
    this.airOut.push({ frequency: s.frequency, bandwidth: s.bandwidth, sf: s.sf, cr: s.cr, airtimeMs, start: at, data });
  }

  private finishReceptions(now: number): void {
    if (this.receptions.length === 0) return;
    const pending: Reception[] = [];
    for (const r of this.receptions) {
      if (r.end > now) {
        pending.push(r);
        continue;
      }
      if (r.collided) this.counters.collisions++;
      else if (r.lostHalfDuplex) this.counters.lostHalfDuplex++;
      else if (!this.settings.radioOn) this.counters.offChannel++;
      else if (this.opts.random() < this.opts.loss) this.counters.lostToNoise++;
      else this.deliver(r.frame);
    }
    this.receptions = pending;
  }

  private handleKiss(frame: KissFrame): void {
    if (frame.type === KISS_RETURN) return;
    if (frame.command === KissCommand.DATA) {
      this.queueTransmission(frame.data);
      return;
    }
    const name = kissCommandName(frame);
    if (typeof name === 'string' && frame.data.length >= 1) this.kissParams[name] = frame.data[0]!;
    else this.counters.unknownCommands++;
  }

  private deliver(frame: AirFrame): void {
    if (this.mode === 'kiss-tnc') {
      this.counters.rxFrames++;
      this.hostOut.push(encodeKissData(frame.data, 0));
      return;
    }
    const data = this.settings.promiscuous ? frame.data : this.join(frame.data);
    // An empty frame (a header-only packet) is never passed up.
    if (data === undefined || data.length === 0) return;
    this.counters.rxFrames++;
    this.reply({ command: 'stat-rssi', dbm: this.opts.rssiDbm });
    this.reply({ command: 'stat-snr', db: this.opts.snrDb });
    this.reply({ command: 'data', data });
  }

  /**
   * RNode's reassembly of split frames, with its one buffer: a split packet with no half held is
   * a first half; one with the held half's sequence nibble is the second, and the two go up
   * together; one with another nibble replaces the held half; a packet without the split flag
   * drops any held half and goes up alone. What goes up is cut at 508 bytes.
   */
  private join(packet: Uint8Array): Uint8Array | undefined {
    if (packet.length === 0) return undefined;
    const header = packet[0]!;
    const data = packet.subarray(1);
    const sequence = header >> 4;
    const held = this.rxSplit;
    if ((header & RNODE_SPLIT_FLAG) === 0) {
      if (held) this.counters.splitDiscarded++;
      this.rxSplit = undefined;
      return data;
    }
    if (held && held.sequence === sequence) {
      this.rxSplit = undefined;
      const whole = new Uint8Array(held.data.length + data.length);
      whole.set(held.data);
      whole.set(data, held.data.length);
      return whole.subarray(0, RNODE_HOST_MTU);
    }
    if (held) this.counters.splitDiscarded++;
    this.rxSplit = { sequence, data: data.slice() };
    return undefined;
  }
}
