/**
 * 10 MiB from one daemon to another over UDP loopback, the way an app does it: through each
 * daemon's API (Messi over TCP) and an MSP stream across the mesh (sealed datagrams, pacers,
 * the one loop). Each daemon runs in a process of its own (bench/daemon-child.ts), as in the
 * field; the two apps (a MeshgwClient each) run in this process. Twice: with the UDP link's
 * default MTU (loopback carries 64 KiB datagrams, so the link uses them) and at 1472 bytes, the
 * MTU a Wi-Fi interface gives, where the cost per packet shows.
 *
 * Baseline, in the same run: a plain TCP copy of the same number of bytes on loopback between
 * the same two daemon processes. The ratio meshgw ÷ TCP is the figure. CPU-seconds are the two
 * daemons' together (their own process.cpuUsage), and with the apps' beside them. The issue's
 * reference point is Reticulum's rncp between two rnsd on this kind of machine (≈ 2.3 MB/s,
 * ≈ 5 CPU-seconds for 10 MiB). Set BENCH_DAEMON_MIB for another size; BENCH_PROFILE_DIR=DIR
 * writes a CPU profile of each daemon over the transfer there (open in Chrome DevTools).
 */
import { fork, type ChildProcess } from 'node:child_process';
import { randomBytes, createHash } from 'node:crypto';
import { createSocket } from 'node:dgram';
import { fileURLToPath } from 'node:url';
import { MeshgwClient, sidToHex } from '../src/api/client.js';
import { ControlPlane } from '../src/mesh/control.js';
import { generateIdentity } from '../src/mesh/identity.js';

const MIB = Number(process.env.BENCH_DAEMON_MIB ?? 10);
const CHILD = fileURLToPath(new URL('./daemon-child.js', import.meta.url));

interface Run {
  ms: number;
  /** Both daemons' CPU, ms. */
  daemonCpuMs: number;
  /** This process's CPU over the run (the apps), ms. */
  appCpuMs: number;
}

/** A daemon process and its one-reply-per-command IPC. */
export class Child {
  private readonly proc: ChildProcess;
  private queue: Promise<unknown> = Promise.resolve();

  constructor() {
    this.proc = fork(CHILD, [], { stdio: ['ignore', 'ignore', 'inherit', 'ipc'], execArgv: ['--expose-gc'] });
  }

  /** The daemon process's id (for /proc). */
  get pid(): number {
    return this.proc.pid!;
  }

  call<T>(msg: object): Promise<T> {
    const next = this.queue.then(
      () =>
        new Promise<T>((resolve, reject) => {
          const onExit = (code: number | null): void => reject(new Error(`daemon process exited (${code}) during ${JSON.stringify(msg)}`));
          this.proc.once('exit', onExit);
          this.proc.once('message', (m: T & { error?: string }) => {
            this.proc.off('exit', onExit);
            if (m.error !== undefined) reject(new Error(m.error));
            else resolve(m);
          });
          this.proc.send(msg);
        }),
    );
    this.queue = next.catch(() => undefined);
    return next;
  }

  async cpuMs(): Promise<number> {
    return (await this.call<{ cpuMs: number }>({ cmd: 'cpu' })).cpuMs;
  }

  async rss(): Promise<number> {
    return (await this.call<{ rss: number }>({ cmd: 'rss' })).rss;
  }

  async stop(): Promise<void> {
    if (this.proc.exitCode !== null || !this.proc.connected) return;
    await this.call({ cmd: 'stop' }).catch(() => this.proc.kill());
  }
}

