/**
 * `meshgw airtime`: the time on air of one frame, and with a region, how the band's rules
 * limit it. LoRa: `--sf --bw --cr --bytes [--preamble] [--implicit] [--no-crc] [--ldro]`;
 * A DATA frame through an RNode: `--modem rnode --sf --bw --cr --bytes` (up to 508: its packets
 * with their headers, at the firmware's preamble, and its CSMA timing). AX.25:
 * `--modem afsk1200|afsk9600 --bytes`. `--json` prints one object.
 */
import type { Command } from 'commander';
import { loraAirtime, LoraParamError, loraMaxPayloadWithin, type LoraParams } from '../link/airtime/lora.js';
import { Ax25AirtimeModel, type Ax25Modem } from '../link/airtime/afsk.js';
import { RNODE_HOST_MTU, RNodeAirtimeModel, rnodePackets, rnodePhy } from '../link/airtime/lora-rnode.js';
import { bandRules, framesPerHour, parseRegionName, RegionError, type BandRules } from '../link/airtime/regions.js';
import { UsageError, parseIntOption, parseNumberOption } from './usage-error.js';

interface Options {
  modem: string;
  sf?: string;
  bw?: string;
  cr?: string;
  bytes?: string;
  preamble: string;
  implicit?: boolean;
  crc: boolean;
  ldro: string;
  txDelay?: string;
  txTail?: string;
  region?: string;
  frequency?: string;
  json?: boolean;
}

export function airtimeOptions(cmd: Command): Command {
  return cmd
    .option('--modem <kind>', 'lora (one LoRa packet), rnode (a DATA frame through an RNode), afsk1200 or afsk9600 (AX.25 over a KISS TNC)', 'lora')
    .option('--sf <n>', 'LoRa spreading factor, 5..12')
    .option('--bw <hz>', 'LoRa bandwidth in Hz (7800 ... 500000)')
    .option('--cr <n>', 'LoRa coding rate, 5..8 or 4/5..4/8')
    .option('--bytes <n>', 'frame size in bytes (LoRa payload; RNode DATA frame; AX.25 frame without FCS and flags)')
    .option('--preamble <symbols>', 'LoRa preamble length', '8')
    .option('--implicit', 'LoRa implicit header')
    .option('--no-crc', 'LoRa payload CRC off')
    .option('--ldro <mode>', 'LoRa low-data-rate optimisation: auto, on or off', 'auto')
    .option('--tx-delay <ms>', 'AX.25 TXDELAY in ms (default 300)')
    .option('--tx-tail <ms>', 'AX.25 TXTAIL in ms (default 100)')
    .option('--region <name>', 'regional rules: eu868, us915 or none')
    .option('--frequency <hz>', 'channel frequency in Hz, with --region')
    .option('--json', 'print one JSON object');
}

function parseCr(value: string): number {
  const m = /^(?:4\/)?([5-8])$/.exec(value.trim());
  if (!m) throw new UsageError(`--cr must be 5..8 or 4/5..4/8, got '${value}'`);
  return Number(m[1]);
}

function parseLdro(value: string): LoraParams['ldro'] {
  if (value === 'auto') return 'auto';
  if (value === 'on') return true;
  if (value === 'off') return false;
  throw new UsageError(`--ldro must be auto, on or off, got '${value}'`);
}

function required(name: string, value: string | undefined): string {
  if (value === undefined) throw new UsageError(`${name} is required`);
  return value;
}

/** Computes what `meshgw airtime` prints, as the JSON object; throws UsageError for bad input. */
export function airtimeReport(opts: Options): Record<string, unknown> {
  try {
    return report(opts);
  } catch (err) {
    if (err instanceof LoraParamError || err instanceof RegionError) throw new UsageError(err.message);
    throw err;
  }
}

