/**
 * 10 MiB from one daemon to another over UDP loopback, the way an app does it: through each
 * daemon's API (Messi over TCP) and an MSP stream across the mesh (sealed datagrams, pacers,
 * the one loop). Both daemons run in this process, so `process.cpuUsage()` counts both of them
 * together (and the two API clients).
 *
 * Baseline, in the same run and the same process: a plain TCP copy of the same bytes on loopback
 * (a net server and a client). The ratio meshgw ÷ TCP is the figure; the reference point
 * is Reticulum's rncp between two rnsd on this kind of machine (≈ 2.3 MB/s, ≈ 5 CPU-seconds for
 * 10 MiB), printed beside it. Set BENCH_DAEMON_MIB for another size.
 */
import { randomBytes, createHash } from 'node:crypto';
import { createSocket } from 'node:dgram';
import { mkdtempSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MeshgwClient, sidToHex } from '../src/api/client.js';
import { startDaemon, type Daemon } from '../src/gateway/daemon.js';

const MIB = Number(process.env.BENCH_DAEMON_MIB ?? 10);

interface Run {
  ms: number;
  cpuMs: number;
}

async function freeUdpPort(): Promise<number> {
  const s = createSocket('udp4');
  await new Promise<void>((r) => s.bind(0, '127.0.0.1', r));
  const port = s.address().port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

async function measure(body: () => Promise<void>): Promise<Run> {
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  await body();
  const ms = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  return { ms, cpuMs: (cpu.user + cpu.system) / 1000 };
}

async function viaDaemons(data: Uint8Array): Promise<Run> {
  const [pA, pB] = [await freeUdpPort(), await freeUdpPort()];
  const daemons: Daemon[] = [];
  for (const [port, peer] of [
    [pA, pB],
    [pB, pA],
  ] as const) {
    const dir = mkdtempSync(join(tmpdir(), 'meshgw-bench-'));
    daemons.push(
      await startDaemon({
        interfaces: [{ kind: 'udp', address: '127.0.0.1', port, peers: [{ address: '127.0.0.1', port: peer }] }],
        region: 'none',
        keyFile: join(dir, 'identity.json'),
        stateDir: join(dir, 'state'),
        statusIntervalMs: 0,
        api: { host: '127.0.0.1', port: 0 },
      }),
    );
  }
  const [a, b] = daemons as [Daemon, Daemon];
  const ca = await MeshgwClient.connect({ port: a.api!.address!.port });
  const cb = await MeshgwClient.connect({ port: b.api!.address!.port });
  try {
    // Routes both ways before the clock starts: without A's route back to B, A's ACKs are refused
    // (no route) and B backs its RTO off for seconds, which would be measured as the transfer.
    const sidA = sidToHex(a.identity.sid);
    const sidB = sidToHex(b.identity.sid);
    const hasRoute = async (c: MeshgwClient, to: string): Promise<boolean> => (await c.routes()).some((r) => sidToHex(r.destination) === to);
    for (let i = 0; i < 300 && !((await hasRoute(cb, sidA)) && (await hasRoute(ca, sidB))); i++) await new Promise((r) => setTimeout(r, 100));
    if (!((await hasRoute(cb, sidA)) && (await hasRoute(ca, sidB)))) throw new Error('the two daemons found no routes to each other within 30 s');
    const listener = await ca.listen(42);
    const want = createHash('sha256').update(data).digest('hex');
    const run = await measure(async () => {
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
      const s = await cb.openStream(a.identity.sid, 42);
      for (let off = 0; off < data.length; off += 64 * 1024) {
        if (!s.write(data.subarray(off, off + 64 * 1024))) await new Promise((r) => s.once('drain', r));
      }
      s.end();
      await received;
    });
    return run;
  } finally {
    await ca.close();
    await cb.close();
    for (const d of daemons) await d.stop();
  }
}

async function viaTcp(data: Uint8Array): Promise<Run> {
  let done!: () => void;
  const finished = new Promise<void>((r) => (done = r));
  const server = net.createServer((c) => {
    let n = 0;
    c.on('data', (b: Buffer) => (n += b.length));
    c.on('end', () => {
      if (n === data.length) done();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as net.AddressInfo).port;
  try {
    return await measure(async () => {
      const c = net.connect(port, '127.0.0.1');
      await new Promise<void>((r) => c.once('connect', () => r()));
      c.end(data);
      await finished;
    });
  } finally {
    server.close();
  }
}

export async function daemonsBench(): Promise<string[]> {
  const data = randomBytes(MIB * 1024 * 1024);
  const tcp = await viaTcp(data);
  const mesh = await viaDaemons(data);
  const mbps = (r: Run): number => data.length / 1e6 / (r.ms / 1000);
  const fmt = (r: Run): string => `${mbps(r).toFixed(2)} MB/s in ${(r.ms / 1000).toFixed(2)} s, ${(r.cpuMs / 1000).toFixed(2)} CPU-s`;
  return [
    `${MIB} MiB between two daemons over UDP loopback (API → MSP stream → mesh → MSP → API, both daemons in this process):`,
    `  meshgw       ${fmt(mesh)}`,
    `  baseline     plain TCP copy on loopback, same process: ${fmt(tcp)}`,
    `  ratio        goodput ${(mbps(mesh) / mbps(tcp)).toFixed(4)} of TCP; CPU ${(mesh.cpuMs / Math.max(1, tcp.cpuMs)).toFixed(1)}× TCP's`,
    `  reference    Reticulum rncp between two rnsd (from the issue): ≈ 2.3 MB/s, ≈ 5 CPU-s for 10 MiB; meshgw ${(mbps(mesh) / 2.3).toFixed(2)}× its goodput at ${((mesh.cpuMs / 1000) / 5).toFixed(2)}× its CPU`,
  ];
}
