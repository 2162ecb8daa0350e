/**
 * The LoRa modem command set (compatible with the RNode host↔modem protocol), sans-IO.
 *
 * Every command travels as a KISS frame whose whole type byte is the command code; the argument
 * follows as the frame's data. Multi-byte values are big-endian. The same message shapes flow in
 * both directions: the host sends a setting or a query (the query forms are noted in SPEC.md),
 * the modem answers with the value it now holds. `encodeLoraMessage` and `decodeLoraFrame`
 * mirror each other; decoding never throws.
 */
import { encodeKissType, type KissFrame } from './kiss.js';

export const LoraCommand = {
  DATA: 0x00,
  FREQUENCY: 0x01,
  BANDWIDTH: 0x02,
  TXPOWER: 0x03,
  SF: 0x04,
  CR: 0x05,
  RADIO_STATE: 0x06,
  DETECT: 0x08,
  IMPLICIT: 0x09,
  LEAVE: 0x0a,
  ST_ALOCK: 0x0b,
  LT_ALOCK: 0x0c,
  PROMISC: 0x0e,
  READY: 0x0f,
  STAT_RX: 0x21,
  STAT_TX: 0x22,
  STAT_RSSI: 0x23,
  STAT_SNR: 0x24,
  STAT_CHTM: 0x25,
  STAT_PHYPRM: 0x26,
  STAT_CSMA: 0x28,
  RANDOM: 0x40,
  PLATFORM: 0x48,
  MCU: 0x49,
  FW_VERSION: 0x50,
  /** The modem's boot notice (value RESET_NOTICE) after it started or was reset. */
  RESET: 0x55,
  ERROR: 0x90,
} as const;

/** The value of the RESET command an RNode-compatible modem sends when it has (re)started. */
export const RESET_NOTICE = 0xf8;

export type LoraCommandName =
  | 'data' | 'frequency' | 'bandwidth' | 'txpower' | 'sf' | 'cr' | 'radio-state' | 'detect'
  | 'implicit' | 'leave' | 'st-alock' | 'lt-alock' | 'promisc' | 'ready' | 'stat-rx' | 'stat-tx'
  | 'stat-rssi' | 'stat-snr' | 'stat-chtm' | 'stat-phyprm' | 'stat-csma' | 'random' | 'platform' | 'mcu'
  | 'fw-version' | 'reset' | 'error';

/** DETECT argument sent by the host, and the modem's answer. */
export const DETECT_REQUEST = 0x73;
export const DETECT_RESPONSE = 0x46;

export const RadioState = { OFF: 0x00, ON: 0x01, QUERY: 0xff } as const;

/** The query argument of one-byte settings (TXPOWER, SF, CR, RADIO_STATE). */
export const QUERY_U8 = 0xff;
/** The query argument of four-byte settings (FREQUENCY, BANDWIDTH). */
export const QUERY_U32 = 0;

/** RSSI travels as an unsigned byte: dBm = value − 157. */
export const RSSI_OFFSET = 157;

export const LoraModemError = {
  RADIO_INIT: 0x01,
  TX_FAILED: 0x02,
  EEPROM_LOCKED: 0x03,
  QUEUE_FULL: 0x04,
  MEMORY_LOW: 0x05,
  MODEM_TIMEOUT: 0x06,
} as const;

const ERROR_NAMES: Record<number, string> = {
  0x01: 'radio-init',
  0x02: 'tx-failed',
  0x03: 'eeprom-locked',
  0x04: 'queue-full',
  0x05: 'memory-low',
  0x06: 'modem-timeout',
};

export function loraErrorName(code: number): string {
  return ERROR_NAMES[code] ?? `error-0x${code.toString(16).padStart(2, '0')}`;
}

/** Channel statistics (STAT_CHTM). Percentages travel as u16 = percent × 100. */
export interface ChannelStats {
  airtimeShortPercent: number;
  airtimeLongPercent: number;
  channelLoadShortPercent: number;
  channelLoadLongPercent: number;
  /** Present in the 11-byte form only. */
  currentRssiDbm?: number;
  noiseFloorDbm?: number;
  /** Undefined when the modem reports none (0xFF). */
  interferenceDbm?: number;
}

