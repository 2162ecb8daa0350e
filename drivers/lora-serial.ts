/**
 * lora-serial: a LoRa modem speaking the command set of firmware-protocol/SPEC.md (RNode
 * compatible) on a serial device.
 *
 * Open (SPEC.md §2.4): first 100 ms of listening, discarding what the device sends unasked (and
 * refusing one that answers DETECT unasked), then DETECT (answer must be 0x46), FW_VERSION (checked against a minimum when
 * configured), PLATFORM and MCU (informational), then FREQUENCY, BANDWIDTH, TXPOWER, SF, CR —
 * each echo compared with what was asked — the airtime locks when configured, and RADIO_STATE on.
 * Any failure names the step and the value, and the link retries with backoff.
 *
 * Frames and airtime: RNode firmware takes DATA frames of up to 508 bytes and sends each LoRa
 * packet with a one-byte header, splitting a frame of 255 bytes or more over two packets; the MTU
 * is 507 by default (508 costs a third, header-only packet) and every frame is costed as the
 * packets it becomes, at the firmware's preamble (src/link/airtime/lora-rnode.ts). When the modem
 * reports its timing (STAT_PHYPRM), a preamble longer than the model's is logged: the pacer would
 * under-count airtime.
 *
 * Flow control: after a DATA frame, the next waits for READY; once the frame's airtime has passed
 * the host asks for it (RNode firmware answers READY only when asked), and after a further margin
 * without an answer it goes on. STAT_RSSI and STAT_SNR that precede a
 * received frame are attached to it; channel statistics and errors become link stats/counters.
 */
import { KissDecoder } from '../firmware-protocol/kiss.js';
import {
  DETECT_REQUEST,
  DETECT_RESPONSE,
  RESET_NOTICE,
  RadioState,
  decodeLoraFrame,
  encodeLoraMessage,
  loraErrorName,
  type LoraMessage,
  type LoraMessageOf,
} from '../firmware-protocol/lora-modem.js';
import { RNODE_HOST_MTU, RNODE_RECOMMENDED_MTU, RNodeAirtimeModel } from '../src/link/airtime/lora-rnode.js';
import { serialOpener, type ByteStream } from '../src/link/byte-stream.js';
import { countDrop, type QueuedFrame } from '../src/link/link.js';
import type { BackoffOptions } from '../src/link/backoff.js';
import { StreamLink } from './stream-link.js';

export interface LoraRadioConfig {
  frequency: number;
  bandwidth: number;
  sf: number;
  cr: number;
  txPower: number;
}

export interface LoraSerialOptions {
  name: string;
  path: string;
  baudRate?: number;
  radio: LoraRadioConfig;
  /** Airtime locks sent to the modem (percent of 15 s and of 1 h). */
  shortAirtimeLockPercent?: number;
  longAirtimeLockPercent?: number;
  /** Refuse firmware older than this [major, minor]. */
  minFirmware?: readonly [number, number];
  /**
   * Largest frame, 1..508: default 507 (RNode splits frames of 255 bytes or more over two LoRa
   * packets); 254 keeps every frame in one packet.
   */
  mtu?: number;
  /** How long the open sequence discards what the device sends before DETECT, ms; default 100. */
  flushMs?: number;
  /** Reply timeouts, ms: DETECT 2000, others 1000 by default. */
  detectTimeoutMs?: number;
  replyTimeoutMs?: number;
  queueCap?: number;
  backoff?: BackoffOptions;
  log?: (line: string) => void;
}

type Name = LoraMessage['command'];

interface Waiter {
  command: Name;
  resolve: (m: LoraMessage) => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout;
}

/** Extra time allowed for READY beyond the frame's airtime (serial latency, CSMA waits). */
const READY_MARGIN_MS = 500;
/** The open sequence first listens this long, ms, discarding (and checking) what the device sends unasked. */
const FLUSH_MS = 100;

