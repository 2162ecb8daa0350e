/**
 * The MQTT link (drivers/mqtt.ts) against a real Mosquitto broker started by the test
 * (test/mosquitto.ts): frames between two links, the retained status and the will, broker loss
 * and the bounded queue, wrong credentials, TLS, a rogue client, and the URL parser.
 *
 * No timing is asserted: every wait is on an event or a condition, with a generous deadline
 * that only guards against a hang. Reconnect backoff is shortened (50–200 ms) so that retries
 * happen quickly; nothing depends on how quickly.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync, mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as mqttConnect, type IClientOptions, type MqttClient } from 'mqtt';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { MqttLink, MqttUrlError, parseMqttUrl, type MqttLinkOptions } from '../drivers/mqtt.js';
import { FrameTooLargeError, type ReceivedFrame } from '../src/link/link.js';
import { sidHex, sidShort } from '../src/mesh/identity.js';
import { freeTcpPort } from './free-ports.js';
import { makeTestCertificates, startMosquitto, type Mosquitto } from '../bench/mosquitto.js';

const FAST_BACKOFF = { initialMs: 50, maxMs: 200 };
const DEADLINE_MS = 20_000;

/** Polls a condition; the deadline only turns a hang into a failure with a message. */
async function waitFor(condition: () => boolean, what: string, timeoutMs = DEADLINE_MS): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** A SID whose short form starts with the byte `n` (distinct short ids per test link). */
function sidFor(n: number): Uint8Array {
  const sid = randomBytes(32);
  sid[0] = n;
  return new Uint8Array(sid);
}

interface TestLink {
  link: MqttLink;
  frames: ReceivedFrame[];
  logs: string[];
  states: { state: string; reason: string | undefined }[];
}

/** Everything a test opened, closed after each test whatever happened. */
const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function makeLink(options: Partial<MqttLinkOptions> & { url: string; sid: Uint8Array }): TestLink {
  const logs: string[] = [];
  const frames: ReceivedFrame[] = [];
  const states: { state: string; reason: string | undefined }[] = [];
  const link = new MqttLink({ name: 'mqtt0', backoff: FAST_BACKOFF, log: (l) => void (logs.push(l), process.env.MQTT_TEST_LOG && console.log(l)), ...options });
  link.on('frame', (f) => frames.push(f));
  link.on('state', (state, reason) => states.push({ state, reason }));
  cleanups.push(() => link.close());
  return { link, frames, logs, states };
}

async function openUp(t: TestLink): Promise<void> {
  await t.link.open();
  await waitFor(() => t.link.state === 'up', `${t.link.name} up (last error: ${t.link.stats.lastError ?? '-'})`);
}

interface Observed {
  topic: string;
  payload: Buffer;
  retain: boolean;
}

/** A plain MQTT.js client subscribed to `filter`, collecting what it hears. */
async function observe(url: string, filter: string | undefined, options: IClientOptions = {}): Promise<{ client: MqttClient; messages: Observed[] }> {
  const client = mqttConnect(url, { reconnectPeriod: 0, clientId: `observer-${randomBytes(4).toString('hex')}`, ...options });
  client.on('error', () => undefined);
  cleanups.push(() => new Promise<void>((r) => client.end(true, () => r())));
  const messages: Observed[] = [];
  client.on('message', (topic, payload, packet) => messages.push({ topic, payload, retain: packet.retain }));
  await new Promise<void>((resolve, reject) => {
    client.once('connect', () => resolve());
    client.once('error', reject);
  });
  if (filter !== undefined) await client.subscribeAsync(filter, { qos: 0 });
  return { client, messages };
}

/**
 * A TCP relay between a link and the broker: `block()` cuts every connection abruptly and stops
 * listening (the link then sees ECONNREFUSED), `unblock()` listens again on the same port.
 */
class Gate {
  private server: net.Server | undefined;
  private readonly sockets = new Set<net.Socket>();

  private constructor(
    readonly port: number,
    private readonly target: number,
  ) {}

  static async create(target: number): Promise<Gate> {
    const gate = new Gate(await freeTcpPort(), target);
    await gate.unblock();
    cleanups.push(() => gate.block());
    return gate;
  }

