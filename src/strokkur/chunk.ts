/**
 * The Strokkur chunk: one datagram of one message (byte diagram and rules: SPEC.md beside this
 * file). A pure codec: the erasure code's rows are code.ts, sending send.ts, receiving receive.ts.
 *
 *   byte 0      0x73 ('s')     magic (RFC 5444 packets start 0x0_, mesh datagram frames 0x5_)
 *   byte 1      VVVV 00SK      version 1 in the high nibble; S = SHA-3 digest (SHA3-256), else
 *                              SHA-256; K = keyed (HMAC-SHA-256, or keyed SHA3-256); bits 3..2 zero
 *   2..17       uuid           16 random bytes per message
 *   18..20      messageSize    u24 BE, 1 .. 4 MiB
 *   21..22      chunkSize      u16 BE, payload bytes per chunk, ≥ 1
 *   23..24      rows           u16 BE, n = k + 1 + R
 *   25..26      index          u16 BE, 0 .. n-1; below k a source chunk, else a redundant row
 *   27..30      seed           u32 BE, generates the redundant rows' coefficients
 *   31..        payload        exactly chunkSize bytes
 *
 * k is not on the wire: k = ceil((messageSize + 32) / chunkSize), because the coded data is the
 * message followed by its 32-byte digest, zero-padded to k chunks.
 */

export const STROKKUR_MAGIC = 0x73;
export const STROKKUR_VERSION = 1;
/** Flag bit in byte 1: the digest is keyed with a preshared key (HMAC-SHA-256, or keyed SHA3-256 with SHA3_FLAG). */
export const KEYED_FLAG = 0x01;
/** Flag bit in byte 1: the digest is of the SHA-3 family (SHA3-256); clear: SHA-256. */
export const SHA3_FLAG = 0x02;
/** Byte 1's reserved bits (3..2): a chunk with any of them set is dropped. */
export const RESERVED_FLAGS = 0x0c;

/** The digest that follows the message in the coded data (byte 1's S bit). */
export type DigestAlgorithm = 'sha256' | 'sha3-256';
export const MAX_MESSAGE = 4 * 1024 * 1024;
/** Bytes of the digest (any of the four) that follow the message in the coded data. */
export const HASH_LENGTH = 32;
/** Header bytes per chunk. */
export const CHUNK_OVERHEAD = 31;
export const MAX_CHUNK_SIZE = 0xffff;
/** rows is a u16: k + 1 + R ≤ 65,535 (so a 4 MiB message needs chunks of at least 65 bytes). */
export const MAX_ROWS = 0xffff;
/**
 * At most this many redundant rows (1 + R ≤ 1024): a receive state keeps one k-bit coefficient
 * vector per redundant row it holds, so this bounds its bookkeeping to 128 bits per source chunk.
 */
export const MAX_REDUNDANT_ROWS = 1024;

export interface ChunkHeader {
  uuid: Uint8Array;
  messageSize: number;
  /** Source chunks: ceil((messageSize + HASH_LENGTH) / chunkSize). Not on the wire. */
  k: number;
  chunkSize: number;
  /** Total rows n = k + 1 + R. */
  rows: number;
  /** 0..rows-1; below k a source chunk. */
  index: number;
  /** u32: generates the redundant rows' coefficients. */
  seed: number;
  /** Keyed digest (HMAC-SHA-256, or keyed SHA3-256). */
  keyed: boolean;
  /** The digest's family: absent (as decodeChunk gives it for S = 0) means 'sha256'. */
  digest?: DigestAlgorithm;
}

/** The header's digest family (absent: SHA-256). */
export function digestAlgorithmOf(h: ChunkHeader): DigestAlgorithm {
  return h.digest ?? 'sha256';
}

export interface Chunk {
  header: ChunkHeader;
  /** chunkSize bytes. From decodeChunk: a view into the datagram, not a copy. */
  payload: Uint8Array;
}

export type DecodeChunkResult = { ok: true; chunk: Chunk } | { ok: false; reason: string };

/** Source chunks for a message of `messageSize` bytes cut into `chunkSize`-byte chunks. */
export function sourceChunks(messageSize: number, chunkSize: number): number {
  return Math.ceil((messageSize + HASH_LENGTH) / chunkSize);
}

/** Why a header cannot be valid, or undefined when it is. Shared by both directions. */
export function headerProblem(h: ChunkHeader): string | undefined {
  if (!(h.uuid instanceof Uint8Array) || h.uuid.length !== 16) return 'uuid must be 16 bytes';
  if (!Number.isInteger(h.messageSize) || h.messageSize < 1 || h.messageSize > MAX_MESSAGE) return `message size ${h.messageSize} outside 1..${MAX_MESSAGE}`;
  if (!Number.isInteger(h.chunkSize) || h.chunkSize < 1 || h.chunkSize > MAX_CHUNK_SIZE) return `chunk size ${h.chunkSize} outside 1..${MAX_CHUNK_SIZE}`;
  const k = sourceChunks(h.messageSize, h.chunkSize);
  if (h.k !== k) return `k ${h.k} does not match message and chunk size (${k})`;
  if (!Number.isInteger(h.rows) || h.rows > MAX_ROWS) return `rows ${h.rows} above ${MAX_ROWS}`;
  if (h.rows < k + 1) return `rows ${h.rows} below k + 1 = ${k + 1}`;
  if (h.rows - k > MAX_REDUNDANT_ROWS) return `${h.rows - k} redundant rows, above ${MAX_REDUNDANT_ROWS}`;
  if (!Number.isInteger(h.index) || h.index < 0 || h.index >= h.rows) return `index ${h.index} outside 0..${h.rows - 1}`;
  if (!Number.isInteger(h.seed) || h.seed < 0 || h.seed > 0xffffffff) return `seed ${h.seed} is not a u32`;
  if (h.digest !== undefined && h.digest !== 'sha256' && h.digest !== 'sha3-256') return `unknown digest ${String(h.digest)}`;
  return undefined;
}

