/**
 * Small pieces bench/memory.ts and bench/daemon-child.ts share: reading a process's resident set
 * from /proc (what `ps` and `top` show, without asking the process), a process's own memory
 * report, and the chunks of the Strokkur flood.
 *
 * VmRSS is the resident set now; VmHWM its peak since the process started (Linux only: on other
 * systems the /proc figures are undefined and the bench says so).
 */
import { readFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { encodeChunk, sourceChunks } from '../src/strokkur/chunk.js';

export interface ProcRss {
  /** Resident set now, bytes. */
  rss: number;
  /** Peak resident set, bytes. */
  hwm: number;
}

/** VmRSS and VmHWM of process `pid` (default: this one), or undefined without /proc. */
export function procRss(pid: number | 'self' = 'self'): ProcRss | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/status`, 'utf8');
  } catch {
    return undefined;
  }
  const kb = (field: string): number | undefined => {
    const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(text);
    return m ? Number(m[1]) * 1024 : undefined;
  };
  const rss = kb('VmRSS');
  const hwm = kb('VmHWM');
  return rss === undefined || hwm === undefined ? undefined : { rss, hwm };
}

export interface MemoryReport extends NodeJS.MemoryUsage {
  /** From /proc (undefined elsewhere). */
  proc: ProcRss | undefined;
}

/** This process's process.memoryUsage() and /proc figures, without forcing a GC. */
export function memoryReport(): MemoryReport {
  return { ...process.memoryUsage(), proc: procRss() };
}

/**
 * Flood chunk `i`: the first source chunk (index 0) of a message of `messageSize` bytes cut into
 * `chunkSize`-byte chunks, with a UUID of its own (derived from i, so every run floods the same
 * way). Each one starts a receive state that can never complete: the receiver's caps decide.
 */
export function floodChunk(i: number, messageSize: number, chunkSize: number): Uint8Array {
  const uuid = createHash('sha256').update(`meshgw-bench-flood-${i}`).digest().subarray(0, 16);
  const k = sourceChunks(messageSize, chunkSize);
  const payload = new Uint8Array(chunkSize).fill(i & 0xff);
  return encodeChunk({ header: { uuid, messageSize, k, chunkSize, rows: k + 1 + 4, index: 0, seed: i >>> 0, keyed: false }, payload });
}
