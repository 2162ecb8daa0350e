/**
 * What RNode firmware puts on air for a DATA frame (packets with their one-byte header, split
 * over two above 254 bytes), its preamble, CSMA timing and contention-window bands.
 */
import { describe, expect, it } from 'vitest';
import { loraAirtime } from '../src/link/airtime/lora.js';
import {
  RNODE_RECOMMENDED_MTU,
  RNodeAirtimeModel,
  rnodeContentionWindow,
  rnodePackets,
  rnodePhy,
  rnodeSplit,
} from '../src/link/airtime/lora-rnode.js';

describe('RNode packets', () => {
  it('one packet with its header up to 254 bytes, two from 255 to 507, three for 508, none above', () => {
    expect(rnodePackets(1)).toEqual([2]);
    expect(rnodePackets(254)).toEqual([255]);
    expect(rnodePackets(255)).toEqual([255, 2]);
    expect(rnodePackets(300)).toEqual([255, 47]);
    expect(rnodePackets(507)).toEqual([255, 254]);
    expect(rnodePackets(508)).toEqual([255, 255, 1]);
    expect(rnodePackets(509)).toEqual([]);
    expect(rnodePackets(0)).toEqual([]);
    expect(rnodePackets(600, true)).toEqual([255]);
    expect(rnodePackets(10, true)).toEqual([10]);
  });

  it('every packet of a split frame carries the same header with the split flag, and the data in order', () => {
    const frame = Uint8Array.from({ length: 400 }, (_, i) => i & 0xff);
    const packets = rnodeSplit(frame, 0xa);
    expect(packets.map((p) => p[0])).toEqual([0xa1, 0xa1]);
    const joined = new Uint8Array(packets.flatMap((p) => [...p.subarray(1)]));
    expect(joined).toEqual(frame);
    const single = rnodeSplit(frame.subarray(0, 20), 0x3);
    expect(single).toHaveLength(1);
    expect(single[0]![0]).toBe(0x30);
    expect(rnodeSplit(frame, 0x3, true)).toEqual([frame.slice(0, 255)]);
  });
});

describe('RNode timing', () => {
  it('aims for 24 ms of preamble, at least 18 symbols', () => {
    expect(rnodePhy({ sf: 7, bandwidth: 125_000, cr: 5 }).preambleSymbols).toBe(24); // 24 / 1.024 ms → 23.4
    expect(rnodePhy({ sf: 9, bandwidth: 125_000, cr: 5 }).preambleSymbols).toBe(18);
    expect(rnodePhy({ sf: 12, bandwidth: 125_000, cr: 8 }).preambleSymbols).toBe(18);
    expect(rnodePhy({ sf: 7, bandwidth: 500_000, cr: 5 }).preambleSymbols).toBe(94); // 21.9 kbit/s: not fast
    expect(rnodePhy({ sf: 5, bandwidth: 500_000, cr: 5 }).preambleSymbols).toBe(94); // 62.5 kbit/s: 6 ms target
  });

  it('CSMA slot of 12 symbols within 24 (fast: 6) to 100 ms, DIFS of two slots', () => {
    const at = (sf: number, bandwidth: number) => {
      const p = rnodePhy({ sf, bandwidth, cr: 5 });
      return [p.csmaSlotMs, p.difsMs];
    };
    expect(at(7, 125_000)).toEqual([24, 48]);
    expect(at(9, 125_000)).toEqual([49, 98]);
    expect(at(10, 125_000)).toEqual([98, 196]);
    expect(at(11, 125_000)).toEqual([100, 200]);
    expect(at(5, 500_000)).toEqual([6, 12]);
  });

  it('flushes the whole queue in one access at 14 kbit/s and below', () => {
    expect(rnodePhy({ sf: 9, bandwidth: 125_000, cr: 5 }).flushQueue).toBe(true);
    expect(rnodePhy({ sf: 7, bandwidth: 500_000, cr: 5 }).flushQueue).toBe(false);
  });

  it('contention window bands by the modem\'s own airtime', () => {
    expect(rnodeContentionWindow(0)).toEqual({ band: 1, minSlots: 0, maxSlots: 14 });
    expect(rnodeContentionWindow(7.9)).toEqual({ band: 1, minSlots: 0, maxSlots: 14 });
    expect(rnodeContentionWindow(8)).toEqual({ band: 2, minSlots: 15, maxSlots: 29 });
    expect(rnodeContentionWindow(39)).toEqual({ band: 3, minSlots: 30, maxSlots: 44 });
    expect(rnodeContentionWindow(78)).toEqual({ band: 4, minSlots: 45, maxSlots: 59 });
    expect(rnodeContentionWindow(100)).toEqual({ band: 4, minSlots: 45, maxSlots: 59 });
  });
});

describe('RNodeAirtimeModel', () => {
  const params = { sf: 9, bandwidth: 125_000, cr: 5 };
  const packet = (n: number): number => loraAirtime({ ...params, preamble: 18 }, n).airtimeMs;

  it('sums its packets, each with its header, at the firmware\'s preamble', () => {
    const m = new RNodeAirtimeModel(params);
    expect(m.maxBytes).toBe(RNODE_RECOMMENDED_MTU);
    expect(m.airtimeMs(50)).toBeCloseTo(packet(51), 9);
    expect(m.airtimeMs(300)).toBeCloseTo(packet(255) + packet(47), 9);
    // Against the plain model with 8 symbols of preamble and no header, it costs more.
    expect(m.airtimeMs(50)).toBeGreaterThan(loraAirtime(params, 50).airtimeMs);
    const full = new RNodeAirtimeModel(params, 508);
    expect(full.airtimeMs(508)).toBeCloseTo(packet(255) * 2 + packet(1), 9);
    expect(() => m.airtimeMs(508)).toThrow(RangeError);
    expect(() => new RNodeAirtimeModel(params, 509)).toThrow(/1 to 508/);
  });

  it('takes a reported preamble, and finds the largest frame within a limit', () => {
    const m = new RNodeAirtimeModel(params).withPreamble(8);
    expect(m.airtimeMs(10)).toBeCloseTo(loraAirtime(params, 11).airtimeMs, 9);
    const limit = m.airtimeMs(300);
    expect(m.maxBytesWithin(limit)).toBeGreaterThanOrEqual(300);
    expect(m.airtimeMs(m.maxBytesWithin(limit))).toBeLessThanOrEqual(limit);
    expect(m.airtimeMs(m.maxBytesWithin(limit) + 1)).toBeGreaterThan(limit);
    expect(m.maxBytesWithin(0)).toBe(-1);
  });
});
