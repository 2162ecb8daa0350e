/**
 * One daemon of bench/daemons.ts in a process of its own (forked with an IPC channel), so that
 * the two daemons run as they do in the field — two processes — and their CPU-seconds are their
 * own. Commands arrive as IPC messages; each gets one reply:
 *
 *   { cmd: 'start', udpPort, peerPort }  → { apiPort, sid }      a daemon on 127.0.0.1:udpPort
 *   { cmd: 'start', sim: true }          → { apiPort, sid }      a daemon on a simulated radio (as `--sim`)
 *   { cmd: 'start', interfaces }         → { apiPort, sid }      a daemon on the interfaces given (bench/bridge.ts)
 *   { cmd: 'cpu' }                       → { cpuMs }              this process's CPU so far
 *   { cmd: 'rss' }                       → { rss }                its resident set, bytes (after a GC when exposed)
 *   { cmd: 'memory' }                    → MemoryReport           process.memoryUsage() and /proc VmRSS/VmHWM, no GC
 *   { cmd: 'strokkur-flood', sid, port, count, messageSize, chunkSize }
 *                                        → FloodReport            `count` chunks, each the first source chunk of
 *                                                                 a message of its own (a distinct UUID), sent
 *                                                                 over the mesh to sid:port (bench/memory.ts)
 *   { cmd: 'counters' }                  → CapCounters            what this daemon counted: its API's Strokkur
 *                                                                 receiver, the mesh node's admission and drops
 *   { cmd: 'tcp-listen' }                → { port }               the baseline's receiving end
 *   { cmd: 'tcp-wait' }                  → { bytes }              once the baseline's sender ended
 *   { cmd: 'tcp-send', port, bytes }     → { sent }               the baseline's sending end
 *   { cmd: 'profile', dir }              → { profiling: true }    CPU profile from now on (inspector)
 *   { cmd: 'profile-end' }               → { file }               written to dir as a .cpuprofile
 *   { cmd: 'stop' }                      → { stopped: true }      then the process exits
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { InterfaceSpec } from '../src/gateway/config.js';
import { startDaemon, type Daemon } from '../src/gateway/daemon.js';
import type { Receiver } from '../src/strokkur/receive.js';
import { floodChunk, memoryReport } from './memory-proc.js';

type Command =
  | { cmd: 'start'; udpPort: number; peerPort: number; mtu?: number; sim?: undefined }
  | { cmd: 'start'; sim: true }
  | { cmd: 'start'; interfaces: InterfaceSpec[]; sim?: undefined; udpPort?: undefined }
  | { cmd: 'cpu' }
  | { cmd: 'rss' }
  | { cmd: 'memory' }
  | { cmd: 'strokkur-flood'; sid: string; port: number; count: number; messageSize: number; chunkSize: number }
  | { cmd: 'counters' }
  | { cmd: 'tcp-listen' }
  | { cmd: 'tcp-wait' }
  | { cmd: 'tcp-send'; port: number; bytes: number }
  | { cmd: 'profile'; dir: string }
  | { cmd: 'profile-end' }
  | { cmd: 'stop' };

let daemon: Daemon | undefined;
let profiler: { session: Session; dir: string } | undefined;
let tcpReceived: Promise<number> | undefined;

const reply = (m: object): void => {
  process.send!(m);
};

async function handle(c: Command): Promise<void> {
  switch (c.cmd) {
    case 'start': {
      const dir = mkdtempSync(join(tmpdir(), 'meshgw-bench-'));
      daemon = await startDaemon({
        interfaces: c.sim
          ? [{ kind: 'sim' }]
          : 'interfaces' in c
            ? c.interfaces
            : [{ kind: 'udp', address: '127.0.0.1', port: c.udpPort, peers: [{ address: '127.0.0.1', port: c.peerPort }], ...(c.mtu ? { mtu: c.mtu } : {}) }],
        region: 'none',
        keyFile: join(dir, 'identity.json'),
        stateDir: join(dir, 'state'),
        statusIntervalMs: 0,
        api: { host: '127.0.0.1', port: 0 },
      });
      return reply({ apiPort: daemon.api!.address!.port, sid: Buffer.from(daemon.identity.sid).toString('hex') });
    }
    case 'cpu': {
      const u = process.cpuUsage();
      return reply({ cpuMs: (u.user + u.system) / 1000 });
    }
    case 'rss': {
      (globalThis as { gc?: () => void }).gc?.();
      return reply({ rss: process.memoryUsage().rss });
    }
    case 'memory':
      return reply(memoryReport());
    case 'strokkur-flood':
      return reply(await strokkurFlood(daemon!, c));
    case 'counters': {
      // The API's receiver is private to ApiService; a bench may look (it changes nothing).
      const receiver = (daemon!.api as unknown as { receiver: Receiver } | undefined)?.receiver;
      const control = daemon!.node.control.counters;
      return reply({
        strokkur: receiver ? { ...receiver.counters, states: receiver.states, bufferedBytes: receiver.bufferedBytes } : undefined,
        admissionRefused: control.admissionRefused,
        nodesRefused: control.nodesRefused,
        linksRefused: control.linksRefused,
        knownNodes: daemon!.node.control.knownNodes().length,
        dropped: { ...daemon!.node.counters.dropped },
      });
    }
    case 'tcp-listen': {
      let done!: (n: number) => void;
      tcpReceived = new Promise<number>((r) => (done = r));
      const server = net.createServer((s) => {
        let n = 0;
        s.on('data', (b: Buffer) => (n += b.length));
        s.on('end', () => {
          done(n);
          server.close();
        });
      });
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
      return reply({ port: (server.address() as net.AddressInfo).port });
    }
    case 'tcp-wait':
      return reply({ bytes: await tcpReceived! });
    case 'tcp-send': {
      const data = Buffer.alloc(c.bytes, 0xa5);
      const s = net.connect(c.port, '127.0.0.1');
      await new Promise<void>((r, j) => {
        s.once('error', j);
        s.end(data, () => r());
      });
      return reply({ sent: c.bytes });
    }
    case 'profile': {
      const session = new Session();
      session.connect();
      await session.post('Profiler.enable');
      await session.post('Profiler.start');
      profiler = { session, dir: c.dir };
      return reply({ profiling: true });
    }
    case 'profile-end': {
      if (!profiler) throw new Error('no profile running');
      const { profile } = await profiler.session.post('Profiler.stop');
      const file = join(profiler.dir, `daemon-${process.pid}.cpuprofile`);
      writeFileSync(file, JSON.stringify(profile));
      profiler.session.disconnect();
      profiler = undefined;
      return reply({ file });
    }
    case 'stop':
      await daemon?.stop();
      reply({ stopped: true });
      process.disconnect();
      return;
  }
}

/**
 * The Strokkur flood of bench/memory.ts: `count` datagrams from one mesh socket, each the first
 * source chunk of a message of its own. The socket is one pacer flow (64 frames at most): a
 * refusal for a full flow or queue waits a millisecond for the loop to send and tries the same
 * chunk again, so every chunk leaves this daemon; other refusals are counted and skipped.
 */
