/**
 * HIL: the 3-node mesh chain A — B — C over real UDP sockets, in three network namespaces joined
 * by two veth pairs, with broadcast discovery. A and C cannot hear each other; B has an interface
 * on each segment and forwards between them.
 *
 *   ns A: vA 10.253.X.1/24  ──veth──  vB1 10.253.X.2/24 (ns B) vB2 10.253.Y.2/24  ──veth──  vC 10.253.Y.1/24 :ns C
 *            UDP port 4269                 4269                   4270                         4270
 *
 * Ports. UdpLink bound by interface name binds 0.0.0.0:port (Node has no SO_BINDTODEVICE) and
 * does not set SO_REUSEADDR, so B's two links in one process cannot share a port: the second bind
 * would fail with EADDRINUSE (and even with address reuse, a unicast to that port would reach
 * only one of the two sockets, not necessarily the one for the interface it came in on). So the
 * A–B segment uses port 4269 and the B–C segment port 4270; each link's subnet filter drops what
 * reaches its 0.0.0.0 socket from the other segment.
 *
 * Each namespace runs a child node (a temp .mjs script importing the built code from dist/) that
 * prints JSON lines: its SID, the routes every second, each datagram received on port 30; and
 * takes commands on stdin: `send <sidhex> <text>`, `routes`, `counters`, `quit`.
 *
 * Needs root and iproute2. Every address used (10.253.X.0/24, 10.253.Y.0/24) exists only inside
 * the namespaces this test creates, and the namespaces are deleted however the test ends.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { spawn, spawnSync, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { ip, waitForCarrier } from './netns.js';

const root = fileURLToPath(new URL('../../', import.meta.url));
/** Built modules the child imports, beside their sources (to refuse a stale build). */
const MODULES = {
  node: 'src/mesh/node',
  identity: 'src/mesh/identity',
  udp: 'drivers/udp',
  gateway: 'src/gateway/gateway',
  clock: 'src/link/clock',
} as const;
const CHECKED_SOURCES = [...Object.values(MODULES), 'src/mesh/control', 'src/mesh/seal', 'src/mesh/frame', 'src/mesh/routing', 'src/gateway/loop', 'src/gateway/host', 'src/link/registry', 'src/link/pacer'];
const distUrl = (m: string): string => JSON.stringify(pathToFileURL(join(root, 'dist', `${m}.js`)).href);
const PORT_AB = 4269;
const PORT_BC = 4270;
const DATA_PORT = 30;
const CONVERGE_MS = 30_000;


/** The child: one mesh node over its UdpLinks inside a real Gateway (pacers, loop, monotonic clock). */
const CHILD = `
import { MeshNode } from ${distUrl(MODULES.node)};
import { identityFromSecret } from ${distUrl(MODULES.identity)};
import { UdpLink } from ${distUrl(MODULES.udp)};
import { Gateway } from ${distUrl(MODULES.gateway)};
import { MonotonicClock } from ${distUrl(MODULES.clock)};
import { createInterface } from 'node:readline';

const cfg = JSON.parse(process.argv[2]);
const out = (o) => process.stdout.write(JSON.stringify(o) + '\\n');
const hex = (b) => Buffer.from(b).toString('hex');
const clock = new MonotonicClock();
const node = new MeshNode({ identity: identityFromSecret(new Uint8Array(32).fill(cfg.seed)), epoch: 1, minHelloMs: 500 });
const links = new Map();
for (const l of cfg.links) {
  const link = new UdpLink({ name: l.iface, interface: l.iface, port: l.port, log: (line) => out({ log: line }) });
  link.on('state', (state) => out({ link: l.iface, state, stats: link.stats }));
  links.set(l.iface, link);
}
const gateway = new Gateway({ clock, mesh: node, interfaces: [...links.values()].map((link) => ({ link })) });
await gateway.start();
const socket = gateway.host.bind(${DATA_PORT});
socket.on('message', (from, port, bytes) => out({ message: { from: hex(from), port, text: new TextDecoder().decode(bytes) } }));
out({ sid: hex(node.sid) });
// key: whether we hold the destination's keys (from its HELLO or TC), needed to open its datagrams.
const routes = () => out({ routes: node.routes().map((r) => ({ destination: r.destination, nextHop: r.nextHop, iface: r.iface, hops: r.hops, key: node.control.node(r.destination) !== undefined })) });
const routesTimer = setInterval(routes, 1000);
const quit = async () => {
  clearInterval(routesTimer);
  await gateway.stop();
  process.exit(0);
};
createInterface({ input: process.stdin }).on('line', (line) => {
  const [cmd, arg, ...rest] = line.trim().split(' ');
  if (cmd === 'send') {
    const text = rest.join(' ');
    const r = socket.send(Uint8Array.from(Buffer.from(arg, 'hex')), ${DATA_PORT}, new TextEncoder().encode(text));
    out(r.ok ? { sent: { to: arg, text } } : { error: r.message });
  } else if (cmd === 'routes') routes();
  else if (cmd === 'counters') {
    const linkCounters = Object.fromEntries([...links].map(([name, link]) => [name, { counters: link.counters, stats: link.stats }]));
    out({ counters: node.counters, control: node.control.counters, refused: gateway.status().map((s) => s.refused), links: linkCounters });
  } else if (cmd === 'quit') void quit();
});
process.stdin.on('end', () => void quit());
`;

