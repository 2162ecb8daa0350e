/**
 * The seed's functional interface, mapped onto SendState and ReceiveState: the same names and
 * return conventions (0 or negative from init, pump → negative / 0 all sent / 1 more remains,
 * addChunk → negative / 0 ready / positive still needed). State lives in a holder object the
 * caller owns, as the C seed's state structs did.
 */
import { chunkSizeFor, decodeChunk, type Chunk } from './chunk.js';
import { ReceiveState, type AddChunkResult } from './receive.js';
import { SendState, type SendOptions } from './send.js';

/** Where chunks go. `send` returns false when it cannot take the datagram now (it is offered again). */
export interface Transport {
  send(dst: string, bytes: Uint8Array): boolean;
  /** Largest datagram it carries (default 1472: UDP over a 1500-byte Ethernet MTU). */
  mtu?: number;
}

export interface SendHolder {
  state?: SendState;
  transport?: Transport;
  dst?: string;
  /** A chunk the transport did not take yet. */
  pending?: Uint8Array;
}

export const DEFAULT_MTU = 1472;

/**
 * Prepares sending `data` to `dst` with 1 + `redundant` redundant rows. 0 on success, -1 for
 * arguments out of range (empty or oversized data, a bad redundancy, an MTU too small).
 * The data must stay alive and unchanged until the holder is done or deinitialised.
 */
export function sendInit(
  holder: SendHolder,
  transport: Transport,
  dst: string,
  data: Uint8Array,
  redundant: number,
  options: Partial<SendOptions> = {},
): number {
  try {
    const chunkSize = options.chunkSize ?? chunkSizeFor(transport.mtu ?? DEFAULT_MTU);
    holder.state = new SendState(data, { ...options, chunkSize, redundancy: redundant });
  } catch {
    return -1;
  }
  holder.transport = transport;
  holder.dst = dst;
  delete holder.pending;
  return 0;
}

export function sendInitialised(holder: SendHolder): boolean {
  return holder.state !== undefined;
}

/** Forgets the message (the caller's data is no longer referenced). */
export function sendDeinit(holder: SendHolder): void {
  delete holder.state;
  delete holder.transport;
  delete holder.dst;
  delete holder.pending;
}

/** Offers one chunk to the transport. -1: not initialised; 0: the whole message is sent; 1: more remains. */
export function pump(holder: SendHolder): number {
  const { state, transport, dst } = holder;
  if (state === undefined || transport === undefined || dst === undefined) return -1;
  const bytes = holder.pending ?? state.next();
  if (bytes === undefined) return 0;
  if (!transport.send(dst, bytes)) {
    holder.pending = bytes;
    return 1;
  }
  delete holder.pending;
  return state.done ? 0 : 1;
}

export interface RecvHolder {
  state?: ReceiveState;
}

/** Starts a receive state from a chunk (decoded, or a datagram) and adds it. 0, or -1 for a malformed chunk. */
export function recvInit(holder: RecvHolder, chunk: Chunk | Uint8Array): number {
  const c = toChunk(chunk);
  if (c === undefined) return -1;
  try {
    holder.state = ReceiveState.fromChunk(c);
  } catch {
    return -1;
  }
  return 0;
}

/** < 0 failure (malformed, another message, no state), 0 ready, > 0 chunks still needed; `recycled` as ReceiveState.addChunk. */
export function addChunk(holder: RecvHolder, chunk: Chunk | Uint8Array): AddChunkResult {
  const c = toChunk(chunk);
  if (c === undefined || holder.state === undefined) return { status: -1 };
  return holder.state.addChunk(c);
}

export function ready(holder: RecvHolder): boolean {
  return holder.state?.ready ?? false;
}

/** As ReceiveState.extract: the message size, -1 on checksum failure, -2 when not ready or no state. */
export function extract(holder: RecvHolder, buf: Uint8Array, key?: Uint8Array): number {
  return holder.state === undefined ? -2 : holder.state.extract(buf, key);
}

function toChunk(chunk: Chunk | Uint8Array): Chunk | undefined {
  if (!(chunk instanceof Uint8Array)) return chunk;
  const d = decodeChunk(chunk);
  return d.ok ? d.chunk : undefined;
}
