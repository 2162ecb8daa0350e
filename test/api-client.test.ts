/**
 * MeshgwClient against a fake daemon: a MessiServer speaking meshgw.proto in the test, answering
 * as the .proto's comments say. (The real daemon is in cli-api.test.ts.)
 */
import { afterEach, describe, expect, it } from 'vitest';
import { MessiServer, type MessiClientHandle } from '../src/messi/server.js';
import type { MessiMessage } from '../src/messi/codec.js';
import { meshgwProtocol } from '../src/api/protocol.js';
import {
  MeshgwApiError,
  MeshgwClient,
  MeshgwConnectError,
  MeshgwStreamError,
  sidFromHex,
  sidToHex,
  type MeshgwStream,
} from '../src/index.js';

type Reply = (type: string, body: Record<string, unknown>) => void;
type Handler = (m: MessiMessage, reply: Reply, client: MessiClientHandle) => void;

const SID_A = new Uint8Array(32).fill(0xab);
const SID_B = sidFromHex('3fa9c0de' + '11'.repeat(28));

const servers: MessiServer[] = [];
const clients: MeshgwClient[] = [];

afterEach(async () => {
  for (const c of clients.splice(0)) await c.close();
  for (const s of servers.splice(0)) await s.close();
});

async function fake(handler: Handler): Promise<{ server: MessiServer; port: number; seen: MessiMessage[] }> {
  const server = new MessiServer({ protocol: meshgwProtocol() });
  const seen: MessiMessage[] = [];
  server.on('message', (client, m) => {
    seen.push(m);
    handler(m, (type, body) => server.send(client, { type, body }), client);
  });
  const { port } = await server.listen(0, '127.0.0.1');
  servers.push(server);
  return { server, port, seen };
}

async function connect(port: number, token?: string): Promise<MeshgwClient> {
  const c = await MeshgwClient.connect({ port, ...(token !== undefined ? { token } : {}), requestTimeoutMs: 2000 });
  clients.push(c);
  return c;
}

function rid(m: MessiMessage): number {
  return m.body['request_id'] as number;
}

