/**
 * Routes from link state, OLSRv2-style: every node advertises its symmetric links with their
 * cost; each node runs Dijkstra over what it knows. Pure: no clocks, no IO.
 *
 * Metric: the expected airtime to deliver one byte over a link — the link's airtime per byte
 * divided by its delivery ratio — summed over the hops. One Wi-Fi hop (microseconds per byte)
 * beats one LoRa hop (milliseconds per byte); a lossy link costs more than a clean one of the
 * same rate. Each hop also adds a tiny constant so that, at equal airtime, fewer hops win.
 *
 * No link is cheaper than an uncapped one (MIN_LINK_MS_PER_BYTE, 10 Mbit/s): `linkCost` clamps
 * faster models to it, so an advertised cost below it (or not finite) cannot come from a real
 * link and is refused (`usableCost`). Advertised edges count only when both ends advertise each
 * other (`confirmedTopology`), so one node cannot invent a link to a node that does not hear it.
 */

/** Cost added per hop, ms per byte: small enough not to matter against any real airtime. */
export const HOP_COST = 1e-6;
/** Below this delivery ratio a link is treated as this lossy (keeps costs finite). */
export const MIN_DELIVERY_RATIO = 0.01;
/** ms per byte of a link with no rate cap (10 Mbit/s): the cheapest a link can be. */
export const MIN_LINK_MS_PER_BYTE = 8 / 10_000;

/** A directed link in the topology: `from` can send to `to` at this cost. */
export interface TopologyEdge {
  from: string;
  to: string;
  /** ms of airtime per byte delivered (after loss). */
  cost: number;
  mtu: number;
}

/** One of this node's own links to a symmetric neighbour. */
export interface LocalLink {
  neighbour: string;
  iface: string;
  cost: number;
  mtu: number;
}

export interface Route {
  destination: string;
  nextHop: string;
  iface: string;
  /** Sum of link costs, ms per byte. */
  metric: number;
  hops: number;
  /** The smallest MTU on the path: the largest frame that reaches the destination. */
  pathMtu: number;
}

/** ms per byte over a link of airtime model cost and delivery ratio (never below the floor). */
export function linkCost(airtimeMsPerByte: number, deliveryRatio: number): number {
  const ratio = Math.min(1, Math.max(MIN_DELIVERY_RATIO, deliveryRatio));
  return Math.max(MIN_LINK_MS_PER_BYTE, airtimeMsPerByte) / ratio + HOP_COST;
}

/** Whether an advertised cost can be a real link's: finite and not below MIN_LINK_MS_PER_BYTE. */
export function usableCost(cost: number): boolean {
  return Number.isFinite(cost) && cost >= MIN_LINK_MS_PER_BYTE;
}

/** What one node's TC advertises: neighbour → cost (ms per byte) and MTU. */
export type Advertised = ReadonlyMap<string, { readonly cost: number; readonly mtu: number }>;

/**
 * The advertised edges routes may use, as OLSRv2 confirms them: a→b only when b also advertises
 * b→a, or when b is `self` and a is one of our symmetric neighbours (we saw the link ourselves);
 * and only at a usable cost. Each edge keeps the cost its own advertiser gave.
 */
export function confirmedTopology(self: string, advertised: ReadonlyMap<string, Advertised>, symmetric: ReadonlySet<string>): TopologyEdge[] {
  const out: TopologyEdge[] = [];
  for (const [from, edges] of advertised) {
    for (const [to, e] of edges) {
      if (to === from || !usableCost(e.cost)) continue;
      const confirmed = to === self ? symmetric.has(from) : advertised.get(to)?.has(from) === true;
      if (confirmed) out.push({ from, to, cost: e.cost, mtu: e.mtu });
    }
  }
  return out;
}

interface Entry {
  node: string;
  metric: number;
  hops: number;
  pathMtu: number;
  first: LocalLink;
}

/** A binary min-heap on metric. */
class Heap {
  private items: Entry[] = [];
  get size(): number {
    return this.items.length;
  }
  push(e: Entry): void {
    const a = this.items;
    a.push(e);
    let i = a.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (a[p]!.metric <= a[i]!.metric) break;
      [a[p], a[i]] = [a[i]!, a[p]!];
      i = p;
    }
  }
  pop(): Entry {
    const a = this.items;
    const top = a[0]!;
    const last = a.pop()!;
    if (a.length > 0) {
      a[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < a.length && a[l]!.metric < a[m]!.metric) m = l;
        if (r < a.length && a[r]!.metric < a[m]!.metric) m = r;
        if (m === i) break;
        [a[m], a[i]] = [a[i]!, a[m]!];
        i = m;
      }
    }
    return top;
  }
}

/**
 * Shortest paths from `self`: first hops are this node's own links (several per neighbour when it
 * is reachable over several interfaces), further hops come from the advertised topology.
 */
export function computeRoutes(self: string, local: readonly LocalLink[], topology: readonly TopologyEdge[]): Map<string, Route> {
  const out = new Map<string, TopologyEdge[]>();
  for (const e of topology) {
    if (e.from === e.to || !(e.cost >= 0 && Number.isFinite(e.cost))) continue;
    let list = out.get(e.from);
    if (!list) out.set(e.from, (list = []));
    list.push(e);
  }
  const heap = new Heap();
  for (const l of local) {
    if (l.neighbour !== self) heap.push({ node: l.neighbour, metric: l.cost, hops: 1, pathMtu: l.mtu, first: l });
  }
  const routes = new Map<string, Route>();
  while (heap.size > 0) {
    const e = heap.pop();
    if (routes.has(e.node) || e.node === self) continue;
    routes.set(e.node, { destination: e.node, nextHop: e.first.neighbour, iface: e.first.iface, metric: e.metric, hops: e.hops, pathMtu: e.pathMtu });
    for (const edge of out.get(e.node) ?? []) {
      if (routes.has(edge.to) || edge.to === self) continue;
      heap.push({ node: edge.to, metric: e.metric + edge.cost, hops: e.hops + 1, pathMtu: Math.min(e.pathMtu, edge.mtu), first: e.first });
    }
  }
  return routes;
}