  async unblock(): Promise<void> {
    if (this.server) return;
    const server = net.createServer((down) => {
      const up = net.connect({ host: '127.0.0.1', port: this.target });
      this.sockets.add(down).add(up);
      const cut = (): void => {
        down.destroy();
        up.destroy();
        this.sockets.delete(down);
        this.sockets.delete(up);
      };
      for (const s of [down, up]) {
        s.on('error', cut);
        s.on('close', cut);
      }
      down.pipe(up);
      up.pipe(down);
    });
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.port, '127.0.0.1', () => resolve());
    });
  }

  /** Cuts every relayed connection (without an MQTT DISCONNECT) and stops listening. */
  async block(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    for (const s of this.sockets) s.resetAndDestroy();
    this.sockets.clear();
    if (server) await new Promise<void>((r) => server.close(() => r()));
  }
}

const bytesOf = (f: ReceivedFrame): Buffer => Buffer.from(f.data);

describe('MqttLink on one Mosquitto', () => {
  let broker: Mosquitto;
  beforeAll(async () => {
    broker = await startMosquitto();
  });
  afterAll(async () => {
    await broker?.dispose();
  });

  it('carries frames of 1..MTU bytes between two gateways, not back to the sender', async () => {
    const sidA = sidFor(0xa1);
    const a = makeLink({ name: 'mqtt-a', url: broker.url, sid: sidA });
    const b = makeLink({ name: 'mqtt-b', url: broker.url, sid: sidFor(0xb2) });
    expect(a.link.kind).toBe('mqtt');
    expect(a.link.fullMesh).toBe(true);
    expect(a.link.mtu).toBe(4096);
    expect(a.link.bitRate).toBe(8_000_000);
    expect(a.link.airtime.kind).toBe('rate-cap');
    expect(a.link.stats.broker).toBe(broker.url);
    expect(a.link.stats.topic).toBe(`meshgw/mesh/${sidShort(sidA)}/f`);
    await Promise.all([openUp(a), openUp(b)]);

    const sizes = [1, 2, 3, 17, 255, 256, 1000, 4095, 4096];
    for (let i = 0; i < 20; i++) sizes.push(1 + Math.floor(Math.random() * 4096));
    const fromA = sizes.map((n) => new Uint8Array(randomBytes(n)));
    const fromB = sizes.slice(0, 10).map((n) => new Uint8Array(randomBytes(n)));
    for (const f of fromA) a.link.send(f);
    for (const f of fromB) b.link.send(f);
    await waitFor(() => b.frames.length >= fromA.length && a.frames.length >= fromB.length, 'the frames on both sides');

    expect(b.frames.map(bytesOf)).toEqual(fromA.map((f) => Buffer.from(f)));
    expect(a.frames.map(bytesOf)).toEqual(fromB.map((f) => Buffer.from(f)));
    const shortA = a.link.stats.topic.split('/')[2];
    const shortB = b.link.stats.topic.split('/')[2];
    expect(b.frames.every((f) => f.from?.address === shortA && f.from?.port === 0)).toBe(true);
    expect(a.frames.every((f) => f.from?.address === shortB && f.from?.port === 0)).toBe(true);
    expect(a.link.counters.framesOut).toBe(fromA.length);
    expect(b.link.counters.framesIn).toBe(fromA.length);
    expect(b.link.counters.bytesIn).toBe(sizes.reduce((s, n) => s + n, 0));

    // Over the MTU: refused by the link, not published.
    expect(() => a.link.send(new Uint8Array(4097))).toThrow(FrameTooLargeError);

    // A frame heard from MQTT is not published back to it ('echo'); a fresh one is.
    b.link.send(fromA[5]!);
    expect(b.link.counters.drops.echo).toBe(1);
    const marker = new Uint8Array(randomBytes(64));
    b.link.send(marker);
    await waitFor(() => a.frames.length === fromB.length + 1, 'the marker at A');
    expect(bytesOf(a.frames.at(-1)!)).toEqual(Buffer.from(marker));
    // Nobody heard its own frames.
    expect(a.link.counters.drops['own-topic'] ?? 0).toBe(0);
    expect(a.logs.some((l) => l.includes('mqtt-a: up'))).toBe(true);
  });

  it('respects backpressure: a burst far beyond the socket buffer arrives whole and in order', async () => {
    const mtu = 65_536;
    const fast = { inFramesPerSecond: 1e6, inBytesPerSecond: 1e9 };
    const a = makeLink({ name: 'mqtt-a', url: broker.url, sid: sidFor(0xe1), mtu, queueCap: 256, ...fast });
    const b = makeLink({ name: 'mqtt-b', url: broker.url, sid: sidFor(0xe2), mtu, ...fast });
    await Promise.all([openUp(a), openUp(b)]);
    let ready = 0;
    a.link.on('ready', () => ready++);
    const burst = Array.from({ length: 200 }, (_, i) => {
      const f = new Uint8Array(mtu);
      f.fill(i & 0xff);
      f[0] = i >> 8;
      f[1] = i & 0xff;
      return f;
    });
    // The first 64 KiB frame fills the socket's buffer: the rest wait in the link's queue.
    const answers = burst.map((f) => a.link.send(f));
    expect(answers).toContain(false);
    await waitFor(() => b.frames.length === burst.length, 'the whole burst', 60_000);
    expect(ready).toBeGreaterThanOrEqual(1);
    expect(a.link.counters.drops['queue-full'] ?? 0).toBe(0);
    for (let i = 0; i < burst.length; i++) expect(Buffer.from(b.frames[i]!.data).equals(Buffer.from(burst[i]!))).toBe(true);
  }, 90_000);

  it('publishes a retained status, offline after close(); the will marks a lost gateway offline', async () => {
    const watcher = await observe(broker.url, 'meshgw/mesh/+/status');
    const sid = sidFor(0xc3);
    const c = makeLink({
      name: 'mqtt-c',
      url: broker.url,
      sid,
      status: () => ({ version: '0.1.0', interfaces: ['mqtt-c', 'udp0'], neighbours: 3, sid: 'forged', online: 'maybe' }),
    });
    await openUp(c);
    const topic = `meshgw/mesh/${sidShort(sid)}/status`;
    const docs = (): Record<string, unknown>[] =>
      watcher.messages.filter((m) => m.topic === topic && m.payload.length > 0).map((m) => JSON.parse(m.payload.toString('utf8')) as Record<string, unknown>);
    await waitFor(() => docs().some((d) => d.online === true), 'the online status');
    const online = docs().find((d) => d.online === true)!;
    expect(online).toMatchObject({ sid: sidHex(sid), online: true, version: '0.1.0', interfaces: ['mqtt-c', 'udp0'], neighbours: 3 });
    expect(Number.isNaN(Date.parse(String(online.updated)))).toBe(false);

    await c.link.close();
    expect(c.link.state).toBe('closed');
    await waitFor(() => docs().some((d) => d.online === false), 'the offline status');
    expect(docs().at(-1)).toMatchObject({ sid: sidHex(sid), online: false });
    // Retained: a newcomer sees it too.
    const late = await observe(broker.url, topic);
    await waitFor(() => late.messages.length > 0, 'the retained status for a newcomer');
    expect(late.messages[0]!.retain).toBe(true);
    expect(JSON.parse(late.messages[0]!.payload.toString('utf8'))).toMatchObject({ sid: sidHex(sid), online: false });

    // The will: the connection vanishes without a DISCONNECT (cut at a relay in between).
    const gate = await Gate.create(broker.port);
    const sidD = sidFor(0xd4);
    const d = makeLink({ name: 'mqtt-d', url: `mqtt://127.0.0.1:${gate.port}`, sid: sidD });
    await openUp(d);
    const topicD = `meshgw/mesh/${sidShort(sidD)}/status`;
    const docsD = (): Record<string, unknown>[] =>
      watcher.messages.filter((m) => m.topic === topicD && m.payload.length > 0).map((m) => JSON.parse(m.payload.toString('utf8')) as Record<string, unknown>);
    await waitFor(() => docsD().some((doc) => doc.online === true), "D's online status");
    await gate.block();
    await waitFor(() => docsD().some((doc) => doc.online === false), "D's will");
    // The will is the document fixed at connect: {sid, online: false}, no update time.
    expect(docsD().find((doc) => doc.online === false)).toEqual({ sid: sidHex(sidD), online: false });
    await waitFor(() => d.link.state === 'reconnecting', 'D reconnecting');
    await gate.unblock();
    const before = docsD().length;
    await waitFor(() => d.link.state === 'up', 'D up again');
    await waitFor(() => docsD().slice(before).some((doc) => doc.online === true), "D's online status again");
    expect(d.link.counters.reconnects).toBe(1);
    // Clean up the retained documents of this test.
    for (const t of [topic, topicD]) await watcher.client.publishAsync(t, '', { retain: true, qos: 1 });
  });

  it('a flood under a thousand invented sender names gets no more than the bucket of all senders', async () => {
    const b = makeLink({ name: 'mqtt-b', url: broker.url, sid: sidFor(0x1b), inFramesPerSecond: 5, inBytesPerSecond: 100_000 });
    await openUp(b);
    const rogue = await observe(broker.url, 'meshgw/mesh/none/none');
    const start = performance.now();
    for (let i = 0; i < 1000; i++) await rogue.client.publishAsync(`meshgw/mesh/${(0x70000000 + i).toString(16)}/f`, randomBytes(40), { qos: 0 });
    const marker = randomBytes(33);
    // The marker waits for the total bucket to refill (20 frames/s): sent until it passes.
    const passed = (): boolean => b.frames.some((f) => Buffer.from(f.data).equals(marker));
    for (let i = 0; i < 100 && !passed(); i++) {
      await rogue.client.publishAsync('meshgw/mesh/ca11ab1e/f', marker, { qos: 0 });
      await new Promise((r) => setTimeout(r, 200));
    }
    await waitFor(passed, 'the marker at B');
    const elapsedS = (performance.now() - start) / 1000;
    const flood = b.frames.filter((f) => f.from!.address.startsWith('7')).length;
    // Four senders' worth: a burst of 40 and 20 frames/s (one sender alone: 10 and 5/s).
    expect(flood).toBeGreaterThan(0);
    expect(flood).toBeLessThanOrEqual(Math.floor(40 + 20 * elapsedS) + 1);
    expect(b.link.counters.drops['rate-limited-total']).toBeGreaterThanOrEqual(1000 - flood - 1);
    expect(b.link.state).toBe('up');
  });

  it('rejects a rogue client: garbage, empty, oversize, floods, replays, bad topics', async () => {
    const mtu = 1024;
    const b = makeLink({ name: 'mqtt-b', url: broker.url, sid: sidFor(0x0b), mtu, inFramesPerSecond: 5, inBytesPerSecond: 100_000 });
    const a = makeLink({ name: 'mqtt-a', url: broker.url, sid: sidFor(0x0a), mtu });
    await Promise.all([openUp(a), openUp(b)]);
    const rogue = await observe(broker.url, 'meshgw/mesh/+/f');
    const pub = (topic: string, payload: Uint8Array | string, retain = false): Promise<unknown> =>
      rogue.client.publishAsync(topic, Buffer.from(payload), { qos: 0, retain });
    const hex8 = (n: number): string => n.toString(16).padStart(8, '0');

    // A real frame from A, captured by the rogue.
    const real = new Uint8Array(randomBytes(200));
    a.link.send(real);
    await waitFor(() => b.frames.length === 1 && rogue.messages.length === 1, 'the real frame at B and at the rogue');
    const captured = rogue.messages[0]!;

    // Garbage of random sizes, one frame each from 20 senders: data to the link, delivered.
    for (let i = 0; i < 20; i++) await pub(`meshgw/mesh/${hex8(0x6a000000 + i)}/f`, randomBytes(1 + Math.floor(Math.random() * mtu)));
    await pub('meshgw/mesh/eeeeeeee/f', new Uint8Array(0)); // empty
    await pub('meshgw/mesh/eeeeeeef/f', randomBytes(mtu + 1)); // over the MTU: 'too-large'
    await pub('meshgw/mesh/eeeeeef0/f', randomBytes(1024 * 1024)); // far over: the broker keeps it from us (maximum packet size)
    // Bad topics: one the subscription does not match (never delivered), three it does.
    await pub('meshgw/mesh/x/y/f', 'x');
    await pub('meshgw/mesh/ZZZZZZZZ/f', 'x');
    await pub('meshgw/mesh/abc/f', 'x');
    await pub('meshgw/mesh/0123456789/f', 'x');
    // Replays of the captured frame: on A's own topic and on another.
    for (let i = 0; i < 3; i++) await pub(captured.topic, captured.payload);
    for (let i = 0; i < 5; i++) await pub('meshgw/mesh/deadbeef/f', captured.payload);
    // A flood from one sender: distinct frames, far beyond 5 frames/s (burst 10).
    const floodStart = performance.now();
    for (let i = 0; i < 200; i++) await pub('meshgw/mesh/f100d000/f', randomBytes(40));
    const marker = new Uint8Array(randomBytes(33));
    await pub('meshgw/mesh/ca11ab1e/f', marker);
    await waitFor(() => b.frames.some((f) => Buffer.from(f.data).equals(Buffer.from(marker))), 'the marker at B');
    const elapsedS = (performance.now() - floodStart) / 1000;

    const drops = b.link.counters.drops;
    const flood = b.frames.filter((f) => f.from?.address === 'f100d000').length;
    expect(flood).toBeGreaterThan(0);
    expect(flood).toBeLessThanOrEqual(Math.floor(10 + 5 * elapsedS) + 1);
    expect(drops['rate-limited']).toBe(200 - flood);
    expect(drops.duplicate).toBe(8);
    expect(drops.empty).toBe(1);
    expect(drops['too-large']).toBe(1);
    expect(drops['bad-topic']).toBe(3);
    expect(b.frames.filter((f) => /^6a0000/.test(f.from!.address)).length).toBe(20);
    // Nothing of the huge payload reached B, and B never lost its connection.
    expect(b.link.state).toBe('up');
    expect(b.link.counters.reconnects).toBe(0);
    expect(b.link.stats.attempts).toBe(1);
    expect(b.frames.every((f) => f.data.length >= 1 && f.data.length <= mtu)).toBe(true);
    // A heard the same traffic; its own topic's replays count as 'own-topic', not as its frames.
    await waitFor(() => a.frames.some((f) => Buffer.from(f.data).equals(Buffer.from(marker))), 'the marker at A');
    expect(a.link.counters.drops['own-topic']).toBe(3);
    expect(a.logs.filter((l) => l.includes('on our own topic'))).toHaveLength(1);

    // A retained frame is not replayed to a newcomer: MQTT 5 asks for none, MQTT 3.1.1 drops it.
    await pub('meshgw/mesh/abababab/f', randomBytes(10), true);
    const v5 = makeLink({ name: 'mqtt-v5', url: broker.url, sid: sidFor(0x55) });
    const v4 = makeLink({ name: 'mqtt-v4', url: broker.url, sid: sidFor(0x44), protocolVersion: 4 });
    await Promise.all([openUp(v5), openUp(v4)]);
    await waitFor(() => (v4.link.counters.drops.retained ?? 0) === 1, 'the retained frame dropped by the 3.1.1 link');
    await pub('meshgw/mesh/ca11ab1f/f', marker.subarray(1));
    await waitFor(() => v5.frames.length === 1 && v4.frames.length === 1, 'a live frame at both newcomers');
    expect(v5.link.counters.drops.retained ?? 0).toBe(0);
    await pub('meshgw/mesh/abababab/f', new Uint8Array(0), true); // clear the retained message
  });
});

