/**
 * `meshgw encode rfc5444 [FILE|-]`: reads a packet in the JSON model of src/rfc5444/json.ts (what
 * `meshgw decode rfc5444` prints) and prints its compact RFC 5444 encoding as lower-case hex.
 * An unknown format is a usage error (exit 2); input that is not JSON, not the model, or not
 * encodable is a runtime failure (exit 1) with a one-line reason.
 */
import { readFile } from 'node:fs/promises';
import { packetFromJson, Rfc5444JsonError } from '../rfc5444/json.js';
import { encodePacket, Rfc5444EncodeError } from '../rfc5444/wire.js';
import { toHex } from './hex.js';
import { UsageError } from './usage-error.js';

export type EncodeFormat = 'rfc5444';

export function parseEncodeFormat(value: string): EncodeFormat {
  if (value === 'rfc5444') return value;
  throw new UsageError(`unknown format '${value}': expected rfc5444`);
}

/** Reads the input named on the command line: a file, or '-' (the default) for stdin. */
export async function readEncodeInput(arg: string | undefined): Promise<string> {
  if (arg !== undefined && arg !== '-') {
    try {
      return await readFile(arg, 'utf8');
    } catch (err) {
      throw new Error(`cannot read ${arg}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
    }
  }
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

/** Encodes the JSON text; throws an Error whose message is the one line the CLI prints. */
export function encodeToHex(_format: EncodeFormat, text: string): string {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new Error(`input is not JSON: ${(err as Error).message}`);
  }
  try {
    return toHex(encodePacket(packetFromJson(json)));
  } catch (err) {
    if (err instanceof Rfc5444JsonError) throw new Error(`not an RFC 5444 packet: ${err.message}`);
    if (err instanceof Rfc5444EncodeError) throw new Error(`cannot encode: ${err.message}`);
    throw err;
  }
}
