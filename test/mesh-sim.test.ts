/**
 * Mesh nodes on simulated radio in virtual time: discovery, multi-hop delivery, a gateway between
 * a LoRa segment and a Wi-Fi segment, Wi-Fi preferred where both exist, and routes that change
 * when a link dies and heal when it returns.
 */
import { describe, expect, it } from 'vitest';
import { buildMesh } from './mesh-harness.js';
import { nodeIdOf } from '../src/mesh/control.js';

const text = (s: string): Uint8Array => new TextEncoder().encode(s);

describe('mesh in virtual time', () => {
  it('discovers every neighbour among 6 nodes sharing one LoRa channel', () => {
    const m = buildMesh(6, [{ name: 'lora', kind: 'lora', members: [0, 1, 2, 3, 4, 5] }]);
    m.run(300_000);
    for (const n of m.nodes) expect(n.control.neighbours().filter((x) => x.symmetric)).toHaveLength(5);
  });

  it('delivers across a 5-node chain of separate links, hop by hop', () => {
    const segs = [0, 1, 2, 3].map((i) => ({ name: `l${i}`, kind: 'lora' as const, members: [i, i + 1] }));
    const m = buildMesh(5, segs);
    m.run(180_000);
    const a = m.nodes[0]!;
    const e = m.nodes[4]!;
    const got: string[] = [];
    const sock = e.bind(40);
    sock.on('message', (from, port, bytes) => got.push(`${nodeIdOf(from).slice(0, 8)}:${port}:${new TextDecoder().decode(bytes)}`));
    const route = a.routes().find((r) => r.destination === nodeIdOf(e.sid));
    expect(route).toMatchObject({ hops: 4, pathMtu: 255 });
    a.bind(41).send(e.sid, 40, text('over four hops'));
    m.run(10_000);
    expect(got).toEqual([`${nodeIdOf(a.sid).slice(0, 8)}:41:over four hops`]);
    expect(m.nodes.slice(1, 4).map((n) => n.counters.forwarded)).toEqual([1, 1, 1]);
    expect(a.bind(42).send(e.sid, 40, new Uint8Array(300))).toEqual({
      ok: false,
      reason: 'too-large',
      maxBytes: 161,
      message: expect.stringMatching(/exceeds the path MTU .* at most 161 bytes/),
    });
    expect(a.bind(43).send(new Uint8Array(32).fill(7), 40, text('x'))).toMatchObject({ ok: false, reason: 'no-route' });
  });

  it('a two-interface gateway forwards between a LoRa segment and a Wi-Fi segment', () => {
    const m = buildMesh(3, [
      { name: 'lora', kind: 'lora', members: [0, 1] },
      { name: 'wifi', kind: 'wifi', members: [1, 2] },
    ]);
    m.run(120_000);
    const [a, b, c] = m.nodes as [typeof m.nodes[0], typeof m.nodes[0], typeof m.nodes[0]];
    const atC: string[] = [];
    const atA: string[] = [];
    const sc = c.bind(50);
    sc.on('message', (from, port, bytes) => {
      atC.push(new TextDecoder().decode(bytes));
      sc.send(from, port, text('pong'));
    });
    a.bind(51).on('message', (_f, _p, bytes) => atA.push(new TextDecoder().decode(bytes)));
    expect(a.pathMtu(c.sid)).toBe(255 - 92 - 2); // full addresses beyond one hop, plus via
    m.nodes[0]!.routes(); // (routes computed lazily)
    a.bind(52);
    a.sendDatagram(c.sid, 51, 50, text('ping'), 'interactive');
    m.run(10_000);
    expect(atC).toEqual(['ping']);
    expect(atA).toEqual(['pong']);
    expect(b.counters.forwarded).toBe(2);
  });

  it('prefers Wi-Fi over LoRa where both reach the same neighbour', () => {
    const m = buildMesh(2, [
      { name: 'lora', kind: 'lora', members: [0, 1] },
      { name: 'wifi', kind: 'wifi', members: [0, 1] },
    ]);
    m.run(60_000);
    expect(m.nodes[0]!.routes()).toEqual([expect.objectContaining({ iface: 'wifi', hops: 1, pathMtu: 1200 })]);
  });

  it('routes around a dead link', () => {
    // 0 —a— 1 —b— 3 and 0 —c— 2 —d— 3, each link its own channel.
    const m = buildMesh(4, [
      { name: 'a', kind: 'lora', members: [0, 1] },
      { name: 'b', kind: 'lora', members: [1, 3] },
      { name: 'c', kind: 'lora', members: [0, 2] },
      { name: 'd', kind: 'lora', members: [2, 3] },
    ]);
    m.run(180_000);
    const dest = nodeIdOf(m.nodes[3]!.sid);
    const via = (): string | undefined => m.nodes[0]!.routes().find((r) => r.destination === dest)?.iface;
    const first = via();
    expect(['a', 'c']).toContain(first);
    const dead = first === 'a' ? m.links[0]!.get('a')! : m.links[0]!.get('c')!;
    void dead.close();
    m.run(300_000);
    expect(via()).toBe(first === 'a' ? 'c' : 'a');
    const got: string[] = [];
    m.nodes[3]!.bind(60).on('message', (_f, _p, b) => got.push(new TextDecoder().decode(b)));
    m.nodes[0]!.bind(61).send(m.nodes[3]!.sid, 60, text('around'));
    m.run(10_000);
    expect(got).toEqual(['around']);
  });
});
