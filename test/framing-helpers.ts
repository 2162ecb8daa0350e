/** Helpers shared by the framing tests (slip.test.ts, kiss.test.ts). */
import fc from 'fast-check';
import type { FramingError } from '../firmware-protocol/slip.js';

export const bytes = (...values: number[]): Uint8Array => Uint8Array.from(values);

export const concat = (parts: readonly Uint8Array[]): Uint8Array => {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
};

export const hex = (data: Uint8Array): string => Buffer.from(data).toString('hex');

/**
 * Cuts `data` into views of the sizes in `sizes`, cycling through them until the data runs out
 * (zero sizes give empty chunks), and ends with one empty chunk. `sizes` must hold a size > 0.
 */
export function chunkBySizes(data: Uint8Array, sizes: readonly number[]): Uint8Array[] {
  const chunks: Uint8Array[] = [];
  let i = 0;
  for (let k = 0; i < data.length; k++) {
    const n = sizes[k % sizes.length]!;
    chunks.push(data.subarray(i, i + n));
    i += n;
  }
  chunks.push(new Uint8Array(0));
  return chunks;
}

type Event<F> = { frame: F } | { error: FramingError };

/** Pushes every chunk, then calls end(); returns all events in stream order. */
export function decodeChunks<E>(decoder: { push(c: Uint8Array): E[]; end(): E[] }, chunks: readonly Uint8Array[]): E[] {
  const events: E[] = [];
  for (const c of chunks) events.push(...decoder.push(c));
  events.push(...decoder.end());
  return events;
}

export const framesOf = <F>(events: readonly Event<F>[]): F[] =>
  events.flatMap((e) => ('frame' in e ? [e.frame] : []));

export const errorsOf = <F>(events: readonly Event<F>[]): FramingError[] =>
  events.flatMap((e) => ('error' in e ? [e.error] : []));

/** SLIP's and KISS's special bytes: C0, DB, DC, DD (END/FEND, ESC/FESC, ESC_END/TFEND, ESC_ESC/TFESC). */
export const SPECIALS = [0xc0, 0xdb, 0xdc, 0xdd] as const;

/** A byte that is one of C0, DB, DC, DD about half the time. */
export const biasedByte = fc.oneof(fc.constantFrom(...SPECIALS), fc.integer({ min: 0, max: 255 }));

export const biasedBytes = (constraints: { minLength?: number; maxLength?: number }) =>
  fc.oneof(
    { arbitrary: fc.array(biasedByte, constraints).map((a) => Uint8Array.from(a)), weight: 3 },
    { arbitrary: fc.uint8Array(constraints), weight: 1 },
  );

/** Chunk sizes for chunkBySizes: one byte at a time, one big chunk, or a mix with empties. */
export const chunkSizes = fc.oneof(
  fc.constant([1]),
  fc.constant([1 << 30]),
  fc
    .array(fc.integer({ min: 0, max: 16 }), { minLength: 1, maxLength: 12 })
    .map((sizes) => [...sizes, 1]),
);