interface RouteLine {
  destination: string;
  nextHop: string;
  iface: string;
  hops: number;
  key: boolean;
}

interface Line {
  sid?: string;
  routes?: RouteLine[];
  message?: { from: string; port: number; text: string };
  sent?: { to: string; text: string };
  error?: string;
  counters?: { delivered: number; forwarded: number; sent: number; dropped: Record<string, number> };
}

/** A child node in a namespace: its output lines so far, and a way to wait for one. */
class Child {
  readonly lines: Line[] = [];
  stderr = '';
  exit: number | null | undefined = undefined;
  private readonly proc: ChildProcessWithoutNullStreams;
  private waiters: Array<() => void> = [];

  constructor(
    readonly name: string,
    ns: string,
    script: string,
    cfg: { seed: number; links: Array<{ iface: string; port: number }> },
  ) {
    this.proc = spawn('ip', ['netns', 'exec', ns, process.execPath, script, JSON.stringify(cfg)]);
    let partial = '';
    this.proc.stdout.on('data', (b: Buffer) => {
      partial += b.toString();
      const parts = partial.split('\n');
      partial = parts.pop()!;
      for (const p of parts) if (p.trim() !== '') this.lines.push(JSON.parse(p) as Line);
      this.wake();
    });
    this.proc.stderr.on('data', (b: Buffer) => (this.stderr += b.toString()));
    this.proc.on('close', (code) => {
      this.exit = code;
      this.wake();
    });
  }

  command(line: string): void {
    this.proc.stdin.write(`${line}\n`);
  }

  /** The first line (from `from` on) that satisfies `pred`; rejects on timeout or exit. */
  async waitFor<T>(what: string, pick: (l: Line) => T | undefined, timeoutMs: number, from = 0): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      for (const l of this.lines.slice(from)) {
        const v = pick(l);
        if (v !== undefined) return v;
      }
      if (this.exit !== undefined || Date.now() > deadline) {
        const why = this.exit !== undefined ? `exited with ${this.exit}` : `nothing after ${timeoutMs} ms`;
        throw new Error(`${this.name}: waiting for ${what}: ${why}\nstdout: ${this.lines.slice(-20).map((x) => JSON.stringify(x)).join('\n')}\nstderr: ${this.stderr}`);
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.max(0, deadline - Date.now()) + 1);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  /** Asks politely, then kills whatever is left. */
  async stop(): Promise<void> {
    if (this.exit !== undefined) return;
    this.command('quit');
    const gone = await Promise.race([
      new Promise<boolean>((resolve) => this.proc.once('close', () => resolve(true))),
      new Promise<boolean>((resolve) => setTimeout(() => resolve(false), 1_000)),
    ]);
    if (!gone) this.proc.kill('SIGKILL');
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }
}


const namespaces: string[] = [];
const children: Child[] = [];
async function cleanup(): Promise<void> {
  await Promise.all(children.splice(0).map((c) => c.stop()));
  for (const ns of namespaces.splice(0)) spawnSync('ip', ['netns', 'del', ns], { stdio: 'ignore' });
}
afterAll(cleanup);

function checkBuild(): void {
  for (const m of CHECKED_SOURCES) {
    const built = join(root, 'dist', `${m}.js`);
    if (!existsSync(built)) throw new Error(`${built} is missing: run \`npm run build\` first (npm test does)`);
    if (statSync(built).mtimeMs < statSync(join(root, `${m}.ts`)).mtimeMs) {
      throw new Error(`${built} is older than ${m}.ts: run \`npm run build\` first (npm test does)`);
    }
  }
}

const nodeId = (sidHex: string): string => sidHex.slice(0, 32);

