/**
 * The app API (src/api/server.ts) end to end: two gateways in one process over real UDP on
 * loopback (monotonic clock), each with MSP, the echo service and an ApiService on an ephemeral
 * loopback port, driven by raw Messi clients speaking meshgw.proto.
 */
import { createHash } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { configFromFlags, type RunOptions } from '../src/cli/run.js';
import { ConfigError, type DaemonConfig } from '../src/gateway/config.js';
import { startDaemon } from '../src/gateway/daemon.js';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UdpLink } from '../drivers/udp.js';
import { EchoService } from '../src/api/echo.js';
import { meshgwProtocol } from '../src/api/protocol.js';
import { API_MAX_FRAME_BYTES, ApiService, STREAM_INITIAL_CREDIT, type ApiLimits } from '../src/api/server.js';
import { Gateway } from '../src/gateway/gateway.js';
import { MonotonicClock } from '../src/link/clock.js';
import { identityFromSecret } from '../src/mesh/identity.js';
import { MeshNode } from '../src/mesh/node.js';
import { MessiClient, type MessiMessage } from '../src/messi/index.js';
import { MspService } from '../src/msp/service.js';
import { MSP_CONNECTION_DEFAULTS } from '../src/msp/connection.js';
import { until } from './hil/link-helpers.js';

type Body = Record<string, any>;

interface StreamSide {
  id: number;
  received: Buffer[];
  receivedBytes: number;
  /** Credit this client granted the server (initial + grants). */
  granted: number;
  /** Credit the server granted this client, less what it sent. */
  credit: number;
  sent: number;
  ended: boolean;
  closed: string | undefined;
  /** Grant credit back as data is read. */
  autoGrant: boolean;
  ungranted: number;
  overrun: boolean;
}

class TestClient {
  readonly client: MessiClient;
  readonly messages: MessiMessage[] = [];
  readonly streams = new Map<number, StreamSide>();
  disconnected = false;
  /** Credit granted to streams accepted on a port (as in stream_listen_req), and whether to grant as read. */
  readonly listenCredit = new Map<number, { credit: number; autoGrant: boolean }>();
  private rid = 1;

  constructor(port: number) {
    this.client = new MessiClient({ protocol: meshgwProtocol(), host: '127.0.0.1', port, reconnectMs: 600_000, maxFrameBytes: API_MAX_FRAME_BYTES });
    this.client.on('disconnected', () => (this.disconnected = true));
    this.client.on('message', (m) => this.onMessage(m));
  }

  async connect(): Promise<this> {
    const up = new Promise<void>((resolve) => this.client.once('connected', () => resolve()));
    this.client.start();
    await up;
    return this;
  }

  stop(): Promise<void> {
    return this.client.stop();
  }

  send(type: string, body: Body): void {
    expect(this.client.send({ type, body })).toBe(true);
  }

  async request(type: string, body: Body = {}): Promise<MessiMessage<string, Body>> {
    const rid = this.rid++;
    if (type === 'stream_listen_req') this.listenCredit.set(body['port'] as number, { credit: (body['credit'] as number) ?? 0, autoGrant: (body['credit'] ?? 0) > 0 });
    this.send(type, { ...body, request_id: rid });
    return this.take((m) => (m.type.endsWith('_rsp') && m.type !== 'auth_rsp' ? m.body['request_id'] === rid : false), `the answer to ${type}`);
  }

  /** Waits for (and removes) the first message that matches. */
  async take(pred: (m: MessiMessage<string, Body>) => boolean, what: string, timeoutMs = 15_000): Promise<MessiMessage<string, Body>> {
    let found: MessiMessage<string, Body> | undefined;
    await until(() => {
      const i = this.messages.findIndex((m) => pred(m as MessiMessage<string, Body>));
      if (i < 0) return false;
      found = this.messages.splice(i, 1)[0] as MessiMessage<string, Body>;
      return true;
    }, what, timeoutMs);
    return found!;
  }

