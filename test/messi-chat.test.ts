/**
 * The generated chat client and server, end to end: chat.proto (Messi's own example protocol)
 * is generated into a temp dir, compiled there with tsc against the built runtime
 * (`meshgw/messi` through a node_modules symlink to this package; `npm test` builds dist/
 * first), imported, and run over real TCP on 127.0.0.1 in both wire versions: a plain
 * exchange with reconnect, 100 clients at once on one server, and misbehaving raw sockets
 * (oversize size field, garbage, one that never reads) that are dropped while the others
 * keep exchanging. Everything waits on events; nothing sleeps.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { generateMessi } from '../src/messi/generate.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const tsc = join(root, 'node_modules/typescript/bin/tsc');

type Version = 'seed' | 'current';
interface Handle {
  readonly id: number;
  readonly version: Version | undefined;
}
interface ConnectReq {
  user: string;
}
interface MessageInd {
  user: string;
  text: string;
}
/** The part of the generated ChatServer these tests use. */
interface ChatServer {
  onClientConnected: (client: Handle) => void;
  onClientDisconnected: (client: Handle, reason: string) => void;
  onConnectReq: (client: Handle, message: ConnectReq) => void;
  onMessageInd: (client: Handle, message: MessageInd) => void;
  start(): Promise<{ port: number; host: string }>;
  stop(): Promise<void>;
  readonly clients: Handle[];
  broadcastMessageInd(message?: Partial<MessageInd>): void;
  sendMessageInd(client: Handle, message?: Partial<MessageInd>): boolean;
  replyConnectRsp(): boolean;
  disconnect(client: Handle, reason?: string): void;
}
interface ChatClient {
  onConnected: () => void;
  onDisconnected: (reason: string) => void;
  onConnectRsp: (message: Record<string, never>) => void;
  onMessageInd: (message: MessageInd) => void;
  readonly connected: boolean;
  start(): void;
  stop(): Promise<void>;
  sendConnectReq(message?: Partial<ConnectReq>): boolean;
  sendMessageInd(message?: Partial<MessageInd>): boolean;
}
interface ServerOptions {
  port: number;
  host?: string;
  maxOutputBytes?: number;
  log?: (line: string) => void;
}
interface ClientOptions {
  host: string;
  port: number;
  version?: Version;
  reconnectMs?: number;
  log?: (line: string) => void;
}

let dir = '';
let ChatServerClass: new (options: ServerOptions) => ChatServer;
let ChatClientClass: new (options: ClientOptions) => ChatClient;
let types: {
  MyTypesServer: new (options: ServerOptions) => {
    onAllScalars: (client: Handle, m: Record<string, unknown>) => void;
    onPing: (client: Handle, m: Record<string, unknown>) => void;
    start(): Promise<{ port: number }>;
    stop(): Promise<void>;
    replyComposite(m: Record<string, unknown>): boolean;
    replyPong(): boolean;
  };
  MyTypesClient: new (options: ClientOptions) => {
    onConnected: () => void;
    onComposite: (m: Record<string, any>) => void;
    onPong: (m: Record<string, unknown>) => void;
    start(): void;
    stop(): Promise<void>;
    sendAllScalars(m: Record<string, unknown>): boolean;
    sendPing(): boolean;
  };
};