/** Physical-layer parameters (STAT_PHYPRM), 12 bytes of u16 (older firmware: 10, without DIFS). */
export interface PhyParams {
  /** Symbol time in ms (travels in µs). */
  symbolTimeMs: number;
  symbolRate: number;
  preambleSymbols: number;
  preambleTimeMs: number;
  csmaSlotMs: number;
  /** Absent from older firmware's 10-byte form. */
  difsMs?: number;
}

export type LoraMessage =
  | { command: 'data'; data: Uint8Array }
  /** u32: Hz, or packet counters. 0 asks for frequency or bandwidth. */
  | { command: 'frequency' | 'bandwidth' | 'stat-rx' | 'stat-tx'; value: number }
  /** u8 arguments. 0xFF asks for txpower, sf, cr, radio-state. */
  | {
      command:
        | 'txpower' | 'sf' | 'cr' | 'radio-state' | 'detect' | 'implicit' | 'leave' | 'promisc'
        | 'ready' | 'random' | 'platform' | 'mcu' | 'reset' | 'error';
      value: number;
    }
  /** u16 = percent × 100. */
  | { command: 'st-alock' | 'lt-alock'; percent: number }
  | { command: 'stat-rssi'; dbm: number }
  /** i8 × 0.25 dB. */
  | { command: 'stat-snr'; db: number }
  | { command: 'fw-version'; major: number; minor: number }
  | ({ command: 'stat-chtm' } & ChannelStats)
  | ({ command: 'stat-phyprm' } & PhyParams)
  /** The contention window: its band (1..4) and the slots it is drawn from, min..max − 1. */
  | { command: 'stat-csma'; band: number; cwMin: number; cwMax: number }
  /**
   * A one-byte query (argument 0x00) of a command whose answer is longer than one byte:
   * FW_VERSION, STAT_RX, STAT_TX, STAT_CHTM, STAT_PHYPRM, the airtime locks, and (besides the
   * four-byte 0 form) FREQUENCY and BANDWIDTH.
   */
  | { command: 'query'; target: LoraCommandName };

/** The message shape of one command, e.g. `LoraMessageOf<'detect'>` is `{command; value}`. */
export type LoraMessageOf<T extends LoraMessage['command']> = LoraMessage extends infer M
  ? M extends { command: infer C }
    ? T extends C
      ? M & { command: T }
      : never
    : never
  : never;

type Layout = 'bytes' | 'u8' | 'u16' | 'u32' | 'custom';

const COMMANDS: ReadonlyArray<readonly [LoraCommandName, number, Layout]> = [
  ['data', LoraCommand.DATA, 'bytes'],
  ['frequency', LoraCommand.FREQUENCY, 'u32'],
  ['bandwidth', LoraCommand.BANDWIDTH, 'u32'],
  ['txpower', LoraCommand.TXPOWER, 'u8'],
  ['sf', LoraCommand.SF, 'u8'],
  ['cr', LoraCommand.CR, 'u8'],
  ['radio-state', LoraCommand.RADIO_STATE, 'u8'],
  ['detect', LoraCommand.DETECT, 'u8'],
  ['implicit', LoraCommand.IMPLICIT, 'u8'],
  ['leave', LoraCommand.LEAVE, 'u8'],
  ['st-alock', LoraCommand.ST_ALOCK, 'custom'],
  ['lt-alock', LoraCommand.LT_ALOCK, 'custom'],
  ['promisc', LoraCommand.PROMISC, 'u8'],
  ['ready', LoraCommand.READY, 'u8'],
  ['stat-rx', LoraCommand.STAT_RX, 'u32'],
  ['stat-tx', LoraCommand.STAT_TX, 'u32'],
  ['stat-rssi', LoraCommand.STAT_RSSI, 'custom'],
  ['stat-snr', LoraCommand.STAT_SNR, 'custom'],
  ['stat-chtm', LoraCommand.STAT_CHTM, 'custom'],
  ['stat-phyprm', LoraCommand.STAT_PHYPRM, 'custom'],
  ['stat-csma', LoraCommand.STAT_CSMA, 'custom'],
  ['random', LoraCommand.RANDOM, 'u8'],
  ['platform', LoraCommand.PLATFORM, 'u8'],
  ['mcu', LoraCommand.MCU, 'u8'],
  ['fw-version', LoraCommand.FW_VERSION, 'custom'],
  ['reset', LoraCommand.RESET, 'u8'],
  ['error', LoraCommand.ERROR, 'u8'],
];

