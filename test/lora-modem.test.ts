/**
 * Tests for the typed LoRa modem codec (firmware-protocol/lora-modem.ts): every message kind
 * through encode → KISS decode → decodeLoraFrame with edge values, exact bytes of hand-computed
 * frames (the ones SPEC.md shows), the query forms, the typed decode errors, RangeError on
 * out-of-range values, and robustness on arbitrary frames.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { KissDecoder, encodeKissType, type KissFrame } from '../firmware-protocol/kiss.js';
import {
  DETECT_REQUEST,
  DETECT_RESPONSE,
  LoraCommand,
  LoraModemError,
  QUERY_U32,
  QUERY_U8,
  RSSI_OFFSET,
  RadioState,
  decodeLoraFrame,
  encodeLoraMessage,
  loraCommandCode,
  loraCommandName,
  loraErrorName,
  loraMessageArgument,
  type LoraCommandName,
  type LoraDecodeResult,
  type LoraMessage,
} from '../firmware-protocol/lora-modem.js';

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/** "C0 01 33" → bytes. */
const hex = (s: string): Uint8Array =>
  Uint8Array.from(s.trim().split(/\s+/).filter(Boolean).map((h) => parseInt(h, 16)));

const toHex = (b: Uint8Array): string =>
  Array.from(b, (x) => x.toString(16).toUpperCase().padStart(2, '0')).join(' ');

/** The one KISS frame in `wire`, decoded by a fresh KissDecoder. */
function kissFrameOf(wire: Uint8Array): KissFrame {
  const events = new KissDecoder().push(wire);
  expect(events).toHaveLength(1);
  const e = events[0]!;
  if ('error' in e) throw new Error(`framing error ${e.error.code} at ${e.error.offset}`);
  return e.frame;
}

/** encode → KISS decode → decodeLoraFrame. */
function roundTrip(msg: LoraMessage): LoraDecodeResult {
  return decodeLoraFrame(kissFrameOf(encodeLoraMessage(msg)));
}

function expectRoundTrip(msg: LoraMessage): void {
  expect(roundTrip(msg)).toEqual({ message: msg });
}

function frame(type: number, data: Uint8Array | number[]): Pick<KissFrame, 'type' | 'data'> {
  return { type, data: data instanceof Uint8Array ? data : Uint8Array.from(data) };
}

const ALL_NAMES: readonly LoraCommandName[] = [
  'data', 'frequency', 'bandwidth', 'txpower', 'sf', 'cr', 'radio-state', 'detect', 'implicit',
  'leave', 'st-alock', 'lt-alock', 'promisc', 'ready', 'stat-rx', 'stat-tx', 'stat-rssi',
  'stat-snr', 'stat-chtm', 'stat-phyprm', 'stat-csma', 'random', 'platform', 'mcu', 'fw-version', 'reset', 'error',
];

const U32_COMMANDS = ['frequency', 'bandwidth', 'stat-rx', 'stat-tx'] as const;
const U8_COMMANDS = [
  'txpower', 'sf', 'cr', 'radio-state', 'detect', 'implicit', 'leave', 'promisc', 'ready',
  'random', 'platform', 'mcu', 'reset', 'error',
] as const;
/** Commands whose one-byte 0x00 argument is the query form. */
const QUERY_TARGETS = [
  'frequency', 'bandwidth', 'stat-rx', 'stat-tx', 'st-alock', 'lt-alock', 'stat-chtm',
  'stat-phyprm', 'fw-version',
] as const;

// ---------------------------------------------------------------------------------------------
// Command table
// ---------------------------------------------------------------------------------------------

