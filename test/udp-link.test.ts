/**
 * UdpLink over real loopback sockets: every datagram stays on 127.0.0.0/8.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { createSocket, type Socket } from 'node:dgram';
import { UdpLink, type UdpLinkOptions } from '../drivers/udp.js';
import { FrameTooLargeError, type LinkState, type ReceivedFrame } from '../src/link/link.js';

const HOST = '127.0.0.1';

/** A port that was free a moment ago (the kernel's pick for an ephemeral bind). */
async function freePort(): Promise<number> {
  const s = createSocket('udp4');
  await new Promise<void>((resolve) => s.bind(0, HOST, resolve));
  const { port } = s.address();
  await new Promise<void>((resolve) => s.close(resolve));
  return port;
}

const open: Array<UdpLink | Socket> = [];
afterEach(async () => {
  for (const x of open.splice(0)) {
    if (x instanceof UdpLink) await x.close();
    else x.close();
  }
});

interface Node {
  link: UdpLink;
  got: ReceivedFrame[];
  /** Resolves with the next frame received. */
  next(): Promise<ReceivedFrame>;
}

async function node(name: string, extra: Partial<UdpLinkOptions> = {}): Promise<Node> {
  const link = new UdpLink({ name, address: HOST, port: await freePort(), ...extra });
  open.push(link);
  const got: ReceivedFrame[] = [];
  const waiting: Array<(f: ReceivedFrame) => void> = [];
  link.on('frame', (f) => {
    got.push(f);
    waiting.shift()?.(f);
  });
  await link.open();
  expect(link.state).toBe('up');
  return { link, got, next: () => new Promise((resolve) => waiting.push(resolve)) };
}

/** Two links that know each other as static peers. */
async function pair(): Promise<[Node, Node]> {
  const pa = await freePort();
  let pb = await freePort();
  while (pb === pa) pb = await freePort();
  const a = await node('a', { port: pa, peers: [{ address: HOST, port: pb }] });
  const b = await node('b', { port: pb, peers: [{ address: HOST, port: pa }] });
  return [a, b];
}

async function rawSocket(): Promise<Socket> {
  const s = createSocket('udp4');
  open.push(s);
  await new Promise<void>((resolve) => s.bind(0, HOST, resolve));
  return s;
}

const settle = (ms = 50) => new Promise((r) => setTimeout(r, ms));

