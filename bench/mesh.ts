/**
 * Convergence of a 50-node random mesh in virtual time: MeshNodes driven by MeshRunners over
 * simulated links, from a cold start until every node has a route to every other node.
 *
 * The mesh: a random geometric graph (nodes uniform in the unit square, a link between any two
 * closer than RADIUS, redrawn until connected), each link its own channel of a 1 Mbit/s
 * fixed-rate medium, so a node has one interface per neighbour and the HELLO interval is the
 * configured minimum (airtime is negligible at that rate). Seeded: the same graph and the same
 * run every time.
 *
 * Baseline, in the same run: the HELLO interval. The ratio, convergence ÷ HELLO interval, is the
 * figure to compare between changes (it should barely depend on the interval chosen): a link needs
 * about two HELLOs to become symmetric and the topology then floods across the diameter in TCs,
 * so a few intervals is the floor.
 *
 * The wall-clock time is mostly Ed25519: every HELLO and TC is signed once and verified by every
 * receiver of every copy.
 */
import { performance } from 'node:perf_hooks';
import { SimMedium, type SimLink } from '../drivers/sim.js';
import { FixedRateAirtimeModel } from '../src/link/airtime/fixed-rate.js';
import { VirtualClock } from '../src/link/clock.js';
import { Prng } from '../src/link/prng.js';
import { MeshRunner } from '../src/gateway/mesh-runner.js';
import { identityFromSecret } from '../src/mesh/identity.js';
import { MeshNode } from '../src/mesh/node.js';

const NODES = 50;
/** Link range in the unit square: about 4.5 neighbours on average for 50 nodes. */
const RADIUS = 0.2;
const HELLO_MS = 2_000;
/** How often (virtual) the routes are checked: the resolution of the figure. */
const STEP_MS = 100;
/** Gives up after this much virtual time. */
const LIMIT_MS = 600_000;
const SEED = 5;

interface Graph {
  edges: Array<[number, number]>;
  diameter: number;
}

/** Hop distances from `from` by BFS; -1 where unreachable. */
function distances(adj: number[][], from: number): number[] {
  const dist = adj.map(() => -1);
  dist[from] = 0;
  const queue = [from];
  for (let i = 0; i < queue.length; i++) {
    const u = queue[i]!;
    for (const v of adj[u]!) {
      if (dist[v] !== -1) continue;
      dist[v] = dist[u]! + 1;
      queue.push(v);
    }
  }
  return dist;
}

/** A connected random geometric graph: positions drawn again until every node is reachable. */
function geometricGraph(n: number, radius: number, prng: Prng): Graph {
  for (;;) {
    const pos = Array.from({ length: n }, () => [prng.next(), prng.next()] as const);
    const edges: Array<[number, number]> = [];
    const adj: number[][] = pos.map(() => []);
    for (let i = 0; i < n; i++) {
      for (let j = i + 1; j < n; j++) {
        if (Math.hypot(pos[i]![0] - pos[j]![0], pos[i]![1] - pos[j]![1]) > radius) continue;
        edges.push([i, j]);
        adj[i]!.push(j);
        adj[j]!.push(i);
      }
    }
    if (distances(adj, 0).includes(-1)) continue;
    const diameter = Math.max(...adj.map((_, i) => Math.max(...distances(adj, i))));
    return { edges, diameter };
  }
}

function seeded(seed: number): () => number {
  const prng = new Prng(seed);
  return () => prng.next();
}

interface Run {
  graph: Graph;
  convergedMs: number | undefined;
  wallMs: number;
  signatures: number;
}

function converge(): Run {
  const prng = new Prng(SEED);
  const graph = geometricGraph(NODES, RADIUS, prng);
  const clock = new VirtualClock(0);
  const medium = new SimMedium({ clock, airtime: new FixedRateAirtimeModel({ bitRate: 1_000_000, maxBytes: 1200 }), random: seeded(SEED + 1) });
  const nodes = Array.from(
    { length: NODES },
    (_, i) => new MeshNode({ identity: identityFromSecret(new Uint8Array(32).fill(i + 1)), epoch: 1, minHelloMs: HELLO_MS, random: seeded(SEED * 1000 + i) }),
  );
  const links = nodes.map(() => new Map<string, SimLink>());
  graph.edges.forEach(([a, b], k) => {
    const channel = `l${k}`;
    for (const i of [a, b]) {
      const link = medium.attach(`${channel}@${i}`, { channel });
      void link.open();
      links[i]!.set(channel, link);
      nodes[i]!.addInterface({ name: channel, mtu: link.mtu, airtimeMs: (bytes) => link.airtime.airtimeMs(Math.min(bytes, link.airtime.maxBytes)) }, 0);
    }
  });

  const start = performance.now();
  const runners = nodes.map((node, i) => new MeshRunner({ node, clock, links: links[i]! }));
  runners.forEach((r) => r.start());
  const full = (): boolean => nodes.every((n) => n.routes().length === NODES - 1);
  let convergedMs: number | undefined;
  while (clock.now() < LIMIT_MS) {
    clock.advance(STEP_MS);
    if (full()) {
      convergedMs = clock.now();
      break;
    }
  }
  const wallMs = performance.now() - start;
  runners.forEach((r) => r.stop());
  const signatures = nodes.reduce((s, n) => s + n.control.counters.hellosSent + n.control.counters.tcsSent, 0);
  return { graph, convergedMs, wallMs, signatures };
}

/** Lines to print: the convergence time beside the HELLO interval, and the wall-clock cost. */
export function meshBench(): string[] {
  const { graph, convergedMs, wallMs, signatures } = converge();
  const degree = (2 * graph.edges.length) / NODES;
  const shape = `${NODES} nodes, ${graph.edges.length} links (mean degree ${degree.toFixed(1)}, diameter ${graph.diameter})`;
  const wall = `wall ${(wallMs / 1000).toFixed(1)} s, ${signatures} HELLO/TC messages signed`;
  if (convergedMs === undefined) return [`mesh convergence, ${shape}: not converged after ${LIMIT_MS / 1000} s virtual (${wall})`];
  return [
    `mesh convergence, ${shape}: ${(convergedMs / 1000).toFixed(1)} s virtual (${wall})`,
    `  baseline: HELLO interval ${(HELLO_MS / 1000).toFixed(1)} s; ratio convergence ÷ HELLO interval ${(convergedMs / HELLO_MS).toFixed(2)} (resolution ${STEP_MS} ms)`,
  ];
}