describe('MqttLink and broker loss', () => {
  let broker: Mosquitto;
  beforeAll(async () => {
    broker = await startMosquitto();
  });
  afterAll(async () => {
    await broker?.dispose();
  });

  it('reconnects after a broker restart on the same port and delivers the queued frames (oldest dropped)', async () => {
    // A reaches the broker through a relay so that it comes back only once B listens again
    // (QoS 0 frames reach only subscribers present at the time).
    const gate = await Gate.create(broker.port);
    const a = makeLink({ name: 'mqtt-a', url: `mqtt://127.0.0.1:${gate.port}`, sid: sidFor(0x1a), queueCap: 8 });
    const b = makeLink({ name: 'mqtt-b', url: broker.url, sid: sidFor(0x1b) });
    await Promise.all([openUp(a), openUp(b)]);
    const first = new Uint8Array(randomBytes(10));
    a.link.send(first);
    await waitFor(() => b.frames.length === 1, 'the first frame');

    await broker.stop('SIGKILL');
    await gate.block();
    await waitFor(() => a.link.state === 'reconnecting' && b.link.state === 'reconnecting', 'both reconnecting');
    const queued = Array.from({ length: 12 }, (_, i) => new Uint8Array(randomBytes(20 + i)));
    for (const f of queued) a.link.send(f);
    expect(a.link.counters.drops['queue-full']).toBe(4);
    // Both keep trying, with backoff.
    const attemptsA = a.link.stats.attempts;
    const attemptsB = b.link.stats.attempts;
    await waitFor(() => a.link.stats.attempts >= attemptsA + 3 && b.link.stats.attempts >= attemptsB + 3, 'retries');

    await broker.start();
    await waitFor(() => b.link.state === 'up', 'B up again');
    await gate.unblock();
    await waitFor(() => a.link.state === 'up', 'A up again');
    await waitFor(() => b.frames.length === 1 + 8, 'the queued frames');
    expect(b.frames.slice(1).map(bytesOf)).toEqual(queued.slice(4).map((f) => Buffer.from(f)));
    expect(a.link.counters.reconnects).toBe(1);
    expect(b.link.counters.reconnects).toBe(1);

    for (const t of [a, b]) {
      // One line for the change of state; a few more at most when the cause changed; none per retry.
      expect(t.logs.filter((l) => l.includes(': reconnecting ('))).toHaveLength(1);
      expect(t.logs.filter((l) => l.includes('still reconnecting')).length).toBeLessThanOrEqual(2);
      expect(t.states.filter((s) => s.state === 'reconnecting')).toHaveLength(1);
      expect(t.states.filter((s) => s.state === 'reconnecting')[0]!.reason).toContain('mqtt://127.0.0.1:');
    }
    expect(b.logs.find((l) => l.includes('still reconnecting'))).toMatch(/connection refused/);
  });

  it('is not an error at open when the broker is missing: it comes up when the broker does', async () => {
    const port = await freeTcpPort();
    const t = makeLink({ name: 'mqtt-late', url: `mqtt://127.0.0.1:${port}`, sid: sidFor(0x2c) });
    await t.link.open();
    expect(['opening', 'reconnecting']).toContain(t.link.state);
    await waitFor(() => t.link.state === 'reconnecting', 'reconnecting');
    expect(t.states[1]!.reason).toMatch(new RegExp(`^mqtt://127\\.0\\.0\\.1:${port}: connection refused`));
    const late = await startMosquitto({ port });
    cleanups.push(() => late.dispose());
    await waitFor(() => t.link.state === 'up', 'up once the broker runs');
    await t.link.close();
    expect(t.link.state).toBe('closed');
  });
});

