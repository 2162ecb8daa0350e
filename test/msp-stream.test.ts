/**
 * The Node-style layer over MSP sockets: a Duplex that pipeline() drives, highWaterMark honoured
 * end to end (a reader that stops reading stops the sender), the message mode with its async
 * iterator and backpressured send, and the listener's iterator — over the in-memory fabric.
 */
import { createHash } from 'node:crypto';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { describe, expect, it } from 'vitest';
import { MspListener, MspMessages, MspStream, MspStreamError } from '../src/msp/stream.js';
import { Prng } from '../src/link/prng.js';
import type { MspSocketsOptions } from '../src/msp/sockets.js';
import { Fabric } from './msp-fabric.js';

const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

/** Advances the fabric in steps, letting stream callbacks run between them, until `done()` or `maxMs`. */
async function drive(fabric: Fabric, done: () => boolean, stepMs = 50, maxMs = 600_000): Promise<void> {
  const end = fabric.now + maxMs;
  while (!done() && fabric.now < end) {
    fabric.run(fabric.now + stepMs);
    await tick();
  }
}

const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

function setup(options: MspSocketsOptions = {}) {
  const fabric = new Fabric();
  const a = fabric.node(1, options);
  const b = fabric.node(2, options);
  return { fabric, a, b };
}

describe('MspStream (Duplex)', () => {
  it('pipeline() carries 256 KiB intact both ways, over a lossy fabric', async () => {
    const { fabric, a, b } = setup();
    const prng = new Prng(5);
    fabric.drop = () => prng.next() < 0.1;
    const data = new Uint8Array(256 * 1024);
    for (let i = 0; i < data.length; i++) data[i] = (i * 2654435761) >>> 24;
    const listener = new MspListener<MspStream>(b.sockets, 40);
    const got: Buffer[] = [];
    let served = false;
    void (async () => {
      for await (const s of listener) {
        // Echo what arrives back, and keep a copy.
        s.on('data', (c: Buffer) => got.push(c));
        await pipeline(s, new Writable({ write: (_c, _e, cb) => cb() }));
        served = true;
      }
    })();
    const client = MspStream.connect(a.sockets, b.sid, 40);
    let sent = false;
    void pipeline(Readable.from([Buffer.from(data)]), client).then(() => (sent = true));
    await drive(fabric, () => sent && served);
    expect(sent && served).toBe(true);
    const all = Buffer.concat(got);
    expect(all.length).toBe(data.length);
    expect(sha(all)).toBe(sha(data));
  });

  it('a reader that stops reading stops the sender: bounded buffers on both sides, then everything arrives once reading resumes', async () => {
    const { fabric, a, b } = setup();
    const listener = new MspListener<MspStream>(b.sockets, 40, { highWaterMark: 4096 });
    let server: MspStream | undefined;
    listener.on('connection', (s: MspStream) => {
      server = s;
      s.pause();
    });
    const client = MspStream.connect(a.sockets, b.sid, 40, { highWaterMark: 8192 });
    const total = 2 * 1024 * 1024;
    let written = 0;
    let blocked = false;
    const writeSome = (): void => {
      while (written < total) {
        const ok = client.write(Buffer.alloc(1024, written / 1024));
        written += 1024;
        if (!ok) {
          blocked = true;
          client.once('drain', writeSome);
          return;
        }
      }
      client.end();
    };
    writeSome();
    await drive(fabric, () => false, 100, 60_000);
    expect(server).toBeDefined();
    expect(blocked).toBe(true);
    // The sender stopped long before 2 MiB: what is written is bounded by the buffers on the way.
    const bufferedAtB = server!.readableLength;
    expect(bufferedAtB).toBeLessThanOrEqual(4096 + 200);
    const bConn = b.sockets.connectionOf(server!.socket)!;
    expect(written).toBeLessThan(300 * 1024);
    expect(client.writableLength).toBeLessThanOrEqual(8192 + 1024);
    expect(bConn.stats.packetsReceived).toBeGreaterThan(0);
    // Resume: everything arrives.
    let received = 0;
    let ended = false;
    server!.on('data', (c: Buffer) => (received += c.length));
    server!.on('end', () => (ended = true));
    server!.resume();
    await drive(fabric, () => ended, 100);
    expect(received).toBe(total);
  });

  it('a half-close echo ends both streams gracefully: no RESET, no error', async () => {
    const { fabric, a, b } = setup();
    const events: string[] = [];
    const listener = new MspListener<MspStream>(b.sockets, 40);
    listener.on('connection', (s: MspStream) => {
      s.on('data', () => undefined);
      s.on('end', () => s.end(Buffer.from('bye')));
      s.on('error', (e) => events.push(`b error ${(e as Error).message}`));
      s.on('close', () => events.push('b close'));
    });
    const c = MspStream.connect(a.sockets, b.sid, 40);
    const back: Buffer[] = [];
    c.on('data', (x: Buffer) => back.push(x));
    c.on('error', (e) => events.push(`a error ${(e as Error).message}`));
    c.on('close', () => events.push('a close'));
    c.end(Buffer.from('hello'));
    await drive(fabric, () => events.includes('a close') && events.includes('b close'), 50, 30_000);
    expect(events.filter((e) => e.includes('error'))).toEqual([]);
    expect(events).toContain('a close');
    expect(events).toContain('b close');
    expect(Buffer.concat(back).toString()).toBe('bye');
    await drive(fabric, () => a.sockets.size === 0 && b.sockets.size === 1, 100, 30_000);
    expect(a.sockets.size).toBe(0); // the data socket closed by itself (CLOSED), only b's listener is left
    expect(b.sockets.size).toBe(1);
  });

  it('an MSP failure destroys the stream with a typed error', async () => {
    const { fabric, a, b } = setup({ endpoint: { connection: { idleTimeoutMs: 10_000, keepAliveMs: 2_000 } } });
    new MspListener(b.sockets, 40);
    const client = MspStream.connect(a.sockets, b.sid, 40);
    let error: unknown;
    client.on('error', (e) => (error = e));
    client.write(Buffer.from('hi'));
    await drive(fabric, () => false, 100, 1_000);
    fabric.cut = true;
    await drive(fabric, () => error !== undefined, 500, 30_000);
    expect(error).toBeInstanceOf(MspStreamError);
    expect((error as MspStreamError).code).toBe('timeout');
    expect(client.destroyed).toBe(true);
  });
});

