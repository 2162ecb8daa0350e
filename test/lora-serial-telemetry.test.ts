/**
 * lora-serial's handling of what an RNode reports by itself (no serial device: bytes are handed
 * to the link's decoder as they would arrive): STAT_PHYPRM and STAT_CSMA end up in the stats, and
 * a preamble longer than the airtime model's is logged once, with what it costs per packet.
 */
import { describe, expect, it } from 'vitest';
import { LoraSerialLink } from '../drivers/lora-serial.js';
import { encodeLoraMessage, type LoraMessage } from '../firmware-protocol/lora-modem.js';

const RADIO = { frequency: 869_525_000, bandwidth: 125_000, sf: 9, cr: 5, txPower: 14 };

function linkWithLog(): { link: LoraSerialLink; lines: string[]; feed: (m: LoraMessage) => void } {
  const lines: string[] = [];
  const link = new LoraSerialLink({ name: 'lora0', path: '/dev/null', radio: RADIO, log: (l) => lines.push(l) });
  const feed = (m: LoraMessage): void => (link as unknown as { onBytes(b: Uint8Array): void }).onBytes(encodeLoraMessage(m));
  return { link, lines, feed };
}

const phy = (preambleSymbols: number): LoraMessage => ({
  command: 'stat-phyprm',
  symbolTimeMs: 4.096,
  symbolRate: 244,
  preambleSymbols,
  preambleTimeMs: Math.ceil(preambleSymbols * 4.096),
  csmaSlotMs: 49,
  difsMs: 98,
});

describe('lora-serial and the RNode\'s own reports', () => {
  it('records the modem\'s timing; its usual preamble (18 at SF9) draws no warning', () => {
    const { link, lines, feed } = linkWithLog();
    feed(phy(18));
    feed({ command: 'stat-csma', band: 2, cwMin: 15, cwMax: 29 });
    expect(link.stats).toMatchObject({ preambleSymbols: 18, csmaSlotMs: 49, difsMs: 98, csmaBand: 2, cwMinSlots: 15, cwMaxSlots: 29 });
    expect(lines).toEqual([]);
    expect(link.counters.decodeErrors).toBe(0);
  });

  it('logs once when the modem sends a longer preamble than the model counts', () => {
    const { lines, feed } = linkWithLog();
    feed(phy(30));
    feed(phy(30));
    expect(lines).toEqual(['lora0: the modem sends 30 preamble symbols, the airtime model counts 18: each packet\'s airtime is under-counted by 49 ms']);
  });
});
