import { describe, expect, it } from 'vitest';
import { chmodSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { x25519 } from '@noble/curves/ed25519.js';
import { loadOrCreateIdentity, readIdentity, sidOfSigningKey, sidShort } from '../src/mesh/identity.js';

const dir = (): string => mkdtempSync(join(tmpdir(), 'meshgw-id-'));

describe('identity key file', () => {
  it('is created on first start with mode 0600 and read back the same', () => {
    const path = join(dir(), 'sub', 'identity.json');
    const first = loadOrCreateIdentity(path);
    expect(first.created).toBe(true);
    expect(statSync(path).mode & 0o777).toBe(0o600);
    const again = loadOrCreateIdentity(path);
    expect(again.created).toBe(false);
    expect(Buffer.from(again.identity.sid).equals(Buffer.from(first.identity.sid))).toBe(true);
    expect(sidShort(first.identity.sid)).toMatch(/^[0-9a-f]{8}$/);
  });

  it('refuses a key file others can read, saying how to fix it', () => {
    const path = join(dir(), 'identity.json');
    loadOrCreateIdentity(path);
    chmodSync(path, 0o644);
    expect(() => readIdentity(path)).toThrow(/can be read by others \(mode 0644\); run: chmod 600/);
  });

  it('derives the SID from the signing key, so a key can be checked against a SID', () => {
    const { identity } = loadOrCreateIdentity(join(dir(), 'identity.json'));
    expect(Buffer.from(sidOfSigningKey(identity.ed25519Public)).equals(Buffer.from(identity.sid))).toBe(true);
    expect(Buffer.from(x25519.getPublicKey(identity.x25519Secret)).equals(Buffer.from(identity.sid))).toBe(true);
  });

  it('refuses a key file with the wrong content', () => {
    const path = join(dir(), 'identity.json');
    for (const body of ['not json', '{"version":2}', '{"version":1,"ed25519":"00"}']) {
      writeFileSync(path, body, { mode: 0o600 });
      chmodSync(path, 0o600);
      expect(() => readIdentity(path)).toThrow(/key file/);
    }
  });

  it('meshgw id prints the SID', () => {
    const path = join(dir(), 'identity.json');
    const bin = fileURLToPath(new URL('../dist/bin/meshgw.js', import.meta.url));
    const r = spawnSync(process.execPath, [bin, 'id', '--key', path], { encoding: 'utf8' });
    expect(r.status).toBe(0);
    expect(r.stdout.trim()).toMatch(/^[0-9a-f]{64}$/);
    expect(r.stderr).toMatch(/created a new identity/);
    const sid = r.stdout.trim();
    expect(readFileSync(path, 'utf8')).not.toContain(sid); // the file holds secrets, not the SID
    const short = spawnSync(process.execPath, [bin, 'id', '--key', path, '--short'], { encoding: 'utf8' });
    expect(short.stdout.trim()).toBe(sid.slice(0, 8));
    chmodSync(path, 0o640);
    const refused = spawnSync(process.execPath, [bin, 'id', '--key', path], { encoding: 'utf8' });
    expect(refused.status).toBe(1);
    expect(refused.stderr).toMatch(/chmod 600/);
  });
});