const BY_NAME = new Map(COMMANDS.map(([name, code, layout]) => [name, { code, layout }]));
const BY_CODE = new Map(COMMANDS.map(([name, code, layout]) => [code, { name, layout }]));

export function loraCommandCode(name: LoraCommandName): number {
  return BY_NAME.get(name)!.code;
}

export function loraCommandName(code: number): LoraCommandName | undefined {
  return BY_CODE.get(code)?.name;
}

function checkInt(what: string, v: number, min: number, max: number): number {
  if (!Number.isInteger(v) || v < min || v > max) {
    throw new RangeError(`${what} must be an integer from ${min} to ${max}, got ${v}`);
  }
  return v;
}

function u16(v: number, what: string): number[] {
  checkInt(what, v, 0, 0xffff);
  return [v >> 8, v & 0xff];
}

function percentToWire(percent: number, what: string): number {
  return checkInt(what, Math.round(percent * 100), 0, 0xffff);
}

/** The argument bytes of a message (the KISS frame's data). Throws RangeError for bad values. */
export function loraMessageArgument(msg: LoraMessage): Uint8Array {
  if (msg.command === 'query') return Uint8Array.of(0x00);
  const layout = BY_NAME.get(msg.command)!.layout;
  switch (msg.command) {
    case 'data':
      return msg.data;
    case 'st-alock':
    case 'lt-alock':
      return Uint8Array.from(u16(percentToWire(msg.percent, `${msg.command} percent × 100`), msg.command));
    case 'stat-rssi':
      return Uint8Array.of(checkInt('stat-rssi dBm + 157', msg.dbm + RSSI_OFFSET, 0, 255));
    case 'stat-snr': {
      const q = checkInt('stat-snr dB × 4', Math.round(msg.db * 4), -128, 127);
      return Uint8Array.of(q & 0xff);
    }
    case 'fw-version':
      return Uint8Array.of(checkInt('fw major', msg.major, 0, 255), checkInt('fw minor', msg.minor, 0, 255));
    case 'stat-chtm': {
      const out = [
        ...u16(percentToWire(msg.airtimeShortPercent, 'airtime short'), 'airtime short'),
        ...u16(percentToWire(msg.airtimeLongPercent, 'airtime long'), 'airtime long'),
        ...u16(percentToWire(msg.channelLoadShortPercent, 'channel load short'), 'channel load short'),
        ...u16(percentToWire(msg.channelLoadLongPercent, 'channel load long'), 'channel load long'),
      ];
      if (msg.currentRssiDbm !== undefined || msg.noiseFloorDbm !== undefined || msg.interferenceDbm !== undefined) {
        // The 11-byte form; a measurement the modem lacks travels as 0 (−157 dBm: nothing heard).
        out.push(
          checkInt('current RSSI + 157', (msg.currentRssiDbm ?? -RSSI_OFFSET) + RSSI_OFFSET, 0, 255),
          checkInt('noise floor + 157', (msg.noiseFloorDbm ?? -RSSI_OFFSET) + RSSI_OFFSET, 0, 255),
          msg.interferenceDbm === undefined ? 0xff : checkInt('interference + 157', msg.interferenceDbm + RSSI_OFFSET, 0, 254),
        );
      }
      return Uint8Array.from(out);
    }
    case 'stat-phyprm':
      return Uint8Array.from([
        ...u16(Math.round(msg.symbolTimeMs * 1000), 'symbol time µs'),
        ...u16(msg.symbolRate, 'symbol rate'),
        ...u16(msg.preambleSymbols, 'preamble symbols'),
        ...u16(msg.preambleTimeMs, 'preamble time'),
        ...u16(msg.csmaSlotMs, 'CSMA slot'),
        ...(msg.difsMs !== undefined ? u16(msg.difsMs, 'DIFS') : []),
      ]);
    case 'stat-csma':
      return Uint8Array.of(checkInt('CSMA band', msg.band, 0, 255), checkInt('CW min', msg.cwMin, 0, 255), checkInt('CW max', msg.cwMax, 0, 255));
    default: {
      const v = msg.value;
      if (layout === 'u32') {
        checkInt(msg.command, v, 0, 0xffffffff);
        return Uint8Array.of(v >>> 24, (v >>> 16) & 0xff, (v >>> 8) & 0xff, v & 0xff);
      }
      return Uint8Array.of(checkInt(msg.command, v, 0, 255));
    }
  }
}

