/**
 * The host side of the LoRa modem command set (firmware-protocol/lora-modem.ts): what a modem
 * sends, after KISS de-framing, through `decodeLoraFrame`. Decoding never throws; every decoded
 * value is in its documented range, and encode → decode gives the same message back.
 */
import { KissDecoder, encodeKissType } from '../../../../firmware-protocol/kiss.js';
import {
  DETECT_RESPONSE,
  RESET_NOTICE,
  decodeLoraFrame,
  encodeLoraMessage,
  loraCommandCode,
  loraErrorName,
  type LoraMessage,
} from '../../../../firmware-protocol/lora-modem.js';
import { invariant, type FuzzTarget } from '../../harness.js';
import { framesOf } from '../framing.js';

const MAX_FRAME = 1024;

const u8 = (v: number, what: string): void => invariant(Number.isInteger(v) && v >= 0 && v <= 255, `${what} ${v} is not a u8`);
const u16 = (v: number, what: string): void => invariant(Number.isInteger(v) && v >= 0 && v <= 0xffff, `${what} ${v} is not a u16`);
const pct = (v: number, what: string): void => invariant(Number.isFinite(v) && v >= 0 && v <= 655.35, `${what} ${v} is outside 0..655.35 %`);
const dbm = (v: number | undefined, what: string): void => {
  if (v === undefined) return;
  invariant(Number.isInteger(v) && v >= -157 && v <= 98, `${what} ${v} dBm is outside −157..98`);
};

function checkRanges(m: LoraMessage): void {
  switch (m.command) {
    case 'data':
      invariant(m.data instanceof Uint8Array, 'data is not bytes');
      return;
    case 'frequency':
    case 'bandwidth':
    case 'stat-rx':
    case 'stat-tx':
      invariant(Number.isInteger(m.value) && m.value >= 0 && m.value <= 0xffffffff, `${m.command} ${m.value} is not a u32`);
      return;
    case 'st-alock':
    case 'lt-alock':
      pct(m.percent, m.command);
      return;
    case 'stat-rssi':
      dbm(m.dbm, 'stat-rssi');
      return;
    case 'stat-snr':
      invariant(m.db >= -32 && m.db <= 31.75 && Number.isInteger(m.db * 4), `stat-snr ${m.db} dB is not i8 × 0.25`);
      return;
    case 'fw-version':
      u8(m.major, 'fw major');
      u8(m.minor, 'fw minor');
      return;
    case 'stat-chtm':
      pct(m.airtimeShortPercent, 'airtime short');
      pct(m.airtimeLongPercent, 'airtime long');
      pct(m.channelLoadShortPercent, 'channel load short');
      pct(m.channelLoadLongPercent, 'channel load long');
      dbm(m.currentRssiDbm, 'current RSSI');
      dbm(m.noiseFloorDbm, 'noise floor');
      dbm(m.interferenceDbm, 'interference');
      invariant(m.interferenceDbm === undefined || m.interferenceDbm <= 97, 'interference 0xFF (none) decoded as a value');
      return;
    case 'stat-phyprm':
      invariant(m.symbolTimeMs >= 0 && m.symbolTimeMs <= 65.535, `symbol time ${m.symbolTimeMs} ms out of range`);
      u16(m.symbolRate, 'symbol rate');
      u16(m.preambleSymbols, 'preamble symbols');
      u16(m.preambleTimeMs, 'preamble time');
      u16(m.csmaSlotMs, 'CSMA slot');
      if (m.difsMs !== undefined) u16(m.difsMs, 'DIFS');
      return;
    case 'stat-csma':
      u8(m.band, 'CSMA band');
      u8(m.cwMin, 'CW min');
      u8(m.cwMax, 'CW max');
      return;
    case 'query':
      invariant(typeof m.target === 'string', 'query without a target');
      return;
    default:
      u8(m.value, m.command);
      if (m.command === 'error') invariant(loraErrorName(m.value).length > 0, 'an error code without a name');
  }
}

/** decode → encode → decode gives the same message (and the same frame bytes). */
function checkRoundTrip(type: number, data: Uint8Array, m: LoraMessage): void {
  const encoded = encodeLoraMessage(m);
  invariant(encoded.length > 0, 'empty encoding');
  const events = new KissDecoder({ maxFrame: 4096 }).push(encoded);
  const first = events[0];
  invariant(events.length === 1 && first !== undefined && 'frame' in first, 're-encoded message is not one KISS frame');
  invariant(first.frame.type === type, `re-encoded message has type 0x${first.frame.type.toString(16)}, not 0x${type.toString(16)}`);
  const again = decodeLoraFrame(first.frame);
  invariant('message' in again, `re-encoded ${m.command} does not decode: ${JSON.stringify('error' in again ? again.error : {})}`);
  invariant(sameMessage(again.message, m), `decode → encode → decode changed ${m.command}: ${show(m)} → ${show(again.message)}`);
  // Every decoded argument is in canonical form, so the frame's data comes back byte for byte.
  invariant(bytesEq(first.frame.data, data), `re-encoded ${m.command} has other argument bytes`);
}

