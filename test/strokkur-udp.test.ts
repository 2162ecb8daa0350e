/**
 * Strokkur over real UDP sockets on loopback: the CLI between two processes (`msg listen` and
 * `msg send`, files of 1 B, 5 KiB and 1 MiB stored byte for byte), and in process through a fault
 * injector that drops about 10 % of the datagrams and reorders others. Plus the facade's rules:
 * what `send` rejects, and the redundancy chosen from a measured loss.
 * (`npm test` builds dist/ before vitest runs.)
 */
import { afterEach, describe, expect, it } from 'vitest';
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Endpoint } from '../src/link/link.js';
import { FaultPlan } from '../src/link/faults.js';
import { Prng } from '../src/link/prng.js';
import { MAX_MESSAGE } from '../src/strokkur/chunk.js';
import { DEFAULT_REDUNDANCY, Strokkur, chooseRedundancy, probabilityMoreLost, type StrokkurTransport } from '../src/strokkur/strokkur.js';
import { UdpStrokkurTransport } from '../src/strokkur/udp.js';

const bin = fileURLToPath(new URL('../dist/bin/meshgw.js', import.meta.url));
const sha256 = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

function seededBytes(n: number, seed: number): Uint8Array {
  const prng = new Prng(seed);
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = prng.nextU32() & 0xff;
  return out;
}

function run(args: string[]): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [bin, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    p.on('error', reject);
    p.on('close', (code) => resolve({ code, stderr }));
  });
}

/** Resolves with the first match of `re` in the stream's text so far, or rejects after `ms`. */
function waitFor(text: () => string, re: RegExp, ms: number): Promise<RegExpExecArray> {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const check = (): void => {
      const m = re.exec(text());
      if (m) return resolve(m);
      if (Date.now() - started > ms) return reject(new Error(`timed out waiting for ${re}; got: ${text()}`));
      setTimeout(check, 20);
    };
    check();
  });
}