beforeAll(async () => {
  expect(existsSync(join(root, 'dist/src/messi/index.js')), 'dist/ is not built: run npx tsc -p tsconfig.json').toBe(true);
  dir = mkdtempSync(join(tmpdir(), 'messi-chat-'));
  mkdirSync(join(dir, 'node_modules'));
  symlinkSync(root, join(dir, 'node_modules/meshgw'), 'dir');
  writeFileSync(join(dir, 'package.json'), '{ "type": "module" }\n');
  const g = generateMessi(readFileSync(join(root, 'test/fixtures/messi/chat.proto'), 'utf8'), { file: 'chat.proto' });
  const t = generateMessi(readFileSync(join(root, 'test/fixtures/messi/types.proto'), 'utf8'), { file: 'types.proto' });
  const files = [...g.files, ...t.files];
  for (const f of files) writeFileSync(join(dir, f.name), f.text);
  const flags = ['--strict', '--module', 'nodenext', '--moduleResolution', 'nodenext', '--target', 'es2022', '--types', 'node'];
  const r = spawnSync(process.execPath, [tsc, ...flags, '--typeRoots', join(root, 'node_modules/@types'), '--outDir', 'out', ...files.map((f) => f.name)], {
    cwd: dir,
    encoding: 'utf8',
  });
  expect(r.stdout + r.stderr, 'tsc output').toBe('');
  expect(r.status).toBe(0);
  const server = (await import(/* @vite-ignore */ pathToFileURL(join(dir, 'out/chat-server.js')).href)) as { ChatServer: typeof ChatServerClass };
  const client = (await import(/* @vite-ignore */ pathToFileURL(join(dir, 'out/chat-client.js')).href)) as { ChatClient: typeof ChatClientClass };
  ChatServerClass = server.ChatServer;
  ChatClientClass = client.ChatClient;
  types = {
    ...((await import(/* @vite-ignore */ pathToFileURL(join(dir, 'out/my_types-server.js')).href)) as Pick<typeof types, 'MyTypesServer'>),
    ...((await import(/* @vite-ignore */ pathToFileURL(join(dir, 'out/my_types-client.js')).href)) as Pick<typeof types, 'MyTypesClient'>),
  };
}, 60_000);

afterAll(() => {
  if (dir !== '') rmSync(dir, { recursive: true, force: true });
});

/** Something happened: every waiter re-checks its condition. */
const changes = new EventEmitter();
changes.setMaxListeners(0);
const changed = (): void => {
  changes.emit('change');
};

/** Resolves once `cond()` holds, re-checked on every change; fails after `ms` with `what`. */
function until(what: string | (() => string), cond: () => boolean, ms = 10_000): Promise<void> {
  if (cond()) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const check = (): void => {
      if (!cond()) return;
      clearTimeout(timer);
      changes.off('change', check);
      resolve();
    };
    const timer = setTimeout(() => {
      changes.off('change', check);
      reject(new Error(`timed out waiting for ${typeof what === 'string' ? what : what()}`));
    }, ms);
    changes.on('change', check);
  });
}

interface ServerState {
  server: ChatServer;
  port: number;
  connected: Handle[];
  disconnected: { client: Handle; reason: string }[];
  requests: { client: Handle; user: string }[];
  byUser: Map<string, Handle>;
  log: string[];
}

/** A chat server: answers connect_req, broadcasts every message_ind. */
async function chatServer(options: Partial<ServerOptions> = {}): Promise<ServerState> {
  const log: string[] = [];
  const server = new ChatServerClass({ port: 0, host: '127.0.0.1', log: (l) => log.push(l), ...options });
  const s: ServerState = { server, port: 0, connected: [], disconnected: [], requests: [], byUser: new Map(), log };
  server.onClientConnected = (client) => {
    s.connected.push(client);
    changed();
  };
  server.onClientDisconnected = (client, reason) => {
    s.disconnected.push({ client, reason });
    changed();
  };
  server.onConnectReq = (client, req) => {
    s.requests.push({ client, user: req.user });
    s.byUser.set(req.user, client);
    server.replyConnectRsp();
    changed();
  };
  server.onMessageInd = (_client, ind) => {
    server.broadcastMessageInd(ind);
  };
  s.port = (await server.start()).port;
  return s;
}

interface ClientState {
  client: ChatClient;
  user: string;
  connects: number;
  disconnects: string[];
  rsps: number;
  inds: MessageInd[];
  indCount: number;
}