describe('command table', () => {
  it('has the codes of the RNode command set', () => {
    expect(LoraCommand).toEqual({
      DATA: 0x00, FREQUENCY: 0x01, BANDWIDTH: 0x02, TXPOWER: 0x03, SF: 0x04, CR: 0x05,
      RADIO_STATE: 0x06, DETECT: 0x08, IMPLICIT: 0x09, LEAVE: 0x0a, ST_ALOCK: 0x0b,
      LT_ALOCK: 0x0c, PROMISC: 0x0e, READY: 0x0f, STAT_RX: 0x21, STAT_TX: 0x22, STAT_RSSI: 0x23,
      STAT_SNR: 0x24, STAT_CHTM: 0x25, STAT_PHYPRM: 0x26, STAT_CSMA: 0x28, RANDOM: 0x40, PLATFORM: 0x48, MCU: 0x49,
      FW_VERSION: 0x50, RESET: 0x55, ERROR: 0x90,
    });
    expect(DETECT_REQUEST).toBe(0x73);
    expect(DETECT_RESPONSE).toBe(0x46);
    expect(RadioState).toEqual({ OFF: 0, ON: 1, QUERY: 0xff });
    expect(QUERY_U8).toBe(0xff);
    expect(QUERY_U32).toBe(0);
    expect(RSSI_OFFSET).toBe(157);
  });

  it('maps names to codes and back for every command', () => {
    for (const name of ALL_NAMES) expect(loraCommandName(loraCommandCode(name))).toBe(name);
    const codes = new Set(ALL_NAMES.map(loraCommandCode));
    expect(codes.size).toBe(ALL_NAMES.length);
    expect(loraCommandName(0x07)).toBeUndefined();
  });

  it('names the error codes', () => {
    expect(LoraModemError).toEqual({
      RADIO_INIT: 1, TX_FAILED: 2, EEPROM_LOCKED: 3, QUEUE_FULL: 4, MEMORY_LOW: 5, MODEM_TIMEOUT: 6,
    });
    expect([1, 2, 3, 4, 5, 6].map(loraErrorName)).toEqual([
      'radio-init', 'tx-failed', 'eeprom-locked', 'queue-full', 'memory-low', 'modem-timeout',
    ]);
    expect(loraErrorName(0x10)).toBe('error-0x10');
    expect(loraErrorName(0)).toBe('error-0x00');
  });
});

// ---------------------------------------------------------------------------------------------
// Round trips
// ---------------------------------------------------------------------------------------------

describe('round trip encode → KISS decode → decodeLoraFrame', () => {
  it('DATA: empty, plain, every byte value, the stuffed bytes, 255 and 508 bytes', () => {
    const every = Uint8Array.from({ length: 256 }, (_, i) => i);
    for (const data of [
      new Uint8Array(0),
      hex('48 65 6C 6C 6F'),
      hex('C0'),
      hex('DB'),
      hex('C0 DB DC DD C0 C0 DB DB'),
      every,
      new Uint8Array(255).fill(0xc0),
      Uint8Array.from({ length: 508 }, (_, i) => (i * 37) & 0xff),
    ]) {
      expectRoundTrip({ command: 'data', data });
    }
  });

  it('u32 settings and counters: 0, 1, typical, max', () => {
    for (const command of U32_COMMANDS) {
      for (const value of [0, 1, 0xc0, 0xdb, 0xc0dbdcdd, 869_525_000, 0x7fffffff, 0x80000000, 0xffffffff]) {
        expectRoundTrip({ command, value });
      }
    }
    expectRoundTrip({ command: 'frequency', value: 433_775_000 });
    expectRoundTrip({ command: 'bandwidth', value: 7_800 });
    expectRoundTrip({ command: 'bandwidth', value: 1_625_000 });
  });

  it('u8 arguments: 0, 1, the stuffed bytes, 0xFF', () => {
    for (const command of U8_COMMANDS) {
      for (const value of [0, 1, 0x46, 0x73, 0xc0, 0xdb, 0xfe, 0xff]) {
        expectRoundTrip({ command, value });
      }
    }
  });

  it('airtime locks: 0, 0.01, 10.5, 100, 655.35 percent', () => {
    for (const command of ['st-alock', 'lt-alock'] as const) {
      for (const percent of [0, 0.01, 0.29, 1.05, 10.5, 25, 99.99, 100, 655.35]) {
        expectRoundTrip({ command, percent });
      }
    }
  });

  it('STAT_RSSI: −157 (0x00) to +98 (0xFF) dBm, including −120 and 0', () => {
    for (const dbm of [-157, -156, -139, -120, -100, -64, -1, 0, 1, 62, 98]) {
      expectRoundTrip({ command: 'stat-rssi', dbm });
    }
  });

  it('STAT_SNR: −32 to +31.75 dB in quarter steps, negatives included', () => {
    for (let q = -128; q <= 127; q++) expectRoundTrip({ command: 'stat-snr', db: q / 4 });
  });

  it('FW_VERSION: 0.0, 1.82, 255.255', () => {
    for (const [major, minor] of [[0, 0], [1, 82], [255, 255], [0xc0, 0xdb]] as const) {
      expectRoundTrip({ command: 'fw-version', major, minor });
    }
  });

  it('STAT_CHTM: the 8-byte form', () => {
    expectRoundTrip({
      command: 'stat-chtm',
      airtimeShortPercent: 0, airtimeLongPercent: 0, channelLoadShortPercent: 0, channelLoadLongPercent: 0,
    });
    expectRoundTrip({
      command: 'stat-chtm',
      airtimeShortPercent: 1.5, airtimeLongPercent: 0.25, channelLoadShortPercent: 12, channelLoadLongPercent: 3.75,
    });
    expectRoundTrip({
      command: 'stat-chtm',
      airtimeShortPercent: 655.35, airtimeLongPercent: 655.35, channelLoadShortPercent: 655.35, channelLoadLongPercent: 655.35,
    });
  });

  it('STAT_CHTM: the 11-byte form with and without interference', () => {
    const base = {
      command: 'stat-chtm',
      airtimeShortPercent: 4.2, airtimeLongPercent: 0.7, channelLoadShortPercent: 33.33, channelLoadLongPercent: 8,
    } as const;
    expectRoundTrip({ ...base, currentRssiDbm: -110, noiseFloorDbm: -118 });
    expectRoundTrip({ ...base, currentRssiDbm: -95, noiseFloorDbm: -118, interferenceDbm: -95 });
    expectRoundTrip({ ...base, currentRssiDbm: -157, noiseFloorDbm: -157, interferenceDbm: -157 });
    // 0xFE is the highest interference byte: 0xFF means "none".
    expectRoundTrip({ ...base, currentRssiDbm: 98, noiseFloorDbm: 98, interferenceDbm: 97 });
  });

  it('STAT_PHYPRM: zeros, a typical SF8/125 kHz set, maxima', () => {
    expectRoundTrip({
      command: 'stat-phyprm',
      symbolTimeMs: 0, symbolRate: 0, preambleSymbols: 0, preambleTimeMs: 0, csmaSlotMs: 0, difsMs: 0,
    });
    expectRoundTrip({
      command: 'stat-phyprm',
      symbolTimeMs: 2.048, symbolRate: 488, preambleSymbols: 18, preambleTimeMs: 37, csmaSlotMs: 24, difsMs: 48,
    });
    expectRoundTrip({
      command: 'stat-phyprm',
      symbolTimeMs: 65.535, symbolRate: 65535, preambleSymbols: 65535, preambleTimeMs: 65535, csmaSlotMs: 65535, difsMs: 65535,
    });
    // Older firmware: 10 bytes, no DIFS.
    expectRoundTrip({ command: 'stat-phyprm', symbolTimeMs: 1.024, symbolRate: 976, preambleSymbols: 18, preambleTimeMs: 18, csmaSlotMs: 12 });
  });

  it('STAT_CSMA: band and contention window, exactly three bytes', () => {
    expectRoundTrip({ command: 'stat-csma', band: 2, cwMin: 15, cwMax: 29 });
    expect(encodeLoraMessage({ command: 'stat-csma', band: 4, cwMin: 45, cwMax: 59 })).toEqual(Uint8Array.of(0xc0, 0x28, 4, 45, 59, 0xc0));
    expect(decodeLoraFrame(frame(0x28, [1, 0]))).toEqual({ error: { code: 'bad-length', command: 'stat-csma', length: 2, expected: '3' } });
  });

  it('the one-byte query of every command that answers with more than one byte', () => {
    for (const target of QUERY_TARGETS) expectRoundTrip({ command: 'query', target });
  });
});

