/**
 * Strokkur over mesh datagram ports, in virtual time (test/mesh-harness.ts): a LoRa segment and a
 * Wi-Fi segment joined by a two-interface node, a 4 KiB message from one end to the other, paced
 * to a share of the LoRa airtime (as the interface pacer would), in chunks that fit the path MTU.
 */
import { describe, expect, it } from 'vitest';
import { buildMesh, type TestMesh } from './mesh-harness.js';
import { nodeIdOf } from '../src/mesh/control.js';
import type { MeshNode } from '../src/mesh/node.js';
import { Prng } from '../src/link/prng.js';
import { chunkSizeFor, decodeChunk, sourceChunks } from '../src/strokkur/chunk.js';
import { MeshStrokkurTransport } from '../src/strokkur/mesh.js';
import { DEFAULT_REDUNDANCY, Strokkur } from '../src/strokkur/strokkur.js';
import { allDatagrams } from './strokkur-helpers.js';

const PORT = 70;

function seededBytes(n: number, seed: number): Uint8Array {
  const prng = new Prng(seed);
  return Uint8Array.from({ length: n }, () => prng.nextU32() & 0xff);
}

/**
 * A stand-in for the pacer of the sender's LoRa interface (the harness has no registry): this
 * flow may use `share` of the airtime — after each chunk, the channel is left to others for
 * (1 / share − 1) times a full frame's airtime — so HELLOs, ours and the neighbour's, still get
 * through and the route holds. `spent()` is called as each chunk leaves; `onReady` handlers run
 * on the virtual clock when the next chunk may go.
 */
function airtimePacing(m: TestMesh, node: number, iface: string, share: number) {
  const link = m.links[node]!.get(iface)!;
  const handlers: Array<() => void> = [];
  let nextAt = 0;
  return {
    ready: (): boolean => m.clock.now() >= nextAt,
    onReady: (h: () => void): void => void handlers.push(h),
    spent: (): void => {
      nextAt = m.clock.now() + link.airtime.airtimeMs(link.mtu) / share;
      m.clock.setTimer(nextAt, () => handlers.forEach((h) => h()));
    },
  };
}

/** Keeps a copy of every chunk handed to the mesh. */
class RecordingTransport extends MeshStrokkurTransport {
  readonly sent: Uint8Array[] = [];
  override send(dst: Uint8Array, bytes: Uint8Array): boolean {
    this.sent.push(bytes.slice());
    return super.send(dst, bytes);
  }
}

/** Node 0's transport on PORT, paced to a quarter of its LoRa interface's airtime, recording what it sends. */
function loraSender(m: TestMesh, node: MeshNode): RecordingTransport {
  const pacing = airtimePacing(m, 0, 'lora', 0.25);
  return new RecordingTransport(node, node.bind(PORT), {
    ready: pacing.ready,
    onReady: pacing.onReady,
    flush: () => {
      m.runners[0]!.flush();
      pacing.spent();
    },
  });
}

