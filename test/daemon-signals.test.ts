/**
 * The daemon's signals as a user meets them (issue 14): the built `meshgw` in a child process.
 *
 * - SIGTERM with datagrams queued in a slow interface's pacer: the queued frames reach the other
 *   end before the process exits 0, and the log says how many were queued and sent. The slow
 *   link is a KISS "radio" at 1200 bit/s: a TCP hub in the test relaying bytes between the child
 *   daemon's --kiss-tcp and a second daemon in this process, which receives the datagrams.
 * - SIGHUP after logrotate moved --log-file and --pcap away: new files at the same paths (the new
 *   capture with its own section header, readable alone), the old ones intact, the daemon alive;
 *   a directory that vanished is a warning, and a later SIGHUP recovers.
 * - A --log-file that cannot be written is a start error (exit 1) before anything is made.
 * - In process, what SIGHUP calls: `PcapngFile.reopen` and the daemon log's `reopen`.
 * - (With them, the fix to `meshgw_uptime_seconds`: it counts from the daemon's start.)
 *
 * Nothing here asserts a duration: every wait is on an event or a file's contents, polled, with
 * a generous deadline that only turns a hang into a failure.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PassThrough } from 'node:stream';
import { MeshgwClient, sidToHex } from '../src/index.js';
import { startDaemon, type Daemon } from '../src/gateway/daemon.js';
import { createDaemonLog, LogFileError } from '../src/gateway/log.js';
import { CaptureFileError, LinkType, PcapngFile } from '../src/link/pcap.js';
import { VirtualClock } from '../src/link/clock.js';
import { DaemonMetrics } from '../src/gateway/metrics.js';

const bin = fileURLToPath(new URL('../dist/bin/meshgw.js', import.meta.url));

/** Resolves when `predicate` holds, polling every 25 ms; rejects naming `what` after `timeoutMs`. */
async function until(what: string, predicate: () => boolean | Promise<boolean>, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await predicate())) {
    if (Date.now() > deadline) throw new Error(`gave up after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

interface LogRecord {
  level: number;
  msg: string;
  [field: string]: unknown;
}

/** The JSON records among `text`'s lines (other lines, e.g. a partial last one, are skipped). */
function records(text: string): LogRecord[] {
  const out: LogRecord[] = [];
  for (const line of text.split('\n')) {
    if (!line.startsWith('{')) continue;
    try {
      out.push(JSON.parse(line) as LogRecord);
    } catch {
      // A line still being written.
    }
  }
  return out;
}

const readText = (path: string): string => (existsSync(path) ? readFileSync(path, 'utf8') : '');

/** A child `meshgw` daemon: its stderr as it comes, and its exit. */
class Child {
  stderr = '';
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private readonly proc: ChildProcess;

  constructor(args: string[]) {
    this.proc = spawn(process.execPath, [bin, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
    this.proc.stderr!.on('data', (b: Buffer) => (this.stderr += b.toString()));
    this.exited = new Promise((resolve) => this.proc.on('close', (code, signal) => resolve({ code, signal })));
  }

  get alive(): boolean {
    return this.proc.exitCode === null && this.proc.signalCode === null;
  }

  signal(sig: NodeJS.Signals): void {
    this.proc.kill(sig);
  }

  /** For the clean-up of a failed test: SIGKILL if it still runs. */
  async kill(): Promise<void> {
    if (this.alive) this.proc.kill('SIGKILL');
    await this.exited;
  }
}

const children: Child[] = [];
const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of children.splice(0)) await c.kill();
  for (const f of cleanups.splice(0).reverse()) await f();
});

function daemonChild(args: string[]): Child {
  const c = new Child(args);
  children.push(c);
  return c;
}

// ---- pcapng, read back by the test's own block walker ----

const SHB = 0x0a0d0d0a;
const IDB = 0x00000001;
const EPB = 0x00000006;
const BYTE_ORDER_MAGIC = 0x1a2b3c4d;

interface Pcapng {
  blocks: Array<{ type: number; length: number }>;
  interfaces: number;
  packets: number;
  /** Bytes after the last whole block (a block still being written). */
  trailing: number;
}

/**
 * The blocks of a little-endian pcapng file, checked as a reader would: a Section Header Block
 * first (with the byte-order magic, version 1.0), each block's two lengths equal and 32-bit
 * aligned, every packet's interface described before it. Throws on a malformed file.
 */
function readPcapng(bytes: Buffer): Pcapng {
  const blocks: Pcapng['blocks'] = [];
  let interfaces = 0;
  let packets = 0;
  let at = 0;
  while (at + 12 <= bytes.length) {
    const type = bytes.readUInt32LE(at);
    const length = bytes.readUInt32LE(at + 4);
    if (length < 12 || length % 4 !== 0) throw new Error(`block at ${at}: bad length ${length}`);
    if (at + length > bytes.length) break;
    if (bytes.readUInt32LE(at + length - 4) !== length) throw new Error(`block at ${at}: trailing length differs`);
    if (blocks.length === 0) {
      if (type !== SHB) throw new Error(`the file starts with block type 0x${type.toString(16)}, not a Section Header Block`);
      if (bytes.readUInt32LE(at + 8) !== BYTE_ORDER_MAGIC) throw new Error('bad byte-order magic');
      if (bytes.readUInt16LE(at + 12) !== 1 || bytes.readUInt16LE(at + 14) !== 0) throw new Error('not pcapng 1.0');
    } else if (type === SHB) {
      throw new Error(`a second Section Header Block at ${at}`);
    }
    if (type === IDB) interfaces++;
    if (type === EPB) {
      const id = bytes.readUInt32LE(at + 8);
      if (id >= interfaces) throw new Error(`packet at ${at} on interface ${id}, of ${interfaces} described`);
      packets++;
    }
    blocks.push({ type, length });
    at += length;
  }
  return { blocks, interfaces, packets, trailing: bytes.length - at };
}

const readCapture = (path: string): Pcapng | undefined => {
  if (!existsSync(path)) return undefined;
  try {
    return readPcapng(readFileSync(path));
  } catch {
    return undefined;
  }
};

// ---- the tests ----

describe('SIGTERM with frames queued in a slow pacer', () => {
  it('lets them go: the other end gets every datagram, the log says what was queued and sent, exit 0', async () => {
    // The "radio": every byte one connection writes goes to the others.
    const conns = new Set<net.Socket>();
    const hub = net.createServer((c) => {
      conns.add(c);
      c.on('data', (b: Buffer) => {
        for (const o of conns) if (o !== c) o.write(b);
      });
      c.on('close', () => conns.delete(c));
      c.on('error', () => undefined);
    });
    await new Promise<void>((r) => hub.listen(0, '127.0.0.1', r));
    cleanups.push(async () => {
      for (const c of conns) c.destroy();
      await new Promise<void>((r) => hub.close(() => r()));
    });
    const hubPort = (hub.address() as net.AddressInfo).port;

    // The other end: a daemon in this process, listening on mesh port 42.
    const dirB = mkdtempSync(join(tmpdir(), 'meshgw-signals-b-'));
    const b: Daemon = await startDaemon({
      interfaces: [{ kind: 'kiss-tcp', host: '127.0.0.1', port: hubPort }],
      region: 'none',
      keyFile: join(dirB, 'identity.json'),
      stateDir: join(dirB, 'state'),
      statusIntervalMs: 0,
    });
    cleanups.push(() => b.stop());
    const received: Uint8Array[] = [];
    b.host.bind(42).on('message', (_from, _port, bytes) => received.push(bytes));
    const sidB = sidToHex(b.identity.sid);

    // The daemon under test, as a user runs it; its API on a port it picks, read from its log.
    const dirA = mkdtempSync(join(tmpdir(), 'meshgw-signals-a-'));
    const a = daemonChild([
      '--kiss-tcp', `127.0.0.1:${hubPort}`,
      '--api', '127.0.0.1:0',
      '--key', join(dirA, 'identity.json'),
      '--state-dir', join(dirA, 'state'),
      '--status-interval', '0',
      '--shutdown-timeout', '120',
    ]);
    let apiPort = 0;
    await until('the daemon to say where its API listens', () => {
      const m = /API tcp:\/\/127\.0\.0\.1:(\d+)/.exec(a.stderr);
      if (m) apiPort = Number(m[1]);
      return apiPort > 0 || !a.alive;
    });
    expect(a.alive).toBe(true);

    const client = await MeshgwClient.connect({ port: apiPort });
    try {
      // Over 1200 bit/s the two nodes need a few HELLOs to see each other.
      await until('a route from the child daemon to the other end', async () => (await client.routes()).some((r) => sidToHex(r.destination) === sidB), 120_000);
      // Six datagrams of 150 bytes: over a second of airtime each, so most wait in the pacer.
      const socket = await client.bind(0);
      const sent = Array.from({ length: 6 }, (_, i) => new Uint8Array(150).fill(i + 1));
      for (const d of sent) await socket.send(sidB, 42, d);
    } finally {
      await client.close();
    }

    a.signal('SIGTERM');
    const exit = await a.exited;
    expect(exit).toEqual({ code: 0, signal: null });

    const log = records(a.stderr);
    const stopping = log.find((r) => /^meshgw: stopping: \d+ queued frame\(s\)/.test(r.msg));
    const done = log.find((r) => /^meshgw: sent \d+ frame\(s\) while stopping/.test(r.msg));
    expect(stopping, a.stderr).toBeDefined();
    expect(done, a.stderr).toBeDefined();
    const queued = stopping!['queuedFrames'] as number;
    expect(queued).toBeGreaterThan(0);
    expect(done).toMatchObject({ leftFrames: 0 });
    expect(done!['sentFrames'] as number).toBeGreaterThanOrEqual(queued);
    expect(log.some((r) => r.level >= 40 && /not sent within/.test(r.msg))).toBe(false);
    expect(log.at(-1)?.msg).toBe('meshgw stopped');

    // Every datagram reached the other end, those still queued at SIGTERM included.
    await until('the other end to receive all six datagrams', () => received.length >= 6, 30_000);
    expect(received.map((d) => d[0]).sort()).toEqual([1, 2, 3, 4, 5, 6]);
    for (const d of received) expect(d.length === 150 && d.every((x) => x === d[0])).toBe(true);
  }, 240_000);
});

describe('SIGHUP reopens the log and capture files', () => {
  /** Flags of a simulated node writing its log and capture into `dir`. */
  const flags = (dir: string, files: string): string[] => [
    '--sim',
    '--api', 'off',
    '--status-interval', '0',
    '--key', join(dir, 'identity.json'),
    '--state-dir', join(dir, 'state'),
    '--log-file', join(files, 'meshgw.log'),
    '--pcap', join(files, 'capture.pcapng'),
  ];
  const reopened = (path: string): boolean => records(readText(path)).some((r) => r.msg === 'reopened log and capture files');

  it('after logrotate moved them: new files at the same paths, the old ones intact, the daemon running', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'meshgw-hup-'));
    const logPath = join(dir, 'meshgw.log');
    const capPath = join(dir, 'capture.pcapng');
    const d = daemonChild(flags(dir, dir));
    await until('the daemon to run', () => /meshgw running/.test(readText(logPath)) || !d.alive);
    expect(d.alive).toBe(true);
    // The simulated neighbour's frames in the capture, so that the old file has packets.
    await until('a packet in the capture', () => (readCapture(capPath)?.packets ?? 0) > 0);

    renameSync(logPath, `${logPath}.1`);
    renameSync(capPath, `${capPath}.1`);
    d.signal('SIGHUP');
    await until('the "reopened" line in a new log file', () => reopened(logPath) || !d.alive);
    expect(d.alive).toBe(true);

    // The new capture stands alone: its own section header, then the interface again.
    await until('the new capture to describe its interface', () => (readCapture(capPath)?.interfaces ?? 0) > 0);
    const fresh = readFileSync(capPath);
    expect(fresh.readUInt32LE(0)).toBe(SHB);
    expect(readPcapng(fresh).blocks[1]?.type).toBe(IDB);
    // The old one was flushed and closed whole: a valid pcapng with its packets.
    const old = readPcapng(readFileSync(`${capPath}.1`));
    expect(old.trailing).toBe(0);
    expect(old.interfaces).toBe(1);
    expect(old.packets).toBeGreaterThan(0);
    // The old log has what came before, and nothing after the rotation.
    const oldLog = readText(`${logPath}.1`);
    expect(oldLog).toMatch(/meshgw running/);
    expect(reopened(`${logPath}.1`)).toBe(false);
    // Capture goes on in the new file.
    await until('a packet in the new capture', () => (readCapture(capPath)?.packets ?? 0) > 0);
    expect(d.alive).toBe(true);
    expect(records(d.stderr)).toEqual([]); // the log went to the file, none of it to stderr

    d.signal('SIGINT');
    expect(await d.exited).toEqual({ code: 0, signal: null });
    expect(records(readText(logPath)).at(-1)?.msg).toBe('meshgw stopped');
    const closed = readPcapng(readFileSync(capPath));
    expect(closed.trailing).toBe(0);
    expect(closed.packets).toBeGreaterThan(0);
  }, 180_000);

  it('a directory that vanished is a warning, the daemon runs on, and the next SIGHUP recovers', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'meshgw-hup-gone-'));
    const files = join(dir, 'logs');
    mkdirSync(files);
    const logPath = join(files, 'meshgw.log');
    const capPath = join(files, 'capture.pcapng');
    const d = daemonChild(flags(dir, files));
    await until('the daemon to run', () => /meshgw running/.test(readText(logPath)) || !d.alive);
    expect(d.alive).toBe(true);

    rmSync(files, { recursive: true });
    d.signal('SIGHUP');
    // Both warnings go to stderr: the log file is gone too.
    const warnings = (): LogRecord[] => records(d.stderr).filter((r) => r.level === 40 && /^SIGHUP: /.test(r.msg));
    await until('two warnings on stderr', () => warnings().length >= 2 || !d.alive);
    expect(d.alive).toBe(true);
    expect(warnings().map((r) => r.msg)).toEqual([
      expect.stringMatching(/cannot write the log file .*meshgw\.log: ENOENT.*; the log goes to stderr/),
      expect.stringMatching(/cannot write the capture file .*capture\.pcapng: ENOENT.*capture stopped/),
    ]);
    expect(records(d.stderr).some((r) => r.msg === 'reopened log and capture files')).toBe(false);

    mkdirSync(files);
    d.signal('SIGHUP');
    await until('the "reopened" line in the recreated directory', () => reopened(logPath) || !d.alive);
    expect(d.alive).toBe(true);
    await until('the new capture to describe its interface', () => (readCapture(capPath)?.interfaces ?? 0) > 0);
    expect(readFileSync(capPath).readUInt32LE(0)).toBe(SHB);

    d.signal('SIGINT');
    expect(await d.exited).toEqual({ code: 0, signal: null });
    expect(readPcapng(readFileSync(capPath)).trailing).toBe(0);
  }, 180_000);
});

describe('--log-file at start', () => {
  it('in a missing directory: exit 1 naming the file, before the key is made (also as logFile in the config file)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'meshgw-logfile-'));
    const key = join(dir, 'identity.json');
    const common = ['--sim', '--api', 'off', '--key', key, '--state-dir', join(dir, 'state')];
    const flag = spawnSync(process.execPath, [bin, ...common, '--log-file', join(dir, 'no', 'meshgw.log')], { encoding: 'utf8', timeout: 30_000 });
    expect(flag.status).toBe(1);
    expect(flag.stderr).toMatch(/^meshgw: cannot write the log file .*no\/meshgw\.log: ENOENT/);
    expect(existsSync(key)).toBe(false);

    const config = join(dir, 'meshgw.yaml');
    writeFileSync(config, `logFile: ${join(dir, 'nowhere', 'meshgw.log')}\n`);
    const file = spawnSync(process.execPath, [bin, ...common, '--config', config], { encoding: 'utf8', timeout: 30_000 });
    expect(file.status).toBe(1);
    expect(file.stderr).toMatch(/cannot write the log file .*nowhere\/meshgw\.log: ENOENT/);
    expect(existsSync(key)).toBe(false);
  }, 60_000);
});

describe('what SIGHUP calls, in process', () => {
  it('PcapngFile.reopen: a new file with the header and every interface again; a failed one stops capture until the next', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'meshgw-reopen-pcap-'));
    const files = join(dir, 'caps');
    mkdirSync(files);
    const path = join(files, 'c.pcapng');
    const file = PcapngFile.open(path);
    file.addInterface({ linkType: LinkType.USER0, name: 'a' });
    const b = file.addInterface({ linkType: LinkType.USER1, name: 'b' });
    expect(file.writePacket({ interfaceId: b, timestampMs: 1, data: Uint8Array.of(1) })).toBe(true);
    renameSync(path, `${path}.1`);
    await file.reopen();
    // Interface ids stay valid: the second interface is described second again.
    expect(file.writePacket({ interfaceId: b, timestampMs: 2, data: Uint8Array.of(2, 2) })).toBe(true);

    rmSync(files, { recursive: true });
    await expect(file.reopen()).rejects.toThrow(CaptureFileError);
    await expect(file.reopen()).rejects.toThrow(/cannot write the capture file .*c\.pcapng: ENOENT.*capture stopped/);
    expect(file.capturing).toBe(false);
    const dropped = file.dropped;
    expect(file.writePacket({ interfaceId: b, timestampMs: 3, data: Uint8Array.of(3) })).toBe(false);
    expect(file.dropped).toBe(dropped + 1);
    mkdirSync(files);
    await file.reopen();
    expect(file.capturing).toBe(true);
    const c = file.addInterface({ linkType: LinkType.USER0, name: 'c' });
    expect(file.writePacket({ interfaceId: c, timestampMs: 4, data: Uint8Array.of(4) })).toBe(true);
    await file.close();
    await file.reopen(); // after close: nothing
    const last = readPcapng(readFileSync(path));
    expect(last.trailing).toBe(0);
    expect(last.blocks.map((x) => x.type)).toEqual([SHB, IDB, IDB, IDB, EPB]);
  });

  it('the daemon log: lines after reopen go to the new file; while it cannot be opened, to the fallback stream', () => {
    const dir = mkdtempSync(join(tmpdir(), 'meshgw-reopen-log-'));
    const files = join(dir, 'logs');
    mkdirSync(files);
    const path = join(files, 'meshgw.log');
    let fallback = '';
    const stream = new PassThrough();
    stream.on('data', (x: Buffer) => (fallback += x.toString()));
    const log = createDaemonLog({ file: path, stream });
    expect(log.file).toBe(path);
    log.line('before');
    renameSync(path, `${path}.1`);
    log.reopen();
    log.line('after');
    expect(records(readText(`${path}.1`)).map((r) => r.msg)).toEqual(['before']);
    expect(records(readText(path)).map((r) => r.msg)).toEqual(['after']);

    rmSync(files, { recursive: true });
    expect(() => log.reopen()).toThrow(LogFileError);
    log.line('while gone');
    mkdirSync(files);
    log.reopen();
    log.line('back');
    log.close();
    expect(records(fallback).map((r) => r.msg)).toEqual(['while gone']);
    expect(records(readText(path)).map((r) => r.msg)).toEqual(['back']);
    expect(() => createDaemonLog({ file: join(dir, 'no', 'x.log') })).toThrow(/cannot write the log file .*x\.log: ENOENT/);
  });
});

describe('meshgw_uptime_seconds', () => {
  it("counts from the daemon's start, not from when its metrics were made", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'meshgw-uptime-'));
    const clock = new VirtualClock(1_000);
    const d = await startDaemon(
      { interfaces: [{ kind: 'sim' }], region: 'none', keyFile: join(dir, 'identity.json'), stateDir: join(dir, 'state'), statusIntervalMs: 0, api: undefined },
      { clock },
    );
    cleanups.push(() => d.stop());
    expect(d.startedAt).toBe(1_000);
    clock.advance(5_000);
    const metrics = new DaemonMetrics(d);
    expect(await metrics.text()).toMatch(/^meshgw_uptime_seconds 5$/m);
  });
});
