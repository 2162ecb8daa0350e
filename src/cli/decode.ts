/**
 * `meshgw decode kiss|slip [HEX|-]`: decodes a byte stream and prints one JSON line per frame,
 * or per error. `meshgw decode rfc5444 [HEX|-]`: decodes one RFC 5444 packet and prints its JSON
 * model (src/rfc5444/json.ts) on one line, or one error line. Exit status 1 when any part of the
 * input was malformed.
 */
import { KissDecoder, kissCommandName, type KissEvent } from '../../firmware-protocol/kiss.js';
import { SlipDecoder, type FramingEvent } from '../../firmware-protocol/slip.js';
import { decodePacket } from '../rfc5444/wire.js';
import { packetToJson } from '../rfc5444/json.js';
import { parseHex, toHex } from './hex.js';
import { UsageError } from './usage-error.js';

export type DecodeFormat = 'kiss' | 'slip' | 'rfc5444';

export interface DecodeResult {
  lines: string[];
  malformed: boolean;
}

/**
 * Decodes `input` as a complete stream (for rfc5444: one packet) and renders the JSON lines the
 * CLI prints. `maxFrame` applies to kiss and slip.
 */
export function decodeToJsonLines(format: DecodeFormat, input: Uint8Array, maxFrame: number): DecodeResult {
  const lines: string[] = [];
  let malformed = false;
  if (format === 'rfc5444') {
    const r = decodePacket(input);
    if (r.ok) lines.push(JSON.stringify(packetToJson(r.packet)));
    else lines.push(JSON.stringify({ error: r.error.reason, offset: r.error.offset }));
    return { lines, malformed: !r.ok };
  }
  if (format === 'kiss') {
    const decoder = new KissDecoder({ maxFrame });
    for (const e of [...decoder.push(input), ...decoder.end()]) {
      if ('error' in e) malformed = true;
      lines.push(renderKiss(e));
    }
  } else {
    const decoder = new SlipDecoder({ maxFrame });
    for (const e of [...decoder.push(input), ...decoder.end()]) {
      if ('error' in e) malformed = true;
      lines.push(renderSlip(e));
    }
  }
  return { lines, malformed };
}

function renderKiss(e: KissEvent): string {
  if ('error' in e) return JSON.stringify({ error: e.error.code, offset: e.error.offset });
  const f = e.frame;
  return JSON.stringify({ port: f.port, command: kissCommandName(f), data: toHex(f.data) });
}

function renderSlip(e: FramingEvent): string {
  if ('error' in e) return JSON.stringify({ error: e.error.code, offset: e.error.offset });
  return JSON.stringify({ data: toHex(e.frame) });
}

export function parseDecodeFormat(value: string): DecodeFormat {
  if (value === 'kiss' || value === 'slip' || value === 'rfc5444') return value;
  throw new UsageError(`unknown format '${value}': expected kiss, slip or rfc5444`);
}

/** Reads the input named on the command line: hex text, or '-' for stdin (hex, or raw bytes). */
export async function readDecodeInput(arg: string | undefined, raw: boolean): Promise<Uint8Array> {
  if (arg !== undefined && arg !== '-') {
    if (raw) throw new UsageError('--raw reads stdin: give - or no input argument');
    return parseHex(arg);
  }
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  const all = Buffer.concat(chunks);
  return raw ? Uint8Array.from(all) : parseHex(all.toString('latin1'));
}
