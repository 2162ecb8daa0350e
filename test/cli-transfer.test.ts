/**
 * `meshgw cat` / `listen` (netcat over MSP) and `meshgw send` / `receive` (a file over MSP).
 *
 * - The transfer protocol (header, bytes, answer; names, size cap, sha256) on an in-process
 *   stream pair, with a 5 MiB random file.
 * - The built CLI (`npm test` builds dist/ first) against two real daemons joined by a
 *   KISS-over-TCP hub, as in cli-api.test.ts. That medium is paced at AFSK 1200 bit/s (about
 *   80 B/s of stream payload measured), so the files sent over it are small: 5 MiB would take
 *   hours there.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Duplex, PassThrough } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { kissHubPair, udpPair, type DaemonPair } from './daemon-pair.js';
import { MeshgwClient } from '../src/index.js';
import { parseSidPort } from '../src/cli/cat.js';
import {
  DEFAULT_TRANSFER_PORT,
  TransferError,
  candidateName,
  makeProgress,
  parseSizeOption,
  pathInside,
  receiveFile,
  refuseName,
  sendFile,
} from '../src/cli/transfer.js';
import { UsageError } from '../src/cli/usage-error.js';
import { LossyProxy } from './lossy-proxy.js';
import { freeTcpPort, freeUdpPort } from './free-ports.js';

const bin = fileURLToPath(new URL('../dist/bin/meshgw.js', import.meta.url));

interface Run {
  child: ChildProcessWithoutNullStreams;
  done: Promise<{ code: number | null; stdout: string; stderr: string }>;
  /** Resolves once stderr matches. */
  waitStderr(re: RegExp, ms?: number): Promise<void>;
  stderr(): string;
}

