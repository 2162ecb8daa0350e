/**
 * The tcp links (drivers/tcp.ts) over real sockets on 127.0.0.1: a listener and connectors, and
 * raw sockets that speak the documented wire format by hand (or break it on purpose).
 *
 * Nothing here asserts a duration: every wait is for an event or a counter, with a generous
 * deadline that only turns a hang into a failure.
 */
import { createHmac, randomBytes } from 'node:crypto';
import net, { type Server, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import {
  TcpConnectLink,
  TcpListenError,
  TcpListenLink,
  checkTcpListen,
  isLoopbackHost,
  type TcpConnectOptions,
  type TcpListenOptions,
} from '../drivers/tcp.js';
import { FrameTooLargeError, type Endpoint, type LinkState, type ReceivedFrame } from '../src/link/link.js';
import { freeTcpPort } from './free-ports.js';

const HOST = '127.0.0.1';
const TOKEN = 'correct horse battery staple';
const FAST_BACKOFF = { initialMs: 20, maxMs: 100 };
const DEADLINE_MS = 20_000;

// ---------------------------------------------------------------------------------------------
// Helpers

const cleanup: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanup.splice(0).reverse()) await c();
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Waits until `ready()` holds; the deadline only guards against a hang. */
async function until(ready: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + DEADLINE_MS;
  while (!ready()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

interface Watched<L extends TcpListenLink | TcpConnectLink> {
  link: L;
  frames: ReceivedFrame[];
  states: Array<[LinkState, string | undefined]>;
  logs: string[];
  /** Waits until `n` frames have arrived in all. */
  frameCount(n: number): Promise<void>;
  state(s: LinkState): Promise<void>;
}

function watch<L extends TcpListenLink | TcpConnectLink>(make: (log: (line: string) => void) => L): Watched<L> {
  const logs: string[] = [];
  const link = make((line) => logs.push(line));
  const w: Watched<L> = {
    link,
    frames: [],
    states: [],
    logs,
    frameCount: (n) => until(() => w.frames.length >= n, `${n} frames on ${link.name} (have ${w.frames.length})`),
    state: (s) => until(() => link.state === s, `${link.name} to be ${s} (is ${link.state})`),
  };
  link.on('frame', (f) => w.frames.push(f));
  link.on('state', (s, reason) => w.states.push([s, reason]));
  cleanup.push(() => link.close());
  return w;
}

async function listener(extra: Partial<TcpListenOptions> = {}): Promise<Watched<TcpListenLink>> {
  const port = extra.port ?? (await freeTcpPort());
  const w = watch((log) => new TcpListenLink({ name: 'tcpl0', host: HOST, port, log, ...extra }));
  await w.link.open();
  return w;
}

function connector(port: number, extra: Partial<TcpConnectOptions> = {}, name = 'tcp0'): Watched<TcpConnectLink> {
  return watch((log) => new TcpConnectLink({ name, host: HOST, port, backoff: FAST_BACKOFF, log, ...extra }));
}

function portOf(l: TcpListenLink): number {
  const a = l.address;
  if (!a) throw new Error(`${l.name} is not listening`);
  return a.port;
}

function bytes(n: number, seed: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = (i * 31 + seed * 7 + (i >> 8)) & 0xff;
  return out;
}

const text = (s: string): Uint8Array => new TextEncoder().encode(s);
const str = (b: Uint8Array): string => new TextDecoder().decode(b);

// --- the wire format, written independently of the driver, from its header comment ---

const MAGIC = Buffer.from('MGTCP1', 'ascii');
const T = { HELLO: 1, AUTH: 2, FRAME: 3, PING: 4, BYE: 5 };

function record(type: number, payload: Uint8Array): Buffer {
  const h = Buffer.alloc(5);
  h[0] = type;
  h.writeUInt32BE(payload.length, 1);
  return Buffer.concat([h, payload]);
}

function helloPayload(withToken: boolean, mtu = 4096): Buffer {
  const p = Buffer.alloc(21);
  p[0] = withToken ? 1 : 0;
  p.writeUInt32BE(mtu, 1);
  randomBytes(16).copy(p, 5);
  return p;
}

const hmac = (token: string, label: string, a: Uint8Array, b: Uint8Array): Buffer =>
  createHmac('sha256', Buffer.from(token, 'utf8')).update(label).update(a).update(b).digest();

/** A raw TCP client: keeps (up to 1 MiB of) what it receives and knows when it was closed. */
class Raw {
  received = Buffer.alloc(0);
  isClosed = false;
  readonly closed: Promise<void>;

  constructor(readonly socket: Socket) {
    socket.on('data', (d: Buffer) => {
      if (this.received.length < 1 << 20) this.received = Buffer.concat([this.received, d]);
    });
    socket.on('error', () => undefined);
    this.closed = new Promise((r) =>
      socket.once('close', () => {
        this.isClosed = true;
        r();
      }),
    );
    cleanup.push(() => void socket.destroy());
  }

  static async connect(port: number): Promise<Raw> {
    const socket = net.connect({ host: HOST, port });
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    return new Raw(socket);
  }

  write(b: Uint8Array): boolean {
    if (this.socket.destroyed) return false;
    return this.socket.write(b);
  }

  async waitFor(n: number): Promise<void> {
    await until(() => this.received.length >= n || this.isClosed, `${n} bytes from the peer`);
    if (this.received.length < n) throw new Error(`the peer closed after ${this.received.length} of ${n} bytes`);
  }

  /** The records after the magic, as far as they have arrived. */
  records(): Array<{ type: number; payload: Buffer }> {
    const out: Array<{ type: number; payload: Buffer }> = [];
    let i = MAGIC.length;
    while (i + 5 <= this.received.length) {
      const len = this.received.readUInt32BE(i + 1);
      if (i + 5 + len > this.received.length) break;
      out.push({ type: this.received[i]!, payload: this.received.subarray(i + 5, i + 5 + len) });
      i += 5 + len;
    }
    return out;
  }

  byeReason(): string | undefined {
    const bye = this.records().find((r) => r.type === T.BYE);
    return bye ? bye.payload.toString('utf8') : undefined;
  }

  /** Plays a correct connector's part of the handshake (with the token, if given). */
  async handshake(token?: string): Promise<void> {
    const own = helloPayload(token !== undefined);
    this.write(Buffer.concat([MAGIC, record(T.HELLO, own)]));
    await this.waitFor(MAGIC.length + 5 + 21);
    expect(this.received.subarray(0, 6).toString('ascii')).toBe('MGTCP1');
    const theirs = this.records()[0]!;
    expect(theirs.type).toBe(T.HELLO);
    if (token === undefined) return;
    this.write(record(T.AUTH, hmac(token, 'MGTCP1 auth C', own, theirs.payload)));
    await until(() => this.records().length >= 2 || this.isClosed, 'the listener AUTH');
    const auth = this.records()[1]!;
    expect(auth.type).toBe(T.AUTH);
    expect(auth.payload.equals(hmac(token, 'MGTCP1 auth L', theirs.payload, own))).toBe(true);
  }
}

// ---------------------------------------------------------------------------------------------

describe('checkTcpListen: beyond loopback a token is required', () => {
  it('throws for a non-loopback address without a token, naming the flag', () => {
    for (const host of ['0.0.0.0', '192.168.1.20', '10.0.0.1', '::', '[::]', '2001:db8::1', 'gateway.example.org']) {
      expect(() => checkTcpListen(host, undefined), host).toThrow(TcpListenError);
      expect(() => checkTcpListen(host, ''), `${host} with an empty token`).toThrow(/--tcp-token/);
    }
    expect(() => checkTcpListen('0.0.0.0', undefined, 4400)).toThrow(/^--tcp-listen 0\.0\.0\.0:4400 needs --tcp-token: anyone can connect to a TCP port/);
    expect(() => checkTcpListen('::', undefined, 4400)).toThrow(/--tcp-listen \[::\]:4400 needs --tcp-token/);
  });

  it('accepts loopback without a token, and anything with one', () => {
    for (const host of ['127.0.0.1', '127.3.2.1', '::1', '[::1]', 'localhost', 'LOCALHOST', '::ffff:127.0.0.1']) {
      expect(() => checkTcpListen(host, undefined), host).not.toThrow();
      expect(isLoopbackHost(host), host).toBe(true);
    }
    expect(() => checkTcpListen('0.0.0.0', TOKEN, 4400)).not.toThrow();
    expect(() => checkTcpListen('192.168.1.20', TOKEN)).not.toThrow();
  });

  it('the listener constructor refuses the same configurations', () => {
    expect(() => new TcpListenLink({ name: 'x', host: '0.0.0.0', port: 4400 })).toThrow(/--tcp-listen 0\.0\.0\.0:4400 needs --tcp-token/);
    expect(() => new TcpListenLink({ name: 'x', host: '0.0.0.0', port: 4400, token: TOKEN })).not.toThrow();
    expect(() => new TcpListenLink({ name: 'x', host: HOST, port: 4400, token: '' })).toThrow(RangeError);
    expect(() => new TcpConnectLink({ name: 'x', host: HOST, port: 0 })).toThrow(RangeError);
    expect(() => new TcpConnectLink({ name: 'x', host: HOST, port: 4400, mtu: 0 })).toThrow(RangeError);
  });
});

describe('tcp links on loopback', () => {
  it('carry frames of 0 B .. MTU intact both ways, with a token; `from` on the listener', async () => {
    const l = await listener({ token: TOKEN, port: 0 });
    expect(l.link.state).toBe('up');
    const port = portOf(l.link);
    expect(port).toBeGreaterThan(0);
    const c = connector(port, { token: TOKEN });
    await c.link.open();
    expect(c.link.state).toBe('up');
    await until(() => l.link.stats.peers === 1, 'the listener to count its peer');

    // What the daemon and the pacer see.
    for (const link of [l.link, c.link]) {
      expect(link.mtu).toBe(4096);
      expect(link.airtime.kind).toBe('rate-cap');
      expect(link.bitRate).toBe(8_000_000);
      expect(link.fullMesh).toBe(false);
      // 100 frames/s: a small frame costs 10 ms; 1 MB/s: 4096 bytes cost 4.096 ms, so 10 ms too.
      expect(link.airtime.airtimeMs(1)).toBe(10);
      expect(() => link.send(new Uint8Array(4097))).toThrow(FrameTooLargeError);
    }
    expect(c.link.kind).toBe('tcp-connect');
    expect(l.link.kind).toBe('tcp-listen');

    const sizes = [0, 1, 2, 255, 256, 1000, 4095, 4096];
    sizes.forEach((n, i) => c.link.send(bytes(n, i)));
    await l.frameCount(sizes.length);
    sizes.forEach((n, i) => {
      const f = l.frames[i]!;
      expect(f.data).toEqual(bytes(n, i));
      expect(f.from?.address).toBe(HOST);
      expect(f.from?.port).toBeGreaterThan(0);
      expect(f.from?.port).not.toBe(port);
    });
    expect(l.link.peerEndpoints()).toEqual([l.frames[0]!.from]);

    sizes.forEach((n, i) => l.link.send(bytes(n, 100 + i)));
    await c.frameCount(sizes.length);
    sizes.forEach((n, i) => expect(c.frames[i]!.data).toEqual(bytes(n, 100 + i)));
    expect(c.frames[0]!.from).toEqual({ address: HOST, port });

    const total = sizes.reduce((a, b) => a + b, 0);
    expect(c.link.counters).toMatchObject({ framesOut: sizes.length, bytesOut: total, framesIn: sizes.length, bytesIn: total, decodeErrors: 0 });
    expect(l.link.counters).toMatchObject({ framesOut: sizes.length, bytesOut: total, framesIn: sizes.length, bytesIn: total, decodeErrors: 0 });
    expect(l.link.stats.authFailures).toBe(0);
  });

  it('a listener with two connectors: `to` reaches one peer, a broadcast both', async () => {
    const l = await listener({ token: TOKEN });
    const port = portOf(l.link);
    const a = connector(port, { token: TOKEN }, 'tcpA');
    const b = connector(port, { token: TOKEN }, 'tcpB');
    await Promise.all([a.link.open(), b.link.open()]);
    a.link.send(text('from a'));
    b.link.send(text('from b'));
    await l.frameCount(2);
    const fromOf = (s: string): Endpoint => l.frames.find((f) => str(f.data) === s)!.from!;
    const atA = fromOf('from a');
    const atB = fromOf('from b');
    expect(atA.port).not.toBe(atB.port);
    expect(l.link.stats.peers).toBe(2);

    l.link.send(text('only a'), { to: atA });
    l.link.send(text('only b'), { to: atB });
    l.link.send(text('everyone'));
    await a.frameCount(2);
    await b.frameCount(2);
    // One TCP stream per peer keeps order: had a unicast gone astray it would come before 'everyone'.
    expect(a.frames.map((f) => str(f.data))).toEqual(['only a', 'everyone']);
    expect(b.frames.map((f) => str(f.data))).toEqual(['only b', 'everyone']);

    l.link.send(text('nobody'), { to: { address: HOST, port: 1 } });
    expect(l.link.counters.drops['no-such-peer']).toBe(1);
  });

  it('refuses a wrong token, a missing token and frames before auth; the good peer is served throughout', async () => {
    const l = await listener({ token: TOKEN });
    const port = portOf(l.link);
    const good = connector(port, { token: TOKEN }, 'good');
    await good.link.open();
    expect(good.link.state).toBe('up');

    // A wrong token: the listener checks the connector's proof and says why it closes.
    const wrong = connector(port, { token: 'not the right token at all' }, 'wrong');
    await wrong.link.open();
    expect(wrong.link.state).toBe('reconnecting');
    await until(() => wrong.link.stats.connects >= 3, 'the wrong-token connector to retry');
    expect(wrong.states[1]).toEqual(['reconnecting', expect.stringMatching(/wrong token/)]);
    expect(wrong.states.filter(([s]) => s === 'up')).toEqual([]);
    wrong.link.send(text('must never arrive'));

    // No token where the listener wants one: both ends see it in the HELLO flags.
    const none = connector(port, {}, 'none');
    await none.link.open();
    expect(none.link.state).toBe('reconnecting');
    expect(none.states[1]![1]).toMatch(/requires a token and none is configured here \(--tcp-token\)/);
    none.link.send(text('must never arrive either'));

    // Raw: a FRAME record straight after the HELLO, before any AUTH.
    const early = await Raw.connect(port);
    early.write(Buffer.concat([MAGIC, record(T.HELLO, helloPayload(true)), record(T.FRAME, text('sneaked in'))]));
    await early.closed;
    expect(early.byeReason()).toBe('unexpected FRAME');

    // Raw: a bad proof of the right length.
    const forger = await Raw.connect(port);
    forger.write(Buffer.concat([MAGIC, record(T.HELLO, helloPayload(true)), record(T.AUTH, randomBytes(32)), record(T.FRAME, text('forged'))]));
    await forger.closed;
    expect(forger.byeReason()).toBe('wrong token');
    // The listener never proved itself to the forger: only its HELLO and the BYE came back.
    expect(forger.records().map((r) => r.type)).toEqual([T.HELLO, T.BYE]);

    // A correct raw handshake (the documented HMACs) is accepted: the format is as written.
    const honest = await Raw.connect(port);
    await honest.handshake(TOKEN);
    honest.write(record(T.FRAME, text('raw but honest')));
    await until(() => l.frames.some((f) => str(f.data) === 'raw but honest'), 'the honest raw frame');

    // The good peer still works both ways.
    good.link.send(text('still here'));
    l.link.send(text('and you'));
    await until(() => l.frames.some((f) => str(f.data) === 'still here'), "the good peer's frame");
    await until(() => good.frames.some((f) => str(f.data) === 'and you'), "the listener's frame");
    expect(good.link.state).toBe('up');
    expect(l.link.state).toBe('up');

    expect(l.frames.map((f) => str(f.data)).sort()).toEqual(['raw but honest', 'still here']);
    await until(() => l.link.stats.authFailures >= 3 + 1 + 1, 'the refusals to be counted'); // wrong ×3+, none, forger
    expect(l.link.stats.protocolErrors).toBe(1); // the early FRAME
    expect(l.link.counters.decodeErrors).toBe(1);
    // Refusals from one address are logged once a minute, however often it tries.
    expect(l.logs.filter((line) => / refused: /.test(line))).toHaveLength(1);
    // The refused connectors log their reason when it changes, not per retry.
    expect(wrong.logs.filter((line) => /wrong token/.test(line))).toHaveLength(1);
  });

  it('a token on the connector only is refused by both ends', async () => {
    const l = await listener();
    const c = connector(portOf(l.link), { token: TOKEN });
    await c.link.open();
    expect(c.link.state).toBe('reconnecting');
    expect(c.states[1]![1]).toMatch(/the peer has no token and this end requires one/);
    await until(() => l.link.stats.authFailures >= 1, 'the listener to count it');
    expect(l.link.stats.peers).toBe(0);
  });

  it('reconnects after the listener restarts on the same port; queued frames (within the cap) arrive', async () => {
    const port = await freeTcpPort();
    const first = await listener({ port });
    const c = connector(port, { queueCap: 8 });
    await c.link.open();
    expect(c.link.state).toBe('up');
    await until(() => first.link.stats.peers === 1, 'the first listener to count its peer');

    await first.link.close();
    await c.state('reconnecting');
    await until(() => c.link.stats.connectFailures >= 3, 'several failed attempts');
    for (let i = 0; i < 10; i++) c.link.send(text(`queued ${i}`));
    expect(c.link.counters.drops['queue-full']).toBe(2);

    const second = await listener({ port });
    expect(second.link.state).toBe('up');
    await c.state('up');
    await second.frameCount(8);
    expect(second.frames.map((f) => str(f.data))).toEqual([2, 3, 4, 5, 6, 7, 8, 9].map((i) => `queued ${i}`));

    expect(c.states.map(([s]) => s)).toEqual(['opening', 'up', 'reconnecting', 'up']);
    expect(c.link.counters.reconnects).toBe(1);
    // One line on going 'reconnecting' (the listener said goodbye), one when the reason changed
    // (connection refused), none for the repeats.
    const lines = c.logs.filter((line) => /reconnecting/.test(line));
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatch(/tcp0: reconnecting \(127\.0\.0\.1:\d+: closed by the peer: closing\)/);
    expect(lines[1]).toMatch(/tcp0: still reconnecting \(cannot connect to 127\.0\.0\.1:\d+: connection refused\)/);
  });

  it('disconnects a peer that sends random bytes, an HTTP request, or an oversize length; the link stays up', async () => {
    const l = await listener();
    const port = portOf(l.link);
    const good = connector(port);
    await good.link.open();

    const noise = await Raw.connect(port);
    const junk = randomBytes(4096);
    junk[0] = 0x00; // not the magic's first byte
    noise.write(junk);
    await noise.closed;
    expect(noise.byeReason()).toBe('bad magic: expected "MGTCP1"');

    const http = await Raw.connect(port);
    http.write(Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'));
    await http.closed;
    expect(http.byeReason()).toBe('bad magic: expected "MGTCP1"');
    // One line for both: refusals from one address are logged once a minute.
    await until(() => l.logs.some((line) => / refused: /.test(line)), 'the log line');
    expect(l.logs.filter((line) => / refused: /.test(line))).toEqual([
      expect.stringMatching(/^tcpl0: peer 127\.0\.0\.1:\d+ refused: not a meshgw tcp peer: expected "MGTCP1", got 00 [0-9a-f]{2} /),
    ]);

    // A length of 4 GiB after a correct HELLO: dropped when the header is read. The raw peer keeps
    // writing; the listener closes long before the declared payload could have been buffered.
    const huge = await Raw.connect(port);
    await huge.handshake();
    huge.write(Buffer.from([T.FRAME, 0xff, 0xff, 0xff, 0xff]));
    const chunk = Buffer.alloc(64 * 1024, 0x55);
    let written = 0;
    while (!huge.isClosed && written < 256 * 1024 * 1024) {
      if (!huge.write(chunk)) await Promise.race([new Promise((r) => huge.socket.once('drain', r)), huge.closed]);
      written += chunk.length;
    }
    await huge.closed;
    expect(written).toBeLessThan(256 * 1024 * 1024);
    expect(huge.byeReason()).toBe('FRAME of 4294967295 bytes exceeds the MTU of 4096 bytes');

    // An unknown record type after the handshake.
    const odd = await Raw.connect(port);
    await odd.handshake();
    odd.write(record(0x7e, text('??')));
    await odd.closed;
    expect(odd.byeReason()).toBe('unknown record type');

    expect(l.link.stats.protocolErrors).toBe(4);
    expect(l.link.counters.decodeErrors).toBe(4);
    expect(l.link.state).toBe('up');
    expect(l.link.stats.peers).toBe(1);
    good.link.send(text('unharmed'));
    await until(() => l.frames.some((f) => str(f.data) === 'unharmed'), "the good peer's frame");
    expect(l.frames.map((f) => str(f.data))).toEqual(['unharmed']);
  });

  it('drops a peer that says nothing, and one that goes silent after its handshake (half-open); keep-alives hold the good peer', async () => {
    // Short, but far from what a loaded machine could confuse: the good peer PINGs every 50 ms
    // and is dropped only after 1.5 s without a byte.
    const timing = { handshakeTimeoutMs: 2_000, keepaliveMs: 50, idleTimeoutMs: 1_500 };
    const l = await listener(timing);
    const port = portOf(l.link);
    const good = connector(port, { keepaliveMs: 50, idleTimeoutMs: 5_000 });
    await good.link.open();

    const mute = await Raw.connect(port);
    await mute.closed;
    expect(mute.byeReason()).toBe('handshake timeout');
    expect(l.link.stats.handshakeTimeouts).toBe(1);

    const frozen = await Raw.connect(port);
    await frozen.handshake();
    await until(() => l.link.stats.peers === 2, 'the frozen peer to be up');
    await frozen.closed;
    expect(frozen.byeReason()).toBe('idle timeout');
    expect(frozen.records().some((r) => r.type === T.PING)).toBe(true);
    expect(l.link.stats.idleTimeouts).toBe(1);

    // The good connector's PINGs kept it connected through all of that.
    expect(good.link.state).toBe('up');
    expect(good.states.map(([s]) => s)).toEqual(['opening', 'up']);
    expect(l.link.stats.peers).toBe(1);
    good.link.send(text('alive'));
    await until(() => l.frames.some((f) => str(f.data) === 'alive'), "the good peer's frame");
  });

  it('drops a peer that does not read once its output passes the cap (slow-peer)', async () => {
    const l = await listener({ maxPeerPendingBytes: 64 * 1024 });
    const port = portOf(l.link);
    const good = connector(port);
    await good.link.open();
    const sloth = await Raw.connect(port);
    await sloth.handshake();
    await until(() => l.link.stats.peers === 2, 'both peers up');
    sloth.socket.pause(); // reads nothing more: the kernel buffers fill, then the link's

    const to = l.link.peerEndpoints().find((e) => e.port === sloth.socket.localPort)!;
    expect(to).toBeDefined();
    const frame = bytes(4096, 1);
    let sent = 0;
    while (l.link.stats.slowPeers === 0 && sent < 100_000) {
      l.link.send(frame, { to });
      if (++sent % 64 === 0) await new Promise((r) => setImmediate(r));
    }
    expect(l.link.stats.slowPeers).toBe(1);
    expect(l.link.counters.drops['slow-peer']).toBe(1);
    expect(l.link.state).toBe('up');
    await until(() => l.link.stats.peers === 1, 'the slow peer to be gone');
    expect(good.link.state).toBe('up');
  });

  it('a connector that reaches something else (an SSH server) reconnects with the reason', async () => {
    const port = await freeTcpPort();
    const sshish: Server = net.createServer((s) => {
      s.on('error', () => undefined);
      s.resume(); // reads (and ignores) what comes, so it sees the connector hang up
      s.write('SSH-2.0-OpenSSH_9.6\r\n');
    });
    await new Promise<void>((r) => sshish.listen(port, HOST, r));
    cleanup.push(() => new Promise<void>((r) => sshish.close(() => r())));
    const c = connector(port);
    await c.link.open();
    expect(c.link.state).toBe('reconnecting');
    expect(c.states[1]![1]).toMatch(/not a meshgw tcp peer: expected "MGTCP1", got "SSH-2.0-"/);
    expect(c.link.stats.protocolErrors).toBeGreaterThanOrEqual(1);
  });

  it('a port in use: the listener stays down with "cannot bind", and listens once the port is free', async () => {
    const port = await freeTcpPort();
    const holder = net.createServer();
    await new Promise<void>((r) => holder.listen(port, HOST, r));
    let holderOpen = true;
    cleanup.push(() => (holderOpen ? new Promise<void>((r) => holder.close(() => r())) : undefined));

    const l = watch((log) => new TcpListenLink({ name: 'tcpl0', host: HOST, port, backoff: FAST_BACKOFF, log }));
    await l.link.open();
    expect(l.link.state).toBe('down');
    expect(l.states[1]).toEqual(['down', `cannot bind 127.0.0.1:${port}: address in use`]);
    expect(l.link.address).toBeUndefined();
    l.link.send(text('waits')); // no crash while down

    await until(() => l.link.stats.bindFailures >= 4, 'a few more attempts'); // all in use: no new log lines
    expect(l.logs.filter((line) => /cannot bind/.test(line))).toHaveLength(1);

    await new Promise<void>((r) => holder.close(() => r()));
    holderOpen = false;
    await l.state('up');
    expect(l.link.address).toEqual({ host: HOST, port });
  });
});
