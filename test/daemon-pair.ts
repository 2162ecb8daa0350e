/**
 * Two real daemons in the test process, each with its API on an ephemeral loopback port, joined
 * either by a shared KISS "radio" (a TCP hub relaying every byte to the others: a slow link) or
 * by UDP on loopback with static peers (optionally through a LossyProxy). `routed` waits until
 * each has a route to the other (up to 60 s) and fails loudly without one.
 */
import { mkdtempSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MeshgwClient, sidToHex } from '../src/index.js';
import { startDaemon, type Daemon } from '../src/gateway/daemon.js';
import type { InterfaceSpec } from '../src/gateway/config.js';

export interface DaemonPair {
  a: Daemon;
  b: Daemon;
  /** API ports. */
  apiA: number;
  apiB: number;
  sidA: string;
  sidB: string;
  stop(): Promise<void>;
}

async function startOne(iface: InterfaceSpec): Promise<Daemon> {
  const dir = mkdtempSync(join(tmpdir(), 'meshgw-pair-'));
  return startDaemon({ interfaces: [iface], region: 'none', keyFile: join(dir, 'identity.json'), stateDir: join(dir, 'state'), statusIntervalMs: 0, api: { host: '127.0.0.1', port: 0 } });
}

/** Waits until `port`'s daemon has a route to `sid` (hex). */
async function routeTo(port: number, sid: string): Promise<void> {
  const c = await MeshgwClient.connect({ port });
  try {
    for (let i = 0; i < 600; i++) {
      if ((await c.routes()).some((r) => sidToHex(r.destination) === sid)) return;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`no route to ${sid} after 60 s`);
  } finally {
    await c.close();
  }
}

async function pairOf(a: Daemon, b: Daemon, extraStop: () => Promise<void>): Promise<DaemonPair> {
  const pair: DaemonPair = {
    a,
    b,
    apiA: a.api!.address!.port,
    apiB: b.api!.address!.port,
    sidA: sidToHex(a.identity.sid),
    sidB: sidToHex(b.identity.sid),
    stop: async () => {
      await a.stop();
      await b.stop();
      await extraStop();
    },
  };
  try {
    await routeTo(pair.apiB, pair.sidA);
    await routeTo(pair.apiA, pair.sidB);
  } catch (e) {
    await pair.stop();
    throw e;
  }
  return pair;
}

/** Two daemons on one KISS-over-TCP hub. */
export async function kissHubPair(): Promise<DaemonPair> {
  const conns = new Set<net.Socket>();
  const hub = net.createServer((c) => {
    conns.add(c);
    c.on('data', (b: Buffer) => {
      for (const o of conns) if (o !== c) o.write(b);
    });
    c.on('close', () => conns.delete(c));
    c.on('error', () => undefined);
  });
  await new Promise<void>((r) => hub.listen(0, '127.0.0.1', r));
  const port = (hub.address() as net.AddressInfo).port;
  const spec: InterfaceSpec = { kind: 'kiss-tcp', host: '127.0.0.1', port };
  const a = await startOne(spec);
  const b = await startOne(spec);
  return pairOf(a, b, async () => {
    for (const c of conns) c.destroy();
    await new Promise<void>((r) => hub.close(() => r()));
  });
}

/**
 * Two daemons on UDP loopback ports `pA`, `pB`, each sending to its given peer port; `mtu` as on a
 * network (loopback's default is 64 KiB datagrams).
 */
export async function udpPair(pA: number, peerOfA: number, pB: number, peerOfB: number, mtu?: number): Promise<DaemonPair> {
  const m = mtu !== undefined ? { mtu } : {};
  const a = await startOne({ kind: 'udp', address: '127.0.0.1', port: pA, peers: [{ address: '127.0.0.1', port: peerOfA }], ...m });
  const b = await startOne({ kind: 'udp', address: '127.0.0.1', port: pB, peers: [{ address: '127.0.0.1', port: peerOfB }], ...m });
  return pairOf(a, b, async () => undefined);
}
