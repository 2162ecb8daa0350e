/** `meshgw id [--key FILE]`: prints this node's SID (creating the key file on first use). */
import type { Command } from 'commander';
import { defaultKeyFile, loadOrCreateIdentity, sidHex, sidShort } from '../mesh/identity.js';

export function idOptions(cmd: Command): Command {
  return cmd
    .option('--key <file>', 'key file', defaultKeyFile())
    .option('--short', 'print the short form (first 8 hex digits)');
}

export function runIdCommand(opts: { key: string; short?: boolean }): void {
  const { identity, created } = loadOrCreateIdentity(opts.key);
  if (created) process.stderr.write(`meshgw: created a new identity in ${opts.key}\n`);
  process.stdout.write(`${opts.short ? sidShort(identity.sid) : sidHex(identity.sid)}\n`);
}
