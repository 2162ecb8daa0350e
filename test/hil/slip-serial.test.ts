/**
 * slip-serial over a real socat pty pair: two links face each other on the two ends (a SLIP
 * modem is a wire for datagrams), through the real serialport binding.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { SlipSerialLink } from '../../drivers/slip-serial.js';
import { openPtyPair } from './pty.js';
import { collect, frameOfSize, hex, until } from './link-helpers.js';

const cleanups: Array<() => Promise<void> | void> = [];
afterAll(async () => {
  for (const c of cleanups.reverse()) await c();
});

describe('slip-serial over a pty pair', () => {
  it('carries datagrams of every size intact, both ways', async () => {
    const pty = await openPtyPair('slip');
    cleanups.push(() => pty.close());
    const a = new SlipSerialLink({ name: 'a', path: pty.host, mtu: 1006 });
    const b = new SlipSerialLink({ name: 'b', path: pty.modem, mtu: 1006 });
    cleanups.push(() => a.close(), () => b.close());
    await a.open();
    await b.open();
    const atB = collect(b);
    const atA = collect(a);
    const sizes = [1, 2, 100, 1006];
    const frames = sizes.map((n, i) => frameOfSize(n, i));
    for (const f of frames) a.send(f);
    for (const f of frames) b.send(f);
    await until(() => atB.length === sizes.length && atA.length === sizes.length, 'datagrams both ways');
    expect(atB.map((f) => hex(f.data))).toEqual(frames.map(hex));
    expect(atA.map((f) => hex(f.data))).toEqual(frames.map(hex));
    expect(a.counters.decodeErrors + b.counters.decodeErrors).toBe(0);
  });
});