/** Starts the built bin; `stdin` is written and ended, or left open with 'open'. */
function meshgw(args: string[], stdin: string | 'open' = '', timeoutMs = 60_000): Run {
  const child = spawn(process.execPath, [bin, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
  child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
  child.stdin.on('error', () => undefined);
  if (stdin !== 'open') child.stdin.end(stdin);
  const t = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  const done = new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(t);
      resolve({ code, stdout, stderr });
    });
  });
  return {
    child,
    done,
    stderr: () => stderr,
    waitStderr: async (re, ms = 20_000) => {
      const until = Date.now() + ms;
      while (!re.test(stderr)) {
        if (Date.now() > until || child.exitCode !== null) throw new Error(`stderr never matched ${re}: ${JSON.stringify(stderr)}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    },
  };
}


/** Two connected in-process Duplexes (a's writes are b's reads and back), half-close working. */
function duplexPair(): [Duplex, Duplex] {
  const ab = new PassThrough();
  const ba = new PassThrough();
  return [Duplex.from({ writable: ab, readable: ba }), Duplex.from({ writable: ba, readable: ab })];
}

const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

describe('names, sizes, SID:PORT', () => {
  it('refuses anything but a plain basename', () => {
    for (const bad of ['', '.', '..', '../evil', 'a/b', 'a\\b', '/etc/passwd', 'nul\u0000x', 'bell\u0007', 'line\nfeed', '.hidden', 'x'.repeat(256)]) {
      expect(refuseName(bad), JSON.stringify(bad)).toBeDefined();
    }
    for (const ok of ['report.pdf', 'a b', 'Ünïcode ✓.txt', 'x'.repeat(255), 'a..b']) expect(refuseName(ok), ok).toBeUndefined();
    expect(() => pathInside('/tmp/x', '../evil')).toThrow(TransferError);
    expect(pathInside('/tmp/x', 'ok.txt')).toBe('/tmp/x/ok.txt');
  });

  it('an existing name gets a numeric suffix before the extension', () => {
    expect(candidateName('report.pdf', 0)).toBe('report.pdf');
    expect(candidateName('report.pdf', 2)).toBe('report.2.pdf');
    expect(candidateName('README', 1)).toBe('README.1');
  });

  it('sizes and SID:PORT', () => {
    expect(parseSizeOption('--max-size', '1G')).toBe(1024 ** 3);
    expect(parseSizeOption('--max-size', '512K')).toBe(512 * 1024);
    expect(parseSizeOption('--max-size', '100')).toBe(100);
    expect(() => parseSizeOption('--max-size', 'lots')).toThrow(UsageError);
    expect(parseSidPort('3FA9C0DE:42')).toEqual({ sid: '3fa9c0de', port: 42 });
    expect(() => parseSidPort('3fa9c0de')).toThrow(UsageError);
    expect(() => parseSidPort('3fa9:42')).toThrow(UsageError);
    expect(() => parseSidPort('3fa9c0de:0')).toThrow(UsageError);
    expect(DEFAULT_TRANSFER_PORT).toBe(64);
  });

  it('plain progress lines every 10 %', () => {
    const lines: string[] = [];
    const p = makeProgress('sent', 5 * 1024 * 1024, { tty: false, write: (l) => lines.push(l) });
    for (let done = 0; done <= 5 * 1024 * 1024; done += 64 * 1024) p.update(done);
    p.stop();
    expect(lines).toHaveLength(10);
    expect(lines[0]).toMatch(/^sent 512\.0 KiB of 5\.0 MiB \(10 %\), [\d.]+ (B|KiB|MiB|GiB)\/s$/);
    expect(lines[9]).toMatch(/^sent 5\.0 MiB of 5\.0 MiB \(100 %\)/);
    const quiet: string[] = [];
    makeProgress('sent', 10, { quiet: true, write: (l) => quiet.push(l) }).update(10);
    expect(quiet).toEqual([]);
  });
});

describe('the transfer protocol on a stream pair', () => {
  it('5 MiB of random bytes: sha256 checked, the file in DIR and nothing else', async () => {
    const root = mkdtempSync(join(tmpdir(), 'meshgw-xfer-'));
    const src = join(root, 'big.bin');
    const data = randomBytes(5 * 1024 * 1024);
    writeFileSync(src, data);
    const dir = join(root, 'in');
    mkdirSync(dir);
    const [a, b] = duplexPair();
    const lines: string[] = [];
    const [, got] = await Promise.all([
      sendFile(a, src),
      receiveFile(b, dir, { progress: (h) => makeProgress('received', h.size, { tty: false, write: (l) => lines.push(l) }) }),
    ]);
    expect(got.path).toBe(join(dir, 'big.bin'));
    expect(got.header).toEqual({ name: 'big.bin', size: data.length, sha256: sha(data) });
    expect(sha(readFileSync(got.path))).toBe(sha(data));
    expect(readdirSync(dir)).toEqual(['big.bin']);
    expect(lines).toHaveLength(10);
    // A second time: not overwritten, a suffix.
    const [c, d] = duplexPair();
    const [, again] = await Promise.all([sendFile(c, src), receiveFile(d, dir)]);
    expect(again.path).toBe(join(dir, 'big.1.bin'));
    expect(readdirSync(dir).sort()).toEqual(['big.1.bin', 'big.bin']);
  });

  it('a forged ../ name, an over-cap size and a wrong sha256 are refused to the sender; nothing stays', async () => {
    const root = mkdtempSync(join(tmpdir(), 'meshgw-xfer-'));
    const src = join(root, 'f.bin');
    writeFileSync(src, randomBytes(100_000));
    const dir = join(root, 'in');
    mkdirSync(dir);
    const cases: Array<[Parameters<typeof sendFile>[2], number | undefined, RegExp]> = [
      [{ header: { name: '../evil' } }, undefined, /refused: a path/],
      [{ header: { name: '..' } }, undefined, /file name '\.\.' refused/],
      [{}, 1000, /file too large: 100000 bytes, the cap is 1000/],
      [{ header: { sha256: '0'.repeat(64) } }, undefined, /sha256 mismatch/],
      [{ header: { size: 200_000 } }, undefined, /the sender ended after 100000 of 200000 bytes/],
    ];
    for (const [sendOpts, maxSize, re] of cases) {
      const [a, b] = duplexPair();
      const [s, r] = await Promise.allSettled([sendFile(a, src, sendOpts), receiveFile(b, dir, maxSize !== undefined ? { maxSize } : {})]);
      expect(s.status).toBe('rejected');
      expect(r.status).toBe('rejected');
      expect(((s as PromiseRejectedResult).reason as Error).message).toMatch(/^the receiver refused the file: /);
      expect(((s as PromiseRejectedResult).reason as Error).message).toMatch(re);
      expect(((r as PromiseRejectedResult).reason as Error).message).toMatch(re);
      expect(readdirSync(dir)).toEqual([]);
    }
    expect(readdirSync(root).sort()).toEqual(['f.bin', 'in']);
  });
});

describe('no daemon, bad arguments', () => {
  it('with no daemon: one line, exit 1', async () => {
    const port = await freeTcpPort();
    const dir = mkdtempSync(join(tmpdir(), 'meshgw-xfer-nod-'));
    const file = join(dir, 'x.txt');
    writeFileSync(file, 'x');
    for (const args of [['cat', 'deadbeef:42'], ['listen', '42'], ['send', 'deadbeef', file], ['receive', dir]]) {
      const r = await meshgw([...args, '--api', `127.0.0.1:${port}`]).done;
      expect(r.code, args.join(' ')).toBe(1);
      expect(r.stderr).toBe(`meshgw: no meshgw daemon at 127.0.0.1:${port} (start one with \`meshgw\`, or give --api)\n`);
    }
  });

  it('a malformed SID:PORT, port or size is a usage error: one line, exit 2', async () => {
    for (const args of [['cat', 'deadbeef'], ['cat', 'dead:42'], ['listen', '0'], ['send', 'dead', 'x'], ['receive', '.', '--max-size', 'lots']]) {
      const r = await meshgw(args).done;
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr.trim().split('\n'), args.join(' ')).toHaveLength(1);
    }
  });
});