// ---------------------------------------------------------------------------------------------
// Exact bytes
// ---------------------------------------------------------------------------------------------

describe('exact bytes of hand-computed frames', () => {
  const cases: ReadonlyArray<readonly [string, LoraMessage, string]> = [
    // 869 525 000 = 0x33D3E608
    ['FREQUENCY 869.525 MHz', { command: 'frequency', value: 869_525_000 }, 'C0 01 33 D3 E6 08 C0'],
    // 125 000 = 0x0001E848
    ['BANDWIDTH 125 kHz', { command: 'bandwidth', value: 125_000 }, 'C0 02 00 01 E8 48 C0'],
    // The boot notice of ESP32 and nRF52 RNodes.
    ['RESET F8 (boot notice)', { command: 'reset', value: 0xf8 }, 'C0 55 F8 C0'],
    ['TXPOWER 14 dBm', { command: 'txpower', value: 14 }, 'C0 03 0E C0'],
    ['SF 8', { command: 'sf', value: 8 }, 'C0 04 08 C0'],
    ['CR 4/5', { command: 'cr', value: 5 }, 'C0 05 05 C0'],
    ['RADIO_STATE on', { command: 'radio-state', value: RadioState.ON }, 'C0 06 01 C0'],
    ['DETECT request', { command: 'detect', value: DETECT_REQUEST }, 'C0 08 73 C0'],
    ['DETECT answer', { command: 'detect', value: DETECT_RESPONSE }, 'C0 08 46 C0'],
    ['LEAVE', { command: 'leave', value: 0xff }, 'C0 0A FF C0'],
    // 10.5 % × 100 = 1050 = 0x041A
    ['ST_ALOCK 10.5 %', { command: 'st-alock', percent: 10.5 }, 'C0 0B 04 1A C0'],
    ['LT_ALOCK 1 %', { command: 'lt-alock', percent: 1 }, 'C0 0C 00 64 C0'],
    ['READY', { command: 'ready', value: 1 }, 'C0 0F 01 C0'],
    // −120 + 157 = 37 = 0x25
    ['STAT_RSSI −120 dBm', { command: 'stat-rssi', dbm: -120 }, 'C0 23 25 C0'],
    // −7.25 × 4 = −29 = 0xE3 (two's complement)
    ['STAT_SNR −7.25 dB', { command: 'stat-snr', db: -7.25 }, 'C0 24 E3 C0'],
    ['STAT_SNR +9.5 dB', { command: 'stat-snr', db: 9.5 }, 'C0 24 26 C0'],
    ['FW_VERSION 1.82', { command: 'fw-version', major: 1, minor: 82 }, 'C0 50 01 52 C0'],
    ['PLATFORM ESP32', { command: 'platform', value: 0x80 }, 'C0 48 80 C0'],
    ['MCU ESP32', { command: 'mcu', value: 0x81 }, 'C0 49 81 C0'],
    ['ERROR radio init', { command: 'error', value: LoraModemError.RADIO_INIT }, 'C0 90 01 C0'],
    ['STAT_RX 1000', { command: 'stat-rx', value: 1000 }, 'C0 21 00 00 03 E8 C0'],
    // 1.5 % → 0x0096, 0.25 % → 0x0019, 12 % → 0x04B0, 3.75 % → 0x0177
    [
      'STAT_CHTM, 8 bytes',
      {
        command: 'stat-chtm',
        airtimeShortPercent: 1.5, airtimeLongPercent: 0.25, channelLoadShortPercent: 12, channelLoadLongPercent: 3.75,
      },
      'C0 25 00 96 00 19 04 B0 01 77 C0',
    ],
    // −110 + 157 = 0x2F, −118 + 157 = 0x27, interference absent = 0xFF
    [
      'STAT_CHTM, 11 bytes, no interference',
      {
        command: 'stat-chtm',
        airtimeShortPercent: 1.5, airtimeLongPercent: 0.25, channelLoadShortPercent: 12, channelLoadLongPercent: 3.75,
        currentRssiDbm: -110, noiseFloorDbm: -118,
      },
      'C0 25 00 96 00 19 04 B0 01 77 2F 27 FF C0',
    ],
    [
      'STAT_CHTM, 11 bytes, interference at −95 dBm (0x3E)',
      {
        command: 'stat-chtm',
        airtimeShortPercent: 0, airtimeLongPercent: 0, channelLoadShortPercent: 0, channelLoadLongPercent: 0,
        currentRssiDbm: -95, noiseFloorDbm: -118, interferenceDbm: -95,
      },
      'C0 25 00 00 00 00 00 00 00 00 3E 27 3E C0',
    ],
    // 2.048 ms = 2048 µs = 0x0800; 488 baud = 0x01E8
    [
      'STAT_PHYPRM',
      {
        command: 'stat-phyprm',
        symbolTimeMs: 2.048, symbolRate: 488, preambleSymbols: 18, preambleTimeMs: 37, csmaSlotMs: 24, difsMs: 48,
      },
      'C0 26 08 00 01 E8 00 12 00 25 00 18 00 30 C0',
    ],
    // Stuffing inside DATA: C0 → DB DC, DB → DB DD
    ['DATA with C0 and DB', { command: 'data', data: hex('01 C0 02 DB 03') }, 'C0 00 01 DB DC 02 DB DD 03 C0'],
    // Stuffing inside arguments: 0x00C0DB01
    ['FREQUENCY with stuffed bytes', { command: 'frequency', value: 0x00c0db01 }, 'C0 01 00 DB DC DB DD 01 C0'],
    // −16 dB × 4 = −64 = 0xC0
    ['STAT_SNR −16 dB (byte C0, stuffed)', { command: 'stat-snr', db: -16 }, 'C0 24 DB DC C0'],
    // 62 + 157 = 219 = 0xDB
    ['STAT_RSSI +62 dBm (byte DB, stuffed)', { command: 'stat-rssi', dbm: 62 }, 'C0 23 DB DD C0'],
  ];

  for (const [name, msg, wire] of cases) {
    it(name, () => {
      expect(toHex(encodeLoraMessage(msg))).toBe(wire);
      expect(decodeLoraFrame(kissFrameOf(hex(wire)))).toEqual({ message: msg });
    });
  }

  it('loraMessageArgument is the unstuffed data of the frame', () => {
    expect(toHex(loraMessageArgument({ command: 'frequency', value: 0x00c0db01 }))).toBe('00 C0 DB 01');
    expect(toHex(loraMessageArgument({ command: 'query', target: 'stat-chtm' }))).toBe('00');
  });
});

