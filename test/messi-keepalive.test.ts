/**
 * Messi keep-alive in virtual time: the sans-IO machines (src/messi/keepalive.ts) alone, and
 * the client and server connection cores wired back to back under a VirtualClock — Messi's
 * timing (ping 2 s after connecting and every 2 s; a ping whose pong has not come by the next
 * disconnects; a server drops a client with no ping for 3 s), the wire of the pings and pongs in
 * each version, and what the cores do with oversize and malformed frames.
 */
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { VirtualClock } from '../src/link/clock.js';
import { MessiClientConnection } from '../src/messi/client.js';
import { loadProtocol } from '../src/messi/codec.js';
import type { MessiVersion } from '../src/messi/framing.js';
import { ClientKeepAlive, ServerKeepAlive } from '../src/messi/keepalive.js';
import { MessiServerConnection, type MessiConnectionEvent } from '../src/messi/server.js';

const chat = loadProtocol({ path: fileURLToPath(new URL('./fixtures/messi-runtime/chat.proto', import.meta.url)) });
const hex = (s: string): Uint8Array => Uint8Array.from(Buffer.from(s.replace(/\s+/g, ''), 'hex'));
const toHex = (b: Uint8Array[]): string => Buffer.concat(b).toString('hex');

describe('keep-alive machines', () => {
  it('client: pings every interval from connect; times out when the previous pong is missing', () => {
    const k = new ClientKeepAlive(0);
    expect(k.nextDeadline()).toBe(2000);
    expect(k.poll(1999)).toBeUndefined();
    expect(k.poll(2000)).toBe('ping');
    expect(k.nextDeadline()).toBe(4000);
    k.pong();
    expect(k.poll(4000)).toBe('ping');
    // No pong this time: the next deadline disconnects.
    expect(k.poll(6000)).toBe('timeout');
    expect(k.nextDeadline()).toBe(Infinity);
    expect(k.poll(8000)).toBeUndefined();
  });

  it('client: a configured interval', () => {
    const k = new ClientKeepAlive(100, { intervalMs: 250 });
    expect(k.nextDeadline()).toBe(350);
    expect(() => new ClientKeepAlive(0, { intervalMs: 0 })).toThrow(RangeError);
  });

  it('server: 3 s from connect and from each ping', () => {
    const k = new ServerKeepAlive(0);
    expect(k.nextDeadline()).toBe(3000);
    k.ping(2000);
    expect(k.poll(3000)).toBeUndefined();
    expect(k.nextDeadline()).toBe(5000);
    expect(k.poll(5000)).toBe('timeout');
    expect(k.nextDeadline()).toBe(Infinity);
  });
});

/** A client core and a server core joined by a virtual wire; `silent` stops one side writing. */
function pair(version: MessiVersion, opts: { pingIntervalMs?: number; pingTimeoutMs?: number } = {}) {
  const clock = new VirtualClock(0);
  const client = new MessiClientConnection(0, { protocol: chat, version, ...(opts.pingIntervalMs ? { pingIntervalMs: opts.pingIntervalMs } : {}) });
  const server = new MessiServerConnection(0, { protocol: chat, ...(opts.pingTimeoutMs ? { pingTimeoutMs: opts.pingTimeoutMs } : {}) });
  const log: { at: number; side: 'client' | 'server'; event: MessiConnectionEvent }[] = [];
  const wire: { at: number; dir: 'c2s' | 's2c'; hex: string }[] = [];
  const state = { clientSilent: false, serverSilent: false };
  const pump = (): void => {
    for (let i = 0; i < 10; i++) {
      const c2s = client.takeOutput();
      const s2c = server.takeOutput();
      if (c2s.length === 0 && s2c.length === 0) return;
      if (c2s.length > 0 && !state.clientSilent) {
        wire.push({ at: clock.now(), dir: 'c2s', hex: toHex(c2s) });
        for (const event of server.receive(Buffer.concat(c2s), clock.now())) log.push({ at: clock.now(), side: 'server', event });
      }
      if (s2c.length > 0 && !state.serverSilent) {
        wire.push({ at: clock.now(), dir: 's2c', hex: toHex(s2c) });
        for (const event of client.receive(Buffer.concat(s2c))) log.push({ at: clock.now(), side: 'client', event });
      }
    }
  };
  const arm = (): void => {
    const at = Math.min(client.nextDeadline(), server.nextDeadline());
    if (at === Infinity) return;
    clock.setTimer(at, () => {
      for (const event of client.poll(clock.now())) log.push({ at: clock.now(), side: 'client', event });
      for (const event of server.poll(clock.now())) log.push({ at: clock.now(), side: 'server', event });
      pump();
      arm();
    });
  };
  arm();
  return { clock, client, server, log, wire, state, pump };
}