describe('meshgw msg over loopback, two processes', () => {
  let dir: string | undefined;
  let listener: ChildProcessWithoutNullStreams | undefined;

  afterEach(() => {
    if (listener && listener.exitCode === null) listener.kill('SIGKILL');
    listener = undefined;
    if (dir) rmSync(dir, { recursive: true, force: true });
    dir = undefined;
  });

  it('sends files of 1 B, 5 KiB and 1 MiB; the listener stores each byte for byte', async () => {
    dir = mkdtempSync(join(tmpdir(), 'meshgw-msg-'));
    const outDir = join(dir, 'received');
    listener = spawn(process.execPath, [bin, 'msg', 'listen', '--udp', '0', '--host', '127.0.0.1', '--out', outDir]);
    let stdout = '';
    let stderr = '';
    listener.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    listener.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const port = Number((await waitFor(() => stderr, /listening on 127\.0\.0\.1:(\d+)/, 10_000))[1]);

    const files = [
      { name: 'one', data: Uint8Array.of(0x5a) },
      { name: 'five-k', data: seededBytes(5 * 1024, 2) },
      { name: 'one-m', data: seededBytes(1024 * 1024, 3) },
    ];
    for (const f of files) {
      const path = join(dir, f.name);
      writeFileSync(path, f.data);
      const r = await run(['msg', 'send', `127.0.0.1:${port}`, path]);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.stderr).toMatch(new RegExp(`^meshgw: sent ${f.data.length} bytes, named "${f.name}" to 127\\.0\\.0\\.1:${port} in \\d+ chunks .*redundancy 4\\)`));
      // One message at a time, so that the lines come in the order sent.
      await waitFor(() => stdout, new RegExp(`"sha256":"${sha256(f.data)}"`), 10_000);
    }

    const lines = stdout.trim().split('\n').map((l) => JSON.parse(l) as { from: string; size: number; sha256: string; file: string });
    expect(lines).toHaveLength(3);
    lines.forEach((line, i) => {
      const f = files[i]!;
      // Stored under the sender's file name.
      expect(line).toMatchObject({ name: f.name, size: f.data.length, sha256: sha256(f.data), file: join(outDir, f.name) });
      expect(line.from).toMatch(/^127\.0\.0\.1:\d+$/);
      expect(line.file.startsWith(outDir)).toBe(true);
      expect(Buffer.compare(readFileSync(line.file), Buffer.from(f.data))).toBe(0);
    });

    const exited = new Promise<number | null>((resolve) => listener!.on('close', resolve));
    listener.kill('SIGTERM');
    expect(await exited).toBe(0);
    expect(stderr).toMatch(/received 3 messages, 0 failed/);
  });

  it("keeps the sender's file name, made safe; never overwrites; stdin and --no-name send none", async () => {
    dir = mkdtempSync(join(tmpdir(), 'meshgw-msg-'));
    const outDir = join(dir, 'inbox');
    listener = spawn(process.execPath, [bin, 'msg', 'listen', '--udp', '0', '--host', '127.0.0.1', '--out', outDir]);
    let stdout = '';
    let stderr = '';
    listener.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    listener.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const port = Number((await waitFor(() => stderr, /listening on 127\.0\.0\.1:(\d+)/, 10_000))[1]);
    const photo = join(dir, 'photo.jpg');
    const sends: Array<{ args: string[]; data: Uint8Array }> = [
      { args: [photo], data: seededBytes(3000, 7) },
      // The same name, other bytes: stored beside it with the digest, the first one kept.
      { args: [photo], data: seededBytes(2000, 8) },
      // A hostile name: one path component, safe characters, no leading dot.
      { args: [photo, '--name', '../../.ssh/authorized keys;rm -rf'], data: seededBytes(100, 9) },
      { args: [photo, '--no-name'], data: seededBytes(50, 10) },
      // SHA3-256 (byte 1's S bit): the listener takes it as it is.
      { args: [photo, '--no-name', '--digest', 'sha3-256'], data: seededBytes(5000, 15) },
    ];
    for (const s of sends) {
      writeFileSync(photo, s.data);
      const r = await run(['msg', 'send', `127.0.0.1:${port}`, ...s.args]);
      expect(r.code, r.stderr).toBe(0);
      await waitFor(() => stdout, new RegExp(`"sha256":"${sha256(s.data)}"`), 10_000);
    }
    const lines = stdout.trim().split('\n').map((l) => JSON.parse(l) as { name?: string; size: number; file: string });
    const d0 = sha256(sends[1]!.data).slice(0, 16);
    expect(lines.map((l) => [l.name, l.file.slice(outDir.length + 1)])).toEqual([
      ['photo.jpg', 'photo.jpg'],
      ['photo.jpg', `photo-${d0}.jpg`],
      ['../../.ssh/authorized keys;rm -rf', 'authorized_keys_rm_-rf'],
      [undefined, expect.stringMatching(/^\d{8}T\d{6}\.\d{3}Z-127\.0\.0\.1_\d+-[0-9a-f]{16}$/)],
      [undefined, expect.stringMatching(/^\d{8}T\d{6}\.\d{3}Z-127\.0\.0\.1_\d+-[0-9a-f]{16}$/)],
    ]);
    lines.forEach((l, i) => expect(Buffer.compare(readFileSync(l.file), Buffer.from(sends[i]!.data)), l.file).toBe(0));
    const exited = new Promise<number | null>((resolve) => listener!.on('close', resolve));
    listener.kill('SIGTERM');
    expect(await exited).toBe(0);
  });

  it('binds loopback by default; --key-file refuses unkeyed messages; --max-disk stops storing', async () => {
    dir = mkdtempSync(join(tmpdir(), 'meshgw-msg-'));
    const outDir = join(dir, 'inbox');
    const keyFile = join(dir, 'key');
    writeFileSync(keyFile, seededBytes(32, 11));
    listener = spawn(process.execPath, [bin, 'msg', 'listen', '--udp', '0', '--out', outDir, '--key-file', keyFile, '--max-disk', '3000']);
    let stdout = '';
    let stderr = '';
    listener.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    listener.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const port = Number((await waitFor(() => stderr, /listening on 127\.0\.0\.1:(\d+)/, 10_000))[1]);
    const file = join(dir, 'a.bin');
    const first = seededBytes(2000, 12);
    writeFileSync(file, first);
    expect((await run(['msg', 'send', `127.0.0.1:${port}`, file, '--key-file', keyFile])).code).toBe(0);
    await waitFor(() => stdout, new RegExp(`"sha256":"${sha256(first)}"`), 10_000);
    // Without the key: refused, reported on stderr, nothing on stdout.
    const unkeyed = seededBytes(500, 13);
    writeFileSync(file, unkeyed);
    expect((await run(['msg', 'send', `127.0.0.1:${port}`, file])).code).toBe(0);
    await waitFor(() => stderr, /refused \d+ chunk\(s\) so far: not keyed with --key-file/, 10_000);
    // Keyed again, but over the 3000-byte disk cap: reported, not stored.
    const second = seededBytes(1500, 14);
    writeFileSync(file, second);
    expect((await run(['msg', 'send', `127.0.0.1:${port}`, file, '--key-file', keyFile])).code).toBe(0);
    await waitFor(() => stdout, new RegExp(`"sha256":"${sha256(second)}"`), 10_000);
    const lines = stdout.trim().split('\n').map((l) => JSON.parse(l) as { sha256: string; file?: string; stored?: boolean });
    expect(lines.map((l) => [l.sha256, l.file !== undefined, l.stored])).toEqual([
      [sha256(first), true, undefined],
      [sha256(second), false, false],
    ]);
    expect(stderr).toMatch(/2000 bytes stored, the --max-disk cap of 3000/);
    expect(stdout).not.toContain(sha256(unkeyed));
    const exited = new Promise<number | null>((resolve) => listener!.on('close', resolve));
    listener.kill('SIGTERM');
    expect(await exited).toBe(0);
    // A short key is a usage error, and so is a key over the mesh.
    writeFileSync(keyFile, 'short');
    expect((await run(['msg', 'send', '127.0.0.1:9', file, '--key-file', keyFile])).code).toBe(2);
    expect((await run(['msg', 'listen', '--port', '65', '--key-file', keyFile])).code).toBe(2);
  });

  it('usage errors exit 2 with one line', async () => {
    dir = mkdtempSync(join(tmpdir(), 'meshgw-msg-'));
    const empty = join(dir, 'empty');
    writeFileSync(empty, new Uint8Array(0));
    writeFileSync(join(dir, 'one'), 'x');
    const cases = [
      ['msg', 'send', 'localhost', empty],
      ['msg', 'send', '127.0.0.1:99999', empty],
      ['msg', 'send', '[nothex]:5', empty],
      ['msg', 'send', '127.0.0.1:4270', join(dir, 'no-such-file')],
      ['msg', 'send', '127.0.0.1:4270', empty],
      ['msg', 'send', '127.0.0.1:4270', join(dir, 'one'), '--digest', 'md5'],
      ['msg', 'send', '3fa9c0de11223344', join(dir, 'one'), '--digest', 'sha3-256'],
      ['msg', 'listen'],
      ['msg', 'listen', '--udp', '0', '--host', 'not-an-address'],
    ];
    const results = await Promise.all(cases.map((args) => run(args)));
    results.forEach((r, i) => {
      const what = cases[i]!.join(' ');
      expect(r.code, what).toBe(2);
      expect(r.stderr.trim().split('\n'), what).toHaveLength(1);
      expect(r.stderr, what).toMatch(/^meshgw: |^error: /);
      if (what.includes('--digest')) expect(r.stderr, what).toMatch(/--digest/);
    });
  });
});