// ---------------------------------------------------------------------------------------------
// Query forms
// ---------------------------------------------------------------------------------------------

describe('query forms', () => {
  it('one-byte settings are asked with 0xFF', () => {
    expect(toHex(encodeLoraMessage({ command: 'txpower', value: QUERY_U8 }))).toBe('C0 03 FF C0');
    expect(toHex(encodeLoraMessage({ command: 'sf', value: QUERY_U8 }))).toBe('C0 04 FF C0');
    expect(toHex(encodeLoraMessage({ command: 'cr', value: QUERY_U8 }))).toBe('C0 05 FF C0');
    expect(toHex(encodeLoraMessage({ command: 'radio-state', value: RadioState.QUERY }))).toBe('C0 06 FF C0');
  });

  it('frequency and bandwidth are asked with 0 as a u32', () => {
    expect(toHex(encodeLoraMessage({ command: 'frequency', value: QUERY_U32 }))).toBe('C0 01 00 00 00 00 C0');
    expect(toHex(encodeLoraMessage({ command: 'bandwidth', value: QUERY_U32 }))).toBe('C0 02 00 00 00 00 C0');
    // and decode as the value 0, which the host reads as "asking"
    expect(decodeLoraFrame(frame(0x01, [0, 0, 0, 0]))).toEqual({ message: { command: 'frequency', value: 0 } });
  });

  it('commands with a longer answer are asked with a single 0x00', () => {
    const codes: Record<(typeof QUERY_TARGETS)[number], number> = {
      'frequency': 0x01, 'bandwidth': 0x02, 'stat-rx': 0x21, 'stat-tx': 0x22, 'st-alock': 0x0b,
      'lt-alock': 0x0c, 'stat-chtm': 0x25, 'stat-phyprm': 0x26, 'fw-version': 0x50,
    };
    for (const target of QUERY_TARGETS) {
      const code = codes[target].toString(16).toUpperCase().padStart(2, '0');
      expect(toHex(encodeLoraMessage({ command: 'query', target }))).toBe(`C0 ${code} 00 C0`);
      expect(decodeLoraFrame(frame(codes[target], [0x00]))).toEqual({ message: { command: 'query', target } });
    }
  });

  it('a single 0x00 is a value, not a query, for one-byte commands, RSSI and SNR', () => {
    for (const command of U8_COMMANDS) {
      expect(decodeLoraFrame(frame(loraCommandCode(command), [0x00]))).toEqual({ message: { command, value: 0 } });
    }
    expect(decodeLoraFrame(frame(0x23, [0x00]))).toEqual({ message: { command: 'stat-rssi', dbm: -157 } });
    expect(decodeLoraFrame(frame(0x24, [0x00]))).toEqual({ message: { command: 'stat-snr', db: 0 } });
    expect(decodeLoraFrame(frame(0x00, [0x00]))).toEqual({ message: { command: 'data', data: hex('00') } });
  });

  it('PLATFORM and MCU are asked with 0x00, as RNode hosts do', () => {
    expect(toHex(encodeLoraMessage({ command: 'platform', value: 0 }))).toBe('C0 48 00 C0');
    expect(toHex(encodeLoraMessage({ command: 'mcu', value: 0 }))).toBe('C0 49 00 C0');
  });
});

