/**
 * HIL: broadcast discovery between two network namespaces joined by a veth pair.
 *
 * Each namespace runs a node child with the built driver (dist/drivers/udp.js) bound by interface
 * name. Each sends hellos one-to-all (broadcast; then, in a second test, a multicast group); on
 * the first hello it hears it unicasts a reply to the peer it learned. The test checks both saw
 * the other's hello from the right address, and the reply.
 *
 * Needs root and iproute2. Every address used (10.254.X.0/24) exists only inside the two
 * namespaces this test creates, and the namespaces are deleted however the test ends.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { ip, waitForCarrier } from './netns.js';

const root = fileURLToPath(new URL('../../', import.meta.url));
const built = join(root, 'dist/drivers/udp.js');
const PORT = 4269;


/** The child: opens a UdpLink on the veth end, says hello until the exchange is complete. */
const CHILD = `
import { UdpLink } from ${JSON.stringify(pathToFileURL(built).href)};
const [iface, me, multicastGroup] = process.argv.slice(2);
const out = (o) => process.stdout.write(JSON.stringify(o) + '\\n');
const enc = new TextEncoder();
const dec = new TextDecoder();
const link = new UdpLink({ name: me, interface: iface, multicastGroup, port: ${PORT}, log: (line) => out({ event: 'log', line }) });
let replied = false;
let gotReply = false;
let finishing = false;
let hello;
const finish = () => setTimeout(async () => {
  clearInterval(hello);
  await link.close();
  out({ event: 'done', stats: link.stats, counters: link.counters });
  process.exit(0);
}, 200); // lets our reply leave before the socket closes
link.on('frame', (f) => {
  const text = dec.decode(f.data);
  out({ event: 'frame', text, from: f.from });
  if (text.startsWith('hello') && !replied) {
    const to = link.peers()[0];
    link.send(enc.encode('reply from ' + me), { to });
    replied = true;
    out({ event: 'replied', to });
  } else if (text.startsWith('reply')) {
    gotReply = true;
  }
  if (replied && gotReply && !finishing) { finishing = true; finish(); }
});
link.on('state', (state) => out({ event: 'state', state, stats: link.stats }));
await link.open();
const sayHello = () => link.send(enc.encode('hello from ' + me));
sayHello();
hello = setInterval(sayHello, 100);
setTimeout(() => { out({ event: 'timeout' }); process.exit(1); }, 10000);
`;

interface Line {
  event: string;
  text?: string;
  from?: { address: string; port: number };
  to?: { address: string; port: number };
  state?: string;
  stats?: { selfEchoes: number; oneToAll?: string; localAddress?: string };
}

interface ChildRun {
  code: number | null;
  lines: Line[];
  stderr: string;
}