describe('MeshgwClient requests', () => {
  it('status, neighbours and routes come back typed, SIDs as 32 bytes', async () => {
    const { port } = await fake((m, reply) => {
      if (m.type === 'status_req') {
        reply('status_rsp', {
          request_id: rid(m),
          sid: SID_A,
          version: '0.1.0',
          uptime_ms: 123_456,
          simulated: true,
          interfaces: [
            {
              name: 'sim0',
              kind: 'sim',
              state: 'up',
              mtu: 255,
              bit_rate: 5470,
              airtime: [{ name: 'EU868 g1 1 %/h', window_ms: 3_600_000, used_ms: 1200, left_ms: 34_800 }],
              queued_frames: 1,
              queued_bytes: 40,
              frames_sent: 10,
              frames_received: 9,
              bytes_sent: 1000,
              bytes_received: 900,
              frames_refused: 2,
            },
          ],
        });
      } else if (m.type === 'neighbours_req') {
        reply('neighbours_rsp', {
          request_id: rid(m),
          neighbours: [
            { sid: SID_B, interface: 'sim0', symmetric: true, in_ratio: 0.9, out_ratio: 0.8, has_rssi: true, rssi_dbm: -97, snr_db: 7.5, last_heard_ms_ago: 12_000 },
            { sid: SID_A, interface: 'udp0', symmetric: false, in_ratio: 0.5, out_ratio: 0, last_heard_ms_ago: 400 },
          ],
        });
      } else if (m.type === 'routes_req') {
        reply('routes_rsp', {
          request_id: rid(m),
          routes: [{ destination: SID_B, next_hop: SID_A, interface: 'sim0', hops: 2, metric: 1.25, path_mtu: 200, max_payload: 150 }],
        });
      }
    });
    const c = await connect(port);
    const [status, neighbours, routes] = await Promise.all([c.status(), c.neighbours(), c.routes()]);
    expect(status).toEqual({
      sid: SID_A,
      version: '0.1.0',
      uptimeMs: 123_456,
      simulated: true,
      interfaces: [
        {
          name: 'sim0',
          kind: 'sim',
          state: 'up',
          mtu: 255,
          bitRate: 5470,
          airtime: [{ name: 'EU868 g1 1 %/h', windowMs: 3_600_000, usedMs: 1200, leftMs: 34_800 }],
          queuedFrames: 1,
          queuedBytes: 40,
          counters: { framesSent: 10, framesReceived: 9, bytesSent: 1000, bytesReceived: 900, framesRefused: 2 },
        },
      ],
    });
    expect(neighbours).toEqual([
      { sid: SID_B, interface: 'sim0', symmetric: true, inRatio: 0.9, outRatio: 0.8, rssiDbm: -97, snrDb: 7.5, lastHeardMsAgo: 12_000 },
      { sid: SID_A, interface: 'udp0', symmetric: false, inRatio: 0.5, outRatio: 0, lastHeardMsAgo: 400 },
    ]);
    expect(routes).toEqual([{ destination: SID_B, nextHop: SID_A, interface: 'sim0', hops: 2, metric: 1.25, pathMtu: 200, maxPayload: 150 }]);
  });

  it('error_rsp rejects with a typed MeshgwApiError; ping takes hex SIDs', async () => {
    const { port, seen } = await fake((m, reply) => {
      if (m.type === 'ping_req') {
        const size = m.body['size'] as number;
        if (size > 100) reply('error_rsp', { request_id: rid(m), code: 'too-large', message: 'ping payload too large', max_bytes: 100 });
        else reply('ping_rsp', { request_id: rid(m), rtt_ms: 12.5, hops: 1 });
      }
    });
    const c = await connect(port);
    expect(await c.ping(sidToHex(SID_B), { size: 10, timeoutMs: 500 })).toEqual({ rttMs: 12.5, hops: 1 });
    const err = await c.ping(SID_B, { size: 200 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(MeshgwApiError);
    expect(err).toMatchObject({ code: 'too-large', message: 'ping payload too large', maxBytes: 100 });
    const pings = seen.filter((m) => m.type === 'ping_req');
    expect(pings[0]!.body).toMatchObject({ sid: SID_B, size: 10, timeout_ms: 500 });
    expect(rid(pings[0]!)).not.toBe(rid(pings[1]!));
    await expect(c.ping('3fa9', {})).rejects.toThrow(RangeError);
  });

  it('an unanswered request times out; a dropped connection rejects what is pending', async () => {
    let drop: (() => void) | undefined;
    const { server, port } = await fake((m, _reply, client) => {
      if (m.type === 'routes_req') drop = () => server.disconnect(client);
    });
    const c = await MeshgwClient.connect({ port, requestTimeoutMs: 200 });
    clients.push(c);
    await expect(c.status()).rejects.toMatchObject({ code: 'timeout' });
    const pending = c.routes();
    const events = c.events();
    await new Promise((r) => setTimeout(r, 50));
    drop!();
    await expect(pending).rejects.toMatchObject({ name: 'MeshgwApiError', code: 'closed' });
    await expect(events.next()).rejects.toMatchObject({ code: 'closed' });
    await expect(c.status()).rejects.toMatchObject({ code: 'closed' });
  });

  it('no daemon: a MeshgwConnectError saying so and how to start one', async () => {
    const { port } = await fake(() => undefined);
    await servers.pop()!.close();
    const err = await MeshgwClient.connect({ port }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(MeshgwConnectError);
    expect((err as Error).message).toBe(`no meshgw daemon at 127.0.0.1:${port} (start one with \`meshgw\`, or give --api)`);
  });

  it('a token is sent first; a refused token is a clear error', async () => {
    const { server, port, seen } = await fake((m, reply, client) => {
      if (m.type === 'auth_req') {
        if (m.body['token'] === 'sesame') reply('auth_rsp', {});
        else server.disconnect(client);
      } else if (m.type === 'status_req') reply('error_rsp', { request_id: rid(m), code: 'internal', message: 'x' });
    });
    const c = await connect(port, 'sesame');
    expect(seen[0]).toEqual({ type: 'auth_req', body: { token: 'sesame' } });
    await expect(c.status()).rejects.toMatchObject({ code: 'internal' });
    await expect(MeshgwClient.connect({ port, token: 'wrong' })).rejects.toMatchObject({ code: 'unauthorized' });
  });

  it('events arrive through the async iterator and as client events', async () => {
    const { port, seen } = await fake((m, reply) => {
      if (m.type === 'subscribe_req') {
        reply('subscribe_rsp', { request_id: rid(m) });
        reply('event_ind', { event: 'neighbour-up', sid: SID_B, interface: 'sim0', at_ms: 5 });
        reply('event_ind', { event: 'airtime-low', interface: 'sim0', left_percent: 9.5, at_ms: 6 });
      }
    });
    const c = await connect(port);
    const heard: string[] = [];
    c.on('event', (e) => heard.push(e.event));
    const it = c.events({ events: ['neighbour-up', 'airtime-low'], airtimeLowPercent: 10 });
    expect((await it.next()).value).toEqual({ event: 'neighbour-up', sid: SID_B, interface: 'sim0', atMs: 5 });
    expect((await it.next()).value).toEqual({ event: 'airtime-low', interface: 'sim0', leftPercent: 9.5, atMs: 6 });
    expect(heard).toEqual(['neighbour-up', 'airtime-low']);
    expect(seen.find((m) => m.type === 'subscribe_req')!.body).toMatchObject({ events: ['neighbour-up', 'airtime-low'], airtime_low_percent: 10 });
    await it.return!();
  });
});

/** A fake daemon that echoes every stream's bytes back, keeping both sides' credit rules. */
function echoStreams(opts: { initialCredit: number; maxMessage?: number }) {
  const state = {
    violations: 0,
    /** Per stream: bytes the client may still send / credit the client gave us minus what we sent. */
    clientCredit: new Map<number, number>(),
    ourCredit: new Map<number, number>(),
    backlog: new Map<number, Uint8Array[]>(),
    grantsFromClient: 0,
    closes: 0,
    shutdowns: 0,
    shut: new Set<number>(),
  };
  let nextId = 7;
  const handler: Handler = (m, reply) => {
    const id = m.body['stream_id'] as number;
    const pump = (): void => {
      const q = state.backlog.get(id) ?? [];
      while (q.length > 0 && (state.ourCredit.get(id) ?? 0) > 0) {
        const head = q[0]!;
        const n = Math.min(head.length, state.ourCredit.get(id)!);
        reply('stream_data', { stream_id: id, data: head.subarray(0, n) });
        state.ourCredit.set(id, state.ourCredit.get(id)! - n);
        if (n === head.length) q.shift();
        else q[0] = head.subarray(n);
      }
      if (q.length === 0 && state.shut.has(id)) {
        state.shut.delete(id);
        reply('stream_end_ind', { stream_id: id });
        reply('stream_closed_ind', { stream_id: id, error: '' });
      }
    };
    if (m.type === 'stream_open_req') {
      const sid = nextId++;
      state.clientCredit.set(sid, opts.initialCredit);
      state.ourCredit.set(sid, m.body['credit'] as number);
      state.backlog.set(sid, []);
      reply('stream_open_rsp', { request_id: rid(m), stream_id: sid, credit: opts.initialCredit, max_message: opts.maxMessage ?? 200 });
    } else if (m.type === 'stream_data') {
      const data = m.body['data'] as Uint8Array;
      const left = state.clientCredit.get(id)! - data.length;
      if (left < 0) state.violations++;
      state.clientCredit.set(id, left);
      state.backlog.get(id)!.push(Uint8Array.from(data));
      // MSP "took" it: grant the same again.
      state.clientCredit.set(id, state.clientCredit.get(id)! + data.length);
      reply('stream_credit', { stream_id: id, bytes: data.length });
      pump();
    } else if (m.type === 'stream_credit') {
      state.grantsFromClient += m.body['bytes'] as number;
      state.ourCredit.set(id, state.ourCredit.get(id)! + (m.body['bytes'] as number));
      pump();
    } else if (m.type === 'stream_shutdown') {
      state.shutdowns++;
      state.shut.add(id);
      pump();
    } else if (m.type === 'stream_close') {
      state.closes++;
      reply('stream_closed_ind', { stream_id: id, error: 'closed' });
    }
  };
  return { state, handler };
}

async function readAll(s: MeshgwStream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of s) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

describe('MeshgwClient streams', () => {
  it('a Duplex: writes wait for credit, reads grant it, end() shuts down, the readable ends', async () => {
    const { state, handler } = echoStreams({ initialCredit: 1000 });
    const { port, seen } = await fake(handler);
    const c = await connect(port);
    const s = await c.openStream(SID_B, 42, { highWaterMark: 4096, fec: 'auto', interactive: true });
    expect(s.streamId).toBe(7);
    expect(s.maxMessage).toBe(200);
    expect(s.remote).toEqual({ sid: SID_B, port: 42 });
    expect(seen.find((m) => m.type === 'stream_open_req')!.body).toMatchObject({ port: 42, fec: 'auto', interactive: true, credit: 4096 });
    const payload = Buffer.alloc(100_000);
    for (let i = 0; i < payload.length; i++) payload[i] = (i * 7) & 0xff;
    const back = readAll(s);
    s.end(payload);
    expect((await back).equals(payload)).toBe(true);
    expect(state.violations).toBe(0);
    expect(state.shutdowns).toBe(1);
    expect(state.closes).toBe(0);
    expect(state.grantsFromClient).toBeGreaterThan(90_000);
    if (!s.closed) await new Promise((r) => s.once('close', r));
    expect(s.destroyed).toBe(true);
  });

  it('a reader that does not read stops the credit at its highWaterMark', async () => {
    const { state, handler } = echoStreams({ initialCredit: 1 << 20 });
    const { port } = await fake(handler);
    const c = await connect(port);
    const s = await c.openStream(SID_B, 42, { highWaterMark: 2048 });
    s.pause();
    s.write(Buffer.alloc(50_000, 1));
    await new Promise((r) => setTimeout(r, 200));
    expect(state.grantsFromClient).toBe(0);
    expect(s.readableLength).toBeLessThanOrEqual(2048);
    let got = 0;
    s.on('data', (d: Buffer) => (got += d.length));
    s.resume();
    await new Promise((r) => setTimeout(r, 300));
    expect(got).toBe(50_000);
    expect(state.violations).toBe(0);
    s.destroy();
    await new Promise((r) => setTimeout(r, 50));
    expect(state.closes).toBe(1);
  });

  it('stream_closed_ind with an error destroys the stream with a typed error; a drop errors it too', async () => {
    let streamReply: Reply | undefined;
    const { server, port } = await fake((m, reply, client) => {
      if (m.type === 'stream_open_req') {
        reply('stream_open_rsp', { request_id: rid(m), stream_id: 3, credit: 100, max_message: 100 });
        streamReply = reply;
      }
      if (m.type === 'status_req') server.disconnect(client);
    });
    const c = await connect(port);
    const s = await c.openStream(sidToHex(SID_B), 9);
    const failed = new Promise<Error>((r) => s.once('error', r));
    streamReply!('stream_closed_ind', { stream_id: 3, error: 'timeout' });
    const e = await failed;
    expect(e).toBeInstanceOf(MeshgwStreamError);
    expect(e).toMatchObject({ code: 'timeout' });
    const s2 = await c.openStream(SID_B, 9);
    const failed2 = new Promise<Error>((r) => s2.once('error', r));
    await c.status().catch(() => undefined);
    expect(await failed2).toMatchObject({ code: 'closed' });
  });

  it('listen() hands accepted streams out with their remote SID and port; close() unlistens', async () => {
    const { state, handler } = echoStreams({ initialCredit: 500 });
    const { port, seen } = await fake((m, reply) => {
      if (m.type === 'stream_listen_req') {
        reply('stream_listen_rsp', { request_id: rid(m) });
        state.clientCredit.set(40, 500);
        state.ourCredit.set(40, m.body['credit'] as number);
        state.backlog.set(40, []);
        reply('stream_accept_ind', { port: m.body['port'], stream_id: 40, sid: SID_B, remote_port: 200, credit: 500 });
        reply('stream_data', { stream_id: 40, data: Buffer.from('hello') });
        state.ourCredit.set(40, state.ourCredit.get(40)! - 5);
        reply('stream_end_ind', { stream_id: 40 });
      } else if (m.type === 'stream_unlisten_req') reply('stream_unlisten_rsp', { request_id: rid(m) });
      else handler(m, reply, undefined as never);
    });
    const c = await connect(port);
    const l = await c.listen(33);
    for await (const s of l) {
      expect(s.remote).toEqual({ sid: SID_B, port: 200 });
      expect(s.remoteSid).toBe(sidToHex(SID_B));
      // (An async iterator would destroy the stream at its end: read with events to write after.)
      const chunks: Buffer[] = [];
      s.on('data', (d: Buffer) => chunks.push(d));
      await new Promise((r) => s.once('end', r));
      expect(Buffer.concat(chunks).toString()).toBe('hello');
      s.end('bye');
      break;
    }
    await l.close();
    await new Promise((r) => setTimeout(r, 50));
    expect(seen.map((m) => m.type)).toContain('stream_unlisten_req');
    expect(state.shutdowns).toBe(1);
  });
});

describe('MeshgwClient close()', () => {
  it('ends listeners, datagram sockets and event iterators without an error', async () => {
    const { port } = await fake((m, reply) => {
      if (m.type === 'stream_listen_req') reply('stream_listen_rsp', { request_id: rid(m) });
      if (m.type === 'datagram_bind_req') reply('datagram_bind_rsp', { request_id: rid(m), port: 5 });
      if (m.type === 'subscribe_req') reply('subscribe_rsp', { request_id: rid(m) });
    });
    const c = await MeshgwClient.connect({ port });
    const listener = await c.listen(3);
    const sock = await c.bind(5);
    const events = c.events();
    const loops = Promise.all([
      (async () => {
        for await (const s of listener) void s;
        return 'listener ended';
      })(),
      (async () => {
        for await (const d of sock) void d;
        return 'socket ended';
      })(),
      (async () => {
        for await (const e of events) void e;
        return 'events ended';
      })(),
    ]);
    await new Promise((r) => setTimeout(r, 50));
    await c.close();
    expect(await loops).toEqual(['listener ended', 'socket ended', 'events ended']);
    await expect(c.status()).rejects.toMatchObject({ code: 'closed' });
  });
});

describe('MeshgwClient datagrams and Strokkur', () => {
  it('bind → send and an async iterator of datagrams', async () => {
    const { port, seen } = await fake((m, reply) => {
      if (m.type === 'datagram_bind_req') reply('datagram_bind_rsp', { request_id: rid(m), port: 77 });
      if (m.type === 'datagram_send_req') {
        reply('datagram_send_rsp', { request_id: rid(m) });
        reply('datagram_ind', { port: 77, sid: m.body['sid'], remote_port: m.body['remote_port'], data: m.body['data'] });
      }
      if (m.type === 'datagram_unbind_req') reply('datagram_unbind_rsp', { request_id: rid(m) });
    });
    const c = await connect(port);
    const sock = await c.bind();
    expect(sock.port).toBe(77);
    await sock.send(SID_B, 9, Uint8Array.of(1, 2, 3));
    for await (const d of sock) {
      expect(d).toEqual({ sid: SID_B, port: 9, data: Uint8Array.of(1, 2, 3) });
      break;
    }
    await new Promise((r) => setTimeout(r, 50));
    expect(seen.map((m) => m.type)).toEqual(['datagram_bind_req', 'datagram_send_req', 'datagram_unbind_req']);
  });

  it('strokkur.send resolves with the result after progress; strokkur.listen yields messages', async () => {
    const uuid = new Uint8Array(16).fill(5);
    const { port } = await fake((m, reply) => {
      if (m.type === 'strokkur_send_req') {
        reply('strokkur_send_rsp', { request_id: rid(m), uuid });
        reply('strokkur_progress_ind', { uuid, chunks_sent: 1, chunks_total: 2 });
        reply('strokkur_progress_ind', { uuid, chunks_sent: 2, chunks_total: 2 });
        reply('strokkur_result_ind', { uuid, error: '' });
      }
      if (m.type === 'strokkur_listen_req') {
        reply('strokkur_listen_rsp', { request_id: rid(m) });
        reply('strokkur_ind', { port: m.body['port'], sid: SID_B, uuid, data: Buffer.from('big') });
      }
    });
    const c = await connect(port);
    const progress: number[] = [];
    const r = await c.strokkur.send(SID_B, 5, new Uint8Array(3000), { redundancy: 3, onProgress: (p) => progress.push(p.chunksSent) });
    expect(r).toEqual({ uuid, ok: true });
    expect(progress).toEqual([1, 2]);
    const messages = await c.strokkur.listen(5);
    const first = await messages.next();
    expect(first.value).toMatchObject({ sid: SID_B, uuid, data: Uint8Array.from(Buffer.from('big')) });
    await messages.return!();
  });
});

describe('the README', () => {
  it('documents MeshgwClient with a complete example app of under 40 lines', async () => {
    const { readFileSync } = await import('node:fs');
    const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
    const section = readme.slice(readme.indexOf('## Talking to a running daemon'));
    const example = /```ts\n([\s\S]*?)```/.exec(section)?.[1] ?? '';
    expect(example).toContain("from 'meshgw'");
    expect(example).toContain('MeshgwClient.connect');
    expect(example.trimEnd().split('\n').length).toBeLessThan(40);
  });
});
