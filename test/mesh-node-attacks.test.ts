/**
 * Attacks on the datagram path of a mesh node, as someone on the same channel would try them:
 * a forged broadcast header that would suppress the genuine broadcast, a flood of throwaway
 * senders meant to evict replay windows, a captured frame replayed after the receiver restarts.
 */
import { describe, expect, it } from 'vitest';
import { buildMesh } from './mesh-harness.js';
import { AddressForm, encodeHeader, shortAddress } from '../src/mesh/frame.js';
import { MeshNode } from '../src/mesh/node.js';
import { identityFromSecret } from '../src/mesh/identity.js';

const text = (s: string): Uint8Array => new TextEncoder().encode(s);

/** Captures every frame a node puts on `iface` (as an attacker listening on the channel would). */
function tap(m: ReturnType<typeof buildMesh>, node: number, iface: string): Uint8Array[] {
  const frames: Uint8Array[] = [];
  const link = m.links[node]!.get(iface)!;
  const original = link.send.bind(link);
  link.send = (f, o) => {
    frames.push(f.slice());
    return original(f, o);
  };
  return frames;
}

describe('mesh node under attack', () => {
  it('a forged broadcast header with the predictable (source, epoch, counter) does not suppress the genuine one', () => {
    const m = buildMesh(2, [{ name: 'lora', kind: 'lora', members: [0, 1] }]);
    m.run(60_000);
    const [a, b] = m.nodes as [MeshNode, MeshNode];
    const got: string[] = [];
    b.bind(30).on('message', (_f, _p, bytes) => got.push(new TextDecoder().decode(bytes)));
    const sa = a.bind(30);
    // a's first broadcast: epoch 1, and a's counter is predictable from its traffic so far.
    const frames = tap(m, 0, 'lora');
    expect(sa.broadcast(30, text('warm-up'))).toEqual({ ok: true });
    m.run(2_000);
    const seen = frames.find((f) => (f[0]! & 0x03) === AddressForm.BROADCAST_COMPACT)!;
    const counter = new DataView(seen.buffer, seen.byteOffset).getUint32(seen.length - 64 - text('warm-up').length - 4);
    const forged = new Uint8Array([
      ...encodeHeader({ form: AddressForm.BROADCAST_COMPACT, authOnly: true, ttl: 1, dst: undefined, src: shortAddress(a.sid), srcPort: 30, dstPort: 30, epoch: 1, counter: counter + 1 }),
      ...text('forged!'),
      ...new Uint8Array(64),
    ]);
    b.receive('lora', forged, m.clock.now());
    expect(sa.broadcast(30, text('genuine'))).toEqual({ ok: true });
    m.run(2_000);
    expect(got).toEqual(['warm-up', 'genuine']);
    expect(b.sealer.rejected['bad-signature']).toBe(1);
  });

  it('5,000 throwaway senders, then a replay of a captured frame: still a replay', () => {
    const m = buildMesh(2, [{ name: 'lora', kind: 'lora', members: [0, 1] }]);
    m.run(60_000);
    const [a, b] = m.nodes as [MeshNode, MeshNode];
    const got: string[] = [];
    b.bind(40).on('message', (_f, _p, bytes) => got.push(new TextDecoder().decode(bytes)));
    const frames = tap(m, 0, 'lora');
    a.bind(41).send(b.sid, 40, text('once'));
    m.run(2_000);
    const captured = frames.find((f) => (f[0]! & 0xf0) === 0x50)!;
    expect(got).toEqual(['once']);
    // Throwaway identities: full-form frames from 5,000 SIDs nobody has heard of.
    for (let i = 0; i < 5_000; i++) {
      const sid = new Uint8Array(32);
      new DataView(sid.buffer).setUint32(0, i + 1);
      const header = encodeHeader({ form: AddressForm.FULL, authOnly: false, ttl: 1, dst: b.sid, src: sid, srcPort: 1, dstPort: 40, epoch: 1, counter: 0 });
      b.receive('lora', new Uint8Array([...header, ...new Uint8Array(20)]), m.clock.now());
    }
    expect(b.sealer.rejected['unknown-sender']).toBe(5_000);
    b.receive('lora', captured, m.clock.now());
    m.run(1_000);
    expect(got).toEqual(['once']);
    expect(b.sealer.rejected.replay).toBe(1);
  });

  it('a frame captured before the receiver restarted does not open after it', () => {
    const m = buildMesh(2, [{ name: 'lora', kind: 'lora', members: [0, 1] }]);
    m.run(60_000);
    const [a, b] = m.nodes as [MeshNode, MeshNode];
    const frames = tap(m, 0, 'lora');
    a.bind(41).send(b.sid, 40, text('before the restart'));
    m.run(2_000);
    const captured = frames.find((f) => (f[0]! & 0xf0) === 0x50)!;
    // The receiver restarts: same key, same epoch file value even (a rollback), fresh boot nonce.
    const restarted = new MeshNode({ identity: identityFromSecret(new Uint8Array(32).fill(2)), epoch: b.boot.epoch });
    restarted.addInterface({ name: 'lora', mtu: 255, airtimeMs: () => 10 }, m.clock.now());
    const got: string[] = [];
    restarted.bind(40).on('message', (_f, _p, bytes) => got.push(new TextDecoder().decode(bytes)));
    // It learns a's keys again from a's HELLO (captured too), as it would on the air.
    for (const f of frames.filter((x) => (x[0]! & 0xf0) === 0x00)) restarted.receive('lora', f, m.clock.now());
    restarted.receive('lora', captured, m.clock.now());
    restarted.dispatch();
    expect(got).toEqual([]);
    expect(restarted.counters.delivered).toBe(0);
  });

  it('a listener that throws is counted, and the node still forwards for others', () => {
    const m = buildMesh(3, [
      { name: 'l0', kind: 'lora', members: [0, 1] },
      { name: 'l1', kind: 'lora', members: [1, 2] },
    ]);
    m.run(180_000);
    const [a, b, c] = m.nodes as [MeshNode, MeshNode, MeshNode];
    b.bind(40).on('message', () => {
      throw new Error('an app bug on the forwarder');
    });
    const atC: string[] = [];
    c.bind(40).on('message', (_f, _p, bytes) => atC.push(new TextDecoder().decode(bytes)));
    const sa = a.bind(41);
    expect(sa.send(b.sid, 40, text('to b'))).toEqual({ ok: true });
    m.run(5_000);
    expect(sa.send(c.sid, 40, text('through b'))).toEqual({ ok: true });
    m.run(5_000);
    expect(b.counters.listenerErrors).toBe(1);
    expect(b.counters.forwarded).toBe(1);
    expect(atC).toEqual(['through b']);
  });
});

describe('frames that are neither datagrams nor RFC 5444', () => {
  it('are dropped and counted by reason, never thrown', () => {
    const node = new MeshNode({ identity: identityFromSecret(new Uint8Array(32).fill(9)), epoch: 1 });
    node.addInterface({ name: 'udp0', mtu: 1200, airtimeMs: () => 0 }, 0);
    node.receive('udp0', new Uint8Array(0), 1);
    node.receive('udp0', Uint8Array.of(0x99, 1, 2, 3), 1); // some other protocol on the port
    node.receive('udp0', new TextEncoder().encode('GET / HTTP/1.1\r\n'), 1);
    node.receive('udp0', Uint8Array.of(0x00, 0xff), 1); // RFC 5444 version 0, truncated
    expect(node.counters.dropped).toEqual({ empty: 1, 'unknown-protocol': 2, 'control-malformed': 1 });
    expect(node.control.counters.malformed).toBe(1);
  });
});
