/**
 * SLIP framing (RFC 1055), sans-IO.
 *
 * A frame is delimited by END (0xC0). Inside a frame END is sent as ESC ESC_END (DB DC) and ESC
 * as ESC ESC_ESC (DB DD). KISS (kiss.ts) uses exactly this byte stuffing with the names FEND,
 * FESC, TFEND and TFESC, so both codecs share the decoder below.
 *
 * Decoder rules, for bytes from a serial line that may be noisy or start mid-frame:
 *  - back-to-back END bytes delimit nothing: no empty frames are produced;
 *  - bytes before the first END of a stream are noise (the line may have started mid-frame):
 *    they are dropped and reported once as `unframed`;
 *  - ESC followed by anything but ESC_END or ESC_ESC drops the frame (`bad-escape`) and the
 *    decoder discards bytes until the next END;
 *  - a frame longer than `maxFrame` bytes (after unstuffing) is dropped (`oversize`) and the
 *    decoder resynchronises at the next END. Memory is one buffer of `maxFrame` bytes.
 */

export const END = 0xc0;
export const ESC = 0xdb;
export const ESC_END = 0xdc;
export const ESC_ESC = 0xdd;

/** Why a decoder dropped bytes. */
export type FramingErrorCode = 'unframed' | 'bad-escape' | 'oversize' | 'truncated';

export interface FramingError {
  code: FramingErrorCode;
  /** Offset in the decoder's input stream of the byte that revealed the error. */
  offset: number;
}

export interface FramingCounters {
  frames: number;
  bytes: number;
  unframed: number;
  badEscape: number;
  oversize: number;
  truncated: number;
}

export type FramingEvent = { frame: Uint8Array } | { error: FramingError };

/** Default cap on one decoded frame, in bytes: comfortably above a 1500-byte datagram. */
export const DEFAULT_MAX_FRAME = 2048;

/** Bytes needed to stuff `data`, without the END delimiters. */
/** Below this size a plain byte loop beats native indexOf calls and subarray views. */
const SMALL = 128;

export function stuffedLength(data: Uint8Array): number {
  let n = data.length;
  if (n < SMALL) {
    for (let i = 0; i < data.length; i++) {
      const b = data[i]!;
      if (b === END || b === ESC) n++;
    }
    return n;
  }
  // indexOf is native: count only the special bytes instead of visiting every byte.
  for (let i = data.indexOf(END); i >= 0; i = data.indexOf(END, i + 1)) n++;
  for (let i = data.indexOf(ESC); i >= 0; i = data.indexOf(ESC, i + 1)) n++;
  return n;
}

/**
 * Writes `data` stuffed into `out` at `offset`; returns the offset after the last byte written.
 * `out` must have room for `stuffedLength(data)` bytes.
 */
export function stuffInto(data: Uint8Array, out: Uint8Array, offset: number): number {
  let o = offset;
  if (data.length < SMALL) {
    for (let i = 0; i < data.length; i++) {
      const b = data[i]!;
      if (b === END) {
        out[o++] = ESC;
        out[o++] = ESC_END;
      } else if (b === ESC) {
        out[o++] = ESC;
        out[o++] = ESC_ESC;
      } else {
        out[o++] = b;
      }
    }
    return o;
  }
  // Copy the runs between special bytes natively; escape the special bytes one by one.
  let from = 0;
  let nextEnd = data.indexOf(END);
  let nextEsc = data.indexOf(ESC);
  while (nextEnd >= 0 || nextEsc >= 0) {
    const at = nextEsc < 0 || (nextEnd >= 0 && nextEnd < nextEsc) ? nextEnd : nextEsc;
    out.set(data.subarray(from, at), o);
    o += at - from;
    out[o++] = ESC;
    if (at === nextEnd) {
      out[o++] = ESC_END;
      nextEnd = data.indexOf(END, at + 1);
    } else {
      out[o++] = ESC_ESC;
      nextEsc = data.indexOf(ESC, at + 1);
    }
    from = at + 1;
  }
  out.set(data.subarray(from), o);
  return o + data.length - from;
}

/** Encodes one SLIP frame: END, the stuffed datagram, END (the leading END flushes line noise). */
export function encodeSlip(datagram: Uint8Array): Uint8Array {
  const out = new Uint8Array(stuffedLength(datagram) + 2);
  out[0] = END;
  const o = stuffInto(datagram, out, 1);
  out[o] = END;
  return out;
}