describe('Strokkur over the mesh in virtual time', () => {
  it('a 4 KiB message crosses a LoRa hop and a Wi-Fi hop intact, in chunks within the path MTU', async () => {
    const m = buildMesh(3, [
      { name: 'lora', kind: 'lora', members: [0, 1] },
      { name: 'wifi', kind: 'wifi', members: [1, 2] },
    ]);
    m.run(120_000);
    const [a, b, c] = m.nodes as [MeshNode, MeshNode, MeshNode];
    const pathMtu = a.pathMtu(c.sid)!;
    // The LoRa hop's 255 bytes less the datagram frame's header.
    expect(pathMtu).toBeGreaterThan(100);
    expect(pathMtu).toBeLessThan(255);

    const transport = loraSender(m, a);
    const sent = transport.sent;
    const sender = new Strokkur(transport);
    const receiver = new Strokkur(new MeshStrokkurTransport(c, c.bind(PORT)));
    const got: Array<{ from: string; bytes: Uint8Array }> = [];
    const errors: string[] = [];
    receiver.on('message', (from, bytes) => got.push({ from: nodeIdOf(from), bytes }));
    receiver.on('error', (e) => errors.push(e.message));

    const message = seededBytes(4096, 42);
    let settled = false;
    const sending = sender.send(c.sid, message).finally(() => (settled = true));
    // Paced: one chunk now, the next when the pacer allows.
    expect(sent.length).toBe(1);
    // Virtual time runs only when told: step it, letting the promise settle between the steps.
    for (let t = 0; t < 180 && (got.length === 0 || !settled); t++) {
      m.run(1_000);
      await Promise.resolve();
    }
    const report = await sending;

    expect(errors).toEqual([]);
    expect(got).toHaveLength(1);
    expect(got[0]!.from).toBe(nodeIdOf(a.sid));
    expect(Buffer.compare(Buffer.from(got[0]!.bytes), Buffer.from(message))).toBe(0);

    // Chunk sizes: every datagram fits the path MTU, the chunk size is the one for that MTU.
    expect(sent.length).toBeGreaterThan(0);
    for (const bytes of sent) {
      expect(bytes.length).toBeLessThanOrEqual(pathMtu);
      const d = decodeChunk(bytes);
      expect(d.ok).toBe(true);
      if (d.ok) expect(d.chunk.header.chunkSize).toBe(chunkSizeFor(pathMtu));
    }
    // Two hops: the loss of the far hop is not known, so the default redundancy.
    expect(transport.loss(c.sid)).toBeUndefined();
    expect(report).toMatchObject({ bytes: 4096, redundancy: DEFAULT_REDUNDANCY, chunkSize: chunkSizeFor(pathMtu) });
    expect(report.chunks).toBe(sent.length);
    expect(report.chunks).toBe(report.k + 1 + DEFAULT_REDUNDANCY);
    expect(report.k).toBe(sourceChunks(4096, chunkSizeFor(pathMtu)));
    // Pacing kept the LoRa link's queue (16 frames) from overflowing, and the route alive.
    expect(m.links[0]!.get('lora')!.counters.drops['queue-full']).toBeUndefined();
    expect(b.counters.forwarded).toBeGreaterThanOrEqual(report.k);
  });

  it('a one-hop route gives a measured loss; no route rejects the send', async () => {
    const m = buildMesh(2, [{ name: 'lora', kind: 'lora', members: [0, 1] }]);
    m.run(120_000);
    const [a, b] = m.nodes as [MeshNode, MeshNode];
    const transport = new MeshStrokkurTransport(a, a.bind(PORT), { flush: () => m.runners[0]!.flush() });
    const loss = transport.loss(b.sid);
    expect(loss).toBeGreaterThanOrEqual(0);
    expect(loss).toBeLessThan(1);
    expect(transport.key(b.sid)).toBe(Buffer.from(b.sid).toString('hex'));
    const s = new Strokkur(transport);
    await expect(s.send(new Uint8Array(32).fill(9), Uint8Array.of(1))).rejects.toThrow(/no route/);
  });

  /**
   * A LoRa node's message to the gateway while a Wi-Fi node floods the gateway's receiver with
   * chunks of ever new messages (100 a second, each starting a state), through the real mesh
   * transport with the gateway's receiver on the mesh's clock and only 4 states to share.
   */
  async function loraBesideWifiFlood(staleAfterMs?: number): Promise<{ delivered: number; evicted: number; floods: number; loraChunks: number }> {
    const m = buildMesh(3, [
      { name: 'lora', kind: 'lora', members: [0, 1] },
      { name: 'wifi', kind: 'wifi', members: [1, 2] },
    ]);
    m.run(120_000);
    const [a, b, c] = m.nodes as [MeshNode, MeshNode, MeshNode];
    const loraSide = loraSender(m, a);
    const receiver = new Strokkur(new MeshStrokkurTransport(b, b.bind(PORT)), {
      now: () => m.clock.now(),
      receiver: { maxStates: 4, ...(staleAfterMs !== undefined ? { staleAfterMs } : {}) },
    });
    const got: string[] = [];
    receiver.on('message', (from) => got.push(nodeIdOf(from)));
    receiver.on('error', () => undefined);

    const flooder = new MeshStrokkurTransport(c, c.bind(PORT), { flush: () => m.runners[2]!.flush() });
    const prng = new Prng(5);
    let floods = 0;
    let flooding = true;
    const flood = (): void => {
      if (!flooding) return;
      // One chunk of a new 1 KiB message: a new state at the gateway each time.
      const chunks = allDatagrams(seededBytes(1024, 10_000 + floods), { chunkSize: 64, redundancy: 0 });
      flooder.send(b.sid, chunks[prng.int(chunks.length)]!);
      floods++;
      m.clock.setTimer(m.clock.now() + 10, flood);
    };
    flood();

    const sending = new Strokkur(loraSide).send(b.sid, seededBytes(2048, 9));
    let settled = false;
    void sending.finally(() => (settled = true)).catch(() => undefined);
    for (let t = 0; t < 240 && !settled; t++) {
      m.run(1_000);
      await Promise.resolve();
    }
    await sending;
    m.run(5_000);
    flooding = false;
    return { delivered: got.filter((id) => id === nodeIdOf(a.sid)).length, evicted: receiver.receiver.counters.evicted, floods, loraChunks: loraSide.sent.length };
  }

  it('a LoRa sender\'s message completes while a Wi-Fi node floods the same receiver; a stale rule shorter than its chunk gap starves it', async () => {
    const fair = await loraBesideWifiFlood();
    expect(fair.delivered).toBe(1);
    // The flood was real: hundreds of its states came and were evicted between LoRa chunks.
    expect(fair.evicted).toBeGreaterThan(20 * fair.loraChunks);
    expect(fair.floods).toBeGreaterThan(1000);
    // The same with states stale after 1 s, less than the LoRa sender's gap between chunks.
    const starved = await loraBesideWifiFlood(1_000);
    expect(starved.delivered).toBe(0);
  }, 120_000);
});