async function strokkurFlood(d: Daemon, c: { sid: string; port: number; count: number; messageSize: number; chunkSize: number }): Promise<{ sent: number; refused: Record<string, number>; ms: number }> {
  const socket = d.host.bind(0);
  const to = Uint8Array.from(Buffer.from(c.sid, 'hex'));
  const refused: Record<string, number> = {};
  const t0 = performance.now();
  let sent = 0;
  try {
    for (let i = 0; i < c.count; i++) {
      const bytes = floodChunk(i, c.messageSize, c.chunkSize);
      for (let tries = 0; ; tries++) {
        const r = socket.send(to, c.port, bytes);
        if (r.ok) {
          sent++;
          break;
        }
        const reason = r.reason;
        // 'queue-full' also stands for the pacer's flow-full (this socket's 64 frames).
        if (reason === 'queue-full' && tries < 5000) {
          await new Promise((r) => setTimeout(r, 1));
          continue;
        }
        refused[reason] = (refused[reason] ?? 0) + 1;
        break;
      }
    }
    // Until the pacer has handed every chunk to the link.
    await d.drain(10_000);
  } finally {
    socket.close();
  }
  return { sent, refused, ms: performance.now() - t0 };
}

process.on('message', (m: Command) => {
  handle(m).catch((err: Error) => reply({ error: err.message }));
});