function bytesEq(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}

function show(m: LoraMessage): string {
  return JSON.stringify(m, (_k, v: unknown) => (v instanceof Uint8Array ? Buffer.from(v).toString('hex') : v));
}

function sameMessage(a: LoraMessage, b: LoraMessage): boolean {
  return show(a) === show(b);
}

function decodeOne(type: number, data: Uint8Array): void {
  const r = decodeLoraFrame({ type, data });
  if ('error' in r) {
    const e = r.error;
    invariant(e.code === 'unknown-command' || e.code === 'bad-length', `unknown error code ${String((e as { code: unknown }).code)}`);
    if (e.code === 'bad-length') invariant(e.length === data.length && e.expected.length > 0, 'bad-length error with a wrong length or no expectation');
    return;
  }
  checkRanges(r.message);
  checkRoundTrip(type, data, r.message);
}

const samples: LoraMessage[] = [
  { command: 'data', data: Uint8Array.of(0x01) },
  { command: 'data', data: new Uint8Array(508).map((_, i) => (i * 7) & 0xff) },
  { command: 'data', data: Uint8Array.of(0xc0, 0xdb, 0xdc, 0xdd) },
  { command: 'frequency', value: 869_525_000 },
  { command: 'frequency', value: 0xffffffff },
  { command: 'bandwidth', value: 125_000 },
  { command: 'txpower', value: 14 },
  { command: 'sf', value: 12 },
  { command: 'cr', value: 5 },
  { command: 'radio-state', value: 1 },
  { command: 'detect', value: DETECT_RESPONSE },
  { command: 'ready', value: 1 },
  { command: 'reset', value: RESET_NOTICE },
  { command: 'error', value: 0x04 },
  { command: 'error', value: 0xff },
  { command: 'random', value: 0xc0 },
  { command: 'platform', value: 0x80 },
  { command: 'mcu', value: 0x81 },
  { command: 'st-alock', percent: 12.34 },
  { command: 'lt-alock', percent: 655.35 },
  { command: 'stat-rx', value: 123456 },
  { command: 'stat-tx', value: 0 },
  { command: 'stat-rssi', dbm: -157 },
  { command: 'stat-rssi', dbm: 98 },
  { command: 'stat-snr', db: -32 },
  { command: 'stat-snr', db: 31.75 },
  { command: 'fw-version', major: 1, minor: 74 },
  { command: 'stat-chtm', airtimeShortPercent: 1.5, airtimeLongPercent: 0.25, channelLoadShortPercent: 100, channelLoadLongPercent: 0 },
  { command: 'stat-chtm', airtimeShortPercent: 0, airtimeLongPercent: 0, channelLoadShortPercent: 0, channelLoadLongPercent: 0, currentRssiDbm: -120, noiseFloorDbm: -157, interferenceDbm: -60 },
  { command: 'stat-chtm', airtimeShortPercent: 655.35, airtimeLongPercent: 655.35, channelLoadShortPercent: 655.35, channelLoadLongPercent: 655.35, currentRssiDbm: 98, noiseFloorDbm: 98 },
  { command: 'stat-phyprm', symbolTimeMs: 4.096, symbolRate: 244, preambleSymbols: 12, preambleTimeMs: 49, csmaSlotMs: 49, difsMs: 98 },
  { command: 'stat-phyprm', symbolTimeMs: 65.535, symbolRate: 0xffff, preambleSymbols: 0, preambleTimeMs: 0xffff, csmaSlotMs: 24 },
  { command: 'query', target: 'fw-version' },
  { command: 'query', target: 'stat-chtm' },
];

export const loraModemTarget: FuzzTarget<{ decoder: KissDecoder }> = {
  name: 'lora-modem',
  maxLength: 1200,
  corpus: () => [
    ...samples.map((m) => encodeLoraMessage(m)),
    // Two replies in one read, as a modem answers a reception.
    new Uint8Array([...encodeLoraMessage(samples[22]!), ...encodeLoraMessage(samples[24]!), ...encodeLoraMessage(samples[0]!)]),
    encodeKissType(0x7e, Uint8Array.of(1, 2, 3)),
    encodeKissType(loraCommandCode('stat-chtm'), new Uint8Array(9)),
  ],
  setup: () => ({ decoder: new KissDecoder({ maxFrame: MAX_FRAME }) }),
  resetEvery: 500,
  one(input, state, rng) {
    // As the gateway reads the serial line: KISS frames out of any chunking, then the command.
    for (const frame of framesOf(state.decoder, input, rng)) {
      invariant(frame.data.length <= MAX_FRAME, `KISS frame of ${frame.data.length} bytes > ${MAX_FRAME}`);
      decodeOne(frame.type, frame.data);
    }
    // And the input taken as one de-framed frame: type byte, then argument.
    if (input.length > 0) decodeOne(input[0]!, input.subarray(1));
  },
};