describe('FEC on request', () => {
  it("a stream with fec 'on' sends REPAIRs, the listener's streams inherit it, and the data arrives intact over loss", async () => {
    const { fabric, a, b } = setup();
    const prng = new Prng(9);
    fabric.drop = () => prng.next() < 0.15;
    const data = new Uint8Array(64 * 1024).map((_, i) => (i * 31) & 0xff);
    const listener = new MspListener<MspStream>(b.sockets, 40, { fec: 'on' });
    const got: Buffer[] = [];
    let ended = false;
    let server: MspStream | undefined;
    listener.on('connection', (s: MspStream) => {
      server = s;
      s.on('data', (c: Buffer) => got.push(c));
      s.on('end', () => {
        ended = true;
        s.end(Buffer.from('thanks'));
      });
    });
    const c = MspStream.connect(a.sockets, b.sid, 40, { fec: 'on' });
    c.on('data', () => undefined);
    c.end(Buffer.from(data));
    await drive(fabric, () => ended, 50, 600_000);
    expect(sha(Buffer.concat(got))).toBe(sha(data));
    const conn = a.sockets.connectionOf(c.socket)!;
    expect(conn.fec.mode).toBe('on');
    expect(conn.stats.repairsSent).toBeGreaterThan(0);
    expect(b.sockets.connectionOf(server!.socket)!.stats.repairsRecovered).toBeGreaterThan(0);
    expect(b.sockets.connectionOf(server!.socket)!.fec.mode).toBe('on');
  });
});

describe('MspMessages', () => {
  it('keeps message boundaries (up to the connection maximum), honours backpressure in send, and ends with the peer', async () => {
    const { fabric, a, b } = setup({ endpoint: { connection: { maxQueuedBytes: 16_384 } } });
    const listener = new MspListener<MspMessages>(b.sockets, 40, { mode: 'messages' });
    const got: number[] = [];
    let done = false;
    void (async () => {
      for await (const m of listener) {
        for await (const msg of m) {
          expect(msg.every((x) => x === msg.length % 256)).toBe(true);
          got.push(msg.length);
        }
        done = true;
      }
    })();
    const c = MspMessages.connect(a.sockets, b.sid, 40);
    const sizes = [1, 5000, 184, 185, 16_000, 3, 9999];
    let sent = false;
    void (async () => {
      for (let round = 0; round < 3; round++) for (const n of sizes) await c.send(new Uint8Array(n).fill(n % 256));
      c.shutdown();
      sent = true;
    })();
    await drive(fabric, () => done && sent);
    expect(got).toEqual([...sizes, ...sizes, ...sizes]);
    await expect(c.send(new Uint8Array(20_000))).rejects.toThrow(/too-large|above the maximum|closed|shut/);
  });
});