/** Encodes a message as a complete KISS frame. */
export function encodeLoraMessage(msg: LoraMessage): Uint8Array {
  const name = msg.command === 'query' ? msg.target : msg.command;
  return encodeKissType(BY_NAME.get(name)!.code, loraMessageArgument(msg));
}

export type LoraDecodeError =
  | { code: 'unknown-command'; type: number }
  | { code: 'bad-length'; command: LoraCommandName; length: number; expected: string };

export type LoraDecodeResult = { message: LoraMessage } | { error: LoraDecodeError };

const be16 = (d: Uint8Array, i: number): number => (d[i]! << 8) | d[i + 1]!;

/** Decodes one KISS frame as a LoRa modem message. Never throws. */
export function decodeLoraFrame(frame: Pick<KissFrame, 'type' | 'data'>): LoraDecodeResult {
  const entry = BY_CODE.get(frame.type);
  if (!entry) return { error: { code: 'unknown-command', type: frame.type } };
  const { name, layout } = entry;
  const d = frame.data;
  const bad = (expected: string): LoraDecodeResult => ({
    error: { code: 'bad-length', command: name, length: d.length, expected },
  });
  if (d.length === 1 && d[0] === 0x00 && (layout === 'u32' || layout === 'custom') && name !== 'stat-rssi' && name !== 'stat-snr') {
    return { message: { command: 'query', target: name } };
  }
  switch (name) {
    case 'data':
      return { message: { command: 'data', data: d } };
    case 'st-alock':
    case 'lt-alock':
      if (d.length !== 2) return bad('2');
      return { message: { command: name, percent: be16(d, 0) / 100 } };
    case 'stat-rssi':
      if (d.length !== 1) return bad('1');
      return { message: { command: name, dbm: d[0]! - RSSI_OFFSET } };
    case 'stat-snr':
      if (d.length !== 1) return bad('1');
      return { message: { command: name, db: ((d[0]! << 24) >> 24) / 4 } };
    case 'fw-version':
      if (d.length !== 2) return bad('2');
      return { message: { command: name, major: d[0]!, minor: d[1]! } };
    case 'stat-chtm': {
      if (d.length !== 8 && d.length !== 11) return bad('8 or 11');
      const stats: ChannelStats = {
        airtimeShortPercent: be16(d, 0) / 100,
        airtimeLongPercent: be16(d, 2) / 100,
        channelLoadShortPercent: be16(d, 4) / 100,
        channelLoadLongPercent: be16(d, 6) / 100,
      };
      if (d.length === 11) {
        stats.currentRssiDbm = d[8]! - RSSI_OFFSET;
        stats.noiseFloorDbm = d[9]! - RSSI_OFFSET;
        if (d[10] !== 0xff) stats.interferenceDbm = d[10]! - RSSI_OFFSET;
      }
      return { message: { command: name, ...stats } };
    }
    case 'stat-phyprm':
      if (d.length !== 12 && d.length !== 10) return bad('12 (10 from older firmware)');
      return {
        message: {
          command: name,
          symbolTimeMs: be16(d, 0) / 1000,
          symbolRate: be16(d, 2),
          preambleSymbols: be16(d, 4),
          preambleTimeMs: be16(d, 6),
          csmaSlotMs: be16(d, 8),
          ...(d.length === 12 ? { difsMs: be16(d, 10) } : {}),
        },
      };
    case 'stat-csma':
      if (d.length !== 3) return bad('3');
      return { message: { command: name, band: d[0]!, cwMin: d[1]!, cwMax: d[2]! } };
    default:
      if (layout === 'u32') {
        if (d.length !== 4) return bad('4');
        return { message: { command: name, value: ((d[0]! << 24) | (d[1]! << 16) | (d[2]! << 8) | d[3]!) >>> 0 } as LoraMessage };
      }
      if (d.length !== 1) return bad('1');
      return { message: { command: name, value: d[0]! } as LoraMessage };
  }
}