describe('client and server cores in virtual time', () => {
  for (const [version, ping, pong] of [
    ['current', '03000000', '04000000'],
    ['seed', '0000000200000000', '0000000300000000'],
  ] as const) {
    it(`${version}: a healthy pair pings every 2 s and stays up for a minute`, () => {
      const p = pair(version);
      p.clock.advance(60_000);
      expect(p.log).toEqual([]);
      const pings = p.wire.filter((w) => w.dir === 'c2s');
      expect(pings.length).toBe(30);
      expect(pings.map((w) => w.at).slice(0, 3)).toEqual([2000, 4000, 6000]);
      expect(new Set(pings.map((w) => w.hex))).toEqual(new Set([ping]));
      expect(new Set(p.wire.filter((w) => w.dir === 's2c').map((w) => w.hex))).toEqual(new Set([pong]));
      expect(p.server.version).toBe(version);
    });
  }

  it('a silent server is detected by the client at the ping after the unanswered one', () => {
    const p = pair('current');
    p.state.serverSilent = true;
    p.clock.advance(10_000);
    const clientDisconnects = p.log.filter((l) => l.side === 'client');
    expect(clientDisconnects).toEqual([
      { at: 4000, side: 'client', event: { type: 'disconnect', reason: 'keep-alive-timeout', detail: expect.any(String) } },
    ]);
  });

  it('a silent client is dropped by the server 3 s after its last ping', () => {
    const p = pair('current');
    p.clock.advance(4500); // pings at 2000 and 4000 arrive
    p.state.clientSilent = true;
    p.clock.advance(10_000);
    const drops = p.log.filter((l) => l.side === 'server');
    expect(drops).toEqual([
      { at: 7000, side: 'server', event: { type: 'disconnect', reason: 'keep-alive-timeout', detail: expect.any(String) } },
    ]);
  });

  it('configured intervals', () => {
    const p = pair('seed', { pingIntervalMs: 100, pingTimeoutMs: 150 });
    p.clock.advance(1000);
    expect(p.log).toEqual([]);
    p.state.clientSilent = true;
    p.clock.advance(1000);
    expect(p.log.find((l) => l.side === 'server')?.at).toBe(1150);
  });

  it('messages both ways, in the version of the connection', () => {
    const p = pair('seed');
    p.client.send({ type: 'connect_req', body: { user: 'Eric' } });
    p.pump();
    expect(p.wire[0]).toEqual({ at: 0, dir: 'c2s', hex: '00000001000000080a060a0445726963' });
    expect(p.log).toEqual([{ at: 0, side: 'server', event: { type: 'message', message: { type: 'connect_req', body: { user: 'Eric' } } } }]);
    p.server.send({ type: 'connect_rsp', body: {} });
    p.pump();
    expect(p.wire[1]).toEqual({ at: 0, dir: 's2c', hex: '00000001000000020a00' });
    expect(p.log[1]).toEqual({ at: 0, side: 'client', event: { type: 'message', message: { type: 'connect_rsp', body: {} } } });
  });
});

describe('server core: what a misbehaving client gets', () => {
  const now = 0;
  it('answers a hand-made 0.29 ping with a pong and a seed ping with a seed pong', () => {
    const s = new MessiServerConnection(now, { protocol: chat });
    expect(s.receive(hex('03000000'), now)).toEqual([]);
    expect(toHex(s.takeOutput())).toBe('04000000');
    const old = new MessiServerConnection(now, { protocol: chat });
    expect(old.receive(hex('0000000200000000'), now)).toEqual([]);
    expect(toHex(old.takeOutput())).toBe('0000000300000000');
  });

  it('a message sent before the client spoke waits for its version', () => {
    const s = new MessiServerConnection(now, { protocol: chat });
    s.send({ type: 'connect_rsp', body: {} });
    expect(s.takeOutput()).toEqual([]);
    expect(s.pendingBytes).toBeGreaterThan(0);
    s.receive(hex('00000002 00000000'), now);
    expect(toHex(s.takeOutput())).toBe('00000001000000020a00' + '0000000300000000');
  });

  it('oversize, malformed protobuf and unknown types disconnect with a reason', () => {
    const cases: [string, string][] = [
      ['01010001', 'message-too-big'],
      ['01000002 0a05', 'message-decode-error'],
      ['04000000', 'unknown-type'],
      ['00000004 00000000', 'unknown-type'],
    ];
    for (const [bytes, reason] of cases) {
      const s = new MessiServerConnection(now, { protocol: chat });
      const events = s.receive(hex(bytes), now);
      expect(events, bytes).toMatchObject([{ type: 'disconnect', reason }]);
      expect(s.closed).toBe(true);
      expect(s.receive(hex('03000000'), now)).toEqual([]);
    }
  });

  it('an empty ClientToServer is ignored, as Messi does', () => {
    const s = new MessiServerConnection(now, { protocol: chat });
    expect(s.receive(hex('01000000'), now)).toEqual([]);
    expect(s.emptyMessages).toBe(1);
    expect(s.closed).toBe(false);
  });
});

describe('client core', () => {
  it('ignores unknown types (as Messi clients do), disconnects on oversize and garbage', () => {
    const c = new MessiClientConnection(0, { protocol: chat });
    expect(c.receive(hex('07000000 03000000'))).toEqual([]);
    expect(c.ignoredFrames).toBe(2);
    expect(c.receive(hex('02000002 0a00'))).toEqual([{ type: 'message', message: { type: 'connect_rsp', body: {} } }]);
    expect(c.receive(hex('02000001 0f'))).toMatchObject([{ type: 'disconnect', reason: 'message-decode-error' }]);
    const big = new MessiClientConnection(0, { protocol: chat, maxFrame: 10 });
    expect(big.receive(hex('0200000b'))).toMatchObject([{ type: 'disconnect', reason: 'message-too-big' }]);
  });
});
