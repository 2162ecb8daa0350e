/**
 * The boot epoch: a counter kept on disk and raised, durably, every time the node starts (and
 * whenever its 32-bit frame counter would wrap). Every frame's nonce is epoch ‖ counter, and the
 * epoch — with a random boot nonce (seal.ts) — is mixed into each sealing key.
 *
 * One epoch file per key, in a state directory (~/.meshgw by default), named after the key's
 * SID rather than kept beside the key file: the same key started from another key directory
 * still counts on. The boot nonce covers what a file cannot: an epoch that repeats after a power
 * cut undid the last write, or a key copied to another machine, still never repeats a
 * (key, nonce) pair.
 *
 * The write is the classic durable replace — a new temporary file, fsync, rename over, fsync the
 * directory — with the temporary created exclusively and without following symlinks, so nothing
 * planted at its name is ever written through.
 */
import fs from 'node:fs';
import { randomBytes } from 'node:crypto';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { sidHex, type Identity } from './identity.js';
import { newBootNonce, type BootToken } from './seal.js';

/** The last epoch a file may hold: the next one must still fit in 32 bits. */
const MAX_STORED = 0xfffffffe;
const { O_WRONLY, O_CREAT, O_EXCL, O_NOFOLLOW, O_RDONLY, O_DIRECTORY } = fs.constants;

export class EpochFileError extends Error {
  override readonly name = 'EpochFileError';
}

/** Where meshgw keeps per-key state (epoch files, locks) unless told otherwise. */
export function defaultStateDir(): string {
  return join(homedir(), '.meshgw');
}

/** The epoch file of a key: `epoch-` and the first 16 hex digits of its SID. */
export function epochFileFor(stateDir: string, identity: Identity): string {
  return join(stateDir, `epoch-${sidHex(identity.sid).slice(0, 16)}`);
}

/** This boot's token: the next epoch from the key's epoch file and a fresh boot nonce. */
export function startBoot(stateDir: string, identity: Identity): BootToken {
  return { epoch: nextEpoch(epochFileFor(stateDir, identity)), nonce: newBootNonce() };
}

/** Reads the last epoch (0 if the file does not exist), stores last + 1 durably, returns it. */
export function nextEpoch(path: string): number {
  const dir = dirname(path);
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const next = readEpoch(path) + 1;
  replaceDurably(path, `${next}\n`);
  return next;
}

function readEpoch(path: string): number {
  let text: string;
  try {
    text = fs.readFileSync(path, 'utf8').trim();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 0;
    throw err;
  }
  if (!/^\d{1,10}$/.test(text) || Number(text) > MAX_STORED) {
    throw new EpochFileError(
      `epoch file ${path} is corrupt ('${text.slice(0, 20)}'); it must hold one number below ${MAX_STORED + 1}. ` +
        'Give the node a fresh key, or write a number above any it has used.',
    );
  }
  return Number(text);
}

/** Writes `content` to a fresh temporary file, syncs it, renames it over `path`, syncs the directory. */
function replaceDurably(path: string, content: string): void {
  const tmp = `${path}.${process.pid}.${randomBytes(8).toString('hex')}.tmp`;
  const fd = createExclusive(tmp);
  try {
    try {
      writeAll(fd, Buffer.from(content));
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(tmp, path);
  } catch (err) {
    removeQuietly(tmp);
    throw err;
  }
  syncDirectory(dirname(path));
}

/** O_EXCL|O_NOFOLLOW: fails on anything already at the name, a symlink included. */
function createExclusive(tmp: string): number {
  try {
    return fs.openSync(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0o600);
  } catch (err) {
    throw new EpochFileError(`cannot create the temporary epoch file ${tmp}: ${(err as Error).message}`);
  }
}

function writeAll(fd: number, bytes: Buffer): void {
  for (let o = 0; o < bytes.length; ) o += fs.writeSync(fd, bytes, o);
}

/** Makes a rename in `dir` survive a power cut. */
function syncDirectory(dir: string): void {
  const fd = fs.openSync(dir, O_RDONLY | O_DIRECTORY);
  try {
    fs.fsyncSync(fd);
  } catch (err) {
    // Some file systems cannot sync a directory at all; anything else is a real failure.
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'EINVAL' && code !== 'ENOTSUP') throw err;
  } finally {
    fs.closeSync(fd);
  }
}

function removeQuietly(path: string): void {
  try {
    fs.unlinkSync(path);
  } catch {
    // already gone
  }
}
