/**
 * One daemon of bench/daemons.ts in a process of its own (forked with an IPC channel), so that
 * the two daemons run as they do in the field — two processes — and their CPU-seconds are their
 * own. Commands arrive as IPC messages; each gets one reply:
 *
 *   { cmd: 'start', udpPort, peerPort }  → { apiPort, sid }      a daemon on 127.0.0.1:udpPort
 *   { cmd: 'cpu' }                       → { cpuMs }              this process's CPU so far
 *   { cmd: 'rss' }                       → { rss }                its resident set, bytes (after a GC when exposed)
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
import { startDaemon, type Daemon } from '../src/gateway/daemon.js';

type Command =
  | { cmd: 'start'; udpPort: number; peerPort: number; mtu?: number }
  | { cmd: 'cpu' }
  | { cmd: 'rss' }
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
        interfaces: [{ kind: 'udp', address: '127.0.0.1', port: c.udpPort, peers: [{ address: '127.0.0.1', port: c.peerPort }], ...(c.mtu ? { mtu: c.mtu } : {}) }],
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

process.on('message', (m: Command) => {
  handle(m).catch((err: Error) => reply({ error: err.message }));
});
