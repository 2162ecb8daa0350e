/**
 * The firmware side of the LoRa modem protocol (SPEC.md), as a sans-IO state machine.
 *
 * Bytes from the host and frames from the simulated air go in with the current radio time;
 * bytes for the host and frames for the air come out, with the next deadline. The runner
 * (runner.ts) owns the serial port, the medium socket and the one timer.
 *
 * Radio model: a transmission occupies the channel for its LoRa time-on-air. A frame is received
 * when it ends, if the receiver listens on the same frequency, bandwidth and spreading factor,
 * its radio is on, it did not transmit meanwhile (half duplex), no other reception overlapped it
 * (collision: both are lost) and the random loss spared it.
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
  /** Frames the modem buffers for transmission; one more is refused with ERROR queue-full. */
  txQueueFrames?: number;
  /**
   * Send READY by itself when a transmission ends (default true). False behaves as current RNode
   * firmware, which answers READY only when the host asks.
   */
  readyAfterTx?: boolean;
  /** Largest DATA payload, bytes. */
  maxPayload?: number;
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
    decodeErrors: 0,
    unknownCommands: 0,
  };

  private readonly opts: Required<Omit<EmulatedModemOptions, 'bitRate' | 'mode'>> & { bitRate?: number };
  private readonly decoder = new KissDecoder({ maxFrame: 2048 });
  private readonly txQueue: Uint8Array[] = [];
  private txEnd: number | undefined;
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
      txQueueFrames: options.txQueueFrames ?? (this.mode === 'kiss-tnc' ? 64 : 8),
      maxPayload: options.maxPayload ?? (this.mode === 'kiss-tnc' ? 2048 : 255),
      random: options.random ?? Math.random,
      readyAfterTx: options.readyAfterTx ?? true,
      ...(options.bitRate !== undefined ? { bitRate: options.bitRate } : this.mode === 'kiss-tnc' ? { bitRate: KISS_TNC_BIT_RATE } : {}),
    };
    if (!(this.opts.loss >= 0 && this.opts.loss <= 1)) {
      throw new RangeError(`loss must be from 0 to 1, got ${this.opts.loss}`);
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
      if (other.start < reception.end && reception.start < other.end) {
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
    if (this.txEnd !== undefined && now >= this.txEnd) {
      this.txEnd = undefined;
      this.counters.txFrames++;
      if (this.mode === 'lora' && this.opts.readyAfterTx) this.reply({ command: 'ready', value: 0x01 });
    }
    this.startTransmission(now);
  }

  /** When `poll` next has something to do, or undefined when nothing is pending. */
  nextDeadline(now: number): number | undefined {
    let next: number | undefined = this.txEnd;
    for (const r of this.receptions) if (next === undefined || r.end < next) next = r.end;
    if (this.txEnd === undefined && this.txQueue.length > 0 && this.settings.radioOn) {
      const release = Math.min(this.shortAirtime.nextRelease(now), this.longAirtime.nextRelease(now));
      if (next === undefined || release < next) next = release;
    }
    return next;
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
        this.reply({ command: 'ready', value: this.txQueue.length < this.opts.txQueueFrames ? 1 : 0 });
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
        if (this.configured()) this.reply({ command: 'stat-phyprm', ...this.phyParams() });
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
    }
    this.reply({ command: 'radio-state', value: this.settings.radioOn ? RadioState.ON : RadioState.OFF });
  }

  private phyParams() {
    const s = this.settings;
    const symbolMs = 2 ** s.sf / (s.bandwidth / 1000);
    return {
      symbolTimeMs: Math.round(symbolMs * 1000) / 1000,
      symbolRate: Math.round(1000 / symbolMs),
      preambleSymbols: 8 + 4,
      preambleTimeMs: Math.round((8 + 4) * symbolMs),
      csmaSlotMs: Math.max(1, Math.round(symbolMs * 2)),
      difsMs: Math.max(1, Math.round(symbolMs * 4)),
    };
  }

  airtimeMs(bytes: number): number {
    if (this.opts.bitRate !== undefined) return (bytes * 8 * 1000) / this.opts.bitRate;
    const s = this.settings;
    return loraAirtime({ sf: s.sf, bandwidth: s.bandwidth, cr: s.cr }, bytes).airtimeMs;
  }

  private queueTransmission(data: Uint8Array): void {
    if (!this.settings.radioOn) {
      this.error(LoraModemError.TX_FAILED);
      return;
    }
    if (data.length === 0 || data.length > this.opts.maxPayload) {
      this.error(LoraModemError.TX_FAILED);
      return;
    }
    if (this.txQueue.length >= this.opts.txQueueFrames) {
      this.counters.queueFull++;
      this.error(LoraModemError.QUEUE_FULL);
      return;
    }
    this.txQueue.push(data.slice());
  }

  /** SPEC.md: queued frames are held while the airtime used in a window is at or above its lock. */
  private withinLocks(now: number): boolean {
    const s = this.settings;
    const below = (bins: AirtimeBins, percent: number): boolean =>
      percent <= 0 || bins.used(now) < (bins.windowMs * percent) / 100;
    return below(this.shortAirtime, s.shortLockPercent) && below(this.longAirtime, s.longLockPercent);
  }

  private startTransmission(now: number): void {
    if (this.txEnd !== undefined || !this.settings.radioOn) return;
    const data = this.txQueue[0];
    if (!data) return;
    if (!this.withinLocks(now)) return;
    const airtimeMs = this.airtimeMs(data.length);
    this.txQueue.shift();
    this.txEnd = now + airtimeMs;
    this.shortAirtime.add(now, airtimeMs);
    this.longAirtime.add(now, airtimeMs);
    // Receptions under way are lost: this radio is half duplex.
    for (const r of this.receptions) if (r.end > now) r.lostHalfDuplex = true;
    const s = this.settings;
    this.airOut.push({ frequency: s.frequency, bandwidth: s.bandwidth, sf: s.sf, cr: s.cr, airtimeMs, start: now, data });
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
    this.counters.rxFrames++;
    if (this.mode === 'kiss-tnc') {
      this.hostOut.push(encodeKissData(frame.data, 0));
      return;
    }
    this.reply({ command: 'stat-rssi', dbm: this.opts.rssiDbm });
    this.reply({ command: 'stat-snr', db: this.opts.snrDb });
    this.reply({ command: 'data', data: frame.data });
  }
}
