/**
 * MSP over real UDP sockets between two processes on loopback: a 1 MiB file transfer arrives byte
 * for byte; and the same through a lossy UDP proxy run by this test process (20 % loss, 5 %
 * duplication, 10 % reordering — a datagram held back and released after the next one — seeded,
 * so that its decisions replay). After each transfer the connection must close gracefully: the
 * receiver ends its direction when the sender's ends (the usual half-close echo), and neither
 * side may see a RESET or an error.
 *
 * Each child (a temp .mjs script importing the built code from dist/: `npm test` builds it before
 * vitest runs) is a Gateway with a MeshNode, an MspService and one UdpLink on 127.0.0.1. It prints
 * JSON lines — its SID, `route` once it has one to the peer, `received` (sha256 and length of a
 * finished incoming stream), `sent`, `closed`, `error` — and takes commands on stdin:
 * `peer <sidhex>`, `listen <port> <file>`, `send <sidhex> <port> <file>`, `quit`.
 *
 *   plain:  A :pA  ───────────────────────────────────  B :pB
 *   lossy:  A :pA  ───  proxy :xA │ proxy :xB  ───  B :pB     (each child's only peer is the proxy)
 */
import { afterEach, describe, expect, it } from 'vitest';
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { LossyProxy, bindUdp } from './lossy-proxy.js';

const root = fileURLToPath(new URL('../', import.meta.url));
/** Built modules the child imports, beside their sources (to refuse a stale build). */
const MODULES = {
  node: 'src/mesh/node',
  identity: 'src/mesh/identity',
  udp: 'drivers/udp',
  gateway: 'src/gateway/gateway',
  msp: 'src/msp/service',
} as const;
const CHECKED_SOURCES = [...Object.values(MODULES), 'src/msp/stream', 'src/msp/sockets', 'src/msp/endpoint', 'src/msp/connection', 'src/msp/wire', 'src/msp/fec', 'src/gateway/host'];
const distUrl = (m: string): string => JSON.stringify(pathToFileURL(join(root, 'dist', `${m}.js`)).href);
const MSP_PORT = 40;
/** Sizes of the transfers. */
const PLAIN_BYTES = 1024 * 1024;
const LOSSY_BYTES = 1024 * 1024;
/** For the close after the transfer (a few round trips and retransmissions at most). */
const CLOSE_MS = 15_000;

/** The child: one mesh node with MSP over one UdpLink inside a real Gateway. */
const CHILD = `
import { MeshNode } from ${distUrl(MODULES.node)};
import { identityFromSecret } from ${distUrl(MODULES.identity)};
import { UdpLink } from ${distUrl(MODULES.udp)};
import { Gateway } from ${distUrl(MODULES.gateway)};
import { MspService } from ${distUrl(MODULES.msp)};
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { pipeline } from 'node:stream';
import { createInterface } from 'node:readline';

const cfg = JSON.parse(process.argv[2]);
const out = (o) => process.stdout.write(JSON.stringify(o) + '\\n');
const hex = (b) => Buffer.from(b).toString('hex');
const unhex = (s) => Uint8Array.from(Buffer.from(s, 'hex'));
const node = new MeshNode({ identity: identityFromSecret(new Uint8Array(32).fill(cfg.seed)), epoch: 1, minHelloMs: 200 });
const link = new UdpLink({ name: 'udp0', address: '127.0.0.1', port: cfg.port, peers: [{ address: '127.0.0.1', port: cfg.peerPort }] });
const msp = new MspService();
const gateway = new Gateway({ mesh: node, interfaces: [{ link }], services: [msp] });
await gateway.start();
out({ sid: hex(node.sid) });

const timers = new Set();
const quit = async () => {
  for (const t of timers) clearInterval(t);
  await gateway.stop();
  process.exit(0);
};

createInterface({ input: process.stdin }).on('line', (line) => {
  const [cmd, ...args] = line.trim().split(' ');
  if (cmd === 'peer') {
    const sid = unhex(args[0]);
    const check = () => {
      const r = gateway.host.route(sid);
      if (r === undefined) return false;
      out({ route: { hops: r.hops, maxPayload: r.maxPayload } });
      return true;
    };
    if (!check()) {
      const t = setInterval(() => check() && (clearInterval(t), timers.delete(t)), 20);
      timers.add(t);
    }
  } else if (cmd === 'listen') {
    const [port, file] = [Number(args[0]), args[1]];
    const listener = msp.listen(port);
    listener.on('connection', (s) => {
      const started = Date.now();
      const hash = createHash('sha256');
      const ws = createWriteStream(file);
      let length = 0;
      s.on('error', (e) => out({ error: { where: 'receiver', name: e.name, code: e.code, message: e.message, length } }));
      s.on('data', (chunk) => {
        hash.update(chunk);
        length += chunk.length;
        if (!ws.write(chunk)) {
          s.pause();
          ws.once('drain', () => s.resume());
        }
      });
      s.on('end', () => {
        ws.end(() => {
          out({ received: { sha256: hash.digest('hex'), length, ms: Date.now() - started } });
          s.end(); // our direction too, so that the connection closes gracefully
        });
      });
      s.on('close', () => out({ closed: { where: 'receiver', errored: s.errored !== null } }));
    });
    out({ listening: port });
  } else if (cmd === 'send') {
    const [sid, port, file] = [unhex(args[0]), Number(args[1]), args[2]];
    const started = Date.now();
    const s = msp.connect(sid, port);
    s.resume(); // the peer sends nothing, but its end of stream must be read for a graceful close
    s.on('error', (e) => out({ error: { where: 'sender', name: e.name, code: e.code, message: e.message, ms: Date.now() - started } }));
    s.on('close', () => out({ closed: { where: 'sender', errored: s.errored !== null, ms: Date.now() - started } }));
    pipeline(createReadStream(file), s, (err) => {
      if (err === undefined || err === null) out({ sent: { ms: Date.now() - started } }); // errors: the stream's 'error' above
    });
  } else if (cmd === 'quit') void quit();
});
process.stdin.on('end', () => void quit());
`;

