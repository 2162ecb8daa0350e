/**
 * kiss-tcp against a KISS TCP server (a minimal soft TNC in the test) that restarts: the link
 * reconnects by itself with backoff, resends its CSMA parameters, and delivers the frames queued
 * while the server was away.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { createServer, type Server, type Socket } from 'node:net';
import { KissDecoder, encodeKissData, type KissFrame } from '../../firmware-protocol/kiss.js';
import { kissTcpLink } from '../../drivers/kiss-tcp.js';
import { collect, until, waitForState } from './link-helpers.js';

const port = 40_000 + Math.floor(Math.random() * 10_000);

/** A TCP KISS server that records the frames it receives. */
function startServer(frames: KissFrame[], sockets: Socket[]): Promise<Server> {
  const server = createServer((socket) => {
    sockets.push(socket);
    const decoder = new KissDecoder();
    socket.on('data', (b) => {
      for (const e of decoder.push(new Uint8Array(b))) if ('frame' in e) frames.push(e.frame);
    });
    socket.on('error', () => undefined);
  });
  return new Promise((resolve) => server.listen(port, '127.0.0.1', () => resolve(server)));
}

const stopServer = (server: Server, sockets: Socket[]): Promise<void> => {
  for (const s of sockets) s.destroy();
  return new Promise((resolve) => server.close(() => resolve()));
};

describe('kiss-tcp reconnect', () => {
  // All five CSMA parameters configured, so that each connect sends all five (none are sent unless configured).
  const csma = { txDelayMs: 300, persistence: 0.25, slotTimeMs: 100, txTailMs: 100, fullDuplex: false };
  const link = kissTcpLink({ name: 'tcp', port, csma, backoff: { initialMs: 100, maxMs: 300 } });
  afterAll(() => link.close());

  it('reopens after the server restarts and sends what was queued meanwhile', async () => {
    const frames: KissFrame[] = [];
    const sockets: Socket[] = [];
    let server = await startServer(frames, sockets);
    await link.open();
    expect(link.state).toBe('up');
    await until(() => frames.length === 5, 'the five CSMA parameter frames');
    const got = collect(link);
    sockets[0]!.write(encodeKissData(Uint8Array.from([0, 0xc0, 0xdb, ...new Array(12).fill(7)])));
    await until(() => got.length === 1, 'a frame from the server');
    expect([...got[0]!.data]).toEqual([0xc0, 0xdb, ...new Array(12).fill(7)]);

    await stopServer(server, sockets);
    await waitForState(link, 'reconnecting');
    for (let i = 0; i < 3; i++) link.send(Uint8Array.of(i));

    frames.length = 0;
    sockets.length = 0;
    server = await startServer(frames, sockets);
    await waitForState(link, 'up');
    // On reconnect: the CSMA parameters again, then the three queued frames (pad-count framed).
    await until(() => frames.length === 8, 'parameters and the queued frames', 10_000);
    expect(frames.slice(0, 5).map((f) => f.command)).toEqual([1, 2, 3, 4, 5]);
    expect(frames.slice(5).map((f) => [...f.data.subarray(0, 2)])).toEqual([
      [13, 0],
      [13, 1],
      [13, 2],
    ]);
    expect(link.counters.reconnects).toBe(1);
    await stopServer(server, sockets);
  });
});