// ---------------------------------------------------------------------------------------------
// Decode errors
// ---------------------------------------------------------------------------------------------

describe('decode errors', () => {
  it('every code outside the command set is unknown-command', () => {
    const known = new Set<number>(Object.values(LoraCommand));
    let unknown = 0;
    for (let type = 0; type < 256; type++) {
      const r = decodeLoraFrame(frame(type, [0x01, 0x02]));
      if (known.has(type)) {
        expect(r).not.toHaveProperty('error.code', 'unknown-command');
      } else {
        expect(r).toEqual({ error: { code: 'unknown-command', type } });
        unknown++;
      }
    }
    expect(unknown).toBe(256 - known.size);
  });

  it('RNode codes this codec does not model are unknown-command', () => {
    // RADIO_LOCK, STAT_BAT, STAT_TEMP, BLINK, BOARD, KISS RETURN (RESET is decoded: the boot notice)
    for (const type of [0x07, 0x27, 0x29, 0x30, 0x47, 0xff]) {
      expect(decodeLoraFrame(frame(type, [0xf8]))).toEqual({ error: { code: 'unknown-command', type } });
    }
  });

  const badLength = (command: LoraCommandName, length: number, expected: string) => ({
    error: { code: 'bad-length', command, length, expected },
  });

  it('u32 commands need 4 bytes (or the one-byte 0x00 query)', () => {
    for (const command of U32_COMMANDS) {
      const type = loraCommandCode(command);
      for (const data of [[], [0x01], [0xff], [0, 0], [1, 2, 3], [1, 2, 3, 4, 5], new Array<number>(8).fill(0)]) {
        expect(decodeLoraFrame(frame(type, data))).toEqual(badLength(command, data.length, '4'));
      }
    }
  });

  it('u8 commands need exactly 1 byte', () => {
    for (const command of U8_COMMANDS) {
      const type = loraCommandCode(command);
      for (const data of [[], [0, 0], [1, 2, 3]]) {
        expect(decodeLoraFrame(frame(type, data))).toEqual(badLength(command, data.length, '1'));
      }
    }
  });

  it('airtime locks need 2 bytes', () => {
    for (const command of ['st-alock', 'lt-alock'] as const) {
      const type = loraCommandCode(command);
      for (const data of [[], [0x04], [0, 0, 0], [1, 2, 3, 4]]) {
        expect(decodeLoraFrame(frame(type, data))).toEqual(badLength(command, data.length, '2'));
      }
    }
  });

  it('STAT_RSSI and STAT_SNR need exactly 1 byte', () => {
    for (const command of ['stat-rssi', 'stat-snr'] as const) {
      const type = loraCommandCode(command);
      for (const data of [[], [0, 0], [0x25, 0xe3]]) {
        expect(decodeLoraFrame(frame(type, data))).toEqual(badLength(command, data.length, '1'));
      }
    }
  });

  it('FW_VERSION needs 2 bytes', () => {
    for (const data of [[], [0x01], [1, 82, 0]]) {
      expect(decodeLoraFrame(frame(0x50, data))).toEqual(badLength('fw-version', data.length, '2'));
    }
  });

  it('STAT_CHTM needs 8 or 11 bytes', () => {
    for (const n of [0, 2, 7, 9, 10, 12, 16]) {
      const data = new Array<number>(n).fill(0x11);
      expect(decodeLoraFrame(frame(0x25, data))).toEqual(badLength('stat-chtm', n, '8 or 11'));
    }
  });

  it('STAT_PHYPRM needs 12 bytes, or the 10 of older firmware (no DIFS)', () => {
    for (const n of [0, 2, 9, 11, 13]) {
      const data = new Array<number>(n).fill(0x11);
      expect(decodeLoraFrame(frame(0x26, data))).toEqual(badLength('stat-phyprm', n, '12 (10 from older firmware)'));
    }
    const old = decodeLoraFrame(frame(0x26, [0x04, 0x00, 0x03, 0xd0, 0x00, 0x12, 0x00, 0x12, 0x00, 0x0c]));
    expect(old).toEqual({ message: { command: 'stat-phyprm', symbolTimeMs: 1.024, symbolRate: 976, preambleSymbols: 18, preambleTimeMs: 18, csmaSlotMs: 12 } });
  });
});

