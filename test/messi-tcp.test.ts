/**
 * Messi over real TCP on 127.0.0.1 (src/messi/server.ts, client.ts): the runtime client and
 * server together, raw sockets playing Messi peers of each version with hand-made frames,
 * keep-alive with short configured intervals (waiting on events, never on fixed sleeps),
 * reconnect after a server restart, misbehaving clients that must not disturb the others, and
 * 100 clients at once.
 */
import { once } from 'node:events';
import net from 'node:net';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { MessiClient } from '../src/messi/client.js';
import { loadProtocol, type MessiMessage } from '../src/messi/codec.js';
import { MessiServer, type MessiClientHandle, type MessiDisconnectReason } from '../src/messi/server.js';

const chat = loadProtocol({ path: fileURLToPath(new URL('./fixtures/messi-runtime/chat.proto', import.meta.url)) });
const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const f of cleanups.splice(0).reverse()) await f();
});

/** Resolves when `check()` holds, polling on the event loop; rejects after `ms`. */
async function until(check: () => boolean, ms = 5000, what = 'condition'): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** A chat server that answers connect_req with connect_rsp and fans message_req out as message_ind. */
async function chatServer(options: Partial<ConstructorParameters<typeof MessiServer>[0]> = {}) {
  const log: string[] = [];
  const server = new MessiServer({ protocol: chat, log: (l) => log.push(l), ...options });
  const users = new Map<number, string>();
  const drops: { client: MessiClientHandle; reason: MessiDisconnectReason; detail: string }[] = [];
  const messages: { client: MessiClientHandle; message: MessiMessage }[] = [];
  server.on('message', (client, message) => {
    messages.push({ client, message });
    if (message.type === 'connect_req') {
      users.set(client.id, String(message.body['user']));
      server.send(client, { type: 'connect_rsp', body: {} });
    } else if (message.type === 'message_req') {
      server.broadcast({ type: 'message_ind', body: { user: users.get(client.id) ?? '?', message: message.body['message'] } });
    }
  });
  server.on('client-disconnected', (client, reason, detail) => drops.push({ client, reason, detail }));
  const address = await server.listen(options.port ?? 0);
  cleanups.push(() => server.close());
  return { server, port: address.port, log, drops, messages };
}

function chatClient(port: number, options: Partial<ConstructorParameters<typeof MessiClient>[0]> = {}) {
  const client = new MessiClient({ protocol: chat, host: '127.0.0.1', port, reconnectMs: 50, ...options });
  const received: MessiMessage[] = [];
  const disconnects: string[] = [];
  client.on('message', (m) => received.push(m));
  client.on('disconnected', (reason) => disconnects.push(reason));
  cleanups.push(() => client.stop());
  return { client, received, disconnects };
}

/** A raw TCP peer: collects every byte it receives. */
async function rawPeer(port: number, options: { read?: boolean } = {}) {
  const socket = net.connect({ host: '127.0.0.1', port });
  await once(socket, 'connect');
  const got: Buffer[] = [];
  let closed = false;
  if (options.read === false) socket.pause();
  else socket.on('data', (d: Buffer) => got.push(d));
  socket.on('close', () => (closed = true));
  socket.on('error', () => {});
  cleanups.push(() => socket.destroy());
  return {
    socket,
    received: () => Buffer.concat(got).toString('hex'),
    closed: () => closed,
  };
}

describe('runtime client and server', () => {
  it('chat in the current version: connect, reply, broadcast', async () => {
    const s = await chatServer();
    const a = chatClient(s.port);
    const b = chatClient(s.port);
    a.client.start();
    b.client.start();
    await Promise.all([once(a.client, 'connected'), once(b.client, 'connected')]);
    a.client.send({ type: 'connect_req', body: { user: 'alice' } });
    b.client.send({ type: 'connect_req', body: { user: 'bob' } });
    await until(() => a.received.length === 1 && b.received.length === 1, 5000, 'connect_rsp');
    expect(a.received[0]).toEqual({ type: 'connect_rsp', body: {} });
    a.client.send({ type: 'message_req', body: { message: 'hello' } });
    await until(() => b.received.length === 2 && a.received.length === 2, 5000, 'message_ind');
    expect(b.received[1]).toEqual({ type: 'message_ind', body: { user: 'alice', message: 'hello' } });
    expect(s.server.clients.map((c) => c.version)).toEqual(['current', 'current']);
  });

  it('a server with a fixed version sends to a client that has not spoken yet', async () => {
    const s = await chatServer({ version: 'current' });
    const c = chatClient(s.port);
    c.client.start();
    await once(c.client, 'connected');
    await until(() => s.server.clients.length === 1, 5000, 'server side of the connection');
    s.server.broadcast({ type: 'message_ind', body: { user: 'srv', message: 'welcome' } });
    await until(() => c.received.length === 1, 1000, 'message_ind before any ping');
  });

  it('a seed-version client is answered in the seed version', async () => {
    const s = await chatServer();
    const c = chatClient(s.port, { version: 'seed' });
    c.client.start();
    await once(c.client, 'connected');
    c.client.send({ type: 'connect_req', body: { user: 'old' } });
    await until(() => c.received.length === 1, 5000, 'connect_rsp');
    expect(s.server.clients[0]?.version).toBe('seed');
  });

  it('send() is false while not connected', () => {
    const c = chatClient(1);
    expect(c.client.send({ type: 'connect_req', body: {} })).toBe(false);
  });
});

