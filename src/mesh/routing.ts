/**
 * Routes from link state, OLSRv2-style: every node advertises its symmetric links with their
 * cost; each node runs Dijkstra over what it knows. Pure: no clocks, no IO.
 *
 * Metric: the expected airtime to deliver one byte over a link — the link's airtime per byte
 * divided by its delivery ratio — summed over the hops. One Wi-Fi hop (microseconds per byte)
 * beats one LoRa hop (milliseconds per byte); a lossy link costs more than a clean one of the
 * same rate. Each hop also adds a tiny constant so that, at equal airtime, fewer hops win.
 */

/** Cost added per hop, ms per byte: small enough not to matter against any real airtime. */
export const HOP_COST = 1e-6;
/** Below this delivery ratio a link is treated as this lossy (keeps costs finite). */
export const MIN_DELIVERY_RATIO = 0.01;

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

/** ms per byte over a link of airtime model cost and delivery ratio. */
export function linkCost(airtimeMsPerByte: number, deliveryRatio: number): number {
  const ratio = Math.min(1, Math.max(MIN_DELIVERY_RATIO, deliveryRatio));
  return airtimeMsPerByte / ratio + HOP_COST;
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
    if (e.from === e.to) continue;
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