describe('MqttLink with credentials', () => {
  let broker: Mosquitto;
  const password = 'c0rrect-h0rse';
  beforeAll(async () => {
    broker = await startMosquitto({ users: { alice: password } });
  });
  afterAll(async () => {
    await broker?.dispose();
  });

  for (const protocolVersion of [5, 4] as const) {
    it(`wrong password (MQTT ${protocolVersion === 5 ? '5' : '3.1.1'}): reconnecting with a clear reason, no password in any line, retrying until close()`, async () => {
      const wrong = 'Wr0ng!pass@word';
      const url = `mqtt://alice:${encodeURIComponent(wrong)}@127.0.0.1:${broker.port}/site`;
      const t = makeLink({ name: 'mqtt-auth', url, sid: sidFor(0x3d), protocolVersion });
      await t.link.open();
      await waitFor(() => t.link.state === 'reconnecting', 'reconnecting');
      const reason = t.states.find((s) => s.state === 'reconnecting')!.reason!;
      expect(reason).toBe(`mqtt://127.0.0.1:${broker.port}: not authorised: wrong user name or password (CONNACK ${protocolVersion === 5 ? 135 : 5})`);
      const attempts = t.link.stats.attempts;
      await waitFor(() => t.link.stats.attempts >= attempts + 4, 'more attempts');
      await t.link.close();
      const after = t.link.stats.attempts;
      const everything = [...t.logs, ...t.states.map((s) => s.reason ?? ''), t.link.stats.lastError ?? '', JSON.stringify(t.link.stats)];
      for (const line of everything) {
        expect(line).not.toContain(wrong);
        expect(line).not.toContain(encodeURIComponent(wrong));
      }
      expect(t.logs.filter((l) => l.includes('reconnecting'))).toHaveLength(1);
      expect(t.link.state).toBe('closed');
      // Nothing is left to run: no further attempt however long we look.
      await new Promise((r) => setTimeout(r, 400));
      expect(t.link.stats.attempts).toBe(after);
    });
  }

  it('no credentials: says the broker wants them; the right ones (URL or options) bring it up', async () => {
    const anon = makeLink({ name: 'mqtt-anon', url: broker.url, sid: sidFor(0x3e) });
    await anon.link.open();
    await waitFor(() => anon.link.state === 'reconnecting', 'reconnecting');
    expect(anon.link.stats.lastError).toContain('the broker wants a user name and password, none given');

    const viaUrl = makeLink({ name: 'mqtt-url', url: `mqtt://alice:${encodeURIComponent(password)}@127.0.0.1:${broker.port}`, sid: sidFor(0x3f) });
    const viaOptions = makeLink({ name: 'mqtt-opt', url: `mqtt://bob:nope@127.0.0.1:${broker.port}`, username: 'alice', password, sid: sidFor(0x40) });
    await Promise.all([openUp(viaUrl), openUp(viaOptions)]);
    viaUrl.link.send(Uint8Array.of(1, 2, 3));
    await waitFor(() => viaOptions.frames.length === 1, 'a frame between the authenticated links');
  });
});

