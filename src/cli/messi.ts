/**
 * `meshgw messi generate PROTO --out DIR`: writes the TypeScript messages, client and server
 * modules of a Messi protocol (src/messi/generate.ts) into DIR, creating it if needed, and
 * prints the path of each file written.
 *
 * A .proto the generator refuses (malformed, or without ClientToServer / ServerToClient each
 * holding one oneof) is a usage error: one line `FILE:LINE: problem`, exit 2. A PROTO that does
 * not exist is a usage error too; a DIR that cannot be written is a run-time failure (exit 1).
 */
import type { Command } from 'commander';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { MessiGenerateError, generateMessi } from '../messi/generate.js';
import { UsageError } from './usage-error.js';

export interface MessiGenerateCommandOptions {
  out: string;
}

export function messiGenerateOptions(cmd: Command): Command {
  return cmd
    .argument('<proto>', 'the .proto with ClientToServer and ServerToClient, each one oneof of the messages')
    .requiredOption('--out <dir>', 'directory to write <package>-messages.ts, <package>-client.ts and <package>-server.ts into');
}

export async function runMessiGenerateCommand(proto: string, opts: MessiGenerateCommandOptions): Promise<void> {
  let text: string;
  try {
    text = await readFile(proto, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') throw new UsageError(`cannot read '${proto}': no such file`);
    if (code === 'EISDIR') throw new UsageError(`cannot read '${proto}': it is a directory`);
    throw new Error(`cannot read '${proto}': ${(err as Error).message}`);
  }
  let generated;
  try {
    generated = generateMessi(text, { file: proto });
  } catch (err) {
    if (err instanceof MessiGenerateError) throw new UsageError(err.message);
    throw err;
  }
  try {
    await mkdir(opts.out, { recursive: true });
  } catch (err) {
    throw new Error(`cannot create the output directory '${opts.out}': ${(err as Error).message}`);
  }
  for (const f of generated.files) {
    const path = join(opts.out, f.name);
    try {
      await writeFile(path, f.text);
    } catch (err) {
      throw new Error(`cannot write '${path}': ${(err as Error).message}`);
    }
    process.stdout.write(path + '\n');
  }
}
