/**
 * A node's identity: an Ed25519 signing key (broadcast signatures, ICV TLVs) and an X25519 key
 * (static–static sealing of unicast datagrams). The node's SID is its 32-byte X25519 public key.
 *
 * The X25519 key is the Montgomery form of the Ed25519 key (RFC 7748 §4.1's birational map, as
 * libsodium's crypto_sign_ed25519_pk_to_curve25519): one secret, and a SID that is bound to the
 * signing key — anyone can check that a signing key belongs to a SID, so nobody can sign HELLOs
 * or topology in another node's name with a key of their own.
 *
 * Key file (JSON, mode 0600, created on first start):
 *   {"version":1,"ed25519":"<32-byte secret, hex>"}
 * A key file that others can read, or whose content is not that, is refused with a message that
 * says what to do; the node never overwrites an existing file.
 */
import { closeSync, mkdirSync, openSync, readFileSync, statSync, writeSync, existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { ed25519 } from '@noble/curves/ed25519.js';

export const SID_LENGTH = 32;

export interface Identity {
  /** X25519 public key: the node's address in the mesh. */
  readonly sid: Uint8Array;
  readonly x25519Secret: Uint8Array;
  readonly ed25519Public: Uint8Array;
  readonly ed25519Secret: Uint8Array;
}

export class KeyFileError extends Error {
  override readonly name = 'KeyFileError';
}

export function defaultKeyFile(): string {
  return join(homedir(), '.meshgw', 'identity.json');
}

export function sidHex(sid: Uint8Array): string {
  // A view, not a copy (it runs several times per datagram).
  return Buffer.from(sid.buffer, sid.byteOffset, sid.byteLength).toString('hex');
}

/** The short form of a SID, for logs: its first 8 hex digits. */
export function sidShort(sid: Uint8Array): string {
  return sidHex(sid).slice(0, 8);
}

export function identityFromSecret(ed25519Secret: Uint8Array): Identity {
  const ed25519Public = ed25519.getPublicKey(ed25519Secret);
  return {
    sid: ed25519.utils.toMontgomery(ed25519Public),
    x25519Secret: ed25519.utils.toMontgomerySecret(ed25519Secret),
    ed25519Public,
    ed25519Secret,
  };
}

/** The SID that belongs to an Ed25519 public key (for checking a key a HELLO or TC carries). */
export function sidOfSigningKey(ed25519Public: Uint8Array): Uint8Array {
  return ed25519.utils.toMontgomery(ed25519Public);
}

export function generateIdentity(): Identity {
  return identityFromSecret(ed25519.utils.randomSecretKey());
}

function parseSecret(path: string, field: string, value: unknown): Uint8Array {
  if (typeof value !== 'string' || !/^[0-9a-f]{64}$/i.test(value)) {
    throw new KeyFileError(`key file ${path}: "${field}" must be 64 hex digits (a 32-byte secret)`);
  }
  return Uint8Array.from(Buffer.from(value, 'hex'));
}

/** Reads a key file, refusing one with loose permissions or unexpected content. */
export function readIdentity(path: string): Identity {
  const mode = statSync(path).mode & 0o777;
  if ((mode & 0o077) !== 0) {
    throw new KeyFileError(
      `key file ${path} can be read by others (mode ${mode.toString(8).padStart(4, '0')}); run: chmod 600 ${path}`,
    );
  }
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new KeyFileError(`key file ${path} is not valid JSON: ${(err as Error).message}`);
  }
  if (typeof json !== 'object' || json === null || (json as { version?: unknown }).version !== 1) {
    throw new KeyFileError(`key file ${path}: expected {"version":1,"ed25519":"<64 hex digits>"}`);
  }
  return identityFromSecret(parseSecret(path, 'ed25519', (json as Record<string, unknown>).ed25519));
}

/** Writes a new key file with mode 0600; fails if the file exists. */
export function writeIdentity(path: string, id: Identity): void {
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  const body = JSON.stringify({ version: 1, ed25519: sidHex(id.ed25519Secret) });
  const fd = openSync(path, 'wx', 0o600);
  try {
    writeSync(fd, body + '\n');
  } finally {
    closeSync(fd);
  }
}

/**
 * Loads the identity at `path`, creating it on first start. With `createDirectory: false` a
 * missing directory is a KeyFileError (a mistyped `--key` path should not grow directories).
 */
export function loadOrCreateIdentity(path = defaultKeyFile(), options: { createDirectory?: boolean } = {}): { identity: Identity; created: boolean } {
  try {
    return { identity: readIdentity(path), created: false };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  if (options.createDirectory === false && !existsSync(dirname(path))) {
    throw new KeyFileError(`no key file ${path}, and its directory ${dirname(path)} does not exist: create it first (a new key is made there on first start)`);
  }
  const identity = generateIdentity();
  writeIdentity(path, identity);
  return { identity, created: true };
}
