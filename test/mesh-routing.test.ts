import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { MIN_LINK_MS_PER_BYTE, computeRoutes, confirmedTopology, linkCost, usableCost, type Advertised, type LocalLink, type TopologyEdge } from '../src/mesh/routing.js';

const LORA = linkCost(328.704 / 51, 1); // SF9/125 kHz: ~6.4 ms per byte
const WIFI = linkCost(8 / 10_000, 1); // 10 Mbit/s: 0.0008 ms per byte

describe('computeRoutes', () => {
  it('prefers one Wi-Fi hop over one LoRa hop to the same node', () => {
    const local: LocalLink[] = [
      { neighbour: 'B', iface: 'lora0', cost: LORA, mtu: 255 },
      { neighbour: 'B', iface: 'wlan0', cost: WIFI, mtu: 1200 },
    ];
    expect(computeRoutes('A', local, []).get('B')).toMatchObject({ nextHop: 'B', iface: 'wlan0', hops: 1, pathMtu: 1200 });
  });

  it('crosses interface types and reports the path MTU', () => {
    // A —LoRa— B —Wi-Fi— C
    const local: LocalLink[] = [{ neighbour: 'B', iface: 'lora0', cost: LORA, mtu: 255 }];
    const topo: TopologyEdge[] = [
      { from: 'B', to: 'A', cost: LORA, mtu: 255 },
      { from: 'B', to: 'C', cost: WIFI, mtu: 1200 },
      { from: 'C', to: 'B', cost: WIFI, mtu: 1200 },
    ];
    const c = computeRoutes('A', local, topo).get('C');
    expect(c).toMatchObject({ nextHop: 'B', iface: 'lora0', hops: 2, pathMtu: 255 });
    expect(c!.metric).toBeCloseTo(LORA + WIFI, 12);
  });

  it('a lossy link costs more: two clean hops beat one bad one', () => {
    const bad = linkCost(328.704 / 51, 0.2);
    const local: LocalLink[] = [
      { neighbour: 'C', iface: 'lora0', cost: bad, mtu: 255 },
      { neighbour: 'B', iface: 'lora0', cost: LORA, mtu: 255 },
    ];
    const topo: TopologyEdge[] = [{ from: 'B', to: 'C', cost: LORA, mtu: 255 }];
    expect(computeRoutes('A', local, topo).get('C')).toMatchObject({ nextHop: 'B', hops: 2 });
  });

  it('property: every route is no worse than any advertised alternative (Bellman condition)', () => {
    const nodes = ['A', 'B', 'C', 'D', 'E', 'F'];
    const edge = fc.record({ from: fc.constantFrom(...nodes), to: fc.constantFrom(...nodes), cost: fc.double({ min: 0.001, max: 10, noNaN: true }), mtu: fc.integer({ min: 64, max: 1500 }) });
    fc.assert(
      fc.property(fc.array(edge, { maxLength: 30 }), (edges) => {
        const local = edges.filter((e) => e.from === 'A').map((e) => ({ neighbour: e.to, iface: 'if', cost: e.cost, mtu: e.mtu }));
        const routes = computeRoutes('A', local, edges);
        const metric = (n: string): number => (n === 'A' ? 0 : (routes.get(n)?.metric ?? Infinity));
        for (const e of edges) {
          if (e.to === 'A' || e.from === e.to) continue;
          expect(metric(e.to)).toBeLessThanOrEqual(metric(e.from) + e.cost + 1e-9);
        }
        for (const r of routes.values()) expect(r.hops).toBeGreaterThanOrEqual(1);
      }),
      { numRuns: 500 },
    );
  });

  it('no link costs less than an uncapped one; a cheaper or non-finite advertised cost is refused', () => {
    expect(linkCost(1e-9, 1)).toBeGreaterThanOrEqual(MIN_LINK_MS_PER_BYTE);
    expect(linkCost(0, 0.5)).toBeGreaterThanOrEqual(2 * MIN_LINK_MS_PER_BYTE);
    expect(usableCost(WIFI)).toBe(true);
    expect(usableCost(Math.fround(WIFI))).toBe(true); // as a float32 LINK_COST carries it
    for (const bad of [0, -1, MIN_LINK_MS_PER_BYTE / 2, Number.NaN, Infinity]) expect(usableCost(bad)).toBe(false);
  });

  it('an advertised edge counts only when its other end advertises it back, or it ends at us over a symmetric link', () => {
    const e = (cost = LORA): { cost: number; mtu: number } => ({ cost, mtu: 255 });
    const advertised = new Map<string, Advertised>([
      ['B', new Map([['C', e()], ['A', e()], ['X', e()]])],
      ['C', new Map([['B', e()]])],
      ['M', new Map([['A', e()], ['C', e(0)]])],
    ]);
    const edges = confirmedTopology('A', advertised, new Set(['B']));
    // B→C and C→B confirm each other; B→A ends at us and B is our symmetric neighbour. B→X: X
    // says nothing. M→A: M is not our neighbour. M→C at cost 0: C does not advertise M, and the
    // cost is refused anyway.
    expect(edges.map((x) => `${x.from}→${x.to}`).sort()).toEqual(['B→A', 'B→C', 'C→B']);
    const routes = computeRoutes('A', [{ neighbour: 'B', iface: 'lora0', cost: LORA, mtu: 255 }], edges);
    expect([...routes.keys()].sort()).toEqual(['B', 'C']);
  });
});
