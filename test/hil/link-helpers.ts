/** Helpers for link tests: waiting for frames and states with a deadline. */
import type { Link, LinkState, ReceivedFrame } from '../../src/link/link.js';

/** Collects every frame a link receives. */
export function collect(link: Link): ReceivedFrame[] {
  const frames: ReceivedFrame[] = [];
  link.on('frame', (f) => frames.push(f));
  return frames;
}

/** Resolves when `predicate` holds, polling; rejects with `what` after `timeoutMs`. */
export async function until(predicate: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

export function waitForState(link: Link, state: LinkState, timeoutMs = 10_000): Promise<void> {
  return until(() => link.state === state, `${link.name} to be ${state} (it is ${link.state})`, timeoutMs);
}

export const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

/** Deterministic frame bytes of a given size, with the KISS special bytes in them. */
export function frameOfSize(size: number, seed: number): Uint8Array {
  const f = new Uint8Array(size);
  for (let i = 0; i < size; i++) f[i] = [0xc0, 0xdb, 0xdc, 0xdd, 0x00, 0xff][(i + seed) % 6]! ^ (i % 3 === 0 ? 0 : seed & 0x0f);
  return f;
}