export class LoraSerialLink extends StreamLink {
  readonly loraParams: { frequency: number; bandwidth: number; sf: number };
  private readonly radio: LoraRadioConfig;
  private readonly opts: LoraSerialOptions;
  private decoder = new KissDecoder({ maxFrame: 1024 });
  private waiters: Waiter[] = [];
  /** Set while the open sequence discards what the modem sent before it was asked anything. */
  private flushing: { detects: number } | undefined;
  private rssi: number | undefined;
  private snr: number | undefined;
  private awaitingReady = false;
  private preambleWarned: number | undefined;
  /** The airtime model the link was built with (also `this.airtime`). */
  private readonly model: RNodeAirtimeModel;
  private readyTimer: NodeJS.Timeout | undefined;

  constructor(options: LoraSerialOptions) {
    const { sf, bandwidth, cr } = options.radio;
    const mtu = options.mtu ?? RNODE_RECOMMENDED_MTU;
    if (!Number.isInteger(mtu) || mtu < 1 || mtu > RNODE_HOST_MTU) {
      throw new RangeError(`a LoRa modem's MTU is 1 to ${RNODE_HOST_MTU} bytes, got ${mtu}`);
    }
    const model = new RNodeAirtimeModel({ sf, bandwidth, cr }, mtu);
    super({
      name: options.name,
      kind: 'lora-serial',
      mtu,
      airtime: model,
      bitRate: Math.round((sf * bandwidth * 4) / (2 ** sf * cr)),
      opener: serialOpener(options.path, options.baudRate ?? 115_200),
      ...(options.queueCap !== undefined ? { queueCap: options.queueCap } : {}),
      ...(options.backoff ? { backoff: options.backoff } : {}),
      ...(options.log ? { log: options.log } : {}),
    });
    this.model = model;
    this.radio = options.radio;
    this.opts = options;
    this.loraParams = { frequency: options.radio.frequency, bandwidth, sf };
  }

  protected resetConnection(): void {
    this.decoder = new KissDecoder({ maxFrame: 1024 });
    this.flushing = undefined;
    this.rssi = undefined;
    this.snr = undefined;
    this.clearReady();
    for (const w of this.waiters) {
      clearTimeout(w.timer);
      w.reject(new Error('connection reset'));
    }
    this.waiters = [];
  }

  protected override async handshake(stream: ByteStream): Promise<void> {
    // What the device sent before we asked anything (a previous session's answers, a boot
    // banner) is discarded; a device that answers DETECT unasked is not one to trust with the
    // handshake: its "answer" would come whatever we sent.
    this.flushing = { detects: 0 };
    await new Promise((r) => setTimeout(r, this.opts.flushMs ?? FLUSH_MS));
    const unasked = this.flushing?.detects ?? 0;
    this.flushing = undefined;
    if (unasked > 0) throw new Error(`the device sent ${unasked} DETECT answer(s) unasked in ${this.opts.flushMs ?? FLUSH_MS} ms: not an RNode-compatible modem, or another program is talking to it`);
    const detect = await this.request(stream, { command: 'detect', value: DETECT_REQUEST }, 'detect', this.opts.detectTimeoutMs ?? 2_000)
      .catch(() => {
        throw new Error('no modem detected (no answer to DETECT)');
      });
    if (detect.value !== DETECT_RESPONSE) throw new Error(`no modem detected (DETECT answered 0x${detect.value.toString(16)})`);

    const fw = await this.request(stream, { command: 'query', target: 'fw-version' }, 'fw-version');
    this.stats.firmware = `${fw.major}.${fw.minor}`;
    const min = this.opts.minFirmware;
    if (min && (fw.major < min[0] || (fw.major === min[0] && fw.minor < min[1]))) {
      throw new Error(`modem firmware ${fw.major}.${fw.minor} is older than the required ${min[0]}.${min[1]}`);
    }
    const platform = await this.request(stream, { command: 'platform', value: 0 }, 'platform').catch(() => undefined);
    if (platform) this.stats.platform = `0x${platform.value.toString(16)}`;

    const r = this.radio;
    await this.configure(stream, 'frequency', r.frequency, (got) => Math.abs(got - r.frequency) <= 100);
    await this.configure(stream, 'bandwidth', r.bandwidth);
    await this.configure(stream, 'txpower', r.txPower);
    await this.configure(stream, 'sf', r.sf);
    await this.configure(stream, 'cr', r.cr);
    for (const [command, percent] of [
      ['st-alock', this.opts.shortAirtimeLockPercent],
      ['lt-alock', this.opts.longAirtimeLockPercent],
    ] as const) {
      if (percent === undefined) continue;
      const echo = await this.request(stream, { command, percent }, command);
      // RNode answers 0 for ≥ 100 % and may truncate by 0.01 (SPEC.md, ST_ALOCK).
      const accepted = percent >= 100 ? echo.percent === 0 : echo.percent <= percent && percent - echo.percent <= 0.011;
      if (!accepted) throw new Error(`modem refused ${command}: asked ${percent} %, modem has ${echo.percent} %`);
    }
    const on = await this.request(stream, { command: 'radio-state', value: RadioState.ON }, 'radio-state');
    if (on.value !== RadioState.ON) throw new Error('modem kept the radio off');
  }