/** Two daemons on one shared KISS "radio" (a TCP hub relaying every byte), as in cli-api.test.ts. */
describe('two daemons on a shared KISS medium', () => {
  let pair: DaemonPair | undefined;
  let apiA: string;
  let apiB: string;
  let sidA: string;
  let sidB: string;

  beforeAll(async () => {
    pair = await kissHubPair();
    apiA = `127.0.0.1:${pair.apiA}`;
    apiB = `127.0.0.1:${pair.apiB}`;
    ({ sidA, sidB } = pair);
  }, 150_000);

  afterAll(async () => {
    await pair?.stop();
  });

  it('cat both ways: stdin to the peer, the peer to stdout; stdin EOF ends cleanly, exit 0 on both sides', async () => {
    const oneWay = async (listenApi: string, catApi: string, listenSid: string, catSid: string, port: number): Promise<void> => {
      const listen = meshgw(['listen', String(port), '--api', listenApi], `hello from the listener on ${port}\n`);
      await listen.waitStderr(/listening on port/);
      const cat = meshgw(['cat', `${listenSid.slice(0, 10)}:${port}`, '--api', catApi], `hello from cat to ${port}\n`);
      const [l, c] = await Promise.all([listen.done, cat.done]);
      expect(c.stderr).toBe('');
      expect(c.code).toBe(0);
      expect(c.stdout).toBe(`hello from the listener on ${port}\n`);
      expect(l.code).toBe(0);
      expect(l.stdout).toBe(`hello from cat to ${port}\n`);
      expect(l.stderr).toMatch(new RegExp(`^listening on port ${port}\nconnection from ${catSid.slice(0, 12)}…:\\d+\n$`));
    };
    // A→B and B→A at once (the medium is slow; they share it).
    await Promise.all([oneWay(apiB, apiA, sidB, sidA, 40), oneWay(apiA, apiB, sidA, sidB, 41)]);
  }, 60_000);

  it('a listener that dies: cat exits 1 with the reset line', async () => {
    const listen = meshgw(['listen', '43', '--api', apiB], 'open');
    await listen.waitStderr(/listening on port/);
    const cat = meshgw(['cat', `${sidB}:43`, '--api', apiA], 'open');
    cat.child.stdin.write('ping\n');
    await listen.waitStderr(/connection from/, 30_000);
    listen.child.kill('SIGKILL');
    const c = await cat.done;
    expect(c.code).toBe(1);
    expect(c.stderr).toBe('meshgw: stream reset by the peer\n');
  }, 60_000);

  it('send/receive a file: sha256 checked, the file in DIR and nothing else, progress lines', async () => {
    const root = mkdtempSync(join(tmpdir(), 'meshgw-cli-xfer-'));
    const data = randomBytes(1024);
    const src = join(root, 'notes.bin');
    writeFileSync(src, data);
    const dir = join(root, 'in');
    const receive = meshgw(['receive', dir, '--api', apiA]);
    await receive.waitStderr(/waiting for a file on port 64/);
    const send = meshgw(['send', sidA.slice(0, 8), src, '--api', apiB]);
    const [r, s] = await Promise.all([receive.done, send.done]);
    expect(s.code, s.stderr).toBe(0);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe(join(dir, 'notes.bin') + '\n');
    expect(sha(readFileSync(join(dir, 'notes.bin')))).toBe(sha(data));
    expect(readdirSync(dir)).toEqual(['notes.bin']);
    // Not a terminal: plain progress lines, then the result.
    expect(s.stderr).toMatch(/^sent 1\.0 KiB of 1\.0 KiB \(100 %\), [\d.]+ \S+\/s\nsent notes\.bin \(1\.0 KiB\) to [0-9a-f]{12}…: checked by the receiver\n$/);
    expect(r.stderr).toContain(`received notes.bin (1.0 KiB), sha256 ${sha(data)}: ok\n`);
  }, 60_000);

  it('a forged ../evil name is refused: nothing written outside DIR, both sides see the error', async () => {
    const root = mkdtempSync(join(tmpdir(), 'meshgw-cli-xfer-'));
    const src = join(root, 'evil');
    writeFileSync(src, 'pwned\n');
    const dir = join(root, 'in', 'box');
    const receive = meshgw(['receive', dir, '--port', '65', '--api', apiA]);
    await receive.waitStderr(/waiting for a file on port 65/);
    const b = await MeshgwClient.connect({ port: pair!.apiB });
    let err: unknown;
    try {
      const stream = await b.openStream(sidA, 65);
      await sendFile(stream, src, { header: { name: '../evil' } }).catch((e: unknown) => (err = e));
      stream.destroy();
    } finally {
      await b.close();
    }
    expect((err as Error).message).toBe("the receiver refused the file: file name '../evil' refused: a path, not a plain name");
    const r = await receive.done;
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/\nmeshgw: file name '\.\.\/evil' refused: a path, not a plain name\n$/);
    expect(existsSync(join(root, 'in', 'evil'))).toBe(false);
    expect(readdirSync(join(root, 'in'))).toEqual(['box']);
    expect(readdirSync(dir)).toEqual([]);
  }, 60_000);

  it('over the size cap: refused, exit 1 on both sides', async () => {
    const root = mkdtempSync(join(tmpdir(), 'meshgw-cli-xfer-'));
    const src = join(root, 'big.bin');
    writeFileSync(src, randomBytes(2000));
    const dir = join(root, 'in');
    const receive = meshgw(['receive', dir, '--port', '66', '--max-size', '1K', '--api', apiA]);
    await receive.waitStderr(/waiting for a file on port 66/);
    const send = meshgw(['send', sidA, src, '--port', '66', '--quiet', '--api', apiB]);
    const [r, s] = await Promise.all([receive.done, send.done]);
    expect(s.code).toBe(1);
    expect(s.stderr).toBe('meshgw: the receiver refused the file: file too large: 2000 bytes, the cap is 1024\n');
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/\nmeshgw: file too large: 2000 bytes, the cap is 1024\n$/);
    expect(readdirSync(dir)).toEqual([]);
  }, 60_000);
});