  stream(id: number, granted: number, credit: number, autoGrant = true): StreamSide {
    const s: StreamSide = { id, received: [], receivedBytes: 0, granted, credit, sent: 0, ended: false, closed: undefined, autoGrant, ungranted: 0, overrun: false };
    this.streams.set(id, s);
    return s;
  }

  grant(s: StreamSide, bytes: number): void {
    s.granted += bytes;
    this.send('stream_credit', { stream_id: s.id, bytes });
  }

  /** Sends `data` on a stream within the server's credit, in pieces of at most `max` bytes. */
  async write(s: StreamSide, data: Uint8Array, max: number): Promise<void> {
    let off = 0;
    while (off < data.length) {
      if (s.credit === 0) await until(() => s.credit > 0 || s.closed !== undefined, `credit on stream ${s.id}`, 20_000);
      if (s.closed !== undefined) throw new Error(`stream ${s.id} closed: ${s.closed}`);
      const n = Math.min(s.credit, max, data.length - off);
      this.send('stream_data', { stream_id: s.id, data: data.subarray(off, off + n) });
      s.credit -= n;
      s.sent += n;
      off += n;
    }
  }

  private onMessage(m: MessiMessage): void {
    const b = m.body as Body;
    if (m.type === 'stream_accept_ind') {
      const l = this.listenCredit.get(b['port'] as number) ?? { credit: 0, autoGrant: false };
      this.stream(b['stream_id'] as number, l.credit, b['credit'] as number, l.autoGrant);
    }
    const s = typeof b['stream_id'] === 'number' ? this.streams.get(b['stream_id']) : undefined;
    if (s && m.type === 'stream_data') {
      const d = b['data'] as Uint8Array;
      s.received.push(Buffer.from(d));
      s.receivedBytes += d.length;
      if (s.receivedBytes > s.granted) s.overrun = true;
      if (s.autoGrant) {
        s.ungranted += d.length;
        if (s.ungranted >= 32 * 1024) {
          this.grant(s, s.ungranted);
          s.ungranted = 0;
        }
      }
      return;
    }
    if (s && m.type === 'stream_credit') {
      s.credit += b['bytes'] as number;
      return;
    }
    if (s && m.type === 'stream_end_ind') {
      s.ended = true;
      if (s.autoGrant && s.ungranted > 0) s.ungranted = 0;
      return;
    }
    if (s && m.type === 'stream_closed_ind') {
      s.closed = b['error'] as string;
      return;
    }
    this.messages.push(m);
  }
}