export async function freeUdpPort(): Promise<number> {
  const s = createSocket('udp4');
  await new Promise<void>((r) => s.bind(0, '127.0.0.1', r));
  const port = s.address().port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

const PROFILE_DIR = process.env.BENCH_PROFILE_DIR;

async function measure(children: Child[], body: () => Promise<void>, profile = false): Promise<Run> {
  if (profile && PROFILE_DIR) await Promise.all(children.map((c) => c.call({ cmd: 'profile', dir: PROFILE_DIR })));
  const before = await Promise.all(children.map((c) => c.cpuMs()));
  const app0 = process.cpuUsage();
  const t0 = performance.now();
  await body();
  const ms = performance.now() - t0;
  const app = process.cpuUsage(app0);
  const after = await Promise.all(children.map((c) => c.cpuMs()));
  if (profile && PROFILE_DIR) await Promise.all(children.map((c) => c.call({ cmd: 'profile-end' })));
  return { ms, daemonCpuMs: after.reduce((s, v, i) => s + v - before[i]!, 0), appCpuMs: (app.user + app.system) / 1000 };
}

/** The transfer between freshly started daemons in `a` and `b`; `mtu` for the UDP links (default: the link's own). */
/** Resident sets of daemon A over the first run: idle, after a HELLO flood, after the transfer. */
const memory: { idle?: number; flood?: number; transfer?: number; identities: number } = { identities: 1000 };

/** A first HELLO from each of `n` throwaway identities (each its own valid key), made before the run. */
export function helloFloodPackets(n: number): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let i = 0; i < n; i++) {
    const cp = new ControlPlane({ identity: generateIdentity(), boot: { epoch: 1, nonce: randomBytes(8) } });
    cp.addInterface({ name: 'udp0', mtu: 1200, airtimeMs: () => 0 }, 0);
    cp.poll(1_000);
    for (const p of cp.takeOutput()) out.push(p.bytes);
  }
  return out;
}
let floodPackets: Uint8Array[] = [];

/** The flood, to A's UDP port. */
export async function helloFlood(port: number, packets: Uint8Array[] = floodPackets): Promise<void> {
  const socket = createSocket('udp4');
  await new Promise<void>((r) => socket.bind(0, '127.0.0.1', r));
  for (const p of packets) await new Promise<void>((r) => socket.send(p, port, '127.0.0.1', () => r()));
  await new Promise<void>((r) => socket.close(() => r()));
}

async function viaDaemons(a: Child, b: Child, data: Uint8Array, mtu?: number): Promise<Run> {
  const [pA, pB] = [await freeUdpPort(), await freeUdpPort()];
  const da = await a.call<{ apiPort: number; sid: string }>({ cmd: 'start', udpPort: pA, peerPort: pB, ...(mtu ? { mtu } : {}) });
  const db = await b.call<{ apiPort: number; sid: string }>({ cmd: 'start', udpPort: pB, peerPort: pA, ...(mtu ? { mtu } : {}) });
  const ca = await MeshgwClient.connect({ port: da.apiPort });
  const cb = await MeshgwClient.connect({ port: db.apiPort });
  try {
    // Routes both ways before the clock starts: without A's route back to B, A's ACKs are refused
    // (no route) and B backs its RTO off for seconds, which would be measured as the transfer.
    const hasRoute = async (c: MeshgwClient, to: string): Promise<boolean> => (await c.routes()).some((r) => sidToHex(r.destination) === to);
    const routed = async (): Promise<boolean> => (await hasRoute(cb, da.sid)) && (await hasRoute(ca, db.sid));
    for (let i = 0; i < 300 && !(await routed()); i++) await new Promise((r) => setTimeout(r, 100));
    if (!(await routed())) throw new Error('the two daemons found no routes to each other within 30 s');
    if (mtu === undefined) {
      memory.idle = await a.rss();
      await helloFlood(pA);
      await new Promise((r) => setTimeout(r, 500));
      memory.flood = await a.rss();
    }
    // The receiving app reads as `meshgw receive` does, with a 1 MiB buffer (a bulk transfer).
    const listener = await ca.listen(42, { highWaterMark: 1024 * 1024 });
    const want = createHash('sha256').update(data).digest('hex');
    return await measure([a, b], async () => {
      const received = (async () => {
        for await (const s of listener) {
          const hash = createHash('sha256');
          let n = 0;
          for await (const chunk of s) {
            hash.update(chunk as Buffer);
            n += (chunk as Buffer).length;
          }
          if (n !== data.length || hash.digest('hex') !== want) throw new Error(`received ${n} bytes, not the ${data.length} sent intact`);
          return;
        }
      })();
      const s = await cb.openStream(Uint8Array.from(Buffer.from(da.sid, 'hex')), 42);
      for (let off = 0; off < data.length; off += 64 * 1024) {
        if (!s.write(data.subarray(off, off + 64 * 1024))) await new Promise((r) => s.once('drain', r));
      }
      s.end();
      await received;
    }, true).then(async (run) => {
      if (mtu === undefined) memory.transfer = await a.rss();
      return run;
    });
  } finally {
    await ca.close();
    await cb.close();
  }
}