// ---------------------------------------------------------------------------------------------
// Encoding out-of-range values
// ---------------------------------------------------------------------------------------------

describe('encoding rejects out-of-range values with RangeError', () => {
  const bad: ReadonlyArray<readonly [string, LoraMessage]> = [
    ['frequency −1', { command: 'frequency', value: -1 }],
    ['frequency 2^32', { command: 'frequency', value: 2 ** 32 }],
    ['frequency 1.5', { command: 'frequency', value: 1.5 }],
    ['frequency NaN', { command: 'frequency', value: Number.NaN }],
    ['bandwidth Infinity', { command: 'bandwidth', value: Number.POSITIVE_INFINITY }],
    ['stat-rx −1', { command: 'stat-rx', value: -1 }],
    ['txpower 256', { command: 'txpower', value: 256 }],
    ['txpower −1', { command: 'txpower', value: -1 }],
    ['sf 7.5', { command: 'sf', value: 7.5 }],
    ['error 300', { command: 'error', value: 300 }],
    ['st-alock −0.01 %', { command: 'st-alock', percent: -0.01 }],
    ['lt-alock 655.36 %', { command: 'lt-alock', percent: 655.36 }],
    ['lt-alock NaN', { command: 'lt-alock', percent: Number.NaN }],
    ['stat-rssi −158 dBm', { command: 'stat-rssi', dbm: -158 }],
    ['stat-rssi +99 dBm', { command: 'stat-rssi', dbm: 99 }],
    ['stat-rssi −120.5 dBm', { command: 'stat-rssi', dbm: -120.5 }],
    ['stat-snr −32.25 dB', { command: 'stat-snr', db: -32.25 }],
    ['stat-snr +32 dB', { command: 'stat-snr', db: 32 }],
    ['stat-snr NaN', { command: 'stat-snr', db: Number.NaN }],
    ['fw major 256', { command: 'fw-version', major: 256, minor: 0 }],
    ['fw minor −1', { command: 'fw-version', major: 1, minor: -1 }],
    [
      'stat-chtm airtime 655.36 %',
      { command: 'stat-chtm', airtimeShortPercent: 655.36, airtimeLongPercent: 0, channelLoadShortPercent: 0, channelLoadLongPercent: 0 },
    ],
    [
      'stat-chtm channel load −1 %',
      { command: 'stat-chtm', airtimeShortPercent: 0, airtimeLongPercent: 0, channelLoadShortPercent: 0, channelLoadLongPercent: -1 },
    ],
    [
      'stat-chtm current RSSI −158 dBm',
      {
        command: 'stat-chtm', airtimeShortPercent: 0, airtimeLongPercent: 0, channelLoadShortPercent: 0, channelLoadLongPercent: 0,
        currentRssiDbm: -158, noiseFloorDbm: -120,
      },
    ],
    [
      'stat-chtm noise floor +99 dBm',
      {
        command: 'stat-chtm', airtimeShortPercent: 0, airtimeLongPercent: 0, channelLoadShortPercent: 0, channelLoadLongPercent: 0,
        currentRssiDbm: -100, noiseFloorDbm: 99,
      },
    ],
    [
      'stat-chtm interference +98 dBm (0xFF is "none")',
      {
        command: 'stat-chtm', airtimeShortPercent: 0, airtimeLongPercent: 0, channelLoadShortPercent: 0, channelLoadLongPercent: 0,
        currentRssiDbm: -100, noiseFloorDbm: -120, interferenceDbm: 98,
      },
    ],
    [
      'stat-phyprm symbol time 65.536 ms',
      { command: 'stat-phyprm', symbolTimeMs: 65.536, symbolRate: 0, preambleSymbols: 0, preambleTimeMs: 0, csmaSlotMs: 0, difsMs: 0 },
    ],
    [
      'stat-phyprm DIFS 65536 ms',
      { command: 'stat-phyprm', symbolTimeMs: 1, symbolRate: 0, preambleSymbols: 0, preambleTimeMs: 0, csmaSlotMs: 0, difsMs: 65536 },
    ],
    [
      'stat-phyprm preamble −1',
      { command: 'stat-phyprm', symbolTimeMs: 1, symbolRate: 0, preambleSymbols: -1, preambleTimeMs: 0, csmaSlotMs: 0, difsMs: 0 },
    ],
  ];

  for (const [name, msg] of bad) {
    it(name, () => {
      expect(() => encodeLoraMessage(msg)).toThrow(RangeError);
    });
  }
});