const enum State {
  /** Before the first END of the stream. */
  Unsynced,
  /** Between frames or inside a frame, collecting bytes. */
  Collecting,
  /** After ESC, inside a frame. */
  Escaped,
  /** Dropping bytes of a bad frame until the next END. */
  Discarding,
}

/**
 * Streaming decoder of byte-stuffed frames. Feed it chunks of any size with `push`; it returns
 * the frames completed by that chunk and any errors, in stream order. It never throws on input.
 */
export class StuffedFrameDecoder {
  readonly maxFrame: number;
  readonly counters: FramingCounters = {
    frames: 0,
    bytes: 0,
    unframed: 0,
    badEscape: 0,
    oversize: 0,
    truncated: 0,
  };
  private readonly buf: Uint8Array;
  private len = 0;
  private state = State.Unsynced;
  /** Stream offset of the next byte to be pushed. */
  private offset = 0;

  constructor(options: { maxFrame?: number; synced?: boolean } = {}) {
    const maxFrame = options.maxFrame ?? DEFAULT_MAX_FRAME;
    if (!Number.isInteger(maxFrame) || maxFrame < 1) {
      throw new RangeError(`maxFrame must be a positive integer, got ${maxFrame}`);
    }
    this.maxFrame = maxFrame;
    this.buf = new Uint8Array(maxFrame);
    if (options.synced) this.state = State.Collecting;
  }

  /** Bytes consumed so far. */
  get position(): number {
    return this.offset;
  }

  push(chunk: Uint8Array): FramingEvent[] {
    const events: FramingEvent[] = [];
    for (let i = 0; i < chunk.length; i++) {
      const b = chunk[i]!;
      const at = this.offset + i;
      switch (this.state) {
        case State.Unsynced:
          if (b === END) {
            this.len = 0;
            this.state = State.Collecting;
          } else if (this.len === 0) {
            // Report the first stray byte of the run only (len marks that it was reported).
            this.len = 1;
            this.counters.unframed++;
            events.push({ error: { code: 'unframed', offset: at } });
          }
          break;
        case State.Collecting:
          if (b === END) {
            if (this.len > 0) events.push({ frame: this.take() });
          } else if (b === ESC) {
            this.state = State.Escaped;
          } else {
            this.append(b, at, events);
          }
          break;
        case State.Escaped:
          if (b === ESC_END) {
            this.state = State.Collecting;
            this.append(END, at, events);
          } else if (b === ESC_ESC) {
            this.state = State.Collecting;
            this.append(ESC, at, events);
          } else {
            this.counters.badEscape++;
            events.push({ error: { code: 'bad-escape', offset: at } });
            this.len = 0;
            // An END right after ESC both ends the bad frame and may start the next one.
            this.state = b === END ? State.Collecting : State.Discarding;
          }
          break;
        case State.Discarding:
          if (b === END) {
            this.len = 0;
            this.state = State.Collecting;
          }
          break;
      }
    }
    this.offset += chunk.length;
    return events;
  }

  /**
   * Declares the end of the input stream. A frame still open is reported as `truncated` and
   * dropped. (A serial line never ends, so drivers do not call this; `meshgw decode` does.)
   */
  end(): FramingEvent[] {
    const open =
      (this.state === State.Collecting && this.len > 0) || this.state === State.Escaped;
    this.len = 0;
    this.state = State.Unsynced;
    if (!open) return [];
    this.counters.truncated++;
    return [{ error: { code: 'truncated', offset: this.offset } }];
  }

  private append(b: number, at: number, events: FramingEvent[]): void {
    if (this.len === this.maxFrame) {
      this.counters.oversize++;
      events.push({ error: { code: 'oversize', offset: at } });
      this.len = 0;
      this.state = State.Discarding;
      return;
    }
    this.buf[this.len++] = b;
  }

  private take(): Uint8Array {
    const frame = this.buf.slice(0, this.len);
    this.counters.frames++;
    this.counters.bytes += this.len;
    this.len = 0;
    return frame;
  }
}

/** A SLIP decoder: frames are whole datagrams. */
export class SlipDecoder extends StuffedFrameDecoder {}