async function viaTcp(a: Child, b: Child, bytes: number): Promise<Run> {
  const { port } = await a.call<{ port: number }>({ cmd: 'tcp-listen' });
  return measure([a, b], async () => {
    await b.call({ cmd: 'tcp-send', port, bytes });
    const { bytes: got } = await a.call<{ bytes: number }>({ cmd: 'tcp-wait' });
    if (got !== bytes) throw new Error(`TCP baseline received ${got} of ${bytes} bytes`);
  });
}

export async function daemonsBench(): Promise<string[]> {
  const data = randomBytes(MIB * 1024 * 1024);
  floodPackets = helloFloodPackets(memory.identities);
  const a = new Child();
  const b = new Child();
  const a2 = new Child();
  const b2 = new Child();
  try {
    const tcp = await viaTcp(a, b, data.length);
    const mesh = await viaDaemons(a, b, data);
    const wifi = await viaDaemons(a2, b2, data, 1472);
    const mbps = (r: Run): number => data.length / 1e6 / (r.ms / 1000);
    const s = (ms: number): string => (ms / 1000).toFixed(2);
    const mb = (bytes: number | undefined): string => (bytes === undefined ? '?' : (bytes / 1024 / 1024).toFixed(1));
    const fmt = (r: Run): string => `${mbps(r).toFixed(2)} MB/s in ${s(r.ms)} s, daemons ${s(r.daemonCpuMs)} CPU-s`;
    return [
      `${MIB} MiB between two daemon processes over UDP loopback (app → API → MSP stream → mesh → MSP → API → app):`,
      `  meshgw       ${fmt(mesh)} (the two apps, in the bench process, ${s(mesh.appCpuMs)} CPU-s more); loopback's 64 KiB datagrams`,
      `  meshgw       ${fmt(wifi)} (apps ${s(wifi.appCpuMs)} CPU-s more) with the UDP MTU at 1472, as on Wi-Fi`,
      `  baseline     plain TCP copy on loopback between the same two processes: ${fmt(tcp)}`,
      `  ratio        goodput ${(mbps(mesh) / mbps(tcp)).toFixed(4)} of TCP; CPU ${(mesh.daemonCpuMs / Math.max(1, tcp.daemonCpuMs)).toFixed(1)}× TCP's`,
      // The harness's own figures (forced GC before each); the goal's figures, of the CLI process, follow (bench/memory.ts).
      `  harness RSS  daemon A (child harness, after a forced GC): idle ${mb(memory.idle)} MB; after HELLOs from ${memory.identities} throwaway identities ${mb(memory.flood)} MB (+${mb((memory.flood ?? 0) - (memory.idle ?? 0))}); after the transfer ${mb(memory.transfer)} MB`,
      `  reference    Reticulum rncp between two rnsd (from the issue): ≈ 2.3 MB/s, ≈ 5 CPU-s for 10 MiB; meshgw ${(mbps(mesh) / 2.3).toFixed(2)}× its goodput at ${(mesh.daemonCpuMs / 1000 / 5).toFixed(2)}× its CPU (${((mesh.daemonCpuMs + mesh.appCpuMs) / 1000 / 5).toFixed(2)}× with the apps)`,
    ];
  } finally {
    for (const c of [a, b, a2, b2]) await c.stop();
  }
}