// ---------------------------------------------------------------------------------------------
// The worked session of SPEC.md §5
// ---------------------------------------------------------------------------------------------

describe('the worked session in SPEC.md', () => {
  // [direction, message, bytes on the wire]; H→M from host to modem, M→H back.
  const session: ReadonlyArray<readonly ['H→M' | 'M→H', LoraMessage, string]> = [
    ['H→M', { command: 'detect', value: 0x73 }, 'C0 08 73 C0'],
    ['M→H', { command: 'detect', value: 0x46 }, 'C0 08 46 C0'],
    ['H→M', { command: 'query', target: 'fw-version' }, 'C0 50 00 C0'],
    ['M→H', { command: 'fw-version', major: 1, minor: 82 }, 'C0 50 01 52 C0'],
    ['H→M', { command: 'platform', value: 0 }, 'C0 48 00 C0'],
    ['M→H', { command: 'platform', value: 0x80 }, 'C0 48 80 C0'],
    ['H→M', { command: 'mcu', value: 0 }, 'C0 49 00 C0'],
    ['M→H', { command: 'mcu', value: 0x81 }, 'C0 49 81 C0'],
    ['H→M', { command: 'frequency', value: 869_525_000 }, 'C0 01 33 D3 E6 08 C0'],
    ['M→H', { command: 'frequency', value: 869_525_000 }, 'C0 01 33 D3 E6 08 C0'],
    ['H→M', { command: 'bandwidth', value: 125_000 }, 'C0 02 00 01 E8 48 C0'],
    ['M→H', { command: 'bandwidth', value: 125_000 }, 'C0 02 00 01 E8 48 C0'],
    ['H→M', { command: 'txpower', value: 14 }, 'C0 03 0E C0'],
    ['M→H', { command: 'txpower', value: 14 }, 'C0 03 0E C0'],
    ['H→M', { command: 'sf', value: 8 }, 'C0 04 08 C0'],
    ['M→H', { command: 'sf', value: 8 }, 'C0 04 08 C0'],
    ['H→M', { command: 'cr', value: 5 }, 'C0 05 05 C0'],
    ['M→H', { command: 'cr', value: 5 }, 'C0 05 05 C0'],
    ['H→M', { command: 'st-alock', percent: 10.5 }, 'C0 0B 04 1A C0'],
    ['M→H', { command: 'st-alock', percent: 10.5 }, 'C0 0B 04 1A C0'],
    ['H→M', { command: 'lt-alock', percent: 1 }, 'C0 0C 00 64 C0'],
    ['M→H', { command: 'lt-alock', percent: 1 }, 'C0 0C 00 64 C0'],
    ['H→M', { command: 'radio-state', value: 1 }, 'C0 06 01 C0'],
    ['M→H', { command: 'radio-state', value: 1 }, 'C0 06 01 C0'],
    ['H→M', { command: 'data', data: hex('6D 67 01 C0 DB') }, 'C0 00 6D 67 01 DB DC DB DD C0'],
    ['M→H', { command: 'ready', value: 1 }, 'C0 0F 01 C0'],
    ['M→H', { command: 'stat-rssi', dbm: -120 }, 'C0 23 25 C0'],
    ['M→H', { command: 'stat-snr', db: -7.25 }, 'C0 24 E3 C0'],
    ['M→H', { command: 'data', data: hex('68 69 C0 DB') }, 'C0 00 68 69 DB DC DB DD C0'],
  ];

  it('encodes every step to the bytes shown', () => {
    for (const [, msg, wire] of session) expect(toHex(encodeLoraMessage(msg))).toBe(wire);
  });

  it('decodes the modem side as one byte stream, in order', () => {
    const stream = session.filter(([dir]) => dir === 'M→H').map(([, , wire]) => hex(wire));
    const all = Uint8Array.from(stream.flatMap((b) => Array.from(b)));
    const events = new KissDecoder().push(all);
    const decoded = events.map((e) => ('frame' in e ? decodeLoraFrame(e.frame) : e));
    expect(decoded).toEqual(session.filter(([dir]) => dir === 'M→H').map(([, message]) => ({ message })));
  });
});

