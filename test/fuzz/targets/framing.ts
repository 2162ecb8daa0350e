/**
 * Fuzz targets for the byte-stuffed framings on serial lines: KISS and SLIP. Input is split into
 * random chunks (a serial read returns any number of bytes); every frame out is within maxFrame,
 * and re-encoding a decoded frame decodes to the same frame (decode → encode → decode).
 */
import { KissDecoder, encodeKissType } from '../../../firmware-protocol/kiss.js';
import { SlipDecoder, encodeSlip } from '../../../firmware-protocol/slip.js';
import { bytesEqual, invariant, type FuzzTarget, type Prng } from '../harness.js';

const MAX_FRAME = 600;

/** Cut `input` into 1–4 chunks at random points. */
export function chunks(input: Uint8Array, rng: Prng): Uint8Array[] {
  const out: Uint8Array[] = [];
  let at = 0;
  const pieces = 1 + rng.int(4);
  for (let i = 1; i < pieces && at < input.length; i++) {
    const next = at + rng.int(input.length - at + 1);
    out.push(input.subarray(at, next));
    at = next;
  }
  out.push(input.subarray(at));
  return out;
}

/** The frames a stream decoder delivers for `input` read in random chunks; its documented errors skipped. */
export function* framesOf<F>(decoder: { push(bytes: Uint8Array): Iterable<{ frame: F } | { error: unknown }> }, input: Uint8Array, rng: Prng): Generator<F> {
  for (const piece of chunks(input, rng)) {
    for (const event of decoder.push(piece)) if ('frame' in event) yield event.frame;
  }
}

function sample(n: number, fill: (i: number) => number): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = fill(i);
  return out;
}

const payloads = [
  new Uint8Array(0),
  Uint8Array.of(0x01),
  Uint8Array.of(0xc0, 0xdb, 0xdc, 0xdd),
  sample(64, (i) => i),
  sample(255, (i) => (i * 37) & 0xff),
  sample(MAX_FRAME, (i) => (i % 3 === 0 ? 0xc0 : i & 0xff)),
];

export const kissTarget: FuzzTarget<{ decoder: KissDecoder }> = {
  name: 'kiss',
  maxLength: 2048,
  corpus: () => [
    ...payloads.map((p) => encodeKissType(0x00, p)),
    encodeKissType(0x10, payloads[3]!),
    encodeKissType(0xff),
    encodeKissType(0x01, Uint8Array.of(50)),
    encodeKissType(0xc0, payloads[2]!),
  ],
  setup: () => ({ decoder: new KissDecoder({ maxFrame: MAX_FRAME }) }),
  resetEvery: 500,
  one(input, state, rng) {
    for (const frame of framesOf(state.decoder, input, rng)) {
      invariant(frame.data.length <= MAX_FRAME, `frame of ${frame.data.length} data bytes > maxFrame ${MAX_FRAME}`);
      invariant(frame.port === frame.type >> 4, 'port is not the high nibble of the type byte');
      const again = new KissDecoder({ maxFrame: MAX_FRAME }).push(encodeKissType(frame.type, frame.data));
      const first = again[0];
      invariant(again.length === 1 && first && 'frame' in first, 're-encoded frame does not decode to one frame');
      invariant(first.frame.type === frame.type && bytesEqual(first.frame.data, frame.data), 'decode → encode → decode changed the frame');
    }
  },
};

export const slipTarget: FuzzTarget<{ decoder: SlipDecoder }> = {
  name: 'slip',
  maxLength: 2048,
  corpus: () => payloads.filter((p) => p.length > 0).map((p) => encodeSlip(p)),
  setup: () => ({ decoder: new SlipDecoder({ maxFrame: MAX_FRAME }) }),
  resetEvery: 500,
  one(input, state, rng) {
    for (const frame of framesOf(state.decoder, input, rng)) {
      invariant(frame.length <= MAX_FRAME, `frame of ${frame.length} bytes > maxFrame ${MAX_FRAME}`);
      invariant(frame.length > 0, 'an empty SLIP frame was delivered');
      const again = new SlipDecoder({ maxFrame: MAX_FRAME }).push(encodeSlip(frame));
      const first = again[0];
      invariant(again.length === 1 && first && 'frame' in first, 're-encoded frame does not decode to one frame');
      invariant(bytesEqual(first.frame, frame), 'decode → encode → decode changed the frame');
    }
  },
};
