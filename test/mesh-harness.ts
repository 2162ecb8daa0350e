/** Builds meshes of MeshNodes on simulated media in virtual time, for the mesh tests. */
import { SimMedium, type SimLink } from '../drivers/sim.js';
import { VirtualClock } from '../src/link/clock.js';
import { FixedRateAirtimeModel } from '../src/link/airtime/fixed-rate.js';
import { MeshRunner } from '../src/gateway/mesh-runner.js';
import { Prng } from '../src/link/prng.js';
import { MeshNode } from '../src/mesh/node.js';
import { identityFromSecret } from '../src/mesh/identity.js';

export interface Segment {
  name: string;
  kind: 'lora' | 'wifi';
  members: number[];
}

export interface TestMesh {
  clock: VirtualClock;
  nodes: MeshNode[];
  links: Array<Map<string, SimLink>>;
  runners: MeshRunner[];
  run(ms: number): void;
}

function seeded(seed: number): () => number {
  const prng = new Prng(seed);
  return () => prng.next();
}

export function buildMesh(count: number, segments: Segment[], seed = 1): TestMesh {
  const clock = new VirtualClock(0);
  const lora = new SimMedium({ clock, random: seeded(seed + 1000) });
  const wifi = new SimMedium({ clock, airtime: new FixedRateAirtimeModel({ bitRate: 1_000_000, maxBytes: 1200 }), random: seeded(seed + 2000) });
  const nodes = Array.from(
    { length: count },
    (_, i) => new MeshNode({ identity: identityFromSecret(new Uint8Array(32).fill(i + 1)), epoch: 1, random: seeded(seed * 31 + i) }),
  );
  const links = nodes.map(() => new Map<string, SimLink>());
  for (const seg of segments) {
    const medium = seg.kind === 'lora' ? lora : wifi;
    for (const i of seg.members) {
      const link = medium.attach(`${seg.name}@${i}`, { channel: seg.name, ...(seg.kind === 'wifi' ? { mtu: 1200 } : {}) });
      void link.open();
      links[i]!.set(seg.name, link);
      nodes[i]!.addInterface({ name: seg.name, mtu: link.mtu, airtimeMs: (b) => link.airtime.airtimeMs(Math.min(b, link.airtime.maxBytes)) }, 0);
    }
  }
  const runners = nodes.map((node, i) => new MeshRunner({ node, clock, links: links[i]! }));
  runners.forEach((r) => r.start());
  return { clock, nodes, links, runners, run: (ms) => clock.advanceTo(clock.now() + ms) };
}
