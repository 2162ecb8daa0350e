/**
 * Messi framing, sans-IO: every frame is a header (type, size) and `size` payload bytes.
 *
 * Two versions of the header are on the wire (SPEC.md has the diagrams):
 *  - `seed` (Messi before 0.6): 4-byte big-endian type, 4-byte big-endian size. Types: 1 user
 *    message (either direction), 2 ping, 3 pong.
 *  - `current` (Messi 0.6 up to 0.29): 1-byte type, 3-byte big-endian size. Types: 1
 *    client→server message, 2 server→client message, 3 ping, 4 pong.
 *
 * A server tells them apart by a connection's first byte: a seed header begins with the high
 * byte of a small type, 0; a current header never begins with 0 (no type 0 exists). The decoder
 * in `auto` mode does exactly that.
 *
 * Decoder rules, for bytes from a TCP socket (any chunking):
 *  - a size field above `maxFrame` is an `oversize` error at once: the body is never buffered,
 *    and the decoder stops (the connection is to be dropped; a stream cannot resynchronise);
 *  - `end()` in the middle of a frame is a `truncated` error;
 *  - memory is one header buffer plus one payload buffer of at most `maxFrame` bytes;
 *  - types are not judged here (a frame carries its raw type): the connection layer decides
 *    what an unknown type means.
 * The decoder never throws on input; errors come back as events.
 */

export type MessiVersion = 'seed' | 'current';

/** The same, under the name the generated code uses. */
export type MessiWireVersion = MessiVersion;

/** Header length of each version, in bytes. */
export const HEADER_SIZE: Readonly<Record<MessiVersion, number>> = { seed: 8, current: 4 };

/** Largest size field each version can carry. */
export const MAX_SIZE_FIELD: Readonly<Record<MessiVersion, number>> = { seed: 0xffff_ffff, current: 0xff_ffff };

/** Default cap on one frame's payload: 64 KiB. */
export const DEFAULT_MAX_FRAME = 64 * 1024;

/** Type numbers of the current version (Messi 0.6 and after; `MESSI_MESSAGE_TYPE_*`). */
export const CurrentType = {
  CLIENT_TO_SERVER_USER: 1,
  SERVER_TO_CLIENT_USER: 2,
  PING: 3,
  PONG: 4,
} as const;

/** Type numbers of the seed version (one user type for both directions). */
export const SeedType = {
  USER: 1,
  PING: 2,
  PONG: 3,
} as const;

/** What a frame means, independent of the version. */
export type FrameKind = 'client-to-server' | 'server-to-client' | 'ping' | 'pong';

/** Who receives the frame: decides what the seed version's type 1 means. */
export type Direction = 'to-server' | 'to-client';

/** The type number of `kind` in `version`. */
export function frameType(version: MessiVersion, kind: FrameKind): number {
  if (version === 'current') {
    switch (kind) {
      case 'client-to-server':
        return CurrentType.CLIENT_TO_SERVER_USER;
      case 'server-to-client':
        return CurrentType.SERVER_TO_CLIENT_USER;
      case 'ping':
        return CurrentType.PING;
      case 'pong':
        return CurrentType.PONG;
    }
  }
  switch (kind) {
    case 'client-to-server':
    case 'server-to-client':
      return SeedType.USER;
    case 'ping':
      return SeedType.PING;
    case 'pong':
      return SeedType.PONG;
  }
}

/**
 * The meaning of a received `type` in `version` for a receiver at `direction`, or undefined for
 * a type that has no meaning there (e.g. a ping arriving at a client).
 */
export function frameKind(version: MessiVersion, type: number, direction: Direction): FrameKind | undefined {
  if (version === 'current') {
    if (direction === 'to-server') {
      if (type === CurrentType.CLIENT_TO_SERVER_USER) return 'client-to-server';
      if (type === CurrentType.PING) return 'ping';
      return undefined;
    }
    if (type === CurrentType.SERVER_TO_CLIENT_USER) return 'server-to-client';
    if (type === CurrentType.PONG) return 'pong';
    return undefined;
  }
  if (direction === 'to-server') {
    if (type === SeedType.USER) return 'client-to-server';
    if (type === SeedType.PING) return 'ping';
    return undefined;
  }
  if (type === SeedType.USER) return 'server-to-client';
  if (type === SeedType.PONG) return 'pong';
  return undefined;
}

export interface MessiFrame {
  /** The raw type number of the header. */
  type: number;
  payload: Uint8Array;
}

/** Writes one frame: header then payload. Throws RangeError for a type or size the version cannot carry. */
export function encodeFrame(version: MessiVersion, type: number, payload: Uint8Array = new Uint8Array(0)): Uint8Array {
  const h = HEADER_SIZE[version];
  const maxType = version === 'seed' ? 0xffff_ffff : 0xff;
  if (!Number.isInteger(type) || type < 0 || type > maxType) {
    throw new RangeError(`Messi ${version} frame type must be 0..${maxType}, got ${type}`);
  }
  if (payload.length > MAX_SIZE_FIELD[version]) {
    throw new RangeError(`Messi ${version} frame cannot carry ${payload.length} bytes`);
  }
  const out = new Uint8Array(h + payload.length);
  const view = new DataView(out.buffer);
  if (version === 'seed') {
    view.setUint32(0, type);
    view.setUint32(4, payload.length);
  } else {
    view.setUint32(0, payload.length);
    out[0] = type;
  }
  out.set(payload, h);
  return out;
}