/** Two daemons over real UDP on loopback, each with a static peer: directly, or through a lossy proxy. */
describe('two daemons over UDP loopback', () => {
  let daemons: DaemonPair | undefined;
  let proxy: LossyProxy | undefined;

  async function pair(lossy: boolean): Promise<{ apiA: string; apiB: string; sidA: string }> {
    const [pA, pB] = [await freeUdpPort(), await freeUdpPort()];
    if (lossy) proxy = await LossyProxy.open(pA, pB, 0x7e57);
    // Through the proxy with a Wi-Fi-sized MTU: thousands of datagrams for the faults to hit.
    daemons = await udpPair(pA, lossy ? proxy!.portForA : pB, pB, lossy ? proxy!.portForB : pA, lossy ? 1200 : undefined);
    return { apiA: `127.0.0.1:${daemons.apiA}`, apiB: `127.0.0.1:${daemons.apiB}`, sidA: daemons.sidA };
  }

  afterAll(async () => {
    await daemons?.stop();
    proxy?.close();
  });

  for (const lossy of [false, true]) {
    it(`send/receive 5 MiB ${lossy ? 'through a proxy with 20 % loss, 5 % duplication, 10 % reordering' : 'directly'}: the SHA-256 checked`, async () => {
      const { apiA, apiB, sidA } = await pair(lossy);
      const root = mkdtempSync(join(tmpdir(), 'meshgw-cli-udp-'));
      const data = randomBytes(5 * 1024 * 1024);
      const src = join(root, 'big.bin');
      writeFileSync(src, data);
      const dir = join(root, 'in');
      const receive = meshgw(['receive', dir, '--api', apiA], '', 120_000);
      await receive.waitStderr(/waiting for a file on port 64/);
      const started = Date.now();
      const send = meshgw(['send', sidA.slice(0, 8), src, '--quiet', '--api', apiB], '', 120_000);
      const [r, s] = await Promise.all([receive.done, send.done]);
      expect(s.code, s.stderr).toBe(0);
      expect(r.code, r.stderr).toBe(0);
      expect(sha(readFileSync(join(dir, 'big.bin')))).toBe(sha(data));
      expect(readdirSync(dir)).toEqual(['big.bin']);
      const seconds = (Date.now() - started) / 1000;
      console.log(`5 MiB ${lossy ? 'lossy' : 'direct'}: ${seconds.toFixed(1)} s (${(5 / seconds).toFixed(2)} MiB/s)${proxy && lossy ? `; proxy ${JSON.stringify(proxy.totals())}` : ''}`);
      if (lossy) {
        const t = proxy!.totals();
        expect(t.drop).toBeGreaterThan(0);
        expect(t.duplicate).toBeGreaterThan(0);
        expect(t.reorder).toBeGreaterThan(0);
      }
      await daemons?.stop();
      daemons = undefined;
      proxy?.close();
      proxy = undefined;
    }, 150_000);
  }
});