  private async configure(
    stream: ByteStream,
    command: 'frequency' | 'bandwidth' | 'txpower' | 'sf' | 'cr',
    value: number,
    accept: (got: number) => boolean = (got) => got === value,
  ): Promise<void> {
    const echo = await this.request(stream, { command, value }, command);
    if (!accept(echo.value)) throw new Error(`modem refused ${command}: asked ${value}, modem has ${echo.value}`);
    this.stats[command] = echo.value;
  }

  /** Sends `msg` and waits for the first `reply` message; rejects on timeout or ERROR 01. */
  private request<T extends Name>(stream: ByteStream, msg: LoraMessage, reply: T, timeoutMs = this.opts.replyTimeoutMs ?? 1_000): Promise<LoraMessageOf<T>> {
    return new Promise((resolve, reject) => {
      const waiter: Waiter = {
        command: reply,
        resolve: resolve as (m: LoraMessage) => void,
        reject,
        timer: setTimeout(() => {
          this.waiters = this.waiters.filter((w) => w !== waiter);
          reject(new Error(`no answer to ${reply.toUpperCase()} within ${timeoutMs} ms`));
        }, timeoutMs),
      };
      this.waiters.push(waiter);
      stream.write(encodeLoraMessage(msg));
    });
  }

  protected encodeFrame(frame: QueuedFrame): Uint8Array {
    return encodeLoraMessage({ command: 'data', data: frame.data });
  }

  protected override canWrite(): boolean {
    return !this.awaitingReady;
  }

  /**
   * After a DATA frame: wait for READY. Modems that send it by themselves release the next frame
   * at once; RNode firmware only answers when asked, so once the frame's airtime has passed the
   * host asks (READY query), and if nothing answers within the margin it goes on anyway.
   */
  protected override afterWrite(frame: QueuedFrame): void {
    this.awaitingReady = true;
    const airtimeMs = this.airtime.airtimeMs(frame.data.length);
    this.readyTimer = setTimeout(() => {
      this.stream?.write(encodeLoraMessage({ command: 'ready', value: 0 }));
      this.readyTimer = setTimeout(() => {
        this.stats.readyTimeouts = ((this.stats.readyTimeouts as number | undefined) ?? 0) + 1;
        this.onReady();
      }, READY_MARGIN_MS);
    }, airtimeMs);
  }

  private clearReady(): void {
    if (this.readyTimer) clearTimeout(this.readyTimer);
    this.readyTimer = undefined;
    this.awaitingReady = false;
  }