/** Encodes a frame by meaning rather than number. */
export function encodeKind(version: MessiVersion, kind: FrameKind, payload?: Uint8Array): Uint8Array {
  return encodeFrame(version, frameType(version, kind), payload);
}

/** The version a connection speaks, judged from its first byte. */
export function versionOfFirstByte(byte: number): MessiVersion {
  return byte === 0 ? 'seed' : 'current';
}

export type MessiFramingErrorCode = 'oversize' | 'truncated';

export interface MessiFramingError {
  code: MessiFramingErrorCode;
  /** Offset in the decoder's input stream of the frame's first header byte. */
  offset: number;
  /** For `oversize`: the size field read. For `truncated`: the bytes of the frame that arrived. */
  size: number;
  /** For `oversize`: the cap in force. */
  maxFrame: number;
  /** A sentence for logs. */
  reason: string;
}

export type MessiFrameEvent = { frame: MessiFrame; offset: number } | { error: MessiFramingError };

export interface MessiFramingCounters {
  frames: number;
  bytes: number;
  oversize: number;
  truncated: number;
}

export interface MessiFrameDecoderOptions {
  /** A fixed version, or `auto` to judge it from the first byte (a server's choice). Default `current`. */
  version?: MessiVersion | 'auto';
  /** Cap on a frame's payload, in bytes. Default 64 KiB. */
  maxFrame?: number;
}

/** Streaming Messi frame decoder. After an error it is `failed` and ignores further input. */
export class MessiFrameDecoder {
  private ver: MessiVersion | undefined;
  private readonly maxFrame: number;
  private header = new Uint8Array(8);
  private headerFill = 0;
  private payload: Uint8Array | undefined;
  private payloadFill = 0;
  private type = 0;
  private frameStart = 0;
  private pos = 0;
  private dead = false;
  readonly counters: MessiFramingCounters = { frames: 0, bytes: 0, oversize: 0, truncated: 0 };

  constructor(options: MessiFrameDecoderOptions = {}) {
    const maxFrame = options.maxFrame ?? DEFAULT_MAX_FRAME;
    if (!Number.isInteger(maxFrame) || maxFrame < 0) {
      throw new RangeError(`maxFrame must be a non-negative integer, got ${maxFrame}`);
    }
    this.maxFrame = maxFrame;
    const v = options.version ?? 'current';
    this.ver = v === 'auto' ? undefined : v;
  }

  /** The version in use; undefined in `auto` mode until the first byte has arrived. */
  get version(): MessiVersion | undefined {
    return this.ver;
  }

  /** Bytes consumed so far. */
  get position(): number {
    return this.pos;
  }

  /** True after an error: the stream cannot be trusted further. */
  get failed(): boolean {
    return this.dead;
  }

  /** Bytes held for an incomplete frame (never more than the header plus `maxFrame`). */
  get buffered(): number {
    return this.headerFill + this.payloadFill;
  }

  push(chunk: Uint8Array): MessiFrameEvent[] {
    const events: MessiFrameEvent[] = [];
    if (this.dead) return events;
    let i = 0;
    while (i < chunk.length) {
      if (this.ver === undefined) this.ver = versionOfFirstByte(chunk[i]!);
      const h = HEADER_SIZE[this.ver];
      if (this.payload === undefined) {
        if (this.headerFill === 0) this.frameStart = this.pos + i;
        const take = Math.min(h - this.headerFill, chunk.length - i);
        this.header.set(chunk.subarray(i, i + take), this.headerFill);
        this.headerFill += take;
        i += take;
        if (this.headerFill < h) break;
        const view = new DataView(this.header.buffer);
        let size: number;
        if (this.ver === 'seed') {
          this.type = view.getUint32(0);
          size = view.getUint32(4);
        } else {
          this.type = this.header[0]!;
          size = view.getUint32(0) & 0xff_ffff;
        }
        if (size > this.maxFrame) {
          this.counters.oversize++;
          this.dead = true;
          this.headerFill = 0;
          events.push({
            error: {
              code: 'oversize',
              offset: this.frameStart,
              size,
              maxFrame: this.maxFrame,
              reason: `frame of ${size} bytes at offset ${this.frameStart} exceeds the ${this.maxFrame}-byte cap`,
            },
          });
          this.pos += i;
          return events;
        }
        this.payload = new Uint8Array(size);
        this.payloadFill = 0;
      }
      const p = this.payload;
      const take = Math.min(p.length - this.payloadFill, chunk.length - i);
      if (take > 0) {
        p.set(chunk.subarray(i, i + take), this.payloadFill);
        this.payloadFill += take;
        i += take;
      }
      if (this.payloadFill === p.length) {
        events.push({ frame: { type: this.type, payload: p }, offset: this.frameStart });
        this.counters.frames++;
        this.counters.bytes += h + p.length;
        this.payload = undefined;
        this.payloadFill = 0;
        this.headerFill = 0;
      }
    }
    this.pos += chunk.length;
    return events;
  }

  /** The stream ended: reports a frame cut short, if any. */
  end(): MessiFrameEvent[] {
    if (this.dead || this.buffered === 0) return [];
    const size = this.buffered;
    this.dead = true;
    this.counters.truncated++;
    this.headerFill = 0;
    this.payload = undefined;
    this.payloadFill = 0;
    return [
      {
        error: {
          code: 'truncated',
          offset: this.frameStart,
          size,
          maxFrame: this.maxFrame,
          reason: `stream ended ${size} bytes into the frame at offset ${this.frameStart}`,
        },
      },
    ];
  }
}