describe('MqttLink over TLS', () => {
  let broker: Mosquitto;
  let mutual: Mosquitto;
  let dir: string;
  let certs: ReturnType<typeof makeTestCertificates>;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'meshgw-mqtt-tls-'));
    certs = makeTestCertificates(dir);
    broker = await startMosquitto({ tls: { cert: certs.serverCert, key: certs.serverKey } });
    mutual = await startMosquitto({ tls: { cert: certs.serverCert, key: certs.serverKey, ca: certs.caCert, requireCertificate: true } });
  });
  afterAll(async () => {
    await broker?.dispose();
    await mutual?.dispose();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('comes up with the right CA and carries frames', async () => {
    expect(broker.url.startsWith('mqtts://')).toBe(true);
    const ca = readFileSync(certs.caCert);
    const a = makeLink({ name: 'tls-a', url: broker.url, sid: sidFor(0x5a), ca });
    const b = makeLink({ name: 'tls-b', url: broker.url, sid: sidFor(0x5b), ca: ca.toString('utf8') });
    await Promise.all([openUp(a), openUp(b)]);
    const frame = new Uint8Array(randomBytes(4096));
    a.link.send(frame);
    await waitFor(() => b.frames.length === 1, 'a frame over TLS');
    expect(bytesOf(b.frames[0]!)).toEqual(Buffer.from(frame));
  });

  it('a wrong CA (or none): reconnecting with a TLS reason that names the broker and the CA option', async () => {
    const wrong = makeLink({ name: 'tls-wrong', url: broker.url, sid: sidFor(0x5c), ca: readFileSync(certs.otherCaCert) });
    const none = makeLink({ name: 'tls-none', url: broker.url, sid: sidFor(0x5d) });
    await Promise.all([wrong.link.open(), none.link.open()]);
    await waitFor(() => wrong.link.state === 'reconnecting' && none.link.state === 'reconnecting', 'reconnecting');
    for (const t of [wrong, none]) {
      expect(t.link.stats.lastError).toMatch(new RegExp(`^mqtts://127\\.0\\.0\\.1:${broker.port}: TLS: .*\\(--mqtt-ca\\?\\)$`));
      const attempts = t.link.stats.attempts;
      await waitFor(() => t.link.stats.attempts >= attempts + 2, 'retries');
      expect(t.logs.filter((l) => l.includes('reconnecting'))).toHaveLength(1);
    }
    // Plain MQTT to the TLS port: a reason, not a crash.
    const plain = makeLink({ name: 'tls-plain', url: `mqtt://127.0.0.1:${broker.port}`, sid: sidFor(0x5e), connectTimeoutMs: 2_000 });
    await plain.link.open();
    await waitFor(() => plain.link.state === 'reconnecting', 'plain reconnecting');
    expect(plain.link.stats.lastError).toContain(`mqtt://127.0.0.1:${broker.port}: `);
  });

  it('client certificates: with one the link comes up, without one it says so', async () => {
    const ca = readFileSync(certs.caCert);
    const withCert = makeLink({ name: 'tls-cert', url: mutual.url, sid: sidFor(0x6a), ca, cert: readFileSync(certs.clientCert), key: readFileSync(certs.clientKey) });
    const without = makeLink({ name: 'tls-nocert', url: mutual.url, sid: sidFor(0x6b), ca });
    await openUp(withCert);
    await without.link.open();
    await waitFor(() => without.link.state === 'reconnecting', 'reconnecting without a client certificate');
    // The broker's TLS alert says why; should the connection's reset overtake the alert, that is the reason instead.
    expect(without.link.stats.lastError).toMatch(new RegExp(`^mqtts://127\\.0\\.0\\.1:${mutual.port}: (TLS: .*client certificate|connection reset)`));
    expect(without.link.stats.lastError).not.toContain('\n');
    // A malformed key is a reason too, not a throw.
    const broken = makeLink({ name: 'tls-broken', url: mutual.url, sid: sidFor(0x6c), ca, cert: 'not a certificate', key: 'not a key' });
    await broken.link.open();
    await waitFor(() => broken.link.state === 'reconnecting', 'reconnecting with a broken key');
    expect(broken.link.stats.lastError).toBe(`${mutual.url}: TLS: cannot use the client certificate, key or CA given (no start line: PEM contents expected)`);
  });
});