interface Line {
  sid?: string;
  route?: { hops: number; maxPayload: number };
  listening?: number;
  received?: { sha256: string; length: number; ms: number };
  sent?: { ms: number };
  closed?: { where: string; errored: boolean; ms?: number };
  error?: { where: string; name: string; code?: string; message: string };
}

/** A child node: its output lines so far, and a way to wait for one. */
class Child {
  readonly lines: Line[] = [];
  stderr = '';
  exit: number | null | undefined = undefined;
  private readonly proc: ChildProcessWithoutNullStreams;
  private waiters: Array<() => void> = [];

  constructor(
    readonly name: string,
    script: string,
    cfg: { seed: number; port: number; peerPort: number },
  ) {
    this.proc = spawn(process.execPath, [script, JSON.stringify(cfg)]);
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
    if (this.exit === undefined) this.proc.stdin.write(`${line}\n`);
  }

  /** The first line (from `from` on) that `pick` maps to a value; rejects on timeout or exit. */
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
    const gone = new Promise<boolean>((resolve) => this.proc.once('close', () => resolve(true)));
    this.command('quit');
    const timer = new Promise<boolean>((resolve) => setTimeout(() => resolve(false), 1_000));
    if (!(await Promise.race([gone, timer]))) this.proc.kill('SIGKILL');
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }
}

/** Ports free at the moment (bound to 0, read, released), for the children to bind. */
async function freePorts(n: number): Promise<number[]> {
  const sockets = await Promise.all(Array.from({ length: n }, () => bindUdp()));
  const ports = sockets.map((s) => s.address().port);
  await Promise.all(sockets.map((s) => new Promise<void>((r) => s.close(() => r()))));
  return ports;
}

function checkBuild(): void {
  for (const m of CHECKED_SOURCES) {
    const built = join(root, 'dist', `${m}.js`);
    if (!existsSync(built)) throw new Error(`${built} is missing: run \`npm run build\` first (npm test does)`);
    if (statSync(built).mtimeMs < statSync(join(root, `${m}.ts`)).mtimeMs) {
      throw new Error(`${built} is older than ${m}.ts: run \`npm run build\` first (npm test does)`);
    }
  }
}

const sha256 = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