function report(opts: Options): Record<string, unknown> {
  const bytes = parseIntOption('--bytes', required('--bytes', opts.bytes), 0, 1 << 20);
  let out: Record<string, unknown>;
  let maxBytesWithin: (ms: number) => number;
  let bandwidth = 0;
  if (opts.modem === 'lora') {
    bandwidth = parseIntOption('--bw', required('--bw', opts.bw), 1, 10_000_000);
    const params: LoraParams = {
      sf: parseIntOption('--sf', required('--sf', opts.sf), 0, 99),
      bandwidth,
      cr: parseCr(required('--cr', opts.cr)),
      preamble: parseIntOption('--preamble', opts.preamble, 1, 65_535),
      implicitHeader: opts.implicit === true,
      crc: opts.crc,
      ldro: parseLdro(opts.ldro),
    };
    if (bytes > 255) throw new UsageError(`--bytes: a LoRa packet carries at most 255 bytes, got ${bytes}`);
    const a = loraAirtime(params, bytes);
    out = { airtimeMs: a.airtimeMs, symbolMs: a.symbolMs, symbols: a.symbols, ldro: a.ldro };
    maxBytesWithin = (ms) => loraMaxPayloadWithin(params, ms);
  } else if (opts.modem === 'rnode') {
    bandwidth = parseIntOption('--bw', required('--bw', opts.bw), 1, 10_000_000);
    const params = { sf: parseIntOption('--sf', required('--sf', opts.sf), 0, 99), bandwidth, cr: parseCr(required('--cr', opts.cr)) };
    if (bytes < 1 || bytes > RNODE_HOST_MTU) throw new UsageError(`--bytes: an RNode takes DATA frames of 1 to ${RNODE_HOST_MTU} bytes, got ${bytes}`);
    const phy = rnodePhy(params);
    const model = new RNodeAirtimeModel(params, RNODE_HOST_MTU);
    out = {
      airtimeMs: model.airtimeMs(bytes),
      packets: rnodePackets(bytes),
      preambleSymbols: phy.preambleSymbols,
      symbolMs: phy.symbolMs,
      csmaSlotMs: phy.csmaSlotMs,
      difsMs: phy.difsMs,
    };
    maxBytesWithin = (ms) => model.maxBytesWithin(ms);
  } else if (opts.modem === 'afsk1200' || opts.modem === 'afsk9600' || opts.modem === 'fsk9600') {
    const modem: Ax25Modem = opts.modem === 'afsk1200' ? 'afsk1200' : 'fsk9600';
    const model = new Ax25AirtimeModel({
      modem,
      ...(opts.txDelay !== undefined ? { txDelayMs: parseNumberOption('--tx-delay', opts.txDelay, 0, 2550) } : {}),
      ...(opts.txTail !== undefined ? { txTailMs: parseNumberOption('--tx-tail', opts.txTail, 0, 2550) } : {}),
    });
    if (bytes > model.maxBytes) throw new UsageError(`--bytes: an AX.25 frame is at most ${model.maxBytes} bytes, got ${bytes}`);
    out = { airtimeMs: model.airtimeMs(bytes), modem: opts.modem, baud: model.baud, bits: model.frameBits(bytes) };
    maxBytesWithin = (ms) => model.maxBytesWithin(ms);
  } else {
    throw new UsageError(`--modem must be lora, rnode, afsk1200 or afsk9600, got '${opts.modem}'`);
  }
  if (opts.region !== undefined) {
    const region = parseRegionName(opts.region);
    const frequency = parseIntOption('--frequency', required('--frequency (with --region)', opts.frequency), 1, 10_000_000_000);
    const rules: BandRules = bandRules(region, frequency, bandwidth);
    const airtimeMs = out.airtimeMs as number;
    out.region = region;
    if (rules.subBand) out.subBand = rules.subBand.name;
    out.dutyCycle = rules.dutyCycle ? rules.dutyCycle.fraction : null;
    if (rules.dwellMs !== undefined) {
      out.dwellMs = rules.dwellMs;
      out.maxBytesWithinDwell = Math.max(0, maxBytesWithin(rules.dwellMs));
    }
    const perHour = framesPerHour(rules, airtimeMs);
    out.framesPerHour = Number.isFinite(perHour) ? perHour : null;
  }
  return out;
}

function describe(r: Record<string, unknown>): string {
  const lines: string[] = [];
  if (r.packets !== undefined) {
    const packets = r.packets as number[];
    lines.push(
      `${r.airtimeMs} ms on air: ${packets.length === 1 ? 'one LoRa packet' : `${packets.length} LoRa packets`} of ${packets.join(' + ')} bytes (RNode's header included), ${r.preambleSymbols} preamble symbols of ${r.symbolMs} ms`,
    );
    lines.push(`before it: DIFS ${r.difsMs} ms and a contention window of CSMA slots of ${r.csmaSlotMs} ms`);
  } else if (r.symbols !== undefined) {
    lines.push(`${r.airtimeMs} ms on air: ${r.symbols} symbols of ${r.symbolMs} ms, low-data-rate optimisation ${r.ldro ? 'on' : 'off'}`);
  } else {
    lines.push(`${r.airtimeMs} ms on air: ${r.bits} bits at ${r.baud} baud, with TXDELAY and TXTAIL`);
  }
  if (r.region !== undefined) {
    const duty = r.dutyCycle === null ? 'no duty cycle' : `duty cycle ${(r.dutyCycle as number) * 100} % per hour`;
    lines.push(`${r.region}${r.subBand ? ` sub-band ${r.subBand} MHz` : ''}: ${duty}`);
    if (r.dwellMs !== undefined) {
      const over = (r.airtimeMs as number) > (r.dwellMs as number);
      lines.push(`dwell limit ${r.dwellMs} ms per transmission${over ? ` — this frame exceeds it; at most ${r.maxBytesWithinDwell} bytes fit` : ''}`);
    }
    lines.push(`frames per hour: ${r.framesPerHour === null ? 'unlimited' : r.framesPerHour}`);
  }
  return lines.join('\n');
}

export function runAirtimeCommand(opts: Options): void {
  const r = airtimeReport(opts);
  process.stdout.write((opts.json ? JSON.stringify(r) : describe(r)) + '\n');
}