describe('mesh chain A — B — C over UDP in network namespaces', () => {
  it('A reaches C through B, which forwards between its two interfaces', { timeout: 40_000 }, async () => {
    checkBuild();
    const x = 1 + Math.floor(Math.random() * 250);
    const y = 1 + ((x + Math.floor(Math.random() * 249)) % 250); // 1..250, never x
    const suffix = randomBytes(3).toString('hex');
    const [nsA, nsB, nsC] = ['a', 'b', 'c'].map((n) => `meshgw-mesh-${n}-${suffix}`) as [string, string, string];
    const dir = mkdtempSync(join(tmpdir(), 'meshgw-mesh-netns-'));
    try {
      for (const ns of [nsA, nsB, nsC]) {
        try {
          ip('netns', 'add', ns);
        } catch (err) {
          throw new Error(`${(err as Error).message}\nThis test needs root and iproute2 (apt-get install -y iproute2).`);
        }
        namespaces.push(ns);
      }
      // Created straight inside the namespaces, so the names cannot clash with the host's.
      ip('link', 'add', 'vA', 'netns', nsA, 'type', 'veth', 'peer', 'name', 'vB1', 'netns', nsB);
      ip('link', 'add', 'vB2', 'netns', nsB, 'type', 'veth', 'peer', 'name', 'vC', 'netns', nsC);
      ip('-n', nsA, 'addr', 'add', `10.253.${x}.1/24`, 'dev', 'vA');
      ip('-n', nsB, 'addr', 'add', `10.253.${x}.2/24`, 'dev', 'vB1');
      ip('-n', nsB, 'addr', 'add', `10.253.${y}.2/24`, 'dev', 'vB2');
      ip('-n', nsC, 'addr', 'add', `10.253.${y}.1/24`, 'dev', 'vC');
      const devices = [[nsA, 'vA'], [nsB, 'vB1'], [nsB, 'vB2'], [nsC, 'vC']] as const;
      for (const ns of [nsA, nsB, nsC]) ip('-n', ns, 'link', 'set', 'lo', 'up');
      for (const [ns, dev] of devices) ip('-n', ns, 'link', 'set', dev, 'up');
      // Node lists an interface only once it has carrier; a link opened earlier would retry.
      for (const [ns, dev] of devices) await waitForCarrier(ns, dev);

      const script = join(dir, 'mesh-child.mjs');
      writeFileSync(script, CHILD);
      const a = new Child('A', nsA, script, { seed: 1, links: [{ iface: 'vA', port: PORT_AB }] });
      const b = new Child('B', nsB, script, { seed: 2, links: [{ iface: 'vB1', port: PORT_AB }, { iface: 'vB2', port: PORT_BC }] });
      const c = new Child('C', nsC, script, { seed: 3, links: [{ iface: 'vC', port: PORT_BC }] });
      children.push(a, b, c);
      try {
        await chain(a, b, c);
      } catch (err) {
        // What each node counted (drops by reason, link refusals) says where a frame went missing.
        const marks = [a, b, c].map((n) => n.lines.length);
        for (const n of [a, b, c]) n.command('counters');
        const dumps = await Promise.all(
          [a, b, c].map((n, i) =>
            n.waitFor('its counters', (l) => (l.counters ? l : undefined), 2_000, marks[i]).then(
              (l) => `${n.name}: ${JSON.stringify(l)}`,
              (e: Error) => `${n.name}: ${e.message.split('\n')[0]}`,
            ),
          ),
        );
        (err as Error).message += `\n${dumps.join('\n')}`;
        throw err;
      }
    } finally {
      await cleanup();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

/** Converges, sends A → C and C → A, and checks that B forwarded both. */
async function chain(a: Child, b: Child, c: Child): Promise<void> {
  const sid = (n: Child): Promise<string> => n.waitFor('its SID', (l) => l.sid, 5_000);
  const [sidA, sidB, sidC] = await Promise.all([sid(a), sid(b), sid(c)]);

  // Converged: A has a 2-hop route to C through B, and C one back to A; and each holds the other's
  // keys, from the other's own TC. A route alone can come from B's TC before the far end's TC has
  // arrived, and MeshNode then already sends in the compact form (it assumes a far destination
  // knows our key once we have sent any TC), which the far end drops as 'unknown-sender'.
  const twoHop = (to: string, via: string) => (l: Line) => l.routes?.find((r) => r.destination === nodeId(to) && r.nextHop === nodeId(via) && r.key);
  const [toC, toA] = await Promise.all([
    a.waitFor('a route to C, with its keys', twoHop(sidC, sidB), CONVERGE_MS),
    c.waitFor('a route to A, with its keys', twoHop(sidA, sidB), CONVERGE_MS),
  ]);
  expect(toC).toEqual({ destination: nodeId(sidC), nextHop: nodeId(sidB), iface: 'vA', hops: 2, key: true });
  expect(toA).toEqual({ destination: nodeId(sidA), nextHop: nodeId(sidB), iface: 'vC', hops: 2, key: true });

  // A → C.
  let mark = c.lines.length;
  a.command(`send ${sidC} hello C from A`);
  await a.waitFor('sent', (l) => (l.sent || l.error ? l : undefined), 5_000).then((l) => expect(l.error).toBeUndefined());
  const atC = await c.waitFor('the datagram from A', (l) => l.message, 5_000, mark);
  expect(atC).toEqual({ from: sidA, port: DATA_PORT, text: 'hello C from A' });

  // C → A.
  mark = a.lines.length;
  const sentMark = c.lines.length;
  c.command(`send ${sidA} hello A from C`);
  await c.waitFor('sent', (l) => (l.sent || l.error ? l : undefined), 5_000, sentMark).then((l) => expect(l.error).toBeUndefined());
  const atA = await a.waitFor('the datagram from C', (l) => l.message, 5_000, mark);
  expect(atA).toEqual({ from: sidC, port: DATA_PORT, text: 'hello A from C' });

  // B forwarded both, delivered neither (they were not for it).
  mark = b.lines.length;
  b.command('counters');
  const counters = await b.waitFor('its counters', (l) => l.counters, 5_000, mark);
  expect(counters.forwarded, JSON.stringify(counters)).toBe(2);
  expect(counters.delivered).toBe(0);
}