describe('MSP between two processes over UDP on loopback', () => {
  let dir: string | undefined;
  const children: Child[] = [];
  let proxy: LossyProxy | undefined;

  afterEach(async () => {
    await Promise.all(children.splice(0).map((c) => c.stop()));
    proxy?.close();
    proxy = undefined;
    if (dir) rmSync(dir, { recursive: true, force: true });
    dir = undefined;
  });

  /** Starts A and B on ports `portA`, `portB`, each sending to its peer port; waits for SIDs and routes both ways. */
  async function start(ports: { a: number; aPeer: number; b: number; bPeer: number }, routeMs: number): Promise<{ a: Child; b: Child; sidA: string; sidB: string }> {
    checkBuild();
    const script = join(dir!, 'msp-child.mjs');
    writeFileSync(script, CHILD);
    const a = new Child('A', script, { seed: 21, port: ports.a, peerPort: ports.aPeer });
    const b = new Child('B', script, { seed: 22, port: ports.b, peerPort: ports.bPeer });
    children.push(a, b);
    const sid = (c: Child): Promise<string> => c.waitFor('its SID', (l) => l.sid, 10_000);
    const [sidA, sidB] = await Promise.all([sid(a), sid(b)]);
    a.command(`peer ${sidB}`);
    b.command(`peer ${sidA}`);
    const route = (c: Child): Promise<Line['route']> => c.waitFor('a route to the peer', (l) => l.route, routeMs);
    const [ra, rb] = await Promise.all([route(a), route(b)]);
    expect(ra!.hops).toBe(1);
    expect(rb!.hops).toBe(1);
    return { a, b, sidA, sidB };
  }

  /** B listens, A sends `bytes` from a file; resolves with what B received and how long it took. */
  async function transfer(a: Child, b: Child, sidB: string, bytes: number, timeoutMs: number) {
    const data = randomBytes(bytes);
    const file = join(dir!, 'payload.bin');
    writeFileSync(file, data);
    const stored = join(dir!, 'received.bin');
    b.command(`listen ${MSP_PORT} ${stored}`);
    await b.waitFor('listening', (l) => l.listening, 5_000);
    const started = performance.now();
    a.command(`send ${sidB} ${MSP_PORT} ${file}`);
    // The receiver's result; an error line from either side, or a child's exit, fails at once.
    const failure = (c: Child): Promise<never> =>
      c.waitFor('the transfer, without errors', (l) => l.error, timeoutMs + 5_000).then((e) => {
        throw new Error(`${c.name} reported ${JSON.stringify(e)}\nstderr: ${c.stderr}`);
      });
    const failures = [failure(a), failure(b)];
    for (const f of failures) f.catch(() => undefined); // the losers of the race settle later
    const received = await Promise.race([b.waitFor('the whole file', (l) => l.received, timeoutMs), ...failures]);
    const ms = performance.now() - started;
    const sent = a.lines.find((l) => l.sent)?.sent;
    // What B wrote to its file, too (it printed `received` once the file was closed).
    expect(Buffer.compare(readFileSync(stored), data), 'the file B stored differs from the one A sent').toBe(0);
    return { expected: { sha256: sha256(data), length: data.length }, received, ms, sent };
  }

  /** After the transfer both sides close gracefully: both directions shut down and acknowledged, no RESET, no error. */
  async function expectGracefulClose(a: Child, b: Child): Promise<void> {
    const transcript = (): string => `A: ${a.lines.map((l) => JSON.stringify(l)).join('\n')}\nB: ${b.lines.map((l) => JSON.stringify(l)).join('\n')}`;
    const closed = (c: Child, where: string) => c.waitFor(`the ${where} closed`, (l) => (l.closed?.where === where ? l.closed : undefined), CLOSE_MS);
    const [closedA, closedB] = await Promise.all([closed(a, 'sender'), closed(b, 'receiver')]).catch((err: Error) => {
      err.message += `\n${transcript()}`;
      throw err;
    });
    expect(closedA.errored, `the sender's stream was destroyed with an error\n${transcript()}`).toBe(false);
    expect(closedB.errored, `the receiver's stream was destroyed with an error\n${transcript()}`).toBe(false);
    expect([...a.lines, ...b.lines].filter((l) => l.error), transcript()).toEqual([]);
  }

  it('a 1 MiB file arrives intact, direct', { timeout: 70_000 }, async () => {
    dir = mkdtempSync(join(tmpdir(), 'meshgw-msp-udp-'));
    const [pA, pB] = (await freePorts(2)) as [number, number];
    const { a, b, sidB } = await start({ a: pA, aPeer: pB, b: pB, bPeer: pA }, 15_000);
    const r = await transfer(a, b, sidB, PLAIN_BYTES, 30_000);
    console.log(`MSP over UDP, direct: ${r.received.length} bytes in ${r.ms.toFixed(0)} ms (${((r.received.length / r.ms) * 1000 / 1024).toFixed(0)} KiB/s)`);
    expect({ sha256: r.received.sha256, length: r.received.length }).toEqual(r.expected);
    expect(r.sent).toBeDefined();
    await expectGracefulClose(a, b);
  });

  it('a 1 MiB file arrives intact through 20 % loss, 5 % duplication and 10 % reordering', { timeout: 90_000 }, async () => {
    dir = mkdtempSync(join(tmpdir(), 'meshgw-msp-udp-'));
    const [pA, pB] = (await freePorts(2)) as [number, number];
    proxy = await LossyProxy.open(pA, pB, 0x5eed);
    const { a, b, sidB } = await start({ a: pA, aPeer: proxy.portForA, b: pB, bPeer: proxy.portForB }, 15_000);
    const before = proxy.totals();
    const r = await transfer(a, b, sidB, LOSSY_BYTES, 45_000);
    const t = proxy.totals();
    console.log(
      `MSP over UDP, lossy proxy: ${r.received.length} bytes in ${r.ms.toFixed(0)} ms (${((r.received.length / r.ms) * 1000 / 1024).toFixed(0)} KiB/s); ` +
        `proxy in ${t.in}, out ${t.out}, dropped ${t.drop}, duplicated ${t.duplicate}, reordered ${t.reorder} ` +
        `(A→B ${JSON.stringify(proxy.counts('aToB'))}, B→A ${JSON.stringify(proxy.counts('bToA'))}; before the transfer: ${JSON.stringify(before)})`,
    );
    expect({ sha256: r.received.sha256, length: r.received.length }).toEqual(r.expected);
    expect(r.sent).toBeDefined();
    // The proxy really did what it says, during the transfer (not only to the HELLOs).
    expect(t.drop - before.drop).toBeGreaterThan(0);
    expect(t.duplicate - before.duplicate).toBeGreaterThan(0);
    expect(t.reorder - before.reorder).toBeGreaterThan(0);
    expect(t.drop / t.in).toBeGreaterThan(0.1);
    expect(t.drop / t.in).toBeLessThan(0.3);
    expect(proxy.errors).toEqual([]);
    await expectGracefulClose(a, b);
  });
});
