/**
 * The boot epoch file and the key lock: one epoch file per key in the state directory, a
 * durable and symlink-safe replace, no (key, nonce) reuse when the file is rolled back, and one
 * running daemon per key.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import fs from 'node:fs';
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EpochFileError, epochFileFor, nextEpoch, startBoot } from '../src/mesh/epoch.js';
import { acquireKeyLock, keyLockFile, KeyLockError } from '../src/mesh/lock.js';
import { identityFromSecret, readIdentity, sidHex, writeIdentity } from '../src/mesh/identity.js';
import { FrameSealer, newBootNonce, type BootToken, type PeerDirectory } from '../src/mesh/seal.js';

const tempDir = (): string => fs.mkdtempSync(join(tmpdir(), 'meshgw-state-'));
const alice = identityFromSecret(new Uint8Array(32).fill(1));
const bob = identityFromSecret(new Uint8Array(32).fill(2));
const carol = identityFromSecret(new Uint8Array(32).fill(3));
const toHex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const tmpFiles = (dir: string): string[] => fs.readdirSync(dir).filter((f) => f.endsWith('.tmp'));

afterEach(() => {
  vi.restoreAllMocks();
});

describe('epoch file', () => {
  it('is one file per key in the state directory, created (mode 0700) when missing', () => {
    const state = join(tempDir(), 'state');
    const path = epochFileFor(state, alice);
    expect(path).toBe(join(state, `epoch-${sidHex(alice.sid).slice(0, 16)}`));
    expect(epochFileFor(state, bob)).not.toBe(path);
    expect(nextEpoch(path)).toBe(1);
    expect(fs.statSync(state).mode & 0o777).toBe(0o700);
    expect(fs.readFileSync(path, 'utf8')).toBe('1\n');
    expect(fs.statSync(path).mode & 0o777).toBe(0o600);
    expect(nextEpoch(path)).toBe(2);
    expect(tmpFiles(state)).toEqual([]);
  });

  it('counts on for the same key started from two key directories with one state directory', () => {
    const keys = tempDir();
    const state = tempDir();
    const secret = identityFromSecret(new Uint8Array(32).fill(9));
    writeIdentity(join(keys, 'a', 'identity.json'), secret);
    writeIdentity(join(keys, 'b', 'identity.json'), secret);
    const fromA = readIdentity(join(keys, 'a', 'identity.json'));
    const fromB = readIdentity(join(keys, 'b', 'identity.json'));
    expect(startBoot(state, fromA).epoch).toBe(1);
    expect(startBoot(state, fromB).epoch).toBe(2);
  });

  it('gives every boot a fresh 8-byte nonce', () => {
    const state = tempDir();
    const a = startBoot(state, alice);
    const b = startBoot(state, alice);
    expect(a.nonce.length).toBe(8);
    expect(toHex(a.nonce)).not.toBe(toHex(b.nonce));
  });

  it('never writes through a symlink planted at the old temporary name', () => {
    const dir = tempDir();
    const path = join(dir, 'epoch-x');
    const target = join(dir, 'precious');
    fs.writeFileSync(target, 'precious\n');
    fs.symlinkSync(target, `${path}.tmp`);
    expect(nextEpoch(path)).toBe(1);
    expect(fs.readFileSync(target, 'utf8')).toBe('precious\n');
    expect(fs.lstatSync(`${path}.tmp`).isSymbolicLink()).toBe(true);
  });

  it('refuses to follow a symlink planted at the very temporary name it creates', () => {
    const dir = tempDir();
    const path = join(dir, 'epoch-x');
    fs.writeFileSync(path, '5\n');
    const target = join(dir, 'precious');
    fs.writeFileSync(target, 'precious\n');
    const realOpen = fs.openSync;
    const planted: string[] = [];
    // The attacker wins every race: a symlink appears at the temporary name just before the open.
    vi.spyOn(fs, 'openSync').mockImplementation(((p: fs.PathLike, ...rest: unknown[]) => {
      if (String(p).endsWith('.tmp')) {
        fs.symlinkSync(target, p);
        planted.push(String(p));
      }
      return (realOpen as (...a: unknown[]) => number)(p, ...rest);
    }) as typeof fs.openSync);
    expect(() => nextEpoch(path)).toThrow(EpochFileError);
    expect(planted).toHaveLength(1);
    expect(planted[0]!.startsWith(`${path}.${process.pid}.`)).toBe(true);
    expect(fs.readFileSync(target, 'utf8')).toBe('precious\n');
    expect(fs.readFileSync(path, 'utf8')).toBe('5\n');
    expect(fs.lstatSync(planted[0]!).isSymbolicLink()).toBe(true); // not ours: left alone
  });

  it('syncs the file, renames it over, then syncs the directory', () => {
    const dir = tempDir();
    const path = join(dir, 'epoch-x');
    const events: string[] = [];
    const realSync = fs.fsyncSync;
    const realRename = fs.renameSync;
    vi.spyOn(fs, 'fsyncSync').mockImplementation((fd) => {
      events.push(fs.fstatSync(fd).isDirectory() ? 'sync directory' : 'sync file');
      realSync(fd);
    });
    vi.spyOn(fs, 'renameSync').mockImplementation((from, to) => {
      events.push('rename');
      realRename(from, to);
    });
    expect(nextEpoch(path)).toBe(1);
    expect(events).toEqual(['sync file', 'rename', 'sync directory']);
  });

  it('removes its temporary file when the replace fails', () => {
    const dir = tempDir();
    const path = join(dir, 'epoch-x');
    fs.writeFileSync(path, '3\n');
    vi.spyOn(fs, 'renameSync').mockImplementation(() => {
      throw Object.assign(new Error('EIO: i/o error, rename'), { code: 'EIO' });
    });
    expect(() => nextEpoch(path)).toThrow(/EIO/);
    expect(tmpFiles(dir)).toEqual([]);
    expect(fs.readFileSync(path, 'utf8')).toBe('3\n');
  });

  it('refuses a corrupt or spent file with a message that says what to do', () => {
    const path = join(tempDir(), 'epoch-x');
    for (const body of ['garbage', '', '-1', '1.5', '4294967295', '99999999999']) {
      fs.writeFileSync(path, body);
      expect(() => nextEpoch(path), body).toThrow(EpochFileError);
      expect(() => nextEpoch(path), body).toThrow(/epoch file .* is corrupt .*fresh key/);
    }
    fs.writeFileSync(path, '4294967294\n');
    expect(nextEpoch(path)).toBe(0xffffffff);
  });
});

describe('boot nonce against a rolled-back epoch file', () => {
  it('two boots with the same epoch share no (key, nonce) pair', () => {
    const path = epochFileFor(tempDir(), alice);
    fs.writeFileSync(path, '41\n');
    const saved = fs.readFileSync(path);
    const first = nextEpoch(path);
    fs.writeFileSync(path, saved); // a power cut undid the rename
    const second = nextEpoch(path);
    expect([first, second]).toEqual([42, 42]);

    const peers = [bob, carol].map((id, i): [typeof bob, BootToken] => [id, { epoch: 3, nonce: new Uint8Array(8).fill(i + 1) }]);
    const bootPairs = (boot: BootToken): { pairs: Set<string>; nonces: Set<string>; frames: Uint8Array[] } => {
      const pairs = new Set<string>();
      const nonces = new Set<string>();
      const sealer = new FrameSealer(alice, boot, {
        onKeyUse: (key, nonce) => {
          pairs.add(`${toHex(key)}/${toHex(nonce)}`);
          nonces.add(toHex(nonce));
        },
      });
      const frames = Array.from({ length: 400 }, (_, i) => {
        const [dst, dstBoot] = peers[i % 2]!;
        return sealer.sealUnicast({ dst: dst.sid, dstBoot, srcPort: 1, dstPort: 2, ttl: 1, payload: new Uint8Array([i & 255]) });
      });
      return { pairs, nonces, frames };
    };
    const bootA: BootToken = { epoch: first, nonce: newBootNonce() };
    const bootB: BootToken = { epoch: second, nonce: newBootNonce() };
    const a = bootPairs(bootA);
    const b = bootPairs(bootB);
    expect(a.pairs.size).toBe(400);
    expect([...b.nonces].filter((n) => a.nonces.has(n))).toHaveLength(400); // the nonces do repeat …
    expect([...b.pairs].filter((p) => a.pairs.has(p))).toEqual([]); // … under other keys

    // Bob has heard the second boot's HELLO: its frames open, the first boot's do not.
    const directory: PeerDirectory = { sidsWithShort: () => [], signingKeyOf: () => alice.ed25519Public, bootOf: () => bootB };
    const receiver = new FrameSealer(bob, peers[0]![1]);
    expect(receiver.open(b.frames[0]!, directory).ok).toBe(true);
    expect(receiver.open(a.frames[2]!, directory)).toEqual({ ok: false, reason: 'bad-tag' });
  });
});

describe('key lock', () => {
  it('lets one process hold a key; a second start is told who holds it', () => {
    const state = join(tempDir(), 'state');
    const lock = acquireKeyLock(state, alice);
    expect(lock.path).toBe(keyLockFile(state, alice));
    expect(lock.path).toBe(join(state, `lock-${sidHex(alice.sid).slice(0, 16)}`));
    expect(fs.readFileSync(lock.path, 'utf8').trim()).toBe(String(process.pid));
    expect(fs.statSync(lock.path).mode & 0o777).toBe(0o600);
    let error: unknown;
    try {
      acquireKeyLock(state, alice);
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(KeyLockError);
    expect((error as Error).name).toBe('KeyLockError');
    expect((error as Error).message).toMatch(new RegExp(`another meshgw \\(pid ${process.pid}\\) is already running with key ${sidHex(alice.sid).slice(0, 8)}… \\(lock .*lock-.*\\); stop it, or give this one its own --key`));
    acquireKeyLock(state, bob).release(); // other keys are not affected
    lock.release();
  });

  it('refuses while another live process holds the lock', () => {
    const state = tempDir();
    fs.writeFileSync(keyLockFile(state, alice), `${process.ppid}\n`);
    expect(() => acquireKeyLock(state, alice)).toThrow(new RegExp(`pid ${process.ppid}\\)`));
    expect(fs.readFileSync(keyLockFile(state, alice), 'utf8')).toBe(`${process.ppid}\n`);
  });

  it('replaces a stale lock: an exited process, garbage, or a pid that would name a process group', () => {
    const state = tempDir();
    const exited = spawnSync(process.execPath, ['-e', '']).pid;
    for (const content of [`${exited}\n`, 'garbage', '', '0\n', '-1\n']) {
      fs.writeFileSync(keyLockFile(state, alice), content);
      const lock = acquireKeyLock(state, alice);
      expect(fs.readFileSync(lock.path, 'utf8').trim(), JSON.stringify(content)).toBe(String(process.pid));
      lock.release();
    }
  });

  it('release removes the lock once, and only while it holds our pid', () => {
    const state = tempDir();
    const lock = acquireKeyLock(state, alice);
    lock.release();
    expect(fs.existsSync(lock.path)).toBe(false);
    lock.release(); // idempotent
    const next = acquireKeyLock(state, alice);
    lock.release(); // the old handle does not remove the new lock
    expect(fs.existsSync(next.path)).toBe(true);
    fs.writeFileSync(next.path, `${process.ppid}\n`); // someone else took it over
    next.release();
    expect(fs.readFileSync(next.path, 'utf8')).toBe(`${process.ppid}\n`);
  });
});