/** Wraps a transport's send with seeded drops and reordering (one datagram held back at a time). */
class FaultyTransport implements StrokkurTransport<Endpoint> {
  readonly plan: FaultPlan<{ data: Uint8Array; dst: Endpoint }>;
  private flushTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly inner: UdpStrokkurTransport,
    seed: number,
  ) {
    this.plan = new FaultPlan({ seed, drop: 0.1, reorder: 0.3 }, seed);
  }

  send(dst: Endpoint, bytes: Uint8Array): boolean {
    for (const f of this.plan.take({ data: bytes.slice(), dst })) this.inner.send(f.dst, f.data);
    // The last datagram held back goes a little later, out of order all the same.
    clearTimeout(this.flushTimer);
    this.flushTimer = setTimeout(() => {
      for (const f of this.plan.flush()) this.inner.send(f.dst, f.data);
    }, 20);
    return true;
  }
  onDatagram(handler: (src: Endpoint, bytes: Uint8Array) => void): void {
    this.inner.onDatagram(handler);
  }
  key(addr: Endpoint): string {
    return this.inner.key(addr);
  }
  mtu(): number {
    return this.inner.mtu();
  }
}

describe('Strokkur over UdpStrokkurTransport in process', () => {
  const open: UdpStrokkurTransport[] = [];
  afterEach(async () => {
    await Promise.all(open.splice(0).map((t) => t.close()));
  });

  async function pair(): Promise<[UdpStrokkurTransport, UdpStrokkurTransport]> {
    const a = await UdpStrokkurTransport.open({ address: '127.0.0.1' });
    const b = await UdpStrokkurTransport.open({ address: '127.0.0.1' });
    open.push(a, b);
    return [a, b];
  }

  it('a 40 KiB message arrives through ~10 % loss and reordering with R = 16', async () => {
    const [a, b] = await pair();
    const faulty = new FaultyTransport(a, 7);
    const sender = new Strokkur(faulty);
    const receiver = new Strokkur(b);
    const got: Array<{ from: Endpoint; bytes: Uint8Array }> = [];
    const errors: string[] = [];
    receiver.on('message', (from, bytes) => got.push({ from, bytes }));
    receiver.on('error', (e) => errors.push(e.message));
    const message = seededBytes(40 * 1024, 11);
    const report = await sender.send(b.localEndpoint(), message, { redundancy: 16 });
    expect(report).toMatchObject({ bytes: message.length, redundancy: 16 });
    expect(report.chunks).toBe(report.k + 1 + 16);
    await waitFor(() => String(got.length), /^1$/, 5_000);
    expect(Buffer.compare(Buffer.from(got[0]!.bytes), Buffer.from(message))).toBe(0);
    expect(got[0]!.from).toEqual(a.localEndpoint());
    expect(errors).toEqual([]);
    const counts = faulty.plan.counts;
    expect(counts.drop).toBeGreaterThan(0);
    expect(counts.drop).toBeLessThanOrEqual(16);
    expect(counts.reorder).toBeGreaterThan(0);
  });

  it('paced by a token bucket: chunks wait for the bucket, then all arrive', async () => {
    const a = await UdpStrokkurTransport.open({ address: '127.0.0.1', bitRate: 2_000_000, burstBytes: 4 * 1200 });
    const b = await UdpStrokkurTransport.open({ address: '127.0.0.1' });
    open.push(a, b);
    const sender = new Strokkur(a);
    const receiver = new Strokkur(b);
    const got: Uint8Array[] = [];
    receiver.on('message', (_from, bytes) => got.push(bytes));
    const message = seededBytes(60 * 1024, 5);
    const started = performance.now();
    const report = await sender.send(b.localEndpoint(), message);
    const elapsed = performance.now() - started;
    expect(report.redundancy).toBe(DEFAULT_REDUNDANCY);
    // ~62 KB beyond a 4.8 KB burst at 250 kB/s cannot go in much under 200 ms (a bound, not a timing goal).
    expect(elapsed).toBeGreaterThan(150);
    await waitFor(() => String(got.length), /^1$/, 5_000);
    expect(Buffer.compare(Buffer.from(got[0]!), Buffer.from(message))).toBe(0);
  });

  it('rejects an empty message, one over 4 MiB, a bad redundancy and a destination without an MTU', async () => {
    const [a] = await pair();
    const s = new Strokkur(a);
    const dst = { address: '127.0.0.1', port: 9 };
    await expect(s.send(dst, new Uint8Array(0))).rejects.toThrow(/empty message/);
    await expect(s.send(dst, new Uint8Array(MAX_MESSAGE + 1))).rejects.toThrow(/exceeds the Strokkur maximum/);
    await expect(s.send(dst, Uint8Array.of(1), { redundancy: -1 })).rejects.toThrow(/redundancy/);
    const noRoute = new Strokkur<Endpoint>({ send: () => true, onDatagram: () => undefined, key: (e) => `${e.address}:${e.port}`, mtu: () => undefined });
    await expect(noRoute.send(dst, Uint8Array.of(1))).rejects.toThrow(/no route to 127\.0\.0\.1:9/);
    expect(s.counters.sendFailures).toBe(3);
  });
});