function runChild(ns: string, script: string, iface: string, name: string, group: string | undefined): Promise<ChildRun> {
  return new Promise((resolve) => {
    const args = ['netns', 'exec', ns, process.execPath, script, iface, name, ...(group ? [group] : [])];
    const child = spawn('ip', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    const guard = setTimeout(() => child.kill('SIGKILL'), 15_000);
    child.on('close', (code) => {
      clearTimeout(guard);
      const lines = stdout.split('\n').filter((l) => l.trim() !== '').map((l) => JSON.parse(l) as Line);
      resolve({ code, lines, stderr });
    });
  });
}


const namespaces: string[] = [];
function cleanup(): void {
  for (const ns of namespaces.splice(0)) spawnSync('ip', ['netns', 'del', ns], { stdio: 'ignore' });
}
afterAll(cleanup);

interface Side {
  run: ChildRun;
  me: string;
  peer: string;
  peerName: string;
}

/**
 * Two namespaces joined by a veth pair (10.254.X.1 and .2/24), a child in each, run to the end;
 * the namespaces are deleted whatever happens.
 */
async function exchange(group: string | undefined): Promise<{ x: number; sides: Side[] }> {
  if (!existsSync(built)) throw new Error(`${built} is missing: run \`npm run build\` first (npm test does)`);
  if (statSync(built).mtimeMs < statSync(join(root, 'drivers/udp.ts')).mtimeMs) {
    throw new Error(`${built} is older than drivers/udp.ts: run \`npm run build\` first (npm test does)`);
  }
  const x = 1 + Math.floor(Math.random() * 250);
  const suffix = randomBytes(3).toString('hex');
  const nsA = `meshgw-a-${suffix}`;
  const nsB = `meshgw-b-${suffix}`;
  const dir = mkdtempSync(join(tmpdir(), 'meshgw-netns-'));
  try {
    for (const ns of [nsA, nsB]) {
      try {
        ip('netns', 'add', ns);
      } catch (err) {
        throw new Error(`${(err as Error).message}\nThis test needs root and iproute2 (apt-get install -y iproute2).`);
      }
      namespaces.push(ns);
    }
    // Created straight inside the namespaces, so the names cannot clash with the host's.
    ip('link', 'add', 'vA', 'netns', nsA, 'type', 'veth', 'peer', 'name', 'vB', 'netns', nsB);
    ip('-n', nsA, 'addr', 'add', `10.254.${x}.1/24`, 'dev', 'vA');
    ip('-n', nsB, 'addr', 'add', `10.254.${x}.2/24`, 'dev', 'vB');
    for (const [ns, dev] of [[nsA, 'vA'], [nsB, 'vB']] as const) {
      ip('-n', ns, 'link', 'set', 'lo', 'up');
      ip('-n', ns, 'link', 'set', dev, 'up');
    }
    // Node lists an interface only once it is running (carrier up), so wait for both ends;
    // a child that started earlier would still get there, through its retry.
    await waitForCarrier(nsA, 'vA');
    await waitForCarrier(nsB, 'vB');

    const script = join(dir, 'udp-child.mjs');
    writeFileSync(script, CHILD);
    const [a, b] = await Promise.all([runChild(nsA, script, 'vA', 'a', group), runChild(nsB, script, 'vB', 'b', group)]);
    return {
      x,
      sides: [
        { run: a, me: `10.254.${x}.1`, peer: `10.254.${x}.2`, peerName: 'b' },
        { run: b, me: `10.254.${x}.2`, peer: `10.254.${x}.1`, peerName: 'a' },
      ],
    };
  } finally {
    cleanup();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Each side heard the other's one-to-all hello from its address, replied to it, got its reply. */
function expectDiscovery({ run, me, peer, peerName }: Side, oneToAll: string): void {
  const context = `${JSON.stringify(run.lines)}\n${run.stderr}`;
  expect(run.code, context).toBe(0);
  // Bound by interface name: the veth end's address, and where one-to-all frames go.
  const up = run.lines.find((l) => l.event === 'state' && l.state === 'up');
  expect(up?.stats, context).toMatchObject({ oneToAll, localAddress: me });

  const frames = run.lines.filter((l) => l.event === 'frame');
  const hello = frames.find((l) => l.text === `hello from ${peerName}`);
  expect(hello?.from, context).toEqual({ address: peer, port: PORT });
  // The reply went to the endpoint learned from that hello, and the peer's reply came back.
  expect(run.lines.find((l) => l.event === 'replied')?.to).toEqual({ address: peer, port: PORT });
  const reply = frames.find((l) => l.text === `reply from ${peerName}`);
  expect(reply?.from, context).toEqual({ address: peer, port: PORT });
  // Nothing from ourselves got through.
  expect(frames.every((l) => l.from?.address === peer)).toBe(true);
}

describe('UdpLink between two network namespaces over veth', () => {
  it('discovers the peer by broadcast and replies by unicast to the learned endpoint', async () => {
    const { x, sides } = await exchange(undefined);
    for (const side of sides) {
      expectDiscovery(side, `10.254.${x}.255`);
      // Linux looped our own broadcasts back to us; they were recognised and dropped.
      expect(side.run.lines.find((l) => l.event === 'done')?.stats?.selfEchoes).toBeGreaterThan(0);
    }
  });

  it('does the same through a multicast group', async () => {
    const { sides } = await exchange('239.254.0.1');
    for (const side of sides) {
      expectDiscovery(side, '239.254.0.1');
      // Multicast loopback is off: no echo of our own frames reaches the socket at all.
      expect(side.run.lines.find((l) => l.event === 'done')?.stats?.selfEchoes).toBe(0);
    }
  });
});
