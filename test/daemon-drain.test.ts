/**
 * A stop lets what is queued go first (`Daemon.drain`, what SIGINT/SIGTERM wait on up to
 * --shutdown-timeout): frames queued in a KISS TNC's pacer at 1200 bit/s reach the TNC before
 * the links close. The TNC is a TCP server in the test that collects the KISS frames.
 */
import { describe, expect, it } from 'vitest';
import { mkdtempSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KissDecoder, KissCommand } from '../firmware-protocol/kiss.js';
import { startDaemon } from '../src/gateway/daemon.js';

describe('Daemon.drain', () => {
  it('waits until the queued frames went to the TNC; with no time left it says how many are still queued', async () => {
    const decoder = new KissDecoder({ maxFrame: 2048 });
    const data: Uint8Array[] = [];
    const server = net.createServer((s) => {
      s.on('data', (b: Buffer) => {
        for (const e of decoder.push(b)) if ('frame' in e && e.frame.command === KissCommand.DATA) data.push(e.frame.data);
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const dir = mkdtempSync(join(tmpdir(), 'meshgw-drain-'));
    const d = await startDaemon({
      interfaces: [{ kind: 'kiss-tcp', host: '127.0.0.1', port: (server.address() as net.AddressInfo).port }],
      region: 'none',
      keyFile: join(dir, 'identity.json'),
      stateDir: join(dir, 'state'),
      statusIntervalMs: 0,
    });
    try {
      for (let i = 0; i < 100 && d.gateway.registry.list()[0]!.link.state !== 'up'; i++) await new Promise((r) => setTimeout(r, 20));
      const before = data.length; // the node's own HELLO may have gone already
      // Four 150-byte frames at 1200 bit/s: about 1.2 s each with TXDELAY and TXTAIL.
      for (let i = 0; i < 4; i++) expect(d.gateway.send('kisstcp0', new Uint8Array(150).fill(i + 1)).ok).toBe(true);
      expect(await d.drain(0)).toBeGreaterThan(0); // no time: they are still queued
      expect(await d.drain(30_000)).toBe(0);
      // Each of the four reached the TNC (pad-count framing: a length byte, then the frame).
      await new Promise((r) => setTimeout(r, 100));
      const ours = data.slice(before).filter((f) => f.length > 150 && f[1] !== undefined && f[1] >= 1 && f[1] <= 4 && f.subarray(1, 151).every((b) => b === f[1]));
      expect(ours.map((f) => f[1])).toEqual([1, 2, 3, 4]);
    } finally {
      await d.stop();
      server.close();
    }
  }, 60_000);
});