describe('parseMqttUrl', () => {
  it('parses good URLs', () => {
    expect(parseMqttUrl('mqtt://broker.example.org')).toEqual({ protocol: 'mqtt', host: 'broker.example.org', port: 1883, prefix: 'meshgw' });
    expect(parseMqttUrl('mqtts://broker.example.org')).toEqual({ protocol: 'mqtts', host: 'broker.example.org', port: 8883, prefix: 'meshgw' });
    expect(parseMqttUrl('MQTT://10.0.0.1:1884/')).toEqual({ protocol: 'mqtt', host: '10.0.0.1', port: 1884, prefix: 'meshgw' });
    expect(parseMqttUrl('mqtt://user:p%40ss%3Aw%2Frd@host:1/a/b-c/d_e')).toEqual({
      protocol: 'mqtt',
      host: 'host',
      port: 1,
      username: 'user',
      password: 'p@ss:w/rd',
      prefix: 'a/b-c/d_e',
    });
    expect(parseMqttUrl('mqtt://only-user@host/x')).toEqual({ protocol: 'mqtt', host: 'host', port: 1883, username: 'only-user', prefix: 'x' });
    expect(parseMqttUrl('mqtts://[::1]:65535/p')).toEqual({ protocol: 'mqtts', host: '::1', port: 65535, prefix: 'p' });
    // A password holding '@' unencoded: the last '@' ends the user information.
    expect(parseMqttUrl('mqtt://u:a@b@host/p').password).toBe('a@b');
  });

  const bad: [string, RegExp][] = [
    ['', /empty/],
    ['broker.example.org', /no scheme/],
    ['mqtt:broker', /no \/\/host/],
    ['ws://host', /unsupported scheme "ws:"/],
    ['http://host', /unsupported scheme/],
    ['mqtt://', /no host/],
    ['mqtt:///prefix', /no host/],
    ['mqtt://user:pass@:1883', /no host/],
    ['mqtt://host:0', /bad port "0"/],
    ['mqtt://host:65536', /bad port/],
    ['mqtt://host:12ab', /bad port/],
    ['mqtt://host:', /bad port/],
    ['mqtt://ho st', /not a host name/],
    ['mqtt://[::1', /unterminated/],
    ['mqtt://host/a/+/b', /wildcards/],
    ['mqtt://host/a/#', /wildcards/],
    ['mqtt://host/a%2B', /wildcards/],
    ['mqtt://host/a%23', /wildcards/],
    ['mqtt://host/a//b', /empty topic level/],
    ['mqtt://host/$SYS', /reserved/],
    ['mqtt://host/p?x=1', /query/],
    ['mqtt://host/%zz', /percent-encoded/],
    ['mqtt://u:%zz@host', /percent-encoded/],
  ];
  it.each(bad)('refuses %j', (url, message) => {
    let error: unknown;
    try {
      parseMqttUrl(url);
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(MqttUrlError);
    expect(error).toBeInstanceOf(RangeError);
    expect((error as Error).message).toMatch(message);
  });

  it('never puts the password in an error message', () => {
    for (const url of ['mqtt://u:hunter2secret@host:99999', 'mqtt://u:hunter2secret@host/a/#', 'ws://u:hunter2secret@host']) {
      expect(() => parseMqttUrl(url)).toThrow(MqttUrlError);
      try {
        parseMqttUrl(url);
      } catch (err) {
        expect((err as Error).message).not.toContain('hunter2secret');
      }
    }
  });

  it('the link refuses a bad URL, mesh name or SID at construction', () => {
    const sid = sidFor(1);
    expect(() => new MqttLink({ name: 'x', url: 'mqtt://host/+', sid })).toThrow(MqttUrlError);
    expect(() => new MqttLink({ name: 'x', url: 'mqtt://host', mesh: 'a/b', sid })).toThrow(/mesh name/);
    expect(() => new MqttLink({ name: 'x', url: 'mqtt://host', sid: new Uint8Array(8) })).toThrow(/SID/);
    const link = new MqttLink({ name: 'x', url: 'mqtt://host/p/q', mesh: 'm-1', sid });
    expect(link.stats.topic).toBe(`p/q/m-1/${sidShort(sid)}/f`);
    expect(link.stats.statusTopic).toBe(`p/q/m-1/${sidShort(sid)}/status`);
    expect(link.stats.subscription).toBe('p/q/m-1/+/f');
    expect(link.state).toBe('down');
  });
});