/** A chat client that sends connect_req on every connect. */
function chatClient(port: number, user: string, version: Version, keepInds = true): ClientState {
  const client = new ChatClientClass({ host: '127.0.0.1', port, version, reconnectMs: 50 });
  const c: ClientState = { client, user, connects: 0, disconnects: [], rsps: 0, inds: [], indCount: 0 };
  client.onConnected = () => {
    c.connects++;
    client.sendConnectReq({ user });
    changed();
  };
  client.onDisconnected = (reason) => {
    c.disconnects.push(reason);
    changed();
  };
  client.onConnectRsp = () => {
    c.rsps++;
    changed();
  };
  client.onMessageInd = (m) => {
    c.indCount++;
    if (keepInds) c.inds.push(m);
    changed();
  };
  client.start();
  return c;
}

describe.each(['seed', 'current'] as const)('generated chat client and server, %s wire version', (version) => {
  it('connect, connect_req → reply connect_rsp, message_ind broadcast, reconnect after disconnect', async () => {
    const s = await chatServer();
    const a = chatClient(s.port, 'ann', version);
    const b = chatClient(s.port, 'bob', version);
    try {
      await until('both connect_rsp', () => a.rsps === 1 && b.rsps === 1);
      expect(s.requests.map((r) => r.user).sort()).toEqual(['ann', 'bob']);
      expect(s.requests.map((r) => r.client.version)).toEqual([version, version]);
      expect(a.client.connected).toBe(true);

      expect(a.client.sendMessageInd({ user: 'ann', text: 'hello, wörld' })).toBe(true);
      await until('the broadcast at both', () => a.inds.length === 1 && b.inds.length === 1);
      expect(a.inds[0]).toEqual({ user: 'ann', text: 'hello, wörld' });
      expect(b.inds[0]).toEqual({ user: 'ann', text: 'hello, wörld' });

      // Default-valued fields travel as defaults: an empty text is still a string.
      b.client.sendMessageInd({ user: 'bob' });
      await until('the second broadcast', () => a.inds.length === 2 && b.inds.length === 2);
      expect(a.inds[1]).toEqual({ user: 'bob', text: '' });

      // The server drops ann; the client reconnects on its own and says connect_req again.
      s.server.disconnect(s.byUser.get('ann')!);
      await until('ann disconnected and back', () => a.disconnects.length === 1 && a.rsps === 2);
      expect(a.connects).toBe(2);
      expect(b.disconnects).toEqual([]);
      expect(s.requests.filter((r) => r.user === 'ann')).toHaveLength(2);
    } finally {
      await Promise.all([a.client.stop(), b.client.stop()]);
      await s.server.stop();
    }
  });
});

describe('generated code for every field kind (types.proto)', () => {
  it('values arrive with the types the generated interfaces declare', async () => {
    const got: { scalars?: Record<string, unknown>; composite?: Record<string, any>; pings: number; pongs: number } = { pings: 0, pongs: 0 };
    const server = new types.MyTypesServer({ port: 0, host: '127.0.0.1' });
    server.onAllScalars = (_c, m) => {
      got.scalars = m;
      server.replyComposite({
        origin: { x: 1, y: -2 },
        points: [{ x: 3, y: 4 }, { x: 0, y: 0 }],
        tags: ['a', 'b'],
        counts: { one: 1 },
        by_id: { '7': { x: 7, y: 7 } },
        shape: 1,
        label: 'lbl',
        child: { tags: ['kid'] },
      });
      changed();
    };
    server.onPing = () => {
      got.pings++;
      server.replyPong();
      changed();
    };
    const { port } = await server.start();
    const client = new types.MyTypesClient({ host: '127.0.0.1', port, version: 'current' });
    client.onConnected = () => {
      client.sendPing();
      client.sendAllScalars({ d: 0.5, f: 1.5, i32: -1, u32: 4_000_000_000, s32: -5, f32: 6, sf32: -7, i64: -(2 ** 40), u64: 2 ** 50, s64: -9, f64: 10, sf64: -11, b: true, s: 'ß', data: Uint8Array.from([0, 255]), color: 2 });
    };
    client.onComposite = (m) => {
      got.composite = m;
      changed();
    };
    client.onPong = () => {
      got.pongs++;
      changed();
    };
    client.start();
    try {
      await until('the scalars, the composite and a pong', () => got.scalars !== undefined && got.composite !== undefined && got.pongs === 1);
      const { data, ...scalars } = got.scalars!;
      expect(scalars).toEqual({ d: 0.5, f: 1.5, i32: -1, u32: 4_000_000_000, s32: -5, f32: 6, sf32: -7, i64: -(2 ** 40), u64: 2 ** 50, s64: -9, f64: 10, sf64: -11, b: true, s: 'ß', color: 2 });
      expect(data).toBeInstanceOf(Uint8Array);
      expect([...(data as Uint8Array)]).toEqual([0, 255]);
      const c = got.composite!;
      expect(c.origin).toEqual({ x: 1, y: -2 });
      expect(c.points).toEqual([{ x: 3, y: 4 }, { x: 0, y: 0 }]);
      expect(c.tags).toEqual(['a', 'b']);
      expect(c.counts).toEqual({ one: 1 });
      expect(c.by_id).toEqual({ '7': { x: 7, y: 7 } });
      expect(c.shape).toBe(1);
      expect(c.label).toBe('lbl');
      expect(c.number).toBeUndefined(); // the other oneof member: absent
      expect(c.note).toBeUndefined(); // proto3 optional, unset: absent
      expect(c.child.tags).toEqual(['kid']);
      expect(c.child.origin ?? null).toBeNull(); // unset message field: null (or absent)
      expect(got.pings).toBe(1);
    } finally {
      await client.stop();
      await server.stop();
    }
  });
});

