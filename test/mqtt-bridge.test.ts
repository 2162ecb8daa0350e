/**
 * Two sites joined through a real Mosquitto broker, as operators run them: daemons A and B each
 * on their own simulated radio (no shared medium) and an `mqtt` interface to one broker; node C
 * behind A on a UDP link of its own (C has no MQTT). Over the broker A and B become neighbours,
 * MSP and Strokkur cross it, and C is reachable from B through A. The broker is killed and
 * restarted in the middle of a stream, which still completes intact; a wrong password is an
 * error in the log naming the broker, and the daemon stays up, retrying.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MeshgwClient, sidToHex } from '../src/api/client.js';
import type { InterfaceSpec } from '../src/gateway/config.js';
import { startDaemon, type Daemon } from '../src/gateway/daemon.js';
import { freeUdpPort } from './free-ports.js';
import { startMosquitto, type Mosquitto } from '../bench/mosquitto.js';

const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

interface Site {
  daemon: Daemon;
  client: MeshgwClient;
  sid: string;
  log: string[];
}

/** Polls `ok` every 100 ms until it holds; fails after `ms` with `what` (a guard, not a timing). */
async function until(ok: () => boolean | Promise<boolean>, ms: number, what: () => string): Promise<void> {
  const end = Date.now() + ms;
  while (!(await ok())) {
    if (Date.now() > end) throw new Error(`gave up waiting: ${what()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('two sites bridged over a Mosquitto broker', () => {
  let broker: Mosquitto;
  const dirs: string[] = [];
  const sites: Site[] = [];

  async function site(name: string, interfaces: InterfaceSpec[]): Promise<Site> {
    const dir = mkdtempSync(join(tmpdir(), `meshgw-mqtt-${name}-`));
    dirs.push(dir);
    const log: string[] = [];
    const daemon = await startDaemon(
      { interfaces, region: 'none', keyFile: join(dir, 'key.json'), stateDir: join(dir, 'state'), statusIntervalMs: 0, api: { host: '127.0.0.1', port: 0 } },
      { log: (l) => log.push(l) },
    );
    const client = await MeshgwClient.connect({ port: daemon.api!.address!.port });
    const s = { daemon, client, sid: sidToHex(daemon.identity.sid), log };
    sites.push(s);
    return s;
  }

  const routeTo = async (from: Site, to: Site): Promise<boolean> => (await from.client.routes()).some((r) => sidToHex(r.destination) === to.sid);
  const state = (s: Site): string => JSON.stringify(s.daemon.gateway.status().map((i) => [i.name, i.state, i.counters.framesIn, i.counters.framesOut, i.counters.drops]));

  let a: Site;
  let b: Site;
  let c: Site;

  beforeAll(async () => {
    broker = await startMosquitto({ users: { siteA: 'pw-a', siteB: 'pw-b' } });
    const [pa, pc] = [await freeUdpPort(), await freeUdpPort()];
    const mqtt = (user: string, pw: string): InterfaceSpec => ({ kind: 'mqtt', url: broker.url.replace('mqtt://', `mqtt://${user}:${pw}@`) + '/test', mesh: 'valley' });
    a = await site('a', [{ kind: 'sim' }, mqtt('siteA', 'pw-a'), { kind: 'udp', address: '127.0.0.1', port: pa, peers: [{ address: '127.0.0.1', port: pc }] }]);
    b = await site('b', [{ kind: 'sim' }, mqtt('siteB', 'pw-b')]);
    c = await site('c', [{ kind: 'udp', address: '127.0.0.1', port: pc, peers: [{ address: '127.0.0.1', port: pa }] }]);
    await until(async () => (await routeTo(a, b)) && (await routeTo(b, a)) && (await routeTo(b, c)) && (await routeTo(c, b)), 90_000, () => `routes; A ${state(a)}; B ${state(b)}`);
  }, 120_000);

  afterAll(async () => {
    for (const s of sites) {
      await s.client.close().catch(() => undefined);
      await s.daemon.stop().catch(() => undefined);
    }
    await broker?.dispose();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  it('A and B are neighbours over the broker; their MQTT interfaces are up, with no airtime budget', async () => {
    const nb = await b.client.neighbours();
    const overMqtt = nb.find((n) => sidToHex(n.sid) === a.sid);
    expect(overMqtt).toMatchObject({ symmetric: true });
    expect(b.daemon.gateway.status().find((i) => i.name === overMqtt!.interface)!.kind).toBe('mqtt');
    for (const s of [a, b]) {
      const mqtt = s.daemon.gateway.status().find((i) => i.kind === 'mqtt')!;
      expect(mqtt.state).toBe('up');
      expect(mqtt.pacer.windows).toEqual([]);
    }
  });

  it('a 1 MiB MSP stream from B to A, intact', async () => {
    const data = randomBytes(1024 * 1024);
    const listener = await a.client.listen(44);
    const received = (async () => {
      for await (const s of listener) {
        const parts: Buffer[] = [];
        for await (const chunk of s) parts.push(chunk as Buffer);
        return Buffer.concat(parts);
      }
      throw new Error('no stream');
    })();
    const s = await b.client.openStream(Uint8Array.from(Buffer.from(a.sid, 'hex')), 44);
    s.end(data);
    const got = await received;
    expect(got.length).toBe(data.length);
    expect(sha(got)).toBe(sha(data));
  }, 120_000);

  it('a Strokkur message from A to B', async () => {
    const message = randomBytes(40_000);
    const inbox = await b.client.strokkur.listen(66);
    const arrived = (async () => {
      for await (const m of inbox) return m;
      throw new Error('no message');
    })();
    const r = await a.client.strokkur.send(Uint8Array.from(Buffer.from(b.sid, 'hex')), 66, message);
    expect(r.ok).toBe(true);
    const m = await arrived;
    expect(sha(m.data)).toBe(sha(message));
    expect(sidToHex(m.sid)).toBe(a.sid);
  }, 60_000);

  it('C, behind A on its own link, is reachable from B: a datagram crosses the broker and A', async () => {
    const port = await c.client.bind(45);
    const from = await b.client.bind(0);
    const payload = randomBytes(300);
    const got = (async () => {
      for await (const d of port) return d;
      throw new Error('no datagram');
    })();
    // Datagrams are not retransmitted: send until one arrives (a guard of 20 tries).
    let arrived: { data: Uint8Array; sid: Uint8Array } | undefined;
    void got.then((d) => (arrived = d));
    for (let i = 0; i < 20 && arrived === undefined; i++) {
      await from.send(Uint8Array.from(Buffer.from(c.sid, 'hex')), 45, payload);
      await new Promise((r) => setTimeout(r, 500));
    }
    const d = await got;
    expect(Buffer.compare(Buffer.from(d.data), payload)).toBe(0);
    expect(sidToHex(d.sid)).toBe(b.sid);
    const route = (await b.client.routes()).find((r) => sidToHex(r.destination) === c.sid)!;
    expect(route.hops).toBe(2);
  }, 60_000);

  it('the broker killed and restarted mid-stream: the stream completes intact', async () => {
    const data = randomBytes(768 * 1024);
    const listener = await b.client.listen(46);
    let receivedBytes = 0;
    const received = (async () => {
      for await (const s of listener) {
        const parts: Buffer[] = [];
        for await (const chunk of s) {
          parts.push(chunk as Buffer);
          receivedBytes += (chunk as Buffer).length;
        }
        return Buffer.concat(parts);
      }
      throw new Error('no stream');
    })();
    const s = await a.client.openStream(Uint8Array.from(Buffer.from(b.sid, 'hex')), 46);
    s.end(data);
    await until(() => receivedBytes > 64 * 1024, 60_000, () => `the first 64 KiB; ${receivedBytes} so far`);
    await broker.stop();
    const mqttA = a.daemon.gateway.status().find((i) => i.kind === 'mqtt')!.name;
    await until(() => a.daemon.gateway.status().find((i) => i.name === mqttA)!.state !== 'up', 30_000, () => `A's MQTT link noticing the broker's loss: ${state(a)}`);
    await broker.start();
    const got = await received;
    expect(got.length).toBe(data.length);
    expect(sha(got)).toBe(sha(data));
    expect(a.log.some((l) => /mqtt/i.test(l) && /127\.0\.0\.1/.test(l))).toBe(true);
  }, 240_000);

  it('a wrong password: the daemon starts, its log names the broker (never the password), and it keeps retrying', async () => {
    const bad = await site('bad', [{ kind: 'sim' }, { kind: 'mqtt', url: broker.url.replace('mqtt://', 'mqtt://siteA:not-the-password@') + '/test', mesh: 'valley' }]);
    const name = bad.daemon.gateway.status().find((i) => i.kind === 'mqtt')!.name;
    await until(() => bad.log.some((l) => /127\.0\.0\.1/.test(l) && /(authori[sz]|password|credentials)/i.test(l)), 30_000, () => bad.log.join('\n'));
    expect(bad.log.join('\n')).not.toContain('not-the-password');
    expect(bad.daemon.gateway.status().find((i) => i.name === name)!.state).not.toBe('up');
    // The rest of the daemon runs: its API answers.
    expect((await bad.client.status()).interfaces.length).toBe(2);
  }, 60_000);
});