  private onReady(): void {
    this.clearReady();
    this.pump();
  }

  protected override async beforeClose(stream: ByteStream): Promise<void> {
    this.clearReady();
    stream.write(encodeLoraMessage({ command: 'leave', value: 0xff }));
  }

  protected onBytes(bytes: Uint8Array): void {
    for (const e of this.decoder.push(bytes)) {
      if ('error' in e) {
        this.counters.decodeErrors++;
        continue;
      }
      const r = decodeLoraFrame(e.frame);
      if ('error' in r) {
        this.counters.decodeErrors++;
        continue;
      }
      this.onMessage(r.message);
    }
  }

  private onMessage(m: LoraMessage): void {
    if (this.flushing) {
      if (m.command === 'detect') this.flushing.detects++;
      return;
    }
    const i = this.waiters.findIndex((w) => w.command === m.command);
    if (i >= 0) {
      const [w] = this.waiters.splice(i, 1);
      clearTimeout(w!.timer);
      w!.resolve(m);
      return;
    }
    switch (m.command) {
      case 'reset':
        // The boot notice: the modem restarted with its radio off and its defaults.
        if (m.value === RESET_NOTICE && this.state === 'up') this.restart('the modem restarted (boot notice): configuring it again');
        return;
      case 'data':
        this.deliver({
          data: m.data.slice(),
          at: Date.now(),
          ...(this.rssi !== undefined ? { rssiDbm: this.rssi } : {}),
          ...(this.snr !== undefined ? { snrDb: this.snr } : {}),
        });
        this.rssi = undefined;
        this.snr = undefined;
        return;
      case 'stat-rssi':
        this.rssi = m.dbm;
        this.stats.lastRssiDbm = m.dbm;
        return;
      case 'stat-snr':
        this.snr = m.db;
        this.stats.lastSnrDb = m.db;
        return;
      case 'ready':
        if (m.value === 1 && this.awaitingReady) this.onReady();
        return;
      case 'stat-phyprm': {
        Object.assign(this.stats, { preambleSymbols: m.preambleSymbols, csmaSlotMs: m.csmaSlotMs, ...(m.difsMs !== undefined ? { difsMs: m.difsMs } : {}) });
        const assumed = this.model.preambleSymbols;
        if (m.preambleSymbols > assumed && this.preambleWarned !== m.preambleSymbols) {
          this.preambleWarned = m.preambleSymbols;
          this.log(`${this.name}: the modem sends ${m.preambleSymbols} preamble symbols, the airtime model counts ${assumed}: each packet's airtime is under-counted by ${Math.round((m.preambleSymbols - assumed) * m.symbolTimeMs)} ms`);
        }
        return;
      }
      case 'stat-csma':
        Object.assign(this.stats, { csmaBand: m.band, cwMinSlots: m.cwMin, cwMaxSlots: m.cwMax });
        return;
      case 'stat-chtm':
        Object.assign(this.stats, {
          airtimeShortPercent: m.airtimeShortPercent,
          airtimeLongPercent: m.airtimeLongPercent,
          channelLoadShortPercent: m.channelLoadShortPercent,
          channelLoadLongPercent: m.channelLoadLongPercent,
          noiseFloorDbm: m.noiseFloorDbm,
        });
        return;
      case 'error': {
        const name = loraErrorName(m.value);
        countDrop(this.counters, `modem-error-${name}`);
        this.stats.lastError = name;
        this.log(`${this.name}: modem reports ${name}`);
        if (this.waiters.length > 0 && m.value === 0x01) {
          for (const w of this.waiters.splice(0)) {
            clearTimeout(w.timer);
            w.reject(new Error('radio init failed (modem ERROR 0x01)'));
          }
        }
        return;
      }
      default:
        return;
    }
  }
}

export function loraSerialLink(options: LoraSerialOptions): LoraSerialLink {
  return new LoraSerialLink(options);
}