describe('generated chat server with many clients', () => {
  it('100 clients at once (half seed, half current): everyone gets every message', async () => {
    const s = await chatServer();
    const n = 100;
    const clients = Array.from({ length: n }, (_, i) => chatClient(s.port, `u${i}`, i % 2 === 0 ? 'seed' : 'current'));
    try {
      await until(() => `all connect_rsp (${clients.filter((c) => c.rsps > 0).length}/${n})`, () => clients.every((c) => c.rsps === 1));
      expect(s.server.clients).toHaveLength(n);
      const versions = s.requests.map((r) => r.client.version);
      expect(versions.filter((v) => v === 'seed')).toHaveLength(n / 2);
      expect(versions.filter((v) => v === 'current')).toHaveLength(n / 2);

      for (const c of clients) c.client.sendMessageInd({ user: c.user, text: `hi from ${c.user}` });
      await until(
        () => `every broadcast everywhere (${clients.reduce((k, c) => k + c.inds.length, 0)}/${n * n})`,
        () => clients.every((c) => c.inds.length === n),
      );
      for (const c of clients) {
        expect(new Set(c.inds.map((m) => m.user)).size).toBe(n);
        for (const m of c.inds) expect(m.text).toBe(`hi from ${m.user}`);
      }
      expect(s.disconnected).toEqual([]);
      expect(clients.every((c) => c.disconnects.length === 0)).toBe(true);
    } finally {
      await Promise.all(clients.map((c) => c.client.stop()));
      await s.server.stop();
    }
  });
});

/** A current-version frame from a client: u8 type (1 message, 3 ping), u24 size. */
function currentFrame(type: number, payload: Uint8Array = new Uint8Array(0)): Buffer {
  const h = Buffer.from([type, (payload.length >> 16) & 0xff, (payload.length >> 8) & 0xff, payload.length & 0xff]);
  return Buffer.concat([h, payload]);
}

/** The ClientToServer protobuf of connect_req { user }. */
function connectReqBytes(user: string): Uint8Array {
  const u = Buffer.from(user, 'utf8');
  const inner = Buffer.concat([Buffer.from([0x0a, u.length]), u]);
  return Buffer.concat([Buffer.from([0x0a, inner.length]), inner]);
}

interface Raw {
  socket: net.Socket;
  closed: boolean;
}

