/**
 * The boot epoch: a counter kept on disk beside the key file and raised, durably, every time
 * the node starts (and whenever its 32-bit frame counter would wrap). Every frame's nonce is
 * epoch ‖ counter, and the epoch is mixed into each sealing key, so no nonce repeats under one
 * key across restarts — as long as the file is not rolled back (a node restored from a backup
 * must get a fresh key file, or an epoch file raised past the old one).
 */
import { closeSync, fsyncSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs';

export class EpochFileError extends Error {
  override readonly name = 'EpochFileError';
}

/** Reads the last epoch (0 if the file does not exist), stores last + 1 durably, returns it. */
export function nextEpoch(path: string): number {
  let last = 0;
  try {
    const text = readFileSync(path, 'utf8').trim();
    if (!/^\d+$/.test(text) || Number(text) > 0xfffffffe) {
      throw new EpochFileError(`epoch file ${path} is corrupt ('${text.slice(0, 20)}'); it must hold one number below 4294967295`);
    }
    last = Number(text);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  const next = last + 1;
  const tmp = `${path}.tmp`;
  const fd = openSync(tmp, 'w', 0o600);
  try {
    writeSync(fd, `${next}\n`);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
  return next;
}