describe('redundancy from measured loss', () => {
  it('is the default without a measurement, and grows with the loss up to the cap', () => {
    expect(chooseRedundancy(10, undefined)).toBe(DEFAULT_REDUNDANCY);
    const rs = [0, 0.01, 0.05, 0.1, 0.2, 0.3].map((p) => chooseRedundancy(100, p));
    for (let i = 1; i < rs.length; i++) expect(rs[i]!).toBeGreaterThanOrEqual(rs[i - 1]!);
    expect(chooseRedundancy(3500, 0.3)).toBe(64);
    expect(chooseRedundancy(3500, 0.3, 20)).toBe(20);
  });

  it('meets the 1e-3 target and is the smallest R that does', () => {
    for (const k of [1, 10, 100, 1000]) {
      for (const p of [0.01, 0.05, 0.1]) {
        const r = chooseRedundancy(k, p);
        if (r === 64) continue;
        expect(probabilityMoreLost(k + 1 + r, r + 1, p), `k=${k} p=${p}`).toBeLessThan(1e-3);
        if (r > 0) expect(probabilityMoreLost(k + r, r, p), `k=${k} p=${p}`).toBeGreaterThanOrEqual(1e-3);
      }
    }
    // Against a direct sum: n = 20, more than 2 lost at p = 0.1.
    let direct = 0;
    for (let i = 3; i <= 20; i++) direct += binomial(20, i) * 0.1 ** i * 0.9 ** (20 - i);
    expect(probabilityMoreLost(20, 2, 0.1)).toBeCloseTo(direct, 12);
  });
});

function binomial(n: number, k: number): number {
  let r = 1;
  for (let i = 1; i <= k; i++) r = (r * (n - k + i)) / i;
  return r;
}