function raw(port: number, first: Buffer | undefined, paused = false): Promise<Raw> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    const r: Raw = { socket, closed: false };
    socket.on('error', () => {});
    socket.on('close', () => {
      r.closed = true;
      changed();
    });
    if (paused) socket.pause();
    else socket.on('data', () => {});
    socket.once('connect', () => {
      if (first) socket.write(first);
      resolve(r);
    });
    socket.once('error', reject);
  });
}

describe('generated chat server with misbehaving clients', () => {
  it('drops an oversize frame, garbage and a client that never reads; the others keep exchanging', async () => {
    const s = await chatServer({ maxOutputBytes: 256 * 1024 });
    const good = [chatClient(s.port, 'g0', 'seed', false), chatClient(s.port, 'g1', 'current', false), chatClient(s.port, 'g2', 'current', false)];
    const lazy = await raw(s.port, currentFrame(1, connectReqBytes('lazy')), true);
    const ping = setInterval(() => lazy.socket.write(currentFrame(3)), 500);
    try {
      await until('the good clients and lazy connected', () => good.every((c) => c.rsps === 1) && s.byUser.has('lazy'));

      const bad = await Promise.all([
        raw(s.port, Buffer.from([0x01, 0xff, 0xff, 0xff])), // current: 16 MiB size field
        raw(s.port, Buffer.from([0, 0, 0, 1, 0x7f, 0xff, 0xff, 0xff])), // seed: 2 GiB size field
        raw(s.port, Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n')), // garbage (read as type 'G', size 4.5 MiB)
        raw(s.port, Buffer.from([0x7f, 0, 0, 1, 0])), // garbage: no such frame type
        raw(s.port, currentFrame(1, Uint8Array.from([0xff, 0xff, 0xff, 0xff]))), // a frame of garbage protobuf
      ]);
      await until(() => `the server to close all garbage sockets (${bad.filter((b) => b.closed).length}/${bad.length})`, () => bad.every((b) => b.closed));

      // Broadcast in bursts (yielding to the event loop in between, so readers drain) until lazy is dropped.
      const text = 'x'.repeat(4000);
      let sent = 0;
      const lazyHandle = s.byUser.get('lazy')!;
      const lazyGone = (): boolean => s.disconnected.some((d) => d.client.id === lazyHandle.id);
      while (!lazyGone()) {
        if (sent > 200_000) throw new Error(`lazy not dropped after ${sent} broadcasts`);
        for (let i = 0; i < 16; i++) s.server.broadcastMessageInd({ user: 'srv', text });
        sent += 16;
        await until(`the good clients to read burst ${sent / 16}`, () => good.every((c) => c.indCount >= sent - 64));
      }
      const lazyReason = s.disconnected.find((d) => d.client.id === lazyHandle.id)!.reason;
      expect(lazyReason).toBe('slow-reader');
      await until('lazy socket closed', () => lazy.closed);

      // The good ones got every broadcast, and keep exchanging.
      await until('the good clients to read every broadcast', () => good.every((c) => c.indCount === sent));
      for (const c of good) c.client.sendMessageInd({ user: c.user, text: 'still here' });
      await until('the good clients to hear each other', () => good.every((c) => c.indCount === sent + good.length));
      for (const c of good) c.client.sendConnectReq({ user: c.user });
      await until('a second connect_rsp each', () => good.every((c) => c.rsps === 2));

      expect(good.map((c) => c.disconnects)).toEqual([[], [], []]);
      const goodIds = new Set(good.map((c) => s.byUser.get(c.user)!.id));
      expect(s.disconnected.filter((d) => goodIds.has(d.client.id))).toEqual([]);
      expect(s.disconnected).toHaveLength(bad.length + 1);
      expect(s.log.length).toBeGreaterThanOrEqual(bad.length + 1);
      expect(s.server.clients.map((c) => c.id).sort()).toEqual([...goodIds].sort());
      // Every drop is logged with its reason.
      for (const d of s.disconnected) expect(d.reason).not.toBe('');
    } finally {
      clearInterval(ping);
      lazy.socket.destroy();
      await Promise.all(good.map((c) => c.client.stop()));
      await s.server.stop();
    }
  });
});
