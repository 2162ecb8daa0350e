/**
 * The daemon end to end: `meshgw --sim --pcap FILE` as a user runs it, and a Gateway of two UDP
 * interfaces on loopback sending through their pacers into a capture that tshark reads back.
 */
import { describe, expect, it } from 'vitest';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Gateway, type GatewayEvent } from '../src/gateway/gateway.js';
import { UdpLink } from '../drivers/udp.js';
import { PcapngFile } from '../src/link/pcap.js';
import { until } from './hil/link-helpers.js';

const bin = fileURLToPath(new URL('../dist/bin/meshgw.js', import.meta.url));

function tshark(file: string, fields: string[]): string[][] {
  const r = spawnSync('tshark', ['-r', file, '-T', 'fields', ...fields.flatMap((f) => ['-e', f])], { encoding: 'utf8' });
  if (r.error) throw new Error('tshark is required to read captures back: install it with `apt-get install -y tshark`');
  return r.stdout.trim().split('\n').filter(Boolean).map((l) => l.split('\t'));
}

describe('meshgw (the daemon)', () => {
  it('runs on a simulated radio, prints JSON events and writes a capture Wireshark reads', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'meshgw-run-'));
    const file = join(dir, 'sim.pcapng');
    const key = join(dir, 'key', 'identity.json');
    mkdirSync(join(dir, 'key')); // an explicit --key's directory must exist (daemon-start-errors.test.ts)
    const child = spawn(process.execPath, [bin, '--sim', '--events', '--api', 'off', '--status-interval', '0.5', '--pcap', file, '--key', key, '--state-dir', join(dir, 'state')], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const events: GatewayEvent[] = [];
    let buffer = '';
    child.stdout.on('data', (b: Buffer) => {
      buffer += b.toString();
      for (let i = buffer.indexOf('\n'); i >= 0; i = buffer.indexOf('\n')) {
        events.push(JSON.parse(buffer.slice(0, i)) as GatewayEvent);
        buffer = buffer.slice(i + 1);
      }
    });
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    // The simulated neighbour is discovered: a symmetric neighbour and a route in the status.
    const meshUp = (): boolean =>
      events.some((e) => e.event === 'status' && (e.mesh?.routes.length ?? 0) > 0 && e.mesh!.neighbours.some((n) => n.symmetric));
    await until(() => events.some((e) => e.event === 'frame') && meshUp(), 'a frame and a route to the simulated neighbour', 25_000);
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
    expect(events[0]).toEqual({ event: 'state', interface: 'sim0', state: 'up' });
    const status = events.find((e) => e.event === 'status');
    expect(status && status.event === 'status' && status.interfaces[0]).toMatchObject({ name: 'sim0', kind: 'sim', state: 'up', mtu: 255 });
    const rows = tshark(file, ['frame.protocols', 'frame.interface_name']);
    expect(rows.length).toBeGreaterThanOrEqual(1);
    expect(rows[0]).toEqual(['loratap:data', 'sim0']);
    expect(existsSync(key)).toBe(true); // the identity was created where --key said
  });

  it('sends through the pacers and captures both interfaces as IPv4/UDP', async () => {
    const file = join(mkdtempSync(join(tmpdir(), 'meshgw-gw-')), 'udp.pcapng');
    const pa = 30_000 + Math.floor(Math.random() * 10_000);
    const pb = pa + 1;
    const a = new UdpLink({ name: 'a', address: '127.0.0.1', port: pa, peers: [{ address: '127.0.0.1', port: pb }] });
    const b = new UdpLink({ name: 'b', address: '127.0.0.1', port: pb, peers: [{ address: '127.0.0.1', port: pa }] });
    const received: string[] = [];
    const gw = new Gateway({
      interfaces: [{ link: a }, { link: b }],
      capture: new PcapngFile(file),
      onFrame: (iface, f) => received.push(`${iface}:${Buffer.from(f.data).toString()}`),
    });
    await gw.start();
    for (let i = 0; i < 3; i++) expect(gw.send('a', new TextEncoder().encode(`hello ${i}`)).ok).toBe(true);
    expect(gw.send('b', new TextEncoder().encode('back'), 'control').ok).toBe(true);
    await until(() => received.length === 4, 'four frames across the gateway');
    expect(received.sort()).toEqual(['a:back', 'b:hello 0', 'b:hello 1', 'b:hello 2']);
    expect(gw.status().map((s) => [s.name, s.counters.framesOut, s.pacer.queuedFrames])).toEqual([
      ['a', 3, 0],
      ['b', 1, 0],
    ]);
    await gw.stop();
    const rows = tshark(file, ['frame.protocols', 'udp.srcport', 'udp.dstport']);
    // 4 frames, each captured going out of one interface and coming in at the other.
    expect(rows).toHaveLength(8);
    expect(rows.every((r) => r[0] === 'ip:udp:data')).toBe(true);
    // a's three frames: captured leaving a (from a's port) and arriving at b (a's port → b's port).
    expect(rows.filter((r) => r[1] === String(pa))).toHaveLength(6);
    expect(rows.filter((r) => r[1] === String(pa) && r[2] === String(pb))).toHaveLength(3);
  });
});