function pattern(n: number, seed: number): Uint8Array {
  const out = new Uint8Array(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

const sha = (b: Uint8Array | Buffer[]): string => {
  const h = createHash('sha256');
  if (Array.isArray(b)) for (const x of b) h.update(x);
  else h.update(b);
  return h.digest('hex');
};

const same = (a: Uint8Array, b: Uint8Array): boolean => Buffer.from(a).equals(Buffer.from(b));

describe('the app API over two gateways on real UDP loopback', () => {
  const clock = new MonotonicClock();
  const nodes = [0, 1].map((i) => new MeshNode({ identity: identityFromSecret(new Uint8Array(32).fill(i + 71)), epoch: 1, minHelloMs: 200 }));
  const msps = [new MspService(), new MspService()];
  const apis = msps.map((msp) => new ApiService({ host: '127.0.0.1', port: 0, msp }));
  const gws: Gateway[] = [];
  const clients: TestClient[] = [];
  const extras: Array<{ api: ApiService; gw: Gateway }> = [];
  let portA = 0;
  let portB = 0;
  const sidA = nodes[0]!.sid;
  const sidB = nodes[1]!.sid;

  async function client(port: number): Promise<TestClient> {
    const c = await new TestClient(port).connect();
    clients.push(c);
    return c;
  }

  /** Another ApiService on a running gateway (its own caps or access rules). */
  async function extraApi(gw: Gateway, msp: MspService, options: { limits?: Partial<ApiLimits>; token?: string; requireToken?: boolean; log?: (line: string) => void }): Promise<number> {
    const api = new ApiService({ host: '127.0.0.1', port: 0, msp, ...options });
    api.start(gw);
    gw.loop.add(api);
    extras.push({ api, gw });
    return (await api.listen()).port;
  }

  beforeAll(async () => {
    const base = 31_000 + Math.floor(Math.random() * 20_000);
    for (let i = 0; i < 2; i++) {
      const api = apis[i]!;
      const gw = new Gateway({
        clock,
        mesh: nodes[i]!,
        services: [msps[i]!, new EchoService(), api],
        onEvent: (e) => api.handleGatewayEvent(e),
        interfaces: [{ link: new UdpLink({ name: 'udp0', address: '127.0.0.1', port: base + i, peers: [{ address: '127.0.0.1', port: base + 1 - i }], mtu: 1200 }) }], // a Wi-Fi-sized MTU
      });
      await gw.start();
      gws.push(gw);
    }
    portA = (await apis[0]!.listen()).port;
    portB = (await apis[1]!.listen()).port;
    await until(() => gws[0]!.host!.route(sidB) !== undefined && gws[1]!.host!.route(sidA) !== undefined, 'routes both ways over UDP', 20_000);
    // Both must know each other's boot token before datagrams can be sealed.
    await until(() => nodes[0]!.control.node(nodes[1]!.control.id)?.boot !== undefined && nodes[1]!.control.node(nodes[0]!.control.id)?.boot !== undefined, 'boot tokens', 20_000);
  }, 30_000);

  afterAll(async () => {
    for (const c of clients) await c.stop();
    for (const { api, gw } of extras) {
      gw.loop.remove(api);
      await api.stop();
    }
    for (const g of gws) await g.stop();
  });

  it('answers status, neighbours and routes with SIDs', async () => {
    const a = await client(portA);
    const st = (await a.request('status_req')).body;
    expect(st['sid']).toHaveLength(32);
    expect(same(st['sid'], sidA)).toBe(true);
    expect(st['version']).toMatch(/^\d+\.\d+\.\d+/);
    expect(st['simulated']).toBe(false);
    expect(st['uptime_ms']).toBeGreaterThanOrEqual(0);
    expect(st['interfaces']).toHaveLength(1);
    expect(st['interfaces'][0]).toMatchObject({ name: 'udp0', kind: 'udp', state: 'up', mtu: 1200 });
    expect(st['interfaces'][0]['frames_sent']).toBeGreaterThan(0);

    const nb = (await a.request('neighbours_req')).body['neighbours'];
    expect(nb).toHaveLength(1);
    expect(same(nb[0]['sid'], sidB)).toBe(true);
    expect(nb[0]).toMatchObject({ interface: 'udp0', symmetric: true, has_rssi: false });

    const routes = (await a.request('routes_req')).body['routes'];
    expect(routes).toHaveLength(1);
    expect(same(routes[0]['destination'], sidB)).toBe(true);
    expect(same(routes[0]['next_hop'], sidB)).toBe(true);
    expect(routes[0]).toMatchObject({ interface: 'udp0', hops: 1 });
    expect(routes[0]['max_payload']).toBeGreaterThan(0);
    expect(routes[0]['max_payload']).toBeLessThanOrEqual(routes[0]['path_mtu']);

    expect((await a.request('status_req', {})).type).toBe('status_rsp');
  });

  it('pings the peer through its echo service', async () => {
    const a = await client(portA);
    const r = await a.request('ping_req', { sid: sidB, size: 100 });
    expect(r.type).toBe('ping_rsp');
    expect(r.body['rtt_ms']).toBeGreaterThan(0);
    expect(r.body['hops']).toBe(1);
    const unknown = await a.request('ping_req', { sid: new Uint8Array(32).fill(9) });
    expect(unknown.body).toMatchObject({ code: 'no-route' });
    const huge = await a.request('ping_req', { sid: sidB, size: 60_000 });
    expect(huge.body['code']).toBe('too-large');
    expect(huge.body['max_bytes']).toBeGreaterThan(0);
  });

  it('carries 1 MiB intact both ways on a stream, within the credits', async () => {
    const a = await client(portA);
    const b = await client(portB);
    expect((await b.request('stream_listen_req', { port: 40, credit: 256 * 1024 })).type).toBe('stream_listen_rsp');
    const open = await a.request('stream_open_req', { sid: sidB, port: 40, credit: 256 * 1024 });
    expect(open.type).toBe('stream_open_rsp');
    expect(open.body['credit']).toBe(STREAM_INITIAL_CREDIT);
    const max = open.body['max_message'] as number;
    expect(max).toBeGreaterThan(0);
    const sa = a.stream(open.body['stream_id'], 256 * 1024, open.body['credit']);
    const toB = pattern(1024 * 1024, 1);
    const toA = pattern(1024 * 1024, 2);
    const writingA = a.write(sa, toB, max);
    const accept = await b.take((m) => m.type === 'stream_accept_ind', 'the accept on B');
    expect(accept.body['port']).toBe(40);
    expect(same(accept.body['sid'], sidA)).toBe(true);
    const sb = b.streams.get(accept.body['stream_id'])!;
    await Promise.all([writingA, b.write(sb, toA, max)]);
    a.send('stream_shutdown', { stream_id: sa.id });
    b.send('stream_shutdown', { stream_id: sb.id });
    await until(() => sb.ended && sa.ended, 'both ends', 25_000);
    expect(sb.receivedBytes).toBe(toB.length);
    expect(sa.receivedBytes).toBe(toA.length);
    expect(sha(sb.received)).toBe(sha(toB));
    expect(sha(sa.received)).toBe(sha(toA));
    expect(sa.overrun || sb.overrun).toBe(false);
    await until(() => sa.closed !== undefined && sb.closed !== undefined, 'both streams closed');
    expect(sa.closed).toBe('');
    expect(sb.closed).toBe('');
  }, 30_000);

  it('pauses the remote sender while the reader grants no credit, and resumes when it does', async () => {
    const a = await client(portA);
    const b = await client(portB);
    expect((await b.request('stream_listen_req', { port: 41, credit: 0 })).type).toBe('stream_listen_rsp');
    const open = await a.request('stream_open_req', { sid: sidB, port: 41 });
    const sa = a.stream(open.body['stream_id'], 0, open.body['credit'], false);
    const data = pattern(4 * 1024 * 1024, 3);
    const writing = a.write(sa, data, open.body['max_message']);
    const accept = await b.take((m) => m.type === 'stream_accept_ind', 'the accept on B');
    const sb = b.streams.get(accept.body['stream_id'])!;
    const queued = (): number => {
      let n = 0;
      for (let id = 1; id < 4096; id++) n += msps[0]!.sockets.connectionOf({ id })?.queuedBytes ?? 0;
      return n;
    };
    // A's MSP queue fills (B's window closed), then the client's credit runs out and stays out.
    // On this fast path MSP's windows are the large ones (1 MiB each way).
    let last = -1;
    let since = Date.now();
    await until(() => {
      if (sa.sent !== last || sa.credit > 0) {
        last = sa.sent;
        since = Date.now();
      }
      return Date.now() - since >= 500;
    }, 'the sender to be held back', 15_000);
    expect(sa.sent).toBeLessThan(3 * 1024 * 1024);
    expect(queued()).toBeLessThanOrEqual(MSP_CONNECTION_DEFAULTS.fastPathWindowBytes);
    expect(sb.receivedBytes).toBe(0); // nothing was buffered towards B's client beyond its credit (none)
    b.grant(sb, 8 * 1024 * 1024);
    await writing;
    await until(() => sb.receivedBytes === data.length, 'all data after the credit', 20_000);
    expect(sha(sb.received)).toBe(sha(data));
    expect(sb.overrun).toBe(false);
    a.send('stream_close', { stream_id: sa.id });
    await until(() => sa.closed !== undefined, 'the close');
    expect(sa.closed).toBe('closed');
    await until(() => sb.closed !== undefined, 'the peer seeing the close');
  }, 30_000);

  it('binds, sends and delivers datagrams', async () => {
    const a = await client(portA);
    const b = await client(portB);
    const pb = (await b.request('datagram_bind_req', { port: 0 })).body['port'];
    expect(pb).toBeGreaterThanOrEqual(16);
    const pa = (await a.request('datagram_bind_req', { port: 77 })).body['port'];
    expect(pa).toBe(77);
    expect((await a.request('datagram_bind_req', { port: 77 })).body['code']).toBe('port-in-use');
    const sent = await a.request('datagram_send_req', { port: 77, sid: sidB, remote_port: pb, data: Buffer.from('hello B'), interactive: true });
    expect(sent.type).toBe('datagram_send_rsp');
    const ind = await b.take((m) => m.type === 'datagram_ind', 'the datagram on B');
    expect(ind.body).toMatchObject({ port: pb, remote_port: 77 });
    expect(same(ind.body['sid'], sidA)).toBe(true);
    expect(Buffer.from(ind.body['data']).toString()).toBe('hello B');
    expect((await a.request('datagram_send_req', { port: 78, sid: sidB, remote_port: pb, data: Buffer.from('x') })).body['code']).toBe('not-found');
    expect((await a.request('datagram_send_req', { port: 77, sid: sidB, remote_port: pb, data: new Uint8Array(5000) })).body['code']).toBe('too-large');
    expect((await a.request('datagram_unbind_req', { port: 77 })).type).toBe('datagram_unbind_rsp');
    expect((await a.request('datagram_unbind_req', { port: 77 })).body['code']).toBe('not-found');
  });

  it('sends a Strokkur message across', async () => {
    const a = await client(portA);
    const b = await client(portB);
    expect((await b.request('strokkur_listen_req', { port: 50 })).type).toBe('strokkur_listen_rsp');
    const data = pattern(100_000, 4);
    const rsp = await a.request('strokkur_send_req', { sid: sidB, port: 50, data });
    expect(rsp.type).toBe('strokkur_send_rsp');
    const uuid = rsp.body['uuid'] as Uint8Array;
    expect(uuid).toHaveLength(16);
    const result = await a.take((m) => m.type === 'strokkur_result_ind', 'the send result');
    expect(result.body['error']).toBe('');
    expect(same(result.body['uuid'], uuid)).toBe(true);
    const progress = await a.take((m) => m.type === 'strokkur_progress_ind', 'progress');
    expect(progress.body['chunks_total']).toBeGreaterThan(0);
    const ind = await b.take((m) => m.type === 'strokkur_ind', 'the message on B');
    expect(ind.body['port']).toBe(50);
    expect(same(ind.body['sid'], sidA)).toBe(true);
    expect(same(ind.body['uuid'], uuid)).toBe(true);
    expect(sha(ind.body['data'])).toBe(sha(data));
  });

  it('with a token required, disconnects a wrong or missing token without an answer', async () => {
    const lines: string[] = [];
    const port = await extraApi(gws[0]!, msps[0]!, { token: 'sekrit', requireToken: true, log: (l) => lines.push(l) });
    const wrong = await client(port);
    wrong.send('auth_req', { token: 'guess' });
    wrong.send('status_req', { request_id: 1 });
    await until(() => wrong.disconnected, 'the wrong token to be disconnected');
    expect(wrong.messages).toEqual([]);
    const none = await client(port);
    none.send('status_req', { request_id: 1 });
    await until(() => none.disconnected, 'a client without auth_req to be disconnected');
    expect(none.messages).toEqual([]);
    const third = await client(port);
    third.send('auth_req', { token: 'sekrit!' });
    await until(() => third.disconnected, 'a third refusal');
    expect(lines.filter((l) => /refused/.test(l))).toHaveLength(1); // rate-limited: the others are counted in the next line
    const right = await client(port);
    right.send('auth_req', { token: 'sekrit' });
    await right.take((m) => m.type === 'auth_rsp', 'auth_rsp');
    expect((await right.request('status_req')).type).toBe('status_rsp');
  });

  it('refuses beyond its caps with "limit" and bad fields with "bad-request"', async () => {
    const port = await extraApi(gws[0]!, msps[0]!, { limits: { clients: 1, streamsPerClient: 1, portsPerClient: 2, pingsPerClient: 1 } });
    const c = await client(port);
    expect((await c.request('status_req')).type).toBe('status_rsp');
    const second = await client(port);
    expect((await second.request('status_req')).body['code']).toBe('limit');
    await until(() => second.disconnected, 'the client beyond the cap to be disconnected');
    expect((await c.request('datagram_bind_req', { port: 0 })).type).toBe('datagram_bind_rsp');
    expect((await c.request('strokkur_listen_req', { port: 90 })).type).toBe('strokkur_listen_rsp');
    expect((await c.request('datagram_bind_req', { port: 0 })).body['code']).toBe('limit');
    expect((await c.request('stream_listen_req', { port: 91 })).body['code']).toBe('limit');
    expect((await c.request('stream_open_req', { sid: sidB, port: 99 })).type).toBe('stream_open_rsp');
    expect((await c.request('stream_open_req', { sid: sidB, port: 99 })).body['code']).toBe('limit');
    const bad = [
      ['ping_req', { sid: new Uint8Array(31) }],
      ['stream_open_req', { sid: sidB, port: 0 }],
      ['stream_open_req', { sid: sidB, port: 256 }],
      ['stream_open_req', { sid: sidB, port: 9, fec: 'maybe' }],
      ['datagram_send_req', { port: 1, sid: sidB.subarray(0, 16), remote_port: 3 }],
      ['subscribe_req', { events: ['nonsense'] }],
    ] as const;
    for (const [type, body] of bad) expect((await c.request(type, body)).body['code'], type).toBe('bad-request');
    expect((await c.request('subscribe_req', { events: [] })).type).toBe('subscribe_rsp');
  });

  it('answers every request exactly once, whatever its fields (fuzz)', async () => {
    const port = await extraApi(gws[1]!, msps[1]!, {});
    const c = await client(port);
    const u32 = fc.oneof(fc.constantFrom(0, 1, 15, 16, 255, 256, 0xffff_ffff), fc.nat());
    const bytes = fc.uint8Array({ maxLength: 40 });
    const text = fc.oneof(fc.string({ maxLength: 8 }), fc.constantFrom('', 'on', 'off', 'auto', 'neighbour-up'));
    const request = fc.oneof(
      fc.record({ type: fc.constant('ping_req'), body: fc.record({ sid: bytes, size: u32, timeout_ms: fc.nat(500) }) }),
      fc.record({ type: fc.constant('stream_open_req'), body: fc.record({ sid: bytes, port: u32, fec: text, credit: u32, interactive: fc.boolean() }) }),
      fc.record({ type: fc.constant('stream_listen_req'), body: fc.record({ port: u32, fec: text, credit: u32 }) }),
      fc.record({ type: fc.constant('stream_unlisten_req'), body: fc.record({ port: u32 }) }),
      fc.record({ type: fc.constant('datagram_bind_req'), body: fc.record({ port: u32 }) }),
      fc.record({ type: fc.constant('datagram_unbind_req'), body: fc.record({ port: u32 }) }),
      fc.record({ type: fc.constant('datagram_send_req'), body: fc.record({ port: u32, sid: bytes, remote_port: u32, data: bytes }) }),
      fc.record({ type: fc.constant('strokkur_send_req'), body: fc.record({ sid: bytes, port: u32, data: bytes, redundancy: u32 }) }),
      fc.record({ type: fc.constant('strokkur_listen_req'), body: fc.record({ port: u32 }) }),
      fc.record({ type: fc.constant('subscribe_req'), body: fc.record({ events: fc.array(text, { maxLength: 3 }), airtime_low_percent: fc.double({ noNaN: false }) }) }),
      fc.record({ type: fc.constantFrom('status_req', 'neighbours_req', 'routes_req'), body: fc.constant({}) }),
    );
    for (const r of fc.sample(request, { numRuns: 300, seed: 42 })) {
      const answer = await c.request(r.type, r.body);
      expect(answer.type === 'error_rsp' ? answer.body['code'] : 'ok').not.toBe('internal');
      // Stream messages without request ids, for streams that may or may not exist.
      c.send('stream_credit', { stream_id: answer.body['request_id'] % 4, bytes: 7 });
    }
    expect(c.disconnected).toBe(false);
    expect((await c.request('status_req')).type).toBe('status_rsp');
    expect(c.messages.filter((m) => m.type.endsWith('_rsp'))).toEqual([]); // no second answer to any request
  });

  it('closes a stream whose client sends beyond its credit ("credit")', async () => {
    const b = await client(portB);
    expect((await b.request('stream_listen_req', { port: 43 })).type).toBe('stream_listen_rsp');
    const a = await client(portA);
    const open = await a.request('stream_open_req', { sid: sidB, port: 43 });
    const sa = a.stream(open.body['stream_id'], 0, open.body['credit'], false);
    a.send('stream_data', { stream_id: sa.id, data: new Uint8Array(STREAM_INITIAL_CREDIT + 1) });
    await until(() => sa.closed !== undefined, 'the stream to close');
    expect(sa.closed).toBe('credit');
    // Messages for a stream that is gone are ignored, not answered.
    a.send('stream_data', { stream_id: sa.id, data: new Uint8Array(10) });
    a.send('stream_credit', { stream_id: 999, bytes: 10 });
    expect((await a.request('status_req')).type).toBe('status_rsp');
  });

  it('delivers the events a client subscribed to, and only those', async () => {
    const a = await client(portA);
    expect((await a.request('subscribe_req', { events: ['route-changed', 'frame-refused'] })).type).toBe('subscribe_rsp');
    apis[0]!.handleGatewayEvent({ event: 'state', interface: 'udp0', state: 'reconnecting' });
    apis[0]!.handleGatewayEvent({ event: 'refused', interface: 'udp0', reason: 'dwell', message: 'test' });
    const host = gws[0]!.host!;
    host.note([{ event: 'route-changed', destination: nodes[1]!.control.id, route: undefined }], []);
    host.dispatch();
    const refused = await a.take((m) => m.type === 'event_ind' && m.body['event'] === 'frame-refused', 'frame-refused');
    expect(refused.body).toMatchObject({ interface: 'udp0', reason: 'dwell' });
    const route = await a.take((m) => m.type === 'event_ind' && m.body['event'] === 'route-changed', 'route-changed');
    expect(route.body['state']).toBe('gone');
    expect(same(route.body['sid'], sidB)).toBe(true);
    expect(a.messages.some((m) => m.body['event'] === 'interface-state')).toBe(false);
    const all = await client(portA);
    expect((await all.request('subscribe_req', { events: [] })).type).toBe('subscribe_rsp');
    apis[0]!.handleGatewayEvent({ event: 'state', interface: 'udp0', state: 'up' });
    const st = await all.take((m) => m.type === 'event_ind', 'interface-state');
    expect(st.body).toMatchObject({ event: 'interface-state', interface: 'udp0', state: 'up' });
    // ["none"] unsubscribes: nothing more arrives (the status answer after the event proves the order).
    expect((await all.request('subscribe_req', { events: ['none'] })).type).toBe('subscribe_rsp');
    const before = all.messages.filter((m) => m.type === 'event_ind').length;
    apis[0]!.handleGatewayEvent({ event: 'state', interface: 'udp0', state: 'reconnecting' });
    expect((await all.request('status_req', {})).type).toBe('status_rsp');
    expect(all.messages.filter((m) => m.type === 'event_ind').length).toBe(before);
  });

  it('stops a Strokkur listener on strokkur_unlisten_req, and frees its port', async () => {
    const b = await client(portB);
    expect((await b.request('strokkur_listen_req', { port: 51 })).type).toBe('strokkur_listen_rsp');
    expect((await b.request('strokkur_unlisten_req', { port: 51 })).type).toBe('strokkur_unlisten_rsp');
    expect((await b.request('strokkur_unlisten_req', { port: 51 })).body['code']).toBe('not-found');
    // The port is free again: listening anew works.
    expect((await b.request('strokkur_listen_req', { port: 51 })).type).toBe('strokkur_listen_rsp');
  });

  it('frees the streams and ports of a client that goes away', async () => {
    const b = await client(portB);
    expect((await b.request('stream_listen_req', { port: 42, credit: 1 << 20 })).type).toBe('stream_listen_rsp');
    const before = msps[0]!.sockets.size;
    const x = await client(portA);
    const open = await x.request('stream_open_req', { sid: sidB, port: 42 });
    expect((await x.request('datagram_bind_req', { port: 120 })).body['port']).toBe(120);
    const sx = x.stream(open.body['stream_id'], 0, open.body['credit'], false);
    await x.write(sx, Buffer.from('hello'), 100);
    const accept = await b.take((m) => m.type === 'stream_accept_ind' && m.body['port'] === 42, 'the accept on B');
    const sb = b.streams.get(accept.body['stream_id'])!;
    await until(() => sb.receivedBytes === 5, 'the first bytes');
    expect(msps[0]!.sockets.size).toBe(before + 1);
    await x.stop();
    await until(() => msps[0]!.sockets.size === before, "A's MSP socket to be closed");
    await until(() => sb.closed !== undefined, 'the peer to see the stream end');
    expect(sb.closed).toBe('reset');
    const y = await client(portA);
    expect((await y.request('datagram_bind_req', { port: 120 })).body['port']).toBe(120);
  });
});

describe('the API in the daemon', () => {
  function config(api: DaemonConfig['api'], apiToken?: string): DaemonConfig {
    const dir = mkdtempSync(join(tmpdir(), 'meshgw-api-'));
    return { interfaces: [{ kind: 'sim' }], region: 'none', keyFile: join(dir, 'identity.json'), stateDir: join(dir, 'state'), statusIntervalMs: 0, api, ...(apiToken ? { apiToken } : {}) };
  }

  it('parses --api and --api-token', () => {
    const base = { driver: 'lora', udpPort: '4269', sim: true, region: 'none', bw: '125000', sf: '9', cr: '5', txPower: '14', statusInterval: '0', key: '/tmp/k.json' } as RunOptions;
    expect(configFromFlags(base).api).toEqual({ host: '127.0.0.1', port: 7840 });
    expect(configFromFlags({ ...base, api: 'off' }).api).toBeUndefined();
    expect(configFromFlags({ ...base, api: '[::1]:9000', apiToken: 't' })).toMatchObject({ api: { host: '::1', port: 9000 }, apiToken: 't' });
    expect(() => configFromFlags({ ...base, api: 'nowhere' })).toThrow(/--api must be HOST:PORT or off/);
  });

  it('refuses an API beyond loopback without a token (ConfigError)', async () => {
    await expect(startDaemon(config({ host: '0.0.0.0', port: 0 }))).rejects.toBeInstanceOf(ConfigError);
  });

  it('serves the API where it says, and stops it with the daemon', async () => {
    const lines: string[] = [];
    const d = await startDaemon(config({ host: '127.0.0.1', port: 0 }), { log: (l) => lines.push(l) });
    try {
      const port = d.api!.address!.port;
      expect(lines.some((l) => l.includes(`API tcp://127.0.0.1:${port}`))).toBe(true);
      const c = await new TestClient(port).connect();
      const st = (await c.request('status_req')).body;
      expect(st['simulated']).toBe(true);
      expect(same(st['sid'], d.identity.sid)).toBe(true);
      await c.stop();
    } finally {
      await d.stop();
    }
    const off = await startDaemon(config(undefined), { log: (l) => lines.push(l) });
    expect(off.api).toBeUndefined();
    expect(lines.at(-1)).toMatch(/API off/);
    await off.stop();
  });

  it('names the address when the API port is in use, and releases what it took', async () => {
    const blocker = net.createServer();
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', () => r()));
    const port = (blocker.address() as net.AddressInfo).port;
    try {
      const c = config({ host: '127.0.0.1', port });
      await expect(startDaemon(c)).rejects.toThrow(new RegExp(`cannot listen for the API on 127\\.0\\.0\\.1:${port}: the address is in use`));
      const again = await startDaemon({ ...c, api: undefined }); // the key lock was released
      await again.stop();
    } finally {
      await new Promise((r) => blocker.close(r));
    }
  });
});
