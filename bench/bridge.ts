/**
 * Two daemons joined through a local Mosquitto broker (the `mqtt` interface of issue 15), beside
 * the same two daemons' kind joined by a direct UDP link, in the same run: datagrams per second
 * from an app on one to an app on the other, and the round trip of a ping (the echo service), so
 * the broker's added latency reads as the difference. Each daemon is a process of its own
 * (bench/daemon-child.ts). The MQTT interfaces' rate caps, out and in, are raised far above the
 * defaults (100 frames/s out, 200 in per sender) so that the broker path, not a cap, is measured. Alone: `node dist/bench/bridge.js`.
 */
import { performance } from 'node:perf_hooks';
import { MeshgwClient, sidToHex } from '../src/api/client.js';
import type { InterfaceSpec } from '../src/gateway/config.js';
import { Child, freeUdpPort } from './daemons.js';
import { startMosquitto } from './mosquitto.js';

const DATAGRAMS = 3000;
const DATAGRAM_BYTES = 200;
const PINGS = 60;
/** The echo service answers 20 pings a second (burst 20): one every 60 ms stays within it. */
const PING_GAP_MS = 60;
const IN_FLIGHT = 16;
/** The MQTT interfaces' caps for the run (out and in): 50 × the default 100 frames/s. */
const CAP_FRAMES = 5_000;

interface PathFigures {
  framesPerSecond: number;
  delivered: number;
  /** Sends the daemon refused for a full queue (sent again after 2 ms). */
  refusals: number;
  pingMedianMs: number;
  pingP90Ms: number;
}

async function pair(aIfaces: InterfaceSpec[], bIfaces: InterfaceSpec[]): Promise<PathFigures> {
  const a = new Child();
  const b = new Child();
  try {
    const da = await a.call<{ apiPort: number; sid: string }>({ cmd: 'start', interfaces: aIfaces });
    const db = await b.call<{ apiPort: number; sid: string }>({ cmd: 'start', interfaces: bIfaces });
    const ca = await MeshgwClient.connect({ port: da.apiPort });
    const cb = await MeshgwClient.connect({ port: db.apiPort });
    try {
      const routed = async (): Promise<boolean> =>
        (await ca.routes()).some((r) => sidToHex(r.destination) === db.sid) && (await cb.routes()).some((r) => sidToHex(r.destination) === da.sid);
      for (let i = 0; i < 300 && !(await routed()); i++) await new Promise((r) => setTimeout(r, 100));
      if (!(await routed())) throw new Error('the two daemons found no routes to each other within 30 s');
      const bSid = Uint8Array.from(Buffer.from(db.sid, 'hex'));
      // Round trips of the echo service, one after another, within its rate limit.
      const rtts: number[] = [];
      for (let i = 0; i < PINGS; i++) {
        const r = await ca.ping(bSid, { size: 32, timeoutMs: 5000 }).catch(() => undefined);
        if (r) rtts.push(r.rttMs);
        await new Promise((res) => setTimeout(res, PING_GAP_MS));
      }
      if (rtts.length === 0) throw new Error('no ping was answered');
      rtts.sort((x, y) => x - y);
      // Datagrams: A's app keeps IN_FLIGHT sends outstanding; B's app counts arrivals.
      const inbox = await cb.bind(50);
      const from = await ca.bind(0);
      let delivered = 0;
      let lastAt = 0;
      const counting = (async () => {
        for await (const _d of inbox) {
          delivered++;
          lastAt = performance.now();
          if (delivered === DATAGRAMS) return;
        }
      })();
      const payload = new Uint8Array(DATAGRAM_BYTES).fill(0x5a);
      const start = performance.now();
      let next = 0;
      let refusals = 0;
      // A refusal (the interface's queue for this flow is full) is backpressure: wait, send again.
      const worker = async (): Promise<void> => {
        while (next < DATAGRAMS) {
          next++;
          for (;;) {
            const ok = await from.send(bSid, 50, payload).then(
              () => true,
              () => false,
            );
            if (ok) break;
            refusals++;
            await new Promise((r) => setTimeout(r, 2));
          }
        }
      };
      await Promise.all(Array.from({ length: IN_FLIGHT }, worker));
      // What is still on its way arrives within a second, or is lost.
      await Promise.race([counting, new Promise((r) => setTimeout(r, 2000))]);
      const elapsed = ((delivered === 0 ? performance.now() : lastAt) - start) / 1000;
      return { framesPerSecond: delivered / elapsed, delivered, refusals, pingMedianMs: rtts[Math.floor(rtts.length / 2)]!, pingP90Ms: rtts[Math.floor(rtts.length * 0.9)]! };
    } finally {
      await ca.close();
      await cb.close();
    }
  } finally {
    await a.stop();
    await b.stop();
  }
}

export async function bridgeBench(): Promise<string[]> {
  const broker = await startMosquitto({});
  try {
    const mqtt: InterfaceSpec = { kind: 'mqtt', url: `${broker.url}/bench`, mesh: 'bench', framesPerSecond: CAP_FRAMES, bytesPerSecond: 100_000_000, inFramesPerSecond: CAP_FRAMES, inBytesPerSecond: 100_000_000 };
    const viaBroker = await pair([mqtt], [mqtt]);
    const [pa, pb] = [await freeUdpPort(), await freeUdpPort()];
    const direct = await pair(
      [{ kind: 'udp', address: '127.0.0.1', port: pa, peers: [{ address: '127.0.0.1', port: pb }] }],
      [{ kind: 'udp', address: '127.0.0.1', port: pb, peers: [{ address: '127.0.0.1', port: pa }] }],
    );
    const line = (name: string, f: PathFigures): string =>
      `  ${name.padEnd(22)} ${f.framesPerSecond.toFixed(0).padStart(6)} datagrams/s (${f.delivered} of ${DATAGRAMS} × ${DATAGRAM_BYTES} B, ${f.refusals} waits for queue room), ping median ${f.pingMedianMs.toFixed(2)} ms, p90 ${f.pingP90Ms.toFixed(2)} ms`;
    return [
      `site bridge (issue 15): two daemons, app to app, through a local Mosquitto (MQTT caps raised to ${CAP_FRAMES} frames/s) beside a direct UDP link:`,
      line('through Mosquitto', viaBroker),
      line('direct UDP (baseline)', direct),
      `  broker / direct: ${(viaBroker.framesPerSecond / direct.framesPerSecond).toFixed(2)}× the datagram rate; the broker adds ${(viaBroker.pingMedianMs - direct.pingMedianMs).toFixed(2)} ms to the median round trip (two passes through it)`,
    ];
  } finally {
    await broker.dispose();
  }
}

if (import.meta.url === `file://${process.argv[1]}`) for (const l of await bridgeBench()) console.log(l);