/** The datagram for a chunk. Throws RangeError for a header or payload that cannot be valid. */
export function encodeChunk(c: Chunk): Uint8Array {
  const h = c.header;
  const problem = headerProblem(h);
  if (problem !== undefined) throw new RangeError(problem);
  if (c.payload.length !== h.chunkSize) throw new RangeError(`payload is ${c.payload.length} bytes, chunk size is ${h.chunkSize}`);
  const out = new Uint8Array(CHUNK_OVERHEAD + h.chunkSize);
  out[0] = STROKKUR_MAGIC;
  out[1] = (STROKKUR_VERSION << 4) | (h.digest === 'sha3-256' ? SHA3_FLAG : 0) | (h.keyed ? KEYED_FLAG : 0);
  out.set(h.uuid, 2);
  out[18] = h.messageSize >>> 16;
  out[19] = (h.messageSize >>> 8) & 0xff;
  out[20] = h.messageSize & 0xff;
  out[21] = h.chunkSize >>> 8;
  out[22] = h.chunkSize & 0xff;
  out[23] = h.rows >>> 8;
  out[24] = h.rows & 0xff;
  out[25] = h.index >>> 8;
  out[26] = h.index & 0xff;
  out[27] = h.seed >>> 24;
  out[28] = (h.seed >>> 16) & 0xff;
  out[29] = (h.seed >>> 8) & 0xff;
  out[30] = h.seed & 0xff;
  out.set(c.payload, CHUNK_OVERHEAD);
  return out;
}

/** Parses one datagram. Never throws; every field is checked. The payload is a view into `bytes`. */
export function decodeChunk(bytes: Uint8Array): DecodeChunkResult {
  if (!(bytes instanceof Uint8Array)) return { ok: false, reason: 'not bytes' };
  if (bytes.length < CHUNK_OVERHEAD + 1) return { ok: false, reason: `${bytes.length} bytes, shorter than a chunk` };
  if (bytes[0] !== STROKKUR_MAGIC) return { ok: false, reason: 'not a Strokkur chunk (magic)' };
  const b1 = bytes[1]!;
  if (b1 >>> 4 !== STROKKUR_VERSION) return { ok: false, reason: `unknown version ${b1 >>> 4}` };
  if ((b1 & RESERVED_FLAGS) !== 0) return { ok: false, reason: 'reserved flag bits set' };
  const at = (i: number): number => bytes[i]!;
  const messageSize = (at(18) << 16) | (at(19) << 8) | at(20);
  const chunkSize = (at(21) << 8) | at(22);
  const rows = (at(23) << 8) | at(24);
  const index = (at(25) << 8) | at(26);
  const seed = ((at(27) << 24) | (at(28) << 16) | (at(29) << 8) | at(30)) >>> 0;
  if (chunkSize === 0) return { ok: false, reason: 'chunk size 0' };
  if (bytes.length !== CHUNK_OVERHEAD + chunkSize) {
    return { ok: false, reason: `${bytes.length - CHUNK_OVERHEAD} payload bytes, chunk size is ${chunkSize}` };
  }
  const header: ChunkHeader = {
    uuid: bytes.slice(2, 18),
    messageSize,
    k: messageSize > 0 ? sourceChunks(messageSize, chunkSize) : 0,
    chunkSize,
    rows,
    index,
    seed,
    keyed: (b1 & KEYED_FLAG) !== 0,
  };
  if ((b1 & SHA3_FLAG) !== 0) header.digest = 'sha3-256';
  const problem = headerProblem(header);
  if (problem !== undefined) return { ok: false, reason: problem };
  return { ok: true, chunk: { header, payload: bytes.subarray(CHUNK_OVERHEAD) } };
}

/**
 * Payload bytes per chunk for a transport that carries datagrams of up to `pathMtu` bytes (for
 * UDP: the UDP payload; over the mesh: the path MTU of a port datagram). Throws RangeError when
 * not even one payload byte fits.
 */
export function chunkSizeFor(pathMtu: number): number {
  if (!Number.isInteger(pathMtu) || pathMtu <= CHUNK_OVERHEAD) {
    throw new RangeError(`path MTU ${pathMtu} leaves no room after the ${CHUNK_OVERHEAD}-byte chunk header`);
  }
  return Math.min(MAX_CHUNK_SIZE, pathMtu - CHUNK_OVERHEAD);
}