describe('hand-made peers', () => {
  it('a Messi 0.29 peer: user message and ping, answered with 1-byte-type frames', async () => {
    const s = await chatServer();
    const p = await rawPeer(s.port);
    p.socket.write(hex('01000008 0a060a0445726963 03000000'));
    await until(() => p.received().length === 2 * 10, 5000, 'reply and pong');
    expect(p.received()).toBe('020000020a00' + '04000000');
    expect(s.messages[0]?.message).toEqual({ type: 'connect_req', body: { user: 'Eric' } });
  });

  it('a seed peer, its header split across reads: answered with 8-byte headers', async () => {
    const s = await chatServer();
    const p = await rawPeer(s.port);
    const bytes = hex('00000001 00000008 0a060a0445726963 00000002 00000000');
    for (const part of [bytes.subarray(0, 1), bytes.subarray(1, 6), bytes.subarray(6, 13), bytes.subarray(13)]) {
      p.socket.write(part);
      await new Promise((r) => setImmediate(r));
    }
    await until(() => p.received().length === 2 * 18, 5000, 'reply and pong');
    expect(p.received()).toBe('00000001000000020a00' + '0000000300000000');
  });

  it('the runtime client speaks 0.29 to a hand-made server: pings of 03 00 00 00 at the interval', async () => {
    const got: Buffer[] = [];
    const raw = net.createServer((sock) => {
      sock.on('data', (d: Buffer) => {
        got.push(d);
        for (let i = 0; i < d.length; i += 4) if (d[i] === 3) sock.write(hex('04000000'));
      });
    });
    raw.listen(0, '127.0.0.1');
    await once(raw, 'listening');
    cleanups.push(() => new Promise<void>((r) => raw.close(() => r())));
    const port = (raw.address() as net.AddressInfo).port;
    const c = chatClient(port, { pingIntervalMs: 50 });
    c.client.start();
    await once(c.client, 'connected');
    c.client.send({ type: 'message_req', body: { message: 'x' } });
    await until(() => Buffer.concat(got).length >= 9 + 3 * 4, 5000, 'three pings');
    const wire = Buffer.concat(got).toString('hex');
    expect(wire.startsWith('01000005' + '12030a0178')).toBe(true);
    expect(wire.slice(18)).toMatch(/^(03000000)+$/);
    expect(c.disconnects).toEqual([]);
  });
});

describe('keep-alive over TCP', () => {
  it('a silent server is detected by the client', async () => {
    const raw = net.createServer(() => {});
    raw.listen(0, '127.0.0.1');
    await once(raw, 'listening');
    const sockets: net.Socket[] = [];
    raw.on('connection', (s) => sockets.push(s));
    cleanups.push(() => {
      for (const s of sockets) s.destroy();
      return new Promise<void>((r) => raw.close(() => r()));
    });
    const c = chatClient((raw.address() as net.AddressInfo).port, { pingIntervalMs: 100 });
    c.client.start();
    const [reason] = await once(c.client, 'disconnected');
    expect(reason).toBe('keep-alive-timeout');
  });

  it('a silent client is dropped by the server', async () => {
    const s = await chatServer({ clientTimeoutMs: 200 });
    const p = await rawPeer(s.port);
    await until(() => p.closed(), 5000, 'the server to drop the client');
    expect(s.drops.map((d) => d.reason)).toEqual(['keep-alive-timeout']);
    expect(s.log.join('\n')).toMatch(/keep-alive-timeout/);
  });

  it('a pinging client stays connected past the server timeout', async () => {
    const s = await chatServer({ clientTimeoutMs: 300 });
    const c = chatClient(s.port, { pingIntervalMs: 100 });
    c.client.start();
    await once(c.client, 'connected');
    await until(() => (c.client.connection?.keepAliveCounts.pongs ?? 0) >= 6, 5000, 'six pongs');
    expect(s.drops).toEqual([]);
    expect(c.disconnects).toEqual([]);
  });

  it('a client reconnects after a server restart', async () => {
    const first = await chatServer();
    const port = first.port;
    const c = chatClient(port, { reconnectMs: 50 });
    c.client.start();
    await once(c.client, 'connected');
    const gone = once(c.client, 'disconnected');
    await first.server.close();
    expect((await gone)[0]).toBe('connection-closed');
    expect(c.client.connected).toBe(false);
    const second = await chatServer({ port });
    await until(() => c.client.connected, 5000, 'reconnect');
    c.client.send({ type: 'connect_req', body: { user: 'back' } });
    await until(() => c.received.length === 1, 5000, 'connect_rsp from the new server');
    expect(second.messages[0]?.message).toEqual({ type: 'connect_req', body: { user: 'back' } });
    expect(c.client.stats.connects).toBe(2);
  });
});