describe('UdpLink on loopback', () => {
  it('MTU: 1200 by default, the largest UDP payload where nothing leaves the host (loopback)', () => {
    const mtuOf = (o: Partial<UdpLinkOptions>): number => new UdpLink({ name: 'm', port: 4269, ...o }).mtu;
    expect(mtuOf({ address: '127.0.0.1', peers: [{ address: '127.0.0.2', port: 1 }] })).toBe(65_507);
    expect(mtuOf({ address: '127.0.0.1' })).toBe(65_507);
    expect(mtuOf({ address: '127.0.0.1', peers: [{ address: '10.0.0.2', port: 1 }] })).toBe(1200);
    expect(mtuOf({ address: '0.0.0.0' })).toBe(1200);
    expect(mtuOf({})).toBe(1200);
    expect(mtuOf({ interface: 'lo' })).toBe(1200);
    expect(mtuOf({ address: '127.0.0.1', mtu: 1472 })).toBe(1472);
  });

  it('carries frames of 0, 1, 1200 and 65,507 bytes intact to static peers, with their from endpoint', async () => {
    const [a, b] = await pair();
    expect(a.link.kind).toBe('udp');
    expect(a.link.mtu).toBe(65_507);
    expect(a.link.airtime.kind).toBe('fixed-rate');
    expect(a.link.airtime.airtimeMs(1200)).toBe(0); // no bit-rate cap
    const big = Uint8Array.from({ length: 1200 }, (_, i) => (i * 7) & 0xff);
    const largest = Uint8Array.from({ length: 65_507 }, (_, i) => (i * 13) & 0xff);
    for (const frame of [new Uint8Array(0), Uint8Array.of(0x5a), big, largest]) {
      const arrived = b.next();
      a.link.send(frame);
      const f = await arrived;
      expect(f.data).toEqual(frame);
      expect(f.from).toEqual({ address: HOST, port: a.link.port });
      expect(Math.abs(f.at - Date.now())).toBeLessThan(5_000);
    }
    expect(a.link.counters).toMatchObject({ framesOut: 4, bytesOut: 1201 + 65_507, drops: {} });
    expect(b.link.counters).toMatchObject({ framesIn: 4, bytesIn: 1201 + 65_507, drops: {} });
    // The bind address is on lo (127.0.0.0/8), so one-to-all frames also go to its broadcast.
    expect(a.link.stats.oneToAll).toBe('127.255.255.255');
  });

  it('unicasts with `to`, learns the sender, and the reply goes to the learned endpoint', async () => {
    const a = await node('a');
    const c = await node('c'); // no static peers: c knows nobody until it hears a
    expect(c.link.peers()).toEqual([]);
    const arrived = c.next();
    a.link.send(Uint8Array.of(1, 2, 3), { to: { address: HOST, port: c.link.port } });
    expect((await arrived).data).toEqual(Uint8Array.of(1, 2, 3));
    const learned = c.link.peers();
    expect(learned).toEqual([{ address: HOST, port: a.link.port }]);

    const reply = a.next();
    c.link.send(Uint8Array.of(9), { to: learned[0]! });
    const r = await reply;
    expect(r.data).toEqual(Uint8Array.of(9));
    expect(r.from).toEqual({ address: HOST, port: c.link.port });
  });

  it('keeps at most maxPeers learned peers, most recently heard first', async () => {
    const c = await node('c', { maxPeers: 2 });
    const senders = [await rawSocket(), await rawSocket(), await rawSocket()];
    for (const s of [...senders, senders[0]!, senders[2]!]) {
      const arrived = c.next();
      s.send(Uint8Array.of(0), c.link.port, HOST);
      await arrived;
    }
    const port = (s: Socket) => s.address().port;
    expect(c.link.peers()).toEqual([
      { address: HOST, port: port(senders[2]!) },
      { address: HOST, port: port(senders[0]!) },
    ]);
  });

  it('throws FrameTooLargeError for a frame over the MTU and counts it', async () => {
    const [a] = await pair();
    expect(() => a.link.send(new Uint8Array(65_508))).toThrow(FrameTooLargeError);
    expect(a.link.counters.drops).toEqual({ 'too-large': 1 });
    expect(a.link.counters.framesOut).toBe(0);
  });

  it('drops and counts received datagrams over the MTU', async () => {
    const c = await node('c', { mtu: 100 });
    const s = await rawSocket();
    s.send(new Uint8Array(101), c.link.port, HOST);
    const ok = c.next();
    s.send(new Uint8Array(100), c.link.port, HOST);
    expect((await ok).data.length).toBe(100);
    expect(c.link.counters.drops).toEqual({ 'too-large-in': 1 });
    expect(c.link.counters.framesIn).toBe(1);
  });

  it('does not hear its own broadcast', async () => {
    // Bound to 0.0.0.0, the socket receives the loopback broadcast it sends to itself.
    const port = await freePort();
    const link = new UdpLink({ name: 'self', address: '0.0.0.0', port, broadcast: '127.255.255.255' });
    open.push(link);
    const got: ReceivedFrame[] = [];
    link.on('frame', (f) => got.push(f));
    await link.open();
    link.send(Uint8Array.of(1));
    await settle();
    expect(link.stats.selfEchoes).toBe(1);
    expect(got).toEqual([]);
    expect(link.peers()).toEqual([]);
  });

  it('with a missing interface is down (said once), keeps trying, and closes cleanly', async () => {
    const states: LinkState[] = [];
    const lines: string[] = [];
    const link = new UdpLink({ name: 'w', interface: 'meshgw-none0', port: await freePort(), log: (l) => lines.push(l) });
    open.push(link);
    link.on('state', (s) => states.push(s));
    await link.open();
    expect(link.state).toBe('down');
    expect(link.send(Uint8Array.of(1))).toBe(true); // queued while down
    await link.close();
    expect(states).toEqual(['opening', 'down', 'closed']);
    expect(lines.filter((l) => l.includes('has no IPv4 address'))).toHaveLength(1);
  });

  it('closes: state closed, send refused, the port free again', async () => {
    const [a] = await pair();
    await a.link.close();
    expect(a.link.state).toBe('closed');
    expect(() => a.link.send(Uint8Array.of(1))).toThrow(/closed/);
    await a.link.close(); // idempotent
    const again = createSocket('udp4');
    open.push(again);
    await new Promise<void>((resolve, reject) => {
      again.once('error', reject);
      again.bind(a.link.port, HOST, resolve);
    });
  });
});
