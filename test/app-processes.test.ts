/**
 * Apps as users run them: two `meshgw` daemon processes (the built bin) on one host, joined over
 * UDP loopback with `--udp ADDR:PORT --peer ADDR:PORT`, each with its API on its own port, and an
 * app on each side using `MeshgwClient` (this test process):
 *
 * - an MSP stream both ways and a Strokkur message across, bytes checked by SHA-256;
 * - an app that stops reading: the remote sender is paused within the windows between them
 *   (not the bytes it offers), the receiving daemon's memory stays flat, and everything arrives
 *   intact once the app reads again.
 *
 * The first also reads a request to its end with `for await` and then answers on the same stream,
 * which MeshgwStream allows (Node's default iterator would destroy the Duplex at the loop's end).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { MeshgwClient, sidToHex, type MeshgwStream } from '../src/index.js';
import { freeTcpPort, freeUdpPort } from './free-ports.js';

const bin = fileURLToPath(new URL('../dist/bin/meshgw.js', import.meta.url));
const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

interface DaemonProcess {
  child: ChildProcess;
  api: number;
  stderr(): string;
}



async function startDaemonProcess(udp: number, peer: number): Promise<DaemonProcess> {
  const dir = mkdtempSync(join(tmpdir(), 'meshgw-app-'));
  const api = await freeTcpPort();
  const args = [bin, '--udp', `127.0.0.1:${udp}`, '--peer', `127.0.0.1:${peer}`, '--api', `127.0.0.1:${api}`];
  args.push('--key', join(dir, 'identity.json'), '--state-dir', join(dir, 'state'), '--status-interval', '0');
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (b: Buffer) => (stderr += b.toString()));
  for (let i = 0; i < 300 && !/meshgw running/.test(stderr); i++) {
    if (child.exitCode !== null) throw new Error(`meshgw exited ${child.exitCode}: ${stderr}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  if (!/meshgw running/.test(stderr)) throw new Error(`meshgw did not start within 15 s: ${stderr}`);
  return { child, api, stderr: () => stderr };
}

/** The resident set of a process, bytes (Linux /proc). */
function rssOf(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!m) throw new Error(`no VmRSS for process ${pid}`);
  return Number(m[1]) * 1024;
}

async function readAll(s: MeshgwStream): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const chunk of s) parts.push(chunk as Buffer);
  return Buffer.concat(parts);
}

async function writeAll(s: MeshgwStream, data: Uint8Array, onWritten?: (n: number) => void): Promise<void> {
  for (let off = 0; off < data.length; off += 16 * 1024) {
    const piece = data.subarray(off, off + 16 * 1024);
    const ok = s.write(piece, () => onWritten?.(piece.length));
    if (!ok) await new Promise((r) => s.once('drain', r));
  }
  s.end();
}

describe('two meshgw processes over UDP loopback, an app on each side', () => {
  let a: DaemonProcess;
  let b: DaemonProcess;
  let ca: MeshgwClient;
  let cb: MeshgwClient;
  let sidA: string;
  let sidB: string;

  beforeAll(async () => {
    const [pA, pB] = [await freeUdpPort(), await freeUdpPort()];
    a = await startDaemonProcess(pA, pB);
    b = await startDaemonProcess(pB, pA);
    ca = await MeshgwClient.connect({ port: a.api });
    cb = await MeshgwClient.connect({ port: b.api });
    sidA = sidToHex((await ca.status()).sid);
    sidB = sidToHex((await cb.status()).sid);
    const routed = async (): Promise<boolean> =>
      (await ca.routes()).some((r) => sidToHex(r.destination) === sidB) && (await cb.routes()).some((r) => sidToHex(r.destination) === sidA);
    for (let i = 0; i < 600 && !(await routed()); i++) await new Promise((r) => setTimeout(r, 100));
    if (!(await routed())) throw new Error(`no routes between the daemons after 60 s:\nA: ${a.stderr()}\nB: ${b.stderr()}`);
  }, 90_000);

  afterAll(async () => {
    await ca?.close();
    await cb?.close();
    for (const d of [a, b]) {
      if (!d || d.child.exitCode !== null) continue;
      const exited = new Promise((r) => d.child.once('exit', r));
      d.child.kill('SIGTERM');
      await exited;
    }
  });

  it('an MSP stream both ways and a Strokkur message, each intact', async () => {
    const there = randomBytes(1024 * 1024);
    const back = randomBytes(512 * 1024);
    const listener = await ca.listen(50);
    const served = (async () => {
      for await (const s of listener) {
        expect(s.remoteSid).toBe(sidB);
        const got = await readAll(s);
        await writeAll(s, back);
        await s.whenClosed;
        return got;
      }
      throw new Error('the listener ended without a stream');
    })();
    const s = await cb.openStream(sidA, 50);
    const [, reply, got] = await Promise.all([writeAll(s, there), readAll(s), served]);
    expect(sha(got)).toBe(sha(there));
    expect(sha(reply)).toBe(sha(back));
    expect(await s.whenClosed).toBe('');

    const messages = await ca.strokkur.listen(90);
    const message = randomBytes(200 * 1024);
    const first = messages.next();
    const result = await cb.strokkur.send(sidA, 90, message, { redundancy: 2 });
    expect(result.ok).toBe(true);
    const m = (await first).value!;
    expect(sidToHex(m.sid)).toBe(sidB);
    expect(sha(m.data)).toBe(sha(message));
    await messages.return!();
  }, 120_000);

  it('an app that stops reading pauses the remote sender; the daemon holds no more; all arrives when it reads again', async () => {
    const offered = randomBytes(16 * 1024 * 1024);
    const listener = await ca.listen(51);
    const accepted = (async () => {
      for await (const s of listener) return s;
      throw new Error('the listener ended without a stream');
    })();
    const rssBefore = rssOf(a.child.pid!);
    const s = await cb.openStream(sidA, 51);
    let written = 0;
    const writing = writeAll(s, offered, (n) => (written += n));
    const reader = await accepted; // accepted, and not read
    // Wait until the sender has stopped (no byte written for 2 s in a row), however long it takes.
    let last = -1;
    for (let still = 0; still < 8; ) {
      await new Promise((r) => setTimeout(r, 250));
      still = written === last ? still + 1 : 0;
      last = written;
    }
    // What may be in flight is the chain of windows between the two apps: the sender's stream
    // buffer and API credit (64 KiB), MSP's send queue and receive window (1 MiB each on this
    // fast path), the reader's credit (256 KiB) — about 2.4 MiB, nowhere near the 16 MiB offered.
    const pausedAt = written;
    expect(pausedAt).toBeGreaterThan(0);
    expect(pausedAt).toBeLessThan(3 * 1024 * 1024);
    const rssGrowth = rssOf(a.child.pid!) - rssBefore;
    expect(rssGrowth, `daemon A grew by ${rssGrowth} bytes`).toBeLessThan(16 * 1024 * 1024);
    const [got] = await Promise.all([readAll(reader), writing]);
    expect(got.length).toBe(offered.length);
    expect(sha(got)).toBe(sha(offered));
    console.log(`stopped reader: the sender paused after ${pausedAt} of ${offered.length} bytes; daemon A's RSS grew ${(rssGrowth / 1024).toFixed(0)} KiB`);
  }, 120_000);
});
