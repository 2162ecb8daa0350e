/**
 * One running meshgw per key. Two processes with one key would share an epoch file and, worse,
 * answer for one SID at once; so a daemon takes `lock-<16 hex of the SID>` in the state
 * directory before it raises the epoch, and refuses to start while another live process holds it.
 *
 * The lock file holds the holder's pid. It is created exclusively and without following
 * symlinks. A lock whose pid is no longer running (the holder crashed), or whose content is
 * not a pid, is stale and replaced once; a simultaneous start of two daemons may still race on
 * a stale lock, which is the best a pid file can do.
 */
import fs from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { sidHex, sidShort, type Identity } from './identity.js';

const { O_WRONLY, O_CREAT, O_EXCL, O_NOFOLLOW } = fs.constants;
/** Above this, not a pid (process.kill takes a signed 32-bit one). */
const MAX_PID = 2 ** 31 - 1;

export class KeyLockError extends Error {
  override readonly name = 'KeyLockError';
}

export interface KeyLock {
  readonly path: string;
  /** Removes the lock if it still holds our pid. Idempotent. */
  release(): void;
}

/** The lock file of a key: `lock-` and the first 16 hex digits of its SID. */
export function keyLockFile(stateDir: string, identity: Identity): string {
  return join(stateDir, `lock-${sidHex(identity.sid).slice(0, 16)}`);
}

/** Takes the key's lock, replacing a stale one; throws KeyLockError if a live process holds it. */
export function acquireKeyLock(stateDir: string, identity: Identity): KeyLock {
  fs.mkdirSync(stateDir, { recursive: true, mode: 0o700 });
  const path = keyLockFile(stateDir, identity);
  if (!tryCreate(path)) {
    const held = readLock(path);
    const holder = lockHolder(held);
    if (holder !== undefined && isAlive(holder)) throw heldError(path, holder, identity);
    if (held !== undefined) unlinkIfUnchanged(path, held);
    if (!tryCreate(path)) {
      const racer = lockHolder(readLock(path));
      throw racer !== undefined ? heldError(path, racer, identity) : new KeyLockError(`cannot take the lock ${tilde(path)}: something that is not a meshgw lock is in the way; remove it`);
    }
  }
  return lockHandle(path);
}

function lockHandle(path: string): KeyLock {
  let released = false;
  return {
    path,
    release(): void {
      if (released) return;
      released = true;
      const held = readLock(path);
      if (held !== undefined && lockHolder(held) === process.pid) unlinkIfUnchanged(path, held);
    },
  };
}

/** Creates the lock holding our pid; false if something is already at the path. */
function tryCreate(path: string): boolean {
  let fd: number;
  try {
    fd = fs.openSync(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0o600);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw err;
  }
  try {
    fs.writeSync(fd, `${process.pid}\n`);
  } finally {
    fs.closeSync(fd);
  }
  return true;
}

/** The lock's content, or undefined if it is gone (or cannot be read as a file). */
function readLock(path: string): string | undefined {
  try {
    return fs.readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}

/** The pid a lock's content names, or undefined for garbage (0 and negatives would mean process groups). */
function lockHolder(content: string | undefined): number | undefined {
  const text = content?.trim() ?? '';
  if (!/^\d{1,10}$/.test(text)) return undefined;
  const pid = Number(text);
  return pid > 0 && pid <= MAX_PID ? pid : undefined;
}

/** Signal 0 checks existence; EPERM means it exists under another user. */
function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Removes the lock only if it still says what we read, so we never remove a lock just taken by another start. */
function unlinkIfUnchanged(path: string, content: string): void {
  if (readLock(path) !== content) return;
  try {
    fs.unlinkSync(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
}

function heldError(path: string, pid: number, identity: Identity): KeyLockError {
  return new KeyLockError(
    `another meshgw (pid ${pid}) is already running with key ${sidShort(identity.sid)}… (lock ${tilde(path)}); ` +
      'stop it, or give this one its own --key',
  );
}

/** A path under the home directory as ~/…, for messages. */
function tilde(path: string): string {
  const home = homedir();
  return path.startsWith(home + '/') ? '~' + path.slice(home.length) : path;
}
