/**
 * The control plane in virtual time over a tiny in-memory medium: HELLOs make links symmetric,
 * TCs flood, routes cover the mesh; forged and unsigned messages are refused.
 */
import { describe, expect, it } from 'vitest';
import { ControlPlane, MIN_CONTROL_MTU, TLV_BOOT, nodeIdOf, type ControlOutput } from '../src/mesh/control.js';
import { identityFromSecret } from '../src/mesh/identity.js';
import { computeRoutes } from '../src/mesh/routing.js';
import { decodePacket } from '../src/rfc5444/wire.js';
import { LoraAirtimeModel } from '../src/link/airtime/lora-model.js';
import { LinkType, PcapngFile } from '../src/link/pcap.js';
import { ipv4UdpRecord } from '../src/link/capture.js';
import { spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const lora = new LoraAirtimeModel({ sf: 7, bandwidth: 125_000, cr: 5 });

/** A boot token: the epoch and a nonce that names the node. */
const boot = (epoch: number, who: number) => ({ epoch, nonce: new Uint8Array(8).fill(who + 1) });

function seeded(seed: number): () => number {
  let x = seed;
  return () => ((x = (x * 16807) % 2147483647) / 2147483647);
}

/** Nodes on one channel each; `hears[a]` lists who receives a's packets. */
function mesh(n: number, hears: Record<number, number[]>, mtu = 255, sent?: Uint8Array[], tagged?: Array<{ from: number; out: ControlOutput }>) {
  const nodes = Array.from({ length: n }, (_, i) => new ControlPlane({ identity: identityFromSecret(new Uint8Array(32).fill(i + 1)), boot: boot(1, i), random: seeded(i * 7919 + 7) }));
  nodes.forEach((c) => c.addInterface({ name: 'radio', mtu, airtimeMs: (b) => lora.airtimeMs(Math.min(b, 255)) }, 0));
  let now = 0;
  const run = (until: number, cut?: (from: number, to: number) => boolean): void => {
    while (now < until) {
      nodes.forEach((c) => c.poll(now));
      for (let round = 0; round < 10; round++) {
        let any = false;
        nodes.forEach((c, i) => {
          for (const p of c.takeOutput()) {
            any = true;
            sent?.push(p.bytes);
            tagged?.push({ from: i, out: p });
            for (const j of hears[i] ?? []) if (!cut?.(i, j)) nodes[j]!.receive(p.iface, p.bytes, now);
          }
        });
        if (!any) break;
      }
      now = Math.min(until, Math.min(...nodes.map((c) => c.nextDeadline())));
      if (now === until) nodes.forEach((c) => c.poll(now));
    }
  };
  return { nodes, run, ids: nodes.map((c) => c.id) };
}

describe('ControlPlane', () => {
  it('finds symmetric neighbours and routes along a chain', () => {
    const { nodes, run, ids } = mesh(3, { 0: [1], 1: [0, 2], 2: [1] });
    run(60_000);
    expect(nodes[0]!.neighbours().map((n) => [n.id, n.symmetric])).toEqual([[ids[1], true]]);
    expect(nodes[1]!.neighbours().filter((n) => n.symmetric)).toHaveLength(2);
    const routes = computeRoutes(ids[0]!, nodes[0]!.localLinks(), nodes[0]!.topology());
    expect(routes.get(ids[2]!)).toMatchObject({ nextHop: ids[1], hops: 2, pathMtu: 255 });
    // A learned C's full key from C's flooded TC, so it can seal to C.
    expect(Buffer.from(nodes[0]!.node(ids[2]!)!.sid).equals(Buffer.from(identityFromSecret(new Uint8Array(32).fill(3)).sid))).toBe(true);
    expect(nodes[1]!.counters.tcsForwarded).toBeGreaterThan(0);
  });

  it('a link heard one way only is not symmetric', () => {
    const { nodes, run, ids } = mesh(2, { 0: [1], 1: [] });
    run(30_000);
    expect(nodes[1]!.neighbours().map((n) => [n.id, n.symmetric])).toEqual([[ids[0], false]]);
    expect(nodes[0]!.neighbours()).toEqual([]);
  });

  it('drops a route when a link dies and restores it when the link returns', () => {
    const { nodes, run, ids } = mesh(4, { 0: [1, 2], 1: [0, 3], 2: [0, 3], 3: [1, 2] });
    run(60_000);
    const via = (): string | undefined => computeRoutes(ids[0]!, nodes[0]!.localLinks(), nodes[0]!.topology()).get(ids[3]!)?.nextHop;
    const first = via();
    expect([ids[1], ids[2]]).toContain(first);
    const dead = first === ids[1] ? 1 : 2;
    run(200_000, (a, b) => (a === 0 && b === dead) || (a === dead && b === 0));
    expect(via()).toBe(ids[dead === 1 ? 2 : 1]);
    run(300_000);
    expect(via()).toBeDefined();
  });

  it('writes HELLOs as RFC 5444 with a 16-byte originator, and refuses a tampered one', () => {
    const { nodes, run } = mesh(2, { 0: [1], 1: [0] });
    run(1_000);
    nodes[0]!.poll(10_000);
    const [p] = nodes[0]!.takeOutput();
    expect(p).toBeDefined();
    const d = decodePacket(p!.bytes);
    expect(d.ok && d.packet.messages[0]).toMatchObject({ type: 0, addrLength: 16, hopLimit: 1 });
    expect(d.ok && Buffer.from(d.packet.messages[0]!.originator!).toString('hex')).toBe(nodes[0]!.id);
    const bad = p!.bytes.slice();
    bad[bad.length - 5]! ^= 0x10;
    const before = nodes[1]!.counters.badIcv;
    nodes[1]!.receive('radio', bad, 10_000);
    expect(nodes[1]!.counters.badIcv).toBe(before + 1);
  });

  it('refuses a HELLO whose key does not belong to its originator', () => {
    const { nodes } = mesh(1, {});
    const forger = new ControlPlane({ identity: identityFromSecret(new Uint8Array(32).fill(9)), boot: boot(1, 9) });
    forger.addInterface({ name: 'radio', mtu: 255, airtimeMs: () => 10 }, 0);
    forger.poll(1_000);
    const [p] = forger.takeOutput();
    // Claim another node's originator with the forger's own key: the SID check fails.
    const victim = nodeIdOf(identityFromSecret(new Uint8Array(32).fill(5)).sid);
    const bytes = p!.bytes.slice();
    const at = Buffer.from(bytes).indexOf(Buffer.from(forger.id, 'hex'));
    bytes.set(Buffer.from(victim, 'hex'), at);
    nodes[0]!.receive('radio', bytes, 1_000);
    expect(nodes[0]!.counters.badKey).toBe(1);
    expect(nodes[0]!.neighbours()).toEqual([]);
  });

  it('fragments a HELLO that does not fit the MTU; every fragment is signed and counts', () => {
    const sent: Uint8Array[] = [];
    const all = { 0: [1, 2, 3], 1: [0, 2, 3], 2: [0, 1, 3], 3: [0, 1, 2] };
    const { nodes, run } = mesh(4, all, 200, sent);
    run(90_000);
    for (const n of nodes) expect(n.neighbours().filter((x) => x.symmetric)).toHaveLength(3);
    expect(sent.every((b) => b.length <= 200)).toBe(true);
    // Some HELLO went out in more than one message with the same sequence number: fragments.
    const hellos = sent.flatMap((b) => {
      const d = decodePacket(b);
      return d.ok ? d.packet.messages.filter((m) => m.type === 0).map((m) => `${Buffer.from(m.originator!).toString('hex')}/${m.seqno}`) : [];
    });
    expect(hellos.length).toBeGreaterThan(new Set(hellos).size);
    expect(nodes.every((n) => n.counters.badIcv === 0)).toBe(true);
  });

  it("Wireshark's packetbb dissector reads the HELLOs and TCs", async () => {
    const sent: Uint8Array[] = [];
    const { run } = mesh(3, { 0: [1], 1: [0, 2], 2: [1] }, 255, sent);
    run(30_000);
    const file = join(mkdtempSync(join(tmpdir(), 'meshgw-hello-')), 'control.pcapng');
    const pcap = new PcapngFile(file);
    const id = pcap.addInterface({ linkType: LinkType.IPV4, name: 'radio' });
    for (const [i, b] of sent.entries()) {
      pcap.writePacket({ interfaceId: id, timestampMs: i, direction: 'out', data: ipv4UdpRecord({ address: '10.0.0.1', port: 269 }, { address: '10.0.0.255', port: 269 }, b) });
    }
    await pcap.close();
    const r = spawnSync('tshark', ['-r', file, '-T', 'fields', '-e', 'packetbb.msg.type', '-e', 'packetbb.msg.addrsize'], { encoding: 'utf8' });
    if (r.error) throw new Error('tshark is needed: apt-get install -y tshark');
    const rows = r.stdout.trim().split('\n').map((l) => l.split('\t'));
    expect(rows).toHaveLength(sent.length);
    const types = new Set(rows.flatMap((row) => row[0]!.split(',')));
    expect(types).toEqual(new Set(['0', '1']));
    // Every message carries 16-byte addresses (the SID prefix).
    expect(rows.every((row) => row[1]!.split(',').every((v) => v === '16'))).toBe(true);
  });

  it('tags each packet for the pacer (one kind, one generation) and signs the boot token into every message', () => {
    const tagged: Array<{ from: number; out: ControlOutput }> = [];
    const { nodes, run, ids } = mesh(3, { 0: [1], 1: [0, 2], 2: [1] }, 255, undefined, tagged);
    run(30_000);
    const kinds = new Set<string>();
    for (const { from, out } of tagged) {
      const d = decodePacket(out.bytes);
      expect(d.ok).toBe(true);
      if (!d.ok) continue;
      const own = out.kind === 'hello' || out.kind === 'tc';
      kinds.add(own ? out.kind : 'forwarded');
      const originator = own ? ids[from] : out.kind.slice(3);
      expect(out.kind === 'hello' || out.kind === 'tc' || out.kind === `tc:${originator}`).toBe(true);
      for (const m of d.packet.messages) {
        expect(m.type).toBe(out.kind === 'hello' ? 0 : 1);
        expect(Buffer.from(m.originator!).toString('hex')).toBe(originator);
        expect(m.seqno).toBe(out.generation);
        const bootTlv = m.tlvs.filter((t) => t.type === TLV_BOOT);
        expect(bootTlv).toHaveLength(1);
        expect(bootTlv[0]!.value!.length).toBe(12);
      }
    }
    expect(kinds).toEqual(new Set(['hello', 'tc', 'forwarded']));
    // The boot tokens learned: from a neighbour's HELLO, and from a far node's forwarded TC.
    expect(nodes[0]!.node(ids[1]!)!.boot).toEqual(boot(1, 1));
    expect(nodes[0]!.node(ids[2]!)!.boot).toEqual(boot(1, 2));
    expect(nodes[0]!.node(ids[0]!)!.boot).toEqual(boot(1, 0));
    expect(nodes[0]!.knownNodes().map((n) => n.boot?.epoch)).toEqual([1, 1, 1]);
  });

  it('refuses an interface whose MTU cannot hold one control message', () => {
    const c = new ControlPlane({ identity: identityFromSecret(new Uint8Array(32).fill(9)), boot: boot(1, 9) });
    expect(() => c.addInterface({ name: 'tiny', mtu: MIN_CONTROL_MTU - 1, airtimeMs: () => 1 }, 0)).toThrow(RangeError);
    expect(() => c.addInterface({ name: 'small', mtu: MIN_CONTROL_MTU, airtimeMs: () => 1 }, 0)).not.toThrow();
    expect(() => new ControlPlane({ identity: identityFromSecret(new Uint8Array(32).fill(9)), boot: { epoch: 1, nonce: new Uint8Array(4) } })).toThrow(RangeError);
  });
});

describe('first discovery on a duty-cycled LoRa channel', () => {
  it('two nodes are symmetric neighbours within seconds, then HELLOs settle to the airtime-derived interval', () => {
    const nodes = [0, 1].map((i) => new ControlPlane({ identity: identityFromSecret(new Uint8Array(32).fill(i + 41)), boot: boot(1, i), random: seeded(i * 131 + 3) }));
    // A 1 % duty cycle (EU868 g/g1), SF7 at 125 kHz; HELLOs may use a tenth of the budget.
    nodes.forEach((c, i) => c.addInterface({ name: 'radio', mtu: 255, airtimeMs: (b) => lora.airtimeMs(Math.min(b, 255)), dutyFraction: 0.01 }, i * 1_500));
    const hellos = [0, 0];
    let now = 0;
    let metAt: number | undefined;
    const hour = 3_600_000;
    while (now < hour) {
      nodes.forEach((c) => c.poll(now));
      for (let round = 0; round < 10; round++) {
        let any = false;
        nodes.forEach((c, i) => {
          for (const p of c.takeOutput()) {
            any = true;
            if (p.kind === 'hello') hellos[i]!++;
            nodes[1 - i]!.receive(p.iface, p.bytes, now);
          }
        });
        if (!any) break;
      }
      if (metAt === undefined && nodes.every((c) => c.neighbours().some((n) => n.symmetric))) metAt = now;
      now = Math.min(hour, ...nodes.map((c) => c.nextDeadline()));
    }
    const steady = nodes[0]!.helloIntervalOf('radio')!;
    expect(steady).toBeGreaterThan(60_000); // minutes between HELLOs once settled
    expect(metAt, 'symmetric both ways').toBeDefined();
    expect(metAt!).toBeLessThan(15_000);
    // Over the hour: the fast start and a triggered HELLO or two, then one per steady interval.
    for (const n of hellos) {
      expect(n).toBeGreaterThan(hour / steady - 1);
      expect(n).toBeLessThanOrEqual(Math.ceil(hour / (0.9 * steady)) + 3 + 2);
    }
  });
});