describe('misbehaving clients do not disturb the others', () => {
  it('oversize, garbage and a client that never reads are dropped; a good client carries on', async () => {
    const s = await chatServer({ maxOutputBytes: 64 * 1024 });
    const good = chatClient(s.port, { pingIntervalMs: 100 });
    good.client.start();
    await once(good.client, 'connected');
    good.client.send({ type: 'connect_req', body: { user: 'good' } });
    await until(() => good.received.length === 1, 5000, 'good connect_rsp');

    const oversize = await rawPeer(s.port);
    oversize.socket.write(hex('01010001')); // 65537 bytes announced: refused from the header
    const garbage = await rawPeer(s.port);
    garbage.socket.write(hex('01000003 ffffff'));
    await until(() => oversize.closed() && garbage.closed(), 5000, 'oversize and garbage dropped');
    expect(s.drops.map((d) => d.reason).sort()).toEqual(['message-decode-error', 'message-too-big']);
    expect(s.log.join('\n')).toMatch(/message-too-big: frame of 65537 bytes/);

    const deaf = await rawPeer(s.port, { read: false });
    deaf.socket.write(hex('01000006 0a040a026464'));
    await until(() => s.server.clients.length === 2, 5000, 'deaf client joined');
    // Broadcast big messages until the deaf client's queue passes the cap.
    const big = 'x'.repeat(30_000);
    for (let i = 0; i < 2000 && !s.drops.some((d) => d.reason === 'slow-reader'); i++) {
      s.server.broadcast({ type: 'message_ind', body: { user: 'flood', message: big } });
      if (i % 20 === 0) await new Promise((r) => setImmediate(r));
    }
    await until(() => s.drops.some((d) => d.reason === 'slow-reader'), 10_000, 'slow reader dropped');
    expect(s.server.clients.length).toBe(1);

    const before = good.received.length;
    good.client.send({ type: 'message_req', body: { message: 'still here' } });
    await until(
      () => good.received.some((m) => m.body['message'] === 'still here'),
      10_000,
      'good client still served',
    );
    expect(good.received.length).toBeGreaterThan(before);
    expect(good.disconnects).toEqual([]);
  });

  it('too many clients: the extra connection is closed, the others stay', async () => {
    const s = await chatServer({ maxClients: 2 });
    const a = await rawPeer(s.port);
    const b = await rawPeer(s.port);
    const c = await rawPeer(s.port);
    await until(() => c.closed(), 5000, 'third refused');
    expect(a.closed() || b.closed()).toBe(false);
    expect(s.server.stats.refused).toBe(1);
  });
});

describe('scale', () => {
  it('100 clients at once on one server', async () => {
    const s = await chatServer();
    const clients = Array.from({ length: 100 }, () => chatClient(s.port));
    for (const c of clients) c.client.start();
    await until(() => clients.every((c) => c.client.connected) && s.server.clients.length === 100, 10_000, '100 connected');
    clients.forEach((c, i) => c.client.send({ type: 'connect_req', body: { user: `u${i}` } }));
    await until(() => clients.every((c) => c.received.length === 1), 10_000, '100 connect_rsp');
    clients[7]!.client.send({ type: 'message_req', body: { message: 'to all' } });
    await until(() => clients.every((c) => c.received.length === 2), 10_000, '100 message_ind');
    for (const c of clients) expect(c.received[1]).toEqual({ type: 'message_ind', body: { user: 'u7', message: 'to all' } });
    expect(s.drops).toEqual([]);
  });
});