// ---------------------------------------------------------------------------------------------
// Properties
// ---------------------------------------------------------------------------------------------

describe('properties', () => {
  const anyFrame = fc.record({
    type: fc.integer({ min: 0, max: 255 }),
    data: fc.oneof(
      fc.uint8Array({ maxLength: 16 }),
      fc.uint8Array({ minLength: 0, maxLength: 600 }),
      fc.constantFrom(Uint8Array.of(0x00), Uint8Array.of(0xff), new Uint8Array(0)),
    ),
  });
  const knownFrame = fc.record({
    type: fc.constantFrom(...Object.values(LoraCommand)),
    data: fc.uint8Array({ maxLength: 14 }),
  });

  it('decodeLoraFrame never throws and always returns a message or a typed error', () => {
    fc.assert(
      fc.property(fc.oneof(anyFrame, knownFrame), (f) => {
        const r = decodeLoraFrame(f);
        expect('message' in r !== 'error' in r).toBe(true);
        if ('error' in r) expect(['unknown-command', 'bad-length']).toContain(r.error.code);
      }),
      { numRuns: 3000 },
    );
  });

  it('whatever decodes re-encodes to the very same frame', () => {
    fc.assert(
      fc.property(fc.oneof(anyFrame, knownFrame), (f) => {
        const r = decodeLoraFrame(f);
        if ('error' in r) return;
        expect(toHex(encodeLoraMessage(r.message))).toBe(toHex(encodeKissType(f.type, f.data)));
      }),
      { numRuns: 3000 },
    );
  });

  it('the KISS decoder plus decodeLoraFrame never throw on an arbitrary byte stream', () => {
    fc.assert(
      fc.property(
        fc.array(fc.oneof(fc.uint8Array({ maxLength: 40 }), fc.constantFrom(hex('C0'), hex('DB'), hex('C0 25 00'))), {
          maxLength: 20,
        }),
        (chunks) => {
          const dec = new KissDecoder({ maxFrame: 64 });
          for (const chunk of chunks) {
            for (const e of dec.push(chunk)) if ('frame' in e) decodeLoraFrame(e.frame);
          }
          dec.end();
        },
      ),
      { numRuns: 2000 },
    );
  });
});
