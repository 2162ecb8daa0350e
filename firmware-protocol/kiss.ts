/**
 * KISS framing (Chepponis & Karn, "The KISS TNC", 1987), sans-IO.
 *
 * A KISS frame is FEND, a type byte, the stuffed data, FEND. The byte stuffing is SLIP's
 * (FEND C0, FESC DB, TFEND DC, TFESC DD), so the decoder is slip.ts's. The type byte carries the
 * TNC port in its high nibble and the command in its low nibble; 0xFF is RETURN.
 *
 * LoRa modems that speak the RNode command set reuse the type byte as a one-byte command code
 * (0x01 FREQUENCY, 0x50 FW_VERSION, ...): see lora-modem.ts, which reads `type` whole.
 */
import {
  END as FEND,
  ESC as FESC,
  ESC_END as TFEND,
  ESC_ESC as TFESC,
  DEFAULT_MAX_FRAME,
  StuffedFrameDecoder,
  stuffedLength,
  stuffInto,
  type FramingError,
  type FramingCounters,
} from './slip.js';

export { FEND, FESC, TFEND, TFESC };

/** KISS commands (low nibble of the type byte) from the KISS TNC specification. */
export const KissCommand = {
  DATA: 0x0,
  TXDELAY: 0x1,
  P: 0x2,
  SLOTTIME: 0x3,
  TXTAIL: 0x4,
  FULLDUPLEX: 0x5,
  SETHARDWARE: 0x6,
} as const;

/** The type byte that leaves KISS mode; it has no port. */
export const KISS_RETURN = 0xff;

const COMMAND_NAMES: readonly string[] = [
  'data',
  'txdelay',
  'p',
  'slottime',
  'txtail',
  'fullduplex',
  'sethardware',
];

export interface KissFrame {
  /** The whole type byte, as sent. */
  type: number;
  /** TNC port, 0–15 (high nibble of `type`). */
  port: number;
  /** Command, 0–15 (low nibble of `type`); 0xFF for RETURN. */
  command: number;
  data: Uint8Array;
}

/** Lower-case name of a KISS command as in SPEC.md, or its number when it has none. */
export function kissCommandName(frame: Pick<KissFrame, 'type' | 'command'>): string | number {
  if (frame.type === KISS_RETURN) return 'return';
  return COMMAND_NAMES[frame.command] ?? frame.command;
}

/** Builds a type byte from port and command, checking both. */
export function kissType(port: number, command: number): number {
  if (!Number.isInteger(port) || port < 0 || port > 15) {
    throw new RangeError(`KISS port must be 0..15, got ${port}`);
  }
  if (!Number.isInteger(command) || command < 0 || command > 15) {
    throw new RangeError(`KISS command must be 0..15, got ${command}`);
  }
  if (port === 15 && command === 15) {
    throw new RangeError('KISS port 15 command 15 would be type byte 0xFF, which means RETURN');
  }
  return (port << 4) | command;
}

/** Encodes one KISS frame with a raw type byte: FEND type data FEND (type and data stuffed). */
export function encodeKissType(type: number, data: Uint8Array = new Uint8Array(0)): Uint8Array {
  if (!Number.isInteger(type) || type < 0 || type > 0xff) {
    throw new RangeError(`KISS type byte must be 0..255, got ${type}`);
  }
  const typeStuffed = type === FEND || type === FESC;
  const out = new Uint8Array(3 + (typeStuffed ? 1 : 0) + stuffedLength(data));
  out[0] = FEND;
  let o = 1;
  if (typeStuffed) {
    out[o++] = FESC;
    out[o++] = type === FEND ? TFEND : TFESC;
  } else {
    out[o++] = type;
  }
  o = stuffInto(data, out, o);
  out[o] = FEND;
  return out;
}

/** Encodes one KISS frame for `port` and `command`. */
export function encodeKiss(frame: { port: number; command: number; data?: Uint8Array }): Uint8Array {
  return encodeKissType(kissType(frame.port, frame.command), frame.data);
}

/** Encodes a KISS DATA frame on `port`. */
export function encodeKissData(data: Uint8Array, port = 0): Uint8Array {
  return encodeKissType(kissType(port, KissCommand.DATA), data);
}

export type KissEvent = { frame: KissFrame } | { error: FramingError };

/**
 * Streaming KISS decoder. `maxFrame` bounds the data bytes of a frame (the type byte is extra).
 * It never throws on input; errors come back as events and are counted in `counters`.
 */
export class KissDecoder {
  private readonly framing: StuffedFrameDecoder;

  constructor(options: { maxFrame?: number } = {}) {
    const maxData = options.maxFrame ?? DEFAULT_MAX_FRAME;
    if (!Number.isInteger(maxData) || maxData < 0) {
      throw new RangeError(`maxFrame must be a non-negative integer, got ${maxData}`);
    }
    this.framing = new StuffedFrameDecoder({ maxFrame: maxData + 1 });
  }

  get counters(): Readonly<FramingCounters> {
    return this.framing.counters;
  }

  /** Bytes consumed so far. */
  get position(): number {
    return this.framing.position;
  }

  push(chunk: Uint8Array): KissEvent[] {
    return this.framing.push(chunk).map(toKissEvent);
  }

  end(): KissEvent[] {
    return this.framing.end().map(toKissEvent);
  }
}

function toKissEvent(e: { frame: Uint8Array } | { error: FramingError }): KissEvent {
  if ('error' in e) return e;
  const type = e.frame[0]!;
  return {
    frame: {
      type,
      port: type >> 4,
      command: type === KISS_RETURN ? KISS_RETURN : type & 0x0f,
      data: e.frame.subarray(1),
    },
  };
}
